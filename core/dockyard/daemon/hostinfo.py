"""Facts about the host the daemon runs on, read from /proc, /sys and /etc.

Read-only and cheap; `docker info` and `docker version` show most of these.
"""

from __future__ import annotations

import os
import platform
import socket
from functools import cache
from pathlib import Path

_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def architecture() -> str:
    """The machine in Go's spelling, as Docker reports it (`amd64`, not `x86_64`)."""
    machine = platform.machine()
    return _GO_ARCH.get(machine, machine)


def kernel_version() -> str:
    return os.uname().release


@cache
def os_release() -> dict[str, str]:
    values = {}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key] = value.strip().strip('"')
    except OSError:
        pass
    return values


def operating_system() -> str:
    return os_release().get("PRETTY_NAME", "Linux")


def os_version() -> str:
    return os_release().get("VERSION_ID", "")


def memory_total() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def cgroup_version() -> str:
    """"2" on a pure cgroup v2 host, "1" on v1 and hybrid hosts (v1 controllers)."""
    return "2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "1"


def cgroup_v1_controllers() -> set[str]:
    root = Path("/sys/fs/cgroup")
    try:
        return {p.name for p in root.iterdir() if p.is_dir() and p.name != "unified"}
    except OSError:
        return set()


def ipv4_forwarding() -> bool:
    try:
        return Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1"
    except OSError:
        return False


def hostname() -> str:
    return socket.gethostname()


def open_file_count() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0
