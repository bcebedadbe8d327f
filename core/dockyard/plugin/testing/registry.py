"""The registry client conformance suite, against a real registry server on 127.0.0.1.

A driver package proves itself with a few lines:

    from dockyard.plugin.testing.registry import RegistryClientSuite

    class TestDistribution(RegistryClientSuite):
        driver_name = "distribution"

The client is built as the daemon builds it: through the installed plugins (strict
mode), with a DriverContext on fresh temporary directories. A client whose probe fails
here is skipped with the probe's reason.

Also here, for a driver's own tests and the engine's (everything on 127.0.0.1):

- `RegistryServer(users=None, root=None, tls=None, token=None)`: the Debian
  `docker-registry` binary (distribution 2.8) on a free loopback port, storage in a
  temporary directory; optionally behind htpasswd Basic auth (`users`), serving HTTPS
  (`tls=(cert, key)`) or demanding bearer tokens from a `TokenServer` (`token`).
  `.address` ("127.0.0.1:PORT"), `.url`, `.corrupt_blob(digest)` (same length, other
  bytes: a client must notice).
- `CertificateAuthority(directory)`: a throwaway CA made with the openssl CLI;
  `.ca_cert`, `.issue(common_name, addresses, names) -> (cert, key)` and
  `.install(certs_dir, registry)` to put its CA where Docker's certs.d layout wants it.
- `TokenServer(users, directory, anonymous_pull=False)`: a Docker token service (JWT,
  RS256, x5c) for `RegistryServer(token=...)`; `.issued` lists (user, scope) of every
  token handed out ("" for anonymous), so tests can check caching.
- `CuttingProxy(target, cut_after, cuts=1)`: a plain-HTTP reverse proxy that cuts the
  first `cuts` blob downloads after `cut_after` bytes; `.requests` records
  (method, path, Range) to check resumption.
- Fixtures: `registry_server` (anonymous), `tls_registry` -> (server, ca, certs_dir) with
  the CA installed in certs_dir, `token_registry` -> (server, token_server) for the
  user alice / wonderland.
- `blob`, `chunked`, `digest_of`, `image_manifest` to build test content.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from dockyard.daemon.pluginmanager import PluginManager
from dockyard.plugin import DriverContext
from dockyard.plugin.contracts.registry import (
    Credentials,
    DigestMismatch,
    Manifest,
    NotFound,
    RegistryClient,
    RegistryError,
    Unauthorized,
    Unreachable,
)

REGISTRY_BINARY = "/usr/bin/docker-registry"
OPENSSL_BINARY = "/usr/bin/openssl"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def registry_binary() -> str | None:
    return REGISTRY_BINARY if os.access(REGISTRY_BINARY, os.X_OK) else shutil.which("docker-registry")


def openssl_binary() -> str | None:
    return OPENSSL_BINARY if os.access(OPENSSL_BINARY, os.X_OK) else shutil.which("openssl")


def _openssl(*args: str | Path, data: bytes | None = None) -> bytes:
    binary = openssl_binary()
    if binary is None:
        raise RuntimeError("the openssl command is not installed (apt-get install openssl)")
    result = subprocess.run([binary, *map(str, args)], input=data, capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args[:2]))} failed: "
                           f"{result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def bcrypt_hash(password: str) -> str | None:
    """A bcrypt hash (distribution's htpasswd accepts nothing else), from the system's
    crypt(3) (libxcrypt does bcrypt); None where that is not available."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # removed in Python 3.13
        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))
        if hashed and hashed.startswith("$2"):
            return hashed
    except (ImportError, AttributeError, OSError, ValueError):
        pass
    try:
        import ctypes
        import ctypes.util

        library = ctypes.util.find_library("crypt")
        if not library:
            return None
        libcrypt = ctypes.CDLL(library)
        libcrypt.crypt.restype = ctypes.c_char_p
        libcrypt.crypt_gensalt.restype = ctypes.c_char_p
        salt = libcrypt.crypt_gensalt(b"$2b$", 5, None, 0)
        hashed = libcrypt.crypt(password.encode(), salt) if salt else None
        return hashed.decode() if hashed and hashed.startswith(b"$2") else None
    except (OSError, AttributeError):
        return None


_INVERT = bytes(range(255, -1, -1))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class CertificateAuthority:
    """A throwaway CA in `directory`, made with the openssl CLI (RSA 2048, 7 days):
    `.ca_cert` to trust, `.issue()` for server (and client) certificates."""

    def __init__(self, directory: Path, name: str = "dockyard test CA") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca_cert = self.directory / "ca.crt"
        self.ca_key = self.directory / "ca.key"
        self._issued = 0
        # An own config file: the host's openssl.cnf may add or forbid extensions.
        config = self.directory / "ca.cnf"
        config.write_text("[req]\ndistinguished_name = dn\nprompt = no\n"
                          f"[dn]\nCN = {name}\n"
                          "[ca]\nbasicConstraints = critical,CA:TRUE\n"
                          "keyUsage = critical,keyCertSign,cRLSign\n"
                          "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n")
        _openssl("req", "-x509", "-config", config, "-extensions", "ca", "-newkey", "rsa:2048",
                 "-nodes", "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "7")

    def issue(self, common_name: str = "localhost", addresses: tuple[str, ...] = ("127.0.0.1",),
              names: tuple[str, ...] = ("localhost",)) -> tuple[Path, Path]:
        """A certificate for `common_name` with these IP and DNS subjectAltNames, good for
        TLS servers and clients; returns (certificate, key) paths."""
        self._issued += 1
        stem = self.directory / f"{re.sub(r'[^A-Za-z0-9.-]', '_', common_name)}-{self._issued}"
        cert, key, request, config = (stem.with_suffix(suffix) for suffix in (".crt", ".key", ".csr",
                                                                             ".cnf"))
        alt_names = [f"IP:{address}" for address in addresses] + [f"DNS:{name}" for name in names]
        config.write_text("[req]\ndistinguished_name = dn\nprompt = no\n"
                          f"[dn]\nCN = {common_name}\n"
                          "[leaf]\nbasicConstraints = critical,CA:FALSE\n"
                          "keyUsage = critical,digitalSignature,keyEncipherment\n"
                          "extendedKeyUsage = serverAuth,clientAuth\n"
                          "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
                          + (f"subjectAltName = {','.join(alt_names)}\n" if alt_names else ""))
        _openssl("req", "-new", "-config", config, "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                 "-out", request)
        _openssl("x509", "-req", "-in", request, "-CA", self.ca_cert, "-CAkey", self.ca_key,
                 "-set_serial", str(secrets.randbits(63)), "-days", "7", "-extfile", config,
                 "-extensions", "leaf", "-out", cert)
        return cert, key

    def install(self, certs_dir: Path, registry: str) -> Path:
        """Trust this CA for `registry` ("host:port") the certs.d way:
        `<certs_dir>/<registry>/ca.crt`."""
        target = Path(certs_dir) / registry / "ca.crt"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.ca_cert, target)
        return target


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True


class _Threaded:
    """A ThreadingHTTPServer on 127.0.0.1 in a daemon thread, as a context manager."""

    handler: type[BaseHTTPRequestHandler]

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self):
        if self._server is None:
            owner = self

            class Handler(self.handler):
                server_owner = owner

            self._server = _QuietServer(("127.0.0.1", 0), Handler)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            kwargs={"poll_interval": 0.05}, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


class _TokenHandler(BaseHTTPRequestHandler):
    server_owner: TokenServer

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server_owner
        url = urlsplit(self.path)
        if url.path != "/token":
            return self._answer(404, {"details": "not found"})
        query = parse_qs(url.query)
        user = ""
        authorization = self.headers.get("Authorization", "")
        if authorization:
            try:
                scheme, _, encoded = authorization.partition(" ")
                user, _, password = base64.b64decode(encoded).decode().partition(":")
                known = scheme.lower() == "basic" and owner.users.get(user) == password
            except (ValueError, UnicodeDecodeError):
                known = False
            if not known:
                return self._answer(401, {"details": "incorrect username or password"},
                                    {"WWW-Authenticate": 'Basic realm="dockyard-test-token"'})
        scopes = [scope for value in query.get("scope", []) for scope in value.split()]
        token = owner.token_for(user, query.get("service", [""])[0], scopes)
        self._answer(200, {"token": token, "access_token": token, "expires_in": owner.expires_in,
                           "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


class TokenServer(_Threaded):
    """The Docker token protocol on 127.0.0.1 (`GET <realm>?service=S&scope=S`, Basic
    auth optional) for `RegistryServer(token=...)`.

    Known users get every action they ask for; anonymous clients get "pull" when
    `anonymous_pull`, else a token without rights (the registry then refuses them, as
    Docker Hub does). Wrong credentials get 401. Tokens are JWTs signed RS256 with the
    openssl CLI by a certificate issued from an own CA, sent in the `x5c` header:
    distribution verifies that chain against `.root_cert` (its `rootcertbundle`).
    """

    handler = _TokenHandler
    expires_in = 300

    def __init__(self, users: dict[str, str], directory: Path, anonymous_pull: bool = False) -> None:
        super().__init__()
        self.users = dict(users)
        self.anonymous_pull = anonymous_pull
        self.directory = Path(directory)
        self.service = "dockyard-test-registry"
        self.issuer = "dockyard-test-token-issuer"
        self.issued: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._ca = CertificateAuthority(self.directory, name="dockyard test token CA")
        self.root_cert = self._ca.ca_cert
        self._signing_cert, self._signing_key = self._ca.issue("dockyard test token signer", (), ())
        pem = self._signing_cert.read_text()
        der = "".join(pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END")[0].split())
        self._x5c = [der]  # PEM's body is the base64 DER that x5c wants

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def _grant(self, user: str, scope: str) -> dict | None:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")  # names may hold ':' (host:port/repo)
        if not kind or not name:
            return None
        asked = [action for action in actions.split(",") if action]
        granted = asked if user else (["pull"] if self.anonymous_pull and "pull" in asked
                                      and kind == "repository" else [])
        return {"type": kind, "name": name, "actions": granted}

    def token_for(self, user: str, service: str, scopes: list[str]) -> str:
        now = int(time.time())
        access = [grant for grant in (self._grant(user, scope) for scope in scopes)
                  if grant and grant["actions"]]
        header = {"typ": "JWT", "alg": "RS256", "x5c": self._x5c}
        claims = {"iss": self.issuer, "sub": user, "aud": service or self.service,
                  "exp": now + self.expires_in, "nbf": now - 10, "iat": now,
                  "jti": secrets.token_hex(16), "access": access}
        signing_input = ".".join(_b64url(json.dumps(part, separators=(",", ":")).encode())
                                 for part in (header, claims))
        signature = _openssl("dgst", "-sha256", "-sign", self._signing_key, data=signing_input.encode())
        with self._lock:
            self.issued.append((user, " ".join(scopes)))
        return f"{signing_input}.{_b64url(signature)}"

    def start(self) -> TokenServer:
        return super().start()

    def __enter__(self) -> TokenServer:
        return self.start()


class RegistryServer:
    """A distribution registry on 127.0.0.1: `with RegistryServer() as server:` then
    `server.address` ("127.0.0.1:PORT"). With `users={"name": "password"}` it demands
    htpasswd Basic auth; with `tls=(cert, key)` it serves HTTPS only; with
    `token=TokenServer(...)` it demands that server's bearer tokens."""

    def __init__(self, users: dict[str, str] | None = None, root: Path | None = None,
                 tls: tuple[Path, Path] | None = None, token: TokenServer | None = None) -> None:
        if users and token:
            raise ValueError("a registry takes either htpasswd users or a token server, not both")
        self.users = users or {}
        self.tls = tls
        self.token = token
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="dockyard-registry-"))
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.address}"

    def blob_path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return (self.root / "storage" / "docker" / "registry" / "v2" / "blobs" / algorithm
                / hexdigest[:2] / hexdigest / "data")

    def corrupt_blob(self, digest: str) -> None:
        """Overwrite a stored blob with other bytes of the same length: the registry still
        serves it under its digest (it does not re-hash), so only a verifying client notices."""
        path = self.blob_path(digest)
        if not path.is_file():
            raise FileNotFoundError(f"blob {digest} is not stored in {path}")
        data = path.read_bytes()
        path.write_bytes(data.translate(_INVERT))

    @property
    def log(self) -> str:
        try:
            return (self.root / "registry.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def _config(self) -> str:
        lines = [
            "version: 0.1",
            "log:",
            "  level: warn",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.root / 'storage'}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            "  secret: dockyard-test-secret",
        ]
        if self.tls:
            certificate, key = self.tls
            lines += ["  tls:", f"    certificate: {certificate}", f"    key: {key}"]
        if self.token:
            lines += ["auth:", "  token:", f"    realm: {self.token.realm}",
                      f"    service: {self.token.service}", f"    issuer: {self.token.issuer}",
                      f"    rootcertbundle: {self.token.root_cert}"]
        if self.users:
            entries = []
            for user, password in self.users.items():
                hashed = bcrypt_hash(password)
                if hashed is None:
                    raise RuntimeError("cannot make bcrypt htpasswd entries here (no bcrypt in crypt(3))")
                entries.append(f"{user}:{hashed}\n")
            (self.root / "htpasswd").write_text("".join(entries))
            lines += ["auth:", "  htpasswd:", "    realm: dockyard-test",
                      f"    path: {self.root / 'htpasswd'}"]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 15.0) -> RegistryServer:
        binary = registry_binary()
        if binary is None:
            raise RuntimeError("docker-registry not found (apt-get install docker-registry)")
        last_error = ""
        for _ in range(3):  # a free port may be taken between probing and binding
            self.port = _free_port()
            config = self.root / "config.yml"
            config.write_text(self._config())
            with open(self.root / "registry.log", "wb") as log:
                self.process = subprocess.Popen([binary, "serve", str(config)], stdout=log,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    last_error = f"docker-registry exited with {self.process.returncode}: {self.log}"
                    break
                try:
                    # Readiness only: whether the certificate is trusted is the tests' business.
                    unverified = ssl._create_unverified_context() if self.tls else None
                    with urllib.request.urlopen(f"{self.url}/v2/", timeout=1, context=unverified):
                        return self
                except urllib.error.HTTPError as exc:
                    if exc.code == 401:  # alive, and demanding auth
                        return self
                except (urllib.error.URLError, OSError):
                    pass
                time.sleep(0.05)
            else:
                self.stop()
                raise RuntimeError(f"docker-registry did not answer on {self.address} in {timeout}s: "
                                   f"{self.log}")
        raise RuntimeError(last_error)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def close(self) -> None:
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()


def _need_registry() -> None:
    if registry_binary() is None:
        pytest.skip("docker-registry not found (apt-get install docker-registry)")


def _need_openssl() -> None:
    if openssl_binary() is None:
        pytest.skip("the openssl command is not installed (apt-get install openssl)")


@pytest.fixture
def registry_server() -> Iterator[RegistryServer]:
    """A fresh anonymous registry for one test."""
    _need_registry()
    with RegistryServer() as server:
        yield server


def serve_tls_registry(directory: Path) -> Iterator[tuple[RegistryServer, CertificateAuthority, Path]]:
    """An HTTPS registry whose certificate (for 127.0.0.1 and localhost) comes from a fresh
    CA, installed for it in `<directory>/certs.d`; skips where the tools are missing."""
    _need_registry()
    _need_openssl()
    ca = CertificateAuthority(directory / "ca")
    certs_dir = directory / "certs.d"
    certs_dir.mkdir()
    with RegistryServer(tls=ca.issue()) as server:
        ca.install(certs_dir, server.address)
        yield server, ca, certs_dir


def serve_token_registry(directory: Path, users: dict[str, str] | None = None,
                         anonymous_pull: bool = False) -> Iterator[tuple[RegistryServer, TokenServer]]:
    """A registry demanding bearer tokens from a TokenServer (default user alice /
    wonderland); skips where the tools are missing."""
    _need_registry()
    _need_openssl()
    with TokenServer(users or {"alice": "wonderland"}, directory / "token",
                     anonymous_pull=anonymous_pull) as token:
        with RegistryServer(token=token) as server:
            yield server, token


@pytest.fixture
def tls_registry(tmp_path: Path) -> Iterator[tuple[RegistryServer, CertificateAuthority, Path]]:
    """(server, ca, certs_dir): an HTTPS registry, its CA, and a certs.d holding that CA
    at `<certs_dir>/<server.address>/ca.crt`."""
    yield from serve_tls_registry(tmp_path)


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[tuple[RegistryServer, TokenServer]]:
    """(server, token_server): a registry behind bearer tokens for alice / wonderland;
    anonymous clients get no rights."""
    yield from serve_token_registry(tmp_path)


# -- a proxy that breaks downloads --------------------------------------------------


_BLOB_PATH = re.compile(r"^/v2/.+/blobs/sha256:[0-9a-f]{64}$")
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailers", "transfer-encoding", "upgrade", "content-length"}


class _ProxyHandler(BaseHTTPRequestHandler):
    server_owner: CuttingProxy
    protocol_version = "HTTP/1.1"  # keep-alive, like a real front-end

    def log_message(self, *args) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self) -> None:
        owner = self.server_owner
        body = self._body()
        owner._record(self.command, self.path, self.headers.get("Range"))
        headers = {key: value for key, value in self.headers.items()
                   if key.lower() not in _HOP_BY_HOP}
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection(owner.target, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = b"" if self.command == "HEAD" else response.read()
            cut = (self.command == "GET" and response.status in (200, 206)
                   and _BLOB_PATH.match(urlsplit(self.path).path) and len(data) > owner.cut_after
                   and owner._take_cut())
            self.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            length = response.getheader("Content-Length") if self.command == "HEAD" else len(data)
            if length is not None:
                self.send_header("Content-Length", str(length))
            if cut:
                # The true length is announced, then the connection dies mid-body: what a
                # client sees when a network drops during a pull.
                self.end_headers()
                self.wfile.write(data[:owner.cut_after])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.end_headers()
            self.wfile.write(data)
        finally:
            upstream.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward


class CuttingProxy(_Threaded):
    """A plain-HTTP reverse proxy on 127.0.0.1 in front of the plain-HTTP registry at
    `target` ("127.0.0.1:PORT"). It passes everything through, except that the first
    `cuts` successful GETs of `/v2/<name>/blobs/sha256:<hex>` longer than `cut_after`
    bytes send their headers (with
    the true Content-Length) and only `cut_after` bytes of body before the connection is
    closed. `.address` is where clients go; `.requests` lists (method, path, Range header
    or None) of every request, to check that a client resumed with a Range."""

    handler = _ProxyHandler

    def __init__(self, target: str, cut_after: int, cuts: int = 1) -> None:
        super().__init__()
        self.target = target
        self.cut_after = cut_after
        self.cuts_left = cuts
        self.requests: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _record(self, method: str, path: str, range_header: str | None) -> None:
        with self._lock:
            self.requests.append((method, path, range_header))

    def _take_cut(self) -> bool:
        with self._lock:
            if self.cuts_left <= 0:
                return False
            self.cuts_left -= 1
            return True

    def start(self) -> CuttingProxy:
        return super().start()

    def __enter__(self) -> CuttingProxy:
        return self.start()


# -- content ------------------------------------------------------------------------


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob(size: int, seed: int = 0) -> bytes:
    """Deterministic, incompressible-looking bytes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 64
        counter += 1
    return bytes(out[:size])


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def image_manifest(config: bytes, layers: list[bytes]) -> Manifest:
    content = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(layer), "size": len(layer)}
                   for layer in layers],
    }, indent=2).encode()
    return Manifest(media_type=OCI_MANIFEST, digest=digest_of(content), content=content)


# -- the suite ----------------------------------------------------------------------


class RegistryClientSuite:
    """Subclass with `driver_name` set; every test_* method is one clause of the contract.

    Clients are built with Docker-like option names where a test needs one:
    `certs-dir` (certs.d root) and `connect-timeout` / `read-timeout` (seconds).
    Failures are checked against the contract's `RegistryError` family.
    """

    driver_name: str = ""
    #: a blob bigger than any sane single upload chunk, so the chunked path is taken
    big_blob_size: int = 20 * 1024 * 1024 + 12345

    @pytest.fixture(scope="class")
    @classmethod
    def server(cls) -> Iterator[RegistryServer]:
        _need_registry()
        with RegistryServer() as server:
            yield server

    @pytest.fixture(scope="class")
    @classmethod
    def auth_server(cls) -> Iterator[RegistryServer]:
        _need_registry()
        if bcrypt_hash("probe") is None:
            pytest.skip("no bcrypt in this system's crypt(3): cannot write htpasswd entries")
        with RegistryServer(users={"alice": "s3cret-pw"}) as server:
            yield server

    @pytest.fixture(scope="class")
    @classmethod
    def tls_server(cls, tmp_path_factory) -> Iterator[tuple[RegistryServer, CertificateAuthority, Path]]:
        yield from serve_tls_registry(tmp_path_factory.mktemp("tls-registry"))

    @pytest.fixture(scope="class")
    @classmethod
    def token_server(cls, tmp_path_factory) -> Iterator[tuple[RegistryServer, TokenServer]]:
        yield from serve_token_registry(tmp_path_factory.mktemp("token-registry"))

    @pytest.fixture
    def make_client(self, tmp_path: Path):
        """`make_client({"option": "value"})`: a client built as the daemon builds it."""
        assert self.driver_name, "set driver_name on your RegistryClientSuite subclass"
        spec = PluginManager(strict=True).load_all().find("registry", self.driver_name)
        reason = spec.why_unsupported()
        if reason:
            pytest.skip(f"registry driver {self.driver_name} cannot run here: {reason}")
        counter = iter(range(1_000_000))

        def make(options: dict[str, str] | None = None) -> RegistryClient:
            root = tmp_path / f"client-{next(counter)}"
            for name in ("home", "exec"):
                (root / name).mkdir(parents=True)
            made = spec.factory(DriverContext(kind="registry", name=spec.name, home=root / "home",
                                              exec_root=root / "exec", options=dict(options or {})))
            assert isinstance(made, RegistryClient), f"{type(made)} lacks RegistryClient methods"
            return made

        return make

    @pytest.fixture
    def client(self, make_client) -> RegistryClient:
        return make_client()

    @pytest.fixture(scope="class")
    @classmethod
    def content(cls) -> dict[str, bytes]:
        return {"config": b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}',
                "small": blob(3000, seed=1), "big": blob(cls.big_blob_size, seed=2)}

    @staticmethod
    def push_image(client: RegistryClient, registry: str, repository: str, tag: str,
                   content: dict[str, bytes], credentials: Credentials | None = None) -> Manifest:
        for key in ("config", "small", "big"):
            data = content[key]
            client.put_blob(registry, repository, digest_of(data), len(data),
                            chunked(data, 1024 * 1024 + 7), credentials)
        manifest = image_manifest(content["config"], [content["small"], content["big"]])
        digest = client.put_manifest(registry, repository, tag, manifest, credentials)
        assert digest == manifest.digest
        return manifest

    @staticmethod
    def read(chunks) -> bytes:
        return b"".join(chunks)

    # -- anonymous registry ------------------------------------------------------------

    def test_ping_anonymous(self, client, server):
        assert client.ping(server.address, None) is None

    def test_push_then_pull_by_tag_and_digest(self, client, server, content):
        manifest = self.push_image(client, server.address, "suite/app", "v1", content)
        by_tag = client.get_manifest(server.address, "suite/app", "v1", None)
        assert (by_tag.media_type, by_tag.digest, by_tag.content) == \
            (manifest.media_type, manifest.digest, manifest.content)
        by_digest = client.get_manifest(server.address, "suite/app", manifest.digest, None)
        assert by_digest == by_tag

    def test_blobs_round_trip(self, client, server, content):
        self.push_image(client, server.address, "suite/blobs", "latest", content)
        for key in ("config", "small", "big"):
            data = content[key]
            assert client.has_blob(server.address, "suite/blobs", digest_of(data), None)
            got = self.read(client.get_blob(server.address, "suite/blobs", digest_of(data), None))
            assert got == data, f"{key} blob differs"

    def test_get_blob_resumes_from_an_offset(self, client, server, content):
        self.push_image(client, server.address, "suite/resume", "latest", content)
        data = content["big"]
        for offset in (1, 1024 * 1024, len(data) - 5):
            got = self.read(client.get_blob(server.address, "suite/resume", digest_of(data), None,
                                            offset=offset))
            assert got == data[offset:], f"resume from {offset} differs"

    def test_blob_chunks_are_bounded(self, client, server, content):
        self.push_image(client, server.address, "suite/chunks", "latest", content)
        chunks = list(client.get_blob(server.address, "suite/chunks", digest_of(content["big"]), None))
        assert len(chunks) > 1 and max(len(chunk) for chunk in chunks) <= 8 * 1024 * 1024

    def test_mount_from_another_repository(self, client, server, content):
        self.push_image(client, server.address, "suite/source", "latest", content)
        data = content["big"]
        digest = digest_of(data)
        assert not client.has_blob(server.address, "suite/target", digest, None)

        def never():
            raise AssertionError("a mounted blob must not be uploaded")
            yield b""  # pragma: no cover

        client.put_blob(server.address, "suite/target", digest, len(data), never(), None,
                        mount_from="suite/source")
        assert client.has_blob(server.address, "suite/target", digest, None)
        assert self.read(client.get_blob(server.address, "suite/target", digest, None)) == data

    def test_missing_tag_is_not_found(self, client, server, content):
        self.push_image(client, server.address, "suite/missing", "present", content)
        with pytest.raises(Exception) as caught:
            client.get_manifest(server.address, "suite/missing", "absent", None)
        message = str(caught.value)
        assert "manifest unknown" in message and "absent" in message, message

    def test_missing_blob(self, client, server):
        digest = digest_of(b"never pushed")
        assert client.has_blob(server.address, "suite/nothing", digest, None) is False
        with pytest.raises(Exception) as caught:
            self.read(client.get_blob(server.address, "suite/nothing", digest, None))
        assert "unknown" in str(caught.value) or "not found" in str(caught.value)

    def test_unreachable_registry_is_named(self, client):
        address = f"127.0.0.1:{_free_port()}"  # nothing listens there
        with pytest.raises(Exception) as caught:
            client.ping(address, None)
        assert address in str(caught.value)

    # -- htpasswd Basic auth -----------------------------------------------------------

    def test_auth_anonymous_is_refused(self, client, auth_server):
        with pytest.raises(Exception) as caught:
            client.ping(auth_server.address, None)
        assert "unauthorized" in str(caught.value).lower()

    def test_auth_wrong_password_is_refused(self, client, auth_server):
        with pytest.raises(Exception) as caught:
            client.ping(auth_server.address, Credentials("alice", "wrong"))
        assert "unauthorized: incorrect username or password" in str(caught.value)

    def test_auth_right_password_works(self, client, auth_server, content):
        credentials = Credentials("alice", "s3cret-pw")
        client.ping(auth_server.address, credentials)
        manifest = self.push_image(client, auth_server.address, "private/app", "v1", content,
                                   credentials)
        got = client.get_manifest(auth_server.address, "private/app", "v1", credentials)
        assert got.digest == manifest.digest
        data = content["small"]
        assert self.read(client.get_blob(auth_server.address, "private/app", digest_of(data),
                                         credentials)) == data

    # -- tags and search ---------------------------------------------------------------

    def test_list_tags(self, client, server, content):
        for tag in ("v1", "v2", "latest"):
            self.push_image(client, server.address, "suite/tagged", tag, content)
        assert sorted(client.list_tags(server.address, "suite/tagged", None)) == ["latest", "v1", "v2"]

    def test_list_tags_of_an_unknown_repository(self, client, server):
        with pytest.raises(NotFound) as caught:
            client.list_tags(server.address, "suite/never-pushed", None)
        assert "suite/never-pushed" in str(caught.value)

    def test_search_falls_back_to_the_catalog(self, client, server, content):
        for repository in ("suite/findme-one", "other/findme-two", "suite/hidden"):
            self.push_image(client, server.address, repository, "latest", content)
        results = client.search(server.address, "findme", 25, None)
        assert sorted(result["name"] for result in results) == ["other/findme-two", "suite/findme-one"]
        for result in results:
            assert result == {"name": result["name"], "description": "", "star_count": 0,
                              "is_official": False, "is_automated": False}
        assert len(client.search(server.address, "findme", 1, None)) == 1
        assert client.search(server.address, "no-such-thing", 25, None) == []

    # -- damaged content and broken connections ----------------------------------------

    def test_a_corrupted_blob_is_refused(self, client, server):
        data = blob(4096, seed=404)  # its own blob: the registry shares blobs between repositories
        digest = digest_of(data)
        client.put_blob(server.address, "suite/corrupt", digest, len(data), [data], None)
        server.corrupt_blob(digest)
        with pytest.raises(DigestMismatch) as caught:
            self.read(client.get_blob(server.address, "suite/corrupt", digest, None))
        assert digest in str(caught.value)

    def test_an_interrupted_download_resumes_with_a_range(self, client, server):
        data = blob(3_000_000, seed=405)
        digest = digest_of(data)
        cut_after = 2_500_000
        client.put_blob(server.address, "suite/cut", digest, len(data), chunked(data, 1 << 20), None)
        with CuttingProxy(server.address, cut_after=cut_after) as proxy:
            received = bytearray()
            with pytest.raises(Unreachable):
                for chunk in client.get_blob(proxy.address, "suite/cut", digest, None):
                    received += chunk
            # A client may lose the piece it was reading when the connection broke, no more.
            assert len(received) <= cut_after and data.startswith(received)
            rest = self.read(client.get_blob(proxy.address, "suite/cut", digest, None,
                                             offset=len(received)))
        assert bytes(received) + rest == data
        if received:
            blob_gets = [entry for entry in proxy.requests if entry[0] == "GET" and digest in entry[1]]
            assert blob_gets[-1][2] == f"bytes={len(received)}-"

    def test_a_hanging_registry_is_unreachable_within_the_read_timeout(self, make_client):
        client = make_client({"connect-timeout": "2", "read-timeout": "0.5"})
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(8)  # the kernel accepts connections; nobody ever answers
            address = f"127.0.0.1:{listener.getsockname()[1]}"
            started = time.monotonic()
            with pytest.raises(Unreachable) as caught:
                client.ping(address, None)
            assert time.monotonic() - started < 5
        assert address in str(caught.value)

    # -- TLS -------------------------------------------------------------------------

    def test_tls_registry_trusted_through_certs_dir(self, make_client, tls_server, content):
        server, _, certs_dir = tls_server
        client = make_client({"certs-dir": str(certs_dir)})
        client.ping(server.address, None)
        manifest = self.push_image(client, server.address, "secure/app", "v1", content)
        assert client.get_manifest(server.address, "secure/app", "v1", None) == manifest
        data = content["small"]
        assert self.read(client.get_blob(server.address, "secure/app", digest_of(data), None)) == data

    def test_tls_registry_without_its_ca_is_refused_clearly(self, make_client, tls_server, tmp_path):
        server, _, _ = tls_server
        empty = tmp_path / "empty-certs.d"
        empty.mkdir()
        client = make_client({"certs-dir": str(empty)})
        with pytest.raises(RegistryError) as caught:
            client.ping(server.address, None)
        message = str(caught.value)
        assert server.address in message, message
        assert str(empty / server.address / "ca.crt") in message, message
        assert "insecure-registries" in message, message

    # -- bearer tokens ----------------------------------------------------------------

    def test_token_anonymous_is_refused(self, client, token_server, content):
        server, _ = token_server
        self.push_image(client, server.address, "tokens/private", "v1", content,
                        Credentials("alice", "wonderland"))
        with pytest.raises(Unauthorized) as caught:
            client.get_manifest(server.address, "tokens/private", "v1", None)
        assert "unauthorized" in str(caught.value).lower()

    def test_token_right_password_pushes_and_pulls(self, client, token_server, content):
        server, _ = token_server
        credentials = Credentials("alice", "wonderland")
        client.ping(server.address, credentials)
        manifest = self.push_image(client, server.address, "tokens/app", "v1", content, credentials)
        assert client.get_manifest(server.address, "tokens/app", "v1", credentials) == manifest
        data = content["big"]
        assert self.read(client.get_blob(server.address, "tokens/app", digest_of(data),
                                         credentials)) == data

    def test_token_wrong_password_is_refused(self, client, token_server):
        server, _ = token_server
        with pytest.raises(Unauthorized) as caught:
            client.ping(server.address, Credentials("alice", "looking-glass"))
        assert "incorrect username or password" in str(caught.value)

    def test_tokens_are_cached_per_scope(self, client, token_server, content):
        server, tokens = token_server
        credentials = Credentials("alice", "wonderland")
        self.push_image(client, server.address, "tokens/cached", "v1", content, credentials)
        scope = "repository:tokens/cached:pull"
        client.get_manifest(server.address, "tokens/cached", "v1", credentials)
        before = [entry for entry in tokens.issued if entry == ("alice", scope)]
        assert len(before) == 1, tokens.issued
        client.get_manifest(server.address, "tokens/cached", "v1", credentials)
        assert [entry for entry in tokens.issued if entry == ("alice", scope)] == before
