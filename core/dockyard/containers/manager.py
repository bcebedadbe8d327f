"""The container manager: creates, runs, stops and removes containers, with Docker's rules.

It owns every container record and is the only code that changes one. Kernel work is
delegated: the storage driver makes the writable layer and mounts the rootfs, the
runtime (runc, crun) creates and signals the container, the network driver wires its
namespace, and a monitor process per container holds its stdio and learns its exit.
A supervisor thread per running container waits on the monitor and applies the
restart policy when the container exits; after a daemon restart the supervisors are
re-attached to the monitors that kept the containers running (live restore).

This class keeps the state (records, in-memory state, exec records, locks) and reads
as the table of contents: each verb is one call into the module that owns it, a plain
function taking the manager first (moby's daemon/: a file per verb).
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.containers import (
    attach,
    create,
    exec,
    links,
    model,
    mounts,
    network,
    remove,
    rename,
    restore,
    start,
    stop,
    update,
    wait,
)
from dockyard.containers.model import Container
from dockyard.containers.release import RuntimeReleaser
from dockyard.daemon.events import EventsManager
from dockyard.errors import EngineError, InvalidParameter, NotFound
from dockyard.monitor.client import MonitorHandle, Zygote
from dockyard.plugin.contracts.runtime import Runtime


@dataclass
class LiveState:
    """What the manager holds in memory for one container."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    changed: threading.Condition = field(default_factory=threading.Condition)
    exits: int = 0  # bumped on every exit, for wait(next-exit)
    removed: bool = False  # removal has begun: no restart, no start
    destroyed: bool = False  # removal has finished: wait(removed) returns
    supervisor: threading.Thread | None = None
    stop_requested: bool = False
    health: threading.Event | None = None
    pending_attaches: list[attach.PendingAttach] = field(default_factory=list)


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
        self.releaser = RuntimeReleaser()
        self.lock = threading.RLock()
        self.records: dict[str, Container] = {}
        self.live: dict[str, LiveState] = {}
        self.execs: dict[str, exec.ExecRecord] = {}
        self.shutting_down = False
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
            self.records[container.id] = container
            self.live[container.id] = LiveState()

    # -- lookup --------------------------------------------------------------------

    def get(self, name_or_id: str) -> Container:
        """Docker's order: full id, exact name, then unique id prefix."""
        key = name_or_id.lstrip("/")
        with self.lock:
            if key in self.records:
                return self.records[key]
            for container in self.records.values():
                if container.name == key:
                    return container
            matches = [c for c in self.records.values() if key and c.id.startswith(key)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"multiple IDs found with provided prefix: {name_or_id}")
        raise NotFound(f"No such container: {name_or_id}")

    def all(self) -> list[Container]:
        with self.lock:
            return list(self.records.values())

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

    def netns_path(self, container: Container) -> Path:
        return self.context.exec_root / "netns" / container.id

    def runtime(self, container: Container) -> Runtime:
        try:
            return self.context.runtimes[container.runtime]
        except KeyError:
            raise EngineError(f"runtime {container.runtime} of container {container.short_id} is "
                              f"not installed any more") from None

    def using_image(self, image_id: str) -> list[tuple[str, bool]]:
        return [(c.id, c.running) for c in self.all() if c.image_id == image_id]

    def layer_ids(self) -> tuple[set[str], set[str]]:
        """(writable layer ids, image chain ids) that containers hold, for the image GC."""
        containers = self.all()
        return ({c.layer_id for c in containers} | {c.init_layer_id for c in containers if c.init_layer_id},
                {c.image_chain_id for c in containers if c.image_chain_id})

    def size_rw(self, container: Container) -> int:
        return self.context.storage.diff_size(container.layer_id, container.diff_parent)

    def cgroup_path(self, container: Container) -> str:
        try:
            spec = json.loads((self.run_directory(container) / "bundle" / "config.json").read_text())
        except (OSError, ValueError):
            return ""
        return (spec.get("linux") or {}).get("cgroupsPath") or ""

    # -- records and events, for the modules below ---------------------------------

    def save(self, container: Container, durable: bool = False) -> None:
        model.save(container, self.directory(container), durable)
        live = self.live.get(container.id)
        if live is not None:
            with live.changed:
                live.changed.notify_all()

    def event(self, container: Container, action: str, **extra: str) -> None:
        attributes = {"name": container.name, "image": container.image_name,
                      **(container.config.get("Labels") or {}), **extra}
        self.events.publish("container", action, container.id, attributes)

    # -- the verbs, one module each ----------------------------------------------------
    # Called by the verbs, not from here: supervision.py (exits, restart policy),
    # health.py, etc_files.py (/etc/hostname, hosts, resolv.conf), hostconfig.py.
    # filesystem.py (diff, export, cp, commit) is called by the API directly.

    # create.py: a new container (name, image config, mounts, networks, layers)
    def create(self, name: str | None, config: dict, host_config: dict,
               networking_config: dict | None = None) -> Container:
        return create.create(self, name, config, host_config, networking_config)

    # mounts.py: volumes and binds
    def volume_users(self, name: str) -> list[str]:
        return mounts.volume_users(self, name)

    # start.py: the bundle, the runtime's create and start, a failed start
    def start(self, name_or_id: str) -> Container:
        return start.start(self, name_or_id)

    # attach.py: stdio through the monitor, before or after the start
    def attach(self, name_or_id: str, stdin: bool, stdout: bool, stderr: bool) -> Callable[[], object]:
        return attach.attach(self, name_or_id, stdin, stdout, stderr)

    # stop.py: signals, stop, kill, restart, pause
    def stop(self, name_or_id: str, timeout: int | None = None, signal_name: str | None = None) -> None:
        return stop.stop(self, name_or_id, timeout, signal_name)

    def kill(self, name_or_id: str, signal_name: str | None = None) -> None:
        return stop.kill(self, name_or_id, signal_name)

    def restart(self, name_or_id: str, timeout: int | None = None) -> None:
        return stop.restart(self, name_or_id, timeout)

    def pause(self, name_or_id: str) -> None:
        return stop.pause(self, name_or_id)

    def unpause(self, name_or_id: str) -> None:
        return stop.unpause(self, name_or_id)

    # wait.py
    def waiter(self, name_or_id: str, condition: str = "not-running") -> Callable[[], dict]:
        return wait.waiter(self, name_or_id, condition)

    # rename.py
    def rename(self, name_or_id: str, new_name: str) -> None:
        return rename.rename(self, name_or_id, new_name)

    # update.py: resources and restart policy
    def update(self, name_or_id: str, changes: dict) -> list[str]:
        return update.update(self, name_or_id, changes)

    # network.py: connect and disconnect, running or not
    def connect_network(self, name_or_id: str, network_name: str, endpoint_config: dict | None) -> None:
        return network.connect_network(self, name_or_id, network_name, endpoint_config)

    def disconnect_network(self, name_or_id: str, network_name: str, force: bool = False) -> None:
        return network.disconnect_network(self, name_or_id, network_name, force)

    def using_network(self, network_id: str) -> list[str]:
        return network.using_network(self, network_id)

    # remove.py: remove and prune
    def remove(self, name_or_id: str, force: bool = False, volumes: bool = False) -> None:
        return remove.remove(self, name_or_id, force, volumes)

    def remove_link(self, link_name: str) -> None:
        return links.remove_link(self, link_name)

    def inspect_links(self, container: Container) -> list[str] | None:
        return links.inspect_links(self, container)

    def prune(self, filters: dict[str, list[str]]) -> dict:
        return remove.prune(self, filters)

    # exec.py
    def exec_create(self, name_or_id: str, config: dict) -> exec.ExecRecord:
        return exec.exec_create(self, name_or_id, config)

    def exec_get(self, exec_id: str) -> exec.ExecRecord:
        return exec.exec_get(self, exec_id)

    def exec_ids(self, container: Container) -> list[str]:
        return exec.exec_ids(self, container)

    def exec_start(self, exec_id: str, detach: bool, tty: bool | None = None):
        """Start the exec; returns the monitor session socket (None when detached)."""
        return exec.exec_start(self, exec_id, detach, tty)

    def exec_finished(self, record: exec.ExecRecord, exit_code: int) -> None:
        return exec.exec_finished(self, record, exit_code)

    def exec_failed(self, record: exec.ExecRecord, message: str) -> None:
        return exec.exec_failed(self, record, message)

    # restore.py: live restore, once at daemon start
    def restore(self) -> None:
        return restore.restore(self)

    def shutdown(self) -> None:
        """The daemon stops; running containers keep running (live restore)."""
        self.shutting_down = True
        self.releaser.settle(timeout=30)
