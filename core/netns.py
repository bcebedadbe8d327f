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
    outcome: dict[str, object] = {}

    def inside() -> None:
        try:
            enter(netns)
            outcome["result"] = work()
        except BaseException as exc:  # handed to the calling thread below
            outcome["error"] = exc

    thread = threading.Thread(target=inside, name=name)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["result"]  # type: ignore[return-value]
