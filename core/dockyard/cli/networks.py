"""`dockyard network ...` and `dockyard port`: network commands as the docker CLI has them."""

from __future__ import annotations

import sys

import click

from dockyard.cli.common import api_errors, client, each_or_exit, filters_json, inspect_each, key_values
from dockyard.cli.format import table


@click.group("network")
def network() -> None:
    """Manage networks."""


@network.command("create")
@click.option("-d", "--driver", default="bridge", show_default=True, help="Driver to manage the Network.")
@click.option("--subnet", multiple=True, help="Subnet in CIDR format that represents a network segment.")
@click.option("--gateway", multiple=True, help="IPv4 Gateway for the master subnet.")
@click.option("--ip-range", multiple=True, help="Allocate container ip from a sub-range.")
@click.option("--internal", is_flag=True, help="Restrict external access to the network.")
@click.option("--attachable", is_flag=True, help="Enable manual container attachment.")
@click.option("-o", "--opt", multiple=True, help="Set driver specific options.")
@click.option("--label", multiple=True, help="Set metadata on a network.")
@click.argument("name")
@click.pass_context
def create(ctx, driver, subnet, gateway, ip_range, internal, attachable, opt, label, name):
    """Create a network."""
    pools = []
    for index, value in enumerate(subnet):
        pool = {"Subnet": value}
        if index < len(gateway):
            pool["Gateway"] = gateway[index]
        if index < len(ip_range):
            pool["IPRange"] = ip_range[index]
        pools.append(pool)
    if (gateway or ip_range) and not subnet:
        raise click.UsageError("--gateway and --ip-range need a --subnet")
    body = {"Name": name, "Driver": driver, "Internal": internal, "Attachable": attachable,
            "IPAM": {"Driver": "default", "Config": pools}, "Options": key_values(opt, "--opt"),
            "Labels": key_values(label, "--label"), "CheckDuplicate": True}
    with api_errors():
        click.echo(client(ctx).request("POST", "/networks/create", body=body).json()["Id"])


@network.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output.")
@click.option("-f", "--filter", "filters", multiple=True, help="Provide filter values (e.g. driver=bridge).")
@click.pass_context
def ls(ctx, quiet, no_trunc, filters):
    """List networks."""
    with api_errors():
        found = client(ctx).get_json("/networks", {"filters": filters_json(filters)})
    rows = [("NETWORK ID", "NAME", "DRIVER", "SCOPE")]
    for item in found:
        network_id = item["Id"] if no_trunc else item["Id"][:12]
        if quiet:
            click.echo(network_id)
            continue
        rows.append((network_id, item["Name"], item["Driver"], item["Scope"]))
    if not quiet:
        click.echo(table(rows))


@network.command("inspect")
@click.option("-f", "--format", "output_format", help="A Python format string over the network's fields.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect(ctx, output_format, names):
    """Display detailed information on one or more networks."""
    inspect_each(ctx, names, lambda name: f"/networks/{name}", output_format)


@network.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm(ctx, names):
    """Remove one or more networks."""
    api = client(ctx)
    each_or_exit(names, lambda name: api.request("DELETE", f"/networks/{name}").read())


@network.command("connect")
@click.option("--ip", help="IPv4 address (e.g., 172.30.100.104).")
@click.option("--alias", multiple=True, help="Add network-scoped alias for the container.")
@click.argument("network_name")
@click.argument("container")
@click.pass_context
def connect(ctx, ip, alias, network_name, container):
    """Connect a container to a network."""
    endpoint = {"Aliases": list(alias) or None}
    if ip:
        endpoint["IPAMConfig"] = {"IPv4Address": ip}
    with api_errors():
        client(ctx).request("POST", f"/networks/{network_name}/connect",
                            body={"Container": container, "EndpointConfig": endpoint}).read()


@network.command("disconnect")
@click.option("-f", "--force", is_flag=True, help="Force the container to disconnect from a network.")
@click.argument("network_name")
@click.argument("container")
@click.pass_context
def disconnect(ctx, force, network_name, container):
    """Disconnect a container from a network."""
    with api_errors():
        client(ctx).request("POST", f"/networks/{network_name}/disconnect",
                            body={"Container": container, "Force": force}).read()


@network.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (e.g. until=24h).")
@click.pass_context
def prune(ctx, force, filters):
    """Remove all unused networks."""
    if not force and not click.confirm("WARNING! This will remove all custom networks not used by at least "
                                       "one container.\nAre you sure you want to continue?"):
        return
    with api_errors():
        result = client(ctx).request("POST", "/networks/prune", {"filters": filters_json(filters)}).json()
    deleted = result.get("NetworksDeleted") or []
    if deleted:
        click.echo("Deleted Networks:\n" + "\n".join(deleted))


@click.command("port")
@click.argument("container")
@click.argument("private_port", required=False)
@click.pass_context
def port(ctx, container, private_port):
    """List port mappings or a specific mapping for the container."""
    with api_errors():
        ports = client(ctx).get_json(f"/containers/{container}/json")["NetworkSettings"]["Ports"] or {}
    if private_port:
        key = private_port if "/" in private_port else f"{private_port}/tcp"
        bindings = ports.get(key)
        if not bindings:
            click.echo(f"Error: No public port '{key}' published for {container}", err=True)
            sys.exit(1)
        for binding in bindings:
            click.echo(f"{binding['HostIp']}:{binding['HostPort']}")
        return
    for key, bindings in sorted(ports.items()):
        for binding in bindings or []:
            click.echo(f"{key} -> {binding['HostIp']}:{binding['HostPort']}")
