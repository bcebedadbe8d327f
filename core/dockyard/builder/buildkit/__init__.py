"""BuildKit's API in front of the builder: what Compose v2 and buildx talk to.

They upgrade two HTTP requests to HTTP/2 cleartext on the daemon's socket: `POST /grpc`
carries BuildKit's Control and gateway (LLBBridge) services, which the daemon serves;
`POST /session` carries the client's services (FileSync for the build context, Auth,
Secrets), which the daemon calls. Both connections are handed to grpcio as they are
(grpcio does HTTP/2 and gRPC; `splice` joins the sockets), and the Dockerfile frontend
(`dockerfile.v0`) is the daemon's own builder. The messages come from BuildKit's
published .proto files, compiled at build time into `wire` (see setup.py).

The API layer hands connections here; the engine makes the front door when grpcio and
the generated modules are importable (`unavailable_reason` says why not otherwise).
"""

from __future__ import annotations


def unavailable_reason() -> str | None:
    """None when the front door can be served; otherwise what to install. Cheap: it looks
    for the modules without importing them (grpcio takes ~0.1 s, which daemon start-up
    should not wait for); `load_failure` is the full check."""
    import importlib.util
    from pathlib import Path

    missing = [name for name in ("grpc", "google.protobuf", "google.rpc")
               if importlib.util.find_spec(name) is None]
    if missing:
        return (f"BuildKit's API needs {', '.join(missing)}: pip install 'dockyard[buildkit]'; until then "
                "Compose and buildx must build with DOCKER_BUILDKIT=0")
    if not (Path(__file__).parent / "wire" / "control_pb2_grpc.py").exists():
        return ("BuildKit's protocol modules were not generated when dockyard was built (grpcio-tools "
                "missing at build time): reinstall dockyard with grpcio-tools available")
    return None


def load_failure() -> str | None:
    """None when the generated modules load with the installed grpcio and protobuf."""
    try:
        from dockyard.builder.buildkit.wire import control_pb2_grpc, gateway_pb2_grpc  # noqa: F401
    except Exception as exc:  # the generated modules refuse a grpcio or protobuf older than made them
        return (f"BuildKit's protocol modules do not load ({exc}): install grpcio and protobuf at least "
                "as new as the grpcio-tools dockyard was built with")
    return None
