"""The overlay driver passes the storage conformance suite."""

from dockyard.plugin.testing.storage import StorageDriverSuite


class TestOverlay(StorageDriverSuite):
    driver_name = "overlay"
