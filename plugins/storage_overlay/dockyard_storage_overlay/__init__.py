"""dockyard-storage-overlay: image and container layers on the kernel's overlayfs.

Registers the `overlay` storage driver (priority 50, preferred over vfs): layers are
stacked by overlayfs as moby's overlay2 does, so a container's writable layer costs a
few directories whatever the image's size. The probe checks for root and overlayfs;
whether the data root's filesystem can hold overlay upper dirs (d_type, trusted xattrs)
needs a test mount, which the factory makes and reports clearly.
"""

from dockyard.plugin import DriverContext, DriverSpec, first_failure, hookimpl, need_filesystem, need_root


def _why_not_here() -> str | None:
    return first_failure(need_root(), need_filesystem("overlay"))


def _make(context: DriverContext):
    from dockyard_storage_overlay.driver import OverlayDriver

    return OverlayDriver(context)


@hookimpl
def dockyard_storage_drivers():
    yield DriverSpec(kind="storage", name="overlay", factory=_make, priority=50,
                     probe=_why_not_here, description="kernel overlayfs, layers shared by reference")
