"""Removing a container (killing it first when forced), its layers and files set aside
at once and deleted in the background, and `docker container prune`."""

from __future__ import annotations

import logging
import secrets
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.containers import attach, start, stop
from dockyard.errors import Conflict, EngineError

if TYPE_CHECKING:
    from dockyard.containers.manager import ContainerManager
    from dockyard.containers.model import Container

log = logging.getLogger(__name__)


def remove(manager: ContainerManager, name_or_id: str, force: bool = False, volumes: bool = False) -> None:
    container = manager.get(name_or_id)
    live = manager.live[container.id]
    if container.running:
        if not force:
            raise Conflict(f"cannot remove container \"/{container.name}\": container is running: "
                           f"stop the container before removing or force remove")
        live.stop_requested = True
        if container.state.Paused:
            manager.runtime(container).resume(container.id)
        stop.signal(manager, container, 9)
        if not stop.wait_until_stopped(manager, container, 30):
            raise EngineError(f"could not kill container {container.short_id}")
    with live.lock:
        if live.removed:
            return
        live.removed = True
        live.stop_requested = True
        if live.health is not None:
            live.health.set()
        attach.release_pending_attaches(live, f"container {container.id} was removed")
        container.state.Status = "removing"
        start.cleanup_runtime(manager, container)
        _discard(manager.run_directory(container), manager.monitor_directory(container))
        manager.context.storage.remove(container.layer_id)
        if container.init_layer_id:
            manager.context.storage.remove(container.init_layer_id)
        _discard(manager.directory(container))
        with manager.lock:
            manager.records.pop(container.id, None)
        with live.changed:
            live.destroyed = True
            live.changed.notify_all()
    manager.event(container, "destroy")
    log.debug("%s: removed", container.short_id)
    manager.live.pop(container.id, None)
    if volumes and manager.context.volumes is not None:
        anonymous = [e["Name"] for e in container.mounts if e["Type"] == "volume"
                     and manager.context.volumes.get_or_none(e["Name"]) is not None
                     and manager.context.volumes.get_or_none(e["Name"]).anonymous]
        for name in anonymous:
            try:
                manager.context.volumes.remove(name)
            except Conflict:  # shared with another container (--volumes-from): it stays
                pass


def _discard(*directories: Path) -> None:
    """Rename directories out of the way at once (a new container may reuse nothing of
    theirs) and delete them on a background thread: `docker rm` does not wait for
    the files. A crash in between leaves .gone-* names, deleted at the next start."""
    doomed = []
    for directory in directories:
        target = directory.with_name(f".gone-{directory.name}-{secrets.token_hex(4)}")
        try:
            directory.rename(target)
        except FileNotFoundError:
            continue
        doomed.append(target)
    if doomed:
        threading.Thread(target=lambda: [shutil.rmtree(d, ignore_errors=True) for d in doomed],
                         name="delete container files", daemon=True).start()


def prune(manager: ContainerManager, filters: dict[str, list[str]]) -> dict:
    deleted, reclaimed = [], 0
    for container in manager.all():
        if container.running or container.state.Paused or container.state.Restarting:
            continue
        if not _matches_label_and_until(container, filters):
            continue
        try:
            reclaimed += manager.size_rw(container)
        except Exception:  # size is informative; a failure must not stop the prune
            pass
        manager.remove(container.id)
        deleted.append(container.id)
    manager.events.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
    return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}


def _matches_label_and_until(container: Container, filters: dict[str, list[str]]) -> bool:
    from dockyard.containers.logs import parse_time_nano
    from dockyard.formats.filters import label_filters_match, until_timestamp

    if not label_filters_match(filters, container.config.get("Labels") or {}):
        return False
    if "until" in filters:
        def rfc3339(text: str) -> float:
            try:
                return parse_time_nano(text) / 1e9
            except ValueError:
                return 0.0

        return rfc3339(container.created) < until_timestamp(filters["until"][-1], rfc3339)
    return True

