"""Test kit for dockyard and for driver packages: fixtures and shared suites.

- `dockyard.testing.pytest_plugin` (loaded automatically through the pytest11 entry
  point): fixtures `plugin_manager`, `register_plugin`, `dockyard_daemon`.
- `dockyard.testing.packaging.PluginDistributionSuite`: checks a plugin distribution
  is installed, discoverable and honest about its drivers.
- `dockyard.testing.daemon`: start a real dockyardd on a temporary socket and data root.
- One conformance suite per driver kind; a driver passes it by subclassing and naming
  itself: `dockyard.testing.storage.StorageDriverSuite` (`driver_name = "btrfs"`; the
  module also has `LayerTar` and `tree_snapshot` for a driver's own tests),
  `dockyard.testing.runtime.RuntimeSuite`. The other kinds' suites arrive with the issue
  that builds their first driver.
"""
