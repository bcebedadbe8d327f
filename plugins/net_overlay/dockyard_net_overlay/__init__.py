"""dockyard-net-overlay: the `overlay` network driver (VXLAN across hosts, etcd state).

Issue #14 builds it; until the data plane lands the probe says so. The state several
daemons share goes through the cluster store contract (`dockyard.plugin.contracts.store`).
"""

from dockyard.plugin import (
    DriverContext,
    DriverSpec,
    first_failure,
    hookimpl,
    need_netlink_kind,
    need_root,
    unfinished,
)

_UNFINISHED = unfinished("the multi-host overlay network driver", "issue #14")


def _why_not_here() -> str | None:
    return first_failure(need_root(), need_netlink_kind("vxlan"), _UNFINISHED)


def _make(context: DriverContext):
    raise RuntimeError(_UNFINISHED)


@hookimpl
def dockyard_network_drivers():
    yield DriverSpec(kind="network", name="overlay", factory=_make, priority=10,
                     probe=_why_not_here, description="VXLAN networks spanning several hosts")
