"""The container runtime contract: an OCI runtime driven through bundles.

The engine writes an OCI bundle (config.json + rootfs) and uses the verbs of the OCI
runtime spec's command line. Two of them, `create` and `exec`, start a process whose
stdio and exit status belong to the container's monitor, so the runtime hands back the
command line for the monitor to run (as the container's parent, with the container's
stdio as its own); the other verbs the daemon calls directly.

Every runtime keeps its state under its own root inside the daemon's exec root, never
in the runtime's system-wide default (`/run/runc`), so containers of other engines on
the same host are never seen or touched.

Every runtime passes `dockyard.plugin.testing.runtime.RuntimeSuite`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


class RuntimeFailure(Exception):
    """The runtime refused or failed; the message is the runtime's own words."""


class ContainerNotFound(RuntimeFailure):
    pass


@dataclass(frozen=True)
class RuntimeState:
    """The OCI `state` of a container: creating, created, running, paused or stopped."""

    container_id: str
    status: str
    pid: int
    bundle: str


@runtime_checkable
class Runtime(Protocol):
    name: str

    def version(self) -> str:
        """The runtime's own version string, for `docker info` and `docker version`."""

    def create_command(self, container_id: str, bundle: Path, pid_file: Path,
                       console_socket: Path | None = None) -> list[str]:
        """The argv that creates the container (OCI `create`). The monitor runs it; with
        `console_socket` the runtime sends the pty master there (a terminal container),
        else the container inherits the monitor's stdio."""

    def exec_command(self, container_id: str, process_file: Path, pid_file: Path,
                     console_socket: Path | None = None) -> list[str]:
        """The argv that starts an extra process (the OCI `process` object in
        `process_file`) inside the container, detached, its pid written to `pid_file`."""

    def start(self, container_id: str) -> None: ...

    def state(self, container_id: str) -> RuntimeState:
        """Raise ContainerNotFound for an id the runtime does not know."""

    def kill(self, container_id: str, signal: int, all_processes: bool = False) -> None: ...

    def delete(self, container_id: str, force: bool = False) -> None:
        """Remove the runtime's record (and cgroup) of a stopped container; with force,
        kill it first. An unknown id is not an error."""

    def pause(self, container_id: str) -> None: ...

    def resume(self, container_id: str) -> None: ...

    def update(self, container_id: str, resources: Mapping[str, Any]) -> None:
        """Apply new cgroup limits (the OCI `linux.resources` shape) to a live container."""

    def list(self) -> Sequence[RuntimeState]:
        """Every container under this runtime's root, for recovery at start-up."""
