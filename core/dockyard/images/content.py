"""The content store: blobs (manifests, configs, layer tarballs) addressed by digest.

A blob is written to `ingest/` while its digest is computed, and renamed into
`blobs/sha256/` only if the digest matches what the caller expected: a blob whose
bytes do not match its name never exists. A crash mid-write leaves only an ingest
file, which `recover` deletes. Blobs that no image needs are removed by `collect`,
except those an operation still in progress holds through a lease.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from dockyard.images.leases import Leases

_DIGEST = re.compile(r"^sha256:([a-f0-9]{64})$")
CHUNK = 1 << 20
_SMALL_BLOB = 64 * 1024
_SMALL_BLOBS_KEPT = 512  # at most 32 MiB, in practice a few hundred KiB


class DigestMismatch(ValueError):
    """Bytes that do not hash to the digest they were announced with."""


def check_digest(digest: str) -> str:
    """The hex part of a sha256 digest; anything else is refused (it becomes a path)."""
    match = _DIGEST.match(digest)
    if not match:
        raise ValueError(f"unsupported or malformed digest {digest!r} (expected sha256:<64 hex>)")
    return match.group(1)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class BlobWriter:
    """Writes one blob; `commit` verifies and publishes it, `abort` (or an exception in
    the `with` block) throws it away."""

    def __init__(self, store: ContentStore, expected: str | None, expected_size: int | None,
                 lease: set[str] | None) -> None:
        self._store = store
        self._lease = lease
        self._expected = expected
        self._expected_size = expected_size
        self._hash = hashlib.sha256()
        self.size = 0
        self._path = store.ingest_dir / uuid.uuid4().hex
        self._file = open(self._path, "wb")  # noqa: SIM115 (closed by commit/abort)
        self.digest: str | None = None

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self._file.write(data)
        self.size += len(data)

    def commit(self) -> str:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        digest = "sha256:" + self._hash.hexdigest()
        try:
            if self._expected and digest != self._expected:
                raise DigestMismatch(
                    f"content does not match its digest: expected {self._expected}, got {digest}"
                )
            if self._expected_size is not None and self.size != self._expected_size:
                raise DigestMismatch(
                    f"content of {digest} has {self.size} bytes, expected {self._expected_size}"
                )
            if self._lease is not None:
                self._store.hold(self._lease, digest)
            os.replace(self._path, self._store.path(digest))
        except BaseException:
            self._path.unlink(missing_ok=True)
            raise
        self.digest = digest
        return digest

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self._path.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or self.digest is None:
            self.abort()


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs_dir = root / "blobs" / "sha256"
        self.ingest_dir = root / "ingest"
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        self.ingest_dir.mkdir(parents=True, exist_ok=True)
        self._leases = Leases()
        self._small: dict[str, bytes] = {}
        self._small_lock = threading.Lock()

    def lease(self):
        """Blobs written or held with the yielded set survive `collect` until the block
        ends (an image being loaded has blobs before it has a record)."""
        return self._leases.lease()

    def hold(self, lease: set[str], digest: str) -> None:
        self._leases.hold(lease, digest)

    def collect(self, in_use: set[str]) -> int:
        """Delete every blob neither in `in_use` nor leased; returns bytes freed."""
        freed = 0
        with self._leases.lock:
            leased = self._leases.active()
            for digest in self.digests():
                if digest not in in_use and digest not in leased:
                    path = self.path(digest)
                    freed += path.stat().st_size
                    self._small.pop(digest, None)
                    path.unlink(missing_ok=True)
        return freed

    def path(self, digest: str) -> Path:
        return self.blobs_dir / check_digest(digest)

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def writer(self, expected: str | None = None, expected_size: int | None = None,
               lease: set[str] | None = None) -> BlobWriter:
        if expected is not None:
            check_digest(expected)
        return BlobWriter(self, expected, expected_size, lease)

    def put(self, data: bytes, expected: str | None = None, lease: set[str] | None = None) -> str:
        digest = sha256_digest(data)
        if expected is not None and digest != expected:
            raise DigestMismatch(f"content does not match its digest: expected {expected}, got {digest}")
        if lease is not None:
            self.hold(lease, digest)  # before the existence check: collect may be running
        if self.exists(digest):
            return digest
        with self.writer(digest, lease=lease) as writer:
            writer.write(data)
            return writer.commit()

    def put_stream(self, chunks: Iterable[bytes], expected: str | None = None,
                   lease: set[str] | None = None) -> tuple[str, int]:
        with self.writer(expected, lease=lease) as writer:
            for chunk in chunks:
                writer.write(chunk)
            return writer.commit(), writer.size

    def read(self, digest: str) -> bytes:
        """A whole blob. Small ones (configs, manifests) are remembered: a blob never
        changes, and a build reads the same few at every step."""
        cached = self._small.get(digest)
        if cached is not None:
            return cached
        data = self.path(digest).read_bytes()
        if len(data) <= _SMALL_BLOB:
            with self._small_lock:
                if len(self._small) >= _SMALL_BLOBS_KEPT:
                    self._small.pop(next(iter(self._small)))
                self._small[digest] = data
        return data

    def open(self, digest: str) -> BinaryIO:
        return open(self.path(digest), "rb")  # noqa: SIM115 (the caller closes it)

    def iter_chunks(self, digest: str) -> Iterator[bytes]:
        with self.open(digest) as blob:
            while chunk := blob.read(CHUNK):
                yield chunk

    def delete(self, digest: str) -> None:
        self._small.pop(digest, None)
        self.path(digest).unlink(missing_ok=True)

    def digests(self) -> list[str]:
        return ["sha256:" + p.name for p in self.blobs_dir.iterdir() if _DIGEST.match("sha256:" + p.name)]

    def recover(self) -> int:
        """Delete interrupted writes; returns how many there were."""
        leftovers = list(self.ingest_dir.iterdir())
        for path in leftovers:
            path.unlink(missing_ok=True)
        return len(leftovers)
