"""A third-party network driver that keeps its networks in memory (a test fixture).

It exists to prove that a package outside this repository is found through its entry
point and served by the daemon exactly like the built-in drivers.
"""

from dockyard.plugin import DriverContext, DriverSpec, hookimpl


class ExampleNetwork:
    scope = "local"
    private_namespace = True

    def __init__(self, context: DriverContext) -> None:
        self.home = context.home
        self.networks: dict[str, object] = {}

    def create_network(self, network) -> None:
        self.networks[network.network_id] = network

    def delete_network(self, network_id: str) -> None:
        self.networks.pop(network_id, None)

    def join(self, network, endpoint) -> None:
        pass

    def leave(self, network, endpoint) -> None:
        pass

    def restore(self, networks, endpoints) -> None:
        for network in networks:
            self.networks[network.network_id] = network


@hookimpl
def dockyard_storage_drivers():
    # Never usable: lets tests ask for a driver whose probe fails, whatever the host.
    yield DriverSpec(kind="storage", name="example-unusable", factory=ExampleNetwork, priority=0,
                     probe=lambda: "needs the example kernel feature, which no kernel has",
                     description="a storage driver that never works (third-party test plugin)")


@hookimpl
def dockyard_network_drivers():
    yield DriverSpec(kind="network", name="example", factory=ExampleNetwork, priority=1,
                     description="in-memory example network (third-party test plugin)")
