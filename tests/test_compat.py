"""The clients users already have: the real docker CLI (28) and docker-py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

pytestmark = pytest.mark.compat

DOCKER = shutil.which("docker")


def docker(daemon, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    if DOCKER is None:
        pytest.fail("the docker CLI is not on PATH; the compat tests need it")
    env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_CONFIG": str(daemon.root / "cfg")}
    env.pop("DOCKER_CONTEXT", None)
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def test_docker_version_reports_api_1_44(dockyard_daemon):
    result = docker(dockyard_daemon, "version", "--format", "{{json .}}")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["Server"]["ApiVersion"] == "1.44"
    assert data["Client"]["ApiVersion"] == "1.44"  # negotiated down from the CLI's own
    assert data["Server"]["Version"] == "0.1.0"
    plain = docker(dockyard_daemon, "version")
    assert plain.returncode == 0 and plain.stderr == ""
    assert "Server: Dockyard Engine 0.1.0" in plain.stdout


def test_docker_info_decodes_every_field(dockyard_daemon):
    result = docker(dockyard_daemon, "info", "--format", "{{json .}}")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["DockerRootDir"] == str(dockyard_daemon.data_root)
    assert info["OSType"] == "linux"
    assert info["Swarm"]["LocalNodeState"] == "inactive"
    plain = docker(dockyard_daemon, "info")
    assert plain.returncode == 0
    assert "Server Version: 0.1.0" in plain.stdout
    assert "errors pretty printing info" not in plain.stderr + plain.stdout
    assert "WARNING" not in plain.stderr  # every driver kind is served (core_alone shows the warnings)


def test_docker_events_streams_and_filters(dockyard_daemon):
    since = str(int(time.time()) - 1)
    dockyard_daemon.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "configuration reloaded" not in dockyard_daemon.log():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    result = docker(dockyard_daemon, "events", "--since", since, "--until", str(int(time.time()) + 1),
                    "--filter", "type=daemon", "--format", "{{.Type}} {{.Action}}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == ["daemon reload"]


def test_docker_inspect_of_an_unknown_name_is_a_clean_error(dockyard_daemon):
    result = docker(dockyard_daemon, "inspect", "no-such-thing")
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: No such object: no-such-thing"


def test_docker_py_version_info_and_events(dockyard_daemon):
    docker_py = pytest.importorskip("docker")
    client = docker_py.DockerClient(base_url=dockyard_daemon.host, version="auto")
    try:
        assert client.version()["ApiVersion"] == "1.44"
        assert client.api.api_version == "1.44"
        assert client.info()["DockerRootDir"] == str(dockyard_daemon.data_root)
        assert client.ping() is True
        since = time.time() - 1
        dockyard_daemon.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "configuration reloaded" not in dockyard_daemon.log():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        events = list(client.events(since=since, until=time.time() + 0.5, decode=True,
                                    filters={"type": "daemon"}))
        assert [e["Action"] for e in events] == ["reload"]
    finally:
        client.close()
