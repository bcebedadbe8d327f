"""dockyard-storage-vfs: every layer a full copy of its parent (slow, works anywhere).

Registers the `vfs` storage driver (priority 10, the fallback). The driver's layer
operations land with issue #3; until then its probe says so.
"""

from dockyard.plugin import DriverContext, DriverSpec, hookimpl
from dockyard.probes import unfinished

_UNFINISHED = unfinished("the vfs storage driver", "issue #3 (images and storage)")


def _why_not_here() -> str | None:
    return _UNFINISHED


def _make(context: DriverContext):
    raise RuntimeError(_UNFINISHED)


@hookimpl
def dockyard_storage_drivers():
    yield DriverSpec(kind="storage", name="vfs", factory=_make, priority=10,
                     probe=_why_not_here, description="plain directories, one full copy per layer")
