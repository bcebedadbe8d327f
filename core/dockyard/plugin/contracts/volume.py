"""The volume driver contract: named storage that outlives containers.

Shaped after Docker's volume plugin protocol: create, remove, mount per container with
reference counting by mount id, and the host path the engine bind-mounts from. The
engine owns everything else: names, labels, which containers use a volume, copying an
image's content into a new volume. Every call may be repeated after a crash, so each is
idempotent; a failed create leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class VolumeDriver(Protocol):
    scope: str
    """"local" or "global"."""

    def create(self, name: str, options: Mapping[str, str]) -> None:
        """Create volume `name` with the user's `-o key=value` options; an unknown or bad
        option raises VolumeDriverError naming it, and nothing is left behind."""

    def remove(self, name: str) -> None:
        """Delete the volume and its data; the engine calls it only when no container
        uses it. Removing a volume that does not exist is not an error."""

    def mount(self, name: str, mount_id: str) -> Path:
        """Make the volume available for one container (`mount_id`); return its path."""

    def unmount(self, name: str, mount_id: str) -> None: ...

    def path(self, name: str) -> Path | None:
        """Where the volume's data lives on the host, or None when it is not mounted."""

    def data_path(self, name: str) -> Path:
        """Where the volume's data is when it is mounted (Docker's `Mountpoint`), mounted
        or not."""

    def list(self) -> Sequence[str]: ...

    def status(self, name: str) -> Mapping[str, Any]:
        """Driver-specific facts shown as `Status` in `docker volume inspect`."""

    def restore(self, in_use: Mapping[str, Sequence[str]]) -> None:
        """After a daemon restart: `in_use` maps volume names to the mount ids of running
        containers that still use them. Rebuild the reference counts from it, and undo
        mounts nobody holds any more."""


class VolumeDriverError(Exception):
    """A failure the user can act on (a bad option, a missing device); the message says what to do."""
