"""Volumes: the manager of their records, users and copy-up."""
