"""A container's mounts: the Mounts entries made at create from -v, --mount,
--volumes-from and the image's VOLUMEs (creating the volumes they name), and the OCI
mounts of each run, which take the volumes and give them back when it ends."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.containers.errors import StartFailed
from dockyard.errors import EngineError, InvalidParameter, NotFound

if TYPE_CHECKING:
    from dockyard.containers.manager import ContainerManager
    from dockyard.containers.model import Container

log = logging.getLogger(__name__)


def requested_mounts(manager: ContainerManager, config: dict,
                     host_config: dict) -> tuple[list[dict], list[str]]:
    """Docker's Mounts entries for -v, --mount, --volumes-from and the image's VOLUMEs,
    creating the volumes they name. Returns them and the volumes made here, which a
    failure of this create removes again."""
    from dockyard.formats.mountspec import MountSpecError, mount_requests, volumes_from

    try:
        requests = mount_requests(config, host_config)
    except MountSpecError as exc:
        raise InvalidParameter(str(exc)) from None
    made: list[str] = []
    entries: list[dict] = []
    try:
        for request in requests:
            if request.kind == "volume":
                entries.append(_volume_entry(manager, request, host_config, made))
            elif request.kind == "bind":
                entries.append(_bind_entry(request))
            else:
                entries.append({"Type": "tmpfs", "Source": "", "Destination": request.destination,
                                "Mode": "", "RW": not request.read_only, "Propagation": "",
                                "_size": request.tmpfs_size, "_mode": request.tmpfs_mode})
        taken = {entry["Destination"] for entry in entries}
        for spec in host_config.get("VolumesFrom") or []:
            try:
                source_name, mode = volumes_from(spec)
            except MountSpecError as exc:
                raise InvalidParameter(str(exc)) from None
            for entry in manager.get(source_name).mounts:
                if entry["Type"] == "tmpfs" or entry["Destination"] in taken:
                    continue
                shared = dict(entry)
                shared["RW"] = entry["RW"] and mode != "ro"  # a mode never makes ro writable
                entries.append(shared)
                taken.add(entry["Destination"])
    except BaseException:
        drop_volumes(manager, made)
        raise
    return entries, made


def _volume_entry(manager: ContainerManager, request, host_config: dict, made: list[str]) -> dict:
    volumes = manager.context.volumes
    if volumes is None:
        raise InvalidParameter("volumes need a volume driver: pip install dockyard-volume-local")
    driver = request.volume_driver  # mountspec applies HostConfig.VolumeDriver where Docker does
    existing = None
    if request.source:
        try:
            existing = volumes.get(request.source)
        except NotFound:
            existing = None
    volume = existing or volumes.create(request.source or None, driver, request.volume_options,
                                        request.volume_labels, anonymous=not request.source)
    if existing is None:
        made.append(volume.name)
    return {"Type": "volume", "Name": volume.name, "Source": volumes.mountpoint(volume),
            "Destination": request.destination, "Driver": volume.driver, "Mode": "z",
            "RW": not request.read_only, "Propagation": "", "_nocopy": request.no_copy}


def drop_volumes(manager: ContainerManager, names: list[str]) -> None:
    for name in names:
        try:
            manager.context.volumes.remove(name, force=True)
        except EngineError as exc:
            log.warning("could not remove volume %s after a failed create: %s", name, exc)


def volume_users(manager: ContainerManager, name: str) -> list[str]:
    """Containers whose record names the volume, running or not (Docker counts both)."""
    return [c.id for c in manager.all() if any(m.get("Name") == name for m in c.mounts)]


def mount_volumes(manager: ContainerManager, container: Container, rootfs: Path) -> list[dict]:
    """OCI mounts for the container's Mounts, taking its volumes (copy-up included)."""
    specs = []
    for entry in container.mounts:
        destination = entry["Destination"]
        if entry["Type"] == "tmpfs":
            options = ["nosuid", "nodev", "noexec"] + ([] if entry["RW"] else ["ro"])
            if entry.get("_size"):
                options.append(f"size={entry['_size']}")
            if entry.get("_mode") is not None:
                options.append(f"mode={entry['_mode']:o}")
            specs.append({"destination": destination, "type": "tmpfs", "source": "tmpfs",
                          "options": options})
            continue
        source = entry["Source"]
        if entry["Type"] == "volume":
            image_content = None if entry.get("_nocopy") else rootfs / destination.lstrip("/")
            source = manager.context.volumes.mount(entry["Name"], container.id, image_content)
        elif not os.path.exists(source):
            raise StartFailed(f"error while creating mount source path '{source}': the bind source "
                              "is gone: create it again, or remove the container")
        options = ["rbind", entry.get("Propagation") or "rprivate"] + ([] if entry["RW"] else ["ro"])
        specs.append({"destination": destination, "type": "bind", "source": source, "options": options})
    return specs


def unmount_volumes(manager: ContainerManager, container: Container) -> None:
    if manager.context.volumes is None:
        return
    for entry in container.mounts:
        if entry["Type"] == "volume":
            manager.context.volumes.unmount(entry["Name"], container.id)


def _bind_entry(request) -> dict:
    source = Path(request.source)
    if not source.exists():
        if not request.create_host_path:
            raise InvalidParameter(f"invalid mount config for type \"bind\": bind source path does not "
                                   f"exist: {request.source}")
        source.mkdir(parents=True, exist_ok=True)  # what -v does (--mount does not)
    return {"Type": "bind", "Source": request.source, "Destination": request.destination, "Mode": "",
            "RW": not request.read_only, "Propagation": request.propagation or "rprivate"}

