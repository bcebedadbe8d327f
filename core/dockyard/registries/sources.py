"""Which repositories are known to hold a blob: the memory behind cross-repository mounts.

Every blob pulled from or pushed to a repository is noted here. Pushing that blob to
another repository of the same registry then asks the registry to mount it from one
it already has instead of uploading the bytes again. A wrong entry costs nothing but a
refused mount (the upload then goes ahead), so the file is kept small and simple.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path

KEEP_PER_BLOB = 8


class BlobSources:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            loaded = json.loads(path.read_text())
            self._sources: dict[str, list[str]] = {
                str(digest): [str(r) for r in repositories]
                for digest, repositories in loaded.items() if isinstance(repositories, list)}
        except (FileNotFoundError, ValueError, AttributeError):
            self._sources = {}

    def add(self, digests: Iterable[str], registry: str, repository: str) -> None:
        where = f"{registry}/{repository}"
        with self._lock:
            for digest in digests:
                known = [r for r in self._sources.get(digest, []) if r != where]
                self._sources[digest] = [where, *known][:KEEP_PER_BLOB]
            self._save()

    def repositories(self, digest: str, registry: str, besides: str) -> list[str]:
        """Repositories of `registry` other than `besides` that were seen holding `digest`."""
        prefix = registry + "/"
        with self._lock:
            return [r[len(prefix):] for r in self._sources.get(digest, [])
                    if r.startswith(prefix) and r[len(prefix):] != besides]

    def forget_except(self, digests: set[str]) -> None:
        """Drop blobs that are gone from the content store."""
        with self._lock:
            self._sources = {d: r for d, r in self._sources.items() if d in digests}
            self._save()

    def _save(self) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(self._sources))
        os.replace(temporary, self.path)
