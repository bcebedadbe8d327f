"""dockyard-storage-vfs is installable, discoverable, and usable on this host."""

import dockyard_storage_vfs
from dockyard.plugin import DriverSpec
from dockyard.plugin.testing.packaging import PluginDistributionSuite


class TestPackaging(PluginDistributionSuite):
    distribution = "dockyard-storage-vfs"
    drivers = {("storage", "vfs")}


def test_probe_says_the_driver_works_on_this_host():
    """This host has what the driver needs (cp is on PATH): the probe must not refuse."""
    specs: list[DriverSpec] = list(dockyard_storage_vfs.dockyard_storage_drivers())
    assert [spec.name for spec in specs] == ["vfs"]
    assert specs[0].probe() is None
