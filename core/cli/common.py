"""What every CLI command shares: the API client and Docker-style error exits."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click
from dockyard.client import APIError, Client, DaemonUnreachable


def client(ctx: click.Context) -> Client:
    return Client((ctx.find_root().obj or {}).get("host"))


@contextlib.contextmanager
def api_errors() -> Iterator[None]:
    """Report daemon errors the way the docker CLI does, and exit 1."""
    try:
        yield
    except APIError as exc:
        click.echo(f"Error response from daemon: {exc.message}", err=True)
        sys.exit(1)
    except DaemonUnreachable as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
