"""The hooks a dockyard plugin implements: one per driver kind.

This module is the contract for third-party driver authors. Each hook returns an
iterable of `dockyard.plugin.DriverSpec` (a generator is fine); a plugin implements
only the hooks for the kinds it provides. The engine calls every hook once at start-up,
runs each spec's probe, selects drivers, and only then calls the chosen factories.

Implement hooks with `dockyard.plugin.hookimpl` in the module your entry point names:

    [project.entry-points.dockyard]
    dockyard-storage-btrfs = "dockyard_storage_btrfs"

The entry point's name must be your distribution's name: pluggy keeps one plugin per
name, so a shared name would silently hide one of two plugins.
"""

from __future__ import annotations

from collections.abc import Iterable

from dockyard.plugin import DriverSpec, hookspec


@hookspec
def dockyard_storage_drivers() -> Iterable[DriverSpec]:
    """Storage drivers: the layered filesystem under images and containers.

    The factory returns an object satisfying `dockyard.plugin.contracts.storage.StorageDriver`.
    One storage driver serves a data root for its whole life: the engine records the
    name on first use and refuses to start later with another one, so a driver never
    has to read another driver's layout. `priority` decides auto-selection (overlay 50,
    vfs 10); return a probe reason when the kernel or filesystem cannot support you.
    """


@hookspec
def dockyard_network_drivers() -> Iterable[DriverSpec]:
    """Network drivers: what `docker network create -d NAME` selects.

    The factory returns an object satisfying `dockyard.plugin.contracts.network.NetworkDriver`.
    Every supported network driver is active at once (networks choose their driver);
    `priority` only orders listings. `host` and `none` are built into the core.
    """


@hookspec
def dockyard_volume_drivers() -> Iterable[DriverSpec]:
    """Volume drivers: what `docker volume create -d NAME` selects.

    The factory returns an object satisfying `dockyard.plugin.contracts.volume.VolumeDriver`.
    Every supported volume driver is active at once; `local` is the default one.
    """


@hookspec
def dockyard_registry_drivers() -> Iterable[DriverSpec]:
    """Registry clients: how images are pulled from and pushed to registries.

    The factory returns an object satisfying `dockyard.plugin.contracts.registry.RegistryClient`.
    One is selected per daemon, by `registry-driver` in daemon.yaml or by priority.
    """


@hookspec
def dockyard_runtime_drivers() -> Iterable[DriverSpec]:
    """Container runtimes: what `--runtime NAME` and `--default-runtime` select.

    The factory returns an object satisfying `dockyard.plugin.contracts.runtime.Runtime`.
    Several runtimes may be active; the default is the flag, then daemon.yaml, then
    the supported one with the highest priority. A probe must catch setups the runtime
    cannot work with (missing binary, unusable cgroup layout) before the first `run`.
    """


@hookspec
def dockyard_store_drivers() -> Iterable[DriverSpec]:
    """Cluster stores: where daemons of one cluster keep what they share.

    The factory returns an object satisfying `dockyard.plugin.contracts.store.ClusterStore`.
    A store is built only when the daemon has a `--cluster-store URL`, and the URL's
    scheme names the driver (`etcd://h1:2379,h2:2379/prefix` selects `etcd`). The
    factory's `context.options` hold `endpoints` (comma-separated `host:port`), `prefix`
    (the URL's path, default `dockyard`) and the daemon's `cluster-store-opts`
    (`kv.cacertfile`, `kv.certfile`, `kv.keyfile` for TLS). The factory must not fail
    when the store is down: the daemon starts without it and joins once it answers.
    """
