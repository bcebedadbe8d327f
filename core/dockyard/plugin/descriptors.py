"""What a plugin hands the engine, and what the engine hands back: the hook markers,
`DriverSpec` (a driver described without importing or starting it) and `DriverContext`
(what a driver's factory receives). Driver packages import these from `dockyard.plugin`:

    from dockyard.plugin import hookimpl, DriverSpec

    @hookimpl
    def dockyard_storage_drivers():
        yield DriverSpec(kind="storage", name="btrfs", factory=_make, priority=30,
                         probe=_why_not_here, description="btrfs subvolume snapshots")

and an entry point in the group ``dockyard`` whose name is the distribution's name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

PROJECT = "dockyard"
ENTRY_POINT_GROUP = "dockyard"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# The kinds of driver the engine knows, in the order `dockyard plugins` lists them.
DRIVER_KINDS = ("storage", "network", "volume", "registry", "runtime", "store")

_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def normalize_driver_name(name: str) -> str:
    """Driver names are matched case-insensitively with `_` and `-` treated alike."""
    return name.strip().lower().replace("_", "-")


@dataclass(frozen=True)
class DriverContext:
    """What the engine hands a driver factory.

    `home` is a directory that belongs to this driver alone (it exists when the
    factory runs); `exec_root` is for runtime state that must not survive a reboot
    (sockets, pid files); `options` are the user's `--storage-opt`-style settings,
    already parsed into a mapping of strings. `cluster` is the daemon's place in a
    multi-host cluster (a `dockyard.plugin.contracts.store.ClusterNode`: the shared
    store, this node's id, address and lease), None for a daemon without
    `--cluster-store`; network drivers of global scope need it.
    """

    kind: str
    name: str
    home: Path
    exec_root: Path
    options: Mapping[str, str] = field(default_factory=dict)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("dockyard.driver"))
    cluster: Any = None


@dataclass(frozen=True)
class DriverSpec:
    """A driver offered by a plugin, described without importing or starting it.

    kind        one of DRIVER_KINDS.
    name        what users type (`--storage-driver overlay`, `-d macvlan`); normalized
                to lower case with `-` for `_`.
    factory     called once by the daemon with a DriverContext; returns the driver
                object, which must satisfy the Protocol in `dockyard.plugin.contracts.<kind>`.
                Import heavy modules inside it, not at plugin import time.
    description one line for `dockyard plugins`.
    priority    auto-selection order among drivers of one kind: higher wins (the
                built-in scale: overlay 50, vfs 10; runc 50, crun 40).
    probe       returns None when the driver can work on this host, or a sentence
                saying why not ("overlayfs is not in /proc/filesystems"). It must be
                cheap and must not change the host. A driver that is not finished yet
                must say so here rather than pretend.
    """

    kind: str
    name: str
    factory: Callable[[DriverContext], Any]
    description: str = ""
    priority: int = 0
    probe: Callable[[], str | None] = field(default=lambda: None)

    def __post_init__(self) -> None:
        if self.kind not in DRIVER_KINDS:
            raise ValueError(
                f"driver kind {self.kind!r} is not one of {', '.join(DRIVER_KINDS)}"
            )
        normalized = normalize_driver_name(self.name)
        if not _NAME_PATTERN.match(normalized):
            raise ValueError(
                f"driver name {self.name!r} must be lower-case letters, digits, '.', '-' or '_'"
            )
        object.__setattr__(self, "name", normalized)

    def why_unsupported(self) -> str | None:
        """Run the probe; a probe that crashes counts as unsupported, with its error."""
        try:
            return self.probe()
        except Exception as exc:  # a third-party probe must not take the daemon down
            return f"probe failed: {type(exc).__name__}: {exc}"
