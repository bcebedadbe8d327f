"""Drivers small enough to ship inside the core, registered like any plugin."""
