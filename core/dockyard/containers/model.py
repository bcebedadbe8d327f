"""A container's record: what was asked for, and what became of it.

Field names and shapes follow Docker's container JSON (`Config`, `HostConfig`, `State`),
so inspect can show them as they are. The record lives in
`<data-root>/containers/<id>/container.json`, rewritten atomically on every change.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ZERO_TIME = "0001-01-01T00:00:00Z"


def now_rfc3339() -> str:
    now = time.time()
    seconds = int(now)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((now - seconds) * 1e9):09d}Z"


@dataclass
class State:
    Status: str = "created"  # created, running, paused, restarting, removing, exited, dead
    Running: bool = False
    Paused: bool = False
    Restarting: bool = False
    OOMKilled: bool = False
    Dead: bool = False
    Pid: int = 0
    ExitCode: int = 0
    Error: str = ""
    StartedAt: str = ZERO_TIME
    FinishedAt: str = ZERO_TIME
    Health: dict | None = None


@dataclass
class Container:
    id: str
    name: str  # without Docker's leading "/"
    created: str
    image_id: str
    image_name: str  # as the user typed it
    config: dict  # Docker's Config, image defaults merged in
    host_config: dict
    path: str = ""
    args: list[str] = field(default_factory=list)
    state: State = field(default_factory=State)
    restart_count: int = 0
    restart_delay: float = 0.0  # the last backoff delay, doubled on each quick failure
    driver: str = ""
    runtime: str = ""
    layer_id: str = ""  # the storage driver's id of the writable layer
    image_layer_id: str | None = None  # the image's top layer (driver id)
    init_layer_id: str | None = None  # between image and writable layer: the mount points
    image_chain_id: str | None = None
    has_been_started: bool = False
    manually_stopped: bool = False  # for unless-stopped
    network_settings: dict = field(default_factory=dict)
    mounts: list[dict] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)  # legacy link alias -> child container id

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def diff_parent(self) -> str | None:
        """The layer a container's changes are measured against."""
        return self.init_layer_id or self.image_layer_id

    @property
    def running(self) -> bool:
        return self.state.Running

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Container:
        state = State(**data.pop("state", {}))
        return cls(state=state, **data)


def save(container: Container, directory: Path, durable: bool = False) -> None:
    """Write the record atomically (write, rename). `durable` adds an fsync: the record
    made at create must survive a power loss; the state changes after it must survive
    a daemon crash, which the rename alone guarantees, and a power loss ends every
    container anyway (restore settles them as exited)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "container.json"
    temporary = directory / "container.json.tmp"
    with open(temporary, "w") as handle:
        json.dump(container.to_json(), handle)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(temporary, path)


def load(directory: Path) -> Container | None:
    try:
        return Container.from_json(json.loads((directory / "container.json").read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None
