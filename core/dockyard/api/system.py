"""System routes: /_ping, /version, /info, /events, and dockyard's own /dockyard/plugins.

The JSON shapes follow moby's Go structs field by field, with Go's types: the docker
CLI decodes them strictly, so an int where Go has a string is an error for the user.
"""

from __future__ import annotations

import platform
from datetime import UTC, datetime

from dockyard import API_VERSION, MIN_API_VERSION, __version__
from dockyard.api.router import Router
from dockyard.api.server import Request, Response, StreamResponse, json_response, json_stream
from dockyard.daemon import hostinfo
from dockyard.daemon.engine import Engine
from dockyard.daemon.events import EVENT_FILTERS
from dockyard.errors import InvalidParameter
from dockyard.formats.filters import parse_filters

PING_HEADERS = {
    "Builder-Version": "1",
    "Swarm": "inactive",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
}


def rfc3339(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def parse_timestamp(value: str, name: str) -> int:
    """Docker's since/until: unix seconds with an optional fraction, or RFC 3339."""
    value = value.strip()
    try:
        seconds, _, fraction = value.partition(".")
        if seconds.lstrip("-").isdigit() and (not fraction or fraction.isdigit()):
            return int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9])
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return int(moment.timestamp() * 1_000_000_000)
    except ValueError:
        raise InvalidParameter(
            f"invalid value for {name}: {value!r} (use unix seconds or an RFC 3339 time)"
        ) from None


def version_payload(engine: Engine) -> dict:
    facts = engine.host_facts()
    components = [{
        "Name": "Engine",
        "Version": __version__,
        "Details": {
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": f"python{platform.python_version()}",
            "Os": "linux",
            "Arch": facts["arch"],
            "KernelVersion": facts["kernel"],
            "Experimental": "false",
            "BuildTime": "",
        },
    }]
    for name, runtime in sorted(engine.drivers["runtime"].items()):
        components.append({"Name": name, "Version": runtime.version(), "Details": {}})
    return {
        "Platform": {"Name": f"Dockyard Engine {__version__}"},
        "Components": components,
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": f"python{platform.python_version()}",
        "Os": "linux",
        "Arch": facts["arch"],
        "KernelVersion": facts["kernel"],
        "BuildTime": "",
    }


def info_payload(engine: Engine) -> dict:
    facts = engine.host_facts()
    config = engine.config
    storage = engine.storage_driver
    driver_status = [list(pair) for pair in storage.status()] if storage is not None else []
    cgroup_v1 = hostinfo.cgroup_v1_controllers()
    v2 = facts["cgroup_version"] == "2"
    runtimes = {
        name: {"path": getattr(driver, "path", name)}
        for name, driver in sorted(engine.drivers["runtime"].items())
    }
    return {
        "ID": engine.daemon_id,
        **_container_counts(engine),
        "Images": len(engine.images.images.all()) if engine.images is not None else 0,
        "Driver": engine.storage_driver_name,
        "DriverStatus": driver_status,
        "Plugins": {
            "Volume": sorted(engine.drivers["volume"]),
            "Network": sorted(engine.drivers["network"]),
            "Authorization": None,
            "Log": ["json-file"],
        },
        "MemoryLimit": v2 or "memory" in cgroup_v1,
        "SwapLimit": v2 or "memory" in cgroup_v1,
        "CpuCfsPeriod": v2 or "cpu" in cgroup_v1,
        "CpuCfsQuota": v2 or "cpu" in cgroup_v1,
        "CPUShares": v2 or "cpu" in cgroup_v1,
        "CPUSet": v2 or "cpuset" in cgroup_v1,
        "PidsLimit": v2 or "pids" in cgroup_v1,
        "IPv4Forwarding": hostinfo.ipv4_forwarding(),
        "Debug": config.debug or config.log_level == "debug",
        "NFd": hostinfo.open_file_count(),
        "OomKillDisable": False,
        "NGoroutines": 0,
        "SystemTime": datetime.now(UTC).astimezone().isoformat(),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": facts["cgroup_version"],
        "NEventsListener": engine.events.listener_count,
        "KernelVersion": facts["kernel"],
        "OperatingSystem": facts["os"],
        "OSVersion": facts["os_version"],
        "OSType": "linux",
        "Architecture": platform.machine(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": None,
            "AllowNondistributableArtifactsHostnames": None,
            "InsecureRegistryCIDRs": ["127.0.0.0/8", "::1/128"] + [
                entry for entry in config.insecure_registries if "/" in entry],
            "IndexConfigs": {
                "docker.io": {"Name": "docker.io", "Mirrors": list(config.registry_mirrors),
                              "Secure": True, "Official": True},
                **{entry: {"Name": entry, "Mirrors": [], "Secure": False, "Official": False}
                   for entry in config.insecure_registries if "/" not in entry},
            },
            "Mirrors": list(config.registry_mirrors),
        },
        "NCPU": facts["cpus"],
        "MemTotal": facts["memory"],
        "GenericResources": None,
        "DockerRootDir": config.data_root,
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": facts["hostname"],
        "Labels": list(config.labels),
        "ExperimentalBuild": False,
        "ServerVersion": __version__,
        "Runtimes": runtimes,
        "DefaultRuntime": engine.default_runtime or "",
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": False,
            "Error": "",
            "RemoteManagers": None,
        },
        "LiveRestoreEnabled": config.live_restore,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": ""},
        "RuncCommit": {"ID": ""},
        "InitCommit": {"ID": ""},
        "SecurityOptions": [],
        "CDISpecDirs": [],
        # Docker 1.12-19.03 had the first two; the docker CLI no longer prints them
        "ClusterStore": engine.cluster.store_url if engine.cluster else "",
        "ClusterAdvertise": engine.cluster.address if engine.cluster else "",
        "ClusterStatus": engine.cluster.status() if engine.cluster else None,
        "Warnings": [f"WARNING: {warning}" for warning in engine.warnings + _cluster_warnings(engine)],
    }


def _cluster_warnings(engine: Engine) -> list[str]:
    cluster = engine.cluster
    if cluster is None or cluster.state != "unreachable":
        return []
    return [f"cluster store {cluster.store_url} is unreachable ({cluster.error}): local networks work; "
            "global networks wait for it"]


def _container_counts(engine: Engine) -> dict:
    containers = engine.containers.all() if engine.containers is not None else []
    paused = sum(1 for c in containers if c.state.Paused)
    running = sum(1 for c in containers if c.running) - paused
    return {"Containers": len(containers), "ContainersRunning": running, "ContainersPaused": paused,
            "ContainersStopped": len(containers) - running - paused}


def register(router: Router, engine: Engine) -> None:
    @router.get("/_ping")
    def ping(request: Request) -> Response:
        # Builder-Version 2 sends Compose and buildx to BuildKit's API, which only a daemon
        # with the front door serves; 1 keeps them on the classic /build
        builder_version = "2" if engine.buildkit_front_door() is not None else "1"
        headers = {**PING_HEADERS, "Builder-Version": builder_version}
        return Response(200, b"OK", "text/plain; charset=utf-8", headers)

    @router.get("/version")
    def version(request: Request) -> Response:
        return json_response(version_payload(engine))

    @router.get("/info")
    def info(request: Request) -> Response:
        return json_response(info_payload(engine))

    @router.get("/events")
    def events(request: Request) -> StreamResponse:
        filters = parse_filters(request.arg("filters"), EVENT_FILTERS)
        since = request.arg("since")
        until = request.arg("until")
        since_nano = parse_timestamp(since, "since") if since else None
        until_nano = parse_timestamp(until, "until") if until else None
        if since_nano is not None and until_nano is not None and until_nano < since_nano:
            raise InvalidParameter("`since` time must be before `until` time")
        stream = engine.events.subscribe(since_nano, until_nano, filters, heartbeat=1.0)
        return StreamResponse(json_stream(event and event.to_api() for event in stream))

    @router.get("/dockyard/plugins")
    def plugins(request: Request) -> Response:
        return json_response(engine.plugin_report())

