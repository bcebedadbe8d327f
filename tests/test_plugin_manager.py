"""The plugin contract: descriptors, registration, conflicts, failures and selection."""

from __future__ import annotations

import types

import pytest
from dockyard.daemon.pluginmanager import (
    DriverConflict,
    DriverNotFound,
    DriverUnsupported,
    PluginError,
    PluginManager,
)
from dockyard.plugin import DriverSpec, hookimpl


def plugin_module(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def storage_plugin(name: str, *specs: DriverSpec) -> types.ModuleType:
    return plugin_module(name, dockyard_storage_drivers=lambda: list(specs))


def spec(name: str, priority: int = 0, reason: str | None = None, kind: str = "storage"):
    return DriverSpec(kind=kind, name=name, factory=lambda ctx: object(), priority=priority,
                      probe=lambda: reason)


def test_driver_spec_normalizes_names_and_rejects_bad_ones():
    assert spec("My_Driver").name == "my-driver"
    with pytest.raises(ValueError, match="kind 'disk'"):
        DriverSpec(kind="disk", name="x", factory=lambda ctx: None)
    with pytest.raises(ValueError, match="lower-case"):
        spec("no spaces allowed")


def test_builtins_register_like_plugins(plugin_manager):
    names = {s.name for s in plugin_manager.specs("network")}
    assert names == {"host", "none"}
    record = plugin_manager.provider(plugin_manager.find("network", "host"))
    assert record.distribution == "dockyard" and record.builtin


def test_specs_are_ordered_by_priority(plugin_manager, register_plugin):
    register_plugin(storage_plugin("a", spec("slow", 10), spec("fast", 50)))
    assert [s.name for s in plugin_manager.specs("storage")] == ["fast", "slow"]


def test_auto_selection_skips_drivers_whose_probe_fails(plugin_manager, register_plugin):
    register_plugin(storage_plugin("a", spec("best", 90, reason="no kernel support"),
                                   spec("fallback", 10)))
    assert plugin_manager.select("storage").name == "fallback"


def test_auto_selection_with_nothing_usable_returns_none(plugin_manager, register_plugin):
    register_plugin(storage_plugin("a", spec("only", 10, reason="no kernel support")))
    assert plugin_manager.select("storage") is None
    assert plugin_manager.select("registry") is None


def test_requested_driver_must_exist_and_work(plugin_manager, register_plugin):
    register_plugin(storage_plugin("a", spec("vfs", 10), spec("broken", 5, reason="no way")))
    assert plugin_manager.select("storage", "VFS").name == "vfs"
    with pytest.raises(DriverNotFound) as missing:
        plugin_manager.select("storage", "zfs")
    assert str(missing.value) == (
        "storage driver 'zfs' not found; installed: vfs, broken "
        "(pip install dockyard-storage-zfs?)"
    )
    with pytest.raises(DriverUnsupported, match="storage driver 'broken' cannot be used here: no way"):
        plugin_manager.select("storage", "broken")


def test_two_providers_of_one_driver_is_a_conflict_naming_both(plugin_manager, register_plugin):
    register_plugin(storage_plugin("a", spec("vfs")), distribution="dockyard-storage-vfs")
    register_plugin(storage_plugin("b", spec("vfs")), distribution="acme-vfs")
    with pytest.raises(DriverConflict) as conflict:
        plugin_manager.select("storage")
    message = str(conflict.value)
    assert "dockyard-storage-vfs" in message and "acme-vfs" in message
    assert "uninstall one of them" in message
    assert any(entry["Status"] == "conflict" for entry in plugin_manager.report())


def test_a_hook_returning_the_wrong_kind_fails_that_plugin_only(register_plugin):
    manager = PluginManager(strict=False)
    bad = storage_plugin("bad", spec("netty", kind="network"))
    record = manager.register(bad, distribution="bad-dist")
    assert record.status == "failed"
    assert "return it from dockyard_network_drivers" in record.error
    good = manager.register(storage_plugin("good", spec("vfs")), distribution="good-dist")
    assert good.status == "loaded" and manager.find("storage", "vfs")


def test_strict_mode_reraises_plugin_failures():
    manager = PluginManager(strict=True)

    def explode():
        raise RuntimeError("boom")

    with pytest.raises(PluginError, match="plugin exploding 0 failed to load: RuntimeError: boom"):
        manager.register(plugin_module("x", dockyard_storage_drivers=explode),
                         distribution="exploding", version="0")


def test_a_crashing_probe_counts_as_unsupported(plugin_manager, register_plugin):
    def probe():
        raise OSError("cannot read /proc")

    register_plugin(storage_plugin("a", DriverSpec(kind="storage", name="x",
                                                   factory=lambda ctx: None, probe=probe)))
    reason = plugin_manager.why_unsupported(plugin_manager.find("storage", "x"))
    assert reason == "probe failed: OSError: cannot read /proc"


def test_report_gives_each_driver_a_status(plugin_manager, register_plugin):
    register_plugin(storage_plugin("a", spec("on", 10), spec("spare", 5), spec("off", 1, "nope")),
                    distribution="three")
    report = {d["Distribution"]: d for d in plugin_manager.report({"storage": {"on"}})}
    statuses = {d["Name"]: (d["Status"], d["Reason"]) for d in report["three"]["Drivers"]}
    assert statuses == {"on": ("active", None), "spare": ("available", None),
                        "off": ("unsupported", "nope")}
