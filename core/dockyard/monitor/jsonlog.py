"""The container's log as the monitor writes it: Docker's json-file format, one JSON
object per line, long lines split into partial entries, files rotated by size."""

from __future__ import annotations

import json
import os
import time

from dockyard.monitor.protocol import STDERR, STDOUT

MAX_PARTIAL_LINE = 16 * 1024  # Docker splits longer lines into partial log entries


def rfc3339_nano(now: float | None = None) -> str:
    now = time.time() if now is None else now
    seconds = int(now)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + \
        f".{int((now - seconds) * 1e9):09d}Z"


class JsonFileLog:
    """Docker's json-file log driver: one JSON object per line, rotated by size."""

    def __init__(self, path: str, max_size: int, max_files: int) -> None:
        self.path = path
        self.max_size = max_size
        self.max_files = max(1, max_files)
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 (lives as long as the monitor)
        self._size = self._file.tell()
        self._partial = {STDOUT: b"", STDERR: b""}

    def write(self, stream: int, data: bytes) -> None:
        pending = self._partial[stream] + data
        lines = pending.split(b"\n")
        self._partial[stream] = lines.pop()
        for line in lines:
            self._entry(stream, line + b"\n")
        while len(self._partial[stream]) >= MAX_PARTIAL_LINE:
            self._entry(stream, self._partial[stream][:MAX_PARTIAL_LINE])
            self._partial[stream] = self._partial[stream][MAX_PARTIAL_LINE:]

    def flush_partial(self) -> None:
        for stream, rest in self._partial.items():
            if rest:
                self._entry(stream, rest)
                self._partial[stream] = b""

    def _entry(self, stream: int, text: bytes) -> None:
        record = json.dumps({"log": text.decode("utf-8", "replace"),
                             "stream": "stdout" if stream == STDOUT else "stderr",
                             "time": rfc3339_nano()}).encode() + b"\n"
        if self.max_size and self._size and self._size + len(record) > self.max_size:
            self._rotate()
        self._file.write(record)
        self._size += len(record)

    def _rotate(self) -> None:
        self._file.close()
        if self.max_files == 1:
            os.truncate(self.path, 0)
        else:
            for index in range(self.max_files - 1, 0, -1):
                older = f"{self.path}.{index}"
                newer = self.path if index == 1 else f"{self.path}.{index - 1}"
                if os.path.exists(newer):
                    os.replace(newer, older)
        self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        self.flush_partial()
        self._file.close()
