"""dockyard-storage-overlay is installable, discoverable, and usable on this host."""

import dockyard_storage_overlay
from dockyard.plugin import DriverSpec
from dockyard.plugin.testing.packaging import PluginDistributionSuite


class TestPackaging(PluginDistributionSuite):
    distribution = "dockyard-storage-overlay"
    drivers = {("storage", "overlay")}


def test_probe_says_the_driver_works_on_this_host():
    """This host has what the driver needs (root, overlayfs in the kernel): the probe must not refuse."""
    specs: list[DriverSpec] = list(dockyard_storage_overlay.dockyard_storage_drivers())
    assert [spec.name for spec in specs] == ["overlay"]
    assert specs[0].probe() is None
