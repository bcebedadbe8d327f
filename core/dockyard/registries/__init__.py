"""Registries: where images come from and go to (pull, push, login, search)."""
