"""HTTP routes for volumes (/volumes...): Docker's JSON in and out, nothing else."""

from __future__ import annotations

import re

from dockyard.api.router import Router
from dockyard.api.server import Request, Response, json_response
from dockyard.daemon.engine import Engine
from dockyard.errors import InvalidParameter, Unavailable
from dockyard.formats.filters import label_filters_match, parse_filters

LIST_FILTERS = ("dangling", "driver", "label", "label!", "name")
PRUNE_FILTERS = ("all", "label", "label!")


def volume_json(manager, volume) -> dict:
    found = {
        "CreatedAt": volume.created, "Driver": volume.driver, "Labels": dict(volume.labels) or None,
        "Mountpoint": manager.mountpoint(volume), "Name": volume.name,
        "Options": dict(volume.options) or None, "Scope": "local",
    }
    status = manager.status(volume)
    if status:
        found["Status"] = status
    return found


def register(router: Router, engine: Engine) -> None:
    def volumes():
        if engine.volumes is None:
            raise Unavailable("no volume driver runs in this daemon (see `dockyard plugins`)")
        return engine.volumes

    @router.get("/volumes")
    def list_volumes(request: Request) -> Response:
        manager = volumes()
        filters = parse_filters(request.arg("filters"), LIST_FILTERS)
        found = [v for v in manager.all() if _matches(manager, v, filters)]
        found.sort(key=lambda v: v.name)
        return json_response({"Volumes": [volume_json(manager, v) for v in found], "Warnings": []})

    @router.post("/volumes/create")
    def create(request: Request) -> Response:
        body = request.json({}) or {}
        if not isinstance(body, dict):
            raise InvalidParameter("the request body must be a JSON object")
        volume = volumes().create(body.get("Name") or None, body.get("Driver") or "local",
                                  body.get("DriverOpts") or {}, body.get("Labels") or {})
        return json_response(volume_json(volumes(), volume), 201)

    @router.get("/volumes/{name}")
    def inspect(request: Request) -> Response:
        manager = volumes()
        return json_response(volume_json(manager, manager.get(request.params["name"])))

    @router.delete("/volumes/{name}")
    def remove(request: Request) -> Response:
        volumes().remove(request.params["name"], force=request.flag("force"))
        return Response(204)

    @router.post("/volumes/prune")
    def prune(request: Request) -> Response:
        filters = parse_filters(request.arg("filters"), PRUNE_FILTERS)
        deleted, reclaimed = volumes().prune(filters)
        return json_response({"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed})


def _matches(manager, volume, filters: dict[str, list[str]]) -> bool:
    if "driver" in filters and volume.driver not in filters["driver"]:
        return False
    if "name" in filters and not any(re.search(value, volume.name) for value in filters["name"]):
        return False
    if "dangling" in filters:
        value = filters["dangling"][-1].lower()
        if value not in ("true", "false", "1", "0"):
            raise InvalidParameter(f"invalid filter 'dangling={value}': use true or false")
        if (value in ("true", "1")) != (not manager.users_of(volume.name)):
            return False
    return label_filters_match(filters, volume.labels)
