"""The core distribution on its own (tox env `core`): it runs and says what is missing."""

from __future__ import annotations

import json
from importlib.metadata import entry_points

import pytest
from conftest import dockyard_cli
from dockyard.plugin import ENTRY_POINT_GROUP

pytestmark = pytest.mark.core_alone


@pytest.fixture(autouse=True)
def only_the_core_is_installed():
    installed = [ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)]
    if installed:
        pytest.skip(f"plugins are installed here ({', '.join(installed)}); run: tox -e core")


def test_plugins_lists_no_plugin_drivers(dockyard_daemon):
    report = json.loads(dockyard_cli("plugins", "--json", host=dockyard_daemon.host).stdout)
    assert [d["Distribution"] for d in report] == ["dockyard"]
    assert {d["Name"] for d in report[0]["Drivers"]} == {"host", "none"}


def test_info_names_each_missing_kind_and_its_distribution(dockyard_daemon):
    warnings = dockyard_daemon.client().get_json("/info")["Warnings"]
    assert warnings == [
        "WARNING: no storage driver installed: "
        "pip install dockyard-storage-overlay or dockyard-storage-vfs",
        "WARNING: no network driver 'bridge' installed: pip install dockyard-net-bridge",
        "WARNING: no volume driver 'local' installed: pip install dockyard-volume-local",
        "WARNING: no registry driver installed: pip install dockyard-registry-distribution",
        "WARNING: no runtime driver installed: pip install dockyard-runtime-oci",
    ]
