"""The registry commands of our CLI: pull, push, login, logout, search.

Unit tests (no root) for config.json, the X-Registry-Auth header and the progress
display; then our CLI end to end against a real dockyardd and a real `docker-registry`
behind htpasswd on 127.0.0.1. Every test points DOCKER_CONFIG at a directory of its own:
the user's ~/.docker is never read or written.
"""

from __future__ import annotations

import base64
import io
import json
import os
import stat

import pytest
from click.testing import CliRunner
from conftest import dockyard_cli
from dockyard.cli import registries
from dockyard.cli.progress import ProgressDisplay, StreamError, bar
from dockyard.formats.registry_auth import decode_registry_auth
from dockyard.plugin.testing.registry import RegistryServer, bcrypt_hash, registry_binary


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    directory = tmp_path / "docker-config"
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    return directory / "config.json"


def encoded(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


# -- config.json and the auth header (no daemon) ------------------------------------------

def test_config_path_follows_docker_config(docker_config, monkeypatch):
    assert registries.config_path() == docker_config
    monkeypatch.delenv("DOCKER_CONFIG")
    monkeypatch.setenv("HOME", "/nonexistent-home")
    assert str(registries.config_path()) == "/nonexistent-home/.docker/config.json"


@pytest.mark.parametrize(("server", "key"), [
    (None, "https://index.docker.io/v1/"),
    ("docker.io", "https://index.docker.io/v1/"),
    ("index.docker.io", "https://index.docker.io/v1/"),
    ("https://index.docker.io/v1/", "https://index.docker.io/v1/"),
    ("127.0.0.1:5000", "127.0.0.1:5000"),
    ("http://127.0.0.1:5000/", "127.0.0.1:5000"),
    ("https://registry.example.com/v2/", "registry.example.com"),
])
def test_server_keys_are_the_docker_clis(server, key):
    assert registries.server_key(server) == key


@pytest.mark.parametrize(("name", "key"), [
    ("busybox", "https://index.docker.io/v1/"),
    ("busybox:1.36", "https://index.docker.io/v1/"),
    ("library/busybox", "https://index.docker.io/v1/"),
    ("docker.io/library/busybox", "https://index.docker.io/v1/"),
    ("127.0.0.1:5000/a/b:v1", "127.0.0.1:5000"),
    ("localhost/app", "localhost"),
    ("registry.example.com/team/app@sha256:" + "a" * 64, "registry.example.com"),
])
def test_the_registry_of_a_reference(name, key):
    assert registries.reference_registry(name) == key


def test_a_missing_config_is_empty_and_saving_creates_it_private(docker_config):
    assert registries.load_config() == {}
    registries.save_config({"auths": {}})
    assert stat.S_IMODE(docker_config.stat().st_mode) == 0o600
    assert json.loads(docker_config.read_text()) == {"auths": {}}


def test_saving_tightens_an_existing_files_mode(docker_config):
    docker_config.parent.mkdir()
    docker_config.write_text("{}")
    docker_config.chmod(0o644)
    registries.save_config({"auths": {}})
    assert stat.S_IMODE(docker_config.stat().st_mode) == 0o600


def test_a_broken_config_is_named(docker_config):
    docker_config.parent.mkdir()
    docker_config.write_text("{not json")
    with pytest.raises(Exception, match="config.json is not valid JSON"):
        registries.load_config()


def test_stored_credentials_make_an_auth_header_the_daemon_reads(docker_config):
    config = {"auths": {"127.0.0.1:5000": {"auth": encoded("alice", "pa:ss")}}}
    auth = registries.stored_credentials(config, "127.0.0.1:5000")
    assert auth == {"username": "alice", "password": "pa:ss", "serveraddress": "127.0.0.1:5000"}
    header = registries.registry_auth_header(auth)
    assert json.loads(base64.urlsafe_b64decode(header)) == auth
    credentials = decode_registry_auth(header)
    assert (credentials.username, credentials.password) == ("alice", "pa:ss")


def test_auth_for_an_image_reads_its_registrys_entry(docker_config):
    registries.save_config({"auths": {"127.0.0.1:5000": {"auth": encoded("alice", "pw")},
                                      "https://index.docker.io/v1/": {"auth": encoded("hub", "hubpw")}}})
    for name, user in (("127.0.0.1:5000/a/b:v1", "alice"), ("busybox", "hub"), ("library/x:1", "hub")):
        credentials = decode_registry_auth(registries.auth_for(name))
        assert credentials.username == user, name
    assert registries.auth_for("127.0.0.1:6000/a/b") is None


def test_older_spellings_of_a_server_are_found(docker_config):
    config = {"auths": {"https://127.0.0.1:5000/v2/": {"auth": encoded("alice", "pw")}}}
    assert registries.stored_credentials(config, "127.0.0.1:5000")["username"] == "alice"


def test_an_identity_token_is_sent_instead_of_a_password(docker_config):
    config = {"auths": {"r.example.com": {"auth": encoded("alice", ""), "identitytoken": "tok"}}}
    auth = registries.stored_credentials(config, "r.example.com")
    assert auth == {"username": "alice", "identitytoken": "tok", "serveraddress": "r.example.com"}
    assert decode_registry_auth(registries.registry_auth_header(auth)).identity_token == "tok"


@pytest.mark.parametrize("config", [
    {"credsStore": "desktop", "auths": {"127.0.0.1:5000": {}}},
    {"credHelpers": {"127.0.0.1:5000": "pass"}},
])
def test_credential_helpers_are_refused_clearly_and_pulls_go_anonymous(docker_config, config, capsys):
    assert registries.stored_credentials(config, "127.0.0.1:5000") is None
    err = capsys.readouterr().err
    assert "does not support credential helpers" in err and "anonymously" in err


def test_no_header_without_credentials(docker_config):
    assert registries.registry_auth_header(None) is None
    assert registries.auth_for("busybox") is None


def test_logout_removes_only_that_entry(docker_config):
    registries.save_config({"auths": {"127.0.0.1:5000": {"auth": encoded("a", "b")},
                                      "http://127.0.0.1:5000": {"auth": encoded("a", "b")},
                                      "other.example.com": {"auth": encoded("c", "d")}},
                            "psFormat": "table {{.ID}}"})
    result = CliRunner().invoke(registries.logout, ["127.0.0.1:5000"])
    assert result.exit_code == 0 and result.output == "Removing login credentials for 127.0.0.1:5000\n"
    config = json.loads(docker_config.read_text())
    assert config == {"auths": {"other.example.com": {"auth": encoded("c", "d")}},
                      "psFormat": "table {{.ID}}"}
    result = CliRunner().invoke(registries.logout, ["127.0.0.1:5000"])
    assert result.exit_code == 0 and result.output == "Not logged in to 127.0.0.1:5000\n"
    result = CliRunner().invoke(registries.logout, [])
    assert result.output == "Not logged in to https://index.docker.io/v1/\n"


# -- progress display (no daemon) -----------------------------------------------------------

PULL = [
    {"status": "Pulling from library/busybox", "id": "latest", "progressDetail": {}},
    {"status": "Pulling fs layer", "id": "aaa", "progressDetail": {}},
    {"status": "Pulling fs layer", "id": "bbb", "progressDetail": {}},
    {"status": "Downloading", "id": "aaa", "progressDetail": {"current": 100, "total": 5000000},
     "progress": "[>   ] 100B/5MB"},
    {"status": "Downloading", "id": "aaa", "progressDetail": {"current": 1200000, "total": 5000000},
     "progress": "[==> ] 1.2MB/5MB"},
    {"status": "Download complete", "id": "aaa", "progressDetail": {}},
    {"status": "Pull complete", "id": "aaa", "progressDetail": {}},
    {"status": "Digest: sha256:abc"},
]


def test_progress_off_a_terminal_prints_each_status_once():
    out = io.StringIO()
    ProgressDisplay(out, terminal=False).show(PULL)
    assert out.getvalue().splitlines() == [
        "latest: Pulling from library/busybox", "aaa: Pulling fs layer", "bbb: Pulling fs layer",
        "aaa: Downloading", "aaa: Download complete", "aaa: Pull complete", "Digest: sha256:abc"]


def test_progress_on_a_terminal_redraws_each_layers_line():
    out = io.StringIO()
    ProgressDisplay(out, terminal=True).show(PULL)
    text = out.getvalue()
    # three layer lines drawn once each, then "aaa" (second of three) redrawn two lines up
    assert text.count("\n") == 4
    assert "\x1b[2A\x1b[2K\raaa: Downloading [" in text
    assert "1.2MB/5MB" in text
    assert "\x1b[2A\x1b[2K\raaa: Pull complete\x1b[2B\r" in text
    assert text.endswith("\x1b[2K\rDigest: sha256:abc\n")


def test_a_line_without_id_starts_a_new_block_of_layers():
    out = io.StringIO()
    display = ProgressDisplay(out, terminal=True)
    display.show([{"status": "Waiting", "id": "aaa"}, {"status": "Digest: x"},
                  {"status": "Waiting", "id": "aaa"}])
    assert "\x1b[" not in out.getvalue().replace("\x1b[2K", "")


def test_an_error_in_the_stream_stops_the_display():
    with pytest.raises(StreamError, match="blob unknown"):
        ProgressDisplay(io.StringIO(), terminal=False).show(
            [{"status": "Pulling fs layer", "id": "a"},
             {"error": "blob unknown", "errorDetail": {"message": "blob unknown"}}])


def test_bars_fit_the_width():
    assert bar(2500000, 5000000, 80).startswith("[" + "=" * 25 + ">")
    assert bar(5000000, 5000000, 80).startswith("[" + "=" * 50 + "]")
    assert bar(100, 5000000, 15) == "100B/5MB"


# -- end to end: our CLI, a real daemon, a real registry ---------------------------------

USERS = {"u": "p4ss"}


@pytest.fixture(scope="module")
def registry():
    if registry_binary() is None:
        pytest.skip("docker-registry is not installed (apt install docker-registry)")
    if bcrypt_hash("probe") is None:
        pytest.skip("no bcrypt in this system's crypt(3): cannot write htpasswd entries")
    with RegistryServer(users=USERS) as server:
        yield server


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    from dockyard.plugin.testing.daemon import DaemonProcess

    daemon = DaemonProcess(tmp_path_factory.mktemp("clireg")).start()
    try:
        dockyard_cli("image", "bootstrap", "busybox", "--tag", "busybox:latest", host=daemon.host)
        yield daemon
    finally:
        for container in daemon.client().get_json("/containers/json", {"all": 1}):
            daemon.client().request("DELETE", f"/containers/{container['Id']}", {"force": 1}).read()
        daemon.teardown()


@pytest.fixture
def cli(daemon, tmp_path):
    """Our CLI against the test daemon, with a config dir of this test's own."""
    config_dir = tmp_path / "docker-config"

    def run(*args, check=True, input=None):
        import subprocess
        import sys

        result = subprocess.run([sys.executable, "-m", "dockyard.cli", "-H", daemon.host, *args],
                                capture_output=True, text=True, timeout=120, input=input,
                                env={**os.environ, "DOCKER_CONFIG": str(config_dir)})
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    run.config = config_dir / "config.json"
    return run


def login(cli, registry):
    result = cli("login", registry.address, "-u", "u", "--password-stdin", input="p4ss\n")
    assert result.stdout.strip() == "Login Succeeded"


@pytest.mark.root
def test_login_checks_the_password_and_stores_it_privately(cli, registry):
    cli.config.parent.mkdir()
    cli.config.write_text(json.dumps({"psFormat": "table {{.ID}}", "auths": {"x.example.com": {}}}))
    wrong = cli("login", registry.address, "-u", "u", "-p", "nope", check=False)
    assert wrong.returncode == 1
    assert "Error response from daemon" in wrong.stderr and "unauthorized" in wrong.stderr
    assert "insecure" in wrong.stderr  # -p on the command line is warned about
    assert json.loads(cli.config.read_text()) == {"psFormat": "table {{.ID}}", "auths": {"x.example.com": {}}}

    login(cli, registry)
    config = json.loads(cli.config.read_text())
    assert config["psFormat"] == "table {{.ID}}" and config["auths"]["x.example.com"] == {}
    assert config["auths"][registry.address] == {"auth": encoded("u", "p4ss")}
    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600


@pytest.mark.root
def test_login_without_a_terminal_needs_the_credentials(cli, registry):
    result = cli("login", registry.address, check=False)
    assert result.returncode == 1 and "non TTY device" in result.stderr
    result = cli("login", registry.address, "--password-stdin", check=False, input="p4ss\n")
    assert result.returncode == 2 and "--username" in result.stderr


@pytest.mark.root
def test_push_rmi_pull_run(cli, registry):
    login(cli, registry)
    name = f"{registry.address}/cli/busybox:v1"
    cli("tag", "busybox:latest", name)
    pushed = cli("push", name)
    assert f"The push refers to repository [{registry.address}/cli/busybox]" in pushed.stdout
    assert "v1: digest: sha256:" in pushed.stdout
    assert "\x1b[" not in pushed.stdout  # not a terminal: no cursor movement, no bars
    cli("rmi", name)
    pulled = cli("pull", name)
    assert "Digest: sha256:" in pulled.stdout
    assert pulled.stdout.splitlines()[-1] == name
    assert cli("run", "--rm", name, "echo", "pulled and ran").stdout == "pulled and ran\n"


@pytest.mark.root
def test_pull_quiet_prints_only_the_reference(cli, registry):
    login(cli, registry)
    name = f"{registry.address}/cli/quiet"
    cli("tag", "busybox:latest", name)
    assert cli("image", "push", "-q", name).stdout == f"{name}:latest\n"
    cli("rmi", f"{name}:latest")
    result = cli("pull", "-q", name)
    assert result.stdout == f"{name}:latest\n"
    assert cli("images", "-q", name).stdout.strip()


@pytest.mark.root
def test_run_pulls_a_missing_image(cli, registry):
    login(cli, registry)
    name = f"{registry.address}/cli/missing:v2"
    cli("tag", "busybox:latest", name)
    cli("push", "-q", name)
    cli("rmi", name)
    never = cli("run", "--rm", "--pull", "never", name, "true", check=False)
    assert never.returncode == 125 and "No such image" in never.stderr
    assert "Unable to find image" not in never.stderr
    result = cli("run", "--rm", name, "echo", "hello")
    assert result.stdout == "hello\n"
    assert f"Unable to find image '{name}' locally" in result.stderr
    assert "Digest: sha256:" in result.stderr  # the pull's progress goes to stderr
    created = cli("create", "--pull", "always", name)
    assert "Unable to find image" not in created.stderr and "Digest: sha256:" in created.stderr
    cli("rm", created.stdout.strip())


@pytest.mark.root
def test_logout_then_pull_is_refused(cli, registry):
    login(cli, registry)
    name = f"{registry.address}/cli/private:v1"
    cli("tag", "busybox:latest", name)
    cli("push", "-q", name)
    cli("rmi", name)
    result = cli("logout", registry.address)
    assert result.stdout == f"Removing login credentials for {registry.address}\n"
    assert registry.address not in json.loads(cli.config.read_text())["auths"]
    assert cli("logout", registry.address).stdout == f"Not logged in to {registry.address}\n"
    refused = cli("pull", name, check=False)
    assert refused.returncode == 1 and "pull access denied" in refused.stderr


@pytest.mark.root
def test_a_credential_helper_means_anonymous_with_a_warning(cli, registry):
    cli.config.parent.mkdir()
    cli.config.write_text(json.dumps({"credsStore": "desktop"}))
    refused = cli("pull", f"{registry.address}/cli/anything:v1", check=False)
    assert refused.returncode == 1
    assert "does not support credential helpers" in refused.stderr
    assert "pull access denied" in refused.stderr
