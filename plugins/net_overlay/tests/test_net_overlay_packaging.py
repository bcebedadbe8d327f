"""dockyard-net-overlay is installable, discoverable, and honest about what it cannot do yet."""

import dockyard_net_overlay
from dockyard.plugin import DriverSpec
from dockyard.plugin.testing.packaging import PluginDistributionSuite


class TestPackaging(PluginDistributionSuite):
    distribution = "dockyard-net-overlay"
    drivers = {("network", "overlay")}


def test_probe_does_not_pretend_the_driver_exists():
    specs: list[DriverSpec] = list(dockyard_net_overlay.dockyard_network_drivers())
    assert specs
    for spec in specs:
        reason = spec.probe()
        assert reason is not None and ("not built yet" in reason or "needs root" in reason
                                       or "not found on PATH" in reason
                                       or "refuses hybrid" in reason), reason
