"""The local driver passes the volume conformance suite: plain directories, binds of a host
directory, and tmpfs mounts made with Docker's type/device/o options."""

from pathlib import Path

import pytest
from dockyard.plugin.testing.volume import VolumeDriverSuite

pytestmark = pytest.mark.root


class TestLocalPlain(VolumeDriverSuite):
    driver_name = "local"


class TestLocalBind(VolumeDriverSuite):
    driver_name = "local"

    def volume_options(self, scratch: Path) -> dict[str, str]:
        return {"type": "none", "device": str(scratch), "o": "bind"}


class TestLocalTmpfsDevice(VolumeDriverSuite):
    driver_name = "local"
    keeps_data_when_unused = False  # a fresh tmpfs at every first mount, as with Docker's local driver

    def volume_options(self, scratch: Path) -> dict[str, str]:
        return {"type": "tmpfs", "device": "tmpfs", "o": "size=8m,uid=0"}
