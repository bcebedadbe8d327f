"""Test kit for dockyard and for driver packages: fixtures and shared suites.

- `dockyard.testing.pytest_plugin` (loaded automatically through the pytest11 entry
  point): fixtures `plugin_manager`, `register_plugin`, `dockyard_daemon`.
- `dockyard.testing.packaging.PluginDistributionSuite`: checks a plugin distribution
  is installed, discoverable and honest about its drivers.
- `dockyard.testing.daemon`: start a real dockyardd on a temporary socket and data root.
- One conformance suite per driver kind (`dockyard.testing.storage`, ...) arrives with
  the issue that builds that kind's first driver; a driver passes it by subclassing.
"""
