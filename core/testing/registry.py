"""The registry client conformance suite, against a real registry server on 127.0.0.1.

A driver package proves itself with a few lines:

    from dockyard.testing.registry import RegistryClientSuite

    class TestDistribution(RegistryClientSuite):
        driver_name = "distribution"

The client is built as the daemon builds it: through the installed plugins (strict
mode), with a DriverContext on fresh temporary directories. A client whose probe fails
here is skipped with the probe's reason.

Also here: `RegistryServer`, which runs the Debian `docker-registry` binary
(distribution 2.8) on a free loopback port with its storage in a temporary directory
(optionally behind htpasswd Basic auth), as a context manager or through the
`registry_server` fixture; and `blob` / `image_manifest` to build test content.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from dockyard.drivers.registry import Credentials, Manifest, RegistryClient
from dockyard.plugin import DriverContext
from dockyard.pluginmanager import PluginManager

REGISTRY_BINARY = "/usr/bin/docker-registry"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def registry_binary() -> str | None:
    return REGISTRY_BINARY if os.access(REGISTRY_BINARY, os.X_OK) else shutil.which("docker-registry")


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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RegistryServer:
    """A distribution registry on 127.0.0.1: `with RegistryServer() as server:` then
    `server.address` ("127.0.0.1:PORT"). With `users={"name": "password"}` it demands
    htpasswd Basic auth."""

    def __init__(self, users: dict[str, str] | None = None, root: Path | None = None) -> None:
        self.users = users or {}
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="dockyard-registry-"))
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

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
                    with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1):
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


@pytest.fixture
def registry_server() -> Iterator[RegistryServer]:
    """A fresh anonymous registry for one test."""
    _need_registry()
    with RegistryServer() as server:
        yield server


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
    """Subclass with `driver_name` set; every test_* method is one clause of the contract."""

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

    @pytest.fixture
    def client(self, tmp_path: Path) -> RegistryClient:
        assert self.driver_name, "set driver_name on your RegistryClientSuite subclass"
        spec = PluginManager(strict=True).load_all().find("registry", self.driver_name)
        reason = spec.why_unsupported()
        if reason:
            pytest.skip(f"registry driver {self.driver_name} cannot run here: {reason}")
        for name in ("home", "exec"):
            (tmp_path / name).mkdir()
        made = spec.factory(DriverContext(kind="registry", name=spec.name, home=tmp_path / "home",
                                          exec_root=tmp_path / "exec"))
        assert isinstance(made, RegistryClient), f"{type(made)} lacks RegistryClient methods"
        return made

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
