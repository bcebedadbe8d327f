"""mount(2) and umount2(2) through ctypes, and reading /proc/self/mountinfo: the system
calls drivers that mount things share (volume drivers, tests). Nothing here knows what
is being mounted."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from pathlib import Path

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 0x2

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)


def _encode(value: str | os.PathLike | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source: str | None, target: Path, fstype: str | None, flags: int, data: str | None) -> None:
    """mount(2) exactly as given; failure raises OSError carrying the kernel's errno."""
    if _libc.mount(_encode(source), _encode(target), _encode(fstype), flags, _encode(data)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def detach(target: Path) -> None:
    """Detach the topmost mount on `target` (lazily, as moby does: a process still inside
    keeps the filesystem alive, but it leaves the mount table at once)."""
    if _libc.umount2(os.fsencode(target), MNT_DETACH) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"unmounting {target} failed: {os.strerror(code)}")


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo octal."""
    if "\\" not in field:
        return field
    out, index = [], 0
    while index < len(field):
        if field[index] == "\\" and field[index + 1:index + 4].isdigit():
            out.append(chr(int(field[index + 1:index + 4], 8)))
            index += 4
        else:
            out.append(field[index])
            index += 1
    return "".join(out)


def mount_table() -> list[tuple[str, str]]:
    """(mount point, filesystem type) of every mount in this mount namespace, oldest first."""
    table = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            table.append((_unescape(fields[4]), fields[fields.index("-") + 1]))
    return table


def filesystems_at(point: Path) -> list[str]:
    """The types of the filesystems mounted exactly on `point`, bottom first (mounts stack)."""
    wanted = str(point)
    return [fstype for mount_point, fstype in mount_table() if mount_point == wanted]


def mount_points_under(root: Path) -> list[Path]:
    """Mount points at or below `root`, deepest first (the order to detach them in)."""
    prefix = str(root).rstrip("/")
    found = {Path(point) for point, _ in mount_table()
             if point == prefix or point.startswith(prefix + "/")}
    return sorted(found, key=lambda path: len(path.parts), reverse=True)


def detach_everything_under(root: Path) -> None:
    """Detach every mount at or below `root`, stacked ones included. Raises OSError when one
    will not go: then the tree must not be deleted (it would reach into the mounted data)."""
    for _ in range(64):  # stacked mounts come off one per call; 64 is far more than any stack
        points = mount_points_under(root)
        if not points:
            return
        for point in points:
            try:
                detach(point)
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EINVAL: no longer a mount point
                    raise
    raise OSError(errno.EBUSY, f"mounts below {root} keep coming back: {mount_points_under(root)}")
