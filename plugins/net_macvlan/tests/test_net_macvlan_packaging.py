"""dockyard-net-macvlan is installable, discoverable, and says whether it works on this host."""

import os

import dockyard_net_macvlan
import pytest
from dockyard.plugin import DriverSpec
from dockyard.plugin.testing.packaging import PluginDistributionSuite


class TestPackaging(PluginDistributionSuite):
    distribution = "dockyard-net-macvlan"
    drivers = {("network", "macvlan")}


def _spec() -> DriverSpec:
    specs: list[DriverSpec] = list(dockyard_net_macvlan.dockyard_network_drivers())
    assert [spec.name for spec in specs] == ["macvlan"]
    return specs[0]


def test_probe_says_the_driver_works_here_as_root():
    """As root, with macvlan in the kernel and pyroute2 installed, the probe must not refuse."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    assert _spec().probe() is None


def test_probe_names_root_when_not_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "needs root" in _spec().probe()


def test_probe_names_a_missing_pyroute2(monkeypatch):
    monkeypatch.setattr("dockyard_net_macvlan.need_root", lambda: None)
    monkeypatch.setattr("dockyard_net_macvlan.need_netlink_kind", lambda kind: None)
    monkeypatch.setattr("dockyard_net_macvlan.find_spec", lambda name: None)
    assert "pyroute2" in _spec().probe()
