"""Shared helpers for the core's tests (fixtures for driver authors live in dockyard.plugin.testing)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_lab import lab  # noqa: F401  (the multi-host lab fixture, one per module)
from dockyard.plugin.testing.daemon import DaemonProcess


def run_daemon_expecting_failure(daemon: DaemonProcess, timeout: float = 30) -> str:
    """Run dockyardd to completion; it must fail. Returns what it printed."""
    daemon.root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DOCKYARD_STRICT_PLUGINS": "1", **daemon.env}
    result = subprocess.run(daemon.command(), capture_output=True, text=True, env=env,
                            timeout=timeout)
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    return result.stderr


def dockyard_cli(*args: str, host: str | None = None, env: dict | None = None,
                 check: bool = True) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "dockyard.cli"]
    if host:
        command += ["-H", host]
    result = subprocess.run([*command, *args], capture_output=True, text=True, timeout=60,
                            env={**os.environ, **(env or {})})
    if check:
        assert result.returncode == 0, (result.stdout, result.stderr)
    return result


@pytest.fixture
def short_tmp(tmp_path_factory) -> Path:
    """A short temporary directory: UNIX socket paths must stay under 108 bytes."""
    return Path(tmp_path_factory.mktemp("d", numbered=True))


@pytest.fixture
def make_daemon(short_tmp):
    """Factory for DaemonProcess objects under one temporary root; stops them all."""
    made: list[DaemonProcess] = []

    def make(name: str = "a", *args: str, root: Path | None = None, **env: str) -> DaemonProcess:
        daemon = DaemonProcess(root or short_tmp / name, tuple(args), dict(env))
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.teardown()


def docker(daemon, *args, input=None, timeout=120, check=False) -> subprocess.CompletedProcess:
    """The real docker CLI against a test daemon (its own config dir, never the user's)."""
    env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_CONFIG": str(daemon.root / "cfg")}
    result = subprocess.run(["docker", *args], capture_output=True, env=env, timeout=timeout, input=input)
    if check:
        assert result.returncode == 0, result.stderr.decode()
    return result


def out(result) -> str:
    return result.stdout.decode().strip()


@contextlib.contextmanager
def busybox_daemon(tmp_path_factory, prefix: str) -> Iterator[DaemonProcess]:
    """A daemon of the test module's own, with busybox built offline; its containers and
    kernel objects gone afterwards. For module-scoped fixtures."""
    process = DaemonProcess(tmp_path_factory.mktemp(prefix, numbered=True)).start()
    try:
        subprocess.run([sys.executable, "-m", "dockyard.cli", "-H", process.host, "image", "bootstrap",
                        "busybox"], check=True, capture_output=True)
        yield process
    finally:
        process.remove_containers()
        process.teardown()
