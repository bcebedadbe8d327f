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
    """Key -> the images that step made, newest first: a step built again without the
    cache (--no-cache, or a --cache-from that excluded it) adds an image instead of
    replacing one that another build's --cache-from may still want."""

    KEEP = 4

    def __init__(self, path: Path, image_exists: Callable[[str], bool]) -> None:
        self.path = path
        self._exists = image_exists
        self._lock = threading.Lock()
        try:
            loaded = json.loads(path.read_text())
            self._entries: dict[str, list[str]] = {
                str(k): [str(i) for i in (v if isinstance(v, list) else [v])] for k, v in loaded.items()}
        except (FileNotFoundError, ValueError, AttributeError):
            self._entries = {}

    def get(self, key: str, allowed: set[str] | None = None) -> str | None:
        """The newest image for `key` that still exists (and is in `allowed`, if given)."""
        with self._lock:
            candidates = list(self._entries.get(key, ()))
        for image_id in candidates:
            if self._exists(image_id) and (allowed is None or image_id in allowed):
                return image_id
        return None

    def put(self, key: str, image_id: str) -> None:
        with self._lock:
            known = [i for i in self._entries.get(key, []) if i != image_id]
            self._entries[key] = [image_id, *known][:self.KEEP]
            self._entries = {k: kept for k, v in self._entries.items()
                             if (kept := [i for i in v if self._exists(i)])}
            temporary = self.path.with_name(self.path.name + ".tmp")
            temporary.write_text(json.dumps(self._entries))
            os.replace(temporary, self.path)
