"""dockyard-volume-tmpfs: the `tmpfs` volume driver, named volumes held in memory.

    docker volume create -d tmpfs -o size=64m -o mode=1777 NAME

This module owns the plugin's face: the hook that offers the driver, its probe and the
factory. A volume's tmpfs is mounted while the volume exists, so containers share its
content; the volume survives a reboot but its content does not. The work lives in
driver.py (the contract's calls), options.py (size, mode, uid, gid) and
dockyard.plugin.volume_records (the records); the system calls are the core's
(dockyard.plugin.mounts).
"""

from dockyard.plugin import DriverContext, DriverSpec, first_failure, hookimpl, need_filesystem, need_root


def _why_not_here() -> str | None:
    return first_failure(need_root(), need_filesystem("tmpfs"))


def _make(context: DriverContext):
    from .driver import TmpfsVolumeDriver

    return TmpfsVolumeDriver(context)


@hookimpl
def dockyard_volume_drivers():
    yield DriverSpec(kind="volume", name="tmpfs", factory=_make, priority=10,
                     probe=_why_not_here, description="in-memory volumes shared while they exist")
