"""The volume manager's records around crashes, with a directory-backed driver (no root)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dockyard.daemon.events import EventsManager
from dockyard.errors import Conflict, InvalidParameter, NotFound
from dockyard.volumes.manager import VolumeManager


class DirectoryDriver:
    """Just enough of a volume driver: one directory per volume."""

    scope = "local"

    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)

    def create(self, name, options):
        (self.home / name).mkdir(exist_ok=True)

    def remove(self, name):
        import shutil

        shutil.rmtree(self.home / name, ignore_errors=True)

    def mount(self, name, mount_id):
        return self.home / name

    def unmount(self, name, mount_id):
        pass

    def path(self, name):
        return self.home / name

    def data_path(self, name):
        return self.home / name

    def list(self):
        return [p.name for p in self.home.iterdir()]

    def status(self, name):
        return {}

    def restore(self, in_use):
        pass


def manager(tmp_path: Path) -> VolumeManager:
    return VolumeManager(tmp_path / "data", {"local": DirectoryDriver(tmp_path / "driver")}, EventsManager())


def test_a_volume_the_driver_made_without_a_record_is_gone_after_restart(tmp_path):
    first = manager(tmp_path)
    first.drivers["local"].create("halfmade", {})  # the daemon died before writing the record
    second = manager(tmp_path)
    assert [v.name for v in second.all()] == []
    assert not (tmp_path / "driver" / "halfmade").exists()


def test_an_interrupted_copy_up_is_wiped_and_done_again(tmp_path):
    image = tmp_path / "image-etc"
    image.mkdir()
    (image / "passwd").write_text("root:x:0:0\n")
    first = manager(tmp_path)
    first.create("etc")
    data = tmp_path / "driver" / "etc"
    (data / "partial").write_text("half a copy")  # killed mid-copy: the record says not initialized
    second = manager(tmp_path)
    assert list(data.iterdir()) == []
    second.mount("etc", "c1", fill_from=image)
    assert (data / "passwd").read_text() == "root:x:0:0\n"
    record = json.loads((tmp_path / "data" / "volumes" / "etc.json").read_text())
    assert record["initialized"] is True
    (data / "mine").write_text("written by a container")
    third = manager(tmp_path)  # a used volume is never wiped
    assert (data / "mine").exists()
    third.mount("etc", "c2", fill_from=image)
    assert sorted(p.name for p in data.iterdir()) == ["mine", "passwd"]


def test_names_drivers_and_users(tmp_path):
    volumes = manager(tmp_path)
    with pytest.raises(InvalidParameter, match="invalid characters"):
        volumes.create("../escape")
    with pytest.raises(NotFound, match='plugin "nosuch" not found'):
        volumes.create("vol", "nosuch")
    with pytest.raises(InvalidParameter, match="invalid characters"):
        volumes.create("v")  # one character is too short for Docker's rule too
    assert volumes.create("vol").name == "vol"
    assert volumes.create("vol") is volumes.get("vol")  # creating it again returns it
    volumes.users_of = lambda name: ["c0ffee"]
    with pytest.raises(Conflict, match=r"remove vol: volume is in use - \[c0ffee\]"):
        volumes.remove("vol")
    volumes.users_of = lambda name: []
    anonymous = volumes.create()
    assert anonymous.anonymous and len(anonymous.name) == 64
    deleted, _ = volumes.prune({})
    assert deleted == [anonymous.name]  # named volumes only with all=true
    deleted, _ = volumes.prune({"all": ["true"]})
    assert deleted == ["vol"]
