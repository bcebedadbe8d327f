"""dockyard-net-overlay: the `overlay` network driver, one VXLAN segment per network across
every host of a cluster, its state shared through the cluster store.

The work lives in driver.py (the contract's calls, VXLAN ids), links.py (bridges, VXLAN
devices, veths, forwarding and neighbour entries) and peers.py (where each endpoint of
the cluster is, announced in and followed from the store).
"""

from dockyard.plugin import DriverContext, DriverSpec, first_failure, hookimpl, need_netlink_kind, need_root


def _why_not_here() -> str | None:
    return first_failure(need_root(), need_netlink_kind("vxlan"))


def _make(context: DriverContext):
    from dockyard_net_overlay.driver import OverlayDriver

    return OverlayDriver(context)


@hookimpl
def dockyard_network_drivers():
    yield DriverSpec(kind="network", name="overlay", factory=_make, priority=10,
                     probe=_why_not_here, description="VXLAN networks spanning the hosts of a cluster")
