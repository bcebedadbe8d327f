"""What the vfs driver does on disk, beyond the shared suite: real copies, and the
leftovers of an interrupted create or remove."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dockyard.plugin import DriverContext
from dockyard.plugin.testing.storage import LayerTar
from dockyard_storage_vfs.driver import VfsDriver


def make(home: Path) -> VfsDriver:
    home.mkdir(exist_ok=True)
    return VfsDriver(DriverContext(kind="storage", name="vfs", home=home, exec_root=home.parent))


def test_every_layer_is_a_full_copy_with_its_hard_links(tmp_path: Path) -> None:
    driver = make(tmp_path / "home")
    driver.create_layer("base", None)
    driver.apply_diff("base", None, LayerTar().file("a", b"a" * 100, uid=7, xattrs={"user.k": b"v"})
                      .hardlink("b", "a").stream())
    driver.create_writable_layer("container", "base")
    base, container = tmp_path / "home" / "base", tmp_path / "home" / "container"
    assert driver.mount("container") == container
    driver.unmount("container")
    copied = os.lstat(container / "a")
    assert copied.st_ino != os.lstat(base / "a").st_ino  # a copy, not a link to the parent
    assert copied.st_ino == os.lstat(container / "b").st_ino and copied.st_nlink == 2
    assert os.getxattr(container / "a", "user.k") == b"v"
    if os.geteuid() == 0:
        assert copied.st_uid == 7
    (container / "a").write_bytes(b"changed")
    assert (base / "a").read_bytes() == b"a" * 100


def test_recover_removes_interrupted_creates_and_removes(tmp_path: Path) -> None:
    driver = make(tmp_path / "home")
    driver.create_layer("known", None)
    layers = tmp_path / "home"
    (layers / ".new-crashed-1234" / "etc").mkdir(parents=True)
    (layers / ".gone-old-5678").mkdir()
    (layers / "unknown").mkdir()
    assert make(tmp_path / "home").recover({"known"}) == ["unknown"]
    assert os.listdir(layers) == ["known"]


def test_a_layer_over_a_missing_parent_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    driver = make(tmp_path / "home")
    with pytest.raises(FileNotFoundError, match="layer 'ghost' does not exist"):
        driver.create_layer("child", "ghost")
    assert os.listdir(tmp_path / "home") == []
