"""dockyard-net-overlay is installable, discoverable, and honest about what its probe needs."""

import dockyard_net_overlay
from dockyard.plugin import DriverSpec
from dockyard.plugin.testing.packaging import PluginDistributionSuite


class TestPackaging(PluginDistributionSuite):
    distribution = "dockyard-net-overlay"
    drivers = {("network", "overlay")}


def test_probe_names_what_is_missing_or_nothing():
    specs: list[DriverSpec] = list(dockyard_net_overlay.dockyard_network_drivers())
    assert [spec.name for spec in specs] == ["overlay"]
    reason = specs[0].probe()
    assert reason is None or "needs root" in reason or "vxlan" in reason, reason
