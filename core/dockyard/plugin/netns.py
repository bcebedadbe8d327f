"""Work inside another network namespace, from a process with many threads.

setns() moves only the calling thread, so the work runs on a short-lived thread that
enters the namespace and ends with it: no thread of the daemon ever changes namespace.
Sockets opened there (netlink, the DNS listeners) stay bound to that namespace after the
thread ends, whichever thread uses them later. Drivers and tests share these helpers.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

CLONE_NEWNET = 0x40000000

Result = TypeVar("Result")


class NamespaceGone(OSError):
    """The path no longer names a network namespace (its container has exited)."""


def enter(netns: str | int) -> None:
    """Move the calling thread into `netns` (a path such as /proc/PID/ns/net, or an open
    descriptor). Only for a thread that ends with its work: see run_in_netns."""
    if isinstance(netns, int):
        descriptor, owned = netns, False
    else:
        try:
            descriptor, owned = os.open(netns, os.O_RDONLY | os.O_CLOEXEC), True
        except FileNotFoundError as exc:  # /proc/PID/ns/net of a process that has exited
            raise NamespaceGone(exc.errno, f"network namespace {netns} is gone") from None
    try:
        if ctypes.CDLL(None, use_errno=True).setns(descriptor, CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            if code == errno.EINVAL:  # a bind-mount target left behind: no namespace any more
                raise NamespaceGone(code, f"{netns} is not a network namespace (any more)")
            raise OSError(code, f"cannot enter the network namespace {netns}: {os.strerror(code)}")
    finally:
        if owned:
            os.close(descriptor)


def run_in_netns(netns: str | int | None, work: Callable[[], Result], name: str = "netns work") -> Result:
    """Run `work` on a fresh thread inside `netns` (None: right here, in ours); its result
    or its exception comes back to the caller."""
    if netns is None:
        return work()

    def inside() -> Result:
        enter(netns)
        return work()

    return _on_own_thread(inside, name)


def _on_own_thread(work: Callable[[], Result], name: str) -> Result:
    outcome: dict[str, object] = {}

    def body() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:  # handed to the calling thread below
            outcome["error"] = exc

    thread = threading.Thread(target=body, name=name)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["result"]  # type: ignore[return-value]


MS_BIND, MNT_DETACH = 4096, 2


def create_namespace(path: Path) -> None:
    """A new, empty network namespace kept alive by a bind mount at `path` (what `ip netns
    add` does). The engine makes a container's namespace itself, before the runtime runs,
    so networks are wired while the runtime creates the container, and the namespace has
    a name that outlives the daemon."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))

    def unshare_and_bind() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"cannot make a network namespace: {os.strerror(code)}")
        if libc.mount(b"/proc/thread-self/ns/net", os.fsencode(path), None, MS_BIND, None) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"cannot bind the network namespace to {path}: {os.strerror(code)}")

    try:
        _on_own_thread(unshare_and_bind, "new netns")
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def remove_namespace(path: Path) -> None:
    """Drop the name of a namespace made by create_namespace; the kernel frees it (and
    every interface in it) once nothing else holds it. Repeating it is not an error."""
    if ctypes.CDLL(None, use_errno=True).umount2(os.fsencode(path), MNT_DETACH) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT):  # not mounted (any more), or no file
            raise OSError(code, f"cannot unmount the network namespace {path}: {os.strerror(code)}")
    path.unlink(missing_ok=True)
