"""Test kit for dockyard and for driver packages: fixtures and shared suites.

- `dockyard.plugin.testing.pytest_plugin` (loaded automatically through the pytest11 entry
  point): fixtures `plugin_manager`, `register_plugin`, `dockyard_daemon`.
- `dockyard.plugin.testing.packaging.PluginDistributionSuite`: checks a plugin distribution
  is installed, discoverable and honest about its drivers.
- `dockyard.plugin.testing.daemon`: start a real dockyardd on a temporary socket and data root.
- One conformance suite per driver kind; a driver passes it by subclassing and naming
  itself: `dockyard.plugin.testing.storage.StorageDriverSuite` (`driver_name = "btrfs"`; the
  module also has `LayerTar` and `tree_snapshot` for a driver's own tests),
  `dockyard.plugin.testing.runtime.RuntimeSuite`. The other kinds' suites arrive with the issue
  that builds their first driver.
"""
