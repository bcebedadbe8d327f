"""dockyard-volume-local: the `local` volume driver, Docker's default.

This module owns the plugin's face: the hook that offers the driver, its probe and the
factory. A volume is a directory under the driver's home, or, created with Docker's
`type`/`device`/`o` options, a filesystem mounted there while containers use it. The work
lives in driver.py (the contract's calls), options.py (what the options mean) and store.py
(the directories and records); the system calls are the core's (dockyard.plugin.mounts).
"""

from dockyard.plugin import DriverContext, DriverSpec, first_failure, hookimpl, need_root


def _why_not_here() -> str | None:
    # Plain volumes are only directories, but they must belong to root like the containers'
    # data, and device volumes are mounted: the driver runs where dockyardd runs, as root.
    return first_failure(need_root())


def _make(context: DriverContext):
    from .driver import LocalVolumeDriver

    return LocalVolumeDriver(context)


@hookimpl
def dockyard_volume_drivers():
    yield DriverSpec(kind="volume", name="local", factory=_make, priority=50,
                     probe=_why_not_here, description="directories under the data root, or mounts "
                                                      "made with type/device/o")
