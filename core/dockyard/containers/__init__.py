"""Containers: their configuration, state, monitors, logs and the manager that runs them."""
