"""What every CLI command shares: the API client, Docker-style error exits, and the
argument and output shapes several commands use (filters, key=value options, one call
per named object, inspect output)."""

from __future__ import annotations

import contextlib
import json
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


def filters_json(items: tuple[str, ...]) -> str | None:
    """`--filter key=value` flags as the API's filters JSON (None when there are none)."""
    grouped: dict[str, dict[str, bool]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: filters look like key=value", param_hint="--filter")
        grouped.setdefault(key, {})[value] = True
    return json.dumps(grouped) if grouped else None


def key_values(items, flag: str) -> dict[str, str]:
    """`--label a=b`-style flags as a mapping (a bare key maps to "")."""
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise click.BadParameter(f"invalid value {item!r}: use key=value", param_hint=flag)
        result[key] = value if sep else ""
    return result


def each(names, action, success=lambda name: click.echo(name)) -> bool:
    """Run `action` for every name and report each failure as the docker CLI does; returns
    whether all succeeded (the caller exits 1 when not, once its output is done)."""
    failed = False
    for name in names:
        try:
            action(name)
            success(name)
        except APIError as exc:
            click.echo(f"Error response from daemon: {exc.message}", err=True)
            failed = True
        except DaemonUnreachable as exc:
            click.echo(str(exc), err=True)
            sys.exit(1)
    return not failed


def each_or_exit(names, action, success=lambda name: click.echo(name)) -> None:
    if not each(names, action, success):
        sys.exit(1)


def inspect_each(ctx: click.Context, names, path_of, output_format: str | None) -> None:
    """`X inspect NAME...` for one kind of object: every one found is shown (a Python
    format string per object, or the JSON list), every one missing is reported, and the
    exit status says whether any was."""
    api = client(ctx)
    found: list[dict] = []
    succeeded = each(names, lambda name: found.append(api.get_json(path_of(name))), success=lambda _: None)
    show_objects(found, output_format)
    if not succeeded:
        sys.exit(1)


def show_objects(found: list[dict], output_format: str | None) -> None:
    if output_format:
        for item in found:
            click.echo(output_format.format(**item))
    else:
        click.echo(json.dumps(found, indent=4))
