"""The image store: which images exist, and which names and digests point at them.

An image is its config blob (its id is the config's digest, as in Docker) plus the
manifest that lists its layer blobs, both in the content store. This store records
images and the name -> image maps (tags and repository digests), each written
atomically; an image record is the commit point of a load, import or pull.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dockyard.images.content import check_digest


@dataclass
class ImageRecord:
    id: str  # "sha256:<config digest>"
    manifest: str  # digest of the image's manifest blob
    last_tag_time: float = 0.0
    extra: dict = field(default_factory=dict)


def _write_json_atomically(path: Path, value: object) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w") as handle:
        json.dump(value, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.records_dir = root / "images"
        self.records_dir.mkdir(parents=True, exist_ok=True)
        self._names_path = root / "repositories.json"
        self._lock = threading.RLock()
        self._images: dict[str, ImageRecord] = {}
        for path in self.records_dir.glob("*.json"):
            try:
                record = ImageRecord(**json.loads(path.read_text()))
            except (ValueError, TypeError):
                path.unlink()
                continue
            self._images[record.id] = record
        for path in self.records_dir.glob("*.tmp"):
            path.unlink()
        try:
            names = json.loads(self._names_path.read_text())
        except FileNotFoundError:
            names = {}
        # names of images that no longer exist (a crash between the two writes) are dropped
        self._tags: dict[str, str] = {
            k: v for k, v in names.get("tags", {}).items() if v in self._images}
        self._digests: dict[str, str] = {
            k: v for k, v in names.get("digests", {}).items() if v in self._images}

    # -- images --------------------------------------------------------------------

    def add(self, record: ImageRecord) -> None:
        check_digest(record.id)
        with self._lock:
            _write_json_atomically(self.records_dir / (record.id[7:] + ".json"), asdict(record))
            self._images[record.id] = record

    def get(self, image_id: str) -> ImageRecord | None:
        return self._images.get(image_id)

    def all(self) -> list[ImageRecord]:
        with self._lock:
            return list(self._images.values())

    def remove(self, image_id: str) -> None:
        with self._lock:
            self._tags = {k: v for k, v in self._tags.items() if v != image_id}
            self._digests = {k: v for k, v in self._digests.items() if v != image_id}
            self._save_names()
            (self.records_dir / (image_id[7:] + ".json")).unlink(missing_ok=True)
            self._images.pop(image_id, None)

    def ids_with_prefix(self, prefix: str) -> list[str]:
        return [i for i in self._images if i[7:].startswith(prefix)]

    # -- names ---------------------------------------------------------------------

    def _save_names(self) -> None:
        _write_json_atomically(self._names_path, {"tags": self._tags, "digests": self._digests})

    def set_tag(self, name: str, image_id: str) -> str | None:
        """Point `name` (a full normalized reference) at an image; returns the image it
        pointed at before, if another."""
        with self._lock:
            previous = self._tags.get(name)
            if previous == image_id:
                return None  # a rebuild that changed nothing tags the same image again: no write
            self._tags[name] = image_id
            self._save_names()
            record = self._images[image_id]
            record.last_tag_time = time.time()
            _write_json_atomically(self.records_dir / (image_id[7:] + ".json"), asdict(record))
            return previous

    def set_digest(self, name: str, image_id: str) -> None:
        with self._lock:
            self._digests[name] = image_id
            self._save_names()

    def remove_name(self, name: str) -> str | None:
        with self._lock:
            image_id = self._tags.pop(name, None) or self._digests.pop(name, None)
            self._save_names()
            return image_id

    def lookup_name(self, name: str) -> str | None:
        return self._tags.get(name) or self._digests.get(name)

    def all_tags(self) -> list[str]:
        with self._lock:
            return list(self._tags)

    def tags_of(self, image_id: str) -> list[str]:
        with self._lock:
            return sorted(name for name, target in self._tags.items() if target == image_id)

    def digests_of(self, image_id: str) -> list[str]:
        with self._lock:
            return sorted(name for name, target in self._digests.items() if target == image_id)
