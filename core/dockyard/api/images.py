"""Image routes: list, inspect, history, tag, remove, prune, import, save, load, disk usage,
and the registry routes (pull, push, search, login at /auth).

Shapes follow moby's api/types/image structs; Created is an int in lists and an
RFC 3339 string in inspect, as the docker CLI expects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

from dockyard.api.router import Router
from dockyard.api.server import Request, Response, StreamResponse, json_response
from dockyard.daemon.engine import Engine
from dockyard.errors import EngineError, InvalidParameter, NotFound, Unavailable
from dockyard.formats.filters import parse_filters
from dockyard.formats.registry_auth import credentials_from_auth_config, decode_registry_auth
from dockyard.images import exchange
from dockyard.images.manager import ImageManager, ImageView
from dockyard.registries.service import RegistryService

IMAGE_LIST_FILTERS = ("dangling", "label", "before", "since", "reference", "until")
IMAGE_PRUNE_FILTERS = ("dangling", "label", "label!", "until")

_CONTAINER_CONFIG_DEFAULTS = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def summary(view: ImageView, api_version: str, shared_size: int = -1, containers: int = -1) -> dict:
    result = {
        "Id": view.id,
        "ParentId": view.record.extra.get("parent", ""),
        "RepoTags": view.tags,
        "RepoDigests": view.digests,
        "Created": int(view.created),
        "Size": view.size,
        "SharedSize": shared_size,
        "Labels": (view.config.get("config") or {}).get("Labels") or {},
        "Containers": containers,
    }
    if tuple(map(int, api_version.split("."))) < (1, 44):
        result["VirtualSize"] = view.size
    return result


def inspect(view: ImageView, driver_name: str, api_version: str) -> dict:
    config = view.config
    container_config = {**_CONTAINER_CONFIG_DEFAULTS, **(config.get("config") or {})}
    result = {
        "Id": view.id,
        "RepoTags": view.tags,
        "RepoDigests": view.digests,
        "Parent": view.record.extra.get("parent", ""),
        "Comment": config.get("comment", ""),
        "Created": config.get("created") or rfc3339(0),
        "DockerVersion": config.get("docker_version", ""),
        "Author": config.get("author", ""),
        "Config": container_config,
        "Architecture": config.get("architecture", ""),
        "Os": config.get("os", ""),
        "Size": view.size,
        "GraphDriver": {"Name": driver_name, "Data": None},
        "RootFS": {"Type": "layers", "Layers": [layer.diff_id for layer in view.layers]},
        "Metadata": {"LastTagTime": rfc3339(view.record.last_tag_time)
                     if view.record.last_tag_time else "0001-01-01T00:00:00Z"},
    }
    if config.get("variant"):
        result["Variant"] = config["variant"]
    if tuple(map(int, api_version.split("."))) < (1, 44):
        result["VirtualSize"] = view.size
    return result


def history(view: ImageView) -> list[dict]:
    from dockyard.images.manager import parse_created

    entries = view.config.get("history") or []
    layers = iter(view.layers)
    rows = []
    for entry in entries:
        size = 0 if entry.get("empty_layer") else next(layers, None).size if view.layers else 0
        rows.append({
            "Id": "<missing>",
            "Created": int(parse_created(entry.get("created"))),
            "CreatedBy": entry.get("created_by", ""),
            "Tags": None,
            "Size": size,
            "Comment": entry.get("comment", ""),
        })
    rows.reverse()
    if rows:
        rows[0]["Id"] = view.id
        rows[0]["Tags"] = view.tags or None
    return rows


def progress_stream(messages: Iterator[dict]) -> StreamResponse:
    """Start the operation before answering: an error before its first message is an
    HTTP error the CLI shows as such; after that, errors travel in the stream."""
    try:
        first = next(messages)
    except StopIteration:
        first = None

    def chunks() -> Iterator[bytes]:
        if first is not None:
            yield (json.dumps(first) + "\n").encode()
        try:
            for message in messages:
                yield (json.dumps(message) + "\n").encode()
        except EngineError as exc:
            detail = {"message": str(exc)}
            if getattr(exc, "code", 0):  # a failed RUN's exit code: the docker CLI exits with it
                detail["code"] = exc.code
            yield (json.dumps({"errorDetail": detail, "error": str(exc)}) + "\n").encode()

    return StreamResponse(chunks())


def _search_filters_match(filters: dict[str, list[str]], result: dict) -> bool:
    for key, field in (("is-official", "is_official"), ("is-automated", "is_automated")):
        for value in filters.get(key, []):
            if (value.lower() in ("true", "1")) != bool(result.get(field)):
                return False
    for value in filters.get("stars", []):
        try:
            if int(result.get("star_count") or 0) < int(value):
                return False
        except ValueError:
            raise InvalidParameter(f"invalid filter 'stars={value}': give a number") from None
    return True


def register(router: Router, engine: Engine) -> None:
    def images(name: str | None = None) -> ImageManager:
        """The image manager; without a storage driver there are no images, so a lookup
        by name is a plain 404 (docker inspect goes on to other object types)."""
        if engine.images is None:
            if name is not None:
                raise NotFound(f"No such image: {name}")
            raise Unavailable("no storage driver is running, so there are no images: "
                              + "; ".join(w for w in engine.warnings if "storage" in w))
        return engine.images

    @router.get("/images/json")
    def list_images(request: Request) -> Response:
        filters = parse_filters(request.arg("filters"), IMAGE_LIST_FILTERS)
        if request.arg("filter"):  # API < 1.41 sent one reference as `filter`
            filters.setdefault("reference", []).append(request.arg("filter"))
        if engine.images is None:
            return json_response([])
        manager = images()
        if request.flag("shared-size"):
            _, rows = manager.disk_usage()
            shared = {view.id: size for view, size, _ in rows}
        else:
            shared = {}
        return json_response([summary(view, request.api_version, shared.get(view.id, -1))
                              for view in manager.list(filters, all_images=request.flag("all"))])

    @router.get("/images/get")
    def save_many(request: Request) -> StreamResponse:
        names = request.args("names")
        if not names:
            raise InvalidParameter("give at least one image to save (names=...)")
        return StreamResponse(exchange.save(images(), names, oci=request.arg("format") == "oci"),
                              content_type="application/x-tar")

    @router.get("/images/{name:.+}/get")
    def save_one(request: Request) -> StreamResponse:
        return StreamResponse(exchange.save(images(), [request.params["name"]]),
                              content_type="application/x-tar")

    def registries() -> RegistryService:
        images()
        if engine.registries is None:
            raise Unavailable("no registry client is running: "
                              + "; ".join(w for w in engine.warnings if "registry" in w))
        return engine.registries

    @router.post("/images/{name:.+}/push")
    def push_image(request: Request) -> StreamResponse:
        return progress_stream(registries().push(
            request.params["name"], request.arg("tag"),
            decode_registry_auth(request.headers.get("X-Registry-Auth"))))

    @router.get("/images/search")
    def search_images(request: Request) -> Response:
        term = request.arg("term")
        if not term:
            raise InvalidParameter("give a search term (term=...)")
        filters = parse_filters(request.arg("filters"), ("is-official", "is-automated", "stars"))
        results = registries().search(term, request.int_arg("limit", 25) or 25,
                                      decode_registry_auth(request.headers.get("X-Registry-Auth")))
        return json_response([r for r in results if _search_filters_match(filters, r)])

    @router.post("/auth")
    def login(request: Request) -> Response:
        body = request.json({}) or {}
        if not isinstance(body, dict):
            raise InvalidParameter("the request body must be a JSON AuthConfig object")
        return json_response(registries().login(str(body.get("serveraddress") or ""),
                                                credentials_from_auth_config(body)))

    @router.get("/images/{name:.+}/json")
    def inspect_image(request: Request) -> Response:
        manager = images(request.params["name"])
        return json_response(inspect(manager.inspect(request.params["name"]), manager.driver_name,
                                     request.api_version))

    @router.get("/images/{name:.+}/history")
    def image_history(request: Request) -> Response:
        return json_response(history(images(request.params["name"]).inspect(request.params["name"])))

    @router.post("/images/{name:.+}/tag")
    def tag_image(request: Request) -> Response:
        repo = request.arg("repo")
        if not repo:
            raise InvalidParameter("repository name must have at least one component")
        images().tag(request.params["name"], repo, request.arg("tag"))
        return Response(201)

    @router.delete("/images/{name:.+}")
    def remove_image(request: Request) -> Response:
        return json_response(images().delete(request.params["name"], force=request.flag("force"),
                                             prune=not request.flag("noprune")))

    @router.post("/images/prune")
    def prune_images(request: Request) -> Response:
        filters = parse_filters(request.arg("filters"), IMAGE_PRUNE_FILTERS)
        return json_response(images().prune(filters))

    @router.post("/images/load")
    def load_images(request: Request) -> StreamResponse:
        messages = ({"stream": line + "\n"} for line in exchange.load(images(), request.body))
        return progress_stream(messages)

    @router.post("/images/create")
    def create_image(request: Request) -> StreamResponse:
        source = request.arg("fromSrc")
        if request.arg("fromImage"):
            return progress_stream(registries().pull(
                request.arg("fromImage"), request.arg("tag"), request.arg("platform"),
                decode_registry_auth(request.headers.get("X-Registry-Auth"))))
        if not source:
            raise InvalidParameter("give fromSrc (- for the request body, or a URL) or fromImage")
        return progress_stream(_import(request, source))

    def _import(request: Request, source: str) -> Iterator[dict]:
        changes = request.args("changes")
        message = request.arg("message") or ""
        if source == "-":
            record = images().import_rootfs(request.body, request.arg("repo"), request.arg("tag"),
                                            changes, message, "-")
        else:
            record = _import_url(request, source, changes, message)
        yield {"status": record.id}

    def _import_url(request: Request, url: str, changes: list[str], message: str):
        import urllib.error
        import urllib.request

        if not url.startswith(("http://", "https://")):
            raise InvalidParameter(f"cannot import from {url!r}: give an http(s) URL or - for stdin")
        try:
            with urllib.request.urlopen(url, timeout=60) as remote:  # noqa: S310 (scheme checked)
                return images().import_rootfs(remote, request.arg("repo"), request.arg("tag"),
                                              changes, message, url)
        except (urllib.error.URLError, TimeoutError) as exc:
            raise InvalidParameter(f"cannot download {url}: {exc}") from None

    @router.get("/system/df")
    def disk_usage(request: Request) -> Response:
        layers_size, rows = (images().disk_usage() if engine.images is not None else (0, []))
        return json_response({
            "LayersSize": layers_size,
            "Images": [summary(view, request.api_version, shared, containers)
                       for view, shared, containers in rows],
            "Containers": [],
            "Volumes": [],
            "BuildCache": _build_cache_rows(engine),
        })


def _build_cache_rows(engine: Engine) -> list[dict]:
    """`docker system df`'s build cache: the RUN --mount cache directories."""
    if engine.builder is None:
        return []
    rows = []
    for cache_id, size, modified in engine.builder.cache_mounts.usage():
        stamp = rfc3339(modified)
        rows.append({"ID": cache_id, "Parents": None, "Type": "exec.cachemount", "InUse": False,
                     "Shared": False, "Size": size, "CreatedAt": stamp, "LastUsedAt": stamp,
                     "UsageCount": 1, "Description": "cached mount (RUN --mount=type=cache)"})
    return rows
