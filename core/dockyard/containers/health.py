"""Health checks: the image's HEALTHCHECK (or --health-cmd) run inside the container on
a timer, with Docker's rules for intervals, timeouts, retries and the start period."""

from __future__ import annotations

import json
import os
import secrets
import signal
import threading
import time

from dockyard.containers.exec import exec_process
from dockyard.monitor.client import EXIT, MonitorError, read_frames

DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
MAX_OUTPUT = 4096
KEEP_RESULTS = 5


def _seconds(nanoseconds: int | None, default: float) -> float:
    return nanoseconds / 1e9 if nanoseconds else default


def probe_argv(test: list[str]) -> list[str]:
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", test[1]]
    if test[0] == "CMD":
        return list(test[1:])
    return list(test)  # an array without a tag is taken as CMD, as Docker does


def run_probe(manager, container, command: list[str], timeout: float) -> tuple[int, str]:
    """Run one check through the container's monitor; (exit code, output)."""
    probe_id = "health-" + secrets.token_hex(8)
    monitor_dir = manager.monitor_directory(container)
    process_file = monitor_dir / f"{probe_id}-process.json"
    pid_file = monitor_dir / f"{probe_id}.pid"
    process_file.write_text(json.dumps(exec_process(manager, container, {"Cmd": command}, tty=False)))
    runtime = manager.runtime(container)
    argv = runtime.exec_command(container.id, process_file, pid_file)
    request = {"op": "exec", "id": probe_id, "argv": argv, "pid_file": str(pid_file), "tty": False,
               "stdin": False}
    output = b""
    try:
        sock = manager.monitor(container).connect(request, timeout=timeout)
    except MonitorError as exc:
        return -1, str(exc)
    try:
        deadline = time.monotonic() + timeout
        sock.settimeout(timeout)
        for stream, payload in read_frames(sock):
            if stream == EXIT:
                result = json.loads(payload)
                if result.get("Error"):
                    return -1, result["Error"]
                return int(result.get("ExitCode", -1)), output[:MAX_OUTPUT].decode(errors="replace")
            output += payload
            sock.settimeout(max(0.01, deadline - time.monotonic()))
    except TimeoutError:
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        return -1, f"Health check exceeded timeout ({timeout:g}s)"
    finally:
        sock.close()
        for leftover in (process_file, pid_file):
            leftover.unlink(missing_ok=True)
    return -1, "the health check ended without an exit status"


def _stamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int((now % 1) * 1e9):09d}Z"


def watch(manager, container, stop: threading.Event) -> None:
    """Probe until `stop` is set (the container exited or is being removed)."""
    check = container.config.get("Healthcheck") or {}
    interval = _seconds(check.get("Interval"), DEFAULT_INTERVAL)
    timeout = _seconds(check.get("Timeout"), DEFAULT_TIMEOUT)
    retries = int(check.get("Retries") or DEFAULT_RETRIES)
    start_period = _seconds(check.get("StartPeriod"), 0.0)
    start_interval = _seconds(check.get("StartInterval"), interval)
    argv = probe_argv(check["Test"])
    started = time.monotonic()
    while True:
        in_start_period = time.monotonic() - started < start_period
        if stop.wait(start_interval if in_start_period else interval):
            return
        began = _stamp()
        code, output = run_probe(manager, container, argv, timeout)
        if stop.is_set():
            return
        health = container.state.Health
        if health is None:
            return
        log = list(health.get("Log") or []) + [{"Start": began, "End": _stamp(), "ExitCode": code,
                                                "Output": output}]
        health["Log"] = log[-KEEP_RESULTS:]
        previous = health.get("Status")
        if code == 0:
            health["FailingStreak"] = 0
            health["Status"] = "healthy"
        elif not (in_start_period and previous == "starting"):
            health["FailingStreak"] = int(health.get("FailingStreak", 0)) + 1
            if health["FailingStreak"] >= retries:
                health["Status"] = "unhealthy"
        manager.save(container)
        if health["Status"] != previous:
            manager.event(container, f"health_status: {health['Status']}")
