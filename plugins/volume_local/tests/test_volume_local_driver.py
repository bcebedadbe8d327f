"""The local driver's own behaviour, on the real kernel: where data lives, tmpfs and bind
volumes made with type/device/o, clear errors, and crashes that leave nothing visible."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from dockyard.plugin import VolumeDriverError
from dockyard.plugin.testing.volume import VolumeDriverSuite, filesystem_type_at, mounts_under

pytestmark = pytest.mark.root

TMPFS_1M = {"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=1000,mode=0750"}


def mount_options_at(path: Path) -> set[str]:
    """The per-mount options (ro, nosuid...) of the top mount on `path`."""
    target = str(path.resolve())
    found = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == target:
            found = set(fields[5].split(","))
    return found


class TestLocalDriver:
    driver_name = "local"
    area = VolumeDriverSuite.area
    make_driver = VolumeDriverSuite.make_driver
    driver = VolumeDriverSuite.driver

    # -- plain volumes ---------------------------------------------------------------------

    def test_a_plain_volume_is_a_root_owned_0755_data_directory(self, driver, area: Path) -> None:
        driver.create("plain", {})
        data = area / "home" / "plain" / "_data"
        assert driver.path("plain") == data and driver.mount("plain", "c1") == data
        found = os.stat(data)
        assert stat.S_IMODE(found.st_mode) == 0o755 and (found.st_uid, found.st_gid) == (0, 0)
        assert json.loads((area / "home" / "plain" / "opts.json").read_text()) == {}
        assert json.loads((area / "home" / "plain" / "mounts.json").read_text()) == ["c1"]
        assert driver.status("plain") == {} and driver.scope == "local"
        assert mounts_under(area) == []
        driver.unmount("plain", "c1")
        assert driver.path("plain") == data  # a plain volume is always there

    def test_owners_and_modes_in_data_are_kept_across_a_restart(self, make_driver, area: Path) -> None:
        before = make_driver()
        before.create("owned", {})
        data = before.mount("owned", "c1")
        os.chmod(data, 0o700)  # the engine's copy-up gives _data the image directory's mode
        os.chown(data, 1000, 1000)
        (data / "secret").write_text("x")
        os.chown(data / "secret", 2000, 3000)
        os.chmod(data / "secret", 0o4750)
        os.symlink("secret", data / "link")
        before.unmount("owned", "c1")
        after = make_driver()
        after.restore({})
        again = after.mount("owned", "c2")
        assert stat.S_IMODE(os.stat(again).st_mode) == 0o700 and os.stat(again).st_uid == 1000
        found = os.stat(again / "secret")
        assert (found.st_uid, found.st_gid, stat.S_IMODE(found.st_mode)) == (2000, 3000, 0o4750)
        assert os.readlink(again / "link") == "secret"
        after.create("owned", {})  # a repeat does not reset the modes
        assert stat.S_IMODE(os.stat(again).st_mode) == 0o700

    # -- device volumes --------------------------------------------------------------------

    def test_a_tmpfs_volume_is_a_tmpfs_only_while_mounted(self, driver, area: Path) -> None:
        driver.create("memory", TMPFS_1M)
        data = area / "home" / "memory" / "_data"
        assert driver.path("memory") is None and driver.status("memory") == {"mounted": False}
        assert driver.data_path("memory") == data and driver.data_path("nothing") is None  # Mountpoint
        assert driver.mount("memory", "c1") == data
        assert filesystem_type_at(data) == "tmpfs" and driver.path("memory") == data
        blocks = os.statvfs(data)
        assert blocks.f_blocks * blocks.f_frsize == 1 << 20
        found = os.stat(data)
        assert found.st_uid == 1000 and stat.S_IMODE(found.st_mode) == 0o750
        assert driver.status("memory") == {"mounted": True}
        (data / "scratch").write_text("in memory")
        driver.unmount("memory", "c1")
        assert filesystem_type_at(data) is None and driver.path("memory") is None
        assert os.listdir(data) == []  # what was written went with the tmpfs

    def test_mount_flags_in_o_become_mount_flags(self, driver, area: Path) -> None:
        driver.create("locked", {"type": "tmpfs", "device": "tmpfs", "o": "size=1m,ro,nosuid,nodev,noexec"})
        data = driver.mount("locked", "c1")
        assert {"ro", "nosuid", "nodev", "noexec"} <= mount_options_at(data)
        with pytest.raises(OSError) as refused:
            (data / "x").write_text("x")
        assert refused.value.errno == errno.EROFS
        driver.unmount("locked", "c1")

    def test_a_bind_shows_the_host_directory_and_remove_leaves_it_alone(self, driver, area: Path) -> None:
        host = area / "scratch" / "host"
        host.mkdir()
        (host / "from-host").write_text("host data")
        os.chown(host / "from-host", 1000, 1000)
        driver.create("bound", {"type": "none", "device": str(host), "o": "bind"})
        data = driver.mount("bound", "c1")
        assert os.listdir(data) == ["from-host"] and (data / "from-host").read_text() == "host data"
        assert os.stat(data / "from-host").st_uid == 1000
        (data / "from-volume").write_text("volume data")
        assert (host / "from-volume").read_text() == "volume data"
        driver.unmount("bound", "c1")
        assert os.listdir(area / "home" / "bound" / "_data") == []
        driver.mount("bound", "c2")
        driver.remove("bound")  # forced while mounted: the host's files must survive
        assert sorted(os.listdir(host)) == ["from-host", "from-volume"]
        assert not (area / "home" / "bound").exists() and mounts_under(area) == []

    def test_a_read_only_bind_refuses_writes(self, driver, area: Path) -> None:
        host = area / "scratch" / "host"
        host.mkdir()
        driver.create("readonly", {"type": "none", "device": str(host), "o": "bind,ro"})
        data = driver.mount("readonly", "c1")
        assert "ro" in mount_options_at(data)
        with pytest.raises(OSError) as refused:
            (data / "x").write_text("x")
        assert refused.value.errno == errno.EROFS
        (host / "y").write_text("the host can still write")
        driver.unmount("readonly", "c1")

    def test_a_missing_device_is_a_clear_error_and_creates_nothing(self, driver, area: Path) -> None:
        missing = area / "scratch" / "missing"
        with pytest.raises(VolumeDriverError, match=f"{missing} does not exist"):
            driver.create("nothing", {"type": "none", "device": str(missing), "o": "bind"})
        with pytest.raises(VolumeDriverError, match="absolute"):
            driver.create("nothing", {"type": "none", "device": "relative/dir", "o": "bind"})
        with pytest.raises(VolumeDriverError, match="/dev/dyt-no-such-disk does not exist"):
            driver.create("nothing", {"type": "ext4", "device": "/dev/dyt-no-such-disk"})
        assert driver.list() == [] and os.listdir(area / "home") == []

    def test_a_device_gone_since_create_fails_the_mount_clearly(self, driver, area: Path) -> None:
        host = area / "scratch" / "host"
        host.mkdir()
        driver.create("orphaned", {"type": "none", "device": str(host), "o": "bind"})
        host.rmdir()
        with pytest.raises(VolumeDriverError, match=f"{host} does not exist"):
            driver.mount("orphaned", "c1")
        assert mounts_under(area) == [] and driver.path("orphaned") is None
        host.mkdir()
        assert driver.mount("orphaned", "c1") == area / "home" / "orphaned" / "_data"
        driver.unmount("orphaned", "c1")

    def test_a_failing_mount_names_the_filesystem_and_leaves_nothing(self, driver, area: Path) -> None:
        driver.create("odd", {"type": "dytnosuchfs", "device": "nothing"})
        with pytest.raises(VolumeDriverError, match="no dytnosuchfs filesystem"):
            driver.mount("odd", "c1")
        assert mounts_under(area) == [] and driver.path("odd") is None
        assert json.loads((area / "home" / "odd" / "mounts.json").read_text()) == []

    def test_creating_again_with_other_options_is_refused(self, driver) -> None:
        driver.create("sized", TMPFS_1M)
        with pytest.raises(VolumeDriverError, match="already exists with other options"):
            driver.create("sized", {})
        driver.create("sized", dict(TMPFS_1M))

    # -- restarts and crashes ----------------------------------------------------------------

    def test_restore_mounts_again_a_volume_in_use_whose_mount_is_gone(self, make_driver, area: Path) -> None:
        before = make_driver()
        before.create("memory", TMPFS_1M)
        data = before.mount("memory", "c1")
        subprocess.run(["umount", str(data)], check=True)  # as after a reboot
        after = make_driver()
        assert after.path("memory") is None
        after.restore({"memory": ["c1"]})
        assert filesystem_type_at(data) == "tmpfs" and after.path("memory") == data
        after.unmount("memory", "c1")
        assert mounts_under(area) == []

    def test_a_failed_create_leaves_nothing(self, driver, area: Path, monkeypatch) -> None:
        def refuse(source, destination):
            raise OSError(errno.EIO, "disk on fire")

        monkeypatch.setattr("dockyard.plugin.volume_records.os.rename", refuse)
        with pytest.raises(OSError, match="disk on fire"):
            driver.create("doomed", {})
        monkeypatch.undo()
        assert os.listdir(area / "home") == [] and driver.list() == []

    def test_a_crash_mid_remove_is_finished_at_start_without_touching_bound_data(self, make_driver,
                                                                                 area: Path) -> None:
        host = area / "scratch" / "host"
        host.mkdir()
        (host / "precious").write_text("keep")
        half_removed = area / "home" / ".removing-gone-0badc0de"
        (half_removed / "_data").mkdir(parents=True)
        # a crash between rename and unmount would leave a bind inside: deleting must not follow it
        subprocess.run(["mount", "--bind", str(host), str(half_removed / "_data")], check=True)
        driver = make_driver()
        assert not half_removed.exists() and driver.list() == []
        assert (host / "precious").read_text() == "keep"
