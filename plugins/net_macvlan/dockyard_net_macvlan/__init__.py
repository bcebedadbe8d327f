"""dockyard-net-macvlan: the `macvlan` network driver (a MAC per container on a parent).

The driver lands with issue #5 (networking on one host); until then its probe says so.
"""

from dockyard.plugin import DriverContext, DriverSpec, hookimpl
from dockyard.probes import first_failure, need_netlink_kind, need_root, unfinished

_UNFINISHED = unfinished("the macvlan network driver", "issue #5 (networking on one host)")


def _why_not_here() -> str | None:
    return first_failure(need_root(), need_netlink_kind("macvlan"), _UNFINISHED)


def _make(context: DriverContext):
    raise RuntimeError(_UNFINISHED)


@hookimpl
def dockyard_network_drivers():
    yield DriverSpec(kind="network", name="macvlan", factory=_make, priority=20,
                     probe=_why_not_here, description="own MAC address on a parent interface")
