"""A `RegistryClient` for the OCI distribution API (Docker Registry HTTP API v2).

It speaks the protocol and moves bytes: auth challenges (Basic, and Bearer tokens from
the realm a registry names, cached per registry and scope until they expire),
redirects, resumable blob downloads, chunked and cross-repository (mount) uploads, tag
lists and search (`/v1/search`, else the `/v2/_catalog`), both following `Link`
pagination. It checks what it cheaply can (a blob streamed from its start, a manifest
fetched by digest) but the engine verifies every digest again.

HTTP or HTTPS, decided per registry ("host:port"):

- listed in `insecure-registries` (as host, host:port, or a CIDR holding its address):
  plain HTTP;
- with a directory `<certs-dir>/<host:port>/`: HTTPS, trusting the system's CAs plus
  that directory's `*.crt` and presenting its `<name>.cert`/`<name>.key` (see `tls`);
- loopback (localhost, 127.0.0.0/8, ::1): plain HTTP, as Docker does;
- anything else: HTTPS, verified against the system's CAs.

A registry that answers plain HTTP with Go's "Client sent an HTTP request to an HTTPS
server" is remembered as TLS-only and asked again over HTTPS: verified, unless it is
listed in `insecure-registries` (Docker's meaning of "insecure": HTTP, or HTTPS without
verification). A certificate that fails verification raises `Unreachable` saying where
its CA belongs.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests
from dockyard.plugin.contracts.registry import (
    Credentials,
    DigestMismatch,
    Manifest,
    NotFound,
    RegistryError,
    Unauthorized,
    Unreachable,
    Unsupported,
)

from dockyard_registry_distribution.tls import CertsDir

MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)
SCHEMA1_TYPES = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
# Small reads: when a download breaks, urllib3 drops the piece it was reading, and a
# resume can only start after the last piece handed on.
READ_CHUNK = 64 * 1024
DEFAULT_UPLOAD_CHUNK = 0  # 0: one streamed PATCH per blob, as Docker uploads
USER_AGENT = "dockyard/0.1 (registry-distribution)"
DEFAULT_CERTS_DIR = "/etc/dockyard/certs.d"
DEFAULT_SEARCH_LIMIT = 25
CATALOG_PAGE = 100
DOCKER_HUB_SEARCH = "https://index.docker.io/v1/search"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-fA-F0-9]{32,})$")
_HASHES = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
_LOOPBACK = re.compile(r"^(localhost|127(?:\.\d{1,3}){3}|::1)$")
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_GO_TLS_ONLY = b"Client sent an HTTP request to an HTTPS server"
_VERIFY_REASON = re.compile(r"certificate verify failed: (.+?)(?: \(_ssl|'|\)|$)")
_SSL_REASON = re.compile(r"\[SSL: ([A-Z0-9_]+)\]")


def _hasher(digest: str, what: str):
    match = _DIGEST.match(digest)
    if not match:
        raise RegistryError(f"invalid digest {digest!r} for {what}")
    algorithm = match.group(1)
    if algorithm not in _HASHES:
        raise Unsupported(f"unsupported digest algorithm {algorithm!r} in {digest}")
    return _HASHES[algorithm]()


def _host(registry: str) -> str:
    if registry.startswith("["):
        return registry[1:].partition("]")[0]
    return registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="x",service="y"` -> ("bearer", {"realm": "x", "service": "y"})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {key.lower(): (quoted.replace('\\"', '"') if quoted else bare)
              for key, quoted, bare in _CHALLENGE_PARAM.findall(rest)}
    return scheme.lower(), params


def _error_text(response: requests.Response) -> str:
    """The registry's own words: `code: message` from its JSON errors, else the status."""
    try:
        body = response.json()
        errors = body.get("errors") or []
        parts = []
        for error in errors:
            code = str(error.get("code", "")).lower().replace("_", " ")
            message = str(error.get("message", "")).strip()
            parts.append(f"{code}: {message}" if code and message and message != code
                         else code or message)
        if parts:
            return "; ".join(parts)
        if isinstance(body.get("details"), str):
            return body["details"]
    except (ValueError, AttributeError):
        pass
    text = response.text.strip()[:200] if response.text else ""
    return f"{response.status_code} {response.reason}" + (f": {text}" if text else "")


class _Token:
    def __init__(self, value: str, expires_at: float) -> None:
        self.value, self.expires_at = value, expires_at


class DistributionClient:
    """Satisfies `dockyard.plugin.contracts.registry.RegistryClient`."""

    def __init__(self, connect_timeout: float = 10.0, read_timeout: float = 60.0,
                 retries: int = 3, upload_chunk_size: int = DEFAULT_UPLOAD_CHUNK,
                 insecure_registries: Iterable[str] = (),
                 certs_dir: str | Path = DEFAULT_CERTS_DIR, home: Path | None = None) -> None:
        """`insecure_registries`: host, host:port or CIDR entries (ValueError for a bad
        CIDR); `certs_dir`: the certs.d root; `home`: where combined CA bundles are
        written (a temporary directory when None)."""
        self.timeout = (connect_timeout, read_timeout)
        self.retries = max(1, retries)
        self.upload_chunk_size = max(0, upload_chunk_size)
        self.insecure_registries = set(insecure_registries)
        self._insecure_networks = [ipaddress.ip_network(entry, strict=False)
                                   for entry in self.insecure_registries if "/" in entry]
        self.certs = CertsDir(certs_dir, Path(home) / "ca-bundles" if home else None)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str, str], _Token] = {}
        self._schemes: dict[str, tuple[str, dict[str, str]]] = {}  # registry -> its challenge
        self._tls_only: set[str] = set()  # host:port that answered plain HTTP with Go's TLS hint
        self._resolved: dict[str, list] = {}

    # -- plumbing ---------------------------------------------------------------------

    @property
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
        return session

    def _base(self, registry: str) -> str:
        if not registry or "/" in registry:
            raise RegistryError(f"invalid registry address {registry!r} (expected host[:port])")
        if registry in ("docker.io", "index.docker.io"):
            registry = "registry-1.docker.io"
        if registry in self._tls_only:
            plain = False
        elif self.is_insecure(registry):
            plain = True
        elif self.certs.directory(registry) is not None:
            plain = False
        else:
            plain = bool(_LOOPBACK.match(_host(registry)))
        return f"{'http' if plain else 'https'}://{registry}"

    def is_insecure(self, registry: str) -> bool:
        """Listed in `insecure-registries`: by host:port, by host alone, or by a CIDR
        holding one of its addresses (resolved, as Docker does, for host names)."""
        host = _host(registry)
        if registry in self.insecure_registries or host in self.insecure_registries:
            return True
        if not self._insecure_networks:
            return False
        return any(address in network for address in self._addresses(host)
                   for network in self._insecure_networks)

    def _addresses(self, host: str) -> list:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        with self._lock:
            if host in self._resolved:
                return self._resolved[host]
        try:
            found = {info[4][0].split("%")[0] for info in socket.getaddrinfo(host, None)}
            addresses = [ipaddress.ip_address(address) for address in found]
        except (OSError, ValueError):
            addresses = []
        with self._lock:
            self._resolved[host] = addresses
        return addresses

    def _tls_arguments(self, url: str, registry: str) -> dict:
        netloc = urlsplit(url).netloc
        # A token server or blob store on another host uses its own certs.d entry when it
        # has one, else the registry's (Docker shares the registry's TLS config with them).
        settings = self.certs.settings(netloc if self.certs.directory(netloc) else registry)
        verify = settings.verify
        if netloc in self._tls_only and self.is_insecure(netloc):
            verify = False
        return {"verify": verify, "cert": settings.cert}

    def _tls_error(self, registry: str, url: str, exc: Exception) -> Unreachable:
        netloc = urlsplit(url).netloc
        who = f"registry {registry}" if netloc == registry else \
            f"{netloc} (serving registry {registry})"
        text = str(exc)
        verify_failed = _VERIFY_REASON.search(text)
        if verify_failed or "CERTIFICATE_VERIFY_FAILED" in text:
            reason = verify_failed.group(1) if verify_failed else "CERTIFICATE_VERIFY_FAILED"
            return Unreachable(f"{who}: TLS certificate verification failed ({reason}): put the "
                               f"CA certificate of {netloc} in {self.certs.ca_path(netloc)}, or add "
                               f"{netloc} to insecure-registries")
        code = _SSL_REASON.search(text)
        reason = code.group(1) if code else text[:200]
        if "WRONG_VERSION_NUMBER" in text or "RECORD_LAYER_FAILURE" in text:
            return Unreachable(f"{who} does not speak TLS ({reason}): if it serves plain HTTP, "
                               f"add {netloc} to insecure-registries")
        return Unreachable(f"{who}: TLS handshake failed ({reason}); if it wants a client "
                           f"certificate, put it in {self.certs.root / netloc}/client.cert with "
                           f"client.key beside it")

    @staticmethod
    def _check_repository(repository: str) -> None:
        if not _REPOSITORY.match(repository) or len(repository) > 255:
            raise RegistryError(f"invalid repository name {repository!r}")

    def _send(self, method: str, url: str, registry: str, **kwargs) -> requests.Response:
        """One request, with bounded retries for idempotent ones on connection errors,
        TLS settings for HTTPS, and the switch to HTTPS for a TLS-only server."""
        attempts = self.retries if method in ("GET", "HEAD") else 1
        kwargs.setdefault("timeout", self.timeout)
        attempt = 0
        while True:
            tls = self._tls_arguments(url, registry) if url.startswith("https://") else {}
            try:
                response = self._session.request(method, url, **kwargs, **tls)
            except requests.exceptions.SSLError as exc:  # retrying cannot fix a certificate
                raise self._tls_error(registry, url, exc) from exc
            except requests.exceptions.Timeout as exc:
                attempt += 1
                if isinstance(exc, requests.exceptions.ConnectTimeout) and attempt < attempts:
                    time.sleep(0.2 * attempt)
                    continue
                raise Unreachable(f"registry {registry} did not answer in time "
                                  f"(connect {self.timeout[0]}s, read {self.timeout[1]}s): "
                                  f"{method} {url}") from exc
            except requests.exceptions.ConnectionError as exc:
                attempt += 1
                if attempt < attempts:
                    time.sleep(0.2 * attempt)
                    continue
                raise Unreachable(f"cannot reach registry {registry}: {exc}") from exc
            except requests.exceptions.RequestException as exc:
                raise RegistryError(f"registry {registry}: {method} {url} failed: {exc}") from exc
            if url.startswith("http://") and response.status_code == 400 \
                    and _GO_TLS_ONLY in response.content[:200]:
                response.close()
                with self._lock:
                    self._tls_only.add(urlsplit(url).netloc)
                url = "https://" + url[len("http://"):]
                continue
            return response

    def _auth_header(self, registry: str, scope: str, credentials: Credentials | None) -> dict:
        known = self._schemes.get(registry)
        if known is None:
            return {}
        scheme, params = known
        if scheme == "basic" and credentials and credentials.username:
            raw = f"{credentials.username}:{credentials.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        if scheme == "bearer":
            token = self._token(registry, params, scope, credentials)
            return {"Authorization": f"Bearer {token}"} if token else {}
        return {}

    @staticmethod
    def _who(credentials: Credentials | None) -> str:
        """Tokens are cached per identity: one user's token never serves another."""
        if not credentials or not (credentials.username or credentials.identity_token):
            return ""
        raw = "\0".join((credentials.username, credentials.password, credentials.identity_token))
        return hashlib.sha256(raw.encode()).hexdigest()

    def _token(self, registry: str, params: dict[str, str], scope: str,
               credentials: Credentials | None, refresh: bool = False) -> str:
        key = (registry, scope, self._who(credentials))
        with self._lock:
            cached = self._tokens.get(key)
            if cached and not refresh and cached.expires_at > time.time() + 5:
                return cached.value
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"registry {registry} asked for a bearer token but named no realm")
        query = {"service": params["service"]} if params.get("service") else {}
        if scope:
            query["scope"] = scope.split()
        if credentials and credentials.identity_token:
            response = self._send("POST", realm, registry, data={
                "grant_type": "refresh_token", "refresh_token": credentials.identity_token,
                "client_id": "dockyard", **query})
        else:
            auth = (credentials.username, credentials.password) if credentials and credentials.username \
                else None
            response = self._send("GET", realm, registry, params=query, auth=auth)
        if response.status_code in (401, 403):
            if credentials and (credentials.username or credentials.identity_token):
                raise Unauthorized(f"{registry}: unauthorized: incorrect username or password")
            raise Unauthorized(f"{registry}: unauthorized: {_error_text(response)}")
        if response.status_code != 200:
            raise RegistryError(f"{registry}: token server {realm} answered {_error_text(response)}")
        try:
            body = response.json()
            value = body.get("token") or body.get("access_token")
            expires_in = int(body.get("expires_in") or 60)
        except (ValueError, TypeError, AttributeError) as exc:
            raise RegistryError(f"{registry}: token server {realm} sent no token") from exc
        if not value:
            raise RegistryError(f"{registry}: token server {realm} sent no token")
        with self._lock:
            self._tokens[key] = _Token(value, time.time() + max(expires_in, 1))
        return value

    def _request(self, method: str, registry: str, path_or_url: str, credentials: Credentials | None,
                 scope: str = "", headers: dict | None = None, **kwargs) -> requests.Response:
        """A request with auth: on 401 learn the challenge (Basic or Bearer) and retry once.
        Bodies must be replayable (bytes or None): the first request of an exchange is
        made body-less by the callers that stream."""
        url = path_or_url if "://" in path_or_url else self._base(registry) + path_or_url
        for attempt in range(2):
            all_headers = {**(headers or {}), **self._auth_header(registry, scope, credentials)}
            response = self._send(method, url, registry, headers=all_headers, **kwargs)
            if response.status_code != 401:
                return response
            challenge = response.headers.get("WWW-Authenticate", "")
            scheme, params = parse_challenge(challenge) if challenge else ("", {})
            given = bool(credentials and (credentials.username or credentials.identity_token))
            if attempt == 0 and scheme in ("basic", "bearer") and (scheme == "bearer" or given):
                previous = self._schemes.get(registry)
                self._schemes[registry] = (scheme, params)
                if scheme == "bearer":
                    self._token(registry, params, params.get("scope") or scope, credentials,
                                refresh=True)
                    if params.get("scope") and params["scope"] != scope:
                        scope = params["scope"]
                    continue
                if previous is None or previous[0] != "basic":
                    continue
            text = _error_text(response)
            response.close()
            if given and scheme == "basic":
                raise Unauthorized(f"{registry}: unauthorized: incorrect username or password")
            # distribution's own code already reads "unauthorized: ..."; say it once.
            raise Unauthorized(f"{registry}: {text}" if text.startswith("unauthorized:")
                               else f"{registry}: unauthorized: {text}")
        raise AssertionError("unreachable")

    @staticmethod
    def _scope(repository: str, actions: str) -> str:
        return f"repository:{repository}:{actions}"

    # -- the contract -----------------------------------------------------------------

    def ping(self, registry: str, credentials: Credentials | None) -> None:
        response = self._request("GET", registry, "/v2/", credentials)
        if response.status_code != 200:
            raise RegistryError(f"{registry}: /v2/ answered {_error_text(response)}")

    def get_manifest(self, registry: str, repository: str, reference: str,
                     credentials: Credentials | None) -> Manifest:
        self._check_repository(repository)
        by_digest = bool(_DIGEST.match(reference))
        if not by_digest and not _TAG.match(reference):
            raise RegistryError(f"invalid reference {reference!r}")
        name = f"{registry}/{repository}{'@' if by_digest else ':'}{reference}"
        accept = ", ".join(MANIFEST_TYPES)
        response = self._request("GET", registry, f"/v2/{repository}/manifests/{reference}",
                                 credentials, self._scope(repository, "pull"),
                                 headers={"Accept": accept}, stream=True)
        with response:
            if response.status_code == 404:
                raise NotFound(f"manifest unknown: {name} not found ({_error_text(response)})")
            if response.status_code != 200:
                raise RegistryError(f"{name}: {_error_text(response)}")
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > MAX_MANIFEST_SIZE:
                raise Unsupported(f"{name}: manifest too big ({length} bytes, limit "
                                  f"{MAX_MANIFEST_SIZE})")
            content = bytearray()
            try:
                for chunk in response.iter_content(64 * 1024):
                    content += chunk
                    if len(content) > MAX_MANIFEST_SIZE:
                        raise Unsupported(f"{name}: manifest too big (over {MAX_MANIFEST_SIZE} bytes)")
            except requests.exceptions.RequestException as exc:
                raise Unreachable(f"registry {registry}: reading manifest {name} failed: {exc}") from exc
            content = bytes(content)
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            header_digest = response.headers.get("Docker-Content-Digest", "").strip()
        if media_type in ("", "application/json", "text/plain"):
            try:
                parsed = json.loads(content)
                media_type = parsed.get("mediaType") or media_type
                if parsed.get("schemaVersion") == 1:
                    media_type = SCHEMA1_TYPES[0]
            except (ValueError, AttributeError):
                pass
        if media_type in SCHEMA1_TYPES:
            raise Unsupported(f"{name}: this image uses a Docker Image Format v1 (schema 1) manifest; "
                              "schema 1 manifests are no longer supported: push the image again "
                              "with a current client")
        if by_digest:
            expected = reference
        elif header_digest and _DIGEST.match(header_digest):
            expected = header_digest
        else:
            expected = ""
        if expected:
            hasher = _hasher(expected, name)
            hasher.update(content)
            actual = f"{expected.split(':')[0]}:{hasher.hexdigest()}"
            if actual != expected.lower():
                raise DigestMismatch(f"{name}: manifest content has digest {actual}, expected "
                                     f"{expected}")
            digest = expected.lower()
        else:
            digest = "sha256:" + hashlib.sha256(content).hexdigest()
        return Manifest(media_type=media_type, digest=digest, content=content)

    def get_blob(self, registry: str, repository: str, digest: str,
                 credentials: Credentials | None, offset: int = 0) -> Iterator[bytes]:
        """The request is made here (errors raise now); the returned iterator streams."""
        self._check_repository(repository)
        hasher = _hasher(digest, f"{registry}/{repository}")
        name = f"{registry}/{repository}@{digest}"
        headers = {"Range": f"bytes={offset}-"} if offset > 0 else {}
        response = self._request("GET", registry, f"/v2/{repository}/blobs/{digest}", credentials,
                                 self._scope(repository, "pull"), headers=headers, stream=True,
                                 allow_redirects=True)
        if response.status_code not in (200, 206):
            text = _error_text(response)
            response.close()
            if response.status_code == 404:
                raise NotFound(f"blob unknown: {name} not found ({text})")
            if response.status_code == 416:
                raise RegistryError(f"{name}: offset {offset} is past the end of the blob")
            raise RegistryError(f"{name}: {text}")
        skip = offset if offset > 0 and response.status_code == 200 else 0  # Range ignored
        verify = offset == 0 or skip > 0
        return self._stream_blob(response, name, digest, hasher, skip, verify)

    @staticmethod
    def _stream_blob(response: requests.Response, name: str, digest: str, hasher, skip: int,
                     verify: bool) -> Iterator[bytes]:
        with response:
            try:
                for chunk in response.iter_content(READ_CHUNK):
                    if not chunk:
                        continue
                    hasher.update(chunk)
                    if skip:
                        if len(chunk) <= skip:
                            skip -= len(chunk)
                            continue
                        chunk, skip = chunk[skip:], 0
                    yield chunk
            except requests.exceptions.RequestException as exc:
                raise Unreachable(f"{name}: download interrupted: {exc}") from exc
        if verify:
            actual = f"{digest.split(':')[0]}:{hasher.hexdigest()}"
            if actual != digest.lower():
                raise DigestMismatch(f"{name}: downloaded content has digest {actual}, expected {digest}")

    def has_blob(self, registry: str, repository: str, digest: str,
                 credentials: Credentials | None) -> bool:
        self._check_repository(repository)
        _hasher(digest, f"{registry}/{repository}")
        response = self._request("HEAD", registry, f"/v2/{repository}/blobs/{digest}", credentials,
                                 self._scope(repository, "pull"), allow_redirects=True)
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise RegistryError(f"{registry}/{repository}@{digest}: HEAD answered {response.status_code} "
                            f"{response.reason}")

    def put_blob(self, registry: str, repository: str, digest: str, size: int,
                 chunks: Iterable[bytes], credentials: Credentials | None,
                 mount_from: str | None = None) -> None:
        self._check_repository(repository)
        hasher = _hasher(digest, f"{registry}/{repository}")
        name = f"{registry}/{repository}@{digest}"
        scope = self._scope(repository, "pull,push")
        uploads = f"/v2/{repository}/blobs/uploads/"
        if mount_from:
            self._check_repository(mount_from)
            scope = f"{scope} {self._scope(mount_from, 'pull')}"
            response = self._request("POST", registry, uploads, credentials, scope,
                                     params={"mount": digest, "from": mount_from},
                                     headers={"Content-Length": "0"})
            if response.status_code == 201:
                return
        else:
            response = self._request("POST", registry, uploads, credentials, scope,
                                     headers={"Content-Length": "0"})
        if response.status_code != 202:
            raise RegistryError(f"{name}: starting the upload failed: {_error_text(response)}")
        location = self._location(response, registry, name)
        try:
            if self.upload_chunk_size:
                location, written, last = self._upload_in_chunks(registry, location, chunks, hasher,
                                                                 credentials, scope, name)
            else:
                location, written = self._upload_streamed(registry, location, chunks, hasher,
                                                          credentials, scope, name)
                last = b""
            total = written + len(last)
            if total != size:
                raise RegistryError(f"{name}: {total} bytes to upload, expected {size}")
            actual = f"{digest.split(':')[0]}:{hasher.hexdigest()}"
            if actual != digest.lower():
                raise DigestMismatch(f"{name}: content to upload has digest {actual}, expected {digest}")
            # The last piece travels with the closing PUT (monolithic when it is all of it).
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(last))}
            response = self._request("PUT", registry, location, credentials, scope,
                                     params={"digest": digest}, data=last, headers=headers)
            if response.status_code not in (201, 204):
                raise RegistryError(f"{name}: finishing the upload failed: {_error_text(response)}")
        except Exception:
            try:
                self._request("DELETE", registry, location, credentials, scope)
            except RegistryError:
                pass
            raise

    def _upload_in_chunks(self, registry: str, location: str, chunks: Iterable[bytes], hasher,
                          credentials: Credentials | None, scope: str, name: str):
        """PATCHes of `upload_chunk_size` bytes (for registries that limit a request's
        size); the remainder is left for the closing PUT."""
        written = 0
        pending = bytearray()
        for chunk in chunks:
            hasher.update(chunk)
            pending += chunk
            while len(pending) >= self.upload_chunk_size:
                piece = bytes(pending[:self.upload_chunk_size])
                del pending[:self.upload_chunk_size]
                location = self._patch(registry, location, piece, written, credentials, scope, name)
                written += len(piece)
        return location, written, bytes(pending)

    def _upload_streamed(self, registry: str, location: str, chunks: Iterable[bytes], hasher,
                         credentials: Credentials | None, scope: str, name: str) -> tuple[str, int]:
        """The whole blob in one PATCH with a chunked body: one round trip, and memory
        bounded by the caller's chunks. A stream cannot be sent twice, so the auth this
        upload's POST settled is used as is, and a 401 now is an error."""
        sent = {"bytes": 0}

        def body() -> Iterable[bytes]:
            for chunk in chunks:
                hasher.update(chunk)
                sent["bytes"] += len(chunk)
                yield chunk

        headers = {"Content-Type": "application/octet-stream",
                   **self._auth_header(registry, scope, credentials)}
        response = self._send("PATCH", location, registry, data=body(), headers=headers)
        if response.status_code != 202:
            raise RegistryError(f"{name}: uploading the blob failed: {_error_text(response)}")
        return self._location(response, registry, name), sent["bytes"]

    def _location(self, response: requests.Response, registry: str, name: str) -> str:
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(f"{name}: the registry sent no upload location")
        return urljoin(response.url or self._base(registry) + "/", location)

    def _patch(self, registry: str, location: str, piece: bytes, start: int,
               credentials: Credentials | None, scope: str, name: str) -> str:
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(piece)),
                   "Content-Range": f"{start}-{start + len(piece) - 1}"}
        response = self._request("PATCH", registry, location, credentials, scope, data=piece,
                                 headers=headers)
        if response.status_code != 202:
            raise RegistryError(f"{name}: uploading bytes {start}- failed: {_error_text(response)}")
        return self._location(response, registry, name)

    def put_manifest(self, registry: str, repository: str, tag: str, manifest: Manifest,
                     credentials: Credentials | None) -> str:
        self._check_repository(repository)
        if not _TAG.match(tag) and not _DIGEST.match(tag):
            raise RegistryError(f"invalid tag {tag!r}")
        name = f"{registry}/{repository}:{tag}"
        if len(manifest.content) > MAX_MANIFEST_SIZE:
            raise Unsupported(f"{name}: manifest too big ({len(manifest.content)} bytes)")
        response = self._request("PUT", registry, f"/v2/{repository}/manifests/{tag}", credentials,
                                 self._scope(repository, "pull,push"), data=manifest.content,
                                 headers={"Content-Type": manifest.media_type})
        if response.status_code not in (200, 201, 202):
            raise RegistryError(f"{name}: pushing the manifest failed: {_error_text(response)}")
        return (response.headers.get("Docker-Content-Digest")
                or "sha256:" + hashlib.sha256(manifest.content).hexdigest())

    def list_tags(self, registry: str, repository: str, credentials: Credentials | None) -> list[str]:
        self._check_repository(repository)
        name = f"{registry}/{repository}"
        tags: list[str] = []
        for body in self._pages(registry, f"/v2/{repository}/tags/list", credentials,
                                self._scope(repository, "pull"), name, not_found=NotFound):
            tags.extend(str(tag) for tag in body.get("tags") or [])
        return tags

    def search(self, registry: str, term: str, limit: int,
               credentials: Credentials | None) -> list[dict]:
        limit = limit if limit > 0 else DEFAULT_SEARCH_LIMIT
        hub = registry in ("docker.io", "index.docker.io", "registry-1.docker.io")
        response = self._request("GET", registry, DOCKER_HUB_SEARCH if hub else "/v1/search",
                                 credentials, params={"q": term, "n": limit})
        with response:
            results = None
            if response.status_code == 200:
                try:
                    results = response.json().get("results")
                except (ValueError, AttributeError):
                    pass  # a page that is not Docker's search API, as some front-ends serve
            elif response.status_code not in (404, 405, 501):
                raise RegistryError(f"{registry}: /v1/search answered {_error_text(response)}")
        if isinstance(results, list):
            return [_search_result(result) for result in results if isinstance(result, dict)][:limit]
        return self._search_catalog(registry, term, limit, credentials)

    def _search_catalog(self, registry: str, term: str, limit: int,
                        credentials: Credentials | None) -> list[dict]:
        """Docker's registry offers no search: the catalog, filtered, stands in for it."""
        wanted = term.lower()
        found: list[dict] = []
        for body in self._pages(registry, f"/v2/_catalog?n={CATALOG_PAGE}", credentials,
                                "registry:catalog:*", registry, not_found=None):
            for name in body.get("repositories") or []:
                if wanted in str(name).lower():
                    found.append(_search_result({"name": str(name)}))
                    if len(found) >= limit:
                        return found
        return found

    def _pages(self, registry: str, path: str, credentials: Credentials | None, scope: str,
               name: str, not_found: type[RegistryError] | None) -> Iterator[dict]:
        """The JSON bodies of a paginated listing, following `Link: <...>; rel="next"`.
        A first page that is 403/404/405/501 raises `not_found`, or `Unsupported` (the
        catalog) when that is None."""
        url: str | None = path
        seen: set[str] = set()
        first = True
        while url:
            response = self._request("GET", registry, url, credentials, scope)
            with response:
                if response.status_code != 200:
                    text = _error_text(response)
                    if first and not_found is None and response.status_code in (403, 404, 405, 501):
                        raise Unsupported(f"registry {registry} does not support search "
                                          f"(no /v1/search, and /v2/_catalog answered {text})")
                    if response.status_code == 404 and not_found is not None:
                        raise not_found(f"repository name not known to registry: {name} ({text})")
                    raise RegistryError(f"{name}: listing {urlsplit(url).path} failed: {text}")
                try:
                    body = response.json()
                except ValueError as exc:
                    raise RegistryError(f"{name}: {urlsplit(url).path} answered no JSON") from exc
                if not isinstance(body, dict):
                    raise RegistryError(f"{name}: {urlsplit(url).path} answered unexpected JSON")
                link = response.links.get("next", {}).get("url")
                # Resolved against where the page came from: the registry may have switched
                # to HTTPS, and Link targets are usually relative.
                url = urljoin(response.url, link) if link else None
            yield body
            first = False
            if url in seen:  # a registry looping its Link header must not loop us forever
                break
            if url:
                seen.add(url)


def _search_result(result: dict) -> dict:
    """Docker's search result shape, with its types, whatever the registry left out."""
    def number(value) -> int:
        try:
            return int(value or 0)
        except (TypeError, ValueError):
            return 0

    return {"name": str(result.get("name") or ""),
            "description": str(result.get("description") or ""),
            "star_count": number(result.get("star_count")),
            "is_official": bool(result.get("is_official")),
            "is_automated": bool(result.get("is_automated"))}
