"""A `RegistryClient` for the OCI distribution API (Docker Registry HTTP API v2).

It speaks the protocol and moves bytes: auth challenges (Basic, and Bearer tokens from
the realm a registry names, cached per registry and scope until they expire),
redirects, resumable blob downloads, chunked and cross-repository (mount) uploads. It
checks what it cheaply can (a blob streamed from its start, a manifest fetched by
digest) but the engine verifies every digest again.

Plain HTTP is used for loopback registries only (localhost, 127.0.0.0/8, ::1), as
Docker does; every other registry is reached over HTTPS.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterable, Iterator
from urllib.parse import urljoin

import requests
from dockyard.drivers.registry import Credentials, Manifest

from dockyard_registry_distribution.errors import (
    DigestMismatch,
    NotFound,
    RegistryError,
    Unauthorized,
    Unreachable,
    Unsupported,
)

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
READ_CHUNK = 1024 * 1024
DEFAULT_UPLOAD_CHUNK = 8 * 1024 * 1024
USER_AGENT = "dockyard/0.1 (registry-distribution)"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-fA-F0-9]{32,})$")
_HASHES = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
_LOOPBACK = re.compile(r"^(localhost|127(?:\.\d{1,3}){3}|::1)$")
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


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
    """Satisfies `dockyard.drivers.registry.RegistryClient`."""

    def __init__(self, connect_timeout: float = 10.0, read_timeout: float = 60.0,
                 retries: int = 3, upload_chunk_size: int = DEFAULT_UPLOAD_CHUNK,
                 insecure_registries: Iterable[str] = ()) -> None:
        self.timeout = (connect_timeout, read_timeout)
        self.retries = max(1, retries)
        self.upload_chunk_size = max(1, upload_chunk_size)
        self.insecure_registries = set(insecure_registries)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str, str], _Token] = {}
        self._schemes: dict[str, tuple[str, dict[str, str]]] = {}  # registry -> its challenge

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
        plain = _LOOPBACK.match(_host(registry)) or registry in self.insecure_registries
        return f"{'http' if plain else 'https'}://{registry}"

    @staticmethod
    def _check_repository(repository: str) -> None:
        if not _REPOSITORY.match(repository) or len(repository) > 255:
            raise RegistryError(f"invalid repository name {repository!r}")

    def _send(self, method: str, url: str, registry: str, **kwargs) -> requests.Response:
        """One request, with bounded retries for idempotent ones on connection errors."""
        attempts = self.retries if method in ("GET", "HEAD") else 1
        kwargs.setdefault("timeout", self.timeout)
        for attempt in range(attempts):
            try:
                return self._session.request(method, url, **kwargs)
            except requests.exceptions.Timeout as exc:
                if isinstance(exc, requests.exceptions.ConnectTimeout) and attempt + 1 < attempts:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                raise Unreachable(f"registry {registry} did not answer in time "
                                  f"(connect {self.timeout[0]}s, read {self.timeout[1]}s): "
                                  f"{method} {url}") from exc
            except requests.exceptions.ConnectionError as exc:
                if attempt + 1 < attempts:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                raise Unreachable(f"cannot reach registry {registry}: {exc}") from exc
            except requests.exceptions.RequestException as exc:
                raise RegistryError(f"registry {registry}: {method} {url} failed: {exc}") from exc
        raise AssertionError("unreachable")

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
            raise Unauthorized(f"{registry}: unauthorized: {text}")
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
            last = bytes(pending)
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
