"""The `host` and `none` network drivers: the two that need no kernel objects of their own.

`host` containers share the host's network stack, so the runtime creates no network
namespace for them. `none` containers get a namespace with only loopback, which the
runtime brings up. Neither has anything to create, join or restore.
"""

from __future__ import annotations

from collections.abc import Sequence

from dockyard.drivers.network import EndpointSpec, NetworkSpec
from dockyard.plugin import DriverContext, DriverSpec, hookimpl


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


def _host(context: DriverContext) -> _StacklessNetwork:
    return _StacklessNetwork(private_namespace=False)


def _none(context: DriverContext) -> _StacklessNetwork:
    return _StacklessNetwork(private_namespace=True)


@hookimpl
def dockyard_network_drivers():
    yield DriverSpec(kind="network", name="host", factory=_host, priority=0,
                     description="share the host's network stack")
    yield DriverSpec(kind="network", name="none", factory=_none, priority=0,
                     description="loopback only")
