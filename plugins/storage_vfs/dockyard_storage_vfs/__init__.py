"""dockyard-storage-vfs: every layer a full copy of its parent (slow, works anywhere).

Registers the `vfs` storage driver (priority 10, the fallback when overlayfs cannot be
used): plain directories and `cp -a`, no kernel feature needed. Its one gap in the
storage contract is that a container's writable layer is a full copy of the image.
"""

from dockyard.plugin import DriverContext, DriverSpec, hookimpl, need_binary


def _why_not_here() -> str | None:
    return need_binary("cp", "coreutils")


def _make(context: DriverContext):
    from dockyard_storage_vfs.driver import VfsDriver

    return VfsDriver(context)


@hookimpl
def dockyard_storage_drivers():
    yield DriverSpec(kind="storage", name="vfs", factory=_make, priority=10,
                     probe=_why_not_here, description="plain directories, one full copy per layer")
