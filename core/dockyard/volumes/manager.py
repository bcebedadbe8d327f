"""Volumes: their records, who uses them, and filling a new one from the image.

The manager owns the record of every volume (one JSON file under `<data-root>/volumes/`:
driver, labels, options, anonymous or named, whether it has been used yet) and the
reference counts of running containers; drivers own directories and mounts. A record is
written after its driver has made the volume, so a crash in between leaves a driver
volume without a record, which the next start deletes: no half-made volume is ever
visible. A volume is "initialized" once a container has used it; copy-up (Docker's
filling of an empty new volume with the image's content at the mount point) happens
before that, and a crash during it leaves an uninitialized volume whose partial copy is
wiped at the next start.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dockyard.daemon.events import EventsManager
from dockyard.errors import Conflict, InvalidParameter, NotFound
from dockyard.formats.filters import label_filters_match
from dockyard.plugin.contracts.volume import VolumeDriverError

log = logging.getLogger(__name__)

VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
ANONYMOUS_LABEL = "com.docker.volume.anonymous"


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Volume:
    name: str
    driver: str
    created: str
    labels: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    anonymous: bool = False
    initialized: bool = False  # a container has used it (copy-up is over)


class VolumeManager:
    def __init__(self, data_root: Path, drivers: Mapping[str, object], events: EventsManager) -> None:
        self.root = data_root / "volumes"
        self.root.mkdir(parents=True, exist_ok=True)
        self.drivers = drivers
        self.events = events
        self._lock = threading.RLock()
        self._volumes: dict[str, Volume] = {}
        self._mounted: dict[str, set[str]] = {}  # volume name -> container ids holding a mount
        # set by the engine: ids of the containers whose record names a volume (running or not)
        self.users_of: Callable[[str], list[str]] = lambda name: []
        self._load()

    # -- records -------------------------------------------------------------------

    def _load(self) -> None:
        for path in sorted(self.root.glob("*.json")):
            try:
                volume = Volume(**json.loads(path.read_text()))
            except (ValueError, TypeError) as exc:
                log.warning("ignoring unreadable volume record %s: %s", path, exc)
                continue
            self._volumes[volume.name] = volume
            if not volume.initialized:
                self._wipe_partial_copy(volume)
        for name, driver in self.drivers.items():
            try:
                known = list(driver.list())
            except Exception as exc:
                log.warning("volume driver %s cannot list its volumes: %s", name, exc)
                continue
            for orphan in known:
                if orphan not in self._volumes:  # made, but the daemon died before the record
                    log.info("removing volume %s: its creation never finished", orphan)
                    driver.remove(orphan)

    def _wipe_partial_copy(self, volume: Volume) -> None:
        driver = self.drivers.get(volume.driver)
        path = driver.path(volume.name) if driver is not None else None
        if path is None or not Path(path).is_dir():
            return
        for entry in Path(path).iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def _save(self, volume: Volume) -> None:
        path = self.root / f"{volume.name}.json"
        temporary = path.with_suffix(".tmp")
        with open(temporary, "w") as record:
            json.dump(asdict(volume), record)
            record.flush()
            os.fsync(record.fileno())
        os.replace(temporary, path)

    # -- create, inspect, remove -------------------------------------------------------

    def create(self, name: str | None = None, driver_name: str = "", options: Mapping | None = None,
               labels: Mapping | None = None, anonymous: bool = False) -> Volume:
        driver_name = driver_name or "local"
        if name:
            if not VOLUME_NAME.fullmatch(name):
                raise InvalidParameter(f"create {name}: \"{name}\" includes invalid characters for a local "
                                       "volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you "
                                       "intended to pass a host directory, use absolute path")
        else:
            name, anonymous = secrets.token_hex(32), True
        driver = self.drivers.get(driver_name)
        if driver is None:
            raise NotFound(f"create {name}: error looking up volume plugin {driver_name}: plugin "
                           f"\"{driver_name}\" not found (installed volume drivers: "
                           f"{', '.join(sorted(self.drivers)) or 'none'})")
        options = {str(k): str(v) for k, v in (options or {}).items()}
        labels = {str(k): str(v) for k, v in (labels or {}).items()}
        if anonymous:
            labels.setdefault(ANONYMOUS_LABEL, "")
        with self._lock:
            existing = self._volumes.get(name)
            if existing is not None:
                if existing.driver != driver_name:
                    raise Conflict(f"create {name}: volume name {name} already in use with driver "
                                   f"{existing.driver}: remove it first or choose another name")
                return existing  # Docker's create of an existing volume returns it
            try:
                driver.create(name, options)
            except VolumeDriverError as exc:
                raise InvalidParameter(f"create {name}: {exc}") from None
            volume = Volume(name=name, driver=driver_name, created=now_rfc3339(), labels=labels,
                            options=options, anonymous=anonymous)
            try:
                self._save(volume)
            except BaseException:
                driver.remove(name)
                raise
            self._volumes[name] = volume
        self._event(volume, "create")
        return volume

    def get(self, name: str) -> Volume:
        with self._lock:
            volume = self._volumes.get(name)
        if volume is None:
            raise NotFound(f"get {name}: no such volume")
        return volume

    def get_or_none(self, name: str) -> Volume | None:
        with self._lock:
            return self._volumes.get(name)

    def all(self) -> list[Volume]:
        with self._lock:
            return list(self._volumes.values())

    def mountpoint(self, volume: Volume) -> str:
        driver = self.drivers.get(volume.driver)
        return str(driver.data_path(volume.name)) if driver is not None else ""

    def status(self, volume: Volume) -> dict:
        driver = self.drivers.get(volume.driver)
        try:
            return dict(driver.status(volume.name)) if driver is not None else {}
        except Exception as exc:  # informative only
            return {"error": str(exc)}

    def remove(self, name: str, force: bool = False) -> None:
        with self._lock:
            volume = self._volumes.get(name)
            if volume is None:
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            users = self.users_of(name)
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            driver = self.drivers.get(volume.driver)
            if driver is None:
                raise Conflict(f"remove {name}: its driver {volume.driver} is not running in this daemon")
            (self.root / f"{name}.json").unlink(missing_ok=True)  # first: never a record without data
            del self._volumes[name]
            driver.remove(name)
        self._event(volume, "destroy")

    def prune(self, filters: Mapping[str, list[str]]) -> tuple[list[str], int]:
        """Unused volumes; only anonymous ones unless all=true (Docker 23 and later)."""
        everything = (filters.get("all") or ["false"])[-1].lower() in ("1", "true")
        deleted, reclaimed = [], 0
        for volume in self.all():
            if not everything and not volume.anonymous:
                continue
            if not label_filters_match(dict(filters), volume.labels) or self.users_of(volume.name):
                continue
            size = _tree_size(Path(self.mountpoint(volume))) if self.mountpoint(volume) else 0
            try:
                self.remove(volume.name)
            except Conflict:
                continue
            deleted.append(volume.name)
            reclaimed += size
        return deleted, reclaimed

    # -- containers ----------------------------------------------------------------------

    def mount(self, name: str, container_id: str, fill_from: Path | None = None) -> str:
        """Make the volume available to a starting container; returns the host path to
        bind. `fill_from` is the image's content at the mount point, copied into a volume
        no container has used yet (Docker's copy-up)."""
        volume = self.get(name)
        driver = self.drivers.get(volume.driver)
        if driver is None:
            raise Conflict(f"volume {name}: its driver {volume.driver} is not running in this daemon")
        path = Path(driver.mount(name, container_id))
        with self._lock:
            self._mounted.setdefault(name, set()).add(container_id)
        if not volume.initialized:
            if fill_from is not None and fill_from.is_dir() and not any(path.iterdir()):
                copy_tree(fill_from, path)
            volume.initialized = True
            self._save(volume)
        return str(path)

    def unmount(self, name: str, container_id: str) -> None:
        with self._lock:
            holders = self._mounted.get(name)
            if holders is None or container_id not in holders:
                return
            holders.discard(container_id)
            volume = self._volumes.get(name)
        driver = self.drivers.get(volume.driver) if volume is not None else None
        if driver is not None:
            try:
                driver.unmount(name, container_id)
            except Exception as exc:  # the container is going: record, never block it
                log.warning("unmounting volume %s for %s: %s", name, container_id[:12], exc)

    def restore(self, in_use: Mapping[str, Iterable[str]]) -> None:
        """After a daemon start: the volumes running containers still hold."""
        with self._lock:
            self._mounted = {name: set(ids) for name, ids in in_use.items()}
        for driver_name, driver in self.drivers.items():
            held = {name: sorted(ids) for name, ids in self._mounted.items()
                    if (self._volumes.get(name) or Volume("", "", "")).driver == driver_name}
            try:
                driver.restore(held)
            except Exception as exc:
                log.warning("volume driver %s could not restore its mounts: %s", driver_name, exc)

    def _event(self, volume: Volume, action: str) -> None:
        self.events.publish("volume", action, volume.name, {"driver": volume.driver})


def copy_tree(source: Path, target: Path) -> None:
    """Copy `source`'s content into the existing directory `target`, keeping modes, owners,
    times and symlinks as they are (the image's files, as the container would see them)."""
    for entry in os.scandir(source):
        destination = target / entry.name
        if entry.is_dir(follow_symlinks=False):
            shutil.copytree(entry.path, destination, symlinks=True, copy_function=_copy_with_owner)
            _copy_owner(entry.path, destination)
            for root, directories, _ in os.walk(entry.path):
                for name in directories:
                    relative = Path(root, name).relative_to(source)
                    _copy_owner(Path(root, name), target / relative)
        else:
            _copy_with_owner(entry.path, destination)
    shutil.copystat(source, target)
    _copy_owner(source, target)


def _copy_with_owner(source, target) -> None:
    shutil.copy2(source, target, follow_symlinks=False)
    _copy_owner(source, target)


def _copy_owner(source, target) -> None:
    info = os.lstat(source)
    os.chown(target, info.st_uid, info.st_gid, follow_symlinks=False)


def _tree_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total
