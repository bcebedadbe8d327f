"""Distribution client behaviour a real registry will not show on demand: lying
servers, schema 1, hangs, bearer tokens, redirects — served by tiny fakes on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from dockyard.plugin.contracts.registry import (
    Credentials,
    DigestMismatch,
    Manifest,
    NotFound,
    RegistryClient,
    RegistryError,
    Unauthorized,
    Unreachable,
    Unsupported,
)
from dockyard.plugin.testing.registry import (  # noqa: F401
    blob,
    chunked,
    digest_of,
    registry_server,
    tls_registry,
)
from dockyard_registry_distribution.client import DistributionClient, parse_challenge


class Fake:
    """A threaded HTTP server on 127.0.0.1 whose answers come from `handle(request)`:
    a function returning (status, headers, body)."""

    def __init__(self, handle) -> None:
        self.requests: list[tuple[str, str, dict]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(length) if length else b""
                fake.requests.append((self.command, self.path, dict(self.headers)))
                status, headers, body = handle(self)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    def __enter__(self) -> Fake:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _client(**kwargs) -> DistributionClient:
    return DistributionClient(**kwargs)


def test_the_client_satisfies_the_protocol():
    assert isinstance(_client(), RegistryClient)


def test_plain_http_only_for_loopback():
    client = _client(insecure_registries=["myreg:5000"])
    assert client._base("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert client._base("localhost:5000") == "http://localhost:5000"
    assert client._base("[::1]:5000") == "http://[::1]:5000"
    assert client._base("myreg:5000") == "http://myreg:5000"
    assert client._base("registry.example.com") == "https://registry.example.com"
    assert client._base("127.0.0.1.example.com:443") == "https://127.0.0.1.example.com:443"
    assert client._base("docker.io") == "https://registry-1.docker.io"
    with pytest.raises(RegistryError):
        client._base("host/path")


def test_hostile_names_are_refused_before_any_request():
    client = _client()
    for repository in ("../etc", "UPPER", "a//b", "a/"):
        with pytest.raises(RegistryError, match="invalid repository"):
            client.get_manifest("127.0.0.1:1", repository, "latest", None)
    with pytest.raises(RegistryError, match="invalid reference"):
        client.get_manifest("127.0.0.1:1", "ok", "../x", None)


def test_parse_challenge():
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.example/token", "service": "registry.example",
                      "scope": "repository:a/b:pull,push"}
    assert parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})


def test_blob_digest_mismatch_names_the_digest():
    data = b"the real content"
    digest = digest_of(data)
    with Fake(lambda request: (200, {}, b"something else entirely")) as fake:
        with pytest.raises(DigestMismatch) as caught:
            b"".join(_client().get_blob(fake.address, "lying/repo", digest, None))
    assert digest in str(caught.value)


def test_blob_resume_is_not_verified_but_a_whole_blob_is():
    data = blob(5000)
    digest = digest_of(data)

    def handle(request):
        range_header = request.headers.get("Range")
        if range_header:
            start = int(range_header.split("=")[1].rstrip("-"))
            return 206, {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}, data[start:]
        return 200, {}, data

    with Fake(handle) as fake:
        client = _client()
        assert b"".join(client.get_blob(fake.address, "r", digest, None)) == data
        assert b"".join(client.get_blob(fake.address, "r", digest, None, offset=1234)) == data[1234:]
    assert fake.requests[-1][2].get("Range") == "bytes=1234-"


def test_a_server_ignoring_range_is_handled():
    data = blob(5000)
    with Fake(lambda request: (200, {}, data)) as fake:
        got = b"".join(_client().get_blob(fake.address, "r", digest_of(data), None, offset=4000))
    assert got == data[4000:]


def test_blob_redirects_are_followed():
    data = blob(3000)

    def handle(request):
        if request.path.startswith("/v2/"):
            return 307, {"Location": "/storage/blob-data"}, b""
        return 200, {}, data

    with Fake(handle) as fake:
        assert b"".join(_client().get_blob(fake.address, "r", digest_of(data), None)) == data


def _manifest_server(content: bytes, media_type: str, digest_header: str | None = None):
    headers = {"Content-Type": media_type}
    if digest_header:
        headers["Docker-Content-Digest"] = digest_header
    return Fake(lambda request: (200, headers, content))


def test_manifest_by_digest_must_match():
    content = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
    asked = digest_of(b"another manifest")
    with _manifest_server(content, "application/vnd.oci.image.manifest.v1+json") as fake:
        with pytest.raises(DigestMismatch) as caught:
            _client().get_manifest(fake.address, "r", asked, None)
    assert asked in str(caught.value)


def test_manifest_digest_header_must_match_content():
    content = b'{"schemaVersion":2}'
    lie = digest_of(b"not it")
    with _manifest_server(content, "application/vnd.oci.image.manifest.v1+json", lie) as fake:
        with pytest.raises(DigestMismatch):
            _client().get_manifest(fake.address, "r", "latest", None)


def test_manifest_without_digest_header_is_hashed_and_accept_lists_all_types():
    content = b'{"schemaVersion":2,"manifests":[]}'
    media_type = "application/vnd.oci.image.index.v1+json"
    with _manifest_server(content, media_type + "; charset=utf-8") as fake:
        got = _client().get_manifest(fake.address, "r", "latest", None)
    assert got == Manifest(media_type, digest_of(content), content)
    accept = fake.requests[0][2]["Accept"]
    for wanted in ("application/vnd.docker.distribution.manifest.v2+json",
                   "application/vnd.docker.distribution.manifest.list.v2+json",
                   "application/vnd.oci.image.manifest.v1+json", media_type):
        assert wanted in accept


@pytest.mark.parametrize("media_type", ["application/vnd.docker.distribution.manifest.v1+prettyjws",
                                        "application/vnd.docker.distribution.manifest.v1+json",
                                        "application/json"])
def test_schema1_is_refused(media_type):
    content = json.dumps({"schemaVersion": 1, "name": "r", "tag": "old", "fsLayers": []}).encode()
    with _manifest_server(content, media_type) as fake:
        with pytest.raises(Unsupported, match="schema 1 manifests are no longer supported: push the "
                                              "image again"):
            _client().get_manifest(fake.address, "r", "old", None)


def test_oversized_manifest_is_refused():
    content = b"{" + b" " * (4 * 1024 * 1024) + b"}"
    with _manifest_server(content, "application/vnd.oci.image.manifest.v1+json") as fake:
        with pytest.raises(Unsupported, match="too big"):
            _client().get_manifest(fake.address, "r", "big", None)


def test_registry_errors_are_reported_in_its_words():
    body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown",
                                   "detail": {"Tag": "nope"}}]}).encode()
    with Fake(lambda request: (404, {"Content-Type": "application/json"}, body)) as fake:
        with pytest.raises(NotFound) as caught:
            _client().get_manifest(fake.address, "r", "nope", None)
    assert "manifest unknown" in str(caught.value) and "r:nope" in str(caught.value)


def test_a_hanging_server_times_out_naming_the_registry():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections (the kernel does), never answers
    address = f"127.0.0.1:{listener.getsockname()[1]}"
    try:
        started = time.monotonic()
        with pytest.raises(Unreachable) as caught:
            _client(connect_timeout=1, read_timeout=0.5).ping(address, None)
        assert time.monotonic() - started < 5
        assert address in str(caught.value) and "in time" in str(caught.value)
    finally:
        listener.close()


def test_connection_errors_on_reads_are_retried(monkeypatch):
    client = _client(retries=3)
    monkeypatch.setattr("dockyard_registry_distribution.client.time.sleep", lambda seconds: None)
    calls = []
    real = requests.Session.request

    def flaky(self, method, url, **kwargs):
        calls.append(method)
        if len(calls) < 3:
            raise requests.exceptions.ConnectionError("connection reset")
        return real(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", flaky)
    with Fake(lambda request: (200, {}, b"{}")) as fake:
        client.ping(fake.address, None)
    assert calls == ["GET", "GET", "GET"]
    calls.clear()
    monkeypatch.setattr(requests.Session, "request",
                        lambda self, method, url, **kw: (calls.append(method),
                                                         (_ for _ in ()).throw(
                                                             requests.exceptions.ConnectionError("no"))))
    with pytest.raises(Unreachable, match="127.0.0.1:9"):
        client.ping("127.0.0.1:9", None)
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(Unreachable):
        client.put_manifest("127.0.0.1:9", "r", "t", Manifest("x", "sha256:" + "0" * 64, b"{}"), None)
    assert calls == ["PUT"], "writes are not retried"


class BearerWorld:
    """A token server and a registry in one fake: the registry demands a bearer token
    the token server hands out for alice:pw (or anonymously, for pull)."""

    def __init__(self) -> None:
        self.token_requests: list[dict] = []
        self.fake = Fake(self.handle)

    def handle(self, request):
        realm = f"http://{self.fake.address}/token"
        if request.path.startswith("/token"):
            from urllib.parse import parse_qs, urlsplit
            query = parse_qs(urlsplit(request.path).query)
            self.token_requests.append(query)
            auth = request.headers.get("Authorization", "")
            if auth:
                user, _, password = base64.b64decode(auth.split()[1]).decode().partition(":")
                if (user, password) != ("alice", "pw"):
                    return 401, {}, b'{"details":"incorrect username or password"}'
                granted = "alice"
            else:
                granted = "anonymous"
            scope = query.get("scope", [""])[0]
            token = base64.b64encode(f"{granted}|{scope}".encode()).decode()
            return 200, {"Content-Type": "application/json"}, json.dumps(
                {"token": token, "expires_in": 300}).encode()
        auth = request.headers.get("Authorization", "")
        scope = "repository:r:pull" if "/manifests/" in request.path else ""
        if auth.startswith("Bearer "):
            granted, _, token_scope = base64.b64decode(auth.split()[1]).decode().partition("|")
            if token_scope == scope and (granted == "alice" or request.path == "/v2/"
                                         or "public" in request.path):
                if request.path == "/v2/":
                    return 200, {}, b"{}"
                content = b'{"schemaVersion":2}'
                return 200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, content
        challenge = f'Bearer realm="{realm}",service="fake"' + (f',scope="{scope}"' if scope else "")
        body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]})
        return 401, {"WWW-Authenticate": challenge}, body.encode()


def test_bearer_token_flow_with_caching():
    world = BearerWorld()
    with world.fake:
        client = _client()
        credentials = Credentials("alice", "pw")
        client.ping(world.fake.address, credentials)
        for _ in range(3):
            got = client.get_manifest(world.fake.address, "r", "latest", credentials)
            assert got.content == b'{"schemaVersion":2}'
    scopes = [query.get("scope", [""])[0] for query in world.token_requests]
    assert scopes == ["", "repository:r:pull"], "one token per scope, then cached"
    assert all(query["service"] == ["fake"] for query in world.token_requests)


def test_bearer_tokens_are_not_shared_between_identities():
    world = BearerWorld()
    with world.fake:
        client = _client()
        client.get_manifest(world.fake.address, "r", "latest", Credentials("alice", "pw"))
        with pytest.raises(Unauthorized, match="authentication required"):
            client.get_manifest(world.fake.address, "r", "latest", None)


def test_bearer_wrong_password_is_refused_like_docker():
    world = BearerWorld()
    with world.fake:
        with pytest.raises(Unauthorized, match="unauthorized: incorrect username or password"):
            _client().ping(world.fake.address, Credentials("alice", "wrong"))


def test_bearer_anonymous_token_without_rights_is_unauthorized():
    world = BearerWorld()
    with world.fake:
        with pytest.raises(Unauthorized, match="authentication required"):
            _client().get_manifest(world.fake.address, "r", "latest", None)


def test_small_upload_chunks_against_a_real_registry(registry_server):  # noqa: F811
    client = _client(upload_chunk_size=1000)
    data = blob(5500, seed=7)
    digest = digest_of(data)
    client.put_blob(registry_server.address, "chunky/repo", digest, len(data), chunked(data, 333), None)
    assert b"".join(client.get_blob(registry_server.address, "chunky/repo", digest, None)) == data


def test_upload_of_wrong_content_is_refused_and_not_committed(registry_server):  # noqa: F811
    client = _client(upload_chunk_size=1000)
    data = blob(2500, seed=8)
    wrong = digest_of(b"something else")
    with pytest.raises(DigestMismatch, match=wrong):
        client.put_blob(registry_server.address, "bad/repo", wrong, len(data), chunked(data, 700), None)
    assert not client.has_blob(registry_server.address, "bad/repo", wrong, None)
    with pytest.raises(RegistryError, match="expected 99"):
        client.put_blob(registry_server.address, "bad/repo", digest_of(data), 99, [data], None)


def test_manifest_digest_reported_by_the_registry(registry_server):  # noqa: F811
    client = _client()
    config = b"{}"
    client.put_blob(registry_server.address, "m/repo", digest_of(config), 2, [config], None)
    content = json.dumps({"schemaVersion": 2,
                          "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                          "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                     "digest": digest_of(config), "size": 2},
                          "layers": []}).encode()
    manifest = Manifest("application/vnd.docker.distribution.manifest.v2+json",
                        "sha256:" + hashlib.sha256(content).hexdigest(), content)
    assert client.put_manifest(registry_server.address, "m/repo", "v2", manifest, None) == manifest.digest
    got = client.get_manifest(registry_server.address, "m/repo", "v2", None)
    assert got == manifest


# -- contract errors, tags, search, TLS -----------------------------------------------


def test_the_errors_are_the_contracts():
    import dockyard.plugin.contracts.registry as contract

    for error in (RegistryError, Unauthorized, NotFound, DigestMismatch, Unsupported, Unreachable):
        assert getattr(contract, error.__name__) is error
        assert issubclass(error, contract.RegistryError)


def _json(body) -> tuple[int, dict, bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


def test_tags_follow_link_pagination():
    pages = {"/v2/r/tags/list": (["a", "b"], '</v2/r/tags/list?last=b&n=2>; rel="next"'),
             "/v2/r/tags/list?last=b&n=2": (["c"], None)}

    def handle(request):
        tags, link = pages[request.path]
        status, headers, body = _json({"name": "r", "tags": tags})
        return status, {**headers, **({"Link": link} if link else {})}, body

    with Fake(handle) as fake:
        assert _client().list_tags(fake.address, "r", None) == ["a", "b", "c"]


def test_a_looping_link_header_ends():
    def handle(request):
        status, headers, body = _json({"tags": ["x"]})
        return status, {**headers, "Link": '</v2/r/tags/list?last=x>; rel="next"'}, body

    with Fake(handle) as fake:
        assert _client().list_tags(fake.address, "r", None) == ["x", "x"]


def test_v1_search_is_used_where_the_registry_has_it():
    results = [{"name": f"lib/app{n}", "description": "an app", "star_count": n, "is_official": n == 0,
                "is_automated": False} for n in range(5)]
    with Fake(lambda request: _json({"num_results": 5, "query": "app", "results": results})) as fake:
        got = _client().search(fake.address, "app", 3, None)
    assert got == results[:3]
    assert fake.requests[0][1].startswith("/v1/search?") and "q=app" in fake.requests[0][1]


def test_catalog_search_follows_pages_and_stops_at_the_limit():
    def handle(request):
        if request.path.startswith("/v1/"):
            return 404, {}, b"404 page not found"
        if "last=" not in request.path:
            status, headers, body = _json({"repositories": ["a/one", "b/two"]})
            return status, {**headers, "Link": '</v2/_catalog?last=b%2Ftwo&n=100>; rel="next"'}, body
        return _json({"repositories": ["c/one", "d/one"]})

    with Fake(handle) as fake:
        assert [r["name"] for r in _client().search(fake.address, "ONE", 25, None)] == \
            ["a/one", "c/one", "d/one"]
        assert [r["name"] for r in _client().search(fake.address, "one", 2, None)] == ["a/one", "c/one"]


def test_search_unsupported_where_there_is_neither_search_nor_catalog():
    with Fake(lambda request: (404, {}, b"404 page not found")) as fake:
        with pytest.raises(Unsupported, match=f"registry {fake.address} does not support search"):
            _client().search(fake.address, "x", 25, None)


def test_insecure_registries_by_host_and_cidr():
    client = _client(insecure_registries=["10.0.0.0/8", "plainhost"])
    assert client._base("10.1.2.3:5000") == "http://10.1.2.3:5000"
    assert client._base("11.1.2.3:5000") == "https://11.1.2.3:5000"
    assert client._base("plainhost:1234") == "http://plainhost:1234"
    with pytest.raises(ValueError):
        _client(insecure_registries=["10.0.0.0/33"])


def test_a_certs_dir_entry_means_https_with_its_cas_and_client_certificate(tmp_path):
    registry = "127.0.0.1:5443"
    directory = tmp_path / "certs.d" / registry
    directory.mkdir(parents=True)
    (directory / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    (directory / "client.cert").write_text("cert")
    (directory / "client.key").write_text("key")
    client = _client(certs_dir=tmp_path / "certs.d", home=tmp_path / "home")
    assert client._base(registry) == f"https://{registry}"
    assert client._base("127.0.0.1:5000") == "http://127.0.0.1:5000"
    arguments = client._tls_arguments(f"https://{registry}/v2/", registry)
    assert arguments["cert"] == (str(directory / "client.cert"), str(directory / "client.key"))
    bundle = arguments["verify"]
    assert bundle.startswith(str(tmp_path / "home")) and "MIIB" in open(bundle).read()
    assert client._tls_arguments(f"https://{registry}/v2/", registry)["verify"] == bundle, "written once"
    (directory / "client.key").unlink()
    with pytest.raises(RegistryError, match="missing key"):
        client._tls_arguments(f"https://{registry}/v2/", registry)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_insecure_reaches_a_tls_only_registry_without_verification(tls_registry):  # noqa: F811
    server, _, _ = tls_registry
    client = _client(insecure_registries=[server.address])
    client.ping(server.address, None)
    assert client._base(server.address) == f"https://{server.address}"


def test_a_registry_without_tls_on_a_certs_dir_entry_is_explained(registry_server, tmp_path):  # noqa: F811
    (tmp_path / registry_server.address).mkdir()
    with pytest.raises(Unreachable, match="does not speak TLS.*insecure-registries"):
        _client(certs_dir=tmp_path).ping(registry_server.address, None)
