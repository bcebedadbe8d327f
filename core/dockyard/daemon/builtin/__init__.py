"""Drivers small enough to ship inside the core, registered like any plugin: they import
only `dockyard.plugin`, as a third-party driver would."""
