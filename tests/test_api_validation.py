"""Bad input is a 400 that names the field (issue #15): request bodies and query strings
checked against the Engine API 1.44 types before any manager sees them.

The unit half needs no root: the messages, Go's decoding rules, the extractor. The other
half drives a real daemon with docker-py and counts what a rejected request left behind.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
from pathlib import Path

import pytest
from dockyard.api.app import make_router
from dockyard.api.validation import parse_json, route_types
from dockyard.errors import InvalidParameter

REPO = Path(__file__).resolve().parents[1]


def check(route: str, body: str):
    method, pattern = route.split(" ", 1)
    return route_types(method, pattern).check_body(parse_json(body))


def test_every_route_the_daemon_serves_has_published_types():
    served = [(method, pattern) for method, pattern, types in make_router(None).patterns
              if types is None and not pattern.startswith(("/dockyard/", "/swarm", "/nodes", "/services",
                                                             "/tasks", "/secrets", "/configs"))
              and pattern not in ("/grpc", "/session")]  # upgraded to HTTP/2: BuildKit's gRPC
    assert served == []  # a route missing here would take any body unchecked


@pytest.mark.parametrize("body, message", [
    ('{"Image": 123}', "Image must be a string, not the number 123"),
    ('{"HostConfig": {"Memory": "lots"}}', 'HostConfig.Memory must be an integer, not the string "lots"'),
    ('{"Env": [null]}', "Env[0] must be a string, not null"),
    ('{"HostConfig": {"Ulimits": [{"Soft": "a"}]}}',
     'HostConfig.Ulimits[0].Soft must be an integer, not the string "a"'),
    ('{"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": 8080}]}}}',
     'HostConfig.PortBindings["80/tcp"][0].HostPort must be a string, not the number 8080'),
    ('{"Labels": {"a": true}}', 'Labels["a"] must be a string, not the boolean true'),
    ('{"ExposedPorts": {"80/tcp": []}}', 'ExposedPorts["80/tcp"] must be an object, not a list'),
    ('{"Healthcheck": {"Test": "CMD true"}}', 'Healthcheck.Test must be a list of strings, not the string'),
    ('{"HostConfig": {"Memory": 1.0}}', "HostConfig.Memory must be an integer, not the number 1.0"),
    ('{"HostConfig": {"Memory": 9223372036854775808}}',
     "HostConfig.Memory must be at most 9223372036854775807"),
    ('{"StopTimeout": false}', "StopTimeout must be an integer, not the boolean false"),
    ('{"Volumes": []}', "Volumes must be an object of objects, not a list"),
    ('[]', "the request body must be an object, not a list"),
    ('"text"', "the request body must be an object, not the string"),
])
def test_a_wrong_type_in_container_create_names_the_field_and_the_type(body, message):
    with pytest.raises(InvalidParameter) as failure:
        check("POST /containers/create", body)
    assert str(failure.value).startswith("invalid request body: ")
    assert message in str(failure.value)
    assert failure.value.status == 400


def test_other_bodies_are_checked_too():
    cases = {
        "POST /networks/create": ('{"Options": {"mtu": 1500}}', 'Options["mtu"] must be a string'),
        "POST /volumes/create": ('{"Labels": ["a"]}', "Labels must be an object of strings, not a list"),
        "POST /containers/{id}/exec": ('{"Cmd": [1]}', "Cmd[0] must be a string, not the number 1"),
        "POST /exec/{id}/start": ('{"Detach": "yes"}', "Detach must be true or false"),
        "POST /containers/{id}/update": ('{"RestartPolicy": {"MaximumRetryCount": "3"}}',
                                         "RestartPolicy.MaximumRetryCount must be an integer"),
        "POST /networks/{id}/connect": ('{"EndpointConfig": {"Aliases": "db"}}',
                                        "EndpointConfig.Aliases must be a list of strings"),
        "POST /commit": ('{"Cmd": 5}', "Cmd must be a string or a list of strings, not the number 5"),
        "POST /auth": ('{"username": 1}', "username must be a string"),
    }
    for route, (body, message) in cases.items():
        with pytest.raises(InvalidParameter) as failure:
            check(route, body)
        assert message in str(failure.value), route


def test_a_body_that_fits_reaches_the_handler_as_go_decodes_it():
    body = check("POST /containers/create",
                 '{"Image": "busybox", "Cmd": "echo hi", "Entrypoint": null, "Unknown": {"x": 1},'
                 ' "HostConfig": {"CapAdd": "NET_ADMIN", "Memory": null, "Binds": ["/a:/b"]}}')
    assert body == {"Image": "busybox", "Cmd": ["echo hi"], "Unknown": {"x": 1},
                    "HostConfig": {"CapAdd": ["NET_ADMIN"], "Binds": ["/a:/b"]}}


def test_integer_query_parameters_are_checked_and_loose_booleans_are_not():
    stop = route_types("POST", "/containers/{id}/stop")
    with pytest.raises(InvalidParameter, match=r"invalid query parameter t='soon': it must be an integer"):
        stop.check_query({"t": ["soon"]})
    stop.check_query({"t": ["10"], "signal": ["KILL"]})
    stop.check_query({"t": [""]})  # empty is "not given", as in moby
    route_types("GET", "/containers/json").check_query({"all": ["whatever"]})
    route_types("GET", "/containers/{id}/logs").check_query({"since": ["1700000000.5"]})  # a timestamp


def test_the_extractor_inlines_refs_merges_allof_and_applies_go_types(tmp_path):
    script = str(REPO / "tools/extract-api-schema")
    loader = importlib.machinery.SourceFileLoader("extract_api_schema", script)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    extractor_module = importlib.util.module_from_spec(spec)
    loader.exec_module(extractor_module)
    swagger = {
        "info": {"version": "1.44"},
        "definitions": {
            "ContainerConfig": {"type": "object", "description": "x", "properties": {
                "Cmd": {"type": "array", "items": {"type": "string"}},
                "Entrypoint": {"type": "array", "items": {"type": "string"}},
                "Shell": {"type": "array", "items": {"type": "string"}},
                "Port": {"type": "integer", "format": "uint16", "minimum": 1, "example": 5},
                "Kind": {"allOf": [{"$ref": "#/definitions/Kind"}]}}},
            "Kind": {"type": "string", "enum": ["bind", "volume"]},
            "HostConfig": {"allOf": [{"$ref": "#/definitions/Resources"}, {"type": "object", "properties": {
                "CapAdd": {"type": "array"}, "CapDrop": {"type": "array"}}}]},
            "Resources": {"type": "object", "properties": {"Memory": {"type": "integer", "format": "int64"}}},
        },
        "paths": {"/containers/create": {"post": {"parameters": [
            {"in": "query", "name": "name", "type": "string"},
            {"in": "body", "name": "body", "schema": {"allOf": [
                {"$ref": "#/definitions/ContainerConfig"},
                {"type": "object", "properties": {"HostConfig": {"$ref": "#/definitions/HostConfig"}}}]}}]}},
            "/swarm": {"get": {}}},
    }
    routes = extractor_module.Extractor(swagger).routes(swagger["paths"])
    assert list(routes) == ["POST /containers/create"]
    body = routes["POST /containers/create"]["body"]
    assert body["properties"]["Cmd"] == {"type": ["string", "array"], "items": {"type": "string"}}
    assert body["properties"]["Port"] == {"type": "integer", "minimum": 0, "maximum": 65535}
    assert body["properties"]["Kind"] == {"type": "string"}  # allOf of one ref is that type, enum dropped
    assert body["properties"]["HostConfig"]["properties"]["Memory"]["maximum"] == 2**63 - 1
    assert body["properties"]["HostConfig"]["properties"]["CapAdd"]["type"] == ["string", "array"]
    assert routes["POST /containers/create"]["query"] == {"name": "string"}


def test_the_shipped_types_are_api_1_44_and_take_the_apis_own_example_bodies():
    document = json.loads((REPO / "core/dockyard/api/engine-api-1.44.json").read_text())
    assert document["api_version"] == "1.44"
    examples = {route: types["example"] for route, types in document["routes"].items() if "example" in types}
    assert "POST /containers/create" in examples
    for route, example in examples.items():
        check(route, json.dumps(example))  # raises if the types refuse Docker's documented request


def test_what_the_docker_cli_sends_for_mounts_ports_and_resources_passes():
    check("POST /containers/create", json.dumps({
        "Image": "busybox", "Cmd": ["true"], "Entrypoint": [""], "ExposedPorts": {"80/tcp": {}},
        "Volumes": {"/data": {}}, "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000},
        "HostConfig": {"Mounts": [{"Type": "bind", "Source": "/tmp", "Target": "/host", "ReadOnly": True},
                                  {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1024,
                                                                                    "Mode": 0o1777}}],
                       "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                       "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
                       "MemorySwappiness": -1, "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
                       "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m"}}},
        "NetworkingConfig": {"EndpointsConfig": {"n": {"Aliases": ["a"], "IPAMConfig": {"IPv4Address": ""}}}},
    }))


# -- against a running daemon, with docker-py --------------------------------------------------

@pytest.fixture(scope="module")
def client(tmp_path_factory):
    docker_py = pytest.importorskip("docker")
    from conftest import busybox_daemon

    with busybox_daemon(tmp_path_factory, "valid") as process:
        client = docker_py.DockerClient(base_url=process.host, timeout=60)
        yield client
        client.close()


def inventory(client) -> tuple:
    api = client.api
    return (len(api.containers(all=True)), len(api.volumes().get("Volumes") or []),
            len(api.networks()), len(api.images(all=True)))


@pytest.mark.root
@pytest.mark.compat
def test_docker_py_gets_a_400_naming_the_field_and_nothing_is_made(client):
    import docker as docker_py

    before = inventory(client)
    attempts = [
        (lambda: client.api.create_container("busybox", environment=[None]), "Env[0] must be a string"),
        (lambda: client.api.create_container(123), "Image must be a string, not the number 123"),
        (lambda: client.api.create_container("busybox", host_config={"Memory": "lots"}),
         'HostConfig.Memory must be an integer, not the string "lots"'),
        (lambda: client.api.create_container("busybox",
                                             host_config={"Ulimits": [{"Name": "nofile", "Soft": "a"}]}),
         "HostConfig.Ulimits[0].Soft must be an integer"),
        (lambda: client.api.create_container("busybox", volumes=["/data"], host_config={"Binds": "/a:/b"}),
         "HostConfig.Binds must be a list of strings, not the string"),
        (lambda: client.api.create_network("n1", options={"com.docker.network.driver.mtu": 1400}),
         'Options["com.docker.network.driver.mtu"] must be a string, not the number 1400'),
        (lambda: client.api.create_volume("v1", labels={"tier": 1}), 'Labels["tier"] must be a string'),
    ]
    for attempt, message in attempts:
        with pytest.raises(docker_py.errors.APIError) as failure:
            attempt()
        assert failure.value.status_code == 400, failure.value
        assert message in failure.value.explanation
    assert inventory(client) == before


@pytest.mark.root
@pytest.mark.compat
def test_docker_py_query_and_exec_mistakes_are_400s(client):
    import docker as docker_py

    container = client.api.create_container("busybox", "sleep 60")["Id"]
    try:
        with pytest.raises(docker_py.errors.APIError) as failure:
            client.api.resize(container, height="tall", width=80)
        assert failure.value.status_code == 400
        assert "h='tall': it must be an integer" in failure.value.explanation
        with pytest.raises(docker_py.errors.APIError) as failure:
            client.api.exec_create(container, [1, 2])
        assert failure.value.status_code == 400
        assert "Cmd[0] must be a string, not the number 1" in failure.value.explanation
    finally:
        client.api.remove_container(container, force=True)


@pytest.mark.root
@pytest.mark.compat
def test_nulls_and_go_string_slices_that_docker_accepts_still_work(client):
    api = client.api
    response = api._post_json(api._url("/containers/create"), data={
        "Image": "busybox", "Cmd": "true", "Entrypoint": None, "Env": None, "Labels": None,
        "HostConfig": {"Memory": None, "CapAdd": "NET_ADMIN", "PortBindings": None}})
    created = api._result(response, json=True)["Id"]
    try:
        inspected = api.inspect_container(created)
        assert inspected["Config"]["Cmd"] == ["true"]
        assert inspected["HostConfig"]["CapAdd"] == ["NET_ADMIN"]
    finally:
        api.remove_container(created, force=True)
