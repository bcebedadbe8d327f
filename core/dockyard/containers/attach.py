"""Attaching to a container's stdio through its monitor, including the attaches made
before it starts (`docker run`), which `start` connects once the runtime created it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dockyard.errors import Conflict
from dockyard.monitor.client import MonitorError

if TYPE_CHECKING:
    from dockyard.containers.manager import ContainerManager, LiveState
    from dockyard.containers.model import Container


@dataclass
class PendingAttach:
    """An attach made before the container started (`docker run`): connected to the
    monitor by `start` after the container is created and before it runs."""

    stdin: bool
    stdout: bool
    stderr: bool
    ready: threading.Event = field(default_factory=threading.Event)
    sock: object = None
    error: str = ""


def connect_pending_attaches(manager: ContainerManager, container: Container, live: LiveState) -> None:
    handle = manager.monitor(container)
    pending, live.pending_attaches = live.pending_attaches, []
    for attach in pending:
        try:
            attach.sock = handle.attach(attach.stdin, attach.stdout, attach.stderr)
        except MonitorError as exc:
            attach.error = str(exc)
        attach.ready.set()


def release_pending_attaches(live: LiveState, reason: str) -> None:
    pending, live.pending_attaches = live.pending_attaches, []
    for attach in pending:
        attach.error = reason
        attach.ready.set()


def attach(manager: ContainerManager, name_or_id: str, stdin: bool, stdout: bool,
           stderr: bool) -> Callable[[], object]:
    """Register an attach now and return the function that yields its socket.

    Registration happens before the API answers the upgrade: `docker run` starts the
    container as soon as it has that answer, and output written before the monitor
    knew of the client would be lost. For a container that has never run, the
    socket comes once `start` has created it (docker run attaches first)."""
    container = manager.get(name_or_id)
    live = manager.live[container.id]
    with live.lock:
        if container.running:
            if container.state.Paused:
                raise Conflict("You cannot attach to a paused container, unpause it first")
            try:
                sock = manager.monitor(container).attach(stdin, stdout, stderr)
            except MonitorError as exc:
                raise Conflict(str(exc)) from None
            return lambda: sock
        if container.has_been_started and not container.state.Restarting:
            raise Conflict("You cannot attach to a stopped container, start it first")
        pending = PendingAttach(stdin, stdout, stderr)
        live.pending_attaches.append(pending)

    def connected():
        pending.ready.wait()
        if pending.sock is None:
            raise Conflict(pending.error or "the container did not start")
        manager.event(container, "attach")
        return pending.sock

    return connected

