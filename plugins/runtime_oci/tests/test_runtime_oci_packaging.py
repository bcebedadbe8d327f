"""dockyard-runtime-oci is installable, discoverable, and honest about what it cannot do yet."""

import dockyard_runtime_oci
from dockyard.plugin import DriverSpec
from dockyard.testing.packaging import PluginDistributionSuite


class TestPackaging(PluginDistributionSuite):
    distribution = "dockyard-runtime-oci"
    drivers = {("runtime", "runc"), ("runtime", "crun")}


def test_probe_does_not_pretend_the_driver_exists():
    specs: list[DriverSpec] = list(dockyard_runtime_oci.dockyard_runtime_drivers())
    assert specs
    for spec in specs:
        reason = spec.probe()
        assert reason is not None and ("not built yet" in reason or "needs root" in reason
                                       or "not found on PATH" in reason
                                       or "refuses hybrid" in reason), reason


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
