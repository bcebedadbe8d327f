"""Building blocks for DriverSpec probes: each returns None or the reason it fails.

    probe=lambda: first_failure(need_root(), need_filesystem("overlay"))

Probes run on every daemon start and `dockyard plugins`, so each check here is a file
read or a PATH lookup, never a mount or a subprocess.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def first_failure(*reasons: str | None) -> str | None:
    return next((reason for reason in reasons if reason), None)


def need_root() -> str | None:
    return None if os.geteuid() == 0 else "needs root (run dockyardd as root)"


def need_filesystem(name: str) -> str | None:
    """The kernel must list `name` in /proc/filesystems (it may be a loadable module
    that is not loaded yet: then say how to load it)."""
    try:
        listed = {line.split()[-1] for line in Path("/proc/filesystems").read_text().splitlines()
                  if line.strip()}
    except OSError:
        return "cannot read /proc/filesystems"
    if name in listed:
        return None
    return f"the kernel has no {name} filesystem (try: modprobe {name})"


def need_binary(name: str, package: str | None = None) -> str | None:
    if shutil.which(name):
        return None
    return f"{name} not found on PATH (apt-get install {package or name})"


def need_netlink_kind(kind: str) -> str | None:
    """A virtual link type (bridge, macvlan, vxlan) the kernel can create: either built
    in (its sysfs class or module dir exists) or available as a module."""
    release = os.uname().release
    modules = Path(f"/lib/modules/{release}")
    if Path(f"/sys/module/{kind}").exists():
        return None
    if modules.exists():
        for suffix in (".ko", ".ko.xz", ".ko.zst", ".ko.gz"):
            if list(modules.rglob(f"{kind}{suffix}")):
                return None
    builtin = modules / "modules.builtin"
    if builtin.exists() and f"/{kind}.ko" in builtin.read_text():
        return None
    if not modules.exists():
        return None  # kernels without module trees (VMs, containers) build such drivers in
    return f"the kernel has no {kind} link support (try: modprobe {kind})"


def unfinished(what: str, issue: str) -> str:
    """The honest probe of a driver whose work has not landed yet."""
    return f"not built yet: {what} lands with {issue}"
