"""Registries end to end: the real docker CLI and docker-py against dockyardd, and the
real `docker-registry` server (distribution 2.8) on 127.0.0.1, plain, behind TLS with
htpasswd, and behind a bearer-token service; a proxy that cuts streams and a stub
registry that serves what a real one refuses to store (broken manifests, a stalled
blob). Every failure is checked for what it leaves behind."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import docker, dockyard_cli, out
from dockyard.plugin.testing.daemon import DaemonProcess
from dockyard.plugin.testing.images import image_archive, random_layer
from dockyard.plugin.testing.registry import (
    CertificateAuthority,
    CuttingProxy,
    RegistryServer,
    TokenServer,
    registry_binary,
)

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(registry_binary() is None,
                                 reason="docker-registry is not installed (apt install docker-registry)")]

MiB = 1024 * 1024


# -- fixtures and helpers -----------------------------------------------------------------

def start_daemon(root: Path, *args: str, config: str = "") -> DaemonProcess:
    root.mkdir(parents=True, exist_ok=True)
    (root / "daemon.yaml").write_text(config)
    daemon = DaemonProcess(root, ("--storage-driver", "overlay", *args)).start()
    result = dockyard_cli("image", "bootstrap", "busybox", "--tag", "busybox:latest", host=daemon.host)
    assert result.returncode == 0
    return daemon


@pytest.fixture(scope="module")
def registry():
    with RegistryServer() as server:
        yield server


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    daemon = start_daemon(tmp_path_factory.mktemp("reg"))
    yield daemon
    daemon.teardown()


def load(daemon, archive: bytes) -> None:
    docker(daemon, "load", input=archive, check=True)


def push(daemon, name: str) -> str:
    result = docker(daemon, "push", name)
    assert result.returncode == 0, result.stderr.decode()
    return out(result)


def pull(daemon, name: str, *args: str) -> str:
    result = docker(daemon, "pull", *args, name)
    assert result.returncode == 0, result.stderr.decode()
    return out(result)


def blob_gets(proxy: CuttingProxy) -> Counter:
    return Counter(path.rsplit("/", 1)[1] for method, path, _range in proxy.requests
                   if method == "GET" and "/blobs/sha256:" in path)


def store_counts(daemon) -> dict[str, int]:
    """What an image operation can leave behind in the data root."""
    image_root = daemon.data_root / "image"
    storage = daemon.data_root / "storage" / "overlay"
    return {
        "images": len(list((image_root / "images").glob("*.json"))),
        "layers": len(list((image_root / "layers").glob("*.json"))),
        "blobs": len(list((image_root / "content" / "blobs" / "sha256").iterdir())),
        "ingest": len(list((image_root / "content" / "ingest").iterdir())),
        "driver layers": len([p for p in storage.iterdir() if len(p.name) == 64]) if storage.is_dir() else 0,
        "mounts": sum(str(daemon.root) in line for line in Path("/proc/mounts").read_text().splitlines()),
    }


def image_layers(daemon, name: str) -> list[str]:
    return json.loads(out(docker(daemon, "image", "inspect", name, "--format", "{{json .RootFS.Layers}}")))


def repo_digests(daemon, name: str) -> list[str]:
    return json.loads(out(docker(daemon, "image", "inspect", name, "--format", "{{json .RepoDigests}}")))


# -- pull and push with the docker CLI ----------------------------------------------------

def test_push_rmi_pull_run_with_the_docker_cli(daemon, registry):
    name = f"{registry.address}/cli/busybox:1"
    docker(daemon, "tag", "busybox", name, check=True)
    pushed = push(daemon, name)
    assert f"The push refers to repository [{registry.address}/cli/busybox]" in pushed
    assert ": Pushed" in pushed
    digest_line = pushed.splitlines()[-1]
    assert digest_line.startswith("1: digest: sha256:") and " size: " in digest_line, pushed
    digest = digest_line.split()[2]
    assert f"{registry.address}/cli/busybox@{digest}" in repo_digests(daemon, name)

    again = push(daemon, name)
    assert ": Layer already exists" in again and ": Pushed" not in again
    assert again.splitlines()[-1] == digest_line  # the same manifest, byte for byte

    removed = out(docker(daemon, "rmi", name))
    assert f"Untagged: {name}" in removed and f"Untagged: {registry.address}/cli/busybox@{digest}" in removed

    assert "Deleted: sha256:" in out(docker(daemon, "rmi", "busybox"))
    pulled = pull(daemon, name)
    assert "1: Pulling from cli/busybox" in pulled
    assert ": Pull complete" in pulled
    assert f"Digest: {digest}" in pulled
    assert f"Status: Downloaded newer image for {name}" in pulled
    assert f"Status: Image is up to date for {name}" in pull(daemon, name)
    assert repo_digests(daemon, name) == [f"{registry.address}/cli/busybox@{digest}"]

    run = docker(daemon, "run", "--rm", name, "echo", "pulled and running")
    assert run.returncode == 0, run.stderr.decode()
    assert out(run) == "pulled and running"
    docker(daemon, "tag", name, "busybox:latest", check=True)


def test_only_missing_layers_are_downloaded(daemon, registry):
    base, middle, top = random_layer(MiB), random_layer(MiB), random_layer(MiB)
    with CuttingProxy(registry.address, cut_after=0, cuts=0) as proxy:
        small, large = f"{proxy.address}/share/small:1", f"{proxy.address}/share/large:1"
        load(daemon, image_archive(small, [base, middle]))
        load(daemon, image_archive(large, [base, middle, top]))
        push(daemon, small)
        pushed = push(daemon, large)
        assert pushed.count("Layer already exists") == 2 or pushed.count("Mounted from share/small") == 2
        docker(daemon, "rmi", small, large, check=True)
        before = len(proxy.requests)

        pull(daemon, small)
        fetched = blob_gets(proxy)
        assert len(fetched) == 3 and all(count == 1 for count in fetched.values())  # 2 layers + config
        pulled = pull(daemon, large)
        assert pulled.count("Already exists") == 2 and pulled.count("Pull complete") == 1
        fetched_after = blob_gets(proxy) - fetched
        assert len(fetched_after) == 2, fetched_after  # the top layer and the config
        assert len(proxy.requests) > before
        assert image_layers(daemon, large)[:2] == image_layers(daemon, small)
        docker(daemon, "rmi", small, large, check=True)


def test_cross_repository_mount_on_push(daemon, registry):
    first, second = f"{registry.address}/mount/first:1", f"{registry.address}/mount/second:1"
    load(daemon, image_archive(first, [random_layer(256 * 1024)]))
    push(daemon, first)
    docker(daemon, "tag", first, second, check=True)
    pushed = push(daemon, second)
    assert ": Mounted from mount/first" in pushed, pushed
    docker(daemon, "rmi", first, second, check=True)


def test_concurrent_pulls_share_downloads(daemon, registry):
    import docker as docker_py

    with CuttingProxy(registry.address, cut_after=0, cuts=0) as proxy:
        name = f"{proxy.address}/shared/img"
        load(daemon, image_archive(f"{name}:1", [random_layer(8 * MiB) for _ in range(3)]))
        push(daemon, f"{name}:1")
        docker(daemon, "rmi", f"{name}:1", check=True)
        proxy.requests.clear()
        client = docker_py.DockerClient(base_url=daemon.host, timeout=120)
        errors = []

        def pull_once():
            try:
                client.images.pull(name, tag="1")
            except Exception as exc:  # noqa: BLE001 (reported below)
                errors.append(exc)

        pullers = [threading.Thread(target=pull_once) for _ in range(2)]
        for thread in pullers:
            thread.start()
        for thread in pullers:
            thread.join(120)
        assert not errors
        fetched = blob_gets(proxy)
        layers = [d for d in fetched if d != client.images.get(f"{name}:1").id]
        assert len(layers) == 3, fetched
        assert all(fetched[d] == 1 for d in layers), f"a layer was downloaded twice: {fetched}"
        client.close()
        docker(daemon, "rmi", f"{name}:1", check=True)


def test_a_download_cut_mid_layer_resumes(daemon, registry):
    name = f"{registry.address}/resume/img:1"
    load(daemon, image_archive(name, [random_layer(6 * MiB)]))
    push(daemon, name)
    layers = image_layers(daemon, name)
    docker(daemon, "rmi", name, check=True)
    with CuttingProxy(registry.address, cut_after=2 * MiB, cuts=1) as proxy:
        via_proxy = f"{proxy.address}/resume/img:1"
        pulled = pull(daemon, via_proxy)
        assert "Pull complete" in pulled
        ranges = [r for method, path, r in proxy.requests if "/blobs/" in path and r]
        assert ranges and ranges[0].startswith("bytes=") and not ranges[0].startswith("bytes=0-"), \
            proxy.requests
        assert image_layers(daemon, via_proxy) == layers
        docker(daemon, "rmi", via_proxy, check=True)


def test_a_blob_that_does_not_match_its_digest_leaves_nothing(daemon, registry):
    name = f"{registry.address}/corrupt/img:1"
    load(daemon, image_archive(name, [random_layer(MiB)]))
    push(daemon, name)
    manifest_digest = repo_digests(daemon, name)[0].split("@")[1]
    docker(daemon, "rmi", name, check=True)
    manifest = json.loads(registry.blob_path(manifest_digest).read_bytes())
    layer_digest = manifest["layers"][0]["digest"]
    registry.corrupt_blob(layer_digest)
    before = store_counts(daemon)

    result = docker(daemon, "pull", name)
    assert result.returncode == 1
    assert layer_digest in result.stderr.decode(), result.stderr.decode()
    assert docker(daemon, "image", "inspect", name).returncode == 1
    docker(daemon, "image", "prune", "-f", check=True)  # collection runs; nothing of the pull is kept
    assert store_counts(daemon) == before


def test_pull_by_digest_and_all_tags(daemon, registry):
    repository = f"{registry.address}/tags/img"
    load(daemon, image_archive(f"{repository}:1", [random_layer(64 * 1024)]))
    load(daemon, image_archive(f"{repository}:2", [random_layer(64 * 1024)]))
    push(daemon, f"{repository}:1")
    push(daemon, f"{repository}:2")
    digest = repo_digests(daemon, f"{repository}:1")[0].split("@")[1]
    docker(daemon, "rmi", f"{repository}:1", f"{repository}:2", check=True)

    pull(daemon, f"{repository}@{digest}")
    assert repo_digests(daemon, f"{repository}@{digest}") == [f"{repository}@{digest}"]
    assert docker(daemon, "image", "inspect", f"{repository}:1").returncode == 1  # no tag from a digest pull
    pulled = pull(daemon, repository, "--all-tags")
    assert "1: Pulling from tags/img" in pulled and "2: Pulling from tags/img" in pulled
    for tag in ("1", "2"):
        assert docker(daemon, "image", "inspect", f"{repository}:{tag}").returncode == 0
    docker(daemon, "rmi", f"{repository}:1", f"{repository}:2", check=True)


def test_pull_errors_are_clear(daemon, registry):
    before = store_counts(daemon)
    missing = docker(daemon, "pull", f"{registry.address}/nothing/here:1")
    assert missing.returncode == 1
    assert f"manifest for {registry.address}/nothing/here:1 not found" in missing.stderr.decode()

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    down = docker(daemon, "pull", f"127.0.0.1:{port}/down/img:1")
    assert down.returncode == 1
    assert f"127.0.0.1:{port}" in down.stderr.decode() and "reach" in down.stderr.decode()
    assert store_counts(daemon) == before

    unknown = docker(daemon, "push", f"{registry.address}/never/tagged:1")
    assert unknown.returncode == 1
    assert "An image does not exist locally with the tag" in unknown.stderr.decode()


# -- what a real registry would not store: a stub one ----------------------------------------

def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class StubRegistry:
    """A registry answering from dicts, on 127.0.0.1: manifests by reference
    ({ref: (media type, bytes)}) and blobs by digest. A blob in `stall` is sent half,
    then held until `release` is set: a pull caught in the middle."""

    def __init__(self, manifests: dict, blobs: dict, stall: tuple[str, ...] = ()) -> None:
        self.manifests, self.blobs, self.stall = manifests, blobs, set(stall)
        self.release = threading.Event()
        self.stalled = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.do_GET(body=False)

            def do_GET(self, body=True):
                parts = self.path.split("?")[0].split("/")
                if self.path.rstrip("/") == "/v2":
                    return self.answer(200, "application/json", b"{}", body)
                if len(parts) >= 4 and parts[-2] == "manifests" and parts[-1] in stub.manifests:
                    media_type, content = stub.manifests[parts[-1]]
                    return self.answer(200, media_type, content, body, sha256(content))
                if len(parts) >= 4 and parts[-2] == "blobs" and parts[-1] in stub.blobs:
                    content = stub.blobs[parts[-1]]
                    if parts[-1] in stub.stall and body:
                        self.send_response(200)
                        self.send_header("Content-Length", str(len(content)))
                        self.end_headers()
                        self.wfile.write(content[:len(content) // 2])
                        self.wfile.flush()
                        stub.stalled.set()
                        stub.release.wait(60)
                        self.close_connection = True
                        return None
                    return self.answer(200, "application/octet-stream", content, body)
                return self.answer(404, "application/json",
                                   b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}',
                                   body)

            def answer(self, status, media_type, content, body, digest=None):
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(content)))
                if digest:
                    self.send_header("Docker-Content-Digest", digest)
                self.end_headers()
                if body:
                    self.wfile.write(content)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def stub_image(layer_sizes=(MiB,), config_media_type="application/vnd.oci.image.config.v1+json"):
    """A pullable image as a stub registry's dicts: manifests, blobs."""
    layers = [random_layer(size) for size in layer_sizes]
    compressed = [gzip.compress(layer, 1) for layer in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [sha256(x) for x in layers]},
                         "config": {"Cmd": ["sh"]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": config_media_type, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(blob),
                    "size": len(blob)} for blob in compressed],
    }).encode()
    blobs = {sha256(config): config, **{sha256(blob): blob for blob in compressed}}
    return {"1": ("application/vnd.oci.image.manifest.v1+json", manifest)}, blobs


@pytest.mark.parametrize("case, expected", [
    ("malformed", "is not valid JSON"),
    ("schema1", "schema 1"),
    ("too big", "too big"),
    ("artifact", "unsupported media type application/vnd.cncf.helm.config.v1+json"),
    ("zstd", "zstd"),
])
def test_manifests_the_engine_refuses(daemon, case, expected):
    manifests, blobs = stub_image((1024,), "application/vnd.cncf.helm.config.v1+json"
                                  if case == "artifact" else "application/vnd.oci.image.config.v1+json")
    if case == "malformed":
        manifests["1"] = ("application/vnd.oci.image.manifest.v1+json", b'{"schemaVersion": 2, "layers": [')
    elif case == "schema1":
        manifests["1"] = ("application/vnd.docker.distribution.manifest.v1+prettyjws",
                          b'{"schemaVersion": 1, "name": "x", "tag": "1", "fsLayers": []}')
    elif case == "too big":
        manifests["1"] = ("application/vnd.oci.image.manifest.v1+json", b" " * (5 * MiB) + b"{}")
    elif case == "zstd":
        media_type, content = manifests["1"]
        manifests["1"] = (media_type, content.replace(b"tar+gzip", b"tar+zstd"))
    before = store_counts(daemon)
    with StubRegistry(manifests, blobs) as stub:
        result = docker(daemon, "pull", f"{stub.address}/bad/img:1")
    assert result.returncode == 1
    assert expected in result.stderr.decode(), result.stderr.decode()
    assert store_counts(daemon) == before


def test_a_pull_killed_midway_leaves_nothing_after_restart(tmp_path_factory):
    daemon = start_daemon(tmp_path_factory.mktemp("kill"))
    try:
        manifests, blobs = stub_image((64 * 1024, 4 * MiB))
        stall = max(blobs, key=lambda digest: len(blobs[digest]))
        before = store_counts(daemon)
        with StubRegistry(manifests, blobs, stall=(stall,)) as stub:
            pulling = subprocess.Popen(
                ["docker", "pull", f"{stub.address}/kill/img:1"], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env={**os.environ, "DOCKER_HOST": daemon.host,
                                             "DOCKER_CONFIG": str(daemon.root / "cfg")})
            assert stub.stalled.wait(60), "the pull never reached the stalled layer"
            time.sleep(0.5)  # let the small layer be extracted meanwhile
            assert store_counts(daemon)["ingest"] >= 1
            daemon.process.send_signal(signal.SIGKILL)
            daemon.process.wait(10)
            pulling.wait(30)
            assert pulling.returncode != 0
        daemon.start()
        assert docker(daemon, "image", "inspect", f"{stub.address}/kill/img:1").returncode == 1
        assert store_counts(daemon) == before
    finally:
        daemon.teardown()


def test_platform_is_chosen_from_an_index(daemon, registry):
    import urllib.request

    repository = f"{registry.address}/plat/img"
    entries = []
    for architecture in ("amd64", "arm64"):
        name = f"{repository}:{architecture}"
        load(daemon, image_archive(name, [random_layer(32 * 1024)], architecture=architecture))
        line = push(daemon, name).splitlines()[-1]  # "<tag>: digest: sha256:... size: N"
        entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": line.split()[2], "size": int(line.split()[4]),
                        "platform": {"os": "linux", "architecture": architecture}})
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": entries}).encode()
    request = urllib.request.Request(f"{registry.url}/v2/plat/img/manifests/multi", data=index,
                                     method="PUT",
                                     headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
    urllib.request.urlopen(request, timeout=10).close()
    ids = {arch: out(docker(daemon, "image", "inspect", f"{repository}:{arch}", "--format", "{{.Id}}"))
           for arch in ("amd64", "arm64")}
    docker(daemon, "rmi", f"{repository}:amd64", f"{repository}:arm64", check=True)

    pulled = pull(daemon, f"{repository}:multi")
    assert f"Digest: {sha256(index)}" in pulled  # the index's digest, as Docker shows it
    chosen = out(docker(daemon, "image", "inspect", f"{repository}:multi", "--format", "{{.Id}}"))
    assert chosen == ids["amd64"]
    assert repo_digests(daemon, f"{repository}:multi") == [f"{repository}@{sha256(index)}"]
    pull(daemon, f"{repository}:multi", "--platform", "linux/arm64")
    assert out(docker(daemon, "image", "inspect", f"{repository}:multi", "--format",
                      "{{.Id}} {{.Architecture}}")) == f"{ids['arm64']} arm64"
    wrong = docker(daemon, "pull", "--platform", "linux/s390x", f"{repository}:multi")
    assert wrong.returncode == 1
    assert "no matching manifest for linux/s390x in the manifest list entries" in wrong.stderr.decode()
    docker(daemon, "rmi", f"{repository}:multi", check=True)


def test_docker_hub_names_are_pulled_through_a_mirror(registry, tmp_path_factory, daemon):
    # The image is pushed under library/ in the local registry, which then serves as the
    # mirror of Docker Hub: "busybox-mirrored" must never reach docker.io.
    name = f"{registry.address}/library/busybox-mirrored:1"
    docker(daemon, "tag", "busybox", name, check=True)
    push(daemon, name)
    docker(daemon, "rmi", name, check=True)
    mirrored = start_daemon(tmp_path_factory.mktemp("mirror"), "--registry-mirror", registry.url)
    try:
        info = json.loads(out(docker(mirrored, "info", "--format", "{{json .RegistryConfig.Mirrors}}")))
        assert info == [registry.url]
        pulled = pull(mirrored, "busybox-mirrored:1")
        assert "Status: Downloaded newer image for busybox-mirrored:1" in pulled
        ran = docker(mirrored, "run", "--rm", "busybox-mirrored:1", "echo", "via mirror")
        assert out(ran) == "via mirror"
        assert repo_digests(mirrored, "busybox-mirrored:1")[0].startswith("busybox-mirrored@sha256:")
    finally:
        mirrored.teardown()


def test_search_lists_the_registry_catalog(daemon, registry):
    name = f"{registry.address}/findme/searchable:1"
    docker(daemon, "tag", "busybox", name, check=True)
    push(daemon, name)
    found = docker(daemon, "search", f"{registry.address}/searchable")
    assert found.returncode == 0, found.stderr.decode()
    assert "findme/searchable" in out(found)
    docker(daemon, "rmi", name, check=True)


# -- credentials: htpasswd over TLS, bearer tokens, docker-py -------------------------------

@pytest.fixture(scope="module")
def tls_setup(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    authority = CertificateAuthority(directory / "ca")
    certificate, key = authority.issue()
    with RegistryServer(users={"alice": "wonderland"}, tls=(certificate, key)) as server:
        certs_dir = directory / "certs.d"
        authority.install(certs_dir, server.address)
        yield server, certs_dir


def test_login_push_pull_over_tls_with_htpasswd(tls_setup, tmp_path_factory):
    server, certs_dir = tls_setup
    daemon = start_daemon(tmp_path_factory.mktemp("tls-d"), config=f"registry-certs-dir: {certs_dir}\n")
    try:
        name = f"{server.address}/secure/busybox:1"
        docker(daemon, "tag", "busybox", name, check=True)
        anonymous = docker(daemon, "push", name)
        assert anonymous.returncode == 1 and "unauthorized" in anonymous.stderr.decode().lower()

        wrong = docker(daemon, "login", "-u", "alice", "--password-stdin", server.address, input=b"queen\n")
        assert wrong.returncode == 1
        assert "incorrect username or password" in wrong.stderr.decode()
        right = docker(daemon, "login", "-u", "alice", "--password-stdin", server.address,
                       input=b"wonderland\n")
        assert right.returncode == 0, right.stderr.decode()
        assert "Login Succeeded" in out(right)
        stored = json.loads((daemon.root / "cfg" / "config.json").read_text())
        assert server.address in stored["auths"]

        push(daemon, name)
        docker(daemon, "rmi", name, check=True)
        pull(daemon, name)
        assert out(docker(daemon, "run", "--rm", name, "echo", "tls")) == "tls"
        docker(daemon, "logout", server.address, check=True)
        assert docker(daemon, "pull", name.replace(":1", ":2")).returncode == 1
    finally:
        daemon.teardown()


def test_a_registry_with_an_unknown_ca_is_refused_with_advice(tls_setup, daemon):
    server, _certs_dir = tls_setup
    result = docker(daemon, "login", "-u", "alice", "--password-stdin", server.address, input=b"wonderland\n")
    assert result.returncode == 1
    message = result.stderr.decode()
    assert server.address in message and "ca.crt" in message, message


def test_bearer_token_auth_with_docker_py(daemon, tmp_path_factory):
    import docker as docker_py

    directory = tmp_path_factory.mktemp("token")
    with TokenServer({"alice": "wonderland"}, directory) as tokens, \
            RegistryServer(token=tokens) as server:
        client = docker_py.DockerClient(base_url=daemon.host, timeout=120)
        name = f"{server.address}/tokens/busybox"
        client.images.get("busybox").tag(name, "1")
        with pytest.raises(docker_py.errors.APIError) as refused:
            client.login("alice", "queen", registry=server.address, reauth=True)
        assert "incorrect username or password" in str(refused.value)
        assert client.login("alice", "wonderland", registry=server.address)["Status"] == "Login Succeeded"

        auth = {"username": "alice", "password": "wonderland"}
        messages = list(client.images.push(name, "1", auth_config=auth, stream=True, decode=True))
        assert not [m for m in messages if "error" in m], messages
        aux = [m["aux"] for m in messages if "aux" in m]
        assert aux and aux[0]["Tag"] == "1" and aux[0]["Digest"].startswith("sha256:")
        client.images.remove(f"{name}:1")

        stranger = docker_py.DockerClient(base_url=daemon.host, timeout=120)  # no login remembered
        with pytest.raises(docker_py.errors.APIError) as anonymous:
            stranger.images.pull(name, tag="1")
        stranger.close()
        assert "pull access denied" in str(anonymous.value)
        image = client.images.pull(name, tag="1", auth_config=auth)
        assert f"{name}@{aux[0]['Digest']}" in image.attrs["RepoDigests"]
        issued = len(tokens.issued)
        client.images.pull(name, tag="1", auth_config=auth)
        assert len(tokens.issued) == issued  # the token for this scope was cached
        client.images.remove(f"{name}:1")
        client.close()


def test_a_registry_that_hangs_is_given_up_on_clearly(tmp_path_factory):
    import time

    daemon = start_daemon(tmp_path_factory.mktemp("hang"), "--registry-opt", "read-timeout=1",
                          "--registry-opt", "connect-timeout=1")
    try:
        with socket.socket() as silent:  # accepts connections, never answers
            silent.bind(("127.0.0.1", 0))
            silent.listen(16)
            address = f"127.0.0.1:{silent.getsockname()[1]}"
            before = store_counts(daemon)
            started = time.monotonic()
            result = docker(daemon, "pull", f"{address}/hangs/img:1")
            elapsed = time.monotonic() - started
        assert result.returncode == 1
        assert f"registry {address} did not answer in time" in result.stderr.decode(), result.stderr.decode()
        assert elapsed < 30, f"retries are bounded, yet the pull took {elapsed:.0f}s"
        assert store_counts(daemon) == before
    finally:
        daemon.teardown()
