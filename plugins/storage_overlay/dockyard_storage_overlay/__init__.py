"""dockyard-storage-overlay: image and container layers on the kernel's overlayfs.

Registers the `overlay` storage driver (priority 50, preferred over vfs). The driver's
layer operations land with issue #3; until then its probe says so.
"""

from dockyard.plugin import DriverContext, DriverSpec, hookimpl
from dockyard.probes import first_failure, need_filesystem, need_root, unfinished

_UNFINISHED = unfinished("the overlay storage driver", "issue #3 (images and storage)")


def _why_not_here() -> str | None:
    return first_failure(need_root(), need_filesystem("overlay"), _UNFINISHED)


def _make(context: DriverContext):
    raise RuntimeError(_UNFINISHED)


@hookimpl
def dockyard_storage_drivers():
    yield DriverSpec(kind="storage", name="overlay", factory=_make, priority=50,
                     probe=_why_not_here, description="kernel overlayfs, layers shared by reference")
