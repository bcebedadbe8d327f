"""What the overlay driver does on disk and in the mount table, beyond the shared suite:
the moby overlay2 layout, whiteouts as the kernel wants them, deep stacks, stale mounts."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from dockyard.plugin import DriverContext
from dockyard.plugin.testing.storage import LayerTar, mounts_under
from dockyard_storage_overlay import kernel
from dockyard_storage_overlay.driver import OverlayDriver

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="overlayfs mounts need root")


@pytest.fixture
def home(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    yield home
    leftovers = mounts_under(tmp_path)
    for point in sorted(leftovers, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
    assert not leftovers, f"mounts left behind: {leftovers}"


def make(home: Path) -> OverlayDriver:
    return OverlayDriver(DriverContext(kind="storage", name="overlay", home=home, exec_root=home.parent))


def build(driver: OverlayDriver, layer_id: str, parent: str | None, tar: LayerTar) -> None:
    driver.create_layer(layer_id, parent)
    driver.apply_diff(layer_id, parent, tar.stream())


def test_the_layout_is_moby_overlay2(home: Path) -> None:
    driver = make(home)
    build(driver, "base", None, LayerTar().file("a", b"a"))
    build(driver, "child", "base", LayerTar().file("b", b"b"))
    driver.create_writable_layer("container", "child")
    assert sorted(os.listdir(home / "base")) == ["diff", "link"]
    assert sorted(os.listdir(home / "child")) == ["diff", "link", "lower", "merged", "parent"]
    assert sorted(os.listdir(home / "container")) == ["diff", "link", "lower", "merged", "parent", "work"]
    short = {layer: (home / layer / "link").read_text() for layer in ("base", "child", "container")}
    for layer, name in short.items():
        assert os.readlink(home / "l" / name) == f"../{layer}/diff"
        assert (home / "l" / name).resolve() == (home / layer / "diff").resolve()
    assert (home / "child" / "lower").read_text() == f"l/{short['base']}"
    assert (home / "container" / "lower").read_text() == f"l/{short['child']}:l/{short['base']}"
    assert (home / "container" / "parent").read_text() == "child"


def test_whiteouts_are_character_devices_and_opaque_dirs_carry_the_xattr(home: Path) -> None:
    driver = make(home)
    build(driver, "one", None, LayerTar().file("gone", b"x").dir("d").file("d/old", b"x"))
    build(driver, "two", "one", LayerTar().whiteout("gone").dir("d").opaque("d").file("d/new", b"n"))
    diff = home / "two" / "diff"
    whiteout = os.lstat(diff / "gone")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert os.getxattr(diff / "d", "trusted.overlay.opaque") == b"y"
    assert not (diff / ".wh.gone").exists() and not (diff / "d" / ".wh..wh..opq").exists()
    # The native diff turns them back into OCI whiteouts, and leaves overlay's xattr out.
    members = tarfile.open(fileobj=io.BytesIO(b"".join(driver.diff("two", "one")))).getmembers()
    assert [member.name for member in members] == ["d", "d/.wh..wh..opq", "d/new", ".wh.gone"]
    assert not any("trusted.overlay" in key for member in members for key in member.pax_headers)


def test_a_tar_cannot_plant_overlay_xattrs(home: Path) -> None:
    driver = make(home)
    build(driver, "one", None, LayerTar().dir("d").file("d/old", b"x"))
    build(driver, "two", "one", LayerTar().dir("d", xattrs={"trusted.overlay.opaque": b"y"}))
    with pytest.raises(OSError):
        os.getxattr(home / "two" / "diff" / "d", "trusted.overlay.opaque")
    root = driver.mount("two")
    try:
        assert os.listdir(root / "d") == ["old"]
    finally:
        driver.unmount("two")


def test_image_layers_mount_read_only_and_container_layers_read_write(home: Path) -> None:
    driver = make(home)
    build(driver, "base", None, LayerTar().file("a", b"a"))
    build(driver, "image", "base", LayerTar().file("b", b"b"))
    driver.create_writable_layer("container", "image")
    image_root, container_root = driver.mount("image"), driver.mount("container")
    try:
        with pytest.raises(OSError):
            (image_root / "c").write_text("no")
        (container_root / "c").write_text("yes")
        assert (home / "container" / "diff" / "c").read_text() == "yes"
        assert sorted(mounts_under(home)) == sorted([str(image_root), str(container_root)])
    finally:
        driver.unmount("container")
        driver.unmount("image")


def test_deep_stacks_under_a_long_home_mount_with_paths_relative_to_home(tmp_path: Path, home: Path) -> None:
    long_home = home / ("h" * 200)
    long_home.mkdir()
    driver = make(long_home)
    parent = None
    for number in range(40):  # 40 absolute lowerdirs of ~250 bytes each exceed a page
        build(driver, f"layer{number}", parent, LayerTar().file(f"f{number}", b"x"))
        parent = f"layer{number}"
    driver.create_writable_layer("container", parent)
    root = driver.mount("container")
    try:
        assert len(os.listdir(root)) == 40
        line = next(line for line in open("/proc/self/mountinfo") if str(root) in line)
        assert "lowerdir=l/" in line and "upperdir=container/diff" in line
    finally:
        driver.unmount("container")


def test_a_stack_too_deep_for_one_mount_is_refused_clearly(home: Path) -> None:
    driver = make(home)
    parent = None
    with pytest.raises(OSError, match="flatten the image"):
        for number in range(400):
            driver.create_layer(f"l{number}", parent)
            parent = f"l{number}"
    assert 250 < number < 400  # about 300 layers fit in a page of relative options


def test_remove_unmounts_a_mount_the_driver_forgot(home: Path) -> None:
    build(make(home), "base", None, LayerTar().file("a", b"a"))
    first = make(home)
    first.create_writable_layer("container", "base")
    first.mount("container")
    restarted = make(home)  # no recover(): the mount is unknown to this instance
    restarted.remove("container")
    assert not restarted.exists("container") and mounts_under(home) == []


def test_recover_cleans_half_made_layers_and_dangling_links(home: Path) -> None:
    driver = make(home)
    build(driver, "known", None, LayerTar().file("a", b"a"))
    staging = home / ".new-crashed-0000"
    (staging / "diff").mkdir(parents=True)
    (home / "l" / "DANGLING00").symlink_to("../crashed/diff")
    (home / "stray-file").write_text("not a layer")
    short = (home / "known" / "link").read_text()
    (home / "l" / short).unlink()  # a crash lost a known layer's link: recover remakes it
    assert make(home).recover({"known"}) == ["stray-file"]
    assert sorted(os.listdir(home)) == ["known", "l"]
    assert os.listdir(home / "l") == [short]
    assert os.readlink(home / "l" / short) == "../known/diff"


def test_changes_mount_the_parent_only_while_they_run(home: Path) -> None:
    driver = make(home)
    build(driver, "base", None, LayerTar().file("a", b"a"))
    build(driver, "image", "base", LayerTar().file("b", b"b"))
    driver.create_writable_layer("container", "image")
    driver.mount("image")
    driver.changes("container", "image")
    assert len(mounts_under(home)) == 1  # the engine's own mount of image stays
    driver.unmount("image")
    assert mounts_under(home) == []
    with pytest.raises(ValueError, match="sits on 'image', not 'base'"):
        driver.changes("container", "base")


def test_the_factory_refuses_a_home_on_overlayfs(tmp_path: Path, home: Path) -> None:
    for name in ("lower", "upper", "work", "merged"):
        (home / name).mkdir()
    kernel.mount_overlay(home / "merged", f"lowerdir={home}/lower,upperdir={home}/upper,workdir={home}/work")
    try:
        (home / "merged" / "data-root").mkdir()
        with pytest.raises(RuntimeError, match="cannot hold overlayfs upper dirs.*--storage-driver vfs"):
            make(home / "merged" / "data-root")
    finally:
        kernel.unmount(home / "merged")


def test_removal_frees_the_id_at_once_and_deletes_the_files_in_the_background(home: Path) -> None:
    driver = make(home)
    big = LayerTar()
    for index in range(200):
        big.file(f"dir/f{index}", b"x" * 1000)
    build(driver, "doomed", None, big)
    driver.remove("doomed")
    assert not driver.exists("doomed")
    build(driver, "doomed", None, LayerTar().file("again", b"1"))  # the id is free already
    assert driver.settle(timeout=30)
    assert not [p.name for p in home.iterdir() if p.name.startswith(".gone-")]
    driver.remove("doomed")
    driver.cleanup()  # waits for the delete
    assert not [p.name for p in home.iterdir() if p.name.startswith(".gone-")]
