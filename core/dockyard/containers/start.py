"""Starting a container: the bundle and its spec, the monitor that runs the runtime's
create while the networks are wired, the start itself, and what a failed start or an
ended run releases (`cleanup_runtime`)."""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.containers import attach, etc_files, hostconfig, links, network, supervision
from dockyard.containers.errors import StartFailed
from dockyard.containers.model import Container, now_rfc3339
from dockyard.containers.mounts import mount_volumes, unmount_volumes
from dockyard.errors import Conflict, EngineError, NotModified
from dockyard.monitor.client import MonitorError
from dockyard.plugin.contracts.runtime import RuntimeFailure

if TYPE_CHECKING:
    from dockyard.containers.manager import ContainerManager, LiveState

log = logging.getLogger(__name__)


def start(manager: ContainerManager, name_or_id: str) -> Container:
    container = manager.get(name_or_id)
    live = manager.live[container.id]
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
            start_locked(manager, container, live)
        except Exception as exc:
            failure = exc
        else:
            failure = None
    if failure is not None:
        if container.host_config.get("AutoRemove"):
            manager.remove(container.id, force=True, volumes=True)  # `run --rm` waits even now
        raise failure
    return container


def start_locked(manager: ContainerManager, container: Container, live: LiveState) -> None:
    runtime = manager.context.runtimes[container.runtime]
    run_dir = manager.run_directory(container)
    monitor_dir = manager.monitor_directory(container)
    bundle = run_dir / "bundle"
    cleanup_runtime(manager, container)  # leftovers of a previous run, if any
    manager.releaser.settle(container.id)  # the runtime refuses an id it still knows
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.rmtree(monitor_dir, ignore_errors=True)
    monitor_dir.mkdir(parents=True)
    bundle.mkdir(parents=True)
    rootfs = manager.context.storage.mount(container.layer_id)
    try:
        netns_path = network.make_network_namespace(manager, container)
        spec = _spec(manager, container, rootfs, netns_path)
        (bundle / "config.json").write_text(json.dumps(spec))
        tty = bool(container.config.get("Tty"))
        monitor_config = {
            "create_argv": runtime.create_command(
                container.id, bundle, monitor_dir / "init.pid",
                monitor_dir / "console.sock" if tty else None),
            "pid_file": str(monitor_dir / "init.pid"),
            "console_socket": str(monitor_dir / "console.sock"),
            "log_path": str(manager.log_path(container)),
            "log_max_size": hostconfig.log_size(container.host_config),
            "log_max_files": hostconfig.log_files(container.host_config),
            "tty": tty,
            "open_stdin": bool(container.config.get("OpenStdin")),
            "stdin_once": bool(container.config.get("StdinOnce")),
            "oom_files": _oom_files(spec),
            "runtime_log": str(getattr(runtime, "log_file", lambda _id: "")(container.id) or ""),
        }
        (monitor_dir / "monitor.json").write_text(json.dumps(monitor_config))
        log.debug("%s: bundle written", container.short_id)
        manager.zygote.spawn(monitor_dir)
        # networks are wired while the runtime creates the container: both take tens
        # of milliseconds, and neither needs the other
        wiring_failure = None
        try:
            network.join_network(manager, container, netns_path)
        except BaseException as exc:  # reported once the runtime is done with the container
            wiring_failure = exc
        pid = _await_created(monitor_dir)
        log.debug("%s: created by the runtime (pid %d)", container.short_id, pid)
        if wiring_failure is not None:
            raise wiring_failure
        attach.connect_pending_attaches(manager, container, live)
        runtime.start(container.id)
        log.debug("%s: started", container.short_id)
    except StartFailed as exc:
        _failed_start(manager, container, str(exc))
        raise
    except (MonitorError, RuntimeFailure, OSError) as exc:
        message = str(exc)
        _failed_start(manager, container, message)
        raise StartFailed(message) from None
    except BaseException as exc:  # a bug or bad input: still release waiters and mounts
        _failed_start(manager, container, f"{type(exc).__name__}: {exc}" if not isinstance(exc, EngineError)
                      else str(exc))
        raise
    state = container.state
    state.Status, state.Running, state.Paused, state.Restarting = "running", True, False, False
    state.Pid, state.ExitCode, state.Error, state.OOMKilled = pid, 0, "", False
    state.StartedAt = now_rfc3339()
    container.has_been_started = True
    if container.config.get("Healthcheck") and \
            hostconfig.healthcheck_enabled(container.config["Healthcheck"]):
        state.Health = {"Status": "starting", "FailingStreak": 0, "Log": []}
    manager.save(container)
    manager.event(container, "start")
    supervision.supervise(manager, container)
    if state.Health is not None:
        from dockyard.containers import health

        live.health = threading.Event()
        threading.Thread(target=health.watch, args=(manager, container, live.health), daemon=True,
                         name=f"health {container.short_id}").start()


def _await_created(monitor_dir: Path, timeout: float = 60) -> int:
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


def _failed_start(manager: ContainerManager, container: Container, message: str) -> None:
    cleanup_runtime(manager, container)
    state = container.state
    state.Status = "exited" if container.has_been_started else "created"
    state.Running, state.Pid = False, 0
    state.Error = message
    state.ExitCode = 127 if ("executable file not found" in message or "no such file" in message) \
        else 126 if ("permission denied" in message or "is a directory" in message) else 128
    state.FinishedAt = now_rfc3339()
    live = manager.live.get(container.id)
    if live is not None:
        attach.release_pending_attaches(live, message)
        live.exits += 1
    manager.save(container)
    manager.event(container, "die", exitCode=str(state.ExitCode))


def _spec(manager: ContainerManager, container: Container, rootfs: Path,
          netns_path: str | None = None) -> dict:
    files = etc_files.etc_files(manager, container)
    mounts = [{"destination": f"/etc/{name}", "type": "bind", "source": str(path),
               "options": ["rbind", "rprivate"] + (["ro"] if container.host_config.get("ReadonlyRootfs")
                                                  else [])}
              for name, path in files.items()]
    mode = hostconfig.network_mode(container.host_config)
    netns: str | None = netns_path
    if mode == "host":
        netns = "host"
    elif mode.startswith("container:"):
        other = manager.get(mode.split(":", 1)[1])
        if not other.running:
            raise StartFailed(f"cannot join network of a non running container: {other.id}")
        netns = f"/proc/{other.state.Pid}/ns/net"
    mounts += mount_volumes(manager, container, rootfs)
    workdir = container.config.get("WorkingDir")
    if workdir:
        (rootfs / workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return manager.context.build_spec(container=container, rootfs=rootfs, mounts=mounts, netns=netns,
                                      max_nofile=manager.context.max_nofile,
                                      linked_env=links.link_environment(manager, container))


def cleanup_runtime(manager: ContainerManager, container: Container) -> None:
    """Release what a run held: the rootfs mount now, the runtime's record and the
    bundle on the releaser's thread (see containers.release).

    The bundle directory is made before the runtime is called and renamed away here,
    so without it there is nothing to release (and no runtime call to pay for)."""
    network.leave_networks(manager, container)
    unmount_volumes(manager, container)
    run_dir = manager.run_directory(container)
    bundle = run_dir / "bundle"
    if not bundle.exists():
        return
    try:
        manager.context.storage.unmount(container.layer_id)
    except Exception as exc:  # a stale unmount must not block the state change
        log.warning("unmount of %s: %s", container.short_id, exc)
    released = run_dir / f".released-{secrets.token_hex(4)}"
    bundle.rename(released)
    runtime = manager.context.runtimes.get(container.runtime)
    if runtime is None:  # its plugin is gone: nothing can delete the record
        shutil.rmtree(released, ignore_errors=True)
        return
    manager.releaser.release(runtime, container.id, released)


def _oom_files(spec: dict) -> list[str]:
    path = ((spec.get("linux") or {}).get("cgroupsPath") or "").lstrip("/")
    if not path:
        return []
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        return [f"/sys/fs/cgroup/{path}/memory.events"]
    return [f"/sys/fs/cgroup/memory/{path}/memory.oom_control"]

