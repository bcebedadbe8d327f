"""The registry engine's small parts, without root or a registry: credentials as clients
send them, registry names as users type them, platforms, progress bars, blob sources,
and the download pool's sharing and resuming."""

from __future__ import annotations

import base64
import hashlib
import json
import threading

import pytest
from dockyard.errors import InvalidParameter
from dockyard.formats.registry_auth import credentials_from_auth_config, decode_registry_auth, registry_host
from dockyard.images.content import ContentStore, DigestMismatch
from dockyard.plugin.contracts.registry import Credentials, Unreachable
from dockyard.registries.downloads import DownloadPool
from dockyard.registries.progress import bar
from dockyard.registries.pull import Platform
from dockyard.registries.sources import BlobSources


def encoded(value: dict, padded: bool = True) -> str:
    text = base64.urlsafe_b64encode(json.dumps(value).encode()).decode()
    return text if padded else text.rstrip("=")


@pytest.mark.parametrize("address, host", [
    ("", "docker.io"), ("https://index.docker.io/v1/", "docker.io"), ("docker.io", "docker.io"),
    ("registry-1.docker.io", "docker.io"), ("http://127.0.0.1:5000/", "127.0.0.1:5000"),
    ("127.0.0.1:5000", "127.0.0.1:5000"), ("https://registry.example.com/v2/", "registry.example.com"),
])
def test_registry_host(address, host):
    assert registry_host(address) == host


def test_x_registry_auth_in_every_spelling():
    both = {"username": "alice", "password": "wonderland", "serveraddress": "127.0.0.1:5000"}
    assert decode_registry_auth(encoded(both)) == Credentials("alice", "wonderland")
    assert decode_registry_auth(encoded(both, padded=False)) == Credentials("alice", "wonderland")
    packed = {"auth": base64.b64encode(b"bob:s3cr:et").decode()}
    assert decode_registry_auth(encoded(packed)) == Credentials("bob", "s3cr:et")
    assert decode_registry_auth(encoded({"identitytoken": "tok"})) == Credentials(identity_token="tok")
    for anonymous in (None, "", "e30=", "not base64 at all!", encoded({"username": ""})):
        assert decode_registry_auth(anonymous) is None
    assert credentials_from_auth_config(["not", "a", "dict"]) is None


@pytest.mark.parametrize("text, expected", [
    (None, None), ("linux/arm64", Platform("linux", "arm64")), ("arm64", Platform("linux", "arm64")),
    ("linux/arm/v7", Platform("linux", "arm", "v7")), ("Linux/x86_64", Platform("linux", "amd64")),
])
def test_platforms(text, expected):
    parsed = Platform.parse(text)
    if expected is not None:
        assert parsed == expected
    assert parsed.os == "linux"


def test_platform_matching_and_refusal():
    assert Platform("linux", "arm64", "v8").matches({"os": "linux", "architecture": "arm64"})
    assert not Platform("linux", "arm", "v7").matches({"os": "linux", "architecture": "arm",
                                                       "variant": "v6"})
    assert not Platform("linux", "amd64").matches({"os": "windows", "architecture": "amd64"})
    with pytest.raises(InvalidParameter, match="os/arch"):
        Platform.parse("linux/arm64/v8/extra")


def test_progress_bar():
    assert bar(0, 0) == "0B"
    half = bar(500_000, 1_000_000)
    assert half.startswith("[" + "=" * 25 + ">") and half.endswith("500kB/1MB")
    assert bar(1_000_000, 1_000_000).startswith("[" + "=" * 50 + "]")


def test_blob_sources_remember_where_a_blob_was(tmp_path):
    sources = BlobSources(tmp_path / "sources.json")
    sources.add(["sha256:aa"], "reg:5000", "library/one")
    sources.add(["sha256:aa"], "reg:5000", "library/two")
    sources.add(["sha256:aa"], "other:5000", "library/three")
    assert sources.repositories("sha256:aa", "reg:5000", besides="library/two") == ["library/one"]
    reloaded = BlobSources(tmp_path / "sources.json")
    assert reloaded.repositories("sha256:aa", "other:5000", besides="") == ["library/three"]
    reloaded.forget_except(set())
    assert BlobSources(tmp_path / "sources.json").repositories("sha256:aa", "reg:5000", "") == []


def test_download_pool_shares_a_download_and_resumes_a_broken_one(tmp_path):
    data = bytes(range(256)) * 4096  # 1 MiB
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    content = ContentStore(tmp_path / "content")
    pool = DownloadPool(content, limit=2)
    opened: list[int] = []
    release = threading.Event()

    def opener(offset: int):
        opened.append(offset)
        release.wait(10)
        yield data[offset:offset + 300_000]
        if len(opened) == 1:
            raise Unreachable("connection dropped")  # the first stream breaks mid-blob
        yield data[offset + 300_000:]

    states: list[str] = []
    first = pool.fetch(digest, len(data), opener, lambda state, done: states.append(state))
    second = pool.fetch(digest, len(data), opener, lambda state, done: None)
    assert first is second  # one download, two listeners
    release.set()
    assert first.future.result(10) == digest
    assert opened == [0, 300_000]  # resumed where the broken stream stopped
    assert content.read(digest) == data
    assert states[0] in ("waiting", "downloading") and states[-1] == "complete"


def test_download_pool_keeps_nothing_that_does_not_match(tmp_path):
    content = ContentStore(tmp_path / "content")
    pool = DownloadPool(content, limit=1)
    claimed = "sha256:" + hashlib.sha256(b"the real thing").hexdigest()
    download = pool.fetch(claimed, 14, lambda offset: iter([b"something else"]), lambda s, d: None)
    with pytest.raises(DigestMismatch, match=claimed):
        download.future.result(10)
    longer = pool.fetch(claimed, 3, lambda offset: iter([b"the real thing"]), lambda s, d: None)
    with pytest.raises(DigestMismatch, match="longer than the 3 bytes"):
        longer.future.result(10)
    assert content.digests() == [] and list(content.ingest_dir.iterdir()) == []
