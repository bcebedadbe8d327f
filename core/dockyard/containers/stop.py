"""Stopping, killing, restarting and pausing a container: signals through the runtime,
and the wait for the exit the supervisor records."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from dockyard.errors import Conflict, NotModified
from dockyard.plugin.contracts.runtime import ContainerNotFound, RuntimeFailure

if TYPE_CHECKING:
    from dockyard.containers.manager import ContainerManager
    from dockyard.containers.model import Container

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 10


def stop(manager: ContainerManager, name_or_id: str, timeout: int | None = None,
         signal_name: str | None = None) -> None:
    container = manager.get(name_or_id)
    live = manager.live[container.id]
    if not container.running and not container.state.Restarting:
        raise NotModified("container already stopped")
    live.stop_requested = True
    container.manually_stopped = True
    if container.state.Restarting:
        with live.lock:
            container.state.Restarting, container.state.Status = False, "exited"
            manager.save(container)
        manager.event(container, "stop")
        return
    from dockyard.containers.ocispec import parse_signal

    stop_signal = parse_signal(signal_name or container.config.get("StopSignal") or "SIGTERM")
    if timeout is None:
        timeout = container.config.get("StopTimeout")
    if timeout is None:
        timeout = DEFAULT_STOP_TIMEOUT
    if container.state.Paused:
        manager.runtime(container).resume(container.id)
    signal(manager, container, stop_signal)
    if timeout < 0 or not wait_until_stopped(manager, container, timeout):
        signal(manager, container, 9)
        wait_until_stopped(manager, container, 30)
    manager.event(container, "stop")


def signal(manager: ContainerManager, container: Container, signal_number: int) -> None:
    try:
        manager.runtime(container).kill(container.id, signal_number)
    except (ContainerNotFound, RuntimeFailure) as exc:
        if container.running:
            log.debug("kill %s: %s", container.short_id, exc)
    manager.event(container, "kill", signal=str(signal_number))


def wait_until_stopped(manager: ContainerManager, container: Container, timeout: float) -> bool:
    live = manager.live[container.id]
    deadline = time.monotonic() + timeout
    with live.changed:
        while container.running:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            live.changed.wait(left)
    return True


def kill(manager: ContainerManager, name_or_id: str, signal_name: str | None = None) -> None:
    container = manager.get(name_or_id)
    if not container.running:
        raise Conflict(f"cannot kill container: {name_or_id}: container {container.id} is not running")
    from dockyard.containers.ocispec import parse_signal

    number = parse_signal(signal_name or "SIGKILL")
    if number in (9,):
        manager.live[container.id].stop_requested = True
        container.manually_stopped = True
    signal(manager, container, number)
    if number == 9:
        wait_until_stopped(manager, container, 30)


def restart(manager: ContainerManager, name_or_id: str, timeout: int | None = None) -> None:
    container = manager.get(name_or_id)
    if container.running:
        manager.stop(container.id, timeout)
    manager.start(container.id)
    manager.event(container, "restart")


def pause(manager: ContainerManager, name_or_id: str) -> None:
    container = manager.get(name_or_id)
    with manager.live[container.id].lock:
        if not container.running:
            raise Conflict(f"Container {container.id} is not running")
        if container.state.Paused:
            raise Conflict(f"Container {container.id} is already paused")
        runtime = manager.runtime(container)
        try:
            runtime.pause(container.id)
        except (RuntimeFailure, ContainerNotFound):
            if _still_runs(runtime, container.id):
                raise
            # it exited an instant ago and its supervisor has not recorded it yet
            raise Conflict(f"Container {container.id} is not running") from None
        container.state.Paused, container.state.Status = True, "paused"
        manager.save(container)
    manager.event(container, "pause")


def unpause(manager: ContainerManager, name_or_id: str) -> None:
    container = manager.get(name_or_id)
    with manager.live[container.id].lock:
        if not container.state.Paused:
            raise Conflict(f"Container {container.id} is not paused")
        manager.runtime(container).resume(container.id)
        container.state.Paused, container.state.Status = False, "running"
        manager.save(container)
    manager.event(container, "unpause")


def _still_runs(runtime, container_id: str) -> bool:
    try:
        return runtime.state(container_id).status in ("running", "paused", "created")
    except (RuntimeFailure, ContainerNotFound):
        return False
