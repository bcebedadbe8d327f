"""The container runtime contract: an OCI runtime driven through bundles.

The engine writes an OCI bundle (config.json + rootfs) and asks the runtime to create,
start, signal and delete the container, exactly the verbs of the OCI runtime spec's
command line. Holding the container's stdio and exit status is the monitor's job, not
the runtime's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class RuntimeState:
    """The OCI `state` of a container: creating, created, running, paused or stopped."""

    status: str
    pid: int


@runtime_checkable
class Runtime(Protocol):
    def version(self) -> str:
        """The runtime's own version string, for `docker info` and `docker version`."""

    def create(self, container_id: str, bundle: Path, pid_file: Path,
               console_socket: Path | None = None) -> None: ...

    def start(self, container_id: str) -> None: ...

    def state(self, container_id: str) -> RuntimeState: ...

    def kill(self, container_id: str, signal: int) -> None: ...

    def delete(self, container_id: str, force: bool = False) -> None: ...

    def pause(self, container_id: str) -> None: ...

    def resume(self, container_id: str) -> None: ...

    def update(self, container_id: str, resources: Mapping[str, Any]) -> None:
        """Apply new cgroup limits (the OCI `linux.resources` shape) to a live container."""

    def exec(self, container_id: str, process: Mapping[str, Any], pid_file: Path,
             console_socket: Path | None = None) -> None:
        """Start an extra process (the OCI `process` shape) inside the container."""

    def list(self) -> Sequence[str]:
        """Ids of the containers this runtime currently knows, for recovery at start-up."""
