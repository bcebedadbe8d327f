"""The `host` and `none` network drivers: the two that need no kernel objects of their own.

`host` containers share the host's network stack, so the runtime creates no network
namespace for them. `none` containers get a namespace with only loopback, which the
runtime brings up. Neither has anything to create, join or restore.
"""

from __future__ import annotations

import fcntl
import socket
import struct
from collections.abc import Sequence

from dockyard.plugin import DriverContext, DriverSpec, hookimpl
from dockyard.plugin.contracts.network import EndpointSpec, NetworkSpec
from dockyard.plugin.netns import run_in_netns


class _StacklessNetwork:
    scope = "local"

    def __init__(self, private_namespace: bool) -> None:
        self.private_namespace = private_namespace

    def create_network(self, network: NetworkSpec) -> None:
        pass

    def delete_network(self, network_id: str) -> None:
        pass

    def join(self, network: NetworkSpec, endpoint: EndpointSpec) -> None:
        pass

    def leave(self, network: NetworkSpec, endpoint: EndpointSpec) -> None:
        pass

    def restore(self, networks: Sequence[NetworkSpec], endpoints: Sequence[EndpointSpec]) -> None:
        pass


SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def bring_up_loopback(netns_path: str) -> None:
    """Set `lo` up inside a network namespace (an ioctl, no process and no netlink)."""

    def inside() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            request = struct.pack("16sH", b"lo", 0)
            flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
            fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))

    run_in_netns(netns_path, inside, name="netns loopback")


class _LoopbackOnly(_StacklessNetwork):
    def bring_up_loopback(self, netns_path: str) -> None:
        bring_up_loopback(netns_path)


def _host(context: DriverContext) -> _StacklessNetwork:
    return _StacklessNetwork(private_namespace=False)


def _none(context: DriverContext) -> _StacklessNetwork:
    return _LoopbackOnly(private_namespace=True)


@hookimpl
def dockyard_network_drivers():
    yield DriverSpec(kind="network", name="host", factory=_host, priority=0,
                     description="share the host's network stack")
    yield DriverSpec(kind="network", name="none", factory=_none, priority=0,
                     description="loopback only")
