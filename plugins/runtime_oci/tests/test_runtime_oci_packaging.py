"""dockyard-runtime-oci is installable, discoverable, and its probes tell where runc and crun
cannot run."""

import os
import shutil

import dockyard_runtime_oci
import pytest
from dockyard.plugin import DriverSpec
from dockyard.plugin.testing.packaging import PluginDistributionSuite


class TestPackaging(PluginDistributionSuite):
    distribution = "dockyard-runtime-oci"
    drivers = {("runtime", "runc"), ("runtime", "crun")}


def _spec(name: str) -> DriverSpec:
    return next(s for s in dockyard_runtime_oci.dockyard_runtime_drivers() if s.name == name)


def test_runc_probe_passes_where_root_and_runc_are():
    if os.geteuid() != 0 or not shutil.which("runc"):
        pytest.skip("needs root and runc on PATH")
    assert _spec("runc").probe() is None


def test_crun_probe_names_hybrid_cgroups_on_this_host():
    if os.geteuid() != 0 or not shutil.which("crun"):
        pytest.skip("needs root and crun on PATH")
    if not dockyard_runtime_oci.hybrid_cgroups():
        pytest.skip("this host's cgroups are not hybrid")
    assert "refuses hybrid cgroup" in _spec("crun").probe()


def test_crun_probe_names_hybrid_cgroups_on_a_hybrid_host(monkeypatch):
    monkeypatch.setattr(dockyard_runtime_oci, "hybrid_cgroups", lambda: True)
    monkeypatch.setattr("dockyard_runtime_oci.need_binary", lambda name: None)
    monkeypatch.setattr("dockyard_runtime_oci.need_root", lambda: None)
    crun = next(s for s in dockyard_runtime_oci.dockyard_runtime_drivers() if s.name == "crun")
    assert "refuses hybrid cgroup" in crun.probe()


def test_hybrid_detection_matches_this_host():
    from pathlib import Path

    root = Path("/sys/fs/cgroup")
    pure_v2 = (root / "cgroup.controllers").exists()
    if pure_v2:
        assert not dockyard_runtime_oci.hybrid_cgroups()
    elif (root / "unified").is_dir():
        assert dockyard_runtime_oci.hybrid_cgroups() == (root / "memory").is_dir()
