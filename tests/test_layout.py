"""The layout's rules, checked on the import graph: who may import what.

Each package's docstring says who may import it; these tests read every import
statement of the core and the plugins (function-level ones included) and fail on one
that crosses a line the docstrings draw. No root needed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORE = REPO / "core" / "dockyard"
MANAGED = ("images", "containers", "networks", "volumes", "registries", "builder", "monitor")


def module_name(path: Path, package_root: Path) -> str:
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, package_root: Path) -> set[str]:
    """Every module `path` imports, absolute, relative imports resolved; `from X import y`
    counts as X.y when X.y is itself a module of the package."""
    name = module_name(path, package_root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            for alias in node.names:
                candidate = f"{module}.{alias.name}"
                place = package_root.joinpath(*candidate.split(".")[1:])
                if place.is_dir() or place.with_suffix(".py").exists():
                    found.add(candidate)
    return found


def core_modules() -> dict[str, set[str]]:
    return {module_name(path, CORE): imports_of(path, CORE) for path in CORE.rglob("*.py")}


def within(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def violations(rule) -> list[str]:
    return sorted(f"{module} imports {target}" for module, targets in core_modules().items()
                  for target in targets if target.startswith("dockyard") and rule(module, target))


def test_the_top_of_the_package_holds_only_its_face_and_the_errors():
    loose = sorted(p.name for p in CORE.glob("*.py"))
    assert loose == ["__init__.py", "errors.py"]


def test_every_module_says_what_it_owns():
    missing = [str(path.relative_to(REPO)) for path in CORE.rglob("*.py")
               if path.name != "__main__.py" and not path.name.endswith(("_pb2.py", "_pb2_grpc.py"))
               and ast.get_docstring(ast.parse(path.read_text())) is None]
    assert missing == []


def test_the_core_never_imports_a_concrete_driver():
    assert violations(lambda module, target: target.startswith("dockyard_")) == []


def test_the_plugin_surface_stands_alone():
    """A driver package gets all it needs from dockyard.plugin; the surface itself must not
    reach into the daemon or a manager, or a driver would drag them in. The conformance
    kit is the exception: it drives real daemons and plugin managers."""
    def crosses(module: str, target: str) -> bool:
        return within(module, "dockyard.plugin") and not within(module, "dockyard.plugin.testing") \
            and not within(target, "dockyard.plugin") and target not in ("dockyard", "dockyard.errors")
    assert violations(crosses) == []


def test_the_api_does_http_only():
    kernel = ("dockyard.plugin.mounts", "dockyard.plugin.netns", "dockyard.plugin.archive")
    assert violations(lambda module, target: within(module, "dockyard.api") and within(target, *kernel)) == []


def test_the_cli_is_a_client_of_the_api():
    """No manager, engine or API module in the CLI: what both sides parse is in formats.
    `dockyard plugins --local` reads this machine's installed distributions without a
    daemon, so it alone may use the plugin manager."""
    server_side = ("dockyard.api", "dockyard.daemon", *(f"dockyard.{m}" for m in MANAGED))

    def crosses(module: str, target: str) -> bool:
        if not within(module, "dockyard.cli", "dockyard.client") or not within(target, *server_side):
            return False
        return (module, target) != ("dockyard.cli.system", "dockyard.daemon.pluginmanager")
    assert violations(crosses) == []


def test_formats_are_pure_and_shared():
    allowed = ("dockyard.formats", "dockyard.errors", "dockyard.plugin.contracts")
    assert violations(lambda module, target: within(module, "dockyard.formats")
                      and target != "dockyard" and not within(target, *allowed)) == []


def test_managers_reach_the_daemon_only_for_events_and_host_facts():
    def crosses(module: str, target: str) -> bool:
        return within(module, *(f"dockyard.{m}" for m in MANAGED)) and within(target, "dockyard.daemon") \
            and target not in ("dockyard.daemon", "dockyard.daemon.events", "dockyard.daemon.hostinfo")
    assert violations(crosses) == []


def test_the_monitor_process_imports_nothing_of_the_daemon():
    """Every running container pays for what its monitor imports."""
    def crosses(module: str, target: str) -> bool:
        return within(module, "dockyard.monitor") and module != "dockyard.monitor.client" \
            and not within(target, "dockyard.monitor") and target != "dockyard"
    assert violations(crosses) == []


def driver_packages() -> list[Path]:
    return sorted([*REPO.glob("plugins/*/dockyard_*"), *REPO.glob("tests/plugins/*/dockyard_*")])


@pytest.mark.parametrize("package", driver_packages(), ids=lambda p: p.name)
def test_driver_packages_import_only_the_plugin_surface(package):
    outside = sorted(f"{path.relative_to(REPO)} imports {target}" for path in package.rglob("*.py")
                     for target in imports_of(path, package)
                     if target.startswith("dockyard.") or target == "dockyard"
                     if not within(target, "dockyard.plugin") or within(target, "dockyard.plugin.testing"))
    assert outside == []


def test_the_example_plugin_needs_nothing_but_the_face():
    example = REPO / "tests/plugins/example_netplugin/dockyard_example_netplugin"
    used = {target for path in example.rglob("*.py") for target in imports_of(path, example)
            if target.startswith("dockyard.")}
    assert used == {"dockyard.plugin"}


def run_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          timeout=60).stdout.strip()


def test_the_face_loads_what_is_used_and_nothing_before():
    loaded = run_python(
        "import sys, dockyard.plugin as p\n"
        "before = sorted(m for m in sys.modules if m.startswith(('dockyard.', 'pluggy')))\n"
        "p.NetworkSpec\n"
        "print(before, 'pluggy' in sys.modules, 'dockyard.plugin.contracts.network' in sys.modules)")
    assert loaded == "['dockyard.plugin'] False True"


def test_every_name_the_face_exports_resolves():
    import dockyard.plugin as face

    for name in face.__all__:
        if name != "testing":  # needs pytest, which is here anyway; checked by the plugins' suites
            assert getattr(face, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'Nonsense'"):
        face.Nonsense  # noqa: B018
