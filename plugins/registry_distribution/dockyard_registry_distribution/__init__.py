"""dockyard-registry-distribution: pull and push through the OCI distribution API.

Registers the `distribution` registry client (priority 50): Docker Registry HTTP API v2
/ OCI distribution over `requests`, with Basic and Bearer-token auth, resumable blob
downloads and chunked or cross-repository uploads. The probe only checks that
`requests` can be found; it is imported when the factory runs.

Options (daemon.yaml `registry-opts`-style mapping, all optional): `connect-timeout`
and `read-timeout` in seconds, `upload-chunk-size` in bytes, `insecure-registries`
(comma-separated host:port reached over plain HTTP besides loopback ones).
"""

import importlib.util

from dockyard.plugin import DriverContext, DriverSpec, hookimpl


def _why_not_here() -> str | None:
    if importlib.util.find_spec("requests") is None:
        return "the Python package requests is not installed (pip install requests)"
    return None


def _make(context: DriverContext):
    from dockyard_registry_distribution.client import DEFAULT_UPLOAD_CHUNK, DistributionClient

    options = context.options
    try:
        return DistributionClient(
            connect_timeout=float(options.get("connect-timeout", 10)),
            read_timeout=float(options.get("read-timeout", 60)),
            upload_chunk_size=int(options.get("upload-chunk-size", DEFAULT_UPLOAD_CHUNK)),
            insecure_registries=[name.strip() for name in
                                 options.get("insecure-registries", "").split(",") if name.strip()],
        )
    except ValueError as exc:
        raise ValueError(f"invalid option for the distribution registry client: {exc}") from exc


@hookimpl
def dockyard_registry_drivers():
    yield DriverSpec(kind="registry", name="distribution", factory=_make, priority=50,
                     probe=_why_not_here,
                     description="OCI distribution / Docker registry v2 client")
