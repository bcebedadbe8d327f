"""Plugin discovery and driver selection: the only place that knows where drivers come from.

Built-in drivers register first, exactly as third-party ones do; then every entry point
of the group `dockyard` is loaded one at a time, so one broken package is recorded with
its error instead of taking the others down (strict mode re-raises, for tests and CI).
Two providers of one kind+name is a conflict that names both distributions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType

import pluggy

from dockyard import __version__
from dockyard.plugin import (
    DRIVER_KINDS,
    ENTRY_POINT_GROUP,
    PROJECT,
    DriverSpec,
    hookspecs,
    normalize_driver_name,
)

log = logging.getLogger(__name__)

CORE_DISTRIBUTION = "dockyard"

# Where each driver of this project lives, for "pip install ..." hints.
KNOWN_PROVIDERS: dict[str, dict[str, str]] = {
    "storage": {"overlay": "dockyard-storage-overlay", "vfs": "dockyard-storage-vfs"},
    "network": {
        "bridge": "dockyard-net-bridge",
        "macvlan": "dockyard-net-macvlan",
        "overlay": "dockyard-net-overlay",
    },
    "volume": {"local": "dockyard-volume-local", "tmpfs": "dockyard-volume-tmpfs"},
    "registry": {"distribution": "dockyard-registry-distribution"},
    "runtime": {"runc": "dockyard-runtime-oci", "crun": "dockyard-runtime-oci"},
    "store": {"etcd": "dockyard-store-etcd"},
}

_HOOK_KINDS = {f"dockyard_{kind}_drivers": kind for kind in DRIVER_KINDS}


class PluginError(Exception):
    """A plugin problem the user has to fix; the message says how."""


class DriverNotFound(PluginError):
    pass


class DriverUnsupported(PluginError):
    pass


class DriverConflict(PluginError):
    pass


@dataclass
class PluginRecord:
    """One distribution that offered drivers, and what became of it."""

    distribution: str
    version: str
    module: str
    builtin: bool = False
    error: str | None = None
    specs: list[DriverSpec] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "failed" if self.error else "loaded"


def install_hint(kind: str, name: str | None = None) -> str:
    providers = KNOWN_PROVIDERS.get(kind, {})
    if name is not None:
        dist = providers.get(name) or f"dockyard-{kind}-{name}"
        return f"pip install {dist}"
    dists = sorted(set(providers.values()))
    return "pip install " + " or ".join(dists) if dists else ""


class PluginManager:
    """Holds every plugin record and every DriverSpec, indexed by kind and name."""

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self._pluggy = pluggy.PluginManager(PROJECT)
        self._pluggy.add_hookspecs(hookspecs)
        self.records: list[PluginRecord] = []
        self._specs: dict[tuple[str, str], tuple[DriverSpec, PluginRecord]] = {}
        self._probe_results: dict[tuple[str, str], str | None] = {}
        self.conflicts: list[str] = []

    # -- loading -------------------------------------------------------------------

    def load_builtins(self) -> None:
        from dockyard.daemon.builtin import networks

        self.register(networks, distribution=CORE_DISTRIBUTION, version=__version__, builtin=True)

    def load_entry_points(self) -> None:
        from importlib.metadata import entry_points

        seen: set[str] = set()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist
            dist_name = dist.name if dist is not None else ep.name
            if dist_name in seen:  # the same distribution found twice on sys.path
                continue
            seen.add(dist_name)
            version = dist.version if dist is not None else "unknown"
            try:
                module = ep.load()
            except Exception as exc:
                self._record_failure(dist_name, version, ep.value, exc)
                continue
            self.register(module, distribution=dist_name, version=version)

    def load_all(self) -> PluginManager:
        self.load_builtins()
        self.load_entry_points()
        return self

    def register(
        self,
        plugin: ModuleType | object,
        distribution: str,
        version: str = "0",
        builtin: bool = False,
    ) -> PluginRecord:
        """Register a module or object carrying hookimpls; collect and check its specs."""
        module_name = getattr(plugin, "__name__", type(plugin).__name__)
        record = PluginRecord(distribution, version, module_name, builtin=builtin)
        try:
            self._pluggy.register(plugin, name=distribution)
            specs = list(self._collect_specs(plugin))
        except Exception as exc:
            if self._pluggy.is_registered(plugin):
                self._pluggy.unregister(plugin)
            return self._record_failure(distribution, version, module_name, exc)
        self.records.append(record)
        for spec in specs:
            self._add_spec(spec, record)
        return record

    def _collect_specs(self, plugin: object) -> Iterable[DriverSpec]:
        for caller in self._pluggy.get_hookcallers(plugin) or ():
            kind = _HOOK_KINDS.get(caller.name)
            if kind is None:
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                for spec in impl.function() or ():
                    if not isinstance(spec, DriverSpec):
                        raise TypeError(f"{caller.name} returned {spec!r}, not a DriverSpec")
                    if spec.kind != kind:
                        raise TypeError(
                            f"{caller.name} returned a {spec.kind} driver {spec.name!r}; "
                            f"return it from dockyard_{spec.kind}_drivers instead"
                        )
                    yield spec

    def _add_spec(self, spec: DriverSpec, record: PluginRecord) -> None:
        key = (spec.kind, spec.name)
        if key in self._specs:
            other = self._specs[key][1]
            message = (
                f"{spec.kind} driver '{spec.name}' is provided by both {other.distribution} "
                f"and {record.distribution}; uninstall one of them"
            )
            self.conflicts.append(message)
            log.error(message)
            return
        record.specs.append(spec)
        self._specs[key] = (spec, record)

    def _record_failure(self, dist: str, version: str, module: str, exc: BaseException) -> PluginRecord:
        error = f"{type(exc).__name__}: {exc}"
        record = PluginRecord(dist, version, module, error=error)
        self.records.append(record)
        if self.strict:
            raise PluginError(f"plugin {dist} {version} failed to load: {error}") from exc
        log.warning("plugin %s %s failed to load: %s", dist, version, error)
        return record

    # -- queries -------------------------------------------------------------------

    def specs(self, kind: str) -> list[DriverSpec]:
        """Specs of one kind, highest priority first (name breaks ties)."""
        found = [spec for (k, _), (spec, _) in self._specs.items() if k == kind]
        return sorted(found, key=lambda s: (-s.priority, s.name))

    def provider(self, spec: DriverSpec) -> PluginRecord:
        return self._specs[(spec.kind, spec.name)][1]

    def why_unsupported(self, spec: DriverSpec) -> str | None:
        key = (spec.kind, spec.name)
        if key not in self._probe_results:
            self._probe_results[key] = spec.why_unsupported()
        return self._probe_results[key]

    def supported(self, kind: str) -> list[DriverSpec]:
        return [spec for spec in self.specs(kind) if self.why_unsupported(spec) is None]

    def find(self, kind: str, name: str) -> DriverSpec:
        name = normalize_driver_name(name)
        entry = self._specs.get((kind, name))
        if entry is None:
            installed = ", ".join(spec.name for spec in self.specs(kind)) or "none"
            raise DriverNotFound(
                f"{kind} driver '{name}' not found; installed: {installed} "
                f"({install_hint(kind, name)}?)"
            )
        return entry[0]

    def select(self, kind: str, requested: str | None = None) -> DriverSpec | None:
        """The driver to use for `kind`: the requested one (it must work here), else the
        supported one with the highest priority, else None."""
        self.raise_for_conflicts()
        if requested:
            spec = self.find(kind, requested)
            reason = self.why_unsupported(spec)
            if reason:
                raise DriverUnsupported(f"{kind} driver '{spec.name}' cannot be used here: {reason}")
            return spec
        supported = self.supported(kind)
        return supported[0] if supported else None

    def report(self, active: dict[str, set[str]] | None = None) -> list[dict]:
        """Every distribution with the status of each of its drivers, as JSON-ready dicts
        (the shape of `dockyard plugins --json` and `GET /dockyard/plugins`).

        A driver is "active" when its name is in `active[kind]`, "unsupported" with a
        reason when its probe fails, and "available" otherwise."""
        active = active or {}
        report = []
        for record in self.records:
            drivers = []
            for spec in record.specs:
                reason = self.why_unsupported(spec)
                if reason:
                    status = "unsupported"
                elif spec.name in active.get(spec.kind, ()):
                    status = "active"
                else:
                    status = "available"
                drivers.append({"Kind": spec.kind, "Name": spec.name,
                                "Description": spec.description, "Priority": spec.priority,
                                "Status": status, "Reason": reason})
            report.append({"Distribution": record.distribution, "Version": record.version,
                           "Module": record.module, "Builtin": record.builtin,
                           "Status": record.status, "Error": record.error,
                           "Drivers": drivers})
        for conflict in self.conflicts:
            report.append({"Distribution": "", "Version": "", "Module": "", "Builtin": False,
                           "Status": "conflict", "Error": conflict, "Drivers": []})
        return report

    def raise_for_conflicts(self) -> None:
        if self.conflicts:
            raise DriverConflict("; ".join(self.conflicts))

