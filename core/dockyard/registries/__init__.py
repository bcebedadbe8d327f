"""Registries: where images come from and go to (pull, push, login, search).

The engine's plan lives here: which layers to fetch, shared downloads, verification,
mirrors and credentials per request. The registry driver only speaks the protocol.
Only the engine and the API import this package.
"""
