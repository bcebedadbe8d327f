"""The layer store: read-only layers keyed by chain id, shared by every image that has them.

A layer is registered once, whatever number of images use it: registering a chain id
that exists only drains the tar. The metadata file written last is the commit point,
so a layer that was being applied when the daemon died has no metadata and is removed
by `recover`. Layers are removed by `collect`, given every chain id still in use
(images, containers, and any operation holding a lease): a layer goes with its last user.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from dockyard.images.leases import Leases
from dockyard.plugin.contracts.storage import StorageDriver

CHUNK = 1 << 20


def chain_id(parent: str | None, diff_id: str) -> str:
    """OCI chain id: the diff id for a base layer, else sha256(parent + " " + diff id)."""
    if parent is None:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    result: list[str] = []
    for diff_id in diff_ids:
        result.append(chain_id(result[-1] if result else None, diff_id))
    return result


@dataclass(frozen=True)
class Layer:
    chain_id: str
    diff_id: str
    parent: str | None
    cache_id: str  # the storage driver's id for this layer
    size: int  # bytes of file content the layer adds
    tar_size: int = 0  # bytes of the uncompressed layer tar (its diff id's content)


class HashingReader:
    """Passes a stream through while hashing it; extra sinks see every byte too (the
    content store's compressor, for example)."""

    def __init__(self, source: BinaryIO, sinks: Iterable = ()) -> None:
        self._source = source
        self._hash = hashlib.sha256()
        self._sinks = list(sinks)
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        if data:
            self._hash.update(data)
            self.size += len(data)
            for sink in self._sinks:
                sink(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class LayerError(Exception):
    pass


class LayerStore:
    def __init__(self, root: Path, driver: StorageDriver) -> None:
        self.root = root
        self.driver = driver
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._registering: dict[str, threading.Lock] = {}
        self._leases = Leases()
        self._layers: dict[str, Layer] = {}
        for path in self.root.glob("*.json"):
            try:
                layer = Layer(**json.loads(path.read_text()))
            except (ValueError, TypeError):
                path.unlink()  # a torn metadata write: the layer never committed
                continue
            self._layers[layer.chain_id] = layer

    # -- queries -------------------------------------------------------------------

    def get(self, chain: str) -> Layer:
        try:
            return self._layers[chain]
        except KeyError:
            raise LayerError(f"layer {chain} does not exist") from None

    def exists(self, chain: str) -> bool:
        return chain in self._layers

    def all(self) -> list[Layer]:
        with self._lock:
            return list(self._layers.values())

    def ancestry(self, chain: str | None) -> list[Layer]:
        """The layer and all its parents, top first."""
        result = []
        while chain is not None:
            layer = self.get(chain)
            result.append(layer)
            chain = layer.parent
        return result

    # -- registration ----------------------------------------------------------------

    def lease(self):
        """Chain ids added to the yielded set are safe from `collect` until the block
        ends: an image being loaded holds its layers this way until it is recorded."""
        return self._leases.lease()

    def hold(self, lease: set[str], chain: str) -> None:
        """Keep `chain` from collection while the lease lasts, whether it exists yet or not."""
        self._leases.hold(lease, chain)

    def register(self, parent: str | None, tar_stream: BinaryIO, lease: set[str],
                 expected_diff_id: str | None = None, sinks: Iterable = ()) -> Layer:
        """Apply an uncompressed layer tar over `parent` and record it, or find it.

        With `expected_diff_id` an existing layer is found before any byte is applied;
        without it the diff id is known only after the tar has been read."""
        reader = HashingReader(tar_stream, sinks)
        if expected_diff_id is not None:
            existing = chain_id(parent, expected_diff_id)
            self.hold(lease, existing)
            if existing in self._layers:
                reader.drain()
                self._verify(reader, expected_diff_id)
                return self._layers[existing]
        if parent is not None and parent not in self._layers:
            raise LayerError(f"parent layer {parent} does not exist")
        cache_id = secrets.token_hex(32)
        parent_cache = self._layers[parent].cache_id if parent else None
        self.driver.create_layer(cache_id, parent_cache)
        try:
            size = self.driver.apply_diff(cache_id, parent_cache, reader)
            reader.drain()  # tar padding after the end-of-archive marker is hashed too
            self._verify(reader, expected_diff_id)
        except BaseException:
            self.driver.remove(cache_id)
            raise
        layer = Layer(chain_id(parent, reader.digest), reader.digest, parent, cache_id, size,
                      reader.size)
        return self._commit(layer, lease)

    def _verify(self, reader: HashingReader, expected: str | None) -> None:
        if expected is not None and reader.digest != expected:
            raise LayerError(
                f"layer content does not match its diff id: expected {expected}, got {reader.digest}"
            )

    def _commit(self, layer: Layer, lease: set[str]) -> Layer:
        """Record the layer, unless another registration of the same content won."""
        with self._lock:
            lock = self._registering.setdefault(layer.chain_id, threading.Lock())
        with lock:
            self.hold(lease, layer.chain_id)
            existing = self._layers.get(layer.chain_id)
            if existing is not None:
                self.driver.remove(layer.cache_id)
                return existing
            path = self.root / (layer.chain_id.split(":", 1)[1] + ".json")
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(asdict(layer)))
            os.replace(temporary, path)  # the commit point
            with self._lock:
                self._layers[layer.chain_id] = layer
        return layer

    # -- removal -------------------------------------------------------------------

    def collect(self, in_use: set[str]) -> list[Layer]:
        """Remove every layer that no user in `in_use` (top chain ids) and no lease needs;
        children go before their parents. Returns what was removed."""
        with self._lock, self._leases.lock:
            needed: set[str] = set()
            for top in list(in_use) + list(self._leases.active()):
                chain = top
                while chain is not None and chain not in needed and chain in self._layers:
                    needed.add(chain)
                    chain = self._layers[chain].parent
            doomed = [layer for chain, layer in self._layers.items() if chain not in needed]
        depth = {layer.chain_id: len(self.ancestry(layer.chain_id)) for layer in doomed}
        doomed.sort(key=lambda layer: -depth[layer.chain_id])
        for layer in doomed:
            path = self.root / (layer.chain_id.split(":", 1)[1] + ".json")
            path.unlink(missing_ok=True)  # forget first: a crash here only leaks driver data
            with self._lock:
                self._layers.pop(layer.chain_id, None)
            self.driver.remove(layer.cache_id)
        return doomed

    def recover(self, extra_driver_ids: set[str]) -> list[str]:
        """At start-up: remove driver layers that no committed layer (nor a container,
        whose writable layers are `extra_driver_ids`) owns."""
        known = {layer.cache_id for layer in self._layers.values()} | extra_driver_ids
        for path in self.root.glob("*.tmp"):
            path.unlink(missing_ok=True)
        return self.driver.recover(known)
