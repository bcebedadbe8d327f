"""The registry client contract: manifests and blobs over the distribution API.

The engine owns the image store, verification and the pull/push plan (which layers
are missing); a registry client only moves bytes and speaks the protocol (auth
challenges, redirects, chunked uploads). Every digest it hands back is checked by the
engine again, so a client cannot smuggle in unverified content.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""


@dataclass(frozen=True)
class Manifest:
    media_type: str
    digest: str
    content: bytes


@runtime_checkable
class RegistryClient(Protocol):
    def ping(self, registry: str, credentials: Credentials | None) -> None:
        """Check `/v2/` and the credentials; raise with the registry's message on failure."""

    def get_manifest(
        self, registry: str, repository: str, reference: str, credentials: Credentials | None
    ) -> Manifest: ...

    def get_blob(
        self, registry: str, repository: str, digest: str,
        credentials: Credentials | None, offset: int = 0,
    ) -> Iterator[bytes]:
        """Stream a blob from byte `offset` (for resuming an interrupted download)."""

    def has_blob(
        self, registry: str, repository: str, digest: str, credentials: Credentials | None
    ) -> bool: ...

    def put_blob(
        self, registry: str, repository: str, digest: str, size: int,
        chunks: Iterable[bytes], credentials: Credentials | None,
        mount_from: str | None = None,
    ) -> None: ...

    def put_manifest(
        self, registry: str, repository: str, tag: str, manifest: Manifest,
        credentials: Credentials | None,
    ) -> str:
        """Upload a manifest under `tag`; return the digest the registry reports."""
