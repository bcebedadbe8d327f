"""dockyard-net-overlay: the `overlay` network driver (VXLAN across hosts, etcd state).

Multi-host overlay networking has no issue of its own yet; until it is built the probe
says so.
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

_UNFINISHED = unfinished("the multi-host overlay network driver", "a later issue (none filed yet)")


def _why_not_here() -> str | None:
    return first_failure(need_root(), need_netlink_kind("vxlan"), _UNFINISHED)


def _make(context: DriverContext):
    raise RuntimeError(_UNFINISHED)


@hookimpl
def dockyard_network_drivers():
    yield DriverSpec(kind="network", name="overlay", factory=_make, priority=10,
                     probe=_why_not_here, description="VXLAN networks spanning several hosts")
