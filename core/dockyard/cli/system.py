"""System commands: version, info, events, plugins."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime

import click

from dockyard.cli.common import api_errors, client
from dockyard.cli.format import ago, human_size, table
from dockyard.cli.render import client_version_lines


@click.command()
@click.option("-f", "--format", "output_format", type=click.Choice(["json"]), default=None,
              help="json: print the client and server versions as JSON.")
@click.pass_context
def version(ctx: click.Context, output_format: str | None) -> None:
    """Show the client and daemon versions."""
    if output_format != "json":
        from dockyard.cli.render import print_version

        ctx.exit(print_version(ctx.find_root().obj["host"]))
    with api_errors():
        server = client(ctx).get_json("/version")
    click.echo(json.dumps({"Client": client_version_lines(), "Server": server}))


def _human_size(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.4g}{unit}"
        size /= 1024
    return str(value)


@click.command()
@click.option("-f", "--format", "output_format", type=click.Choice(["json"]), default=None)
@click.pass_context
def info(ctx: click.Context, output_format: str | None) -> None:
    """Show system-wide information, and which drivers are missing."""
    with api_errors():
        data = client(ctx).get_json("/info")
    if output_format == "json":
        click.echo(json.dumps(data))
        return
    plugins = data.get("Plugins") or {}
    lines = [
        "Server:",
        f" Containers: {data['Containers']}",
        f"  Running: {data['ContainersRunning']}",
        f"  Paused: {data['ContainersPaused']}",
        f"  Stopped: {data['ContainersStopped']}",
        f" Images: {data['Images']}",
        f" Server Version: {data['ServerVersion']}",
        f" Storage Driver: {data['Driver'] or '(none)'}",
    ]
    lines += [f"  {key}: {value}" for key, value in data.get("DriverStatus") or []]
    lines += [
        f" Logging Driver: {data['LoggingDriver']}",
        f" Cgroup Driver: {data['CgroupDriver']}",
        f" Cgroup Version: {data.get('CgroupVersion', '')}",
        " Plugins:",
        f"  Volume: {' '.join(plugins.get('Volume') or [])}",
        f"  Network: {' '.join(plugins.get('Network') or [])}",
        f"  Log: {' '.join(plugins.get('Log') or [])}",
        f" Runtimes: {' '.join(data.get('Runtimes') or {}) or '(none)'}",
        f" Default Runtime: {data.get('DefaultRuntime') or '(none)'}",
        f" Kernel Version: {data['KernelVersion']}",
        f" Operating System: {data['OperatingSystem']}",
        f" OSType: {data['OSType']}",
        f" Architecture: {data['Architecture']}",
        f" CPUs: {data['NCPU']}",
        f" Total Memory: {_human_size(data['MemTotal'])}",
        f" Name: {data['Name']}",
        f" ID: {data['ID']}",
        f" Docker Root Dir: {data['DockerRootDir']}",
        f" Debug Mode: {str(data['Debug']).lower()}",
        f" Live Restore Enabled: {str(data['LiveRestoreEnabled']).lower()}",
    ]
    if data.get("Labels"):
        lines.append(" Labels:")
        lines += [f"  {label}" for label in data["Labels"]]
    cluster = data.get("ClusterStatus")
    if cluster:
        lines += [f" Cluster Store: {data.get('ClusterStore', '')}",
                  f" Cluster Advertise: {data.get('ClusterAdvertise', '')}",
                  f"  State: {cluster.get('State', '')}"]
        peers = cluster.get("Peers") or []
        lines.append(f"  Peers: {len(peers)}")
        lines += [f"   {peer.get('Name', '')} {peer.get('Address', '')}"
                  + ("  (this host)" if peer.get("ID") == cluster.get("NodeID") else "") for peer in peers]
    click.echo("\n".join(lines))
    for warning in data.get("Warnings") or []:
        click.echo(warning, err=True)


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)$")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def to_api_timestamp(value: str) -> str:
    """What the docker CLI accepts for --since/--until: a duration ago (10m), a unix
    time, or an RFC 3339 time. The API wants unix seconds."""
    match = _DURATION.match(value)
    if match:
        seconds = time.time() - float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        return f"{seconds:.9f}"
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return value
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r}: use a duration (10m), unix seconds, "
                                 "or an RFC 3339 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.timestamp():.9f}"


def format_event(event: dict) -> str:
    nanos = event.get("timeNano", 0)
    moment = datetime.fromtimestamp(nanos // 1_000_000_000, UTC)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos % 1_000_000_000:09d}Z"
    actor = event.get("Actor") or {}
    attributes = ", ".join(f"{k}={v}" for k, v in sorted((actor.get("Attributes") or {}).items()))
    line = f"{stamp} {event.get('Type')} {event.get('Action')} {actor.get('ID', '')}"
    return f"{line} ({attributes})" if attributes else line


@click.command()
@click.option("--since", help="Show events since this time (10m, unix seconds, RFC 3339).")
@click.option("--until", help="Stream events until this time.")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter key=value (type, event, ...).")
@click.option("--format", "output_format", type=click.Choice(["json"]), default=None)
@click.pass_context
def events(ctx: click.Context, since: str | None, until: str | None, filters: tuple[str, ...],
           output_format: str | None) -> None:
    """Stream events from the daemon."""
    grouped: dict[str, dict[str, bool]] = {}
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: filters look like key=value", param_hint="--filter")
        grouped.setdefault(key, {})[value] = True
    params = {
        "since": to_api_timestamp(since) if since else None,
        "until": to_api_timestamp(until) if until else None,
        "filters": json.dumps(grouped) if grouped else None,
    }
    with api_errors():
        response = client(ctx).request("GET", "/events", params, stream=True)
        try:
            for event in response.iter_json():
                click.echo(json.dumps(event) if output_format == "json" else format_event(event))
        except KeyboardInterrupt:
            pass


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--local", is_flag=True,
              help="Inspect this Python environment instead of asking the daemon.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool, local: bool) -> None:
    """List plugin distributions, their drivers, and whether each works here."""
    if local:
        from dockyard.daemon.pluginmanager import PluginManager

        report = PluginManager().load_all().report()
    else:
        with api_errors():
            report = client(ctx).get_json("/dockyard/plugins")
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    rows = [("DISTRIBUTION", "VERSION", "KIND", "DRIVER", "STATUS")]
    notes = []
    for dist in report:
        if dist["Status"] != "loaded":
            rows.append((dist["Distribution"] or "-", dist["Version"] or "-", "-", "-",
                         dist["Status"]))
            notes.append(f"{dist['Distribution'] or 'conflict'}: {dist['Error']}")
            continue
        for driver in dist["Drivers"]:
            rows.append((dist["Distribution"], dist["Version"], driver["Kind"], driver["Name"],
                         driver["Status"]))
            if driver["Reason"]:
                notes.append(f"{driver['Kind']} driver {driver['Name']}: {driver['Reason']}")
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if notes:
        click.echo()
        for note in notes:
            click.echo(note)


@click.command("df")
@click.option("-v", "--verbose", is_flag=True, help="Show detailed information on space usage.")
@click.pass_context
def system_df(ctx, verbose):
    """Show disk usage."""
    with api_errors():
        usage = client(ctx).get_json("/system/df")
    images_list = usage.get("Images") or []
    unique = sum(i["Size"] - max(i["SharedSize"], 0) for i in images_list)
    shared = usage.get("LayersSize", 0) - unique
    active = sum(1 for i in images_list if i.get("Containers", 0) > 0)
    rows = [("TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"),
            ("Images", str(len(images_list)), str(active), human_size(usage.get("LayersSize", 0)),
             human_size(sum(i["Size"] for i in images_list if not i.get("Containers")) - max(shared, 0)
                        if images_list else 0)),
            ("Containers", "0", "0", "0B", "0B"),
            ("Local Volumes", "0", "0", "0B", "0B"),
            ("Build Cache", "0", "0", "0B", "0B")]
    click.echo(table(rows))
    if verbose:
        click.echo("\nImages space usage:\n")
        detail = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE",
                   "CONTAINERS")]
        for image in images_list:
            repo, _, tag_name = (image["RepoTags"] or ["<none>:<none>"])[0].rpartition(":")
            detail.append((repo, tag_name, image["Id"].split(":", 1)[-1][:12], ago(image["Created"]),
                           human_size(image["Size"]), human_size(image["SharedSize"]),
                           human_size(image["Size"] - image["SharedSize"]), str(image["Containers"])))
        click.echo(table(detail))


system = click.Group("system", help="Manage dockyard.")
system.add_command(system_df, "df")
system.add_command(info, "info")
system.add_command(events, "events")
