"""HTTP routes for networks (/networks...): Docker's JSON in and out, nothing else."""

from __future__ import annotations

import re

from dockyard.api.router import Router
from dockyard.api.server import Request, Response, json_response
from dockyard.daemon.engine import Engine
from dockyard.errors import InvalidParameter, NotFound, Unavailable
from dockyard.formats.filters import label_filters_match, parse_filters

LIST_FILTERS = ("dangling", "driver", "id", "label", "label!", "name", "scope", "type")
PRUNE_FILTERS = ("until", "label", "label!")


def network_json(engine: Engine, network, verbose: bool = False) -> dict:
    manager = engine.networks
    containers = {}
    for container_id, endpoint in manager.endpoints_of(network).items():
        containers[container_id] = {
            "Name": endpoint.container_name, "EndpointID": endpoint.endpoint_id,
            "MacAddress": endpoint.mac_address,
            "IPv4Address": str(endpoint.address) if endpoint.address else "", "IPv6Address": "",
        }
    peers = {}
    if network.scope == "global" and manager.global_scope is not None:
        peers = {"Peers": manager.global_scope.peers(network.id)}
    return {
        "Name": network.name, "Id": network.id, "Created": network.created, "Scope": network.scope,
        "Driver": network.driver, "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None if network.predefined else {},
                 "Config": [dict(entry) for entry in network.ipam]},
        "Internal": network.internal, "Attachable": network.attachable, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers,
        "Options": dict(network.options), "Labels": dict(network.labels), **peers,
    }


def register(router: Router, engine: Engine) -> None:
    def networks():
        if engine.networks is None:
            raise Unavailable("no network driver runs in this daemon (see `dockyard plugins`)")
        return engine.networks

    @router.get("/networks")
    def list_networks(request: Request) -> Response:
        manager = networks()
        filters = parse_filters(request.arg("filters"), LIST_FILTERS)
        found = [n for n in manager.all() if _matches(manager, n, filters)]
        found.sort(key=lambda n: n.created)
        return json_response([network_json(engine, n) for n in found])

    @router.get("/networks/{id}")
    def inspect_network(request: Request) -> Response:
        network = networks().get(request.params["id"])
        return json_response(network_json(engine, network, request.flag("verbose")))

    @router.post("/networks/create")
    def create(request: Request) -> Response:
        body = request.json({}) or {}
        if not isinstance(body, dict):
            raise InvalidParameter("the request body must be a JSON object")
        if body.get("EnableIPv6"):
            raise InvalidParameter("IPv6 networks are not supported by dockyard yet: leave out --ipv6")
        ipam = body.get("IPAM") or {}
        if (ipam.get("Driver") or "default") != "default":
            raise InvalidParameter(f"IPAM driver {ipam.get('Driver')!r} is not supported: only the "
                                   "default one")
        pools = [p for p in ipam.get("Config") or [] if p]
        if len(pools) > 1:
            raise InvalidParameter("dockyard networks take one IPv4 subnet: give one --subnet")
        pool = pools[0] if pools else {}
        network = networks().create(
            body.get("Name") or "", body.get("Driver") or "bridge", subnet=pool.get("Subnet"),
            gateway=pool.get("Gateway"), ip_range=pool.get("IPRange"), internal=bool(body.get("Internal")),
            attachable=bool(body.get("Attachable")), labels=body.get("Labels") or {},
            options=body.get("Options") or {})
        return json_response({"Id": network.id, "Warning": ""}, 201)

    @router.delete("/networks/{id}")
    def remove(request: Request) -> Response:
        networks().remove(request.params["id"])
        return Response(204)

    @router.post("/networks/{id}/connect")
    def connect(request: Request) -> Response:
        body = request.json({}) or {}
        if engine.containers is None:
            raise NotFound(f"No such container: {body.get('Container')}")
        engine.containers.connect_network(body.get("Container") or "", request.params["id"],
                                          body.get("EndpointConfig"))
        return Response(200)

    @router.post("/networks/{id}/disconnect")
    def disconnect(request: Request) -> Response:
        body = request.json({}) or {}
        if engine.containers is None:
            raise NotFound(f"No such container: {body.get('Container')}")
        engine.containers.disconnect_network(body.get("Container") or "", request.params["id"],
                                             bool(body.get("Force")))
        return Response(200)

    @router.post("/networks/prune")
    def prune(request: Request) -> Response:
        filters = parse_filters(request.arg("filters"), PRUNE_FILTERS)
        return json_response({"NetworksDeleted": networks().prune(filters) or None})


def _matches(manager, network, filters: dict[str, list[str]]) -> bool:
    if "driver" in filters and network.driver not in filters["driver"]:
        return False
    if "id" in filters and not any(network.id.startswith(value) for value in filters["id"]):
        return False
    if "name" in filters and not any(re.search(value, network.name) for value in filters["name"]):
        return False
    if "scope" in filters and network.scope not in filters["scope"]:
        return False
    if "type" in filters:
        kind = "builtin" if network.predefined else "custom"
        if kind not in filters["type"]:
            raise_if_bad_type(filters["type"])
            return False
    if "dangling" in filters:
        dangling = filters["dangling"][-1].lower() in ("1", "true")
        if dangling != (not network.predefined and not manager.endpoints_of(network)):
            return False
    return label_filters_match(filters, network.labels)


def raise_if_bad_type(values: list[str]) -> None:
    for value in values:
        if value not in ("builtin", "custom"):
            raise InvalidParameter(f"invalid filter: 'type'='{value}'")
