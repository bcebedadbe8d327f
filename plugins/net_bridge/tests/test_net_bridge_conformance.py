"""The bridge driver passes the network driver conformance suite (skipped, with its probe's
reason, where it cannot run: without root, bridge support or nft)."""

import pytest
from dockyard.plugin.testing.network import NetworkDriverSuite

pytestmark = pytest.mark.root


class TestBridge(NetworkDriverSuite):
    driver_name = "bridge"
