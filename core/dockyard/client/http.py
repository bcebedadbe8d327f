"""HTTP/1.1 over a UNIX socket or TCP+TLS: just what the Engine API needs.

One request per connection keeps it simple; the CLI makes one or two per run.
Responses are read by Content-Length or chunked framing and can be consumed whole,
as JSON, or message by message for streams (events, pull progress).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator

from dockyard import API_VERSION

# Characters that need no quoting in a path; anything else sends us to urllib.parse,
# which is not imported otherwise (it costs a quarter of the interpreter's start-up).
_PATH_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_.-~:@")

DEFAULT_HOST = "unix:///run/dockyard.sock"


def default_host() -> str:
    return os.environ.get("DOCKYARD_HOST") or DEFAULT_HOST


class DaemonUnreachable(Exception):
    pass


class APIError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Response:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._file = sock.makefile("rb")
        status_line = self._file.readline(65537).decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise DaemonUnreachable(f"not an HTTP reply: {status_line.strip()!r}")
        self.status = int(parts[1])
        self.headers: dict[str, str] = {}
        while True:
            line = self._file.readline(65537).decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length")
        self._left = int(length) if length is not None else None

    def iter_chunks(self) -> Iterator[bytes]:
        try:
            if self._chunked:
                while True:
                    size = int(self._file.readline(65537).split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        return
                    yield self._file.read(size)
                    self._file.readline(3)
            elif self._left is not None:
                while self._left > 0:
                    data = self._file.read(min(self._left, 65536))
                    if not data:
                        return
                    self._left -= len(data)
                    yield data
            else:
                while data := self._file.read1(65536):
                    yield data
        finally:
            self.close()

    def read(self) -> bytes:
        return b"".join(self.iter_chunks())

    def json(self) -> object:
        return json.loads(self.read() or b"null")

    def iter_json(self) -> Iterator[object]:
        """Newline-delimited JSON messages, each as soon as it arrives."""
        buffer = b""
        for chunk in self.iter_chunks():
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    yield json.loads(line)
        if buffer.strip():
            yield json.loads(buffer)

    def close(self) -> None:
        self._file.close()
        self._sock.close()


class Client:
    def __init__(self, host: str | None = None, version: str = API_VERSION,
                 timeout: float | None = 60.0) -> None:
        self.host = host or default_host()
        self.version = version
        self.timeout = timeout

    def _connect(self) -> socket.socket:
        host = self.host
        try:
            if host.startswith("unix://"):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(host[len("unix://"):])
                return sock
            if host.startswith("tcp://"):
                address, _, port = host[len("tcp://"):].rstrip("/").rpartition(":")
                sock = socket.create_connection((address, int(port)), timeout=self.timeout)
                return self._wrap_tls(sock, address)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise DaemonUnreachable(
                f"Cannot connect to the dockyard daemon at {host}. "
                f"Is dockyardd running? ({exc.strerror})"
            ) from None
        except PermissionError:
            raise DaemonUnreachable(
                f"permission denied connecting to the dockyard daemon at {host}: "
                f"run as root or as a member of the socket's group"
            ) from None
        except OSError as exc:
            raise DaemonUnreachable(f"Cannot connect to the dockyard daemon at {host}: {exc}") from None
        raise DaemonUnreachable(f"unsupported host {host!r}: use unix:///path or tcp://host:port")

    def _wrap_tls(self, sock: socket.socket, server_name: str) -> socket.socket:
        import ssl

        cert_path = os.environ.get("DOCKYARD_CERT_PATH") or os.path.expanduser("~/.dockyard")
        context = ssl.create_default_context(cafile=os.path.join(cert_path, "ca.pem"))
        context.load_cert_chain(os.path.join(cert_path, "cert.pem"),
                                os.path.join(cert_path, "key.pem"))
        return context.wrap_socket(sock, server_hostname=server_name)

    def request(self, method: str, path: str, params: dict[str, object] | None = None,
                body: object = None, stream: bool = False, timeout: float | None = ...,
                headers: dict[str, str] | None = None) -> Response:
        """Send one request; raise APIError for 4xx/5xx with the daemon's message.
        `headers` adds request headers (X-Registry-Auth for pulls and pushes)."""
        if not _PATH_SAFE.issuperset(path):
            from urllib.parse import quote

            path = quote(path, safe="/:@")
        target = f"/v{self.version}{path}"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if query:
            from urllib.parse import urlencode

            target += "?" + urlencode(query, doseq=True)
        payload = b""
        upload = None
        extra_headers = headers or {}
        headers = {"Host": "dockyard", "User-Agent": "dockyard-cli", "Connection": "close"}
        headers.update({k: v for k, v in extra_headers.items() if v})
        if hasattr(body, "read"):
            upload = body  # a file or stdin: sent chunked, never held in memory
            headers["Content-Type"] = "application/x-tar"
            headers["Transfer-Encoding"] = "chunked"
        elif body is not None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if upload is None and (payload or method in ("POST", "PUT")):
            headers["Content-Length"] = str(len(payload))
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock = self._connect()
        if stream or timeout is not ...:
            sock.settimeout(None if stream else timeout)
        try:
            sock.sendall(head.encode("latin-1") + b"\r\n" + payload)
            if upload is not None:
                try:
                    while chunk := upload.read(1 << 20):
                        sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sock.sendall(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the daemon answered early (an error): read what it said
            response = Response(sock)
        except OSError as exc:
            sock.close()
            raise DaemonUnreachable(f"the dockyard daemon at {self.host} stopped answering: {exc}") from None
        if response.status >= 400:
            data = response.read()
            try:
                message = json.loads(data).get("message", "")
            except (ValueError, AttributeError):
                message = data.decode(errors="replace").strip()
            raise APIError(response.status, message or f"HTTP {response.status}")
        return response

    def hijack(self, method: str, path: str, params: dict[str, object] | None = None,
               body: object = None) -> tuple[socket.socket, str]:
        """Send a request that upgrades the connection (attach, exec start); return the
        raw socket and the stream's content type. Headers are read byte by byte so no
        stream bytes are swallowed by a buffer."""
        target = f"/v{self.version}{path}"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if query:
            from urllib.parse import urlencode

            target += "?" + urlencode(query, doseq=True)
        payload = json.dumps(body).encode() if body is not None else b""
        head = (f"{method} {target} HTTP/1.1\r\nHost: dockyard\r\nUser-Agent: dockyard-cli\r\n"
                f"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n")
        sock = self._connect()
        sock.settimeout(None)
        try:
            sock.sendall(head.encode("latin-1") + payload)
            raw = b""
            while not raw.endswith(b"\r\n\r\n"):
                byte = sock.recv(1)
                if not byte:
                    raise DaemonUnreachable(f"the dockyard daemon at {self.host} closed the connection")
                raw += byte
        except OSError as exc:
            sock.close()
            raise DaemonUnreachable(f"the dockyard daemon at {self.host} stopped answering: {exc}") from None
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {name.strip().lower(): value.strip()
                   for name, _, value in (line.partition(":") for line in lines[1:] if line)}
        if status >= 400:
            rest = b""
            length = int(headers.get("content-length", "0") or 0)
            while len(rest) < length:
                chunk = sock.recv(length - len(rest))
                if not chunk:
                    break
                rest += chunk
            sock.close()
            try:
                message = json.loads(rest).get("message", "")
            except (ValueError, AttributeError):
                message = rest.decode(errors="replace")
            raise APIError(status, message or f"HTTP {status}")
        return sock, headers.get("content-type", "")

    def get_json(self, path: str, params: dict[str, object] | None = None) -> object:
        return self.request("GET", path, params).json()
