"""The BuildKit front door: BuildKit's Control and LLBBridge gRPC services, served by grpcio
on a private UNIX socket that each upgraded `POST /grpc` connection is spliced to.

A Compose or buildx build is a *gateway* build. Control.Solve names the build (its ref),
the client's session and the exporters, and waits. Then the client, through LLBBridge,
asks for the `dockerfile.v0` frontend. This daemon runs that frontend itself: it fetches
the Dockerfile and the context through the session's FileSync and runs the classic
builder on them. The client then returns the result (LLBBridge.Return), and
Control.Solve exports it: the `moby` exporter tags the image in this daemon's store.
Control.Status streams the build's steps all along.
"""

from __future__ import annotations

import json
import logging
import platform
import queue
import shutil
import socket
import tempfile
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from dockyard.builder.buildkit.filesync import receive_directory
from dockyard.builder.buildkit.progress import Progress
from dockyard.builder.buildkit.sessions import Sessions
from dockyard.builder.buildkit.splice import splice
from dockyard.builder.buildkit.wire import (
    caps_pb2,
    control_pb2,
    control_pb2_grpc,
    gateway_pb2,
    gateway_pb2_grpc,
    ops_pb2,
    secrets_pb2,
    secrets_pb2_grpc,
    worker_pb2,
)
from dockyard.errors import EngineError
from dockyard.formats.dockerignore import read_patterns

log = logging.getLogger(__name__)

DOCKERFILE_FRONTEND = "dockerfile.v0"
BUILD_ID_KEY = "buildkit-controlapi-buildid"
SOLVE_WAIT = 30.0  # seconds a gateway call waits for its build's Control.Solve
# What the gateway and LLB capabilities promise clients: the parts of BuildKit's API this
# front door serves (frontend/gateway/pb/caps.go, solver/pb/caps.go).
GATEWAY_CAPS = ("solve.base", "solve.inlinereturn", "return", "returnmap", "proto.refarray",
                "reference.output", "frontend.inputs", "gateway.solve.metadata", "frontend.caps")
LLB_CAPS = ("source.image", "source.local", "source.local.unique", "source.local.sessionid",
            "source.local.includepatterns", "source.local.followpaths", "source.local.excludepatterns",
            "exec.meta.base", "exec.meta.network", "exec.mount.bind", "file.base", "constraints",
            "platform", "meta.ignorecache", "meta.description")
WORKER_ID = "dockyard"


@dataclass
class Job:
    """One build, by the ref the client gave it."""

    ref: str
    progress: Progress
    session: str = ""
    # Control.Solve names the session; the client's gateway calls may arrive before it
    solving: threading.Event = field(default_factory=threading.Event)
    returned: threading.Event = field(default_factory=threading.Event)
    returned_ref: str = ""
    returned_error: str = ""
    built: set[str] = field(default_factory=set)  # image ids LLBBridge.Solve made: its result refs
    finished: float = 0.0  # monotonic time Control.Solve ended; the job goes a minute later


class _Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def get(self, ref: str) -> Job:
        """The job for `ref`, made by whichever of Solve and Status comes first."""
        with self._lock:
            now = time.monotonic()
            for old in [r for r, j in self._jobs.items() if j.finished and now - j.finished > 60]:
                del self._jobs[old]
            job = self._jobs.get(ref)
            if job is None:
                job = self._jobs[ref] = Job(ref, Progress(ref))
            return job



def _worker() -> worker_pb2.WorkerRecord:
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return worker_pb2.WorkerRecord(
        ID=WORKER_ID, Labels={"org.mobyproject.buildkit.worker.executor": "oci",
                              "org.mobyproject.buildkit.worker.snapshotter": "dockyard"},
        platforms=[ops_pb2.Platform(Architecture=machine, OS="linux")])


def _frontend_options(attrs: dict[str, str]) -> dict[str, Any]:
    """BuildKit's dockerfile frontend attributes as the classic builder's options."""
    return {
        "dockerfile": attrs.get("filename") or "Dockerfile",
        "target": attrs.get("target", ""),
        "build_args": {key.removeprefix("build-arg:"): value for key, value in attrs.items()
                       if key.startswith("build-arg:")},
        "labels": {key.removeprefix("label:"): value for key, value in attrs.items()
                   if key.startswith("label:")},
        "no_cache": "no-cache" in attrs,
        "network_mode": attrs.get("force-network-mode", ""),
        "extra_hosts": [host for host in attrs.get("add-hosts", "").split(",") if host],
        "platform": attrs.get("platform", ""),
    }


class BuildKitFrontDoor:
    """The services and their grpcio server; the API layer hands it connections."""

    def __init__(self, builder: Any, images: Any, run_dir: Path, tmp_dir: Path) -> None:
        self.builder = builder
        self.images = images
        self.tmp_dir = Path(tmp_dir)
        self.run_dir = Path(run_dir)
        self.socket_path = self.run_dir / "buildkit.sock"
        self.sessions = Sessions(self.run_dir)
        self.jobs = _Jobs()
        self._server: grpc.Server | None = None

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.run_dir.glob("session-*"):  # sockets of a daemon that was killed
            shutil.rmtree(stale, ignore_errors=True)
        self.socket_path.unlink(missing_ok=True)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="buildkit"))
        control_pb2_grpc.add_ControlServicer_to_server(_Control(self), server)
        gateway_pb2_grpc.add_LLBBridgeServicer_to_server(_Bridge(self), server)
        server.add_insecure_port(f"unix:{self.socket_path}")
        server.start()
        self._server = server

    def close(self) -> None:
        self.sessions.close()
        if self._server is not None:
            self._server.stop(grace=1).wait()
        self.socket_path.unlink(missing_ok=True)

    # -- connections from the API layer ---------------------------------------------------

    def serve_grpc(self, connection: socket.socket, reader: BinaryIO) -> None:
        inside = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        inside.connect(str(self.socket_path))
        splice(connection, reader, inside)

    def serve_session(self, connection: socket.socket, reader: BinaryIO, headers: Any) -> None:
        self.sessions.serve(connection, reader, headers)

    # -- the dockerfile frontend ----------------------------------------------------------

    def run_dockerfile_frontend(self, job: Job, attrs: dict[str, str]) -> str:
        """Fetch the Dockerfile and the context from the client, build; the image id."""
        from dockyard.builder.builder import BuildOptions

        if not job.solving.wait(SOLVE_WAIT):
            raise EngineError(f"build {job.ref}: the gateway was called but Control.Solve never came")
        session = self.sessions.get(job.session)
        options = _frontend_options(attrs)
        scratch = Path(tempfile.mkdtemp(prefix="buildkit-", dir=self.tmp_dir))
        try:
            dockerfile_dir, context, ignore_dir = (scratch / "dockerfile", scratch / "context",
                                                   scratch / "ignore")
            for directory in (dockerfile_dir, context, ignore_dir):
                directory.mkdir()
            name = options["dockerfile"]
            job.progress.start("[internal] load build definition from " + name)
            receive_directory(session.channel, "dockerfile", dockerfile_dir, follow_paths=[name],
                              include_patterns=[name])
            try:
                text = (dockerfile_dir / name).read_text(errors="replace")
            except OSError:
                raise EngineError(f"failed to read dockerfile: open {name}: "
                                  "no such file or directory") from None
            job.progress.start("[internal] load .dockerignore")
            receive_directory(session.channel, "context", ignore_dir, follow_paths=[".dockerignore"],
                              include_patterns=[".dockerignore"])
            ignore_file = ignore_dir / ".dockerignore"
            excludes = read_patterns(ignore_file.read_text(errors="replace")) if ignore_file.is_file() else []
            job.progress.start("[internal] load build context")
            # as BuildKit's frontend does: what .dockerignore excludes never leaves the client
            count = receive_directory(session.channel, "context", context, exclude_patterns=excludes)
            job.progress.log(f"transferring context: {count} entries\n")
            job.progress.complete()
            image_id = ""
            build_options = BuildOptions(dockerfile_text=text, buildkit=True, secrets=_secrets_of(session),
                                         **options)
            for message in self.builder.build(context, build_options):
                job.progress.message(message)
                aux = message.get("aux")
                if isinstance(aux, dict) and aux.get("ID"):
                    image_id = aux["ID"]
            job.progress.complete()
            if not image_id:
                raise EngineError("the build ended without an image")
            return image_id
        except BaseException as exc:
            job.progress.complete(error=str(exc))
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def export(self, job: Job, image_id: str, exporters: list) -> dict[str, str]:
        response = {"containerimage.digest": image_id, "containerimage.config.digest": image_id}
        for exporter in exporters:
            if exporter.Type not in ("moby", "image", "docker"):
                raise EngineError(f"the {exporter.Type} exporter is not supported by dockyard yet: "
                                  "build into the image store (--load, the default)")
            names = [name for name in exporter.Attrs.get("name", "").split(",") if name]
            for name in names:
                self.images.tag(image_id, name, None)
            if names:
                response["image.name"] = ",".join(names)
        return response


def _secrets_of(session) -> Any:
    """RUN --mount=type=secret's source: the client's Secrets service, when it offers one."""
    def secret(secret_id: str) -> bytes | None:
        if not session.offers("/moby.buildkit.secrets.v1.Secrets/GetSecret"):
            return None
        try:
            reply = secrets_pb2_grpc.SecretsStub(session.channel).GetSecret(
                secrets_pb2.GetSecretRequest(ID=secret_id), timeout=30)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise EngineError(f"reading secret {secret_id} from the client: {exc.details()}") from None
        return reply.data
    return secret


def _abort(context, exc: BaseException) -> None:
    if isinstance(exc, EngineError):
        code = grpc.StatusCode.INVALID_ARGUMENT if exc.status == 400 else grpc.StatusCode.UNKNOWN
        context.abort(code, str(exc))
    log.exception("BuildKit request failed")
    context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")


class _Control(control_pb2_grpc.ControlServicer):
    def __init__(self, door: BuildKitFrontDoor) -> None:
        self.door = door

    def ListWorkers(self, request, context):
        return control_pb2.ListWorkersResponse(record=[_worker()])

    def Info(self, request, context):
        from dockyard import __version__

        return control_pb2.InfoResponse(buildkitVersion=worker_pb2.BuildkitVersion(
            Package="dockyard", Version=f"v{__version__}", Revision=""))

    def DiskUsage(self, request, context):
        records = []
        for cache_id, size, modified in self.door.builder.cache_mounts.usage():
            stamp = Timestamp()
            stamp.FromNanoseconds(int(modified * 1e9))
            records.append(control_pb2.UsageRecord(ID=cache_id, Mutable=True, Size=size, CreatedAt=stamp,
                                                   LastUsedAt=stamp, RecordType="exec.cachemount",
                                                   Description="cached mount (RUN --mount=type=cache)"))
        return control_pb2.DiskUsageResponse(record=records)

    def Prune(self, request, context):
        removed, _freed = self.door.builder.cache_mounts.prune()
        for cache_id in removed:
            yield control_pb2.UsageRecord(ID=cache_id, Mutable=True, RecordType="exec.cachemount")

    def Status(self, request, context):
        job = self.door.jobs.get(request.Ref)
        while context.is_active():
            try:
                update = job.progress.updates.get(timeout=1.0)
            except queue.Empty:
                continue
            if update is None:
                return
            yield update

    def Solve(self, request, context):
        job = self.door.jobs.get(request.Ref)
        job.session = request.Session
        job.solving.set()
        exporters = list(request.Exporters)
        if not exporters and request.ExporterDeprecated:
            exporters = [control_pb2.Exporter(Type=request.ExporterDeprecated,
                                              Attrs=dict(request.ExporterAttrsDeprecated))]
        try:
            if request.Frontend:  # the client asks for the frontend directly, not through the gateway
                if request.Frontend != DOCKERFILE_FRONTEND:
                    raise EngineError(f"frontend {request.Frontend} is not supported: dockyard runs "
                                      f"{DOCKERFILE_FRONTEND} only")
                image_id = self.door.run_dockerfile_frontend(job, dict(request.FrontendAttrs))
            else:
                while not job.returned.wait(1.0):
                    if not context.is_active():
                        return control_pb2.SolveResponse()
                if job.returned_error:
                    raise EngineError(job.returned_error)
                image_id = job.returned_ref if job.returned_ref in job.built else ""
                if not image_id:  # nothing built: a client asking for its build options only
                    return control_pb2.SolveResponse()
            return control_pb2.SolveResponse(ExporterResponse=self.door.export(job, image_id, exporters))
        except Exception as exc:
            _abort(context, exc)
        finally:
            job.progress.end()
            job.finished = time.monotonic()


class _Bridge(gateway_pb2_grpc.LLBBridgeServicer):
    def __init__(self, door: BuildKitFrontDoor) -> None:
        self.door = door

    def _job(self, context) -> Job:
        return self.door.jobs.get(dict(context.invocation_metadata()).get(BUILD_ID_KEY, ""))

    def Ping(self, request, context):
        return gateway_pb2.PongResponse(
            FrontendAPICaps=[caps_pb2.APICap(ID=cap, Enabled=True) for cap in GATEWAY_CAPS],
            LLBCaps=[caps_pb2.APICap(ID=cap, Enabled=True) for cap in LLB_CAPS],
            Workers=[_worker()])

    def Solve(self, request, context):
        job = self._job(context)
        try:
            if request.Frontend != DOCKERFILE_FRONTEND:
                raise EngineError(f"frontend {request.Frontend or '(LLB definition)'} is not supported: "
                                  f"dockyard runs {DOCKERFILE_FRONTEND} only")
            image_id = self.door.run_dockerfile_frontend(job, dict(request.FrontendOpt))
        except Exception as exc:
            _abort(context, exc)
        job.built.add(image_id)  # the result's ref is the image id itself
        config = json.dumps(self.door.images.config(self.door.images.resolve(image_id))).encode()
        return gateway_pb2.SolveResponse(result=gateway_pb2.Result(
            ref=gateway_pb2.Ref(id=image_id), metadata={"containerimage.config": config}))

    def Return(self, request, context):
        job = self._job(context)
        if request.HasField("error") and request.error.code:
            job.returned_error = request.error.message or "the build failed"
        elif request.result.HasField("ref"):
            job.returned_ref = request.result.ref.id
        job.returned.set()
        return gateway_pb2.ReturnResponse()

    def Inputs(self, request, context):
        return gateway_pb2.InputsResponse()
