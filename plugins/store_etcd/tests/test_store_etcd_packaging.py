"""dockyard-store-etcd is installable, discoverable, and honest about its driver."""

from dockyard.plugin.testing.packaging import PluginDistributionSuite


class TestPackaging(PluginDistributionSuite):
    distribution = "dockyard-store-etcd"
    drivers = {("store", "etcd")}
