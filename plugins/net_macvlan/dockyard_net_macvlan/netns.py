"""Netlink work inside a container's network namespace, from a short-lived thread.

setns() moves only the calling thread, so a new thread enters the namespace, opens a
pyroute2 IPRoute there (a netlink socket stays bound to the namespace it was opened
in), does the work and ends: the daemon's own threads never change namespace, and no
process is spawned (pyroute2's NetNS would fork one). When asked, the thread also opens
an IPRoute before it moves, bound to the host's namespace, so one thread can create a
link on a host parent directly into the container (IFLA_NET_NS_FD) and then configure
it from inside.

pyroute2 keeps its socket per thread, so neither IPRoute may leave the thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from dockyard.plugin.netns import NamespaceGone, enter
from pyroute2 import IPRoute

Result = TypeVar("Result")


@dataclass
class NamespaceSession:
    inside: IPRoute  # bound to the container's namespace
    host: IPRoute | None  # bound to the host's namespace, when asked for
    netns_fd: int  # open on the namespace for as long as the work runs


def run_in_namespace(netns_path: str, work: Callable[[NamespaceSession], Result],
                     with_host: bool = False) -> Result:
    """Run `work` in a thread inside the namespace at `netns_path`; its result or its
    exception comes back to the caller. NamespaceGone when the namespace cannot be
    entered because it no longer exists."""
    outcome: dict[str, Any] = {}

    def body() -> None:
        try:
            outcome["result"] = _enter_and_work(netns_path, work, with_host)
        except BaseException as exc:  # handed to the calling thread below
            outcome["error"] = exc

    thread = threading.Thread(target=body, name=f"macvlan netns {netns_path}")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _enter_and_work(netns_path: str, work: Callable[[NamespaceSession], Result],
                    with_host: bool) -> Result:
    try:
        netns_fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:  # /proc/PID/ns/net of a process that has exited
        raise NamespaceGone(exc.errno, f"network namespace {netns_path} is gone") from None
    host = None
    try:
        host = IPRoute() if with_host else None  # opened before the move: bound to the host's
        enter(netns_fd)
        with IPRoute() as inside:
            return work(NamespaceSession(inside=inside, host=host, netns_fd=netns_fd))
    finally:
        if host is not None:
            host.close()
        os.close(netns_fd)
