"""Volumes: the manager of their records, the containers using them, and copy-up.

Volume drivers own directories and mounts; the manager owns names, labels, users and
the all-or-nothing rules around them. Only the engine, the API and the container
manager import this package.
"""
