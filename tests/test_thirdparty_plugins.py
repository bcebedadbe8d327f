"""Plugins from outside this repository: found through entry points, or reported when broken."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import dockyard_cli, run_daemon_expecting_failure

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def broken_plugin_path(tmp_path_factory) -> Path:
    """The broken example distribution, installed into its own directory for PYTHONPATH
    (installed into the test environment it would break every strict test)."""
    target = tmp_path_factory.mktemp("broken-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target),
                    str(HERE / "plugins" / "broken_plugin")], check=True, timeout=300)
    return target


def test_the_example_third_party_plugin_is_discovered(plugin_manager):
    plugin_manager.load_entry_points()
    record = next(r for r in plugin_manager.records
                  if r.distribution == "dockyard-example-netplugin")
    assert record.version == "1.2.3" and record.error is None
    assert plugin_manager.select("network", "example").description.startswith("in-memory")


def test_its_driver_is_served_by_the_daemon(dockyard_daemon):
    info = dockyard_daemon.client().get_json("/info")
    assert "example" in info["Plugins"]["Network"]
    assert (dockyard_daemon.data_root / "network" / "example").is_dir()  # its home was made


def test_a_broken_plugin_is_reported_and_the_rest_still_works(broken_plugin_path):
    env = {"PYTHONPATH": str(broken_plugin_path) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    report = json.loads(dockyard_cli("plugins", "--local", "--json", env=env).stdout)
    broken = next(d for d in report if d["Distribution"] == "dockyard-example-broken")
    assert broken["Status"] == "failed"
    assert "No module named 'dockyard_example_missing_dependency'" in broken["Error"]
    assert any(d["Distribution"] == "dockyard-example-netplugin" and d["Status"] == "loaded"
               for d in report)


def test_a_lenient_daemon_starts_beside_a_broken_plugin(make_daemon, broken_plugin_path):
    env = {"PYTHONPATH": str(broken_plugin_path), "DOCKYARD_STRICT_PLUGINS": "0"}
    daemon = make_daemon("lenient", **env).start()
    report = daemon.client().get_json("/dockyard/plugins")
    assert any(d["Distribution"] == "dockyard-example-broken" and d["Status"] == "failed"
               for d in report)
    assert "plugin dockyard-example-broken 0.0.1 failed to load" in daemon.log()


def test_a_strict_daemon_refuses_to_start_with_a_broken_plugin(make_daemon, broken_plugin_path):
    daemon = make_daemon("strict", PYTHONPATH=str(broken_plugin_path))
    message = run_daemon_expecting_failure(daemon)
    assert "plugin dockyard-example-broken 0.0.1 failed to load: ModuleNotFoundError" in message
    assert not daemon.socket_path.exists()
