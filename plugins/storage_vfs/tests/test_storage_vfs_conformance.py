"""The vfs driver passes the storage conformance suite."""

from dockyard.plugin.testing.storage import StorageDriverSuite


class TestVfs(StorageDriverSuite):
    driver_name = "vfs"
    cheap_writable_layers = False  # every vfs layer is a full copy of its parent
