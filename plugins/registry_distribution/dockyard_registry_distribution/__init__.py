"""dockyard-registry-distribution: pull and push through the OCI distribution API.

The client lands with issue #7 (registries); until then its probe says so.
"""

from dockyard.plugin import DriverContext, DriverSpec, hookimpl
from dockyard.probes import unfinished

_UNFINISHED = unfinished("the distribution registry client", "issue #7 (registries)")


def _why_not_here() -> str | None:
    return _UNFINISHED


def _make(context: DriverContext):
    raise RuntimeError(_UNFINISHED)


@hookimpl
def dockyard_registry_drivers():
    yield DriverSpec(kind="registry", name="distribution", factory=_make, priority=50,
                     probe=_why_not_here,
                     description="OCI distribution / Docker registry v2 client")
