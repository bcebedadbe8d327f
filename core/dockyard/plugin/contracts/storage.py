"""The storage driver contract: layered filesystems for images and containers.

Layers are identified by ids the engine chooses (`LAYER_ID_PATTERN`): chain ids for image
layers, random ids for container layers. An image layer is created empty on top of its
parent, filled once by `apply_diff`, and read-only from then on. A container layer is a
thin writable layer over an image layer. The engine keeps the reference counts and calls
`remove` only when no image, container or child layer uses a layer any more; a driver
never has to decide whether a layer is still needed.

Layer tars are uncompressed and use OCI whiteouts (`.wh.NAME` deletes NAME from the
layers below, `.wh..wh..opq` hides a whole directory's lower content). They are hostile
input: `dockyard.plugin.archive` applies them safely, and drivers are expected to use it.

Every driver passes `dockyard.plugin.testing.storage.StorageDriverSuite`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

LAYER_ID_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Change:
    """One path a layer changed relative to its parent (what `docker diff` prints)."""

    path: str  # absolute inside the container: "/etc/hosts"
    kind: str  # "A" added, "C" changed, "D" deleted


@runtime_checkable
class StorageDriver(Protocol):
    def create_layer(self, layer_id: str, parent_id: str | None) -> None:
        """Create an empty read-only layer over `parent_id` (None for a base layer).

        Raise FileExistsError if `layer_id` exists. A layer whose creation is interrupted
        (crash, kill -9) is removed by the next `recover`."""

    def create_writable_layer(self, layer_id: str, parent_id: str | None) -> None:
        """Create a container's thin writable layer over an image layer. It must not cost
        time in proportion to the image's size."""

    def apply_diff(self, layer_id: str, parent_id: str | None, tar_stream: BinaryIO) -> int:
        """Unpack a layer tar into the freshly created `layer_id`; return the bytes of
        file content it wrote (the layer's size in `docker images`).

        Nothing may land outside the layer, whatever the tar says; a tar that tries is
        rejected with `dockyard.plugin.archive.UnsafeArchive` and the layer is left for the
        engine to remove."""

    def mount(self, layer_id: str) -> Path:
        """Make the full filesystem of `layer_id` (it and all its parents) visible and
        return its path. Mounts are counted: two `mount` calls need two `unmount`s."""

    def unmount(self, layer_id: str) -> None:
        """Drop one mount reference; the filesystem goes away with the last one."""

    def exists(self, layer_id: str) -> bool: ...

    def remove(self, layer_id: str) -> None:
        """Delete the layer. It has no children and no mounts when this is called; an
        unknown id is not an error (removal is idempotent)."""

    def diff(self, layer_id: str, parent_id: str | None) -> Iterator[bytes]:
        """Yield the layer tar of what `layer_id` changed relative to `parent_id`, with
        OCI whiteouts for deletions (`docker commit`, `docker save` of a layer)."""

    def changes(self, layer_id: str, parent_id: str | None) -> list[Change]:
        """What `layer_id` changed relative to `parent_id`, sorted by path."""

    def diff_size(self, layer_id: str, parent_id: str | None) -> int:
        """Bytes of file content `layer_id` adds or changes (`docker ps -s`)."""

    def status(self) -> Sequence[tuple[str, str]]:
        """Key/value pairs shown as `DriverStatus` in `docker info`."""

    def recover(self, known_layer_ids: set[str]) -> list[str]:
        """At start-up: delete every layer not in `known_layer_ids` (half-made ones left
        by a crash) and return their ids. Layers still mounted from before a restart
        count as mounted once."""

    def cleanup(self) -> None:
        """At shutdown: release what the driver holds for itself. Container mounts are
        the engine's to release (live restore keeps running containers' rootfs)."""
