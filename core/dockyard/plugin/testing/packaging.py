"""A suite every plugin distribution can run to prove it is packaged right.

    from dockyard.plugin.testing.packaging import PluginDistributionSuite

    class TestPackaging(PluginDistributionSuite):
        distribution = "dockyard-storage-btrfs"
        drivers = {("storage", "btrfs")}
"""

from __future__ import annotations

from importlib.metadata import distribution as find_distribution

from dockyard.daemon.pluginmanager import PluginManager
from dockyard.plugin import ENTRY_POINT_GROUP, DriverSpec


class PluginDistributionSuite:
    distribution: str = ""
    drivers: set[tuple[str, str]] = set()

    def _manager(self) -> PluginManager:
        return PluginManager(strict=True).load_all()

    def test_entry_point_is_named_after_the_distribution(self) -> None:
        dist = find_distribution(self.distribution)
        names = [ep.name for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        assert names == [self.distribution], (
            f"{self.distribution} must have exactly one '{ENTRY_POINT_GROUP}' entry point "
            f"named after itself; it has {names}"
        )

    def test_loads_in_strict_mode_and_offers_its_drivers(self) -> None:
        manager = self._manager()
        records = [r for r in manager.records if r.distribution == self.distribution]
        assert len(records) == 1 and records[0].error is None, records
        offered = {(spec.kind, spec.name) for spec in records[0].specs}
        assert offered == self.drivers

    def test_probes_answer_with_none_or_a_sentence(self) -> None:
        manager = self._manager()
        for kind, name in self.drivers:
            spec: DriverSpec = manager.find(kind, name)
            reason = spec.probe()  # called directly: a crashing probe fails this test
            assert reason is None or (isinstance(reason, str) and len(reason) > 10), reason
