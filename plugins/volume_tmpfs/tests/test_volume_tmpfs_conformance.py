"""The tmpfs driver passes the volume conformance suite."""

from pathlib import Path

import pytest
from dockyard.plugin.testing.volume import VolumeDriverSuite

pytestmark = pytest.mark.root


class TestTmpfs(VolumeDriverSuite):
    driver_name = "tmpfs"

    def volume_options(self, scratch: Path) -> dict[str, str]:
        return {"size": "8m", "mode": "1777"}
