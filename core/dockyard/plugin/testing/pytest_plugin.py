"""Fixtures for tests of dockyard and of driver packages (pytest11 entry point `dockyard`).

    plugin_manager   a fresh, strict PluginManager with only the built-in drivers
    register_plugin  register a throwaway plugin module or object into it
    dockyard_daemon  a running dockyardd on a temporary socket and data root
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockyard.daemon.pluginmanager import PluginManager, PluginRecord
from dockyard.plugin.testing.daemon import DaemonProcess


@pytest.fixture
def plugin_manager() -> PluginManager:
    manager = PluginManager(strict=True)
    manager.load_builtins()
    return manager


@pytest.fixture
def register_plugin(plugin_manager: PluginManager) -> Callable[..., PluginRecord]:
    counter = iter(range(1_000_000))

    def register(plugin: object, distribution: str | None = None,
                 version: str = "0.0.test") -> PluginRecord:
        name = distribution or f"throwaway-plugin-{next(counter)}"
        return plugin_manager.register(plugin, distribution=name, version=version)

    return register


@pytest.fixture
def dockyard_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    # A short root: UNIX socket paths are limited to 107 bytes.
    root = Path(tmp_path_factory.mktemp("dy", numbered=True))
    daemon = DaemonProcess(root).start()
    try:
        yield daemon
    finally:
        for container in daemon.client().get_json("/containers/json", {"all": 1}):
            daemon.client().request("DELETE", f"/containers/{container['Id']}", {"force": 1}).read()
        daemon.teardown()
