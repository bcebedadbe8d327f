"""dockerd beside dockyardd in a bench, where Debian's docker.io is installed.

A private dockerd (its own data root, exec root, socket and pid file under a scratch
directory) with `--iptables=false`, so it leaves the host's firewall as it found it:
the benches compare image and container work, not NAT. Its busybox image is the one
dockyardd made, moved with `docker save | docker load`, so both engines run the same
bytes. Stopping it removes its bridge and mounts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

BRIDGE = "dybench0"
BRIDGE_ADDRESS = "10.251.0.1/24"


def available() -> bool:
    return shutil.which("dockerd") is not None


def version(env: dict) -> str:
    return subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                          text=True, env={**os.environ, **env}).stdout.strip()


@contextlib.contextmanager
def running(root: Path, dockyard_env: dict | None = None) -> Iterator[dict]:
    """A dockerd for the block; yields the environment the docker CLI needs to reach it.
    With `dockyard_env`, busybox:latest is copied over from that dockyardd."""
    root.mkdir(parents=True, exist_ok=True)
    socket_path = root / "docker.sock"
    subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", BRIDGE_ADDRESS, "dev", BRIDGE], check=True)
    subprocess.run(["ip", "link", "set", BRIDGE, "up"], check=True)
    log = open(root / "dockerd.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        ["dockerd", "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
         "--pidfile", str(root / "dockerd.pid"), "-H", f"unix://{socket_path}",
         "--iptables=false", "--ip6tables=false", "--ip-masq=false", "--bridge", BRIDGE,
         "--storage-driver", "overlay2", "--containerd-namespace", "dockyard-bench",
         "--containerd-plugins-namespace", "dockyard-bench-plugins"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    env = {"DOCKER_HOST": f"unix://{socket_path}", "DOCKER_CONFIG": str(root / "cfg")}
    try:
        deadline = time.monotonic() + 60
        while not version(env):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not start:\n{(root / 'dockerd.log').read_text()[-2000:]}")
            time.sleep(0.2)
        if dockyard_env is not None:
            saved = subprocess.run(["docker", "save", "busybox:latest"], capture_output=True, check=True,
                                   env={**os.environ, **dockyard_env}).stdout
            subprocess.run(["docker", "load"], input=saved, capture_output=True, check=True,
                           env={**os.environ, **env})
        yield env
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
        for line in reversed(Path("/proc/mounts").read_text().splitlines()):
            mount_point = line.split()[1]
            if mount_point.startswith(str(root)):
                subprocess.run(["umount", "-l", mount_point], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def engines(stack: contextlib.ExitStack, root: Path):
    """dockyardd (started with busybox) and, where installed, a dockerd beside it: the
    dockyardd process, and name -> the environment the docker CLI (or Compose) needs to
    reach each engine. Both stop with `stack`."""
    from _common import start_daemon, stop_daemon

    daemon = start_daemon(root / "d")
    stack.callback(stop_daemon, daemon)
    found = {"dockyardd": {"DOCKER_HOST": daemon.host, "DOCKER_CONFIG": str(root / "cfg")}}
    if available():
        theirs = stack.enter_context(running(root / "dockerd", found["dockyardd"]))
        found[f"dockerd {version(theirs)}"] = theirs
    return daemon, found
