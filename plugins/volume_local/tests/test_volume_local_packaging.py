"""dockyard-volume-local is installable, discoverable, and its probe names what a host lacks."""

import os
import subprocess
import sys

import dockyard_volume_local
import pytest
from dockyard.plugin import DriverSpec
from dockyard.plugin.testing.packaging import PluginDistributionSuite


class TestPackaging(PluginDistributionSuite):
    distribution = "dockyard-volume-local"
    drivers = {("volume", "local")}


def _spec() -> DriverSpec:
    return next(iter(dockyard_volume_local.dockyard_volume_drivers()))


def test_the_probe_passes_as_root():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    assert _spec().probe() is None


def test_the_probe_names_missing_root(monkeypatch):
    monkeypatch.setattr("dockyard.plugin.probes.os.geteuid", lambda: 1000)
    reason = _spec().probe()
    assert reason is not None and "needs root" in reason


def test_importing_the_plugin_does_not_import_the_driver():
    """Probes run at every daemon start: the plugin module stays light until its factory runs."""
    code = "import dockyard_volume_local, sys; print('dockyard_volume_local.driver' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
