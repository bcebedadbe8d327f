"""dockyard-net-bridge is installable, discoverable, and its probe names what a host lacks."""

import os
import shutil

import dockyard_net_bridge
import pytest
from dockyard.plugin import DriverSpec
from dockyard.plugin.testing.packaging import PluginDistributionSuite


class TestPackaging(PluginDistributionSuite):
    distribution = "dockyard-net-bridge"
    drivers = {("network", "bridge")}


def _spec() -> DriverSpec:
    return next(iter(dockyard_net_bridge.dockyard_network_drivers()))


def test_the_probe_passes_where_root_and_nft_are():
    if os.geteuid() != 0 or not shutil.which("nft"):
        pytest.skip("needs root and nft on PATH")
    assert _spec().probe() is None


def test_the_probe_names_a_missing_nft(monkeypatch):
    monkeypatch.setattr("dockyard_net_bridge.need_root", lambda: None)
    monkeypatch.setattr("dockyard.plugin.probes.shutil.which", lambda name: None)
    reason = _spec().probe()
    assert reason is not None and "nft not found on PATH" in reason and "nftables" in reason


def test_the_probe_names_a_missing_pyroute2(monkeypatch):
    monkeypatch.setattr("dockyard_net_bridge.need_root", lambda: None)
    monkeypatch.setattr("dockyard_net_bridge.need_binary", lambda name, package=None: None)
    monkeypatch.setattr("dockyard_net_bridge.importlib.util.find_spec", lambda name: None)
    assert "pyroute2" in _spec().probe()


def test_importing_the_plugin_does_not_import_pyroute2():
    """Probes run at every daemon start: the plugin module must stay light until its factory runs."""
    import subprocess
    import sys

    code = "import dockyard_net_bridge, sys; print('pyroute2' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
