"""A small client of the Engine API, for the dockyard CLI and tests.

Standard library sockets only: the CLI starts on every invocation, and http.client or
requests would cost more to import than the whole interpreter does to start. It imports
nothing of the daemon's: anything may import it.
"""

from dockyard.client.http import APIError, Client, DaemonUnreachable, default_host

__all__ = ["APIError", "Client", "DaemonUnreachable", "default_host"]
