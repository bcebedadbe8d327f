"""Every route of a running daemon under generated input (issue #15): no 500, no hang, no
dropped daemon, and nothing made by a request the daemon refused.

Bodies are drawn from each route's published types (engine-api-1.44.json), right and
wrong by turns, so they reach past the first check; query strings, path parameters and
headers likewise; then raw malformed HTTP. The daemon runs in a network namespace with
only a loopback device, so a pull, push, login or remote build the fuzzer asks for
cannot leave the machine (it fails at once, as offline).

Bounded: a fixed number of examples per test (derandomized under CI, so a red run can be
replayed), about two minutes in all on the CI machine.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from dockyard.api.app import make_router
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.root]

SCHEMAS = json.loads((Path(__file__).resolve().parents[1] / "core/dockyard/api/engine-api-1.44.json")
                     .read_text())["routes"]
SWARM = ("/swarm", "/nodes", "/services", "/tasks", "/secrets", "/configs")
# Routes that talk to a registry answer 503 when it cannot be reached (here: never).
REGISTRY_ROUTES = ("/auth", "/images/create", "/images/search", "/distribution/", "/build")
# Seconds for the status line: a route may stream for ever after it, never before.
REPLY_TIMEOUT = 15.0
# Query values that are waiting times: a large one is a legitimate, very long request.
TIMES = {"t", "timeout", "condition"}

FUZZ = settings(max_examples=int(os.environ.get("DOCKYARD_FUZZ_EXAMPLES", 400)), deadline=None,
                derandomize=bool(os.environ.get("CI")), database=None,
                suppress_health_check=list(HealthCheck))


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = REPLY_TIMEOUT) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    from dockyard.plugin.testing.daemon import DaemonProcess

    netns = f"dyfuzz{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
    process = DaemonProcess(tmp_path_factory.mktemp("fz", numbered=True), netns=netns)
    try:
        process.start()
        subprocess.run([sys.executable, "-m", "dockyard.cli", "-H", process.host, "image", "bootstrap",
                        "busybox"], check=True, capture_output=True)
        api = process.client()
        api.request("POST", "/containers/create", {"name": "fuzz-target"},
                    body={"Image": "busybox", "Cmd": ["sleep", "30"]}).read()
        api.request("POST", "/volumes/create", body={"Name": "fuzz-vol"}).read()
        api.request("POST", "/networks/create", body={"Name": "fuzz-net"}).read()
        yield process
    finally:
        process.remove_containers()
        process.teardown()
        subprocess.run(["ip", "netns", "delete", netns], check=False)


# -- what to throw ------------------------------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
SEEDS = ["busybox", "busybox:latest", "fuzz-target", "fuzz-vol", "fuzz-net", "bridge", "host", "none"]
texts = st.text(max_size=24) | st.sampled_from(["", *SEEDS, "..", "/", "a/b:c", "localhost:1/x", "-", "%00",
                                                "0" * 64])
# Path parameters name the objects the fixture made more often than not, to get past the 404.
names = st.sampled_from(SEEDS) | st.sampled_from(SEEDS) | texts


def typed(schema: dict, depth: int = 0) -> st.SearchStrategy:
    """Values of the schema's type most of the time, anything JSON now and then."""
    if depth > 4:
        return json_values
    kinds = schema.get("type", "object")
    options = []
    for kind in kinds if isinstance(kinds, list) else [kinds]:
        if kind == "string":
            options.append(texts)
        elif kind == "integer":
            options.append(st.integers(min_value=schema.get("minimum", -2**63) - 1,
                                       max_value=schema.get("maximum", 2**63 - 1) + 1)
                           | st.integers(min_value=-3, max_value=70000))
        elif kind == "boolean":
            options.append(st.booleans())
        elif kind == "array":
            options.append(st.lists(typed(schema.get("items", {}), depth + 1), max_size=3))
        elif kind == "object":
            members = schema.get("properties", {})
            extra = schema.get("additionalProperties")
            fixed = st.fixed_dictionaries({}, optional={name: typed(sub, depth + 1)
                                                        for name, sub in members.items()})
            if isinstance(extra, dict):
                fixed = st.dictionaries(texts, typed(extra, depth + 1), max_size=3) | fixed
            options.append(fixed)
        else:
            options.append(json_values)
    right = st.one_of(*options)
    return st.one_of(right, right, right, json_values)


def served_routes() -> list[tuple[str, str]]:
    """Every route, with the swarm catch-alls (all one 503 handler) down to two."""
    routes = [(method, pattern) for method, pattern, _types in make_router(None).patterns]
    swarm = [route for route in routes if route[1].startswith(SWARM)]
    return [route for route in routes if route not in swarm] + swarm[:2]


ROUTES = served_routes()


def _fill(pattern: str, draw) -> str:
    out, position = [], 0
    while (start := pattern.find("{", position)) != -1:
        end = pattern.index("}", start)
        out.append(pattern[position:start])
        out.append(quote(draw(names), safe="/:" if ":.+" in pattern[start:end] else ""))
        position = end + 1
    out.append(pattern[position:])
    return "".join(out) or "/"


def _schema_key(method: str, pattern: str) -> str | None:
    from dockyard.api.validation import route_types
    types = route_types(method, pattern)
    return types.route if types else None


@st.composite
def requests(draw, routes=ROUTES):
    method, pattern = draw(st.sampled_from(routes))
    key = _schema_key(method, pattern)
    declared = SCHEMAS.get(key, {"query": {}, "body": None}) if key else {"query": {}, "body": None}
    query = {}
    for name, kind in declared["query"].items():
        if not draw(st.booleans()):
            continue
        if name in TIMES:
            query[name] = draw(st.sampled_from(["0", "1", "-1", "", "x", "not-running", "removed"]))
        elif kind == "integer":
            query[name] = str(draw(st.integers(min_value=-2**64, max_value=2**64))) if draw(st.booleans()) \
                else draw(texts)
        elif kind == "boolean":
            query[name] = draw(st.sampled_from(["0", "1", "true", "false", "", "yes"]))
        elif name in ("filters", "buildargs", "labels", "cachefrom", "extrahosts"):
            query[name] = json.dumps(draw(json_values))
        else:
            query[name] = draw(texts)
    if draw(st.booleans()):
        query[draw(st.text(min_size=1, max_size=6))] = draw(texts)
    body_kind = draw(st.sampled_from(["typed", "typed", "json", "bytes", "none"]))
    if declared["body"] and body_kind == "typed":
        body = json.dumps(draw(typed(declared["body"]))).encode()
    elif body_kind == "json" or (body_kind == "typed"):
        body = json.dumps(draw(json_values)).encode()
    elif body_kind == "bytes":
        body = draw(st.binary(max_size=200))
    else:
        body = b""
    headers = {"Content-Type": draw(st.sampled_from(["application/json", "application/x-tar", "text/plain",
                                                     "", "application/json; charset=utf-8"]))}
    if draw(st.booleans()):
        credentials = st.sampled_from(["", "e30=", "not base64!", "eyJ1c2VybmFtZSI6IDF9", "bnVsbA=="])
        headers[draw(st.sampled_from(["X-Registry-Auth", "X-Registry-Config"]))] = draw(
            credentials | st.text(max_size=20))
    version = draw(st.sampled_from(["", "/v1.44", "/v1.24", "/v1.41", "/v1.99", "/v0.1"]))
    path = version + _fill(pattern, draw)
    if query:
        path += "?" + urlencode(query)
    return method, path, body, headers


# -- what must hold --------------------------------------------------------------------------

def inventory(socket_path: str) -> dict[str, list]:
    connection = UnixConnection(socket_path)
    listed = {}
    try:
        for name, path, key in [("containers", "/containers/json?all=1", "Id"),
                                ("images", "/images/json?all=1", "Id"),
                                ("volumes", "/volumes", "Name"), ("networks", "/networks", "Id")]:
            connection.request("GET", path)
            reply = connection.getresponse()
            assert reply.status == 200, f"GET {path}: {reply.status}"
            value = json.loads(reply.read())
            items = value["Volumes"] or [] if name == "volumes" else value
            listed[name] = sorted(item[key] for item in items)
    finally:
        connection.close()
    return listed


def send(socket_path: str, method: str, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    connection = UnixConnection(socket_path)
    try:
        try:
            connection.putrequest(method, path, skip_accept_encoding=True)
        except (http.client.InvalidURL, UnicodeEncodeError, ValueError):
            return 0, b""  # not sendable as HTTP at all; the raw test covers such bytes
        for name, value in headers.items():
            try:
                connection.putheader(name, value)
            except ValueError:
                pass
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        reply = connection.getresponse()
        streaming = reply.status == 101 or reply.getheader("Transfer-Encoding") == "chunked" \
            or "vnd.docker" in (reply.getheader("Content-Type") or "")
        data = b"" if streaming or method == "HEAD" else reply.read(65536)
        return reply.status, data
    finally:
        connection.close()


def assert_well_answered(daemon, method, path, status, data):
    if status == 0:
        return
    bare = path.split("?")[0]
    for prefix in ("/v1.44", "/v1.24", "/v1.41", "/v1.99", "/v0.1"):
        bare = bare.removeprefix(prefix)
    if status == 503:
        assert bare.startswith(SWARM) or bare.startswith(REGISTRY_ROUTES) or bare.endswith("/push"), \
            f"{method} {path}: 503 from a route that needs no other service: {data[:300]!r}"
    else:
        assert status < 500, f"{method} {path}: {status} {data[:500]!r}"
    if status >= 400 and data:
        assert "message" in json.loads(data), f"{method} {path}: an error without a message: {data[:200]!r}"


def check_request(daemon, method, path, body, headers):
    before = inventory(str(daemon.socket_path))
    status, data = send(str(daemon.socket_path), method, path, body, headers)
    assert_well_answered(daemon, method, path, status, data)
    after = inventory(str(daemon.socket_path))  # also: the daemon still answers
    if status >= 400:
        assert after == before, f"{method} {path} was refused ({status}) but changed {before} -> {after}"


@FUZZ
@given(request=requests())
def test_generated_requests_to_every_route(daemon, request):
    check_request(daemon, *request)


BODY_ROUTES = [(method, pattern) for method, pattern in ROUTES
               if (key := _schema_key(method, pattern)) and SCHEMAS[key]["body"]]


@settings(FUZZ, max_examples=FUZZ.max_examples // 2)
@given(request=requests(routes=BODY_ROUTES))
def test_generated_bodies_to_every_route_that_takes_one(daemon, request):
    check_request(daemon, *request)


# -- raw HTTP -----------------------------------------------------------------------------------

def raw_exchange(socket_path: str, data: bytes, timeout: float = 5.0) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        connection.connect(socket_path)
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return received


MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /_ping HTTP/9.9\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nContent-Length: many\r\n\r\n",
    b"POST /containers/create HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"Image\":",
    b"POST /containers/create HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"POST /containers/create HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"Ima\r\n",
    b"POST /build HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\n" + b"X-Long: " + b"b" * 70000 + b"\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(200)) + b"\r\n",
    b"GET /containers/%ZZ/json HTTP/1.1\r\n\r\n",
    b"GET /containers/%00/json HTTP/1.1\r\n\r\n",
    b"GET /images/..%2F..%2Fetc%2Fpasswd/json HTTP/1.1\r\n\r\n",
    b"POST /containers/create HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n"
    b"{\"Image\":",
    b"POST /containers/create HTTP/1.1\r\nContent-Length: 4\r\n\r\n\xff\xfe\xfd\xfc",
    b"GET /events?since=x&until=y HTTP/1.1\r\n\r\n",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",  # a TLS hello on the UNIX socket
]


def _status(reply: bytes) -> int | None:
    line = reply.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[0].startswith(b"HTTP/") and line[1].isdigit() else None


@pytest.mark.parametrize("data", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_http_is_refused_and_the_daemon_goes_on(daemon, data):
    before = inventory(str(daemon.socket_path))
    status = _status(raw_exchange(str(daemon.socket_path), data))
    assert status is None or status < 500, (data[:80], status)
    assert inventory(str(daemon.socket_path)) == before


@settings(FUZZ, max_examples=FUZZ.max_examples // 4)
@given(data=st.binary(max_size=300) | st.builds(
    lambda line, rest: line + b"\r\n" + rest,
    st.sampled_from([b"GET /info HTTP/1.1", b"POST /build HTTP/1.1", b"POST /containers/create HTTP/1.1"]),
    st.binary(max_size=200)))
def test_generated_bytes_never_break_the_daemon(daemon, data):
    status = _status(raw_exchange(str(daemon.socket_path), data, timeout=REPLY_TIMEOUT))
    assert status is None or status < 500, (data[:80], status)


def test_a_stalled_client_does_not_stall_the_others(daemon):
    stalled = []
    for _ in range(20):  # half-sent requests held open, as a slow or hostile client does
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(str(daemon.socket_path))
        connection.sendall(b"POST /containers/create HTTP/1.1\r\nContent-Length: 50\r\n\r\n{")
        stalled.append(connection)
    try:
        started = time.monotonic()
        assert send(str(daemon.socket_path), "GET", "/_ping", b"", {})[0] == 200
        assert time.monotonic() - started < 5
    finally:
        for connection in stalled:
            connection.close()


def test_after_the_fuzz_the_daemon_is_whole(daemon):
    """Last in the module: the same daemon process answers, logged no traceback, and
    leaves no mount behind once its containers are gone."""
    assert daemon.process.poll() is None
    assert send(str(daemon.socket_path), "GET", "/_ping", b"", {})[0] == 200
    daemon.remove_containers()
    log = daemon.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[log.index("Traceback") - 300:][:3000]
    mounts = [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if f" {daemon.root.resolve()}/" in line and "/containers/" in line]
    assert mounts == [], mounts

