"""Reading a container's json-file log: rotated files in order, since/until/tail, follow.

The monitor writes the files (see dockyard.monitor.jsonlog); this module only reads
them, so `docker logs` works whether the daemon was up when the lines were written or not.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

POLL_INTERVAL = 0.1


@dataclass(frozen=True)
class LogEntry:
    stream: str  # "stdout" or "stderr"
    text: bytes
    time: str  # RFC 3339 with nanoseconds
    time_nano: int


def parse_time_nano(stamp: str) -> int:
    """`2026-11-29T04:42:09.450901746Z` -> unix nanoseconds (Python's datetime stops at µs)."""
    main, _, fraction = stamp.rstrip("Z").partition(".")
    seconds = int(datetime.fromisoformat(main + "+00:00").timestamp())
    return seconds * 1_000_000_000 + int((fraction + "000000000")[:9])


def _decode(line: bytes) -> LogEntry | None:
    try:
        record = json.loads(line)
        return LogEntry(record["stream"], record["log"].encode(), record["time"],
                        parse_time_nano(record["time"]))
    except (ValueError, KeyError, TypeError):
        return None  # a line torn by a crash mid-write


def log_files(path: str) -> list[str]:
    """Oldest first: path.N ... path.1, path."""
    rotated = []
    index = 1
    while os.path.exists(f"{path}.{index}"):
        rotated.append(f"{path}.{index}")
        index += 1
    return list(reversed(rotated)) + ([path] if os.path.exists(path) else [])


def _entries(filename: str) -> Iterator[LogEntry]:
    try:
        with open(filename, "rb") as handle:
            for line in handle:
                if line.endswith(b"\n"):
                    entry = _decode(line)
                    if entry is not None:
                        yield entry
    except FileNotFoundError:
        return


def read(path: str, since_nano: int = 0, until_nano: int | None = None, tail: int | None = None,
         follow: bool = False, still_running: Callable[[], bool] = lambda: False,
         heartbeat: float = 1.0) -> Iterator[LogEntry | None]:
    """Entries in order; with `follow`, new ones as they are written until the container
    stops. Yields None after `heartbeat` idle seconds (see api.server.StreamResponse)."""

    def wanted(entry: LogEntry) -> bool:
        return entry.time_nano >= since_nano and (until_nano is None or entry.time_nano <= until_nano)

    files = log_files(path)
    current = files[-1] if files and files[-1] == path else None
    history = (entry for name in files for entry in _entries(name) if wanted(entry))
    if tail is not None and tail >= 0:
        history = iter(deque(history, maxlen=tail)) if tail else iter(())
    # remember where the current file ended, so following starts right after
    position = os.path.getsize(current) if current else 0
    inode = os.stat(current).st_ino if current else None
    yield from history
    if not follow:
        return
    buffer = b""
    idle_since = time.monotonic()
    handle = None
    try:
        while True:
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                stat = None
            if stat is not None and stat.st_ino != inode:  # rotated: start the new file
                if handle is not None:
                    handle.close()
                handle, inode, position, buffer = None, stat.st_ino, 0, b""
            if stat is not None and handle is None:
                handle = open(path, "rb")  # noqa: SIM115 (closed in finally)
                handle.seek(position)
            data = handle.read() if handle is not None else b""
            if data:
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    entry = _decode(line)
                    if entry is not None and wanted(entry):
                        yield entry
                    if until_nano is not None and entry is not None and entry.time_nano > until_nano:
                        return
                idle_since = time.monotonic()
                continue
            if not still_running():
                return
            if until_nano is not None and time.time_ns() > until_nano:
                return
            if time.monotonic() - idle_since >= heartbeat:
                idle_since = time.monotonic()
                yield None
            time.sleep(POLL_INTERVAL)
    finally:
        if handle is not None:
            handle.close()
