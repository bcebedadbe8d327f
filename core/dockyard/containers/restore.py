"""Live restore: what a daemon start does with the containers of the last one, running
or not: re-attach those whose monitors kept them running, settle those that exited
meanwhile, sweep what a crash left of removed ones, and apply restart policies."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from dockyard.containers import start, supervision
from dockyard.containers.release import sweep_orphans
from dockyard.errors import EngineError
from dockyard.plugin.netns import remove_namespace

if TYPE_CHECKING:
    from dockyard.containers.manager import ContainerManager

log = logging.getLogger(__name__)


def restore(manager: ContainerManager) -> None:
    """After a start: re-attach running containers, settle those that exited while
    the daemon was away, and start the ones their restart policy says to."""
    alive = [c for c in manager.all() if c.running and manager.monitor(c).alive()]
    if manager.context.networks is not None:
        manager.context.networks.restore(alive)
    if manager.context.volumes is not None:
        held: dict[str, list[str]] = {}
        for container in alive:
            for entry in container.mounts:
                if entry["Type"] == "volume":
                    held.setdefault(entry["Name"], []).append(container.id)
        manager.context.volumes.restore(held)
    kept = {c.id for c in alive}
    named = manager.context.exec_root / "netns"
    for name in os.listdir(named) if named.is_dir() else []:
        if name not in kept:  # the namespace of a container that ended while we were away
            remove_namespace(named / name)
    swept = sweep_orphans(manager.context.runtimes, (c.id for c in manager.all()))
    if swept:
        log.info("deleted %d runtime record(s) of containers removed before a crash", swept)
    for container in manager.all():
        live = manager.live[container.id]
        if container.state.Status == "removing":
            try:
                manager.remove(container.id, force=True)
            except EngineError:
                pass
            continue
        if container.running:
            handle = manager.monitor(container)
            if handle.alive():
                log.info("container %s is still running: re-attached", container.short_id)
                supervision.supervise(manager, container)
                continue
            supervision.exited(manager, container, handle.recorded_exit(), 0.0)
            if container.running or container.state.Restarting:
                continue
        elif container.state.Restarting:
            container.state.Restarting, container.state.Status = False, "exited"
            manager.save(container)
        policy = (container.host_config.get("RestartPolicy") or {}).get("Name") or "no"
        if policy == "always" or (policy == "unless-stopped" and not container.manually_stopped):
            if not container.running and container.has_been_started:
                try:
                    with live.lock:
                        start.start_locked(manager, container, live)
                except EngineError as exc:
                    log.warning("could not restart %s: %s", container.short_id, exc)
