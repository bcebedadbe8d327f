"""dockyard-registry-distribution: pull and push through the OCI distribution API.

Registers the `distribution` registry client (priority 50): Docker Registry HTTP API v2
/ OCI distribution over `requests`, with Basic and Bearer-token auth, per-registry TLS,
resumable blob downloads, chunked or cross-repository uploads, tag lists and search.
The probe only checks that `requests` can be found; it is imported when the factory runs.

Options (daemon.yaml `registry-opts`-style mapping, all optional):

- `connect-timeout`, `read-timeout`: seconds (10, 60).
- `upload-chunk-size`: bytes per PATCH of a chunked upload; 0 (the default) sends each
  blob in one streamed PATCH, as Docker does.
- `insecure-registries`: comma-separated host, host:port or CIDR (10.0.0.0/8) entries
  reached over plain HTTP (or HTTPS without verification where they only speak TLS);
  loopback registries are plain HTTP unless they have a certs-dir entry.
- `certs-dir`: Docker's certs.d layout (`/etc/dockyard/certs.d`): for a registry
  "host:port", `<certs-dir>/<host:port>/*.crt` are CAs trusted for it besides the
  system's, and `<name>.cert` + `<name>.key` its client certificate. The combined CA
  bundles are written into the driver's home directory.
"""

import importlib.util

from dockyard.plugin import DriverContext, DriverSpec, hookimpl


def _why_not_here() -> str | None:
    if importlib.util.find_spec("requests") is None:
        return "the Python package requests is not installed (pip install requests)"
    return None


def _make(context: DriverContext):
    from dockyard_registry_distribution.client import (
        DEFAULT_CERTS_DIR,
        DEFAULT_UPLOAD_CHUNK,
        DistributionClient,
    )

    options = context.options
    try:
        return DistributionClient(
            connect_timeout=float(options.get("connect-timeout", 10)),
            read_timeout=float(options.get("read-timeout", 60)),
            upload_chunk_size=int(options.get("upload-chunk-size", DEFAULT_UPLOAD_CHUNK)),
            insecure_registries=[name.strip() for name in
                                 options.get("insecure-registries", "").split(",") if name.strip()],
            certs_dir=options.get("certs-dir") or DEFAULT_CERTS_DIR,
            home=context.home,
        )
    except ValueError as exc:
        raise ValueError(f"invalid option for the distribution registry client: {exc}") from exc


@hookimpl
def dockyard_registry_drivers():
    yield DriverSpec(kind="registry", name="distribution", factory=_make, priority=50,
                     probe=_why_not_here,
                     description="OCI distribution / Docker registry v2 client")
