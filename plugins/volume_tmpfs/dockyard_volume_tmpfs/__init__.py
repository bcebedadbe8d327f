"""dockyard-volume-tmpfs: the `tmpfs` volume driver (named volumes held in memory).

The driver lands with issue #6 (volumes); until then its probe says so.
"""

from dockyard.plugin import DriverContext, DriverSpec, hookimpl
from dockyard.probes import first_failure, need_filesystem, need_root, unfinished

_UNFINISHED = unfinished("the tmpfs volume driver", "issue #6 (volumes)")


def _why_not_here() -> str | None:
    return first_failure(need_root(), need_filesystem("tmpfs"), _UNFINISHED)


def _make(context: DriverContext):
    raise RuntimeError(_UNFINISHED)


@hookimpl
def dockyard_volume_drivers():
    yield DriverSpec(kind="volume", name="tmpfs", factory=_make, priority=10,
                     probe=_why_not_here, description="in-memory volumes shared while they exist")
