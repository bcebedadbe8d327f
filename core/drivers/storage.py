"""The storage driver contract: layered filesystems for images and containers.

Layers are identified by opaque ids the engine chooses (chain ids for image layers,
random ids for container layers). An image layer is created empty on top of its parent,
then filled once by `apply_diff`; after that it is read-only for good. A container
layer is a thin writable layer on top of an image layer. The engine keeps reference
counts and calls `remove` only when nothing uses a layer any more.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable


@dataclass(frozen=True)
class Change:
    """One path a layer changed relative to its parent (what `docker diff` prints)."""

    path: str
    kind: str  # "A" added, "C" changed, "D" deleted


@runtime_checkable
class StorageDriver(Protocol):
    def create_layer(self, layer_id: str, parent_id: str | None) -> None:
        """Create an empty read-only layer over `parent_id` (None for a base layer)."""

    def create_writable_layer(self, layer_id: str, parent_id: str | None) -> None:
        """Create a container's thin writable layer over an image layer."""

    def apply_diff(self, layer_id: str, parent_id: str | None, tar_stream: BinaryIO) -> int:
        """Unpack a layer tar (OCI whiteouts included) into `layer_id`; return its size.

        The tar is hostile input: nothing may land outside the layer.
        """

    def mount(self, layer_id: str) -> Path:
        """Make the layer's full filesystem visible and return its path.

        Mounts are counted: two `mount` calls need two `unmount` calls.
        """

    def unmount(self, layer_id: str) -> None: ...

    def exists(self, layer_id: str) -> bool: ...

    def remove(self, layer_id: str) -> None:
        """Delete the layer; it is not mounted and has no children when this is called."""

    def status(self) -> Sequence[tuple[str, str]]:
        """Key/value pairs shown as `DriverStatus` in `docker info`."""

    def recover(self, known_layer_ids: set[str]) -> list[str]:
        """At start-up, delete every layer not in `known_layer_ids` (half-made ones
        left by a crash) and return their ids."""

    def cleanup(self) -> None:
        """At shutdown: release every mount this driver made."""


@runtime_checkable
class DiffingStorageDriver(StorageDriver, Protocol):
    """A driver that can compute a layer's diff natively (overlay reads its upper dir);
    drivers without it get the engine's generic tree comparison."""

    def diff(self, layer_id: str, parent_id: str | None) -> Iterator[bytes]:
        """Yield the layer tar of `layer_id` relative to `parent_id`, with whiteouts."""

    def changes(self, layer_id: str, parent_id: str | None) -> list[Change]: ...

    def diff_size(self, layer_id: str, parent_id: str | None) -> int: ...
