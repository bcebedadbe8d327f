"""Per-registry TLS settings read from a certs.d directory, the way Docker reads them.

For a registry "host:port", `<certs-dir>/<host:port>/` may hold:

    *.crt                  CA certificates trusted for that registry, on top of the
                           system's bundle
    <name>.cert, <name>.key  a client certificate (and its key) presented to it

This module owns turning such a directory into the `verify=` and `cert=` arguments of
requests, and the combined CA bundle files that `verify=` needs (requests takes one
file, not a list). It does no networking.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from dockyard.plugin import RegistryError

SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass(frozen=True)
class TLSSettings:
    """`verify`: True for the default trust store, else the path of a bundle file;
    `cert`: (certificate, key) paths of a client certificate, or None."""

    verify: bool | str = True
    cert: tuple[str, str] | None = None


def system_bundle() -> Path:
    """Docker trusts the system's CAs; requests alone would use certifi's copy."""
    if SYSTEM_BUNDLE.is_file():
        return SYSTEM_BUNDLE
    import certifi  # a dependency of requests

    return Path(certifi.where())


class CertsDir:
    """`<root>/<registry>/` lookups with bundles written once into `bundle_dir`
    (a private temporary directory when None). Thread-safe."""

    def __init__(self, root: str | Path, bundle_dir: Path | None = None) -> None:
        self.root = Path(root)
        self._bundle_dir = bundle_dir
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple, TLSSettings]] = {}

    def directory(self, registry: str) -> Path | None:
        """The registry's directory when it exists (its existence says: speak TLS)."""
        if not registry or registry in (".", "..") or "/" in registry:
            return None
        path = self.root / registry
        return path if path.is_dir() else None

    def ca_path(self, registry: str) -> Path:
        """Where a user puts the CA certificate of `registry`."""
        return self.root / registry / "ca.crt"

    def settings(self, registry: str) -> TLSSettings:
        directory = self.directory(registry)
        if directory is None:
            return TLSSettings()
        try:
            entries = sorted((entry.name, entry.stat().st_mtime_ns, entry.stat().st_size)
                             for entry in os.scandir(directory) if entry.is_file())
        except OSError as exc:
            raise RegistryError(f"cannot read the certificates of registry {registry} in {directory}: "
                             f"{exc}") from exc
        # Re-read only when the directory changed: an edited ca.crt is picked up without
        # a daemon restart, as in Docker, yet requests do not re-read files each time.
        signature = tuple(entries)
        with self._lock:
            cached = self._cache.get(registry)
            if cached and cached[0] == signature:
                return cached[1]
        try:
            made = self._read(registry, directory, [name for name, _, _ in entries])
        except OSError as exc:
            raise RegistryError(f"cannot read the certificates of registry {registry} in {directory}: "
                                f"{exc}") from exc
        with self._lock:
            self._cache[registry] = (signature, made)
        return made

    def _read(self, registry: str, directory: Path, names: list[str]) -> TLSSettings:
        cas = [directory / name for name in names if name.endswith(".crt")]
        cert = None
        for name in names:
            if name.endswith(".cert"):
                key = name[:-len(".cert")] + ".key"
                if key not in names:
                    raise RegistryError(f"missing key {directory / key} for client certificate "
                                     f"{directory / name}. CA certificates must use the extension .crt")
                cert = cert or (str(directory / name), str(directory / key))
            elif name.endswith(".key") and name[:-len(".key")] + ".cert" not in names:
                raise RegistryError(f"missing client certificate {directory / name[:-4]}.cert for key "
                                 f"{directory / name}")
        verify: bool | str = str(self._bundle(registry, cas)) if cas else True
        return TLSSettings(verify=verify, cert=cert)

    def _bundle(self, registry: str, cas: list[Path]) -> Path:
        parts = [system_bundle().read_bytes()]
        for path in cas:
            data = path.read_bytes()
            if b"-----BEGIN CERTIFICATE-----" not in data:
                raise RegistryError(f"{path} is not a PEM certificate (a CA for registry {registry})")
            parts.append(data if data.endswith(b"\n") else data + b"\n")
        content = b"".join(parts)
        # Named by content: an unchanged set of CAs reuses the file written the first time.
        name = f"{registry.replace(':', '_')}-{hashlib.sha256(content).hexdigest()[:16]}.pem"
        target = self._bundles() / name
        if not target.exists():
            fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".bundle-")
            with os.fdopen(fd, "wb") as out:
                out.write(content)
            os.replace(temporary, target)
        return target

    def _bundles(self) -> Path:
        with self._lock:
            if self._bundle_dir is None:
                self._bundle_dir = Path(tempfile.mkdtemp(prefix="dockyard-registry-ca-"))
            self._bundle_dir.mkdir(parents=True, exist_ok=True)
            return self._bundle_dir
