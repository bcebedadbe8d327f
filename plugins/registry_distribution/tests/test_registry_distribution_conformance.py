"""The distribution client against a real registry (Debian's docker-registry, distribution 2.8)."""

from dockyard.plugin.testing.registry import RegistryClientSuite


class TestDistributionConformance(RegistryClientSuite):
    driver_name = "distribution"
