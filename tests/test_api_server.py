"""The HTTP transport and router, served for real on a UNIX socket."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from dockyard.api.router import Router, split_version
from dockyard.api.server import (
    StreamResponse,
    bind_unix,
    json_response,
    json_stream,
)
from dockyard.client import APIError, Client
from dockyard.errors import Conflict, InvalidParameter


@pytest.fixture
def served(tmp_path):
    router = Router()
    state = {"released": threading.Event(), "gate": threading.Event()}

    @router.post("/echo")
    def echo(request):
        return json_response({"got": request.json(), "version": request.api_version})

    @router.post("/upload")
    def upload(request):
        return json_response({"size": len(request.read_body())})

    @router.get("/images/{name:.+}/json")
    def image(request):
        return json_response({"name": request.params["name"]})

    @router.delete("/things/{id}")
    def conflict(request):
        raise Conflict(f"thing {request.params['id']} is in use")

    @router.get("/stream")
    def stream(request):
        def produce():
            try:
                yield {"n": 1}
                state["gate"].wait(5)
                yield {"n": 2}
            finally:
                state["released"].set()
        return StreamResponse(json_stream(produce()))

    @router.get("/idle")
    def idle(request):
        def produce():
            try:
                while True:
                    yield None
                    time.sleep(0.02)
            finally:
                state["released"].set()
        return StreamResponse(produce())

    @router.get("/crash")
    def crash(request):
        raise KeyError("bug")

    @router.get("/stream-crash")
    def stream_crash(request):
        def produce():
            yield {"status": "working"}
            raise KeyError("bug in the middle")
        kind = request.arg("kind")
        if kind == "multiplexed":
            return StreamResponse(_multiplexed_then_crash(),
                                  content_type="application/vnd.docker.multiplexed-stream")
        return StreamResponse(json_stream(produce()))

    path = str(tmp_path / "api.sock")
    listener = bind_unix("unix://" + path, path, router.dispatch)
    listener.start()
    yield path, state
    listener.close()


def _multiplexed_then_crash():
    yield b"\x01\x00\x00\x00\x00\x00\x00\x03ok\n"
    raise RuntimeError("log file vanished")


def raw_request(path: str, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_split_version_accepts_known_prefixes_and_names_the_limits():
    assert split_version("/v1.44/info") == ("1.44", "/info")
    assert split_version("/v1.24/info") == ("1.24", "/info")
    assert split_version("/info") == ("1.44", "/info")
    with pytest.raises(InvalidParameter, match="1.45 is too new. Maximum supported API version is 1.44"):
        split_version("/v1.45/info")
    with pytest.raises(InvalidParameter, match="too old. Minimum supported API version is 1.24"):
        split_version("/v1.12/info")


def test_json_round_trip_with_versioned_and_plain_paths(served):
    path, _ = served
    client = Client("unix://" + path, version="1.41")
    assert client.request("POST", "/echo", body={"a": 1}).json() == {"got": {"a": 1},
                                                                     "version": "1.41"}
    reply = raw_request(path, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                              b"Connection: close\r\n\r\n[]")
    assert reply.startswith(b"HTTP/1.1 200") and b'"version": "1.44"' in reply


def test_errors_are_json_with_the_right_status(served):
    path, _ = served
    client = Client("unix://" + path)
    with pytest.raises(APIError) as malformed:
        client.request("POST", "/echo", body=b"{not json")
    assert malformed.value.status == 400 and "malformed JSON body" in malformed.value.message
    with pytest.raises(APIError) as conflict:
        client.request("DELETE", "/things/abc")
    assert (conflict.value.status, conflict.value.message) == (409, "thing abc is in use")
    with pytest.raises(APIError) as crash:
        client.request("GET", "/crash")
    assert crash.value.status == 500
    reply = raw_request(path, b"GET /v1.44/no/such/route HTTP/1.1\r\nHost: x\r\n"
                              b"Connection: close\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404")
    assert b"\r\nContent-Type: application/json\r\n" in head
    assert b"\r\nApi-Version: 1.44\r\n" in head and b"\r\nOstype: linux\r\n" in head
    assert b"\r\nDocker-Experimental: false\r\n" in head
    assert b"\r\nServer: Dockyard/" in head
    assert json.loads(body) == {"message": "page not found"}


def test_image_names_with_slashes_and_colons_route_greedily(served):
    path, _ = served
    client = Client("unix://" + path)
    assert client.get_json("/images/host:5000/a/b:1.0/json") == {"name": "host:5000/a/b:1.0"}


def test_chunked_request_bodies_are_decoded(served):
    path, _ = served
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    reply = raw_request(path, b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                              b"Connection: close\r\n\r\n" + body)
    assert reply.split(b"\r\n\r\n", 1)[1].strip() == b'{"size": 11}'


def test_keep_alive_serves_two_requests_on_one_connection(served):
    path, _ = served
    request = b"GET /images/a/json HTTP/1.1\r\nHost: x\r\n\r\n"
    reply = raw_request(path, request + request)
    assert reply.count(b"HTTP/1.1 200 OK") == 2


def test_stream_messages_are_flushed_one_by_one(served):
    path, state = served
    response = Client("unix://" + path).request("GET", "/stream", stream=True)
    messages = response.iter_json()
    assert next(messages) == {"n": 1}  # arrives while the producer still waits
    state["gate"].set()
    assert next(messages) == {"n": 2}
    assert list(messages) == []


def test_a_vanished_client_releases_an_idle_stream(served):
    path, state = served
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        sock.sendall(b"GET /idle HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
    assert state["released"].wait(5), "the producer was never closed"


def test_a_burst_of_clients_is_queued_not_refused(served):
    """Twenty parallel `docker run`s connect at once; a backlog of 5 refused the sixth."""
    path, _ = served
    sockets = []
    try:
        for _ in range(100):
            sock = socket.socket(socket.AF_UNIX)
            sock.setblocking(False)  # as Go's runtime connects: a full backlog is an error
            sock.connect(path)
            sock.setblocking(True)
            sockets.append(sock)
        for sock in sockets:
            sock.sendall(b"GET /images/x/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        for sock in sockets:
            assert sock.recv(12) == b"HTTP/1.1 200"
    finally:
        for sock in sockets:
            sock.close()


def dechunk(body: bytes) -> tuple[bytes, bool]:
    """The payload of a chunked body, and whether it ended with the zero chunk."""
    payload, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return payload, rest == b"\r\n"
        payload, rest = payload + rest[:size], rest[size + 2:]
    return payload, False


def test_a_stream_that_fails_half_way_ends_with_an_error_message(served):
    path, _ = served
    reply = raw_request(path, b"GET /stream-crash HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    payload, clean_end = dechunk(body)
    assert clean_end  # never a dropped connection
    lines = [json.loads(line) for line in payload.splitlines()]
    assert lines[0] == {"status": "working"}
    assert lines[-1] == {"error": "internal error: KeyError: 'bug in the middle'",
                         "errorDetail": {"message": "internal error: KeyError: 'bug in the middle'"}}


def test_a_multiplexed_stream_that_fails_ends_with_a_stderr_frame(served):
    path, _ = served
    reply = raw_request(path, b"GET /stream-crash?kind=multiplexed HTTP/1.1\r\nHost: x\r\n"
                              b"Connection: close\r\n\r\n")
    payload, clean_end = dechunk(reply.partition(b"\r\n\r\n")[2])
    assert clean_end
    assert payload[:11] == b"\x01\x00\x00\x00\x00\x00\x00\x03ok\n"
    assert payload[11] == 2 and b"internal error: RuntimeError: log file vanished" in payload[19:]
