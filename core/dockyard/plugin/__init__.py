"""The plugin surface: everything a driver package may import from dockyard, and nothing else.

A third-party driver (storage, network, volume, registry or runtime) imports from here
only; the rest of dockyard (daemon, managers, API, CLI) is private and may change
between releases. The names are re-exported from the modules beside this one:

    from dockyard.plugin import DriverSpec, hookimpl, first_failure, need_root

    @hookimpl
    def dockyard_storage_drivers():
        yield DriverSpec(kind="storage", name="btrfs", factory=_make, priority=30,
                         probe=lambda: first_failure(need_root()),
                         description="btrfs subvolume snapshots")

- descriptors: `hookimpl`, `DriverSpec`, `DriverContext` (what a plugin hands the engine
  and what the engine hands its factories);
- `hookspecs`: the hooks, one per driver kind; their docstrings are the contract;
- `contracts`: one `typing.Protocol` per driver kind and the errors a driver raises
  (`contracts.storage`, `.network`, `.volume`, `.registry`, `.runtime`, `.store`);
- `probes`: building blocks for a spec's `probe`;
- kernel helpers: `mounts` (mount(2) and mountinfo), `netns` (work inside a network
  namespace), `netlink` (one netlink socket on one worker thread, for network drivers),
  `archive` (OCI layer tars in and out), `volume_records` (a directory per volume);
- `following`: a cluster store prefix, kept current by list and watch;
- `testing`: the conformance kit, one suite per driver kind, and the pytest fixtures.

Names load on first use, so importing this package costs nothing until a driver uses
it (the CLI reaches the registry contract on every pull).
"""

# ruff: noqa: F401  (the TYPE_CHECKING imports at the end are for type checkers)

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "dockyard.plugin.descriptors": (
        "DRIVER_KINDS", "ENTRY_POINT_GROUP", "PROJECT", "DriverContext", "DriverSpec", "hookimpl",
        "hookspec", "normalize_driver_name"),
    "dockyard.plugin.probes": (
        "first_failure", "need_binary", "need_filesystem", "need_netlink_kind", "need_root",
        "unfinished"),
    "dockyard.plugin.contracts.storage": ("LAYER_ID_PATTERN", "Change", "StorageDriver"),
    "dockyard.plugin.contracts.network": (
        "EndpointSpec", "GlobalNetworkAllocator", "Ipam", "NetworkDriver", "NetworkDriverError",
        "NetworkSpec", "PortBinding"),
    "dockyard.plugin.contracts.volume": ("VolumeDriver", "VolumeDriverError"),
    # The registry's other errors (NotFound, Unauthorized...) keep their module's names:
    # `from dockyard.plugin.contracts import registry`, then `registry.NotFound`.
    "dockyard.plugin.contracts.registry": ("Credentials", "Manifest", "RegistryClient", "RegistryError"),
    "dockyard.plugin.contracts.runtime": ("ContainerNotFound", "Runtime", "RuntimeFailure", "RuntimeState"),
    "dockyard.plugin.contracts.store": (
        "ClusterNode", "ClusterStore", "RevisionCompacted", "StoreEntry", "StoreError", "StoreEvent",
        "StoreUnavailable", "StoreWatch"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}
_SUBMODULES = ("archive", "contracts", "following", "hookspecs", "mounts", "netlink", "netns", "probes",
               "testing", "volume_records")

__all__ = sorted(_HOME) + list(_SUBMODULES)


def __getattr__(name: str) -> Any:
    if name in _HOME:
        value = getattr(importlib.import_module(_HOME[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from dockyard.plugin.contracts.network import (
        EndpointSpec,
        GlobalNetworkAllocator,
        Ipam,
        NetworkDriver,
        NetworkDriverError,
        NetworkSpec,
        PortBinding,
    )
    from dockyard.plugin.contracts.registry import Credentials, Manifest, RegistryClient, RegistryError
    from dockyard.plugin.contracts.runtime import ContainerNotFound, Runtime, RuntimeFailure, RuntimeState
    from dockyard.plugin.contracts.storage import LAYER_ID_PATTERN, Change, StorageDriver
    from dockyard.plugin.contracts.store import (
        ClusterNode,
        ClusterStore,
        RevisionCompacted,
        StoreEntry,
        StoreError,
        StoreEvent,
        StoreUnavailable,
        StoreWatch,
    )
    from dockyard.plugin.contracts.volume import VolumeDriver, VolumeDriverError
    from dockyard.plugin.descriptors import (
        DRIVER_KINDS,
        ENTRY_POINT_GROUP,
        PROJECT,
        DriverContext,
        DriverSpec,
        hookimpl,
        hookspec,
        normalize_driver_name,
    )
    from dockyard.plugin.probes import (
        first_failure,
        need_binary,
        need_filesystem,
        need_netlink_kind,
        need_root,
        unfinished,
    )
