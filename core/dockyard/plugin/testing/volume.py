"""The volume driver conformance suite: the whole `VolumeDriver` contract, on the real kernel.

A driver package proves itself with a few lines:

    from dockyard.plugin.testing.volume import VolumeDriverSuite

    class TestLocal(VolumeDriverSuite):
        driver_name = "local"

The driver is built as the daemon builds it: through the installed plugins (strict mode),
with a DriverContext whose home and exec root are fresh temporary directories; building a
second driver on the same directories stands for a restarted daemon. A driver whose probe
fails here is skipped with the probe's reason.

Every volume of the suite is created with `volume_options(scratch)`: a driver that wants its
volumes made a certain way (a device to mount, a size) overrides it, and may use `scratch`,
an empty directory of that volume's own (a host directory to bind, say). A driver whose
volumes lose their data when nobody uses them (a tmpfs mounted per use) sets
`keeps_data_when_unused = False`; one that does not stage new volumes as
`<home>/.creating-*` sets `staging_prefix = None`.

What "unmounted" means differs (a plain directory has no mount; a tmpfs volume stays
mounted while it exists), so the suite checks instead that releasing the last mount id
brings the mount table back to what it was before the first one.

After every test, the volumes the test's drivers still list are removed, then the test fails
if any mount remains below its directory (leftovers are detached, to keep the machine clean).
"""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dockyard.daemon.pluginmanager import PluginManager
from dockyard.plugin import DriverContext
from dockyard.plugin.contracts.volume import VolumeDriver, VolumeDriverError
from dockyard.plugin.mounts import mount_table

BAD_NAMES = ("", "a", "..", "../escape", "a/b", "/abs", ".hidden", "-dash", "_under", "with space",
             "new\nline", "trailing\n", "nul\x00byte", "é-accent")
UNKNOWN_OPTION = "dockyard-test-no-such-option"


def mounts_under(root: Path) -> list[tuple[str, str]]:
    """(mount point, filesystem type) of every mount at or below `root`, oldest first."""
    prefix = str(Path(root).resolve()).rstrip("/")
    return [(point, fstype) for point, fstype in mount_table()
            if point == prefix or point.startswith(prefix + "/")]


def filesystem_type_at(path: Path) -> str | None:
    """The type of the filesystem mounted exactly on `path` (the top one), or None."""
    target = str(Path(path).resolve())
    types = [fstype for point, fstype in mounts_under(Path(path)) if point == target]
    return types[-1] if types else None


def entries_below(*roots: Path) -> set[str]:
    """Every path below `roots`, as text: what a driver left on disk."""
    found = set()
    for root in roots:
        for directory, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                found.add(os.path.join(directory, name))
    return found


def random_volume_name() -> str:
    return f"dyt-{secrets.token_hex(4)}"


class VolumeDriverSuite:
    """Subclass with `driver_name` set; every test_* method is one clause of the contract."""

    driver_name: str = ""
    #: False for volumes whose data lives only while mounted (a tmpfs mounted per use).
    keeps_data_when_unused: bool = True
    #: where a half-made volume sits in home while it is built; None: the driver stages elsewhere.
    staging_prefix: str | None = ".creating-"

    def volume_options(self, scratch: Path) -> dict[str, str]:
        """The options a volume of the suite is created with; `scratch` is a directory of
        that volume's own, empty at first, that the override may use."""
        return {}

    # -- fixtures ---------------------------------------------------------------------

    @pytest.fixture
    def area(self, tmp_path: Path) -> Path:
        """The test's directory: home/ and exec/ for the driver, scratch/ for the options."""
        for name in ("home", "exec", "scratch"):
            (tmp_path / name).mkdir()
        return tmp_path.resolve()

    @pytest.fixture
    def make_driver(self, area: Path) -> Iterator[Callable[[], VolumeDriver]]:
        """Builds a driver on the test's home; called twice, it simulates a restart."""
        assert self.driver_name, "set driver_name on your VolumeDriverSuite subclass"
        manager = PluginManager(strict=True).load_all()
        spec = manager.find("volume", self.driver_name)
        reason = manager.why_unsupported(spec)
        if reason:
            pytest.skip(f"volume driver {spec.name} cannot run here: {reason}")
        made: list[VolumeDriver] = []

        def make() -> VolumeDriver:
            driver = spec.factory(DriverContext(kind="volume", name=spec.name, home=area / "home",
                                                exec_root=area / "exec"))
            assert isinstance(driver, VolumeDriver), f"{type(driver)} lacks VolumeDriver methods"
            made.append(driver)
            return driver

        yield make
        problems = []
        for driver in made[-1:]:  # the newest instance is the driver as it is now
            try:
                for name in driver.list():
                    driver.remove(name)
            except Exception as exc:  # report, and still detach below
                problems.append(f"removing the test's volumes failed: {type(exc).__name__}: {exc}")
        leftovers = mounts_under(area)
        for point, _ in reversed(leftovers):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)
        assert not leftovers, f"mounts left behind by the driver: {leftovers}"
        assert not problems, problems

    @pytest.fixture
    def driver(self, make_driver: Callable[[], VolumeDriver]) -> VolumeDriver:
        return make_driver()

    # -- helpers ----------------------------------------------------------------------

    def options_for(self, area: Path, name: str) -> dict[str, str]:
        """`volume_options` for the volume `name` (the same each time it is asked)."""
        scratch = area / "scratch" / name
        scratch.mkdir(exist_ok=True)
        return self.volume_options(scratch)

    @staticmethod
    def on_disk(area: Path) -> set[str]:
        return entries_below(area / "home", area / "exec")

    @staticmethod
    def write_probe(directory: Path, content: bytes = b"kept") -> Path:
        probe = directory / "probe"
        probe.write_bytes(content)
        os.chown(probe, 1000, 2000)
        os.chmod(probe, 0o640)
        return probe

    @staticmethod
    def assert_probe_is_intact(directory: Path, content: bytes = b"kept") -> None:
        probe = directory / "probe"
        assert probe.read_bytes() == content
        found = os.stat(probe)
        assert (found.st_uid, found.st_gid, stat.S_IMODE(found.st_mode)) == (1000, 2000, 0o640)

    # -- creating, listing, removing ------------------------------------------------------

    def test_the_driver_satisfies_the_protocol(self, driver: VolumeDriver) -> None:
        assert driver.scope in ("local", "global")
        assert list(driver.list()) == []

    def test_create_list_mount_remove_round_trip(self, driver: VolumeDriver, area: Path) -> None:
        files_before, mounts_before = self.on_disk(area), mounts_under(area)
        name = random_volume_name()
        driver.create(name, self.options_for(area, name))
        assert list(driver.list()) == [name]
        assert isinstance(driver.status(name), Mapping)
        mounted = driver.mount(name, "container-1")
        assert mounted.is_dir() and driver.path(name) == mounted
        (mounted / "file").write_text("hello")
        driver.unmount(name, "container-1")
        driver.remove(name)
        assert list(driver.list()) == [] and driver.path(name) is None
        assert mounts_under(area) == mounts_before
        assert self.on_disk(area) == files_before, "remove left files behind"

    def test_many_volumes_are_listed_and_kept_apart(self, driver: VolumeDriver, area: Path) -> None:
        names = sorted(random_volume_name() for _ in range(3))
        for name in names:
            driver.create(name, self.options_for(area, name))
        assert sorted(driver.list()) == names
        paths = [driver.mount(name, f"c-{name}") for name in names]
        assert len(set(paths)) == len(names)
        (paths[0] / "only-in-the-first").write_text("1")
        assert not (paths[1] / "only-in-the-first").exists()
        for name in names:
            driver.unmount(name, f"c-{name}")
        driver.remove(names[1])
        assert sorted(driver.list()) == [names[0], names[2]]

    def test_creating_again_with_the_same_options_keeps_the_volume(self, driver: VolumeDriver,
                                                                    area: Path) -> None:
        name = random_volume_name()
        options = self.options_for(area, name)
        driver.create(name, self.options_for(area, name))
        mounted = driver.mount(name, "c1")
        self.write_probe(mounted)
        driver.create(name, dict(options))  # a repeat after a crash
        assert list(driver.list()) == [name]
        self.assert_probe_is_intact(driver.path(name))
        driver.unmount(name, "c1")

    def test_bad_names_are_refused_and_leave_nothing(self, driver: VolumeDriver, area: Path) -> None:
        before = self.on_disk(area), mounts_under(area)
        for bad in BAD_NAMES:
            with pytest.raises(VolumeDriverError):
                driver.create(bad, self.options_for(area, "bad-names"))
        assert (self.on_disk(area), mounts_under(area)) == before
        assert list(driver.list()) == []

    def test_unknown_options_are_refused_by_name_and_leave_nothing(self, driver: VolumeDriver,
                                                                   area: Path) -> None:
        name = random_volume_name()
        options = self.options_for(area, name)
        before = self.on_disk(area), mounts_under(area)
        with pytest.raises(VolumeDriverError, match=UNKNOWN_OPTION):
            driver.create(name, {**options, UNKNOWN_OPTION: "1"})
        assert (self.on_disk(area), mounts_under(area)) == before
        assert list(driver.list()) == [] and driver.path(name) is None
        driver.create(name, self.options_for(area, name))  # the name is still free
        assert list(driver.list()) == [name]

    def test_remove_and_unmount_of_missing_volumes_are_not_errors(self, driver: VolumeDriver,
                                                                  area: Path) -> None:
        driver.remove("never-existed")
        driver.unmount("never-existed", "c1")
        assert driver.path("never-existed") is None
        with pytest.raises(VolumeDriverError):
            driver.mount("never-existed", "c1")
        name = random_volume_name()
        driver.create(name, self.options_for(area, name))
        driver.remove(name)
        driver.remove(name)
        driver.unmount(name, "c1")

    def test_remove_of_a_volume_still_mounted_leaves_nothing(self, driver: VolumeDriver,
                                                             area: Path) -> None:
        files_before, mounts_before = self.on_disk(area), mounts_under(area)
        name = random_volume_name()
        driver.create(name, self.options_for(area, name))
        (driver.mount(name, "c1") / "file").write_text("x")
        driver.remove(name)  # the engine forces it
        assert list(driver.list()) == [] and driver.path(name) is None
        assert mounts_under(area) == mounts_before
        assert self.on_disk(area) == files_before

    # -- mounting ---------------------------------------------------------------------

    def test_mounts_are_counted_per_mount_id(self, driver: VolumeDriver, area: Path) -> None:
        name = random_volume_name()
        driver.create(name, self.options_for(area, name))
        unused = mounts_under(area)
        first = driver.mount(name, "c1")
        assert driver.mount(name, "c2") == first
        self.write_probe(first)
        driver.unmount(name, "c1")
        assert driver.path(name) == first, "unmounting one of two holders took the volume away"
        self.assert_probe_is_intact(first)
        driver.unmount(name, "c1")  # a repeat changes nothing
        driver.unmount(name, "never-mounted")
        assert driver.path(name) == first
        driver.unmount(name, "c2")
        assert mounts_under(area) == unused, "the last unmount did not undo the mount"
        driver.unmount(name, "c2")

    def test_mounting_again_with_the_same_id_counts_once(self, driver: VolumeDriver,
                                                         area: Path) -> None:
        name = random_volume_name()
        driver.create(name, self.options_for(area, name))
        unused = mounts_under(area)
        first = driver.mount(name, "c1")
        assert driver.mount(name, "c1") == first  # a repeat after a crash
        driver.unmount(name, "c1")
        assert mounts_under(area) == unused

    def test_data_survives_unmount_and_mount(self, driver: VolumeDriver, area: Path) -> None:
        name = random_volume_name()
        options = self.options_for(area, name)
        if not self.keeps_data_when_unused:
            pytest.skip(f"{self.driver_name} volumes made with {options} keep data only while mounted")
        driver.create(name, self.options_for(area, name))
        driver.mount(name, "c1")
        self.write_probe(driver.path(name))
        (driver.path(name) / "nested").mkdir(mode=0o700)
        driver.unmount(name, "c1")
        again = driver.mount(name, "c2")
        self.assert_probe_is_intact(again)
        assert stat.S_IMODE(os.stat(again / "nested").st_mode) == 0o700
        driver.unmount(name, "c2")

    def test_mounts_may_come_and_go_in_parallel(self, driver: VolumeDriver, area: Path) -> None:
        name = random_volume_name()
        driver.create(name, self.options_for(area, name))
        unused = mounts_under(area)
        ids = [f"container-{index}" for index in range(8)]
        with ThreadPoolExecutor(len(ids)) as pool:
            paths = set(pool.map(lambda mount_id: driver.mount(name, mount_id), ids))
        assert len(paths) == 1 and driver.path(name) == paths.pop()
        barrier = threading.Barrier(len(ids))

        def release(mount_id: str) -> None:
            barrier.wait()
            driver.unmount(name, mount_id)

        with ThreadPoolExecutor(len(ids)) as pool:
            list(pool.map(release, ids))
        assert mounts_under(area) == unused

    # -- restarts -----------------------------------------------------------------------

    def test_restore_with_nothing_in_use_undoes_the_mounts(self, make_driver: Callable[[], VolumeDriver],
                                                           area: Path) -> None:
        before = make_driver()
        name = random_volume_name()
        before.create(name, self.options_for(area, name))
        unused = mounts_under(area)
        self.write_probe(before.mount(name, "c1"))
        before.mount(name, "c2")

        after = make_driver()  # the daemon restarts; no container survived
        after.restore({})
        assert mounts_under(area) == unused
        assert list(after.list()) == [name]
        again = after.mount(name, "c3")
        if self.keeps_data_when_unused:
            self.assert_probe_is_intact(again)
        after.unmount(name, "c3")
        assert mounts_under(area) == unused
        after.restore({})  # restore is idempotent too
        assert mounts_under(area) == unused and list(after.list()) == [name]

    def test_restore_keeps_exactly_the_mount_ids_in_use(self, make_driver: Callable[[], VolumeDriver],
                                                        area: Path) -> None:
        before = make_driver()
        kept, dropped = random_volume_name(), random_volume_name()
        for name in (kept, dropped):
            before.create(name, self.options_for(area, name))
        unused = mounts_under(area)
        self.write_probe(before.mount(kept, "survivor"))
        before.mount(kept, "died")
        before.mount(dropped, "died")

        after = make_driver()
        in_use = {kept: ["survivor"], "vanished-volume": ["survivor"]}  # the engine knows one more
        after.restore(in_use)
        after.restore(in_use)
        assert after.path(kept) is not None
        self.assert_probe_is_intact(after.path(kept))
        after.unmount(kept, "survivor")  # the only holder left: "died" was dropped
        assert mounts_under(area) == unused
        assert sorted(after.list()) == sorted([kept, dropped])

    def test_a_half_made_volume_is_cleaned_at_start(self, make_driver: Callable[[], VolumeDriver],
                                                    area: Path) -> None:
        if self.staging_prefix is None:
            pytest.skip(f"{self.driver_name} does not stage volumes in its home")
        half_made = area / "home" / f"{self.staging_prefix}ghost-0badc0de"
        (half_made / "_data").mkdir(parents=True)
        (half_made / "opts.json").write_text("{}\n")
        (half_made / "_data" / "partial").write_text("half")
        driver = make_driver()
        assert not half_made.exists()
        assert list(driver.list()) == [] and driver.path("ghost") is None
