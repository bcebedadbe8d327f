"""HTTP/1.1 transport for the API: UNIX and TLS listeners, requests, streamed replies.

Built on the standard library's http.server because the API needs two things most
frameworks hide: taking over the raw connection (attach and exec upgrade it to a
bidirectional byte stream) and flushing each message of a chunked reply as it is made
(events, pull progress, logs). One thread per connection keeps both simple.
"""

from __future__ import annotations

import json
import logging
import os
import select
import socket
import socketserver
import ssl
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

from dockyard import API_VERSION, __version__
from dockyard.api.validation import RouteTypes, parse_json
from dockyard.errors import EngineError, InvalidParameter

log = logging.getLogger(__name__)

SERVER = f"Dockyard/{__version__} (linux)"
COMMON_HEADERS = {
    "Api-Version": API_VERSION,
    "Ostype": "linux",
    "Docker-Experimental": "false",
}

# A request body this large is not JSON anyone meant to send.
MAX_JSON_BODY = 16 * 1024 * 1024


class ChunkedReader:
    """Reads a `Transfer-Encoding: chunked` request body as a plain stream."""

    def __init__(self, rfile: BinaryIO) -> None:
        self._rfile = rfile
        self._left = 0
        self._done = False

    def _next_chunk(self) -> None:
        line = self._rfile.readline(65537)
        try:
            self._left = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise InvalidParameter("malformed chunked request body") from None
        if self._left == 0:
            self._done = True
            while self._rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers

    def read(self, size: int = -1) -> bytes:
        parts = []
        while not self._done and size != 0:
            if self._left == 0:
                self._next_chunk()
                continue
            want = self._left if size < 0 else min(size, self._left)
            data = self._rfile.read(want)
            if not data:
                raise InvalidParameter("request body ended early")
            parts.append(data)
            self._left -= len(data)
            if size > 0:
                size -= len(data)
            if self._left == 0:
                self._rfile.readline(3)  # CRLF after each chunk
        return b"".join(parts)


class LimitedReader:
    """Reads exactly Content-Length bytes of a request body, and no more."""

    def __init__(self, rfile: BinaryIO, length: int) -> None:
        self._rfile = rfile
        self._left = length

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if size < 0 else min(size, self._left)
        data = self._rfile.read(want)
        self._left -= len(data)
        return data


@dataclass
class Request:
    method: str
    path: str  # without the /vX.Y prefix
    api_version: str
    query: dict[str, list[str]]
    headers: Any  # email.message.Message: case-insensitive get()
    body: ChunkedReader | LimitedReader
    params: dict[str, str] = field(default_factory=dict)
    types: RouteTypes | None = None  # the route's published request types, set by the router

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value, as Go's FormValue gives moby: docker-py sends `dockerfile`
        twice for a Dockerfile outside the context (its name in the tar, then its text)."""
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return list(self.query.get(name, []))

    def flag(self, name: str, default: bool = False) -> bool:
        """Docker's boolean query values: 1/true/True are true, 0/false/"" false."""
        value = self.arg(name)
        if value is None:
            return default
        return value.strip().lower() not in ("", "0", "false", "no")

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        value = self.arg(name)
        if value in (None, ""):
            return default
        try:
            return int(value)
        except ValueError:
            raise InvalidParameter(f"invalid value for {name}: {value!r} is not an integer") from None

    def read_body(self, limit: int = MAX_JSON_BODY) -> bytes:
        data = self.body.read(limit + 1)
        if len(data) > limit:
            raise InvalidParameter(f"request body is larger than {limit} bytes")
        return data

    def json(self, default: Any = None) -> Any:
        data = self.read_body()
        if not data.strip():
            return default
        try:
            value = parse_json(data)
        except ValueError as exc:
            raise InvalidParameter(f"malformed JSON body: {exc}") from None
        return self.types.check_body(value) if self.types else value


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status, (json.dumps(value) + "\n").encode(), "application/json", headers or {})


def error_response(status: int, message: str) -> Response:
    return json_response({"message": message}, status)


@dataclass
class StreamResponse:
    """A chunked reply; each item the iterator yields is sent and flushed at once.

    A producer that waits for something to send should yield None now and then: the
    server then checks whether the client is still there and, if not, closes the
    producer, which frees whatever it was subscribed to.
    """

    chunks: Iterable[bytes]
    content_type: str = "application/json"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def json_stream(messages: Iterable[Any]) -> Iterator[bytes | None]:
    """Newline-delimited JSON; None (an idle tick, see StreamResponse) passes through."""
    for message in messages:
        yield None if message is None else (json.dumps(message) + "\n").encode()


def stream_error(content_type: str, exc: Exception) -> bytes:
    """The last message of a stream that failed half-way, in the stream's own format:
    Docker's `{"error", "errorDetail"}` for JSON streams (what the docker CLI and docker-py
    raise from), a stderr frame for multiplexed ones, the text for raw ones."""
    message = str(exc) if isinstance(exc, EngineError) else f"internal error: {type(exc).__name__}: {exc}"
    if content_type == "application/vnd.docker.multiplexed-stream":
        text = (message + "\n").encode()
        return struct.pack(">BxxxI", 2, len(text)) + text
    if content_type.startswith("application/json"):
        return (json.dumps({"error": message, "errorDetail": {"message": message}}) + "\n").encode()
    return (message + "\n").encode()


@dataclass
class HijackResponse:
    """Take over the connection: after the upgrade reply, `session(conn, rfile)` owns
    the raw socket until it returns; the connection is then closed."""

    session: Callable[[socket.socket, BinaryIO], None]
    content_type: str = "application/vnd.docker.multiplexed-stream"
    protocol: str = "tcp"  # what `Upgrade:` names: tcp for attach and exec, h2c for BuildKit


Reply = Response | StreamResponse | HijackResponse
Dispatcher = Callable[[Request], Reply]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    dispatcher: Dispatcher  # set on the subclass each server makes

    def version_string(self) -> str:
        return SERVER

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(30)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError, TimeoutError):
            self.close_connection = True

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s", format % args)

    def _body_reader(self) -> ChunkedReader | LimitedReader:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return ChunkedReader(self.rfile)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return LimitedReader(self.rfile, length)

    def _serve(self) -> None:
        from dockyard.api.router import split_version  # local: router imports this module

        url = urlsplit(self.path)
        body = self._body_reader()
        try:
            # as Go's net/http does for moby: routes match the decoded path (test%2001 -> "test 01")
            api_version, path = split_version(unquote(url.path))
            request = Request(self.command, path, api_version,
                              parse_qs(url.query, keep_blank_values=True), self.headers, body)
            reply = self.dispatcher(request)
        except EngineError as exc:
            reply = error_response(exc.status, str(exc))
        except Exception as exc:
            log.exception("%s %s failed", self.command, self.path)
            reply = error_response(500, f"internal error: {type(exc).__name__}: {exc}")
        if isinstance(reply, HijackResponse):
            self._hijack(reply)
            return
        self._drain(body)
        if isinstance(reply, StreamResponse):
            self._stream(reply)
        else:
            self._send(reply)

    def _drain(self, body: ChunkedReader | LimitedReader) -> None:
        """Unread request bytes would be parsed as the next request: read them, or
        close the connection when there are too many to bother."""
        try:
            if len(body.read(1 << 20)) == 1 << 20 and body.read(1):
                self.close_connection = True
        except (EngineError, OSError):
            self.close_connection = True

    def _start(self, status: int, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in COMMON_HEADERS.items():
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name, value)

    def _send(self, reply: Response) -> None:
        body = b"" if reply.status in (204, 304) else reply.body
        self._start(reply.status, reply.content_type if body else "", reply.headers)
        if reply.status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _stream(self, reply: StreamResponse) -> None:
        self._start(reply.status, reply.content_type, reply.headers)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        chunks = iter(reply.chunks)
        try:
            try:
                for chunk in chunks:
                    if chunk is None:
                        if self._client_gone():
                            self.close_connection = True
                            return
                    elif chunk:
                        self._chunk(chunk)
            except (ConnectionError, ssl.SSLError):
                raise
            except Exception as exc:  # the reply has begun: the error can only be its last message
                if not isinstance(exc, EngineError):
                    log.exception("%s %s failed while streaming", self.command, self.path)
                self._chunk(stream_error(reply.content_type, exc))
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (ConnectionError, ssl.SSLError):
            self.close_connection = True
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # lets the producer release its subscription at once

    def _chunk(self, chunk: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.flush()

    def _client_gone(self) -> bool:
        """True when the client closed its end (readable with nothing to read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _hijack(self, reply: HijackResponse) -> None:
        upgrade = self.headers.get("Upgrade", "").lower() == reply.protocol
        if upgrade:
            self.send_response_only(101, "UPGRADED")
            self.send_header("Connection", "Upgrade")
            self.send_header("Upgrade", reply.protocol)
        else:
            self.send_response_only(200)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Server", SERVER)
        for name, value in COMMON_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        try:
            reply.session(self.connection, self.rfile)
        except (ConnectionError, ssl.SSLError):
            pass


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False
    # socketserver's default backlog of 5 refuses the sixth of a burst of clients (20
    # parallel `docker run`s, compose bringing a project up)
    request_queue_size = 512


class _TLSServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 512
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, context: ssl.SSLContext) -> None:
        self.ssl_context = context
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = self.socket.accept()
        # The handshake runs in the connection's own thread (see _Handler.setup), so a
        # slow or silent client cannot stall accept() for everyone else.
        return self.ssl_context.wrap_socket(conn, server_side=True,
                                            do_handshake_on_connect=False), address


class Listener:
    """One bound API endpoint serving in its own thread."""

    def __init__(self, address: str, server: socketserver.BaseServer, unix_path: str | None) -> None:
        self.address = address
        self.server = server
        self.unix_path = unix_path
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        name=f"api {self.address}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=5)
        self.server.server_close()
        if self.unix_path:
            try:
                os.unlink(self.unix_path)
            except FileNotFoundError:
                pass


def _handler_class(dispatcher: Dispatcher) -> type:
    return type("Handler", (_Handler,), {"dispatcher": staticmethod(dispatcher)})


def bind_unix(address: str, path: str, dispatcher: Dispatcher,
              mode: int = 0o660, gid: int | None = None) -> Listener:
    server = _UnixServer(path, _handler_class(dispatcher), bind_and_activate=False)
    previous_umask = os.umask(0o177)  # never expose the socket wider than `mode`, even briefly
    try:
        server.server_bind()
        os.chmod(path, mode)
        if gid is not None:
            os.chown(path, 0, gid)
        server.server_activate()
    except BaseException:
        server.server_close()
        raise
    finally:
        os.umask(previous_umask)
    return Listener(address, server, path)


def bind_tls(address: str, host: str, port: int, dispatcher: Dispatcher,
             context: ssl.SSLContext) -> Listener:
    server = _TLSServer((host, port), _handler_class(dispatcher), context)
    return Listener(address, server, None)
