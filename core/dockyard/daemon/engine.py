"""The engine: picks the drivers, builds them, and holds the managers that own state.

It is what the API layer talks to. Driver selection follows flag > daemon.yaml > auto
(existing state first, then priority among drivers whose probe passes). The storage
driver chosen for a data root is recorded there and never switched silently.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from typing import Any

from dockyard.daemon import hostinfo
from dockyard.daemon.config import DaemonConfig
from dockyard.daemon.events import EventsManager
from dockyard.daemon.pluginmanager import PluginError, PluginManager, install_hint
from dockyard.plugin import DRIVER_KINDS, DriverContext, DriverSpec

log = logging.getLogger(__name__)

STORAGE_RECORD = "storage-driver"

# Kinds where the engine runs exactly one driver; for the others every supported
# driver is active at once (each network or volume names its own driver).
SINGLE_DRIVER_KINDS = ("storage", "registry")


class EngineStartError(Exception):
    """The engine cannot start as configured; the message says what to change."""


class Engine:
    def __init__(self, config: DaemonConfig, plugins: PluginManager) -> None:
        self.config = config
        self.plugins = plugins
        self.events = EventsManager()
        self.started_at = time.time()
        self.drivers: dict[str, dict[str, Any]] = {kind: {} for kind in DRIVER_KINDS}
        self.default_runtime: str | None = None
        self.warnings: list[str] = []
        self.daemon_id = ""
        self.images = None  # an ImageManager once a storage driver runs
        self.containers = None  # a ContainerManager once a runtime runs too
        self.networks = None  # a NetworkManager once the network drivers run
        self.volumes = None  # a VolumeManager once the volume drivers run
        self.registries = None  # a RegistryService once storage and a registry client run
        self.builder = None  # a Builder once images and containers exist
        self.buildkit = None  # BuildKit's API in front of the builder, when grpcio is installed
        self.buildkit_unavailable = ""  # why not, for info and the log
        self._buildkit_settled = threading.Event()  # set once self.buildkit is what it will be
        self.cluster = None  # a ClusterMembership when the daemon has a --cluster-store
        self._lock = threading.Lock()

    # -- start-up ------------------------------------------------------------------

    def start(self) -> None:
        """Select and build every driver; on any error nothing is left half-started."""
        try:
            self.plugins.raise_for_conflicts()
            self.daemon_id = self._load_daemon_id()
            storage = self._select_storage()
            registry = self.plugins.select("registry", self.config.registry_driver or None)
            runtime = self.plugins.select("runtime", self.config.default_runtime or None)
            store = self._select_cluster_store()
        except PluginError as exc:
            raise EngineStartError(str(exc)) from None

        if store is not None:
            self.cluster = self._cluster_membership(store)

        if storage is not None:
            driver = self._build(storage)
            self._record_storage_driver(storage.name)
            from dockyard.images.manager import ImageManager

            self.images = ImageManager(self.config.data_root_path / "image", driver, storage.name,
                                       self.events)
        if registry is not None:
            client = self._build(registry)
            if self.images is not None:
                from dockyard.registries.service import RegistryService

                self.registries = RegistryService(
                    self.images, client, self.config.registry_mirrors,
                    self.config.max_concurrent_downloads, self.config.max_concurrent_uploads)
        for kind in ("runtime", "network", "volume"):
            for spec in self.plugins.supported(kind):
                self._build(spec)
        if runtime is not None:
            self.default_runtime = runtime.name
        self.networks = self._network_manager()
        from dockyard.volumes.manager import VolumeManager

        self.volumes = VolumeManager(self.config.data_root_path, self.drivers["volume"], self.events)
        if self.images is not None and self.drivers["runtime"]:
            self.containers = self._container_manager()
            self.images.containers_using = self.containers.using_image
            self.volumes.users_of = self.containers.volume_users
            self.images.container_layers = lambda: self.containers.layer_ids()[1]
        if self.containers is not None:
            self.builder = self._builder()
        if self.images is not None:
            writable, parents = self.containers.layer_ids() if self.containers else (set(), set())
            self.images.recover(writable, parents)
        if self.containers is not None:
            self.containers.restore()
        if self.builder is not None:
            self.builder.sweep()
            self._start_buildkit()
        else:
            self._buildkit_settled.set()
        if self.cluster is not None:
            self.cluster.start()
        self.warnings = self._missing_kind_warnings()
        if self.buildkit_unavailable:  # Compose and buildx would try to start a BuildKit of their own
            self.warnings.append(self.buildkit_unavailable)
        for warning in self.warnings:
            log.warning("%s", warning)

    def _select_cluster_store(self) -> DriverSpec | None:
        url = self.config.cluster_store_url()
        if url is None:
            return None
        try:
            return self.plugins.select("store", url.scheme)
        except PluginError as exc:
            raise PluginError(f"--cluster-store {self.config.cluster_store}: {exc}") from None

    def _cluster_membership(self, spec: DriverSpec):
        from dockyard.daemon.cluster import ClusterConfigError, ClusterMembership, resolve_advertise

        try:
            address = resolve_advertise(self.config.cluster_advertise)
            store = self._build(spec)
            membership = ClusterMembership(store, self.config.cluster_store_url(), self.daemon_id,
                                           hostinfo.hostname(), address, self.config.cluster_store_options(),
                                           self.config.exec_root_path)
        except ClusterConfigError as exc:
            raise EngineStartError(str(exc)) from None
        return membership  # started last in start(): a start that fails registers nothing

    def _network_manager(self):
        from dockyard.networks.dns import EmbeddedDns
        from dockyard.networks.manager import NetworkManager

        dns = EmbeddedDns()
        dns.start()
        networks = NetworkManager(self.config.data_root_path, self.drivers["network"], self.events,
                                  bridge_name=self.config.bridge, bridge_cidr=self.config.bip or None,
                                  dns=dns, cluster=self.cluster)
        networks.ensure_predefined()
        return networks

    def _builder(self):
        from dockyard.builder.builder import Builder
        from dockyard.builder.cache import BuildCache

        images = self.images
        cache = BuildCache(images.root / "build-cache.json",
                           lambda image_id: images.images.get(image_id) is not None)
        registries = self.registries
        pull = None
        if registries is not None:
            def pull(name, platform, credentials):
                return registries.pull(name, None, platform, credentials)
        return Builder(images, self.containers, pull, cache, images.tmp_dir)

    def _start_buildkit(self) -> None:
        """BuildKit's API, started on a thread: grpcio's import and server take ~0.15 s that
        the daemon's start need not wait for (`buildkit_front_door` waits instead)."""
        from dockyard.builder.buildkit import load_failure, unavailable_reason

        self.buildkit_unavailable = unavailable_reason() or ""
        if self.buildkit_unavailable:
            log.info("%s", self.buildkit_unavailable)
            self._buildkit_settled.set()
            return

        def start() -> None:
            try:
                self.buildkit_unavailable = load_failure() or ""
                if self.buildkit_unavailable:
                    log.warning("%s", self.buildkit_unavailable)
                    return
                from dockyard.builder.buildkit.service import BuildKitFrontDoor

                door = BuildKitFrontDoor(self.builder, self.images, self.config.exec_root_path / "buildkit",
                                         self.images.tmp_dir)
                door.start()
                self.buildkit = door
            except Exception as exc:
                log.exception("BuildKit's API could not start")
                self.buildkit_unavailable = f"BuildKit's API could not start: {exc}"
            finally:
                self._buildkit_settled.set()
        threading.Thread(target=start, daemon=True, name="buildkit start").start()

    def buildkit_front_door(self):
        """The front door, or None; waits for its start if that is still under way."""
        self._buildkit_settled.wait(30)
        return self.buildkit

    def _container_manager(self):
        import resource

        from dockyard.containers.manager import ContainerManager, RuntimeContext
        from dockyard.containers.ocispec import spec_for_container

        context = RuntimeContext(
            data_root=self.config.data_root_path,
            exec_root=self.config.exec_root_path,
            storage=self.storage_driver,
            storage_name=self.storage_driver_name,
            runtimes=self.drivers["runtime"],
            default_runtime=self.default_runtime,
            network_drivers=self.drivers["network"],
            networks=self.networks,
            volumes=self.volumes,
            images=self.images,
            events=self.events,
            max_nofile=resource.getrlimit(resource.RLIMIT_NOFILE)[1],
            build_spec=spec_for_container,
        )
        return ContainerManager(context)

    def _select_storage(self) -> DriverSpec | None:
        recorded = self._recorded_storage_driver()
        requested = self.config.storage_driver
        if recorded and requested and requested != recorded:
            raise EngineStartError(
                f"data root {self.config.data_root} holds images of storage driver "
                f"'{recorded}', not '{requested}'; start with --storage-driver {recorded}, "
                f"or use another --data-root for '{requested}'"
            )
        if recorded and not requested:
            try:
                return self.plugins.select("storage", recorded)
            except PluginError as exc:
                raise EngineStartError(
                    f"data root {self.config.data_root} was set up with storage driver "
                    f"'{recorded}', which cannot be used: {exc}"
                ) from None
        return self.plugins.select("storage", requested or None)

    def _recorded_storage_driver(self) -> str | None:
        try:
            return (self.config.data_root_path / STORAGE_RECORD).read_text().strip() or None
        except FileNotFoundError:
            return None

    def _record_storage_driver(self, name: str) -> None:
        record = self.config.data_root_path / STORAGE_RECORD
        if record.exists():
            return
        temporary = record.with_name(STORAGE_RECORD + ".tmp")
        temporary.write_text(name + "\n")
        os.replace(temporary, record)

    def _load_daemon_id(self) -> str:
        """A stable identity for this data root, shown as `ID` in `docker info`."""
        path = self.config.data_root_path / "engine-id"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            daemon_id = str(uuid.uuid4())
            temporary = path.with_name("engine-id.tmp")
            temporary.write_text(daemon_id + "\n")
            os.replace(temporary, path)
            return daemon_id

    def _build(self, spec: DriverSpec) -> Any:
        home = self.config.data_root_path / spec.kind / spec.name
        home.mkdir(parents=True, exist_ok=True)
        options = {}
        if spec.kind == "storage":
            options = self.config.storage_options()
        elif spec.kind == "registry":
            options = self._registry_options()
        elif spec.kind == "store":
            url = self.config.cluster_store_url()
            options = {**self.config.cluster_store_options(), "endpoints": ",".join(url.endpoints),
                       "prefix": url.prefix}
        context = DriverContext(
            kind=spec.kind,
            name=spec.name,
            home=home,
            exec_root=self.config.exec_root_path,
            options=options,
            logger=logging.getLogger(f"dockyard.driver.{spec.kind}.{spec.name}"),
            cluster=self.cluster if spec.kind == "network" else None,
        )
        try:
            driver = spec.factory(context)
        except Exception as exc:
            provider = self.plugins.provider(spec).distribution
            raise EngineStartError(
                f"{spec.kind} driver '{spec.name}' (from {provider}) failed to start: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self.drivers[spec.kind][spec.name] = driver
        return driver

    def _registry_options(self) -> dict[str, str]:
        """The registry client's options from the daemon's registry settings; a mirror
        given as an http:// URL is reached over plain HTTP, as its URL says."""
        from urllib.parse import urlsplit

        insecure = list(self.config.insecure_registries)
        insecure += [urlsplit(url).netloc for url in self.config.registry_mirrors
                     if url.startswith("http://")]
        return {"insecure-registries": ",".join(insecure),
                "certs-dir": self.config.registry_certs_dir, **self.config.registry_options()}

    def _missing_kind_warnings(self) -> list[str]:
        warnings = []
        for kind in DRIVER_KINDS:
            if kind == "store":  # wanted only by a daemon with a --cluster-store
                continue
            if kind == "network":
                if "bridge" not in self.drivers["network"]:
                    warnings.append(self._missing_message("network", "bridge"))
                continue
            if kind == "volume":
                if "local" not in self.drivers["volume"]:
                    warnings.append(self._missing_message("volume", "local"))
                continue
            if not self.drivers[kind]:
                warnings.append(self._missing_message(kind, None))
        return warnings

    def _missing_message(self, kind: str, name: str | None) -> str:
        what = f"{kind} driver '{name}'" if name else f"{kind} driver"
        unsupported = [
            f"{spec.name}: {self.plugins.why_unsupported(spec)}"
            for spec in self.plugins.specs(kind)
            if (name is None or spec.name == name) and self.plugins.why_unsupported(spec)
        ]
        if unsupported:
            return f"no usable {what}: " + "; ".join(unsupported)
        return f"no {what} installed: {install_hint(kind, name)}"

    # -- queries -------------------------------------------------------------------

    @property
    def storage_driver(self) -> Any | None:
        return next(iter(self.drivers["storage"].values()), None)

    @property
    def storage_driver_name(self) -> str:
        return next(iter(self.drivers["storage"]), "")

    def plugin_report(self) -> list[dict]:
        return self.plugins.report({kind: set(drivers) for kind, drivers in self.drivers.items()})

    def host_facts(self) -> dict[str, Any]:
        return {
            "kernel": hostinfo.kernel_version(),
            "os": hostinfo.operating_system(),
            "os_version": hostinfo.os_version(),
            "arch": hostinfo.architecture(),
            "cpus": os.cpu_count() or 1,
            "memory": hostinfo.memory_total(),
            "cgroup_version": hostinfo.cgroup_version(),
            "hostname": hostinfo.hostname(),
        }

    # -- lifecycle -----------------------------------------------------------------

    def reload(self, config: DaemonConfig) -> None:
        """Apply the settings that may change without a restart (SIGHUP)."""
        with self._lock:
            self.config.labels = config.labels
            self.config.log_level = config.log_level
            self.config.debug = config.debug
        self.events.publish("daemon", "reload", self.daemon_id,
                            {"name": hostinfo.hostname(), "labels": ",".join(config.labels)})

    def shutdown(self) -> None:
        self._buildkit_settled.wait(5 if self.builder is not None else 0)
        if self.buildkit is not None:
            self.buildkit.close()
        if self.cluster is not None:
            self.cluster.stop()  # the lease is left to expire: see daemon.cluster
            self.cluster.store.close()
        if self.registries is not None:
            self.registries.close()
        if self.containers is not None:
            self.containers.shutdown()
        if self.networks is not None:
            self.networks.shutdown()
        self.events.close()
        storage = self.storage_driver
        if storage is not None and hasattr(storage, "cleanup"):
            try:
                storage.cleanup()
            except Exception:
                log.exception("storage driver cleanup failed")

