"""dockyard-net-macvlan: the `macvlan` network driver (a MAC per container on a parent).

Registers `macvlan` (Docker's `-d macvlan`): containers get macvlan links on a host
parent link (`-o parent=eth0`, `eth0.10` for an 802.1q VLAN, or a stand-in dummy link)
in bridge, private, vepa or passthru mode (`-o macvlan_mode=`). All kernel work goes
through pyroute2's netlink, imported only when the daemon builds the driver.
"""

from importlib.util import find_spec

from dockyard.plugin import DriverContext, DriverSpec, first_failure, hookimpl, need_netlink_kind, need_root


def _need_pyroute2() -> str | None:
    if find_spec("pyroute2") is None:
        return "the pyroute2 package is not installed (pip install pyroute2)"
    return None


def _why_not_here() -> str | None:
    return first_failure(need_root(), need_netlink_kind("macvlan"), _need_pyroute2())


def _make(context: DriverContext):
    from dockyard_net_macvlan.driver import MacvlanDriver

    return MacvlanDriver(context)


@hookimpl
def dockyard_network_drivers():
    yield DriverSpec(kind="network", name="macvlan", factory=_make, priority=20,
                     probe=_why_not_here, description="own MAC address on a parent interface")
