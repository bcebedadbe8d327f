"""The overlay driver's few system calls: the overlay mount itself (made from a chosen
directory, see mount_overlay); unmounting and reading the mount table are the core's
(dockyard.plugin.mounts). Nothing here knows about layers."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

from dockyard.plugin import mounts

MS_RDONLY = 0x1

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)


def mount_overlay(target: Path, options: str, flags: int = 0, cwd: Path | None = None) -> None:
    """Mount an overlay filesystem on `target` with `options` (the mount data string).

    With `cwd`, relative paths in `options` are resolved from that directory: the mount
    is made by a forked child that changes directory first, because the working
    directory is shared by every thread of this process (moby re-executes itself for
    the same reason)."""
    target_bytes = os.fsencode(target)
    data = options.encode()
    if cwd is None:
        if _libc.mount(b"overlay", target_bytes, b"overlay", flags, data) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"mounting overlay on {target} failed: {os.strerror(code)}")
        return
    directory = os.fsencode(cwd)
    pid = os.fork()
    if pid == 0:  # the child only changes directory, mounts and exits: nothing else is safe
        code = 255
        try:
            os.chdir(directory)
            code = 0 if _libc.mount(b"overlay", target_bytes, b"overlay", flags, data) == 0 \
                else ctypes.get_errno()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code:
        reason = os.strerror(code) if 0 < code < 255 else "the mount helper process failed"
        raise OSError(code if 0 < code < 255 else None,
                      f"mounting overlay on {target} (from {cwd}) failed: {reason}")


def unmount(target: Path) -> None:
    """Detach the filesystem mounted on `target` (lazily, as moby does: a process still
    inside keeps it alive, but it is gone from the mount table at once)."""
    mounts.detach(target)


def mounts_under(root: Path) -> dict[Path, str]:
    """Mount points at or below `root` in this mount namespace, with their fs type."""
    prefix = str(root).rstrip("/")
    return {Path(point): fstype for point, fstype in mounts.mount_table()
            if point == prefix or point.startswith(prefix + "/")}


def filesystem_type(path: Path) -> str:
    """The type of the filesystem holding `path` (the longest mount point above it)."""
    best, best_type = "", "unknown"
    resolved = str(path.resolve())
    for mount_point, fstype in mounts.mount_table():
        inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fstype
    return best_type
