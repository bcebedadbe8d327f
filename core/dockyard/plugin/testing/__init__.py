"""The conformance kit, for dockyard and for driver packages: fixtures and shared suites.

- `pytest_plugin` (loaded automatically through the pytest11 entry point): fixtures
  `plugin_manager`, `register_plugin`, `dockyard_daemon`.
- `packaging.PluginDistributionSuite`: checks a plugin distribution is installed,
  discoverable and honest about its drivers.
- `daemon`: start a real dockyardd on a temporary socket and data root.
- One conformance suite per driver kind; a driver passes it by subclassing and naming
  itself: `storage.StorageDriverSuite` (`driver_name = "btrfs"`; the module also has
  `LayerTar` and `tree_snapshot` for a driver's own tests), `network.NetworkDriverSuite`,
  `volume.VolumeDriverSuite`, `registry.RegistryClientSuite`, `runtime.RuntimeSuite`.

Part of the plugin surface: driver packages import it from their tests. It needs pytest.
"""
