"""dockyard-volume-local: the `local` volume driver (directories under the data root).

The driver lands with issue #6 (volumes); until then its probe says so.
"""

from dockyard.plugin import DriverContext, DriverSpec, hookimpl
from dockyard.probes import unfinished

_UNFINISHED = unfinished("the local volume driver", "issue #6 (volumes)")


def _why_not_here() -> str | None:
    return _UNFINISHED


def _make(context: DriverContext):
    raise RuntimeError(_UNFINISHED)


@hookimpl
def dockyard_volume_drivers():
    yield DriverSpec(kind="volume", name="local", factory=_make, priority=50,
                     probe=_why_not_here, description="directories under the data root")
