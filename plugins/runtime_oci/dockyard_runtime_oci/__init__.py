"""dockyard-runtime-oci: runc and crun, driven through OCI bundles.

Registers `runc` (priority 50, the default) and `crun` (40). The probes already catch
what would fail at the first `run` on this host: a missing binary, and crun on a
hybrid cgroup host (it refuses v1 controllers beside a v2 hierarchy). Driving the
runtimes lands with issue #4 (containers); until then the probes say so.
"""

from pathlib import Path

from dockyard.plugin import DriverContext, DriverSpec, hookimpl
from dockyard.probes import first_failure, need_binary, need_root, unfinished

_UNFINISHED = unfinished("driving OCI runtimes", "issue #4 (containers)")


def hybrid_cgroups() -> bool:
    """v1 controllers mounted beside a v2 hierarchy (systemd's "hybrid" layout)."""
    root = Path("/sys/fs/cgroup")
    return (root / "unified").is_dir() and (root / "memory").is_dir()


def _crun_cgroups() -> str | None:
    if hybrid_cgroups():
        return ("crun refuses hybrid cgroup hosts (v1 controllers beside cgroup v2): "
                "use runc here, or boot with systemd.unified_cgroup_hierarchy=1")
    return None


def _why_not_runc() -> str | None:
    return first_failure(need_root(), need_binary("runc"), _UNFINISHED)


def _why_not_crun() -> str | None:
    return first_failure(need_root(), need_binary("crun"), _crun_cgroups(), _UNFINISHED)


def _make(context: DriverContext):
    raise RuntimeError(_UNFINISHED)


@hookimpl
def dockyard_runtime_drivers():
    yield DriverSpec(kind="runtime", name="runc", factory=_make, priority=50,
                     probe=_why_not_runc, description="runc, the OCI reference runtime")
    yield DriverSpec(kind="runtime", name="crun", factory=_make, priority=40,
                     probe=_why_not_crun, description="crun, a small OCI runtime in C")
