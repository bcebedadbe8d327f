"""dockyard-net-bridge: the `bridge` network driver (Linux bridge, veth, NAT, published ports).

This module owns the plugin's face: the hook that offers the driver, its probe, and the
factory. The work lives in driver.py (the contract's calls), links.py (netlink),
firewall.py (nftables), options.py (what a network is made of) and state.py (records).
"""

import importlib.util

from dockyard.plugin import (
    DriverContext,
    DriverSpec,
    first_failure,
    hookimpl,
    need_binary,
    need_netlink_kind,
    need_root,
)


def _need_pyroute2() -> str | None:
    if importlib.util.find_spec("pyroute2") is None:
        return "pyroute2 is not installed (pip install pyroute2)"
    return None


def _why_not_here() -> str | None:
    return first_failure(need_root(), need_netlink_kind("bridge"), need_netlink_kind("veth"),
                         need_binary("nft", "nftables"), _need_pyroute2())


def _make(context: DriverContext):
    from .driver import BridgeDriver  # pyroute2 takes a good part of a second to import

    return BridgeDriver(context)


@hookimpl
def dockyard_network_drivers():
    yield DriverSpec(kind="network", name="bridge", factory=_make, priority=50,
                     probe=_why_not_here, description="Linux bridge with NAT and published ports")
