"""Shared bench helpers: a daemon with a busybox image, a runc bundle, timing, memory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from dockyard.plugin.testing.daemon import DaemonProcess
from dockyard.plugin.testing.runtime import minimal_oci_config

BUSYBOX = "/bin/busybox"


def start_daemon(root: Path) -> DaemonProcess:
    daemon = DaemonProcess(root).start()
    subprocess.run([sys.executable, "-m", "dockyard.cli", "-H", daemon.host, "image", "bootstrap",
                    "busybox"], check=True, capture_output=True)
    return daemon


def stop_daemon(daemon: DaemonProcess) -> None:

    for container in daemon.client().get_json("/containers/json", {"all": 1}):
        daemon.client().request("DELETE", f"/containers/{container['Id']}", {"force": 1}).read()
    daemon.teardown()


def busybox_bundle(directory: Path, args: list[str], cgroups_path: str) -> Path:
    rootfs = directory / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    for mount_point in ("proc", "dev", "sys", "tmp"):
        (rootfs / mount_point).mkdir()
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    for applet in ("sh", "true", "sleep"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    (directory / "config.json").write_text(json.dumps(minimal_oci_config(args, cgroups_path)))
    return directory


def timed(command: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   env={**os.environ, **(env or {})})
    return time.perf_counter() - start


def memory(pid: int) -> dict[str, int]:
    """RSS, PSS and USS (private pages) in KiB, from smaps_rollup."""
    values = {}
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            key, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                values[key] = int(rest.split()[0])
    return {"rss": values.get("Rss", 0), "pss": values.get("Pss", 0),
            "uss": values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)}


def processes_holding(fragment: str) -> list[int]:
    """Pids with an open file whose path contains `fragment` (monitors hold their logs)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if any(fragment in os.readlink(fd) for fd in (entry / "fd").iterdir()):
                found.append(int(entry.name))
        except OSError:
            continue
    return found
