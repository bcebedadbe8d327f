"""dockyard-net-bridge: the `bridge` network driver (Linux bridge, veth, NAT, ports).

The driver lands with issue #5 (networking on one host); until then its probe says so.
"""

from dockyard.plugin import DriverContext, DriverSpec, hookimpl
from dockyard.probes import first_failure, need_netlink_kind, need_root, unfinished

_UNFINISHED = unfinished("the bridge network driver", "issue #5 (networking on one host)")


def _why_not_here() -> str | None:
    return first_failure(need_root(), need_netlink_kind("bridge"), _UNFINISHED)


def _make(context: DriverContext):
    raise RuntimeError(_UNFINISHED)


@hookimpl
def dockyard_network_drivers():
    yield DriverSpec(kind="network", name="bridge", factory=_make, priority=50,
                     probe=_why_not_here, description="Linux bridge with NAT and published ports")
