"""Deleting a finished run's runtime record off the caller's path.

Once a container's processes are gone, the runtime's record of it (state directory,
cgroups) is bookkeeping: `runc delete` is a process of its own (about 10 ms here) that
nobody waiting for the exit, or for an `--rm` removal, needs to wait for. The releaser
runs those deletes on one background thread. A start of the same container first waits
for its pending delete (a runtime refuses an id it still knows), shutdown drains the
queue, and records a crash left behind are swept by `sweep_orphans` at the next start.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from dockyard.plugin.contracts.runtime import Runtime, RuntimeFailure

log = logging.getLogger(__name__)


class RuntimeReleaser:
    def __init__(self) -> None:
        self._pending: dict[str, tuple[Runtime, Path | None]] = {}
        self._order: list[str] = []
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def release(self, runtime: Runtime, container_id: str, leftovers: Path | None = None) -> None:
        """Queue the runtime delete of a stopped container, then the removal of `leftovers`
        (its bundle, already renamed out of the way)."""
        with self._changed:
            if container_id not in self._pending:
                self._order.append(container_id)
            self._pending[container_id] = (runtime, leftovers)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="runtime release", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def settle(self, container_id: str | None = None, timeout: float | None = 60) -> bool:
        """Wait until the delete of `container_id` (or every queued delete) is done."""
        with self._changed:
            return self._changed.wait_for(
                lambda: (container_id not in self._pending) if container_id else not self._pending,
                timeout)

    def _work(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._order))
                container_id = self._order[0]
                runtime, leftovers = self._pending[container_id]
            try:
                runtime.delete(container_id, force=True)
            except RuntimeFailure as exc:
                log.warning("runtime delete of %s: %s", container_id[:12], exc)
            except Exception:  # keep serving the queue whatever one delete does
                log.exception("runtime delete of %s failed", container_id[:12])
            if leftovers is not None:
                shutil.rmtree(leftovers, ignore_errors=True)
            with self._changed:
                self._order.pop(0)
                self._pending.pop(container_id, None)
                self._changed.notify_all()


def sweep_orphans(runtimes: Mapping[str, Runtime], known: Iterable[str]) -> int:
    """Delete runtime records of containers the engine no longer has (a crash between a
    removal and its queued delete), killing whatever still runs under them: the runtime's
    state directory is this daemon's own. Returns how many were deleted."""
    known_ids = set(known)
    swept = 0
    for name, runtime in runtimes.items():
        try:
            states = runtime.list()
        except RuntimeFailure as exc:
            log.warning("cannot list %s's containers: %s", name, exc)
            continue
        for state in states:
            if state.container_id in known_ids:
                continue
            try:
                runtime.delete(state.container_id, force=True)
                swept += 1
            except RuntimeFailure as exc:
                log.warning("runtime delete of orphan %s: %s", state.container_id[:12], exc)
    return swept
