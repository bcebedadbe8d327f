"""dockyard-runtime-oci: runc and crun, driven through OCI bundles and their command line.

Registers `runc` (priority 50, the default) and `crun` (40), both served by
`dockyard_runtime_oci.driver.OciRuntime` with state under `<exec_root>/runtime/<name>`.
The probes catch what would fail at the first `run` on this host: not being root, a
missing binary, and crun on a hybrid cgroup host (it refuses v1 controllers beside a
v2 hierarchy).
"""

import shutil
from pathlib import Path

from dockyard.plugin import DriverContext, DriverSpec, first_failure, hookimpl, need_binary, need_root


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
    return first_failure(need_root(), need_binary("runc"))


def _why_not_crun() -> str | None:
    return first_failure(need_root(), need_binary("crun"), _crun_cgroups())


def _make(context: DriverContext):
    from dockyard.plugin import RuntimeFailure

    from dockyard_runtime_oci.driver import OciRuntime

    # Resolved once: a PATH change in the daemon later must not switch binaries under
    # running containers.
    binary = shutil.which(context.name)
    if binary is None:
        raise RuntimeFailure(f"{context.name} not found on PATH (apt-get install {context.name})")
    runtime_dir = context.exec_root / "runtime"
    return OciRuntime(context.name, binary, state_root=runtime_dir / context.name,
                      log_dir=runtime_dir / f"{context.name}-logs")


@hookimpl
def dockyard_runtime_drivers():
    yield DriverSpec(kind="runtime", name="runc", factory=_make, priority=50,
                     probe=_why_not_runc, description="runc, the OCI reference runtime")
    yield DriverSpec(kind="runtime", name="crun", factory=_make, priority=40,
                     probe=_why_not_crun, description="crun, a small OCI runtime in C")
