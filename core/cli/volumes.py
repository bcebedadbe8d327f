"""`dockyard volume ...`: volume commands as the docker CLI has them."""

from __future__ import annotations

import json
import sys

import click
from dockyard.cli.common import api_errors, client
from dockyard.cli.format import human_size, table
from dockyard.client import APIError, DaemonUnreachable


def _pairs(values: tuple[str, ...], flag: str) -> dict[str, str]:
    found = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not key or not sep:
            raise click.BadParameter(f"invalid {flag} {value!r}: use key=value", param_hint=flag)
        found[key] = item
    return found


def _filters(values: tuple[str, ...]) -> dict[str, list[str]]:
    wanted: dict[str, list[str]] = {}
    for value in values:
        key, _, item = value.partition("=")
        wanted.setdefault(key, []).append(item)
    return wanted


@click.group("volume")
def volume() -> None:
    """Manage volumes."""


@volume.command("create")
@click.option("-d", "--driver", default="local", show_default=True, help="Specify volume driver name.")
@click.option("-o", "--opt", multiple=True, help="Set driver specific options.")
@click.option("--label", multiple=True, help="Set metadata for a volume.")
@click.argument("name", required=False)
@click.pass_context
def create(ctx, driver, opt, label, name):
    """Create a volume."""
    body = {"Name": name or "", "Driver": driver, "DriverOpts": _pairs(opt, "--opt"),
            "Labels": _pairs(label, "--label")}
    with api_errors():
        click.echo(client(ctx).request("POST", "/volumes/create", body=body).json()["Name"])


@volume.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display volume names.")
@click.option("-f", "--filter", "filters", multiple=True, help="Provide filter values (e.g. dangling=true).")
@click.pass_context
def ls(ctx, quiet, filters):
    """List volumes."""
    wanted = _filters(filters)
    with api_errors():
        found = client(ctx).get_json("/volumes", {"filters": json.dumps(wanted)} if wanted else None)
    if quiet:
        for item in found["Volumes"]:
            click.echo(item["Name"])
        return
    click.echo(table([("DRIVER", "VOLUME NAME")] + [(v["Driver"], v["Name"]) for v in found["Volumes"]]))


@volume.command("inspect")
@click.option("-f", "--format", "output_format", help="A Python format string over the volume's fields.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect(ctx, output_format, names):
    """Display detailed information on one or more volumes."""
    api = client(ctx)
    found, failed = [], False
    for name in names:
        try:
            found.append(api.get_json(f"/volumes/{name}"))
        except APIError as exc:
            click.echo(f"Error response from daemon: {exc.message}", err=True)
            failed = True
        except DaemonUnreachable as exc:
            click.echo(str(exc), err=True)
            sys.exit(1)
    if output_format:
        for item in found:
            click.echo(output_format.format(**item))
    else:
        click.echo(json.dumps(found, indent=4))
    if failed:
        sys.exit(1)


@volume.command("rm")
@click.option("-f", "--force", is_flag=True, help="Force the removal of one or more volumes.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm(ctx, force, names):
    """Remove one or more volumes."""
    api = client(ctx)
    failed = False
    for name in names:
        try:
            api.request("DELETE", f"/volumes/{name}", {"force": int(force)}).read()
            click.echo(name)
        except APIError as exc:
            click.echo(f"Error response from daemon: {exc.message}", err=True)
            failed = True
    if failed:
        sys.exit(1)


@volume.command("prune")
@click.option("-a", "--all", "everything", is_flag=True,
              help="Remove all unused volumes, not just anonymous ones.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (e.g. label=<label>).")
@click.pass_context
def prune(ctx, everything, force, filters):
    """Remove unused local volumes."""
    if not force and not click.confirm("WARNING! This will remove anonymous local volumes not used by at "
                                       "least one container.\nAre you sure you want to continue?"):
        return
    wanted = _filters(filters)
    if everything:
        wanted["all"] = ["true"]
    with api_errors():
        result = client(ctx).request("POST", "/volumes/prune",
                                     {"filters": json.dumps(wanted)} if wanted else None).json()
    deleted = result.get("VolumesDeleted") or []
    if deleted:
        click.echo("Deleted Volumes:\n" + "\n".join(deleted) + "\n")
    click.echo(f"Total reclaimed space: {human_size(result.get('SpaceReclaimed') or 0)}")
