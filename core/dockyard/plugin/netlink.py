"""One netlink socket on one worker thread: how a network driver works in the daemon's
own namespace.

pyroute2 opens a socket per calling thread and keeps it until it is closed, so an IPRoute
shared among the engine's request threads would leak one socket per thread. A driver's
link class subclasses `NetlinkWorker` and marks each public method `@on_worker`; marked
methods call only unmarked ones (a call from the worker to the worker would wait for
itself). Needs pyroute2, which network driver packages depend on (the core does not).
"""

from __future__ import annotations

import errno
import functools
from concurrent.futures import ThreadPoolExecutor

from dockyard.plugin.contracts.network import NetworkDriverError


def on_worker(method):
    """Run the method on the worker thread, one call at a time."""

    @functools.wraps(method)
    def call(self, *arguments, **keywords):
        return self._worker.submit(method, self, *arguments, **keywords).result()

    return call


class NetlinkWorker:
    def __init__(self, thread_name: str) -> None:
        from pyroute2 import IPRoute

        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        # No multicast groups: a long-lived socket that never reads events must not queue them.
        self._ipr = self._worker.submit(IPRoute, groups=0).result()

    def close(self) -> None:
        self._worker.submit(self._ipr.close).result()
        self._worker.shutdown()

    def _get(self, name: str):
        """The link called `name`, None when there is none (on the worker)."""
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            return self._ipr.link("get", ifname=name)[0]
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return None
            raise

    def _delete(self, name: str) -> bool:
        """Delete a link (for a veth, the pair); False when it was not there (on the worker)."""
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            self._ipr.link("del", ifname=name)
            return True
        except NetlinkError as exc:
            if exc.code in (errno.ENODEV, errno.ENOENT):
                return False
            raise NetworkDriverError(f"could not delete link {name}: {exc}") from None


def configure_interface(netns_fd: int, index: int, address, gateway=None) -> None:
    """Inside a container's namespace: the interface's address (an IPv4Interface), the
    link up, and with `gateway` the default route through it (replacing one that is
    there: the engine gives one endpoint the default route)."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    from dockyard.plugin.netns import run_in_netns

    def work() -> None:
        with IPRoute(groups=0) as ipr:
            if address is not None:
                try:
                    ipr.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen)
                except NetlinkError as exc:
                    if exc.code != errno.EEXIST:
                        raise
            ipr.link("set", index=index, state="up")
            if gateway is not None:
                ipr.route("replace", dst="0.0.0.0/0", gateway=str(gateway), oif=index)

    try:
        run_in_netns(netns_fd, work, name="interface setup")
    except NetlinkError as exc:
        raise NetworkDriverError(f"could not configure the container's interface: {exc}") from None
