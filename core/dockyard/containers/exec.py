"""`docker exec`: exec records, and the processes started in a running container
through its monitor with the container's own process settings under the exec's."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.containers.errors import StartFailed
from dockyard.errors import Conflict, InvalidParameter, NotFound

if TYPE_CHECKING:
    from dockyard.containers.manager import ContainerManager
    from dockyard.containers.model import Container


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


def exec_create(manager: ContainerManager, name_or_id: str, config: dict) -> ExecRecord:
    container = manager.get(name_or_id)
    if not container.running:
        raise Conflict(f"Container {container.id} is not running")
    if container.state.Paused:
        raise Conflict(f"Container {container.id} is paused, unpause the container before exec")
    if not config.get("Cmd"):
        raise InvalidParameter("No exec command specified")
    record = ExecRecord(secrets.token_hex(32), container.id, dict(config))
    manager.execs[record.id] = record
    manager.event(container, "exec_create: " + " ".join(config["Cmd"]), execID=record.id)
    return record


def exec_get(manager: ContainerManager, exec_id: str) -> ExecRecord:
    record = manager.execs.get(exec_id)
    if record is None:
        raise NotFound(f"No such exec instance: {exec_id}")
    if record.running and record.exit_code is None:
        container = manager.records.get(record.container_id)
        if container is not None:  # a detached exec: the monitor recorded its end
            path = manager.monitor_directory(container) / f"exec-{exec_id}.json"
            try:
                result = json.loads(path.read_text())
            except (OSError, ValueError):
                result = {}
            if result.get("ExitCode") is not None:
                manager.exec_finished(record, int(result["ExitCode"]))
            elif not container.running:
                manager.exec_finished(record, 137)
    return record


def exec_ids(manager: ContainerManager, container: Container) -> list[str]:
    return [r.id for r in manager.execs.values() if r.container_id == container.id]


def exec_start(manager: ContainerManager, exec_id: str, detach: bool, tty: bool | None = None):
    """Start the exec; returns the monitor session socket (None when detached)."""
    record = manager.exec_get(exec_id)
    if record.started:
        raise Conflict(f"exec {exec_id} has already been started")
    container = manager.get(record.container_id)
    if not container.running:
        raise Conflict(f"Container {container.id} is not running")
    record.started = True
    config = record.config
    tty = bool(config.get("Tty")) if tty is None else tty
    monitor_dir = manager.monitor_directory(container)
    process_file = monitor_dir / f"exec-{exec_id}-process.json"
    process_file.write_text(json.dumps(exec_process(manager, container, config, tty)))
    runtime = manager.runtime(container)
    pid_file = monitor_dir / f"exec-{exec_id}.pid"
    console = monitor_dir / f"exec-{exec_id[:12]}.sock" if tty else None
    argv = runtime.exec_command(container.id, process_file, pid_file, console)
    request = {"op": "exec", "id": exec_id, "argv": argv, "pid_file": str(pid_file), "tty": tty,
               "stdin": bool(config.get("AttachStdin")), "detach": detach,
               "console_socket": str(console) if console else None}
    sock = manager.monitor(container).connect(request, timeout=None)
    record.running = True
    manager.event(container, "exec_start: " + " ".join(config["Cmd"]), execID=exec_id)
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


def exec_finished(manager: ContainerManager, record: ExecRecord, exit_code: int) -> None:
    if not record.running:
        return
    record.running, record.exit_code = False, exit_code
    container = manager.records.get(record.container_id)
    if container is not None:
        manager.event(container, "exec_die", execID=record.id, exitCode=str(exit_code))


def exec_process(manager: ContainerManager, container: Container, config: dict, tty: bool) -> dict:
    """The container's own process settings with the exec's command, env, user and
    working directory over them (the OCI `process` object)."""
    spec = json.loads((manager.run_directory(container) / "bundle" / "config.json").read_text())
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


def exec_failed(manager: ContainerManager, record: ExecRecord, message: str) -> None:
    """The exec's process never started: Docker's exit code for it, 127 when there is no
    such executable, 126 when it cannot be run (permissions, an unknown user...)."""
    lowered = message.lower()
    code = 127 if "executable file not found" in lowered or "no such file or directory" in lowered else 126
    record.config["_error"] = message
    record.running = True  # exec_finished ends a running exec, and says so in an event
    exec_finished(manager, record, code)
