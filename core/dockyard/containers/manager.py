"""The container manager: creates, runs, stops and removes containers, with Docker's rules.

It owns every container record and is the only code that changes one. Kernel work is
delegated: the storage driver makes the writable layer and mounts the rootfs, the
runtime (runc, crun) creates and signals the container, the network driver wires its
namespace, and a monitor process per container holds its stdio and learns its exit.
A supervisor thread per running container waits on the monitor and applies the
restart policy when the container exits; after a daemon restart the supervisors are
re-attached to the monitors that kept the containers running (live restore).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.containers import model
from dockyard.containers.model import Container
from dockyard.containers.release import RuntimeReleaser, sweep_orphans
from dockyard.daemon.events import EventsManager
from dockyard.errors import Conflict, EngineError, Forbidden, InvalidParameter, NotFound, NotModified
from dockyard.monitor.client import MonitorError, MonitorHandle, Zygote
from dockyard.plugin.contracts.runtime import ContainerNotFound, Runtime, RuntimeFailure
from dockyard.plugin.netns import create_namespace, remove_namespace

log = logging.getLogger(__name__)

_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_ADJECTIVES = ("brave", "calm", "eager", "fervent", "gallant", "happy", "jolly", "keen", "lucid",
               "modest", "nifty", "quirky", "serene", "stoic", "tender", "upbeat", "vibrant", "zen")
_SURNAMES = ("archimedes", "babbage", "curie", "darwin", "euler", "faraday", "galileo", "hopper",
             "johnson", "kepler", "lovelace", "meitner", "noether", "pascal", "ritchie", "shannon",
             "turing", "wozniak")
DEFAULT_STOP_TIMEOUT = 10
RESTART_DELAY_START = 0.1
RESTART_DELAY_MAX = 60.0
RESTART_RESET_AFTER = 10.0  # a container that ran this long restarts without backoff


class StartFailed(EngineError):
    """The runtime could not start the process; the message keeps the runtime's words,
    which the docker CLI reads to choose exit code 126 or 127."""

    status = 400


def now_rfc3339() -> str:
    now = time.time()
    seconds = int(now)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((now - seconds) * 1e9):09d}Z"


def random_name() -> str:
    return f"{random.choice(_ADJECTIVES)}_{random.choice(_SURNAMES)}"


@dataclass
class ExecRecord:
    id: str
    container_id: str
    config: dict
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    started: bool = False
    console_size: tuple[int, int] | None = None


@dataclass
class _Live:
    """What the manager holds in memory for one container."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    changed: threading.Condition = field(default_factory=threading.Condition)
    exits: int = 0  # bumped on every exit, for wait(next-exit)
    removed: bool = False  # removal has begun: no restart, no start
    destroyed: bool = False  # removal has finished: wait(removed) returns
    supervisor: threading.Thread | None = None
    stop_requested: bool = False
    health: threading.Event | None = None
    pending_attaches: list[PendingAttach] = field(default_factory=list)


@dataclass
class PendingAttach:
    """An attach made before the container started (`docker run`): connected to the
    monitor by `start` after the container is created and before it runs."""

    stdin: bool
    stdout: bool
    stderr: bool
    ready: threading.Event = field(default_factory=threading.Event)
    sock: object = None
    error: str = ""


@dataclass
class RuntimeContext:
    """What the manager needs from the rest of the engine, so it never imports a
    concrete driver: the engine fills this in."""

    data_root: Path
    exec_root: Path
    storage: object
    storage_name: str
    runtimes: dict[str, Runtime]
    default_runtime: str | None
    network_drivers: dict[str, object]
    networks: object  # the NetworkManager (None when no network driver runs at all)
    images: object  # ImageManager
    events: EventsManager
    max_nofile: int
    build_spec: Callable[..., dict]
    volumes: object = None  # the VolumeManager


class ContainerManager:
    def __init__(self, context: RuntimeContext) -> None:
        self.context = context
        self.events = context.events
        self.root = context.data_root / "containers"
        self.run_root = context.exec_root / "containers"
        self.root.mkdir(parents=True, exist_ok=True)
        self.run_root.mkdir(parents=True, exist_ok=True)
        self.zygote = Zygote(context.exec_root)
        self._releaser = RuntimeReleaser()
        self._lock = threading.RLock()
        self._containers: dict[str, Container] = {}
        self._live: dict[str, _Live] = {}
        self._execs: dict[str, ExecRecord] = {}
        self._shutting_down = False
        for leftovers in (self.run_root, context.exec_root / "m"):
            for directory in leftovers.glob(".gone-*"):  # set aside by a remove, not deleted
                shutil.rmtree(directory, ignore_errors=True)
        for directory in self.root.iterdir():
            if directory.name.startswith(".gone-"):  # set aside by a remove, not yet deleted
                shutil.rmtree(directory, ignore_errors=True)
                continue
            container = model.load(directory)
            if container is None:
                shutil.rmtree(directory, ignore_errors=True)  # a create that never finished
                continue
            self._containers[container.id] = container
            self._live[container.id] = _Live()

    # -- lookup --------------------------------------------------------------------

    def get(self, name_or_id: str) -> Container:
        """Docker's order: full id, exact name, then unique id prefix."""
        key = name_or_id.lstrip("/")
        with self._lock:
            if key in self._containers:
                return self._containers[key]
            for container in self._containers.values():
                if container.name == key:
                    return container
            matches = [c for c in self._containers.values() if key and c.id.startswith(key)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"multiple IDs found with provided prefix: {name_or_id}")
        raise NotFound(f"No such container: {name_or_id}")

    def all(self) -> list[Container]:
        with self._lock:
            return list(self._containers.values())

    def directory(self, container: Container) -> Path:
        return self.root / container.id

    def run_directory(self, container: Container) -> Path:
        return self.run_root / container.id

    def log_path(self, container: Container) -> Path:
        return self.directory(container) / f"{container.id}-json.log"

    def monitor_directory(self, container: Container) -> Path:
        """Kept short: UNIX socket paths (control.sock, console sockets) may not exceed
        107 bytes, and a 64-hex id under /run/dockyard/containers/ alone nearly does."""
        return self.context.exec_root / "m" / container.id[:16]

    def monitor(self, container: Container) -> MonitorHandle:
        return MonitorHandle(self.monitor_directory(container))

    def using_image(self, image_id: str) -> list[tuple[str, bool]]:
        return [(c.id, c.running) for c in self.all() if c.image_id == image_id]

    def layer_ids(self) -> tuple[set[str], set[str]]:
        """(writable layer ids, image chain ids) that containers hold, for the image GC."""
        containers = self.all()
        return ({c.layer_id for c in containers} | {c.init_layer_id for c in containers if c.init_layer_id},
                {c.image_chain_id for c in containers if c.image_chain_id})

    def _save(self, container: Container, durable: bool = False) -> None:
        model.save(container, self.directory(container), durable)
        live = self._live.get(container.id)
        if live is not None:
            with live.changed:
                live.changed.notify_all()

    def _event(self, container: Container, action: str, **extra: str) -> None:
        attributes = {"name": container.name, "image": container.image_name,
                      **(container.config.get("Labels") or {}), **extra}
        self.events.publish("container", action, container.id, attributes)

    # -- create --------------------------------------------------------------------

    def create(self, name: str | None, config: dict, host_config: dict,
               networking_config: dict | None = None) -> Container:
        image_name = config.get("Image") or ""
        if not image_name:
            raise InvalidParameter("No image was given: config.Image is required")
        images = self.context.images
        if images is None:
            raise InvalidParameter("no storage driver is running: install one (pip install "
                                   "dockyard-storage-overlay) to create containers")
        record = images.resolve(image_name)
        image_config = images.config(record)
        from dockyard.containers.ocispec import merge_image_config, validate_config

        merged = merge_image_config(config, image_config.get("config") or {})
        if not merged.get("Cmd") and not merged.get("Entrypoint"):
            raise InvalidParameter("No command specified")
        validate_config(merged)
        host_config = normalize_host_config(host_config)
        runtime_name = host_config.get("Runtime") or self.context.default_runtime
        if not runtime_name or runtime_name not in self.context.runtimes:
            known = ", ".join(sorted(self.context.runtimes)) or "none installed"
            raise InvalidParameter(f"unknown or invalid runtime name: {runtime_name or '(none)'} "
                                   f"(available: {known})")
        from dockyard.containers.ocispec import validate_host_config

        validate_host_config(host_config)
        network_settings = self._requested_networks(host_config, networking_config)
        container_id = secrets.token_hex(32)
        with self._lock:
            if name is not None:
                if not _NAME.match(name):
                    raise InvalidParameter(
                        f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
                name = name.lstrip("/")
                for other in self._containers.values():
                    if other.name == name:
                        raise Conflict(
                            f'Conflict. The container name "/{name}" is already in use by container '
                            f'"{other.id}". You have to remove (or rename) that container to be able '
                            f"to reuse that name.")
            else:
                taken = {c.name for c in self._containers.values()}
                name = random_name()
                while name in taken:
                    name = f"{random_name()}{random.randint(0, 99)}"
            mounts, made_volumes = self._requested_mounts(merged, host_config)  # last: it creates volumes
            top_chain = images.top_layer(record)
            parent_layer = images.layers.get(top_chain).cache_id if top_chain else None
            entrypoint = merged.get("Entrypoint") or []
            command = merged.get("Cmd") or []
            argv = list(entrypoint) + list(command)
            container = Container(
                id=container_id, name=name, created=now_rfc3339(), image_id=record.id,
                image_name=image_name, config=merged, host_config=host_config,
                path=argv[0], args=argv[1:], driver=self.context.storage_name,
                runtime=runtime_name, layer_id=container_id, image_layer_id=parent_layer,
                init_layer_id=f"{container_id}-init", image_chain_id=top_chain,
                network_settings=network_settings, mounts=mounts,
            )
            try:
                self._create_layers(container)
                self._save(container, durable=True)
            except BaseException:
                self.context.storage.remove(container.layer_id)
                self.context.storage.remove(container.init_layer_id)
                self._drop_volumes(made_volumes)
                raise
            self._containers[container_id] = container
            self._live[container_id] = _Live()
        self._event(container, "create")
        return container

    def _requested_networks(self, host_config: dict, networking_config: dict | None) -> dict:
        """The networks a container joins at each start, with what was asked of each
        endpoint (static address, aliases): Docker's NetworkSettings.Networks, without
        the parts that exist only while it runs."""
        mode = host_config.get("NetworkMode") or "default"
        endpoints = dict((networking_config or {}).get("EndpointsConfig") or {})
        if "default" in endpoints:  # the docker CLI names the default network "default"
            endpoints["bridge" if mode == "default" else mode] = endpoints.pop("default")
        if mode in ("host", "none") or mode.startswith("container:"):
            if mode.startswith("container:"):
                self.get(mode.split(":", 1)[1])  # 404 for an unknown container, as Docker does
            if endpoints and set(endpoints) != {mode}:
                raise InvalidParameter("conflicting options: container cannot be connected to multiple "
                                       f"networks with one of the networks in {mode} mode")
            return {"Networks": {}}
        networks = self.context.networks
        if networks is None:
            return {"Networks": {}}
        primary = "bridge" if mode == "default" else mode
        if primary == "bridge" and networks.find("bridge") is None:
            return {"Networks": {}}  # no bridge driver here: loopback only (the daemon warned)
        requested = {}
        for name in dict.fromkeys([primary, *endpoints]):
            network = networks.find(name)
            if network is None:  # not a 404: the docker CLI would take that for a missing image
                raise InvalidParameter(f"network {name} not found")
            requested[network.name] = networks.endpoint_config(network, endpoints.get(name))
        return {"Networks": requested}

    def _requested_mounts(self, config: dict, host_config: dict) -> tuple[list[dict], list[str]]:
        """Docker's Mounts entries for -v, --mount, --volumes-from and the image's VOLUMEs,
        creating the volumes they name. Returns them and the volumes made here, which a
        failure of this create removes again."""
        from dockyard.formats.mountspec import MountSpecError, mount_requests, volumes_from

        try:
            requests = mount_requests(config, host_config)
        except MountSpecError as exc:
            raise InvalidParameter(str(exc)) from None
        made: list[str] = []
        entries: list[dict] = []
        try:
            for request in requests:
                if request.kind == "volume":
                    entries.append(self._volume_entry(request, host_config, made))
                elif request.kind == "bind":
                    entries.append(_bind_entry(request))
                else:
                    entries.append({"Type": "tmpfs", "Source": "", "Destination": request.destination,
                                    "Mode": "", "RW": not request.read_only, "Propagation": "",
                                    "_size": request.tmpfs_size, "_mode": request.tmpfs_mode})
            taken = {entry["Destination"] for entry in entries}
            for spec in host_config.get("VolumesFrom") or []:
                try:
                    source_name, mode = volumes_from(spec)
                except MountSpecError as exc:
                    raise InvalidParameter(str(exc)) from None
                for entry in self.get(source_name).mounts:
                    if entry["Type"] == "tmpfs" or entry["Destination"] in taken:
                        continue
                    shared = dict(entry)
                    shared["RW"] = entry["RW"] and mode != "ro"  # a mode never makes ro writable
                    entries.append(shared)
                    taken.add(entry["Destination"])
        except BaseException:
            self._drop_volumes(made)
            raise
        return entries, made

    def _volume_entry(self, request, host_config: dict, made: list[str]) -> dict:
        volumes = self.context.volumes
        if volumes is None:
            raise InvalidParameter("volumes need a volume driver: pip install dockyard-volume-local")
        driver = request.volume_driver  # mountspec applies HostConfig.VolumeDriver where Docker does
        existing = None
        if request.source:
            try:
                existing = volumes.get(request.source)
            except NotFound:
                existing = None
        volume = existing or volumes.create(request.source or None, driver, request.volume_options,
                                            request.volume_labels, anonymous=not request.source)
        if existing is None:
            made.append(volume.name)
        return {"Type": "volume", "Name": volume.name, "Source": volumes.mountpoint(volume),
                "Destination": request.destination, "Driver": volume.driver, "Mode": "z",
                "RW": not request.read_only, "Propagation": "", "_nocopy": request.no_copy}

    def _drop_volumes(self, names: list[str]) -> None:
        for name in names:
            try:
                self.context.volumes.remove(name, force=True)
            except EngineError as exc:
                log.warning("could not remove volume %s after a failed create: %s", name, exc)

    def volume_users(self, name: str) -> list[str]:
        """Containers whose record names the volume, running or not (Docker counts both)."""
        return [c.id for c in self.all() if any(m.get("Name") == name for m in c.mounts)]

    def _mount_volumes(self, container: Container, rootfs: Path) -> list[dict]:
        """OCI mounts for the container's Mounts, taking its volumes (copy-up included)."""
        specs = []
        for entry in container.mounts:
            destination = entry["Destination"]
            if entry["Type"] == "tmpfs":
                options = ["nosuid", "nodev", "noexec"] + ([] if entry["RW"] else ["ro"])
                if entry.get("_size"):
                    options.append(f"size={entry['_size']}")
                if entry.get("_mode") is not None:
                    options.append(f"mode={entry['_mode']:o}")
                specs.append({"destination": destination, "type": "tmpfs", "source": "tmpfs",
                              "options": options})
                continue
            source = entry["Source"]
            if entry["Type"] == "volume":
                image_content = None if entry.get("_nocopy") else rootfs / destination.lstrip("/")
                source = self.context.volumes.mount(entry["Name"], container.id, image_content)
            elif not os.path.exists(source):
                raise StartFailed(f"error while creating mount source path '{source}': the bind source "
                                  "is gone: create it again, or remove the container")
            options = ["rbind", entry.get("Propagation") or "rprivate"] + ([] if entry["RW"] else ["ro"])
            specs.append({"destination": destination, "type": "bind", "source": source, "options": options})
        return specs

    def _unmount_volumes(self, container: Container) -> None:
        if self.context.volumes is None:
            return
        for entry in container.mounts:
            if entry["Type"] == "volume":
                self.context.volumes.unmount(entry["Name"], container.id)

    def _create_layers(self, container: Container) -> None:
        """Docker's -init layer holds the mount points the runtime binds over (/etc/hosts,
        /etc/resolv.conf, /etc/hostname, /dev/shm...), so they never show up in `docker
        diff` or in a committed image; the writable layer goes on top of it."""
        import io

        storage = self.context.storage
        storage.create_layer(container.init_layer_id, container.image_layer_id)
        storage.apply_diff(container.init_layer_id, container.image_layer_id, io.BytesIO(_init_layer_tar()))
        storage.create_writable_layer(container.layer_id, container.init_layer_id)

    # -- start ---------------------------------------------------------------------

    def start(self, name_or_id: str) -> Container:
        container = self.get(name_or_id)
        live = self._live[container.id]
        with live.lock:
            if container.state.Paused:
                raise Conflict("cannot start a paused container, try unpause instead")
            if container.running:
                raise NotModified("container already started")
            if container.state.Status == "removing" or live.removed:
                raise Conflict(f"container {container.id} is marked for removal and cannot be started")
            container.manually_stopped = False
            live.stop_requested = False
            try:
                self._start_locked(container, live)
            except Exception as exc:
                failure = exc
            else:
                failure = None
        if failure is not None:
            if container.host_config.get("AutoRemove"):
                self.remove(container.id, force=True, volumes=True)  # `run --rm` waits even now
            raise failure
        return container

    def _start_locked(self, container: Container, live: _Live) -> None:
        runtime = self.context.runtimes[container.runtime]
        run_dir = self.run_directory(container)
        monitor_dir = self.monitor_directory(container)
        bundle = run_dir / "bundle"
        self._cleanup_runtime(container)  # leftovers of a previous run, if any
        self._releaser.settle(container.id)  # the runtime refuses an id it still knows
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(monitor_dir, ignore_errors=True)
        monitor_dir.mkdir(parents=True)
        bundle.mkdir(parents=True)
        rootfs = self.context.storage.mount(container.layer_id)
        try:
            netns_path = self._make_network_namespace(container)
            spec = self._spec(container, rootfs, netns_path)
            (bundle / "config.json").write_text(json.dumps(spec))
            tty = bool(container.config.get("Tty"))
            monitor_config = {
                "create_argv": runtime.create_command(
                    container.id, bundle, monitor_dir / "init.pid",
                    monitor_dir / "console.sock" if tty else None),
                "pid_file": str(monitor_dir / "init.pid"),
                "console_socket": str(monitor_dir / "console.sock"),
                "log_path": str(self.log_path(container)),
                "log_max_size": _log_size(container.host_config),
                "log_max_files": _log_files(container.host_config),
                "tty": tty,
                "open_stdin": bool(container.config.get("OpenStdin")),
                "stdin_once": bool(container.config.get("StdinOnce")),
                "oom_files": _oom_files(spec),
                "runtime_log": str(getattr(runtime, "log_file", lambda _id: "")(container.id) or ""),
            }
            (monitor_dir / "monitor.json").write_text(json.dumps(monitor_config))
            log.debug("%s: bundle written", container.short_id)
            self.zygote.spawn(monitor_dir)
            # networks are wired while the runtime creates the container: both take tens
            # of milliseconds, and neither needs the other
            wiring_failure = None
            try:
                self._join_network(container, netns_path)
            except BaseException as exc:  # reported once the runtime is done with the container
                wiring_failure = exc
            pid = self._await_created(monitor_dir)
            log.debug("%s: created by the runtime (pid %d)", container.short_id, pid)
            if wiring_failure is not None:
                raise wiring_failure
            self._connect_pending_attaches(container, live)
            runtime.start(container.id)
            log.debug("%s: started", container.short_id)
        except StartFailed as exc:
            self._failed_start(container, str(exc))
            raise
        except (MonitorError, RuntimeFailure, OSError) as exc:
            message = str(exc)
            self._failed_start(container, message)
            raise StartFailed(message) from None
        except BaseException as exc:  # a bug or bad input: still release waiters and mounts
            self._failed_start(container, f"{type(exc).__name__}: {exc}" if not isinstance(exc, EngineError)
                               else str(exc))
            raise
        state = container.state
        state.Status, state.Running, state.Paused, state.Restarting = "running", True, False, False
        state.Pid, state.ExitCode, state.Error, state.OOMKilled = pid, 0, "", False
        state.StartedAt = now_rfc3339()
        container.has_been_started = True
        if container.config.get("Healthcheck") and _healthcheck_enabled(container.config["Healthcheck"]):
            state.Health = {"Status": "starting", "FailingStreak": 0, "Log": []}
        self._save(container)
        self._event(container, "start")
        self._supervise(container)
        if state.Health is not None:
            from dockyard.containers import health

            live.health = threading.Event()
            threading.Thread(target=health.watch, args=(self, container, live.health), daemon=True,
                             name=f"health {container.short_id}").start()

    def _await_created(self, monitor_dir: Path, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = monitor_dir / "state.json"
            if state.exists():
                try:
                    return int(json.loads(state.read_text())["pid"])
                except (ValueError, KeyError):
                    pass
            failed = monitor_dir / "exit.json"
            if failed.exists():
                try:
                    message = json.loads(failed.read_text()).get("Error") or "the runtime failed"
                except ValueError:
                    message = "the runtime failed"
                raise StartFailed(f"failed to create task for container: OCI runtime create failed: "
                                  f"{message}: unknown")
            time.sleep(0.002)
        raise StartFailed("the container did not start within 60 seconds")

    def _connect_pending_attaches(self, container: Container, live: _Live) -> None:
        handle = self.monitor(container)
        pending, live.pending_attaches = live.pending_attaches, []
        for attach in pending:
            try:
                attach.sock = handle.attach(attach.stdin, attach.stdout, attach.stderr)
            except MonitorError as exc:
                attach.error = str(exc)
            attach.ready.set()

    def _release_pending_attaches(self, live: _Live, reason: str) -> None:
        pending, live.pending_attaches = live.pending_attaches, []
        for attach in pending:
            attach.error = reason
            attach.ready.set()

    def attach(self, name_or_id: str, stdin: bool, stdout: bool, stderr: bool) -> Callable[[], object]:
        """Register an attach now and return the function that yields its socket.

        Registration happens before the API answers the upgrade: `docker run` starts the
        container as soon as it has that answer, and output written before the monitor
        knew of the client would be lost. For a container that has never run, the
        socket comes once `start` has created it (docker run attaches first)."""
        container = self.get(name_or_id)
        live = self._live[container.id]
        with live.lock:
            if container.running:
                if container.state.Paused:
                    raise Conflict("You cannot attach to a paused container, unpause it first")
                try:
                    sock = self.monitor(container).attach(stdin, stdout, stderr)
                except MonitorError as exc:
                    raise Conflict(str(exc)) from None
                return lambda: sock
            if container.has_been_started and not container.state.Restarting:
                raise Conflict("You cannot attach to a stopped container, start it first")
            pending = PendingAttach(stdin, stdout, stderr)
            live.pending_attaches.append(pending)

        def connected():
            pending.ready.wait()
            if pending.sock is None:
                raise Conflict(pending.error or "the container did not start")
            self._event(container, "attach")
            return pending.sock

        return connected

    def _failed_start(self, container: Container, message: str) -> None:
        self._cleanup_runtime(container)
        state = container.state
        state.Status = "exited" if container.has_been_started else "created"
        state.Running, state.Pid = False, 0
        state.Error = message
        state.ExitCode = 127 if ("executable file not found" in message or "no such file" in message) \
            else 126 if ("permission denied" in message or "is a directory" in message) else 128
        state.FinishedAt = now_rfc3339()
        live = self._live.get(container.id)
        if live is not None:
            self._release_pending_attaches(live, message)
            live.exits += 1
        self._save(container)
        self._event(container, "die", exitCode=str(state.ExitCode))

    def netns_path(self, container: Container) -> Path:
        return self.context.exec_root / "netns" / container.id

    def _make_network_namespace(self, container: Container) -> str | None:
        """The container's own network namespace, made by the engine (not the runtime) and
        named under <exec-root>/netns, for every mode but host and container:<id>."""
        mode = network_mode(container.host_config)
        if mode == "host" or mode.startswith("container:"):
            return None
        path = self.netns_path(container)
        remove_namespace(path)  # a stale one of a crashed run
        create_namespace(path)
        driver = self.context.network_drivers.get("none")
        if driver is not None and hasattr(driver, "bring_up_loopback"):
            driver.bring_up_loopback(str(path))
        return str(path)

    def _spec(self, container: Container, rootfs: Path, netns_path: str | None = None) -> dict:
        files = self._etc_files(container)
        mounts = [{"destination": f"/etc/{name}", "type": "bind", "source": str(path),
                   "options": ["rbind", "rprivate"] + (["ro"] if container.host_config.get("ReadonlyRootfs")
                                                      else [])}
                  for name, path in files.items()]
        mode = network_mode(container.host_config)
        netns: str | None = netns_path
        if mode == "host":
            netns = "host"
        elif mode.startswith("container:"):
            other = self.get(mode.split(":", 1)[1])
            if not other.running:
                raise StartFailed(f"cannot join network of a non running container: {other.id}")
            netns = f"/proc/{other.state.Pid}/ns/net"
        mounts += self._mount_volumes(container, rootfs)
        workdir = container.config.get("WorkingDir")
        if workdir:
            (rootfs / workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        return self.context.build_spec(container=container, rootfs=rootfs, mounts=mounts, netns=netns,
                                       max_nofile=self.context.max_nofile)

    def _etc_files(self, container: Container) -> dict[str, Path]:
        directory = self.directory(container)
        hostname = container.config.get("Hostname") or container.id[:12]
        if network_mode(container.host_config) == "host":
            hostname = container.config.get("Hostname") or os.uname().nodename
        (directory / "hostname").write_text(hostname + "\n")
        self._write_hosts(container)
        self._write_resolv_conf(container)
        return {"hostname": directory / "hostname", "hosts": directory / "hosts",
                "resolv.conf": directory / "resolv.conf"}

    def _write_hosts(self, container: Container) -> None:
        """Rewritten in place once the addresses are known: the file is bind-mounted, so
        the container sees the new content through the same inode."""
        hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
                 "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes",
                 "ff02::2\tip6-allrouters"]
        hosts += [f"{entry.partition(':')[2]}\t{entry.partition(':')[0]}"
                  for entry in container.host_config.get("ExtraHosts") or []]
        if self.context.networks is not None:
            hosts += self.context.networks.hosts_entries(container)
        with open(self.directory(container) / "hosts", "w") as hosts_file:
            hosts_file.write("\n".join(hosts) + "\n")

    def _write_resolv_conf(self, container: Container) -> None:
        """In place, like the hosts file: a running container joining its first
        user-defined network switches to the embedded resolver, as Docker's does."""
        networks = self.context.networks
        embedded_dns = networks is not None and networks.uses_embedded_dns(container)
        with open(self.directory(container) / "resolv.conf", "w") as resolv:
            resolv.write(resolv_conf(container.host_config, embedded_dns))

    def _join_network(self, container: Container, netns_path: str | None) -> None:
        if netns_path is None:  # host, or another container's namespace
            return
        networks = self.context.networks
        if networks is None or not container.network_settings.get("Networks"):
            return
        wired = networks.attach(container, netns_path)
        settings = container.network_settings
        for name, endpoint in wired["Networks"].items():
            settings["Networks"][name] = {**settings["Networks"].get(name, {}), **endpoint}
        settings["Ports"] = wired["Ports"]
        settings["SandboxKey"] = netns_path
        self._write_hosts(container)

    def _leave_networks(self, container: Container) -> None:
        """Unwire a container that no longer runs; what the user asked of each endpoint
        (static address, aliases) stays for the next start."""
        networks = self.context.networks
        if networks is not None:
            networks.detach(container)
        try:
            remove_namespace(self.netns_path(container))
        except OSError as exc:
            log.warning("%s: %s", container.short_id, exc)
        settings = container.network_settings
        for name, endpoint in (settings.get("Networks") or {}).items():
            settings["Networks"][name] = {key: endpoint.get(key) for key in
                                          ("NetworkID", "IPAMConfig", "Aliases", "MacAddress")
                                          if key in endpoint}
            if not (endpoint.get("IPAMConfig") or {}).get("IPv4Address") and \
                    not self._asked_for_mac(container, name):
                settings["Networks"][name]["MacAddress"] = ""
        settings.pop("Ports", None)
        settings.pop("SandboxKey", None)

    def _asked_for_mac(self, container: Container, network_name: str) -> bool:
        return bool(container.config.get("MacAddress")) and network_name == next(
            iter(container.network_settings.get("Networks") or {}), None)

    # -- exits and supervision -------------------------------------------------------

    def _supervise(self, container: Container) -> None:
        live = self._live[container.id]
        thread = threading.Thread(target=self._watch, args=(container,), daemon=True,
                                  name=f"supervise {container.short_id}")
        live.supervisor = thread
        thread.start()

    def _watch(self, container: Container) -> None:
        started = time.monotonic()
        try:
            result = self.monitor(container).wait_exit()
        except Exception:  # whatever went wrong, the exit must still be recorded
            log.exception("waiting for %s failed", container.short_id)
            result = self.monitor(container).recorded_exit()
        if self._shutting_down:
            return  # the daemon is going; the container keeps running (live restore)
        self._exited(container, result, time.monotonic() - started)

    def _exited(self, container: Container, result: dict | None, ran_for: float) -> None:
        live = self._live.get(container.id)
        if live is None:
            return
        with live.lock:
            if not container.running and container.state.Status != "paused":
                return
            log.debug("%s: exited", container.short_id)
            result = result or {"ExitCode": 255, "Error": "the container's monitor vanished"}
            state = container.state
            state.Running, state.Paused, state.Pid = False, False, 0
            state.ExitCode = int(result.get("ExitCode", 255))
            state.OOMKilled = bool(result.get("OOMKilled"))
            state.Error = result.get("Error", "")
            state.FinishedAt = result.get("FinishedAt") or now_rfc3339()
            state.Status = "exited"
            if live.health is not None:
                live.health.set()
            self._cleanup_runtime(container)
            log.debug("%s: runtime state and mount released", container.short_id)
            if state.OOMKilled:
                self._event(container, "oom")
            self._event(container, "die", exitCode=str(state.ExitCode))
            live.exits += 1
            restart, delay = self._restart_decision(container, live, ran_for)
            if restart:
                state.Restarting, state.Status = True, "restarting"
            self._save(container)
        if restart:
            threading.Thread(target=self._restart_later, args=(container, delay), daemon=True).start()
        elif container.host_config.get("AutoRemove"):
            try:  # --rm takes the container's anonymous volumes with it, as Docker's does
                self.remove(container.id, force=True, volumes=True)
            except NotFound:
                pass

    def _restart_decision(self, container: Container, live: _Live, ran_for: float) -> tuple[bool, float]:
        policy = container.host_config.get("RestartPolicy") or {}
        name = policy.get("Name") or "no"
        if live.stop_requested or live.removed or name == "no" or self._shutting_down:
            return False, 0.0
        if name == "on-failure":
            if container.state.ExitCode == 0:
                return False, 0.0
            limit = int(policy.get("MaximumRetryCount") or 0)
            if limit and container.restart_count >= limit:
                return False, 0.0
        if name == "unless-stopped" and container.manually_stopped:
            return False, 0.0
        if ran_for >= RESTART_RESET_AFTER or not container.restart_delay:
            delay = RESTART_DELAY_START
        else:
            delay = min(RESTART_DELAY_MAX, container.restart_delay * 2)
        container.restart_delay = delay
        return True, delay

    def _restart_later(self, container: Container, delay: float) -> None:
        live = self._live.get(container.id)
        if live is None:
            return
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            if live.removed or live.stop_requested or self._shutting_down:
                with live.lock:
                    if not live.removed and not self._shutting_down:
                        container.state.Restarting = False
                        container.state.Status = "exited"
                        self._save(container)
                return
            time.sleep(min(0.05, delay))
        with live.lock:
            if live.removed or live.stop_requested or container.running:
                return
            container.restart_count += 1
            try:
                self._start_locked(container, live)
            except EngineError as exc:
                log.warning("restarting %s failed: %s", container.short_id, exc)
                container.state.Restarting = False
                self._save(container)
                return
        self._event(container, "restart")

    def _cleanup_runtime(self, container: Container) -> None:
        """Release what a run held: the rootfs mount now, the runtime's record and the
        bundle on the releaser's thread (see containers.release).

        The bundle directory is made before the runtime is called and renamed away here,
        so without it there is nothing to release (and no runtime call to pay for)."""
        self._leave_networks(container)
        self._unmount_volumes(container)
        run_dir = self.run_directory(container)
        bundle = run_dir / "bundle"
        if not bundle.exists():
            return
        try:
            self.context.storage.unmount(container.layer_id)
        except Exception as exc:  # a stale unmount must not block the state change
            log.warning("unmount of %s: %s", container.short_id, exc)
        released = run_dir / f".released-{secrets.token_hex(4)}"
        bundle.rename(released)
        runtime = self.context.runtimes.get(container.runtime)
        if runtime is None:  # its plugin is gone: nothing can delete the record
            shutil.rmtree(released, ignore_errors=True)
            return
        self._releaser.release(runtime, container.id, released)

    # -- stop, kill, pause -----------------------------------------------------------

    def stop(self, name_or_id: str, timeout: int | None = None, signal_name: str | None = None) -> None:
        container = self.get(name_or_id)
        live = self._live[container.id]
        if not container.running and not container.state.Restarting:
            raise NotModified("container already stopped")
        live.stop_requested = True
        container.manually_stopped = True
        if container.state.Restarting:
            with live.lock:
                container.state.Restarting, container.state.Status = False, "exited"
                self._save(container)
            self._event(container, "stop")
            return
        from dockyard.containers.ocispec import parse_signal

        stop_signal = parse_signal(signal_name or container.config.get("StopSignal") or "SIGTERM")
        if timeout is None:
            timeout = container.config.get("StopTimeout")
        if timeout is None:
            timeout = DEFAULT_STOP_TIMEOUT
        if container.state.Paused:
            self._runtime(container).resume(container.id)
        self._signal(container, stop_signal)
        if timeout < 0 or not self._wait_until_stopped(container, timeout):
            self._signal(container, 9)
            self._wait_until_stopped(container, 30)
        self._event(container, "stop")

    def _signal(self, container: Container, signal_number: int) -> None:
        try:
            self._runtime(container).kill(container.id, signal_number)
        except (ContainerNotFound, RuntimeFailure) as exc:
            if container.running:
                log.debug("kill %s: %s", container.short_id, exc)
        self._event(container, "kill", signal=str(signal_number))

    def _wait_until_stopped(self, container: Container, timeout: float) -> bool:
        live = self._live[container.id]
        deadline = time.monotonic() + timeout
        with live.changed:
            while container.running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                live.changed.wait(left)
        return True

    def kill(self, name_or_id: str, signal_name: str | None = None) -> None:
        container = self.get(name_or_id)
        if not container.running:
            raise Conflict(f"cannot kill container: {name_or_id}: container {container.id} is not running")
        from dockyard.containers.ocispec import parse_signal

        number = parse_signal(signal_name or "SIGKILL")
        if number in (9,):
            self._live[container.id].stop_requested = True
            container.manually_stopped = True
        self._signal(container, number)
        if number == 9:
            self._wait_until_stopped(container, 30)

    def restart(self, name_or_id: str, timeout: int | None = None) -> None:
        container = self.get(name_or_id)
        if container.running:
            self.stop(container.id, timeout)
        self.start(container.id)
        self._event(container, "restart")

    def pause(self, name_or_id: str) -> None:
        container = self.get(name_or_id)
        with self._live[container.id].lock:
            if not container.running:
                raise Conflict(f"Container {container.id} is not running")
            if container.state.Paused:
                raise Conflict(f"Container {container.id} is already paused")
            self._runtime(container).pause(container.id)
            container.state.Paused, container.state.Status = True, "paused"
            self._save(container)
        self._event(container, "pause")

    def unpause(self, name_or_id: str) -> None:
        container = self.get(name_or_id)
        with self._live[container.id].lock:
            if not container.state.Paused:
                raise Conflict(f"Container {container.id} is not paused")
            self._runtime(container).resume(container.id)
            container.state.Paused, container.state.Status = False, "running"
            self._save(container)
        self._event(container, "unpause")

    def _runtime(self, container: Container) -> Runtime:
        try:
            return self.context.runtimes[container.runtime]
        except KeyError:
            raise EngineError(f"runtime {container.runtime} of container {container.short_id} is "
                              f"not installed any more") from None

    # -- wait, rename, remove --------------------------------------------------------

    def waiter(self, name_or_id: str, condition: str = "not-running") -> Callable[[], dict]:
        """Register a wait now; the returned function blocks until the condition holds.
        Registration happens before the API answers, so `docker run`, which starts the
        container once the wait's headers arrive, can never miss the exit."""
        if condition not in ("not-running", "next-exit", "removed", ""):
            raise InvalidParameter(f"invalid condition: {condition!r}")
        container = self.get(name_or_id)
        live = self._live[container.id]
        exits_seen = live.exits

        def satisfied() -> bool:
            if condition == "removed":
                return live.destroyed
            if condition == "next-exit":
                return live.exits > exits_seen
            return live.removed or (not container.running and not container.state.Restarting)

        def wait() -> dict:
            with live.changed:
                while not satisfied():
                    live.changed.wait(1.0)
            result = {"StatusCode": container.state.ExitCode}
            if container.state.Error and container.has_been_started:
                result["Error"] = {"Message": container.state.Error}
            return result

        return wait

    def rename(self, name_or_id: str, new_name: str) -> None:
        container = self.get(name_or_id)
        if not _NAME.match(new_name):
            raise InvalidParameter(
                f"Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        new_name = new_name.lstrip("/")
        with self._lock:
            if container.name == new_name:
                raise Conflict("Renaming a container with the same name as its current name")
            for other in self._containers.values():
                if other.name == new_name:
                    raise Conflict(f'Conflict. The container name "/{new_name}" is already in use by '
                                   f'container "{other.id}". You have to remove (or rename) that '
                                   f"container to be able to reuse that name.")
            old = container.name
            container.name = new_name
            self._save(container)
        self._event(container, "rename", oldName=f"/{old}")

    # -- networks ------------------------------------------------------------------

    def connect_network(self, name_or_id: str, network_name: str, endpoint_config: dict | None) -> None:
        networks = self.context.networks
        container = self.get(name_or_id)
        network = networks.get(network_name)
        mode = network_mode(container.host_config)
        if mode in ("host", "none") or mode.startswith("container:"):
            raise Forbidden(f"container {container.name} shares the network stack of {mode}: it cannot be "
                            "connected to other networks")
        if network.name in ("host", "none"):
            raise Forbidden(f"container cannot be connected to the {network.name} network: choose it at "
                            f"create with --network {network.name}")
        live = self._live[container.id]
        with live.lock:
            attached = container.network_settings.setdefault("Networks", {})
            if network.name in attached:
                raise Forbidden(f"endpoint with name {container.name} already exists in network "
                                f"{network.name}")
            wanted = networks.endpoint_config(network, endpoint_config)
            if container.running:
                wanted = {**wanted, **networks.connect_running(network, container, wanted)}
            attached[network.name] = wanted
            self._save(container)
            if container.running:
                self._write_hosts(container)
                self._write_resolv_conf(container)

    def disconnect_network(self, name_or_id: str, network_name: str, force: bool = False) -> None:
        networks = self.context.networks
        container = self.get(name_or_id)
        network = networks.get(network_name)
        live = self._live[container.id]
        with live.lock:
            attached = container.network_settings.setdefault("Networks", {})
            if network.name not in attached:
                raise Forbidden(f"container {container.id} is not connected to network {network.name}")
            if container.running:
                networks.disconnect_running(network, container)
            del attached[network.name]
            self._save(container)
            if container.running:
                self._write_hosts(container)

    def using_network(self, network_id: str) -> list[str]:
        return [c.id for c in self.all() if any(
            (e or {}).get("NetworkID") == network_id
            for e in (c.network_settings.get("Networks") or {}).values())]

    def remove(self, name_or_id: str, force: bool = False, volumes: bool = False) -> None:
        container = self.get(name_or_id)
        live = self._live[container.id]
        if container.running:
            if not force:
                raise Conflict(f"cannot remove container \"/{container.name}\": container is running: "
                               f"stop the container before removing or force remove")
            live.stop_requested = True
            if container.state.Paused:
                self._runtime(container).resume(container.id)
            self._signal(container, 9)
            if not self._wait_until_stopped(container, 30):
                raise EngineError(f"could not kill container {container.short_id}")
        with live.lock:
            if live.removed:
                return
            live.removed = True
            live.stop_requested = True
            if live.health is not None:
                live.health.set()
            self._release_pending_attaches(live, f"container {container.id} was removed")
            container.state.Status = "removing"
            self._cleanup_runtime(container)
            self._discard(self.run_directory(container), self.monitor_directory(container))
            self.context.storage.remove(container.layer_id)
            if container.init_layer_id:
                self.context.storage.remove(container.init_layer_id)
            self._discard(self.directory(container))
            with self._lock:
                self._containers.pop(container.id, None)
            with live.changed:
                live.destroyed = True
                live.changed.notify_all()
        self._event(container, "destroy")
        log.debug("%s: removed", container.short_id)
        self._live.pop(container.id, None)
        if volumes and self.context.volumes is not None:
            anonymous = [e["Name"] for e in container.mounts if e["Type"] == "volume"
                         and self.context.volumes.get_or_none(e["Name"]) is not None
                         and self.context.volumes.get_or_none(e["Name"]).anonymous]
            for name in anonymous:
                try:
                    self.context.volumes.remove(name)
                except Conflict:  # shared with another container (--volumes-from): it stays
                    pass

    def _discard(self, *directories: Path) -> None:
        """Rename directories out of the way at once (a new container may reuse nothing of
        theirs) and delete them on a background thread: `docker rm` does not wait for
        the files. A crash in between leaves .gone-* names, deleted at the next start."""
        doomed = []
        for directory in directories:
            target = directory.with_name(f".gone-{directory.name}-{secrets.token_hex(4)}")
            try:
                directory.rename(target)
            except FileNotFoundError:
                continue
            doomed.append(target)
        if doomed:
            threading.Thread(target=lambda: [shutil.rmtree(d, ignore_errors=True) for d in doomed],
                             name="delete container files", daemon=True).start()

    def prune(self, filters: dict[str, list[str]]) -> dict:
        deleted, reclaimed = [], 0
        for container in self.all():
            if container.running or container.state.Paused or container.state.Restarting:
                continue
            if not _matches_label_and_until(container, filters):
                continue
            try:
                reclaimed += self.size_rw(container)
            except Exception:  # size is informative; a failure must not stop the prune
                pass
            self.remove(container.id)
            deleted.append(container.id)
        self.events.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def size_rw(self, container: Container) -> int:
        return self.context.storage.diff_size(container.layer_id, container.diff_parent)

    # -- resources -----------------------------------------------------------------

    def cgroup_path(self, container: Container) -> str:
        try:
            spec = json.loads((self.run_directory(container) / "bundle" / "config.json").read_text())
        except (OSError, ValueError):
            return ""
        return (spec.get("linux") or {}).get("cgroupsPath") or ""

    def update(self, name_or_id: str, changes: dict) -> list[str]:
        """`docker update`: new limits for a container, applied live when it runs."""
        from dockyard.containers.ocispec import resources_for, validate_host_config

        container = self.get(name_or_id)
        with self._live[container.id].lock:
            updated = dict(container.host_config)
            for key, value in changes.items():
                policy = (value or {}).get("Name") if key == "RestartPolicy" else None
                if policy not in (None, "", "no") and container.host_config.get("AutoRemove"):
                    raise InvalidParameter("Restart policy cannot be updated because AutoRemove is "
                                           "enabled for the container")
                if value not in (None, "") or key in ("Memory", "MemorySwap"):
                    updated[key] = value
            validate_host_config(updated)
            if container.running:
                self._runtime(container).update(container.id, resources_for(updated))
            container.host_config = normalize_host_config(updated)
            self._save(container)
        self._event(container, "update")
        return []

    # -- exec ----------------------------------------------------------------------

    def exec_create(self, name_or_id: str, config: dict) -> ExecRecord:
        container = self.get(name_or_id)
        if not container.running:
            raise Conflict(f"Container {container.id} is not running")
        if container.state.Paused:
            raise Conflict(f"Container {container.id} is paused, unpause the container before exec")
        if not config.get("Cmd"):
            raise InvalidParameter("No exec command specified")
        record = ExecRecord(secrets.token_hex(32), container.id, dict(config))
        self._execs[record.id] = record
        self._event(container, "exec_create: " + " ".join(config["Cmd"]), execID=record.id)
        return record

    def exec_get(self, exec_id: str) -> ExecRecord:
        record = self._execs.get(exec_id)
        if record is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        if record.running and record.exit_code is None:
            container = self._containers.get(record.container_id)
            if container is not None:  # a detached exec: the monitor recorded its end
                path = self.monitor_directory(container) / f"exec-{exec_id}.json"
                try:
                    result = json.loads(path.read_text())
                except (OSError, ValueError):
                    result = {}
                if result.get("ExitCode") is not None:
                    self.exec_finished(record, int(result["ExitCode"]))
                elif not container.running:
                    self.exec_finished(record, 137)
        return record

    def exec_ids(self, container: Container) -> list[str]:
        return [r.id for r in self._execs.values() if r.container_id == container.id]

    def exec_start(self, exec_id: str, detach: bool, tty: bool | None = None):
        """Start the exec; returns the monitor session socket (None when detached)."""
        record = self.exec_get(exec_id)
        if record.started:
            raise Conflict(f"exec {exec_id} has already been started")
        container = self.get(record.container_id)
        if not container.running:
            raise Conflict(f"Container {container.id} is not running")
        record.started = True
        config = record.config
        tty = bool(config.get("Tty")) if tty is None else tty
        monitor_dir = self.monitor_directory(container)
        process_file = monitor_dir / f"exec-{exec_id}-process.json"
        process_file.write_text(json.dumps(self._exec_process(container, config, tty)))
        runtime = self._runtime(container)
        pid_file = monitor_dir / f"exec-{exec_id}.pid"
        console = monitor_dir / f"exec-{exec_id[:12]}.sock" if tty else None
        argv = runtime.exec_command(container.id, process_file, pid_file, console)
        request = {"op": "exec", "id": exec_id, "argv": argv, "pid_file": str(pid_file), "tty": tty,
                   "stdin": bool(config.get("AttachStdin")), "detach": detach,
                   "console_socket": str(console) if console else None}
        sock = self.monitor(container).connect(request, timeout=None)
        record.running = True
        self._event(container, "exec_start: " + " ".join(config["Cmd"]), execID=exec_id)
        if detach:
            from dockyard.monitor.client import read_frames

            with sock:
                for stream, payload in read_frames(sock):
                    if stream == 3:
                        result = json.loads(payload)
                        if result.get("Error"):
                            record.running = False
                            raise StartFailed(f"OCI runtime exec failed: {result['Error']}: unknown")
                        record.pid = int(result.get("Pid") or 0)
            return None
        return sock

    def exec_finished(self, record: ExecRecord, exit_code: int) -> None:
        if not record.running:
            return
        record.running, record.exit_code = False, exit_code
        container = self._containers.get(record.container_id)
        if container is not None:
            self._event(container, "exec_die", execID=record.id, exitCode=str(exit_code))

    def _exec_process(self, container: Container, config: dict, tty: bool) -> dict:
        """The container's own process settings with the exec's command, env, user and
        working directory over them (the OCI `process` object)."""
        spec = json.loads((self.run_directory(container) / "bundle" / "config.json").read_text())
        process = dict(spec["process"])
        process["args"] = list(config["Cmd"])
        process["terminal"] = tty
        env = list(process.get("env") or [])
        for entry in config.get("Env") or []:
            key = entry.partition("=")[0]
            env = [e for e in env if e.partition("=")[0] != key] + [entry]
        process["env"] = env
        if config.get("WorkingDir"):
            process["cwd"] = config["WorkingDir"]
        if config.get("User"):
            from dockyard.containers.ocispec import resolve_user

            rootfs = Path(spec["root"]["path"])
            process["user"] = resolve_user(rootfs, config["User"], [])
        if config.get("Privileged"):
            caps = process.get("capabilities") or {}
            everything = spec.get("_all_capabilities") or caps.get("bounding") or []
            process["capabilities"] = {key: list(everything) for key in caps}
        process.pop("consoleSize", None)
        return process

    # -- live restore ----------------------------------------------------------------

    def restore(self) -> None:
        """After a start: re-attach running containers, settle those that exited while
        the daemon was away, and start the ones their restart policy says to."""
        alive = [c for c in self.all() if c.running and self.monitor(c).alive()]
        if self.context.networks is not None:
            self.context.networks.restore(alive)
        if self.context.volumes is not None:
            held: dict[str, list[str]] = {}
            for container in alive:
                for entry in container.mounts:
                    if entry["Type"] == "volume":
                        held.setdefault(entry["Name"], []).append(container.id)
            self.context.volumes.restore(held)
        kept = {c.id for c in alive}
        named = self.context.exec_root / "netns"
        for name in os.listdir(named) if named.is_dir() else []:
            if name not in kept:  # the namespace of a container that ended while we were away
                remove_namespace(named / name)
        swept = sweep_orphans(self.context.runtimes, (c.id for c in self.all()))
        if swept:
            log.info("deleted %d runtime record(s) of containers removed before a crash", swept)
        for container in self.all():
            live = self._live[container.id]
            if container.state.Status == "removing":
                try:
                    self.remove(container.id, force=True)
                except EngineError:
                    pass
                continue
            if container.running:
                handle = self.monitor(container)
                if handle.alive():
                    log.info("container %s is still running: re-attached", container.short_id)
                    self._supervise(container)
                    continue
                self._exited(container, handle.recorded_exit(), 0.0)
                if container.running or container.state.Restarting:
                    continue
            elif container.state.Restarting:
                container.state.Restarting, container.state.Status = False, "exited"
                self._save(container)
            policy = (container.host_config.get("RestartPolicy") or {}).get("Name") or "no"
            if policy == "always" or (policy == "unless-stopped" and not container.manually_stopped):
                if not container.running and container.has_been_started:
                    try:
                        with live.lock:
                            self._start_locked(container, live)
                    except EngineError as exc:
                        log.warning("could not restart %s: %s", container.short_id, exc)

    def shutdown(self) -> None:
        """The daemon stops; running containers keep running (live restore)."""
        self._shutting_down = True
        self._releaser.settle(timeout=30)


# -- configuration helpers -------------------------------------------------------------

def normalize_host_config(host_config: dict | None) -> dict:
    host_config = dict(host_config or {})
    host_config.setdefault("NetworkMode", "default")
    host_config.setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
    policy = host_config["RestartPolicy"] or {"Name": "no"}
    name = policy.get("Name") or "no"
    if name not in ("no", "always", "on-failure", "unless-stopped"):
        raise InvalidParameter(f"invalid restart policy '{name}'")
    if name != "on-failure" and policy.get("MaximumRetryCount"):
        raise InvalidParameter("invalid restart policy: maximum retry count can only be used with "
                               "'on-failure'")
    if host_config.get("AutoRemove") and name != "no":
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    log_config = host_config.get("LogConfig") or {}
    if (log_config.get("Type") or "json-file") not in ("json-file",):
        raise InvalidParameter(f"logging driver {log_config.get('Type')!r} is not supported "
                               f"(only json-file)")
    host_config["LogConfig"] = {"Type": "json-file", "Config": log_config.get("Config") or {}}
    return host_config


def network_mode(host_config: dict) -> str:
    mode = host_config.get("NetworkMode") or "default"
    return "bridge" if mode == "default" else mode


def resolv_conf(host_config: dict, embedded_dns: bool = False) -> str:
    """The host's resolvers without loopback ones (unreachable from the container's own
    network), or --dns / --dns-search / --dns-option when given. On user-defined
    networks the daemon's resolver at 127.0.0.11 (it forwards what is not a container
    name to the host's resolvers), unless --dns names servers explicitly."""
    servers = list(host_config.get("Dns") or [])
    search = list(host_config.get("DnsSearch") or [])
    options = list(host_config.get("DnsOptions") or [])
    if embedded_dns and not servers:
        servers = ["127.0.0.11"]
        options = options or ["ndots:0"]
    if not servers:
        try:
            text = Path("/etc/resolv.conf").read_text()
        except OSError:
            text = ""
        for line in text.splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "nameserver" and not words[1].startswith("127.") \
                    and words[1] != "::1" and not embedded_dns:
                servers.append(words[1])
            elif words and words[0] == "search" and not search:
                search = words[1:]
            elif words and words[0] == "options" and not options:
                options = words[1:]
    if not servers:
        servers = ["8.8.8.8", "8.8.4.4"]  # Docker's fallback when the host has only loopback ones
    lines = [f"nameserver {server}" for server in servers]
    if search:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


@functools.cache
def _init_layer_tar() -> bytes:
    """The -init layer's content is the same for every container: its tar is built once."""
    import io
    import tarfile

    entries = io.BytesIO()
    with tarfile.open(fileobj=entries, mode="w") as tar:
        for name, kind in (("dev", tarfile.DIRTYPE), ("dev/pts", tarfile.DIRTYPE),
                           ("dev/shm", tarfile.DIRTYPE), ("proc", tarfile.DIRTYPE),
                           ("sys", tarfile.DIRTYPE), ("etc", tarfile.DIRTYPE),
                           ("etc/hosts", tarfile.REGTYPE), ("etc/hostname", tarfile.REGTYPE),
                           ("etc/resolv.conf", tarfile.REGTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.mode = kind, 0o755 if kind == tarfile.DIRTYPE else 0o644
            tar.addfile(info)
    return entries.getvalue()


def _bind_entry(request) -> dict:
    source = Path(request.source)
    if not source.exists():
        if not request.create_host_path:
            raise InvalidParameter(f"invalid mount config for type \"bind\": bind source path does not "
                                   f"exist: {request.source}")
        source.mkdir(parents=True, exist_ok=True)  # what -v does (--mount does not)
    return {"Type": "bind", "Source": request.source, "Destination": request.destination, "Mode": "",
            "RW": not request.read_only, "Propagation": request.propagation or "rprivate"}


def _parse_size(value: str) -> int:
    match = re.fullmatch(r"(\d+)([kmg]?)b?", value.strip().lower())
    if not match:
        raise InvalidParameter(f"invalid log size {value!r}: use e.g. 10m")
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1 << 20, "g": 1 << 30}[match.group(2)]


def _log_size(host_config: dict) -> int:
    value = ((host_config.get("LogConfig") or {}).get("Config") or {}).get("max-size")
    return _parse_size(value) if value else 0


def _log_files(host_config: dict) -> int:
    value = ((host_config.get("LogConfig") or {}).get("Config") or {}).get("max-file")
    try:
        return max(1, int(value)) if value else 1
    except ValueError:
        raise InvalidParameter(f"invalid max-file {value!r}: give a number") from None


def _oom_files(spec: dict) -> list[str]:
    path = ((spec.get("linux") or {}).get("cgroupsPath") or "").lstrip("/")
    if not path:
        return []
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        return [f"/sys/fs/cgroup/{path}/memory.events"]
    return [f"/sys/fs/cgroup/memory/{path}/memory.oom_control"]


def _healthcheck_enabled(healthcheck: dict) -> bool:
    test = healthcheck.get("Test") or []
    return bool(test) and test[0] != "NONE"


def _matches_label_and_until(container: Container, filters: dict[str, list[str]]) -> bool:
    from dockyard.containers.logs import parse_time_nano
    from dockyard.formats.filters import label_filters_match, until_timestamp

    if not label_filters_match(filters, container.config.get("Labels") or {}):
        return False
    if "until" in filters:
        def rfc3339(text: str) -> float:
            try:
                return parse_time_nano(text) / 1e9
            except ValueError:
                return 0.0

        return rfc3339(container.created) < until_timestamp(filters["until"][-1], rfc3339)
    return True
