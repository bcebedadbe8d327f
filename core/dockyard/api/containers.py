"""Container and exec routes: lifecycle, attach and exec streams, logs, wait, list.

Streams follow Docker's rules: attach and exec start take over the connection
(`101 UPGRADED` for `Upgrade: tcp`), non-terminal output is multiplexed with an 8-byte
header per frame, terminal output is raw; `wait` answers its headers at once and the
status code when the condition holds; logs are chunked, one frame per log line.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import BinaryIO

from dockyard.api.router import Router
from dockyard.api.server import (
    HijackResponse,
    Request,
    Response,
    StreamResponse,
    json_response,
)
from dockyard.containers import logs as container_logs
from dockyard.containers.manager import ContainerManager
from dockyard.containers.model import Container
from dockyard.daemon.engine import Engine
from dockyard.errors import Conflict, EngineError, InvalidParameter, NotFound, Unavailable
from dockyard.formats.detachkeys import DetachKeysError, EscapeFilter, parse_detach_keys
from dockyard.formats.filters import label_filters_match, parse_filters
from dockyard.formats.units import human_duration
from dockyard.monitor.client import read_frames

LIST_FILTERS = ("ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task",
                "label", "name", "network", "publish", "since", "status", "volume")
PRUNE_FILTERS = ("label", "label!", "until")
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"


def multiplex(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxI", stream, len(payload)) + payload


def _parse_time(value: str | None) -> float:
    if not value or value.startswith("0001-"):
        return 0.0
    from dockyard.containers.logs import parse_time_nano

    return parse_time_nano(value) / 1e9


def status_text(container: Container) -> str:
    """What `docker ps` shows under STATUS."""
    state = container.state
    now = time.time()
    if state.Status == "removing":
        return "Removal In Progress"
    if state.Restarting:
        return f"Restarting ({state.ExitCode}) {human_duration(now - _parse_time(state.FinishedAt))} ago"
    if state.Running:
        text = f"Up {human_duration(now - _parse_time(state.StartedAt))}"
        if state.Paused:
            text += " (Paused)"
        elif state.Health:
            health = state.Health.get("Status")
            text += " (health: starting)" if health == "starting" else f" ({health})"
        return text
    if container.has_been_started or state.FinishedAt != "0001-01-01T00:00:00Z":
        return f"Exited ({state.ExitCode}) {human_duration(now - _parse_time(state.FinishedAt))} ago"
    return "Created"


def command_text(container: Container) -> str:
    return " ".join([container.path, *container.args]).strip()


def summary(manager: ContainerManager, container: Container, with_size: bool) -> dict:
    result = {
        "Id": container.id,
        "Names": [f"/{container.name}"],
        "Image": container.image_name,
        "ImageID": container.image_id,
        "Command": command_text(container),
        "Created": int(_parse_time(container.created)),
        "Ports": ports_summary(container),
        "Labels": container.config.get("Labels") or {},
        "State": container.state.Status,
        "Status": status_text(container),
        "HostConfig": {"NetworkMode": container.host_config.get("NetworkMode", "default")},
        "NetworkSettings": {"Networks": _networks_json(container)},
        "Mounts": mounts_json(container),
    }
    if with_size:
        result["SizeRw"] = manager.size_rw(container)
        result["SizeRootFs"] = result["SizeRw"]
    return result


_ENDPOINT_DEFAULTS = {
    "IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "", "NetworkID": "", "EndpointID": "",
    "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
    "GlobalIPv6PrefixLen": 0, "DriverOpts": None, "DNSNames": None,
}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def mounts_json(container: Container) -> list[dict]:
    return [{k: v for k, v in entry.items() if not k.startswith("_")} for entry in container.mounts]


def _networks_json(container: Container) -> dict:
    return {name: {**_ENDPOINT_DEFAULTS, **{k: v for k, v in endpoint.items() if not k.startswith("_")}}
            for name, endpoint in (container.network_settings.get("Networks") or {}).items()}


def network_settings_json(container: Container) -> dict:
    """Docker's NetworkSettings: per-network endpoints, published ports, and the default
    bridge's endpoint repeated at the top level (where old clients look for it)."""
    networks = _networks_json(container)
    default = networks.get("bridge") or {}
    exposed = container.config.get("ExposedPorts") or {}
    ports = container.network_settings.get("Ports") or {key: None for key in exposed}
    return {
        "Bridge": "", "SandboxID": "", "SandboxKey": container.network_settings.get("SandboxKey", ""),
        "Ports": ports, "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
        "EndpointID": default.get("EndpointID", ""), "Gateway": default.get("Gateway", ""),
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": default.get("IPAddress", ""),
        "IPPrefixLen": default.get("IPPrefixLen", 0), "IPv6Gateway": "",
        "MacAddress": default.get("MacAddress", ""), "Networks": networks,
    }


def ports_summary(container: Container) -> list[dict]:
    """`docker ps`'s Ports: one entry per host binding, and one per exposed-only port."""
    found = []
    ports = container.network_settings.get("Ports") or \
        {key: None for key in container.config.get("ExposedPorts") or {}}
    for key, bindings in ports.items():
        number, _, protocol = key.partition("/")
        if not bindings:
            found.append({"PrivatePort": int(number), "Type": protocol or "tcp"})
        for binding in bindings or []:
            found.append({"IP": binding["HostIp"], "PrivatePort": int(number),
                          "PublicPort": int(binding["HostPort"]), "Type": protocol or "tcp"})
    return found


def inspect(manager: ContainerManager, container: Container, with_size: bool) -> dict:
    directory = manager.directory(container)
    state = {**container.state.__dict__}
    if state.get("Health") is None:
        state.pop("Health")
    result = {
        "Id": container.id,
        "Created": container.created,
        "Path": container.path,
        "Args": container.args,
        "State": state,
        "Image": container.image_id,
        "ResolvConfPath": str(directory / "resolv.conf"),
        "HostnamePath": str(directory / "hostname"),
        "HostsPath": str(directory / "hosts"),
        "LogPath": str(manager.log_path(container)),
        "Name": f"/{container.name}",
        "RestartCount": container.restart_count,
        "Driver": container.driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": manager.exec_ids(container) or None,
        "HostConfig": {**container.host_config,
                       "Runtime": container.host_config.get("Runtime") or container.runtime,
                       "Links": manager.inspect_links(container)},
        "GraphDriver": {"Name": container.driver, "Data": None},
        "Mounts": mounts_json(container),
        "Config": {**container.config, "Image": container.image_name},
        "NetworkSettings": network_settings_json(container),
    }
    if with_size:
        result["SizeRw"] = manager.size_rw(container)
        result["SizeRootFs"] = result["SizeRw"]
    return result


def _matches(manager: ContainerManager, container: Container, filters: dict[str, list[str]],
             images) -> bool:
    if "status" in filters and container.state.Status not in filters["status"]:
        return False
    if "name" in filters:
        import re

        if not any(re.search(pattern, container.name) for pattern in filters["name"]):
            return False
    if "id" in filters and not any(container.id.startswith(i) for i in filters["id"]):
        return False
    if not label_filters_match(filters, container.config.get("Labels") or {}):
        return False
    if "exited" in filters:
        if container.running or not container.has_been_started:
            return False
        if str(container.state.ExitCode) not in filters["exited"]:
            return False
    if "ancestor" in filters:
        wanted = set()
        for name in filters["ancestor"]:
            try:
                wanted.add(images.resolve(name).id)
            except NotFound:
                continue
        if container.image_id not in wanted and container.image_name not in filters["ancestor"]:
            return False
    if "health" in filters:
        health = (container.state.Health or {}).get("Status", "none")
        if health not in filters["health"]:
            return False
    for key, newer in (("before", False), ("since", True)):
        if key in filters:
            pivot = manager.get(filters[key][-1])
            if newer and not container.created > pivot.created:
                return False
            if not newer and not container.created < pivot.created:
                return False
    if "network" in filters:
        attached = container.network_settings.get("Networks") or {}
        ids = {(endpoint or {}).get("NetworkID", "") for endpoint in attached.values()}
        if not any(value in attached or any(i.startswith(value) for i in ids if value)
                   for value in filters["network"]):
            return False
    if "publish" in filters or "expose" in filters:
        entries = ports_summary(container)
        published = {f"{e['PublicPort']}/{e['Type']}" for e in entries if "PublicPort" in e}
        exposed = {f"{e['PrivatePort']}/{e['Type']}" for e in entries}
        for key, known in (("publish", published), ("expose", exposed)):
            if key in filters and not any((v if "/" in v else f"{v}/tcp") in known for v in filters[key]):
                return False
    return True


def _detach_keys(text: str | None) -> bytes:
    try:
        return parse_detach_keys(text)
    except DetachKeysError as exc:
        raise InvalidParameter(str(exc)) from None


class _Attachment:
    """Relays one client connection and one monitor session in both directions."""

    def __init__(self, client: socket.socket, client_reader: BinaryIO, monitor: socket.socket,
                 tty: bool, stdin: bool, detach_keys: bytes = b"", on_exit=None, on_detach=None) -> None:
        self.client = client
        self.client_reader = client_reader
        self.monitor = monitor
        self.tty = tty
        self.stdin = stdin
        self.escape = EscapeFilter(detach_keys)
        self.on_exit = on_exit
        self.on_detach = on_detach

    def run(self) -> None:
        if self.stdin:
            threading.Thread(target=self._input, daemon=True, name="attach stdin").start()
        try:
            for stream, payload in read_frames(self.monitor):
                if stream == 3:
                    result = json.loads(payload)
                    if result.get("Error"):  # the process never started: say why, as Docker does
                        text = f"OCI runtime exec failed: {result['Error']}: unknown\r\n".encode()
                        self.client.sendall(text if self.tty else multiplex(1, text))
                    if self.on_exit is not None:
                        self.on_exit(result)
                    continue
                self.client.sendall(payload if self.tty else multiplex(stream, payload))
        except OSError:
            pass
        finally:
            self.monitor.close()
            try:
                self.client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _input(self) -> None:
        try:
            while True:
                data = self.client_reader.read1(65536) if hasattr(self.client_reader, "read1") \
                    else self.client_reader.read(65536)
                if not data:
                    self.monitor.sendall(self.escape.flush())
                    break
                forward, detached = self.escape.feed(data)
                if forward:
                    self.monitor.sendall(forward)
                if detached:
                    self._detach()
                    return
        except (OSError, ValueError):
            pass
        try:
            self.monitor.shutdown(socket.SHUT_WR)  # the client's half-close is stdin EOF
        except OSError:
            pass

    def _detach(self) -> None:
        """Leave the process running: both connections end, as when the client goes."""
        if self.on_detach is not None:
            self.on_detach()
        for sock in (self.monitor, self.client):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def register(router: Router, engine: Engine) -> None:
    def containers() -> ContainerManager:
        if engine.containers is None:
            raise Unavailable("containers need a storage driver and a runtime: "
                              + "; ".join(w for w in engine.warnings if "storage" in w or "runtime" in w))
        return engine.containers

    def lookup(name: str) -> Container:
        if engine.containers is None:
            raise NotFound(f"No such container: {name}")
        return engine.containers.get(name)

    @router.post("/containers/create")
    def create(request: Request) -> Response:
        body = request.json({}) or {}
        if not isinstance(body, dict):
            raise InvalidParameter("the request body must be a JSON object (the container's Config)")
        host_config = body.pop("HostConfig", None) or {}
        networking_config = body.pop("NetworkingConfig", None) or {}
        container = containers().create(request.arg("name"), body, host_config, networking_config)
        return json_response({"Id": container.id, "Warnings": []}, 201)

    @router.get("/containers/json")
    def list_containers(request: Request) -> Response:
        if engine.containers is None:
            return json_response([])
        manager = containers()
        filters = parse_filters(request.arg("filters"), LIST_FILTERS)
        show_all = request.flag("all")
        found = [c for c in manager.all() if (show_all or c.running or c.state.Restarting
                                              or "status" in filters or "exited" in filters)
                 and _matches(manager, c, filters, engine.images)]
        found.sort(key=lambda c: c.created, reverse=True)
        limit = request.int_arg("limit", -1)
        if limit and limit > 0:
            found = found[:limit]
        return json_response([summary(manager, c, request.flag("size")) for c in found])

    @router.get("/containers/{id}/json")
    def inspect_container(request: Request) -> Response:
        container = lookup(request.params["id"])
        shown = inspect(containers(), container, request.flag("size"))
        if _version(request.api_version) < (1, 45):  # as moby: the short id and hostname were aliases
            names = (container.id[:12], container.config.get("Hostname") or container.id[:12])
            for name, endpoint in shown["NetworkSettings"]["Networks"].items():
                if name not in ("bridge", "host", "none", "default") and not name.startswith("container:"):
                    endpoint["Aliases"] = list(dict.fromkeys([*(endpoint.get("Aliases") or []), *names]))
        return json_response(shown)

    @router.post("/containers/{id}/start")
    def start(request: Request) -> Response:
        containers().start(request.params["id"])
        return Response(204)

    @router.post("/containers/{id}/stop")
    def stop(request: Request) -> Response:
        timeout = request.int_arg("t")
        containers().stop(request.params["id"], timeout, request.arg("signal"))
        return Response(204)

    @router.post("/containers/{id}/restart")
    def restart(request: Request) -> Response:
        containers().restart(request.params["id"], request.int_arg("t"))
        return Response(204)

    @router.post("/containers/{id}/kill")
    def kill(request: Request) -> Response:
        containers().kill(request.params["id"], request.arg("signal"))
        return Response(204)

    @router.post("/containers/{id}/pause")
    def pause(request: Request) -> Response:
        containers().pause(request.params["id"])
        return Response(204)

    @router.post("/containers/{id}/unpause")
    def unpause(request: Request) -> Response:
        containers().unpause(request.params["id"])
        return Response(204)

    @router.post("/containers/{id}/rename")
    def rename(request: Request) -> Response:
        new_name = request.arg("name")
        if not new_name:
            raise InvalidParameter("give the new name (name=...)")
        containers().rename(request.params["id"], new_name)
        return Response(204)

    @router.delete("/containers/{id:.+}")  # greedy, as moby's: "parent/alias" names a link
    def remove(request: Request) -> Response:
        if request.flag("link"):
            containers().remove_link(request.params["id"])
            return Response(204)
        containers().remove(request.params["id"], force=request.flag("force"), volumes=request.flag("v"))
        return Response(204)

    @router.post("/containers/prune")
    def prune(request: Request) -> Response:
        return json_response(containers().prune(parse_filters(request.arg("filters"), PRUNE_FILTERS)))

    @router.post("/containers/{id}/wait")
    def wait(request: Request) -> StreamResponse:
        wait_for = containers().waiter(request.params["id"], request.arg("condition") or "not-running")

        def body() -> Iterator[bytes | None]:
            result: dict = {}
            done = threading.Event()

            def waiting() -> None:
                result.update(wait_for())
                done.set()

            threading.Thread(target=waiting, daemon=True).start()
            while not done.wait(1.0):
                yield None  # lets the server notice a client that gave up
            yield (json.dumps(result) + "\n").encode()

        return StreamResponse(body())

    @router.post("/containers/{id}/attach")
    def attach(request: Request) -> HijackResponse:
        container = lookup(request.params["id"])
        tty = bool(container.config.get("Tty"))
        want_stdin = request.flag("stdin")
        want_stdout, want_stderr = request.flag("stdout"), request.flag("stderr")
        if not request.flag("stream") and not request.flag("logs"):
            raise InvalidParameter("attach needs stream=1 (or logs=1)")

        def replay(client: socket.socket) -> None:
            """logs=1: what the container wrote so far, before anything live (Docker's order).

            docker-py parses the upgrade's headers through a buffered reader, then reads the
            socket under it: bytes that arrive together with the headers would be lost, so
            the replay waits a moment after them."""
            time.sleep(0.02)
            for entry in container_logs.read(str(containers().log_path(container))):
                if entry is None or (entry.stream == "stdout" and not want_stdout) or \
                        (entry.stream == "stderr" and not want_stderr):
                    continue
                client.sendall(entry.text if tty else multiplex(1 if entry.stream == "stdout" else 2,
                                                                entry.text))

        if not request.flag("stream"):  # the logs alone, of a running or a stopped container
            def logs_only(client: socket.socket, reader: BinaryIO) -> None:
                with contextlib.suppress(OSError):
                    replay(client)
                    # half-close and let the client close first: closing with its bytes still
                    # unread here would reset the connection and could lose the logs in flight
                    client.shutdown(socket.SHUT_WR)
                    client.settimeout(5)
                    while client.recv(65536):
                        pass

            return HijackResponse(logs_only, RAW if tty else MULTIPLEXED)
        if container.has_been_started and not container.running and not container.state.Restarting:
            raise Conflict("You cannot attach to a stopped container, start it first")
        detach_keys = _detach_keys(request.arg("detachKeys"))
        connect = containers().attach(container.id, want_stdin, want_stdout, want_stderr)

        def session(client: socket.socket, reader: BinaryIO) -> None:
            try:
                monitor = connect()
            except (Conflict, NotFound):
                return  # the start failed or the container went: the start call reports why
            if request.flag("logs"):
                with contextlib.suppress(OSError):
                    replay(client)
            _Attachment(client, reader, monitor, tty, want_stdin, detach_keys,
                        on_detach=lambda: containers().event(container, "detach")).run()

        return HijackResponse(session, RAW if tty else MULTIPLEXED)

    @router.post("/containers/{id}/resize")
    def resize(request: Request) -> Response:
        container = lookup(request.params["id"])
        height, width = request.int_arg("h", 0), request.int_arg("w", 0)
        if container.running and container.config.get("Tty"):
            containers().monitor(container).resize(height, width)
        return Response(200)

    @router.get("/containers/{id}/logs")
    def logs(request: Request) -> StreamResponse:
        container = lookup(request.params["id"])
        stdout, stderr = request.flag("stdout"), request.flag("stderr")
        if not stdout and not stderr:
            raise InvalidParameter("you must choose at least one stream")
        from dockyard.api.system import parse_timestamp

        since = request.arg("since")
        until = request.arg("until")
        tail = request.arg("tail", "all")
        try:
            tail_count = None if tail in ("all", "", None) else int(tail)
        except ValueError:
            raise InvalidParameter(f"invalid tail value {tail!r}: give a number or all") from None
        entries = container_logs.read(
            str(containers().log_path(container)),
            since_nano=parse_timestamp(since, "since") if since and since != "0" else 0,
            until_nano=parse_timestamp(until, "until") if until and until != "0" else None,
            tail=tail_count, follow=request.flag("follow"),
            still_running=lambda: container.running or container.state.Restarting)
        tty = bool(container.config.get("Tty"))
        timestamps = request.flag("timestamps")

        def body() -> Iterator[bytes | None]:
            for entry in entries:
                if entry is None:
                    yield None
                    continue
                if (entry.stream == "stdout" and not stdout) or (entry.stream == "stderr" and not stderr):
                    continue
                text = (entry.time.encode() + b" " + entry.text) if timestamps else entry.text
                yield text if tty else multiplex(1 if entry.stream == "stdout" else 2, text)

        return StreamResponse(body(), content_type=RAW if tty else MULTIPLEXED)

    @router.get("/containers/{id}/top")
    def top(request: Request) -> Response:
        from dockyard.containers.procs import top_processes

        container = lookup(request.params["id"])
        if not container.running:
            raise Conflict(f"Container {container.id} is not running")
        titles, rows = top_processes(container.state.Pid, request.arg("ps_args") or "-ef")
        containers().event(container, "top")
        return json_response({"Titles": titles, "Processes": rows})

    @router.post("/containers/{id}/update")
    def update(request: Request) -> Response:
        body = request.json({}) or {}
        if not isinstance(body, dict):
            raise InvalidParameter("the request body must be a JSON object of resources")
        warnings = containers().update(request.params["id"], body)
        return json_response({"Warnings": warnings})

    @router.get("/containers/{id}/stats")
    def stats(request: Request) -> StreamResponse:
        from dockyard.containers import stats as container_stats

        container = lookup(request.params["id"])
        manager = containers()
        stream = request.flag("stream", True)
        one_shot = request.flag("one-shot")

        def measure() -> dict:
            path = manager.cgroup_path(container) if container.running else ""
            if not path:
                return {"cpu_stats": container_stats.empty_cpu(),
                        "memory_stats": {}, "pids_stats": {}}
            sampled = container_stats.sample(path)
            sampled["networks"] = container_stats.network_counters(container.state.Pid)
            return sampled

        def body() -> Iterator[bytes]:
            previous, previous_at = None, None
            if not stream and not one_shot:  # Docker skips a frame so precpu is filled in
                previous, previous_at = measure(), time.time()
                time.sleep(1.0)
            while True:
                current, read_at = measure(), time.time()
                message = container_stats.stats_message(container.name, container.id, current,
                                                        previous, read_at, previous_at)
                yield (json.dumps(message) + "\n").encode()
                if not stream or not container.running:
                    return
                previous, previous_at = current, read_at
                time.sleep(1.0)

        return StreamResponse(body())

    # -- files -----------------------------------------------------------------------

    @router.get("/containers/{id}/changes")
    def container_changes(request: Request) -> Response:
        from dockyard.containers import filesystem

        return json_response(filesystem.changes(containers(), lookup(request.params["id"])) or None)

    @router.get("/containers/{id}/export")
    def container_export(request: Request) -> StreamResponse:
        from dockyard.containers import filesystem

        return StreamResponse(filesystem.export(containers(), lookup(request.params["id"])),
                              content_type="application/x-tar")

    @router.get("/containers/{id}/archive")
    def get_archive(request: Request):
        from dockyard.containers import filesystem

        container = lookup(request.params["id"])
        path = request.arg("path")
        if not path:
            raise InvalidParameter("give the path inside the container (path=...)")
        if request.method == "HEAD":
            info = filesystem.archive_stat(containers(), container, path)
            return Response(200, headers={"X-Docker-Container-Path-Stat": filesystem.stat_header(info)})
        info, chunks = filesystem.get_archive(containers(), container, path)
        return StreamResponse(chunks, content_type="application/x-tar",
                              headers={"X-Docker-Container-Path-Stat": filesystem.stat_header(info)})

    @router.put("/containers/{id}/archive")
    def put_archive(request: Request) -> Response:
        from dockyard.containers import filesystem

        path = request.arg("path")
        if not path:
            raise InvalidParameter("give the directory inside the container (path=...)")
        filesystem.put_archive(containers(), lookup(request.params["id"]), path, request.body,
                               request.flag("noOverwriteDirNonDir"))
        return Response(200)

    @router.post("/commit")
    def commit(request: Request) -> Response:
        from dockyard.containers import filesystem

        name = request.arg("container")
        if not name:
            raise InvalidParameter("give the container to commit (container=...)")
        overrides = request.json({}) or {}
        image_id = filesystem.commit(containers(), lookup(name), request.arg("repo"), request.arg("tag"),
                                     request.arg("comment") or "", request.arg("author") or "",
                                     request.args("changes"), request.flag("pause", True), overrides)
        return json_response({"Id": image_id}, 201)

    # -- exec ------------------------------------------------------------------------

    @router.post("/containers/{id}/exec")
    def exec_create(request: Request) -> Response:
        body = request.json({}) or {}
        _detach_keys(body.get("DetachKeys"))
        record = containers().exec_create(request.params["id"], body)
        return json_response({"Id": record.id}, 201)

    @router.get("/exec/{id}/json")
    def exec_inspect(request: Request) -> Response:
        record = containers().exec_get(request.params["id"])
        config = record.config
        command = config.get("Cmd") or []
        return json_response({
            "ID": record.id, "Running": record.running,
            "ExitCode": record.exit_code, "ProcessConfig": {
                "tty": bool(config.get("Tty")), "entrypoint": command[0] if command else "",
                "arguments": command[1:], "privileged": bool(config.get("Privileged")),
                "user": config.get("User", "")},
            "OpenStdin": bool(config.get("AttachStdin")), "OpenStderr": bool(config.get("AttachStderr")),
            "OpenStdout": bool(config.get("AttachStdout")), "CanRemove": not record.running,
            "ContainerID": record.container_id, "DetachKeys": config.get("DetachKeys", ""),
            "Pid": record.pid,
        })

    @router.post("/exec/{id}/start")
    def exec_start(request: Request):
        body = request.json({}) or {}
        manager = containers()
        record = manager.exec_get(request.params["id"])
        # as Docker: the create request decides whether the process gets a terminal; the
        # start request only how the reply is framed (docker-py sends Tty false here)
        process_tty = bool(record.config.get("Tty"))
        framing_tty = bool(body.get("Tty", process_tty))
        detach_keys = _detach_keys(record.config.get("DetachKeys"))
        if body.get("Detach"):
            manager.exec_start(record.id, detach=True, tty=process_tty)
            return Response(200)
        try:
            monitor = manager.exec_start(record.id, detach=False, tty=process_tty)
        except EngineError as exc:
            if exc.status != 400:  # not running, gone: an HTTP error, as Docker's
                raise
            return _failed_exec(manager, record, str(exc), framing_tty)  # said in the stream

        def finished(result: dict) -> None:
            if result.get("Error"):
                manager.exec_failed(record, result["Error"])
                return
            manager.exec_finished(record, int(result.get("ExitCode", 0)))

        def session(client: socket.socket, reader: BinaryIO) -> None:
            # an exec's first output can follow the upgrade's headers at once, and docker-py
            # would lose bytes that arrive with them (see the logs replay of attach)
            time.sleep(0.02)
            _Attachment(client, reader, monitor, framing_tty, bool(record.config.get("AttachStdin")),
                        detach_keys, on_exit=finished).run()

        return HijackResponse(session, RAW if framing_tty else MULTIPLEXED)

    def _failed_exec(manager, record, message: str, framing_tty: bool) -> HijackResponse:
        """Docker answers the upgrade, writes why the process did not start into the stream,
        and records 126 or 127 as the exec's exit code, which the CLI then exits with."""
        manager.exec_failed(record, message)

        def session(client: socket.socket, reader: BinaryIO) -> None:
            time.sleep(0.02)  # after the upgrade's headers, as for any exec's output
            text = (message + "\r\n").encode()
            with contextlib.suppress(OSError):
                client.sendall(text if framing_tty else multiplex(1, text))

        return HijackResponse(session, RAW if framing_tty else MULTIPLEXED)

    @router.post("/exec/{id}/resize")
    def exec_resize(request: Request) -> Response:
        manager = containers()
        record = manager.exec_get(request.params["id"])
        container = manager.get(record.container_id)
        manager.monitor(container).resize(request.int_arg("h", 0), request.int_arg("w", 0), record.id)
        return Response(200)

