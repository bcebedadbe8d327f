"""The storage driver conformance suite: the whole `StorageDriver` contract, on the real kernel.

A driver package proves itself with a few lines:

    from dockyard.plugin.testing.storage import StorageDriverSuite

    class TestBtrfs(StorageDriverSuite):
        driver_name = "btrfs"

The driver is built as the daemon builds it: through the installed plugins (strict
mode), with a DriverContext whose home and exec root are fresh temporary directories. A
driver whose probe fails on this host is skipped with the probe's reason. After every
test, no mount may remain below the test's directory (leftovers are detached so the
machine stays clean, and the test fails).

Also here: `LayerTar`, a builder of layer tars (hostile ones included), and
`tree_snapshot`, which reduces a tree to comparable facts; driver-specific tests use both.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockyard.daemon.pluginmanager import PluginManager
from dockyard.plugin import DriverContext
from dockyard.plugin.archive import InvalidArchive, UnsafeArchive
from dockyard.plugin.contracts.storage import Change, StorageDriver

MTIME = 1_700_000_000  # a fixed, whole-second mtime for tar entries


class LayerTar:
    """Builds an uncompressed layer tar in memory, names exactly as given (so `..` and
    absolute paths stay hostile). Every method returns the builder, for chaining."""

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self._tar = tarfile.open(fileobj=self._buffer, mode="w", format=tarfile.PAX_FORMAT)

    def _add(self, name: str, kind: bytes, data: bytes = b"", mode: int = 0o644, uid: int = 0,
             gid: int = 0, mtime: int = MTIME, linkname: str = "",
             xattrs: dict[str, bytes] | None = None) -> LayerTar:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, mtime
        info.linkname = linkname
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        if xattrs:
            info.pax_headers = {f"SCHILY.xattr.{key}": value.decode("utf-8", "surrogateescape")
                                for key, value in xattrs.items()}
        self._tar.addfile(info, io.BytesIO(data) if info.size else None)
        return self

    def file(self, name: str, data: bytes = b"", mode: int = 0o644, **meta) -> LayerTar:
        return self._add(name, tarfile.REGTYPE, data, mode, **meta)

    def dir(self, name: str, mode: int = 0o755, **meta) -> LayerTar:
        return self._add(name, tarfile.DIRTYPE, mode=mode, **meta)

    def symlink(self, name: str, target: str, **meta) -> LayerTar:
        return self._add(name, tarfile.SYMTYPE, mode=0o777, linkname=target, **meta)

    def hardlink(self, name: str, target: str) -> LayerTar:
        return self._add(name, tarfile.LNKTYPE, linkname=target)

    def fifo(self, name: str, mode: int = 0o644) -> LayerTar:
        return self._add(name, tarfile.FIFOTYPE, mode=mode)

    def device(self, name: str, major: int = 1, minor: int = 3) -> LayerTar:
        info = tarfile.TarInfo(name)
        info.type, info.devmajor, info.devminor, info.mode = tarfile.CHRTYPE, major, minor, 0o666
        self._tar.addfile(info)
        return self

    def whiteout(self, path: str) -> LayerTar:
        parent, _, name = path.rpartition("/")
        return self.file(f"{parent}/.wh.{name}" if parent else f".wh.{name}", mode=0)

    def opaque(self, directory: str) -> LayerTar:
        return self.file(f"{directory}/.wh..wh..opq", mode=0)

    def bytes(self) -> bytes:
        self._tar.close()
        return self._buffer.getvalue()

    def stream(self) -> io.BytesIO:
        return io.BytesIO(self.bytes())


def tree_snapshot(root: Path, mtimes: bool = True) -> dict[str, tuple]:
    """Every path below `root` ("/a/b") mapped to what a layer must preserve: type, mode,
    owner, size, mtime in whole seconds (tars carry no more), content digest, symlink
    target, device number, xattrs, and for hard-linked files the first path of their
    inode. The root itself is left out: a diff does not carry it."""
    snapshot: dict[str, tuple] = {}
    first_path_of_inode: dict[tuple[int, int], str] = {}
    pending = [""]
    while pending:
        directory = pending.pop()
        for name in sorted(os.listdir(f"{root}{directory}" or "/")):
            path = f"{directory}/{name}"
            full = f"{root}{path}"
            found = os.lstat(full)
            mode = found.st_mode
            digest = target = link_group = None
            if stat.S_ISREG(mode):
                with open(full, "rb") as file:
                    digest = hashlib.sha256(file.read()).hexdigest()
                if found.st_nlink > 1:
                    link_group = first_path_of_inode.setdefault((found.st_dev, found.st_ino), path)
            elif stat.S_ISLNK(mode):
                target = os.readlink(full)
            elif stat.S_ISDIR(mode):
                pending.append(path)
            try:
                names = os.listxattr(full, follow_symlinks=False)
            except OSError:
                names = []
            xattrs = tuple(sorted((key, os.getxattr(full, key, follow_symlinks=False))
                                  for key in names if key.startswith("user.")))
            snapshot[path] = (
                stat.S_IFMT(mode), stat.S_IMODE(mode), found.st_uid, found.st_gid,
                found.st_size if stat.S_ISREG(mode) else None,
                int(found.st_mtime) if mtimes else None,
                digest, target, found.st_rdev if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else None,
                xattrs, link_group,
            )
    return snapshot


def assert_same_tree(actual: dict[str, tuple], expected: dict[str, tuple]) -> None:
    """Compare two snapshots and name the paths that differ (plain == hides them)."""
    fields = ("type", "mode", "uid", "gid", "size", "mtime", "sha256", "symlink", "rdev",
              "xattrs", "hard link of")
    problems = [f"only in expected: {path}" for path in sorted(expected.keys() - actual.keys())]
    problems += [f"unexpected: {path}" for path in sorted(actual.keys() - expected.keys())]
    for path in sorted(actual.keys() & expected.keys()):
        for field, got, wanted in zip(fields, actual[path], expected[path], strict=True):
            if got != wanted:
                problems.append(f"{path}: {field} is {got!r}, expected {wanted!r}")
    assert not problems, "trees differ:\n  " + "\n  ".join(problems)


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, from /proc/self/mountinfo."""
    prefix = str(root).rstrip("/")
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found


def _inventory(root: Path) -> tuple[int, int]:
    """(entries, bytes of regular files) below `root`, not descending into mounts."""
    device = os.lstat(root).st_dev
    entries = size = 0
    pending = [str(root)]
    while pending:
        directory = pending.pop()
        for entry in os.scandir(directory):
            found = entry.stat(follow_symlinks=False)
            entries += 1
            if stat.S_ISREG(found.st_mode):
                size += found.st_size
            elif stat.S_ISDIR(found.st_mode) and found.st_dev == device:
                pending.append(entry.path)
    return entries, size


def _names(root: Path) -> set[str]:
    """Every path under `root`. os.walk skips directories that vanish while it walks: a
    driver may delete removed layers in the background (overlay does)."""
    names = set()
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            names.add(os.path.relpath(os.path.join(directory, name), root))
    return names


class StorageDriverSuite:
    """Subclass with `driver_name` set; every test_* method is one clause of the contract."""

    driver_name: str = ""
    #: False for drivers whose writable layers copy the image (vfs): the test that a
    #: container layer costs the same whatever the image's size is then skipped.
    cheap_writable_layers: bool = True

    # -- fixtures ---------------------------------------------------------------------

    @pytest.fixture
    def area(self, tmp_path: Path) -> Path:
        """The test's directory: home/ and exec/ for the driver, outside/ as a sentinel
        that hostile layers aim at."""
        for name in ("home", "exec", "outside"):
            (tmp_path / name).mkdir()
        (tmp_path / "outside" / "secret").write_text("keep me")
        return tmp_path

    @pytest.fixture
    def make_driver(self, area: Path) -> Iterator[Callable[[], StorageDriver]]:
        """Builds a driver on the test's home; called twice, it simulates a restart."""
        assert self.driver_name, "set driver_name on your StorageDriverSuite subclass"
        spec = PluginManager(strict=True).load_all().find("storage", self.driver_name)
        reason = spec.why_unsupported()
        if reason:
            pytest.skip(f"storage driver {self.driver_name} cannot run here: {reason}")
        made: list[StorageDriver] = []

        def make() -> StorageDriver:
            context = DriverContext(kind="storage", name=spec.name, home=area / "home",
                                    exec_root=area / "exec")
            driver = spec.factory(context)
            assert isinstance(driver, StorageDriver), f"{type(driver)} lacks StorageDriver methods"
            made.append(driver)
            return driver

        yield make
        for driver in made:
            driver.cleanup()
        leftovers = mounts_under(area)
        for point in sorted(leftovers, reverse=True):
            subprocess.run(["umount", "-l", point], check=False)
        assert not leftovers, f"mounts left behind by the driver: {leftovers}"

    @pytest.fixture
    def driver(self, make_driver: Callable[[], StorageDriver]) -> StorageDriver:
        return make_driver()

    # -- helpers ----------------------------------------------------------------------

    @staticmethod
    def build(driver: StorageDriver, layer_id: str, parent_id: str | None, tar: LayerTar) -> int:
        driver.create_layer(layer_id, parent_id)
        return driver.apply_diff(layer_id, parent_id, tar.stream())

    @staticmethod
    def snapshot(driver: StorageDriver, layer_id: str, mtimes: bool = True) -> dict[str, tuple]:
        root = driver.mount(layer_id)
        try:
            return tree_snapshot(root, mtimes)
        finally:
            driver.unmount(layer_id)

    @staticmethod
    def image_tar() -> LayerTar:
        return (LayerTar()
                .dir("etc").file("etc/conf", b"old config").file("etc/old", b"remove me")
                .dir("var").dir("var/cache").file("var/cache/a", b"x").file("var/cache/b", b"y")
                .dir("bin").file("bin/tool", b"#!/bin/sh\n", mode=0o755)
                .dir("usr").dir("usr/share").dir("usr/share/doc").file("usr/share/doc/readme", b"hi")
                .dir("srv").dir("keep").file("keep/same", b"same"))

    # -- creating, mounting, removing -------------------------------------------------

    def test_a_base_layer_keeps_everything_a_tar_says(self, driver: StorageDriver) -> None:
        tar = (LayerTar()
               .dir("bin", mode=0o755)
               .file("bin/su", b"setuid", mode=0o4755)
               .file("data", b"payload" * 100, mode=0o640, uid=1000, gid=2000, mtime=1_500_000_000,
                     xattrs={"user.origin": b"test"})
               .hardlink("data-link", "data")
               .symlink("absolute", "/etc/passwd")
               .symlink("relative", "bin/su")
               .fifo("pipe", mode=0o600)
               .dir("locked", mode=0o555).file("locked/inside", b"in a read-only dir"))
        assert self.build(driver, "base", None, tar) == len(b"setuid") + 700 + len(b"in a read-only dir")
        root = driver.mount("base")
        try:
            data = os.lstat(root / "data")
            assert (root / "data").read_bytes() == b"payload" * 100
            assert stat.S_IMODE(data.st_mode) == 0o640 and data.st_mtime == 1_500_000_000
            if os.geteuid() == 0:
                assert (data.st_uid, data.st_gid) == (1000, 2000)
            assert os.getxattr(root / "data", "user.origin") == b"test"
            assert os.lstat(root / "data-link").st_ino == data.st_ino and data.st_nlink == 2
            assert stat.S_IMODE(os.lstat(root / "bin" / "su").st_mode) == 0o4755
            assert os.readlink(root / "absolute") == "/etc/passwd"
            assert os.readlink(root / "relative") == "bin/su"
            assert stat.S_ISFIFO(os.lstat(root / "pipe").st_mode)
            assert stat.S_IMODE(os.lstat(root / "locked").st_mode) == 0o555
            assert (root / "locked" / "inside").read_bytes() == b"in a read-only dir"
        finally:
            driver.unmount("base")

    def test_device_nodes_are_skipped_because_the_runtime_provides_dev(self, driver: StorageDriver) -> None:
        self.build(driver, "base", None, LayerTar().dir("dev").device("dev/null").file("dev/keep"))
        root = driver.mount("base")
        try:
            assert sorted(os.listdir(root / "dev")) == ["keep"]
        finally:
            driver.unmount("base")

    def test_existing_ids_are_refused_and_removal_is_idempotent(self, driver: StorageDriver) -> None:
        assert not driver.exists("base")
        driver.create_layer("base", None)
        assert driver.exists("base")
        with pytest.raises(FileExistsError):
            driver.create_layer("base", None)
        driver.create_writable_layer("container", "base")
        with pytest.raises(FileExistsError):
            driver.create_writable_layer("container", "base")
        driver.remove("container")
        driver.remove("container")
        driver.remove("never-existed")
        assert not driver.exists("container") and driver.exists("base")
        driver.create_writable_layer("container", "base")  # the id is free again
        assert driver.exists("container")

    def test_layer_ids_up_to_128_characters_work(self, driver: StorageDriver) -> None:
        long_id, chain_id = "a" * 128, "f" * 64
        self.build(driver, chain_id, None, LayerTar().file("x", b"1"))
        self.build(driver, long_id, chain_id, LayerTar().file("y", b"2"))
        assert set(self.snapshot(driver, long_id)) == {"/x", "/y"}
        driver.remove(long_id)
        driver.remove(chain_id)
        assert not driver.exists(long_id) and not driver.exists(chain_id)

    def test_mounts_are_counted(self, driver: StorageDriver, area: Path) -> None:
        self.build(driver, "base", None, LayerTar().file("hello", b"world"))
        self.build(driver, "child", "base", LayerTar().file("more", b"!"))
        driver.create_writable_layer("container", "child")
        for layer_id in ("base", "child", "container"):
            first = driver.mount(layer_id)
            assert driver.mount(layer_id) == first
            driver.unmount(layer_id)
            assert (first / "hello").read_bytes() == b"world", f"{layer_id} went away after one unmount"
            if layer_id == "container":
                (first / "written").write_text("through the mount")
            driver.unmount(layer_id)
            assert mounts_under(area / "home") == [], f"{layer_id} is still mounted after the last unmount"
        assert (driver.mount("container") / "written").read_text() == "through the mount"
        driver.unmount("container")

    # -- whiteouts ----------------------------------------------------------------------

    def test_whiteouts_and_opaque_directories_across_three_layers(self, driver: StorageDriver) -> None:
        self.build(driver, "one", None, LayerTar()
                   .dir("a").file("a/x", b"x").file("a/y", b"y")
                   .dir("d").file("d/p", b"p").file("d/q", b"q").dir("d/sub").file("d/sub/r", b"r")
                   .file("f", b"f").file("g", b"g").file("keep", b"keep"))
        self.build(driver, "two", "one", LayerTar()
                   .whiteout("f").dir("a").whiteout("a/x")
                   .dir("d").file("d/new", b"new").opaque("d")  # the marker after a sibling
                   .file("g", b"g, version two").file("h", b"h"))
        self.build(driver, "three", "two", LayerTar()
                   .file("f", b"again").dir("a").file("a/z", b"z").whiteout("h").whiteout("g")
                   .dir("d").file("d/p", b"new p").whiteout("d/new"))
        two = self.snapshot(driver, "two")
        assert set(two) == {"/a", "/a/y", "/d", "/d/new", "/g", "/h", "/keep"}
        three = self.snapshot(driver, "three")
        assert set(three) == {"/a", "/a/y", "/a/z", "/d", "/d/p", "/f", "/keep"}
        root = driver.mount("three")
        try:
            assert (root / "f").read_bytes() == b"again" and (root / "d" / "p").read_bytes() == b"new p"
        finally:
            driver.unmount("three")
        assert driver.changes("two", "one") == [
            Change("/a", "C"), Change("/a/x", "D"), Change("/d", "C"), Change("/d/new", "A"),
            Change("/d/p", "D"), Change("/d/q", "D"), Change("/d/sub", "D"), Change("/f", "D"),
            Change("/g", "C"), Change("/h", "A"),
        ]

    # -- changes and diffs --------------------------------------------------------------

    def _work_in_a_container(self, driver: StorageDriver) -> None:
        self.build(driver, "image", None, self.image_tar())
        driver.create_writable_layer("container", "image")
        root = driver.mount("container")
        try:
            (root / "new.txt").write_text("new")
            (root / "etc" / "conf").write_text("a longer, new config")
            (root / "etc" / "old").unlink()
            for name in ("a", "b"):
                (root / "var" / "cache" / name).unlink()
            (root / "var" / "cache").rmdir()
            (root / "bin" / "tool").rename(root / "bin" / "tool2")
            (root / "srv" / "data").mkdir()
            (root / "srv" / "data" / "f").write_text("data")
            os.link(root / "srv" / "data" / "f", root / "srv" / "data" / "f2")
            (root / "usr" / "share" / "doc" / "readme").chmod(0o600)
            os.symlink("new.txt", root / "link")
        finally:
            driver.unmount("container")

    def test_changes_of_a_container_layer(self, driver: StorageDriver) -> None:
        self._work_in_a_container(driver)
        assert driver.changes("container", "image") == [
            Change("/bin", "C"), Change("/bin/tool", "D"), Change("/bin/tool2", "A"),
            Change("/etc", "C"), Change("/etc/conf", "C"), Change("/etc/old", "D"),
            Change("/link", "A"), Change("/new.txt", "A"),
            Change("/srv", "C"), Change("/srv/data", "A"), Change("/srv/data/f", "A"),
            Change("/srv/data/f2", "A"),
            Change("/usr", "C"), Change("/usr/share", "C"), Change("/usr/share/doc", "C"),
            Change("/usr/share/doc/readme", "C"),
            Change("/var", "C"), Change("/var/cache", "D"),
        ]

    def test_the_diff_of_a_container_layer_recreates_it(self, driver: StorageDriver) -> None:
        self._work_in_a_container(driver)
        tar_bytes = b"".join(driver.diff("container", "image"))
        names = tarfile.open(fileobj=io.BytesIO(tar_bytes)).getnames()
        assert {"etc/.wh.old", "var/.wh.cache", "bin/.wh.tool", "new.txt"} <= set(names)
        assert "keep/same" not in names and "keep" not in names
        driver.create_layer("replica", "image")
        driver.apply_diff("replica", "image", io.BytesIO(tar_bytes))
        assert_same_tree(self.snapshot(driver, "replica"), self.snapshot(driver, "container"))

    def test_the_diffs_of_image_layers_recreate_them(self, driver: StorageDriver) -> None:
        self.build(driver, "one", None, self.image_tar().hardlink("etc/conf-link", "etc/conf"))
        self.build(driver, "two", "one", LayerTar()
                   .dir("etc").whiteout("etc/old").file("etc/added", b"added", mode=0o600)
                   .dir("var").dir("var/cache").opaque("var/cache").file("var/cache/c", b"c"))
        base_tar = b"".join(driver.diff("one", None))
        driver.create_layer("one-again", None)
        driver.apply_diff("one-again", None, io.BytesIO(base_tar))
        assert_same_tree(self.snapshot(driver, "one-again"), self.snapshot(driver, "one"))
        driver.create_layer("two-again", "one")
        driver.apply_diff("two-again", "one", io.BytesIO(b"".join(driver.diff("two", "one"))))
        assert_same_tree(self.snapshot(driver, "two-again"), self.snapshot(driver, "two"))

    def test_diff_size_counts_added_and_changed_content(self, driver: StorageDriver) -> None:
        written = self.build(driver, "image", None, LayerTar().file("big", bytes(10_000))
                             .file("other", bytes(777)))
        assert written == 10_777 and driver.diff_size("image", None) == 10_777
        driver.create_writable_layer("container", "image")
        assert driver.diff_size("container", "image") == 0
        root = driver.mount("container")
        try:
            (root / "new").write_bytes(bytes(3000))
            (root / "dir").mkdir()
            (root / "dir" / "new2").write_bytes(bytes(500))
            with open(root / "big", "ab") as big:
                big.write(b"!")
            (root / "other").unlink()
        finally:
            driver.unmount("container")
        assert driver.diff_size("container", "image") == 3000 + 500 + 10_001

    # -- hostile layers -------------------------------------------------------------------

    @staticmethod
    def hostile_tars(outside: Path) -> dict[str, LayerTar]:
        climb = "../" * 30 + str(outside).lstrip("/")
        return {
            "dot-dot": LayerTar().file(f"{climb}/pwned", b"x"),
            "dot-dot in a directory": LayerTar().dir("a").file("a/../../pwned", b"x"),
            "write through an absolute symlink": LayerTar().symlink("evil", str(outside))
            .file("evil/pwned", b"x"),
            "write through a relative symlink": LayerTar().symlink("evil", climb)
            .file("evil/pwned", b"x"),
            "directory through a symlink": LayerTar().symlink("evil", str(outside)).dir("evil/sub"),
            "symlink swapped in for a directory": LayerTar().dir("d").file("d/a", b"a")
            .symlink("d", str(outside)).file("d/pwned", b"x"),
            "hard link climbing out": LayerTar().hardlink("grab", f"{climb}/secret"),
            "hard link to a host path": LayerTar().hardlink("grab", "/etc/passwd"),
            "hard link through a symlink": LayerTar().symlink("evil", str(outside))
            .hardlink("grab", "evil/secret"),
            "whiteout through a symlink": LayerTar().symlink("evil", str(outside)).whiteout("evil/secret"),
            "opaque through a symlink": LayerTar().symlink("evil", str(outside)).opaque("evil"),
            "whiteout of '..'": LayerTar().dir("a").file("a/.wh..", b""),
        }

    def test_hostile_layers_are_rejected_and_nothing_lands_outside(self, driver: StorageDriver,
                                                                   area: Path) -> None:
        outside = area / "outside"
        before = _names(area)
        for number, (case, tar) in enumerate(self.hostile_tars(outside).items()):
            layer_id = f"hostile{number}"
            driver.create_layer(layer_id, None)
            with pytest.raises(UnsafeArchive):
                driver.apply_diff(layer_id, None, tar.stream())
            assert sorted(os.listdir(outside)) == ["secret"], f"{case}: something landed outside"
            secret = os.lstat(outside / "secret")  # before reading: a FIFO there would block
            assert stat.S_ISREG(secret.st_mode) and secret.st_nlink == 1, f"{case}: the sentinel was replaced"
            assert (outside / "secret").read_text() == "keep me", f"{case}: the sentinel changed"
            driver.remove(layer_id)
        assert {name for name in _names(area) - before if not name.startswith("home/")} == set()

    def test_corrupt_layers_are_rejected(self, driver: StorageDriver) -> None:
        good = LayerTar().file("a", b"x" * 5000).bytes()
        for number, data in enumerate((good[:3000], good[:600], b"\x1f\x8b\x08" + bytes(600),
                                       b"not a tar at all" * 64)):
            driver.create_layer(f"bad{number}", None)
            with pytest.raises(InvalidArchive):
                driver.apply_diff(f"bad{number}", None, io.BytesIO(data))
            driver.remove(f"bad{number}")

    def test_absolute_paths_are_relative_to_the_layer_root(self, driver: StorageDriver,
                                                           area: Path) -> None:
        self.build(driver, "base", None, LayerTar().file("/etc/hostname", b"box")
                   .symlink("/bin", "usr/bin"))
        assert set(self.snapshot(driver, "base")) == {"/etc", "/etc/hostname", "/bin"}

    # -- the driver's life ----------------------------------------------------------------

    def test_recover_removes_unknown_layers_and_keeps_known_ones(
            self, make_driver: Callable[[], StorageDriver], area: Path) -> None:
        before = make_driver()
        self.build(before, "known", None, LayerTar().file("a", b"a"))
        self.build(before, "known-child", "known", LayerTar().file("b", b"b"))
        before.create_layer("half-made", "known")  # the engine never recorded it
        before.create_writable_layer("unknown-container", "known-child")
        before.mount("unknown-container")
        before.mount("known-child")
        before.mount("known-child")

        after = make_driver()  # the daemon restarts: mounts survive, counts do not
        removed = after.recover({"known", "known-child"})
        assert sorted(removed) == ["half-made", "unknown-container"]
        assert after.exists("known") and after.exists("known-child")
        assert not after.exists("half-made") and not after.exists("unknown-container")
        after.unmount("known-child")  # still mounted from before the restart: counts once
        assert mounts_under(area / "home") == []
        assert set(self.snapshot(after, "known-child")) == {"/a", "/b"}
        after.create_layer("half-made", "known")  # the id is free again
        assert after.recover({"known", "known-child", "half-made"}) == []

    def test_recover_right_after_removes(self, driver: StorageDriver, area: Path) -> None:
        # The engine collects unused layers at start-up and then calls recover: a driver
        # that deletes in the background must not trip over its own deletions.
        for number in range(20):
            self.build(driver, f"doomed{number}", None, LayerTar().file("a", b"x" * 4096))
        self.build(driver, "kept", None, LayerTar().file("k", b"k"))
        for number in range(20):
            driver.remove(f"doomed{number}")
        assert driver.recover({"kept"}) == []
        assert driver.exists("kept")
        assert not any(driver.exists(f"doomed{number}") for number in range(20))

    def test_a_chain_of_130_layers_mounts(self, driver: StorageDriver) -> None:
        expected = set()
        parent = None
        for number in range(130):
            tar = LayerTar().file(f"layer{number:03d}", str(number).encode())
            expected.add(f"/layer{number:03d}")
            if number % 10 == 9:
                tar.whiteout(f"layer{number - 5:03d}")
                expected.discard(f"/layer{number - 5:03d}")
            self.build(driver, f"layer{number:03d}", parent, tar)
            parent = f"layer{number:03d}"
        driver.create_writable_layer("container", parent)
        root = driver.mount("container")
        try:
            (root / "written").write_text("on top of 130 layers")
            assert set(os.listdir(root)) == {name.lstrip("/") for name in expected} | {"written"}
            assert (root / "layer000").read_text() == "0" and (root / "layer129").read_text() == "129"
        finally:
            driver.unmount("container")
        assert set(self.snapshot(driver, parent)) == expected

    def test_a_container_layer_costs_the_same_over_any_image(self, driver: StorageDriver,
                                                            area: Path) -> None:
        if not self.cheap_writable_layers:
            pytest.skip(f"{self.driver_name} copies the image into every container layer")
        big = LayerTar().dir("lib")
        for number in range(200):
            big.file(f"lib/file{number}", os.urandom(20_000))
        self.build(driver, "big", None, big)  # 4 MB in 200 files
        self.build(driver, "tiny", None, LayerTar().file("one", b"1"))
        home = area / "home"
        start = _inventory(home)
        driver.create_writable_layer("over-big", "big")
        after_big = _inventory(home)
        driver.create_writable_layer("over-tiny", "tiny")
        after_tiny = _inventory(home)
        big_cost = (after_big[0] - start[0], after_big[1] - start[1])
        tiny_cost = (after_tiny[0] - after_big[0], after_tiny[1] - after_big[1])
        assert big_cost[0] == tiny_cost[0], \
            f"entries created: {big_cost[0]} over the big image, {tiny_cost[0]} over the tiny one"
        assert big_cost[1] < 64 * 1024, f"{big_cost[1]} bytes written for a container layer: a copy?"
        for layer_id in ("over-big", "over-tiny"):  # and mounting copies nothing either
            driver.mount(layer_id)
        assert _inventory(home)[1] - after_tiny[1] < 64 * 1024
        for layer_id in ("over-big", "over-tiny"):
            driver.unmount(layer_id)

    def test_status_is_a_list_of_string_pairs(self, driver: StorageDriver) -> None:
        status = list(driver.status())
        assert status and all(isinstance(key, str) and isinstance(value, str) for key, value in status)
