"""`dockyard`: the command-line client. Every command is a request to the daemon's API.

`main` keeps start-up lean: click costs more to import than the interpreter does to
start, so `dockyard version` (what scripts and health checks call most) is answered
without it, and every other command loads only click and its own module.
"""

from __future__ import annotations

import sys

_HOST_FLAGS = ("-H", "--host")


def _lean_version_request(argv: list[str]) -> str | None | bool:
    """The host for `[-H HOST] version`, None for the default host, False otherwise."""
    host = None
    rest = list(argv)
    if rest and rest[0] in _HOST_FLAGS and len(rest) > 1:
        host, rest = rest[1], rest[2:]
    elif rest and rest[0].startswith("--host="):
        host, rest = rest[0].partition("=")[2], rest[1:]
    return host if rest == ["version"] else False


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    host = _lean_version_request(argv)
    if host is not False:
        from dockyard.cli.render import print_version

        sys.exit(print_version(host))
    from dockyard.cli.app import cli

    cli.main(args=argv, prog_name="dockyard")
