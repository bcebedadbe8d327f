"""The tmpfs driver's own behaviour, on the real kernel: a tmpfs from create to remove, its
size, mode and owner, content shared and kept while unused, and reboots simulated by
unmounting it behind the driver's back."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from dockyard.plugin import VolumeDriverError
from dockyard.plugin.testing.volume import VolumeDriverSuite, filesystem_type_at, mounts_under

pytestmark = pytest.mark.root


def mount_options_at(path: Path) -> set[str]:
    target = str(path.resolve())
    found = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == target:
            found = set(fields[5].split(",")) | set(fields[-1].split(","))
    return found


def tmpfs_size(path: Path) -> int:
    blocks = os.statvfs(path)
    return blocks.f_blocks * blocks.f_frsize


class TestTmpfsDriver:
    driver_name = "tmpfs"
    area = VolumeDriverSuite.area
    make_driver = VolumeDriverSuite.make_driver
    driver = VolumeDriverSuite.driver

    def test_a_volume_is_a_tmpfs_from_create_to_remove(self, driver, area: Path) -> None:
        driver.create("memory", {"size": "1m"})
        point = area / "exec" / "volumes-tmpfs" / "memory"
        assert driver.path("memory") == point and filesystem_type_at(point) == "tmpfs"
        assert {"nosuid", "nodev"} <= mount_options_at(point)
        assert tmpfs_size(point) == 1 << 20
        assert driver.status("memory") == {"size": "1048576", "mode": "1777"}
        assert driver.mount("memory", "c1") == point
        driver.unmount("memory", "c1")
        assert filesystem_type_at(point) == "tmpfs"  # kept while the volume exists
        driver.remove("memory")
        assert mounts_under(area) == [] and not point.exists()
        assert os.listdir(area / "home") == [] and driver.list() == []

    def test_the_size_is_enforced(self, driver) -> None:
        driver.create("small", {"size": "1m"})
        point = driver.mount("small", "c1")
        with pytest.raises(OSError) as full, open(point / "big", "wb") as big:
            for _ in range(3):
                big.write(b"\0" * (1 << 20))
                big.flush()
                os.fsync(big.fileno())
        assert full.value.errno == errno.ENOSPC
        driver.unmount("small", "c1")

    def test_mode_and_owner_apply_to_the_volume_root(self, driver) -> None:
        driver.create("owned", {"size": "64k", "mode": "0750", "uid": "1000", "gid": "2000"})
        found = os.stat(driver.path("owned"))
        assert stat.S_IMODE(found.st_mode) == 0o750 and (found.st_uid, found.st_gid) == (1000, 2000)
        assert driver.status("owned") == {"size": "65536", "mode": "0750", "uid": "1000", "gid": "2000"}
        driver.create("sticky", {})
        assert stat.S_IMODE(os.stat(driver.path("sticky")).st_mode) == 0o1777

    def test_content_is_shared_between_mount_ids_and_kept_while_unused(self, driver) -> None:
        driver.create("shared", {"size": "1m"})
        first, second = driver.mount("shared", "c1"), driver.mount("shared", "c2")
        assert first == second
        (first / "note").write_text("from c1")
        assert (second / "note").read_text() == "from c1"
        driver.unmount("shared", "c1")
        driver.unmount("shared", "c2")
        assert (driver.path("shared") / "note").read_text() == "from c1"
        assert (driver.mount("shared", "c3") / "note").read_text() == "from c1"
        driver.unmount("shared", "c3")

    def test_creating_again_compares_what_the_options_mean(self, driver) -> None:
        driver.create("sized", {"size": "1m", "mode": "700"})
        driver.create("sized", {"size": "1048576", "mode": "0700"})  # the same volume, written otherwise
        with pytest.raises(VolumeDriverError, match="already exists with other options"):
            driver.create("sized", {"size": "2m", "mode": "700"})
        assert tmpfs_size(driver.path("sized")) == 1 << 20

    def test_restore_mounts_again_a_tmpfs_gone_in_a_reboot(self, make_driver, area: Path) -> None:
        before = make_driver()
        before.create("rebooted", {"size": "1m", "mode": "0700"})
        (before.mount("rebooted", "c1") / "lost").write_text("memory only")
        point = before.path("rebooted")
        subprocess.run(["umount", str(point)], check=True)  # a reboot empties the exec root too
        shutil.rmtree(area / "exec")
        after = make_driver()
        assert after.list() == ["rebooted"] and after.path("rebooted") is None
        assert after.data_path("rebooted") == point and after.data_path("nothing") is None
        after.restore({})
        assert after.path("rebooted") == point and filesystem_type_at(point) == "tmpfs"
        assert os.listdir(point) == [] and tmpfs_size(point) == 1 << 20
        assert stat.S_IMODE(os.stat(point).st_mode) == 0o700

    def test_mount_brings_back_a_tmpfs_unmounted_behind_its_back(self, driver) -> None:
        driver.create("vanished", {"size": "1m"})
        point = driver.path("vanished")
        subprocess.run(["umount", str(point)], check=True)
        assert driver.path("vanished") is None
        assert driver.mount("vanished", "c1") == point and filesystem_type_at(point) == "tmpfs"
        driver.unmount("vanished", "c1")

    def test_a_crash_mid_create_leaves_a_mount_the_next_start_removes(self, make_driver, area: Path) -> None:
        orphan = area / "exec" / "volumes-tmpfs" / "orphan"
        orphan.mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(orphan)], check=True)
        driver = make_driver()
        assert mounts_under(area) == [] and not orphan.exists() and driver.list() == []

    def test_a_failed_create_leaves_nothing(self, driver, area: Path, monkeypatch) -> None:
        def refuse(source, destination):
            raise OSError(errno.EIO, "disk on fire")

        monkeypatch.setattr("dockyard.plugin.volume_records.os.rename", refuse)
        with pytest.raises(OSError, match="disk on fire"):
            driver.create("doomed", {"size": "1m"})
        monkeypatch.undo()
        assert mounts_under(area) == [] and os.listdir(area / "home") == []
        assert os.listdir(area / "exec" / "volumes-tmpfs") == [] and driver.list() == []
