"""The dockyard CLI as a user runs it: a client of the API, with Docker's error style."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from conftest import dockyard_cli


def test_version_shows_client_and_server(dockyard_daemon):
    out = dockyard_cli("version", host=dockyard_daemon.host).stdout
    assert out.startswith("Client:\n Version:")
    assert "Server: Dockyard Engine 0.1.0" in out
    assert "API version:     1.44 (minimum version 1.24)" in out


def test_version_takes_the_host_from_the_environment(dockyard_daemon):
    out = dockyard_cli("version", env={"DOCKYARD_HOST": dockyard_daemon.host}).stdout
    assert "Server: Dockyard Engine" in out
    out = dockyard_cli("info", env={"DOCKYARD_HOST": dockyard_daemon.host}).stdout
    assert f"Docker Root Dir: {dockyard_daemon.data_root}" in out


def test_version_json_goes_through_click(dockyard_daemon):
    out = dockyard_cli("version", "--format", "json", host=dockyard_daemon.host).stdout
    assert json.loads(out)["Server"]["ApiVersion"] == "1.44"


def test_info_lists_drivers_and_warns_about_missing_ones(dockyard_daemon):
    result = dockyard_cli("info", host=dockyard_daemon.host)
    assert "Network: bridge example host macvlan none" in result.stdout
    assert "Storage Driver: overlay" in result.stdout
    assert "Default Runtime: runc" in result.stdout
    assert "WARNING" not in result.stderr  # every driver kind has a usable driver now


def test_unreachable_daemon_is_a_clear_error(short_tmp):
    host = f"unix://{short_tmp}/nobody.sock"
    result = dockyard_cli("info", host=host, check=False)
    assert result.returncode == 1
    assert f"Cannot connect to the dockyard daemon at {host}. Is dockyardd running?" in result.stderr
    result = dockyard_cli("version", host=host, check=False)
    assert result.returncode == 1 and result.stdout.startswith("Client:")


def test_daemon_errors_are_printed_like_docker_does(dockyard_daemon):
    result = dockyard_cli("events", "--filter", "colour=red", host=dockyard_daemon.host,
                          check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "Error response from daemon: invalid filter 'colour'"


def test_plugins_from_the_daemon_and_locally(dockyard_daemon):
    remote = json.loads(dockyard_cli("plugins", "--json", host=dockyard_daemon.host).stdout)
    local = json.loads(dockyard_cli("plugins", "--json", "--local").stdout)
    by_name = {d["Distribution"]: d for d in remote}
    assert by_name["dockyard-example-netplugin"]["Drivers"][0]["Status"] == "active"
    assert by_name["dockyard"]["Builtin"] is True
    vfs = by_name["dockyard-storage-vfs"]["Drivers"][0]
    assert vfs["Status"] == "available" and vfs["Reason"] is None  # overlay won on priority
    overlay = by_name["dockyard-net-overlay"]["Drivers"][0]
    assert overlay["Status"] == "active" and overlay["Reason"] is None  # VXLAN works here
    store = by_name["dockyard-store-etcd"]["Drivers"][0]
    assert store["Status"] == "available"  # a store is built only for a --cluster-store
    local_names = {d["Distribution"]: d for d in local}
    assert local_names["dockyard-example-netplugin"]["Drivers"][0]["Status"] == "available"
    table = dockyard_cli("plugins", host=dockyard_daemon.host).stdout
    assert any(line.split()[:5] == ["dockyard-example-netplugin", "1.2.3", "network", "example",
                                    "active"] for line in table.splitlines())
    assert any(line.split()[:5] == ["dockyard-net-overlay", "0.1.0", "network", "overlay", "active"]
               for line in table.splitlines())
    assert "example-unusable: needs the example kernel feature" in table  # reasons still shown


def test_events_streams_until_interrupted(dockyard_daemon):
    listener = subprocess.Popen(
        [sys.executable, "-m", "dockyard.cli", "-H", dockyard_daemon.host, "events",
         "--filter", "type=daemon"], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while dockyard_daemon.client().get_json("/info")["NEventsListener"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        dockyard_daemon.signal(signal.SIGHUP)
        line = listener.stdout.readline()
        assert " daemon reload " in line
    finally:
        listener.send_signal(signal.SIGINT)
        listener.wait(10)


def test_events_since_and_until_replay_then_end(dockyard_daemon):
    dockyard_daemon.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "configuration reloaded" not in dockyard_daemon.log():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    result = dockyard_cli("events", "--since", "1m", "--until", "0s", "--format", "json",
                          host=dockyard_daemon.host)
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["Action"] for e in events] == ["reload"]
