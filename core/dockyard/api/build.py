"""The build route: `POST /build`, Docker's classic builder API (what `DOCKER_BUILDKIT=0
docker build` and docker-py's `images.build` call).

HTTP only: the query is read into BuildOptions (tolerating the empty `[]`, `{}` and
`null` values clients send), the context tar is unpacked into a private directory,
and the builder's messages are streamed back.
"""

from __future__ import annotations

import base64
import binascii
import json
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from dockyard.api.images import progress_stream
from dockyard.api.router import Router
from dockyard.api.server import HijackResponse, Request, Response, StreamResponse, json_response
from dockyard.builder.builder import BuildOptions
from dockyard.builder.context import extract_context
from dockyard.daemon.engine import Engine
from dockyard.errors import InvalidParameter, Unavailable
from dockyard.formats.registry_auth import credentials_from_auth_config, registry_host


def _json_arg(request: Request, name: str, kind: type):
    text = request.arg(name)
    if text in (None, "", "null"):
        return kind()
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidParameter(f"invalid {name}: {text!r} is not JSON") from None
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise InvalidParameter(f"invalid {name}: expected a JSON {kind.__name__}")
    return value


def _registry_config(header: str | None) -> dict:
    """X-Registry-Config: base64url JSON of {registry: AuthConfig}; undecodable means none."""
    if not header:
        return {}
    try:
        configs = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(configs, dict):
        return {}
    credentials = {}
    for server, config in configs.items():
        found = credentials_from_auth_config(config)
        if found is not None:
            credentials[registry_host(str(server))] = found
    return credentials


def register(router: Router, engine: Engine) -> None:
    def front_door(request: Request):
        if (request.headers.get("Upgrade") or "").lower() != "h2c":
            raise InvalidParameter(f"{request.path} is BuildKit's gRPC API: the request must upgrade the "
                                   "connection to HTTP/2 (Connection: Upgrade, Upgrade: h2c)")
        door = engine.buildkit_front_door()
        if door is None:
            raise Unavailable(engine.buildkit_unavailable or "BuildKit's API is not served by this daemon")
        return door

    @router.post("/grpc")
    def grpc_connection(request: Request) -> HijackResponse:
        """BuildKit's Control and gateway services, over HTTP/2 on the upgraded connection."""
        door = front_door(request)
        return HijackResponse(door.serve_grpc, content_type="application/grpc", protocol="h2c")

    @router.post("/session")
    def session_connection(request: Request) -> HijackResponse:
        """The client's services (FileSync, Auth, Secrets), which the daemon calls."""
        door = front_door(request)
        if not request.headers.get("X-Docker-Expose-Session-Uuid"):
            raise InvalidParameter("a session needs its X-Docker-Expose-Session-Uuid header")

        def session(connection, reader) -> None:
            door.serve_session(connection, reader, request.headers)
        return HijackResponse(session, content_type="application/grpc", protocol="h2c")

    @router.post("/build/prune")
    def prune_build_cache(request: Request) -> Response:
        """`docker builder prune`: RUN --mount cache directories no step is using."""
        if engine.builder is None:
            return json_response({"CachesDeleted": None, "SpaceReclaimed": 0})
        removed, freed = engine.builder.cache_mounts.prune()
        return json_response({"CachesDeleted": removed or None, "SpaceReclaimed": freed})

    @router.post("/build")
    def build(request: Request) -> StreamResponse:
        builder = engine.builder
        if builder is None:
            raise Unavailable("building needs a storage driver and a runtime: "
                              + "; ".join(engine.warnings))
        if request.arg("remote"):
            raise InvalidParameter("building from a remote context (a git repository or URL) is not "
                                   "supported: send the context as a tar")
        if request.arg("version") == "2":
            raise InvalidParameter("BuildKit is not supported by dockyard: build with the classic "
                                   "builder (DOCKER_BUILDKIT=0)")
        build_args = _json_arg(request, "buildargs", dict)
        options = BuildOptions(
            tags=[t for t in request.args("t") if t],
            dockerfile=request.arg("dockerfile") or "",
            target=request.arg("target") or "",
            build_args={str(k): (None if v is None else str(v)) for k, v in build_args.items()},
            labels={str(k): str(v) for k, v in _json_arg(request, "labels", dict).items()},
            no_cache=request.flag("nocache"),
            pull=request.flag("pull"),
            quiet=request.flag("q"),
            remove=request.flag("rm", True),
            force_remove=request.flag("forcerm"),
            network_mode=request.arg("networkmode") or "",
            cache_from=[str(n) for n in _json_arg(request, "cachefrom", list)],
            platform=request.arg("platform") or "",
            credentials=_registry_config(request.headers.get("X-Registry-Config")),
            # the docker CLI joins them with commas, docker-py repeats the parameter
            extra_hosts=[host for value in request.args("extrahosts") for host in value.split(",") if host],
        )
        context = Path(tempfile.mkdtemp(prefix="context-", dir=engine.images.tmp_dir))
        try:
            extract_context(request.body, context)
            messages = builder.build(context, options)
        except BaseException:
            _remove_soon(context)
            raise
        return progress_stream(_removing(context, messages))


def _removing(context: Path, messages: Iterator[dict]) -> Iterator[dict]:
    try:
        yield from messages
    finally:
        _remove_soon(context)


def _remove_soon(context: Path) -> None:
    """Delete the context after the answer: renamed at once (so a finished build leaves
    no context directory), deleted on a thread. What a crash interrupts, the next start's
    image-store recovery deletes with the rest of its tmp directory."""
    doomed = context.with_name(".gone-" + context.name)
    try:
        context.rename(doomed)
    except OSError:
        doomed = context
    threading.Thread(target=shutil.rmtree, args=(doomed,), kwargs={"ignore_errors": True},
                     name="context-removal", daemon=True).start()
