"""Supervision of a running container: a thread per run waits on its monitor, records
the exit, and applies the restart policy (with Docker's doubling backoff) or --rm."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from dockyard.containers import start
from dockyard.containers.model import now_rfc3339
from dockyard.errors import EngineError, NotFound

if TYPE_CHECKING:
    from dockyard.containers.manager import ContainerManager, LiveState
    from dockyard.containers.model import Container

log = logging.getLogger(__name__)

RESTART_DELAY_START = 0.1
RESTART_DELAY_MAX = 60.0
RESTART_RESET_AFTER = 10.0  # a container that ran this long restarts without backoff


def supervise(manager: ContainerManager, container: Container) -> None:
    live = manager.live[container.id]
    thread = threading.Thread(target=_watch, args=(manager, container), daemon=True,
                              name=f"supervise {container.short_id}")
    live.supervisor = thread
    thread.start()


def _watch(manager: ContainerManager, container: Container) -> None:
    started = time.monotonic()
    try:
        result = manager.monitor(container).wait_exit()
    except Exception:  # whatever went wrong, the exit must still be recorded
        log.exception("waiting for %s failed", container.short_id)
        result = manager.monitor(container).recorded_exit()
    if manager.shutting_down:
        return  # the daemon is going; the container keeps running (live restore)
    exited(manager, container, result, time.monotonic() - started)


def exited(manager: ContainerManager, container: Container, result: dict | None, ran_for: float) -> None:
    live = manager.live.get(container.id)
    if live is None:
        return
    with live.lock:
        if not container.running and container.state.Status != "paused":
            return
        log.debug("%s: exited", container.short_id)
        result = result or {"ExitCode": 255, "Error": "the container's monitor vanished"}
        state = container.state
        state.Running, state.Paused, state.Pid = False, False, 0
        state.ExitCode = int(result.get("ExitCode", 255))
        state.OOMKilled = bool(result.get("OOMKilled"))
        state.Error = result.get("Error", "")
        state.FinishedAt = result.get("FinishedAt") or now_rfc3339()
        state.Status = "exited"
        if live.health is not None:
            live.health.set()
        start.cleanup_runtime(manager, container)
        log.debug("%s: runtime state and mount released", container.short_id)
        if state.OOMKilled:
            manager.event(container, "oom")
        manager.event(container, "die", exitCode=str(state.ExitCode))
        live.exits += 1
        restart, delay = _restart_decision(manager, container, live, ran_for)
        if restart:
            state.Restarting, state.Status = True, "restarting"
        manager.save(container)
    if restart:
        threading.Thread(target=_restart_later, args=(manager, container, delay), daemon=True).start()
    elif container.host_config.get("AutoRemove"):
        try:  # --rm takes the container's anonymous volumes with it, as Docker's does
            manager.remove(container.id, force=True, volumes=True)
        except NotFound:
            pass


def _restart_decision(manager: ContainerManager, container: Container, live: LiveState,
                      ran_for: float) -> tuple[bool, float]:
    policy = container.host_config.get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    if live.stop_requested or live.removed or name == "no" or manager.shutting_down:
        return False, 0.0
    if name == "on-failure":
        if container.state.ExitCode == 0:
            return False, 0.0
        limit = int(policy.get("MaximumRetryCount") or 0)
        if limit and container.restart_count >= limit:
            return False, 0.0
    if name == "unless-stopped" and container.manually_stopped:
        return False, 0.0
    if ran_for >= RESTART_RESET_AFTER or not container.restart_delay:
        delay = RESTART_DELAY_START
    else:
        delay = min(RESTART_DELAY_MAX, container.restart_delay * 2)
    container.restart_delay = delay
    return True, delay


def _restart_later(manager: ContainerManager, container: Container, delay: float) -> None:
    live = manager.live.get(container.id)
    if live is None:
        return
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        if live.removed or live.stop_requested or manager.shutting_down:
            with live.lock:
                if not live.removed and not manager.shutting_down:
                    container.state.Restarting = False
                    container.state.Status = "exited"
                    manager.save(container)
            return
        time.sleep(min(0.05, delay))
    with live.lock:
        if live.removed or live.stop_requested or container.running:
            return
        container.restart_count += 1
        try:
            start.start_locked(manager, container, live)
        except EngineError as exc:
            log.warning("restarting %s failed: %s", container.short_id, exc)
            container.state.Restarting = False
            manager.save(container)
            return
    manager.event(container, "restart")

