"""`dockyard volume ...`: volume commands as the docker CLI has them."""

from __future__ import annotations

import click

from dockyard.cli.common import api_errors, client, each_or_exit, filters_json, inspect_each, key_values
from dockyard.cli.format import human_size, table


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
    body = {"Name": name or "", "Driver": driver, "DriverOpts": key_values(opt, "--opt"),
            "Labels": key_values(label, "--label")}
    with api_errors():
        click.echo(client(ctx).request("POST", "/volumes/create", body=body).json()["Name"])


@volume.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display volume names.")
@click.option("-f", "--filter", "filters", multiple=True, help="Provide filter values (e.g. dangling=true).")
@click.pass_context
def ls(ctx, quiet, filters):
    """List volumes."""
    with api_errors():
        found = client(ctx).get_json("/volumes", {"filters": filters_json(filters)})
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
    inspect_each(ctx, names, lambda name: f"/volumes/{name}", output_format)


@volume.command("rm")
@click.option("-f", "--force", is_flag=True, help="Force the removal of one or more volumes.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm(ctx, force, names):
    """Remove one or more volumes."""
    api = client(ctx)
    each_or_exit(names, lambda name: api.request("DELETE", f"/volumes/{name}", {"force": int(force)}).read())


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
    wanted = filters_json(filters + (("all=true",) if everything else ()))
    with api_errors():
        result = client(ctx).request("POST", "/volumes/prune", {"filters": wanted}).json()
    deleted = result.get("VolumesDeleted") or []
    if deleted:
        click.echo("Deleted Volumes:\n" + "\n".join(deleted) + "\n")
    click.echo(f"Total reclaimed space: {human_size(result.get('SpaceReclaimed') or 0)}")
