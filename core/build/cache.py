"""The build cache: which image a build step made from which parent.

A step's key is its parent image and everything that decides its result: the
instruction as expanded, the build arguments it sees, and for COPY/ADD a checksum of
the files copied. The value is the image the step committed. Entries survive daemon
restarts (a JSON file, rewritten atomically) and die with their image: a lookup that
finds an image gone is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path


def step_key(parent: str | None, created_by: str, extra: str = "") -> str:
    return hashlib.sha256(json.dumps([parent or "", created_by, extra]).encode()).hexdigest()


class BuildCache:
    def __init__(self, path: Path, image_exists: Callable[[str], bool]) -> None:
        self.path = path
        self._exists = image_exists
        self._lock = threading.Lock()
        try:
            loaded = json.loads(path.read_text())
            self._entries: dict[str, str] = {str(k): str(v) for k, v in loaded.items()}
        except (FileNotFoundError, ValueError, AttributeError):
            self._entries = {}

    def get(self, key: str) -> str | None:
        with self._lock:
            image_id = self._entries.get(key)
        if image_id is not None and not self._exists(image_id):
            with self._lock:
                self._entries.pop(key, None)
            return None
        return image_id

    def put(self, key: str, image_id: str) -> None:
        with self._lock:
            self._entries[key] = image_id
            self._entries = {k: v for k, v in self._entries.items() if self._exists(v)}
            temporary = self.path.with_name(self.path.name + ".tmp")
            temporary.write_text(json.dumps(self._entries))
            os.replace(temporary, self.path)
