"""The volume driver contract: named storage that outlives containers.

Shaped after Docker's volume plugin protocol: create, remove, mount per container with
reference counting by mount id, and the host path the engine bind-mounts from.
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
        """Create volume `name`; unknown options are an error naming the option."""

    def remove(self, name: str) -> None: ...

    def mount(self, name: str, mount_id: str) -> Path:
        """Make the volume available for one container (`mount_id`); return its path."""

    def unmount(self, name: str, mount_id: str) -> None: ...

    def path(self, name: str) -> Path | None:
        """Where the volume's data lives on the host, or None when it is not mounted."""

    def list(self) -> Sequence[str]: ...

    def status(self, name: str) -> Mapping[str, Any]:
        """Driver-specific facts shown as `Status` in `docker volume inspect`."""
