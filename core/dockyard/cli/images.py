"""Image commands: images, image (ls, inspect, history, tag, rm, prune, import, save,
load, bootstrap), and the docker-style top-level shortcuts rmi, tag, history, import,
save, load."""

from __future__ import annotations

import json
import sys
from datetime import datetime

import click

from dockyard.cli.build import build
from dockyard.cli.common import api_errors, client, filters_json
from dockyard.cli.format import ago, human_size, table
from dockyard.cli.registries import pull, push
from dockyard.client import APIError


def _short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


def _split_repo_tag(name: str) -> tuple[str, str | None]:
    """`host:5000/a/b:1.0` -> ("host:5000/a/b", "1.0"); a colon before a slash is a port."""
    if "@" in name:
        return name, None
    repo, sep, tag = name.rpartition(":")
    if sep and "/" not in tag:
        return repo, tag
    return name, None


def _print_stream(response, quiet: bool = False) -> None:
    failed = None
    for message in response.iter_json():
        if "error" in message:
            failed = message["error"]
        elif "stream" in message and not quiet:
            click.echo(message["stream"], nl=False)
        elif "status" in message and not quiet:
            click.echo(message["status"])
    if failed:
        click.echo(failed, err=True)
        sys.exit(1)


@click.command("images")
@click.argument("reference", required=False)
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all images.")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--digests", is_flag=True, help="Show digests.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output (key=value).")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def images(ctx, reference, show_all, quiet, digests, no_trunc, filters, output_format):
    """List images."""
    if reference:
        filters = (*filters, f"reference={reference}")
    with api_errors():
        listed = client(ctx).get_json("/images/json",
                                      {"all": int(show_all), "filters": filters_json(filters)})
    if quiet:
        seen = []
        for image in listed:
            shown = image["Id"] if no_trunc else _short(image["Id"])
            if shown not in seen:
                seen.append(shown)
        click.echo("\n".join(seen)) if seen else None
        return
    if output_format == "json":
        for image in listed:
            click.echo(json.dumps(image))
        return
    header = ("REPOSITORY", "TAG") + (("DIGEST",) if digests else ()) + ("IMAGE ID", "CREATED", "SIZE")
    rows = [header]
    for image in listed:
        shown_id = image["Id"] if no_trunc else _short(image["Id"])
        names = [tag.rpartition(":")[::2] for tag in image["RepoTags"] or []] or [("<none>", "<none>")]
        digest = (image["RepoDigests"] or ["<none>@<none>"])[0].partition("@")[2]
        for repo, tag in names:
            row = (repo, tag) + ((digest,) if digests else ())
            rows.append(row + (shown_id, ago(image["Created"]), human_size(image["Size"])))
    click.echo(table(rows))


@click.command("inspect")
@click.option("-f", "--format", "output_format", help="A Python format string over the image's fields.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def image_inspect(ctx, output_format, names):
    """Display detailed information on one or more images."""
    from dockyard.cli.containers import inspect

    ctx.invoke(inspect, output_format=output_format, kind="image", size=False, names=names)


@click.command("history")
@click.argument("name")
@click.option("-H", "--human/--no-human", default=True, help="Print sizes and dates in human form.")
@click.option("--no-trunc", is_flag=True)
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.pass_context
def history(ctx, name, human, no_trunc, quiet):
    """Show the history of an image."""
    with api_errors():
        entries = client(ctx).get_json(f"/images/{name}/history")
    if quiet:
        click.echo("\n".join(e["Id"] if no_trunc else _short(e["Id"]) for e in entries))
        return
    rows = [("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT")]
    for entry in entries:
        shown = entry["Id"] if no_trunc or entry["Id"] == "<missing>" else _short(entry["Id"])
        created_by = entry["CreatedBy"] if no_trunc or len(entry["CreatedBy"]) <= 45 \
            else entry["CreatedBy"][:44] + "…"
        created = ago(entry["Created"]) if human else datetime.fromtimestamp(entry["Created"]).isoformat()
        size = human_size(entry["Size"]) if human else str(entry["Size"])
        rows.append((shown, created, created_by, size, entry["Comment"]))
    click.echo(table(rows))


@click.command("tag")
@click.argument("source")
@click.argument("target")
@click.pass_context
def tag(ctx, source, target):
    """Create a tag TARGET that refers to SOURCE."""
    repo, tag_name = _split_repo_tag(target)
    with api_errors():
        client(ctx).request("POST", f"/images/{source}/tag", {"repo": repo, "tag": tag_name}).read()


@click.command("rmi")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Force removal of the image.")
@click.option("--no-prune", is_flag=True, help="Do not delete untagged parents.")
@click.pass_context
def rmi(ctx, names, force, no_prune):
    """Remove one or more images."""
    failed = False
    for name in names:
        try:
            results = client(ctx).request("DELETE", f"/images/{name}",
                                          {"force": int(force), "noprune": int(no_prune)}).json()
        except APIError as exc:
            click.echo(f"Error response from daemon: {exc.message}", err=True)
            failed = True
            continue
        for result in results:
            for key, value in result.items():
                click.echo(f"{key}: {value}")
    if failed:
        sys.exit(1)


@click.command("prune")
@click.option("-a", "--all", "prune_all", is_flag=True, help="Remove all unused images, not just dangling.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (until=, label=).")
@click.pass_context
def prune(ctx, prune_all, force, filters):
    """Remove unused images."""
    warning = ("WARNING! This will remove all images without at least one container associated to them."
               if prune_all else "WARNING! This will remove all dangling images.")
    if not force and not click.confirm(f"{warning}\nAre you sure you want to continue?", default=False):
        return
    if prune_all:
        filters = (*filters, "dangling=false")
    with api_errors():
        report = client(ctx).request("POST", "/images/prune", {"filters": filters_json(filters)}).json()
    deleted = report.get("ImagesDeleted") or []
    if deleted:
        click.echo("Deleted Images:")
        for entry in deleted:
            for key, value in entry.items():
                click.echo(f"{key.lower()}: {value}")
        click.echo()
    click.echo(f"Total reclaimed space: {human_size(report.get('SpaceReclaimed', 0))}")


@click.command("import")
@click.argument("source")
@click.argument("repository", required=False)
@click.option("-c", "--change", "changes", multiple=True, help="Apply a Dockerfile instruction.")
@click.option("-m", "--message", default="", help="Commit message for the imported image.")
@click.pass_context
def import_image(ctx, source, repository, changes, message):
    """Import a tarball (file, URL or - for stdin) as a one-layer image."""
    repo, tag_name = _split_repo_tag(repository) if repository else (None, None)
    params = {"repo": repo, "tag": tag_name, "changes": list(changes) or None, "message": message or None}
    with api_errors():
        if source == "-" or not source.startswith(("http://", "https://")):
            try:
                body = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115
            except OSError as exc:
                raise click.ClickException(f"cannot read {source}: {exc.strerror}") from None
            with body:
                response = client(ctx).request("POST", "/images/create", {**params, "fromSrc": "-"},
                                               body=body, stream=True)
                _print_stream(response)
        else:
            response = client(ctx).request("POST", "/images/create", {**params, "fromSrc": source},
                                           stream=True)
            _print_stream(response)


@click.command("save")
@click.argument("names", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file, not stdout.")
@click.option("--format", "archive_format", type=click.Choice(["docker", "oci"]), default="docker",
              help="docker: docker-archive that is also an OCI layout; oci: OCI layout, blobs as stored.")
@click.pass_context
def save(ctx, names, output, archive_format):
    """Save one or more images to a tar archive."""
    if output is None and sys.stdout.isatty():
        raise click.ClickException("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    params = {"names": list(names), "format": "oci" if archive_format == "oci" else None}
    with api_errors():
        response = client(ctx).request("GET", "/images/get", params, stream=True)
        target = open(output + ".tmp", "wb") if output else sys.stdout.buffer  # noqa: SIM115
        try:
            for chunk in response.iter_chunks():
                target.write(chunk)
        except BaseException:
            if output:
                target.close()
                import os

                os.unlink(output + ".tmp")
            raise
        if output:
            target.close()
            import os

            os.replace(output + ".tmp", output)


@click.command("load")
@click.option("-i", "--input", "source", type=click.Path(dir_okay=False, exists=True),
              help="Read from a tar archive file, not stdin.")
@click.option("-q", "--quiet", is_flag=True)
@click.pass_context
def load(ctx, source, quiet):
    """Load images from a tar archive (docker save output or an OCI layout, may be compressed)."""
    if source is None and sys.stdin.isatty():
        raise click.ClickException("requested load from stdin, but stdin is empty")
    body = open(source, "rb") if source else sys.stdin.buffer  # noqa: SIM115
    with body, api_errors():
        response = client(ctx).request("POST", "/images/load", {"quiet": int(quiet)}, body=body,
                                       stream=True)
        _print_stream(response)


@click.command("bootstrap")
@click.argument("what", type=click.Choice(["busybox"]))
@click.option("-t", "--tag", "target", default="busybox:latest", show_default=True)
@click.option("--busybox", "binary", help="The static busybox binary (default: busybox on PATH).")
@click.pass_context
def bootstrap(ctx, what, target, binary):
    """Build a base image offline from the host's static busybox."""
    from dockyard.cli.bootstrap import BootstrapError, find_busybox, rootfs_tar

    try:
        busybox = find_busybox(binary)
        layer = rootfs_tar(busybox)
    except BootstrapError as exc:
        raise click.ClickException(str(exc)) from None
    repo, tag_name = _split_repo_tag(target)
    params = {"fromSrc": "-", "repo": repo, "tag": tag_name, "changes": ['CMD ["sh"]'],
              "message": f"bootstrapped from {busybox}"}
    with layer, api_errors():
        response = client(ctx).request("POST", "/images/create", params, body=layer, stream=True)
        _print_stream(response)


image = click.Group("image", help="Manage images.")
image.add_command(images, "ls")
image.add_command(image_inspect, "inspect")
image.add_command(history, "history")
image.add_command(tag, "tag")
image.add_command(rmi, "rm")
image.add_command(prune, "prune")
image.add_command(import_image, "import")
image.add_command(save, "save")
image.add_command(load, "load")
image.add_command(bootstrap, "bootstrap")
image.add_command(pull, "pull")
image.add_command(push, "push")
image.add_command(build, "build")
