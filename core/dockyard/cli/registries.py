"""Registry commands: pull, push, login, logout, search.

This module owns the client side of registry credentials, as the docker CLI keeps them:
`auths` in a Docker-compatible config.json (`$DOCKER_CONFIG/config.json`, default
`~/.docker/config.json`, mode 0600, every other key left as found), and the
`X-Registry-Auth` header built from it for the registry an image reference names.
Credential helpers (`credsStore`, `credHelpers`) are not supported: a registry that would
need one is reached anonymously, and the user is told so.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import click

from dockyard.cli.common import api_errors, client, filters_json
from dockyard.cli.format import table
from dockyard.cli.progress import display
from dockyard.client import APIError, Client
from dockyard.formats.reference import DEFAULT_DOMAIN
from dockyard.formats.registry_auth import registry_host

# Docker Hub's key in config.json, kept from the days of the v1 index.
HUB_KEY = "https://index.docker.io/v1/"


# -- config.json ------------------------------------------------------------------------

def config_path() -> Path:
    directory = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return Path(directory) / "config.json"


def load_config(path: Path | None = None) -> dict:
    """The whole config.json as a dict ({} when there is none)."""
    path = path or config_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None
    try:
        config = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise click.ClickException(f"{path} is not valid JSON ({exc}): fix or remove it") from None
    if not isinstance(config, dict):
        raise click.ClickException(f"{path} does not hold a JSON object: fix or remove it")
    return config


def save_config(config: dict, path: Path | None = None) -> None:
    """Write config.json atomically, readable by its owner only (it holds passwords)."""
    path = path or config_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            os.fchmod(file.fileno(), 0o600)
            json.dump(config, file, indent="\t")
            file.write("\n")
        os.replace(temporary, path)
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from None


def server_key(server: str | None) -> str:
    """The key a server's credentials are stored under: Docker Hub's historical URL, or
    the server as typed without scheme and path (`127.0.0.1:5000`)."""
    host = registry_host(server or "")
    return HUB_KEY if host == DEFAULT_DOMAIN else host


def reference_registry(name: str) -> str:
    """The config.json key for the registry of an image reference: its first path
    component if that names a host ("." or ":" in it, or "localhost"), else Docker Hub."""
    first, slash, _ = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return server_key(first)
    return HUB_KEY


def _entry(config: dict, key: str) -> tuple[str | None, dict | None]:
    """The auths entry for `key`, also under the spellings older clients stored
    (`http://host`, `https://host/v2/`): (its key, the entry)."""
    auths = config.get("auths") or {}
    if key in auths:
        return key, auths[key]
    for stored, entry in auths.items():
        if server_key(stored) == key:
            return stored, entry
    return None, None


def _helper_for(config: dict, key: str) -> str | None:
    helpers = config.get("credHelpers") or {}
    hosts = [registry_host(key)] + (["index.docker.io"] if key == HUB_KEY else [])
    helper = helpers.get(key) or next((helpers[h] for h in hosts if helpers.get(h)), None)
    return helper or config.get("credsStore") or None


def stored_credentials(config: dict, key: str) -> dict | None:
    """An AuthConfig ({username, password | identitytoken, serveraddress}) from
    config.json for `key`; None when there is none (anonymous)."""
    _, entry = _entry(config, key)
    entry = entry if isinstance(entry, dict) else {}
    username, password = entry.get("username", ""), entry.get("password", "")
    if entry.get("auth") and not username:
        try:
            username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            click.echo(f"WARNING: the credentials for {key} in {config_path()} cannot be decoded: "
                       f"pulling and pushing anonymously", err=True)
            return None
    token = entry.get("identitytoken", "")
    if token:
        return {"username": username, "identitytoken": token, "serveraddress": key}
    if username:
        return {"username": username, "password": password, "serveraddress": key}
    helper = _helper_for(config, key)
    if helper:
        click.echo(f"WARNING: {config_path()} names the credential helper docker-credential-{helper} "
                   f"for {key}; dockyard does not support credential helpers, so it goes on "
                   f"anonymously (log in with `dockyard login` to store credentials in the file)",
                   err=True)
    return None


def registry_auth_header(auth: dict | None) -> str | None:
    """X-Registry-Auth: base64url of the JSON AuthConfig, as the docker CLI sends it."""
    if not auth:
        return None
    return base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()


def auth_for(name: str) -> str | None:
    """The X-Registry-Auth header for the registry of the image reference `name`."""
    return registry_auth_header(stored_credentials(load_config(), reference_registry(name)))


# -- sending X-Registry-Auth -------------------------------------------------------------

# -- pull and push -----------------------------------------------------------------------

def _parse(name: str):
    from dockyard.formats.reference import InvalidReference, parse_normalized

    try:
        return parse_normalized(name)
    except InvalidReference as exc:
        raise click.ClickException(f"invalid reference format: {name}: {exc}") from None


def pull_image(api: Client, name: str, all_tags: bool = False, platform: str | None = None,
               quiet: bool = False, out=None) -> str:
    """Pull `name` with the stored credentials, drawing progress on `out` (stdout);
    returns the reference pulled (`docker.io/library/busybox:latest`). Daemon errors
    raise APIError; errors in the stream exit 1."""
    out = out or sys.stdout
    reference = _parse(name)
    if all_tags:
        if reference.tag or reference.digest:
            raise click.UsageError("tag can't be used with --all-tags/-a")
    elif not (reference.tag or reference.digest):
        reference = reference.with_default_tag()
        if not quiet:
            out.write(f"Using default tag: {reference.tag}\n")
    params = {"fromImage": reference.familiar_name, "tag": reference.digest or reference.tag or "",
              "platform": platform}
    response = api.request("POST", "/images/create", params, stream=True,
                           headers={"X-Registry-Auth": auth_for(name)})
    display(response.iter_json(), out, quiet)
    return str(reference)


@click.command("pull")
@click.argument("name")
@click.option("-a", "--all-tags", is_flag=True, help="Download all tagged images in the repository.")
@click.option("--platform", help="Set platform if server is multi-platform capable (os/arch[/variant]).")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output.")
@click.pass_context
def pull(ctx, name, all_tags, platform, quiet):
    """Download an image from a registry (NAME[:TAG|@DIGEST])."""
    with api_errors():
        pulled = pull_image(client(ctx), name, all_tags, platform, quiet)
    click.echo(pulled)


@click.command("push")
@click.argument("name")
@click.option("-a", "--all-tags", is_flag=True, help="Push all tags of an image to the repository.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output.")
@click.pass_context
def push(ctx, name, all_tags, quiet):
    """Upload an image to a registry (NAME[:TAG])."""
    reference = _parse(name)
    if reference.digest:
        raise click.UsageError("cannot push a digest reference")
    if all_tags and reference.tag:
        raise click.UsageError("tag can't be used with --all-tags/-a")
    if not all_tags and not reference.tag:
        reference = reference.with_default_tag()
        if not quiet:
            click.echo(f"Using default tag: {reference.tag}")
    with api_errors():
        response = client(ctx).request("POST", f"/images/{reference.familiar_name}/push",
                                       {"tag": reference.tag or ""}, stream=True,
                                       headers={"X-Registry-Auth": auth_for(name)})
        display(response.iter_json(), sys.stdout, quiet)
    if quiet:
        click.echo(str(reference))


# -- login and logout --------------------------------------------------------------------

def _read_password_stdin() -> str:
    password = sys.stdin.read()
    return password.rstrip("\n").rstrip("\r")


def _try_login(api: Client, key: str, username: str, password: str) -> dict:
    return api.request("POST", "/auth", body={"username": username, "password": password,
                                              "serveraddress": key}).json() or {}


@click.command("login")
@click.argument("server", required=False)
@click.option("-u", "--username", help="Username.")
@click.option("-p", "--password", help="Password (prefer --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Take the password from stdin.")
@click.pass_context
def login(ctx, server, username, password, password_stdin):
    """Log in to a registry (Docker Hub when no SERVER is given).

    The daemon checks the credentials against the registry; on success they are stored
    in $DOCKER_CONFIG/config.json (default ~/.docker/config.json) for pull and push."""
    key = server_key(server)
    if password_stdin:
        if password:
            raise click.UsageError("--password and --password-stdin are mutually exclusive")
        if not username:
            raise click.UsageError("Must provide --username with --password-stdin")
        password = _read_password_stdin()
    elif password:
        click.echo("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", err=True)
    config = load_config()
    api = client(ctx)
    with api_errors():
        if not username and not password:
            stored = stored_credentials(config, key)
            if stored and stored.get("password"):
                click.echo("Authenticating with existing credentials...")
                try:
                    _try_login(api, key, stored["username"], stored["password"])
                    click.echo("Login Succeeded")
                    return
                except APIError as exc:  # fall back to asking, as docker does
                    click.echo(f"Login did not succeed, error: {exc.message}", err=True)
        if not (username and password) and not sys.stdin.isatty():
            raise click.ClickException("Cannot perform an interactive login from a non TTY device")
        if not username:
            username = click.prompt("Username").strip()
        if not password:
            password = click.prompt("Password", hide_input=True, default="", show_default=False)
        if not username or not password:
            raise click.ClickException("Username and password are required")
        answer = _try_login(api, key, username, password)
    token = answer.get("IdentityToken") or ""
    entry = {"auth": base64.b64encode(f"{username}:{'' if token else password}".encode()).decode()}
    if token:
        entry["identitytoken"] = token
    auths = config.get("auths") if isinstance(config.get("auths"), dict) else {}
    stale, _ = _entry(config, key)
    if stale and stale != key:
        del auths[stale]
    auths[key] = entry
    config["auths"] = auths
    save_config(config)
    if config.get("credsStore") or (config.get("credHelpers") or {}):
        click.echo(f"WARNING: dockyard does not use credential helpers: the credentials are stored "
                   f"in {config_path()}", err=True)
    else:
        click.echo(f"WARNING! Your password will be stored unencrypted in {config_path()}.", err=True)
    click.echo(answer.get("Status") or "Login Succeeded")


@click.command("logout")
@click.argument("server", required=False)
def logout(server):
    """Log out from a registry (Docker Hub when no SERVER is given)."""
    key = server_key(server)
    config = load_config()
    auths = config.get("auths") if isinstance(config.get("auths"), dict) else {}
    stale = [stored for stored in auths if stored == key or server_key(stored) == key]
    if not stale:
        click.echo(f"Not logged in to {key}")
        return
    click.echo(f"Removing login credentials for {key}")
    for stored in stale:
        del auths[stored]
    config["auths"] = auths
    save_config(config)


# -- search ------------------------------------------------------------------------------

@click.command("search")
@click.argument("term")
@click.option("--limit", type=int, default=None, help="Max number of search results.")
@click.option("-f", "--filter", "filters", multiple=True,
              help="Filter output (is-official=true, stars=3).")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.pass_context
def search(ctx, term, limit, filters, no_trunc):
    """Search a registry for images (Docker Hub, or host/term for another registry)."""
    with api_errors():
        results = client(ctx).request(
            "GET", "/images/search", {"term": term, "limit": limit, "filters": filters_json(filters)},
            headers={"X-Registry-Auth": auth_for(term)}).json()
    rows = [("NAME", "DESCRIPTION", "STARS", "OFFICIAL")]
    for result in results or []:
        description = " ".join(str(result.get("description") or "").split())
        if not no_trunc and len(description) > 45:
            description = description[:44] + "…"
        rows.append((str(result.get("name", "")), description, str(result.get("star_count", 0)),
                     "[OK]" if result.get("is_official") else ""))
    click.echo(table(rows))
