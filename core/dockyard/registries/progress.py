"""Docker's JSON progress messages for pulls and pushes, and their pacing.

The docker CLI draws its bars from `progressDetail`; `progress` is the same bar as
text for clients that print it as is (docker-py users, logs). Byte counts are reported
at most every `INTERVAL` seconds per layer: a 1 GiB layer must not produce a message
per chunk.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator
from typing import TypeVar

from dockyard.formats.units import human_size

INTERVAL = 0.1
T = TypeVar("T")
BAR_WIDTH = 50


def bar(current: int, total: int) -> str:
    if total <= 0:
        return human_size(current, 4)
    filled = min(BAR_WIDTH, int(BAR_WIDTH * current / total))
    arrow = ">" if filled < BAR_WIDTH else ""
    body = "=" * filled + arrow + " " * (BAR_WIDTH - filled - len(arrow))
    return f"[{body}] {human_size(current, 4):>8}/{human_size(total, 4)}"


def status(text: str, layer: str | None = None) -> dict:
    """A line of its own (`layer` None) or a layer's state ("Pull complete")."""
    if layer is None:
        return {"status": text}
    return {"status": text, "progressDetail": {}, "id": layer}


def counting(text: str, layer: str, current: int, total: int) -> dict:
    return {"status": text, "progressDetail": {"current": current, "total": total},
            "progress": bar(current, total), "id": layer}


class Pacer:
    """Says whether a byte-count update for a layer is due."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], float] = {}

    def due(self, text: str, layer: str, finished: bool = False) -> bool:
        now = time.monotonic()
        key = (text, layer)
        if finished or now - self._last.get(key, 0.0) >= INTERVAL:
            self._last[key] = now
            return True
        return False


_DONE = object()


def on_worker(work: Callable[[Callable[[dict], None], threading.Event], T]) -> Generator[dict, None, T]:
    """Run `work(say, cancel)` on a thread and yield what it says as it says it; the
    generator returns what `work` returned, or raises what it raised. Closing the
    generator early (the client went away) sets `cancel`, which `work` checks between
    steps: the HTTP thread never blocks the work, and the work never outlives a
    cancelled request by more than a step."""
    messages: queue.SimpleQueue = queue.SimpleQueue()
    cancel = threading.Event()
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = work(messages.put, cancel)
        except BaseException as exc:  # noqa: BLE001 (handed to the waiting generator)
            outcome["error"] = exc
        finally:
            messages.put(_DONE)

    threading.Thread(target=run, name="registry-work", daemon=True).start()
    try:
        while (message := messages.get()) is not _DONE:
            yield message
    finally:
        cancel.set()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
