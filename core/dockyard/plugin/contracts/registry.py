"""The registry client contract: manifests, blobs, tags and search over the distribution API.

The engine owns the image store, verification and the pull/push plan (which layers
are missing); a registry client only moves bytes and speaks the protocol (auth
challenges, TLS, redirects, chunked uploads). Every digest it hands back is checked by
the engine again, so a client cannot smuggle in unverified content.

A client reports failures by raising the errors defined here, never its own types or
those of its HTTP library: the engine catches `RegistryError` and maps each subclass
to an HTTP status of the Engine API, so the user sees the client's message unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

# -- errors: raise these; the engine maps them to HTTP statuses -----------------------


class RegistryError(Exception):
    """Base of everything a registry client raises; the engine maps it, and each
    subclass, to an HTTP status of its own.

    Raise it (or a subclass) with a message a user can act on, naming the registry
    ("127.0.0.1:5000/app:v1: ...") and, where the registry said why, in its own words.
    Chain the original exception (`raise ... from exc`) so logs keep the cause.
    """


class Unauthorized(RegistryError):
    """The registry wants credentials, or refused the ones given.

    Docker's wording is expected for refused credentials, as scripts match it:
    "unauthorized: incorrect username or password".
    """


class NotFound(RegistryError):
    """No such repository, manifest, tag or blob.

    Say which ("manifest unknown: registry/repo:tag not found").
    """


class DigestMismatch(RegistryError):
    """Content does not hash to the digest it was asked for or announced.

    Raise it instead of handing the bytes on; name both digests.
    """


class Unsupported(RegistryError):
    """What the client will not or cannot do: schema 1 manifests, oversized manifests,
    a registry without a search API."""


class Unreachable(RegistryError):
    """The registry could not be reached, stopped answering within the timeouts, or its
    TLS certificate could not be verified.

    For TLS failures, say where the CA certificate belongs so the user can fix it.
    """


# -- data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """What `docker login` stored for one registry: a username and password, or an
    identity (refresh) token from an OAuth2 login. Empty strings mean "not given"."""

    username: str = ""
    password: str = ""
    identity_token: str = ""


@dataclass(frozen=True)
class Manifest:
    """A manifest exactly as the registry stores it: `content` is hashed for `digest`,
    so it must never be re-serialized."""

    media_type: str
    digest: str
    content: bytes


# -- the protocol ---------------------------------------------------------------------


@runtime_checkable
class RegistryClient(Protocol):
    """What a registry driver's factory returns.

    `registry` is always "host[:port]" (never a URL): the client decides between HTTP
    and HTTPS and which certificates to trust. `repository` is the path inside the
    registry ("library/busybox"). `credentials` is None for anonymous access. A client
    is shared by concurrent pulls and pushes and must be thread-safe. Failures raise the
    `RegistryError` family above.
    """

    def ping(self, registry: str, credentials: Credentials | None) -> None:
        """Check `/v2/` and the credentials (`docker login`); raise `Unauthorized` with
        the registry's message when they are refused."""

    def get_manifest(
        self, registry: str, repository: str, reference: str, credentials: Credentials | None
    ) -> Manifest:
        """Fetch a manifest or index by tag or digest; `NotFound` when there is none."""

    def get_blob(
        self, registry: str, repository: str, digest: str,
        credentials: Credentials | None, offset: int = 0,
    ) -> Iterator[bytes]:
        """Stream a blob from byte `offset` (for resuming an interrupted download).

        Errors known before the first byte (missing blob, refused credentials) raise
        when called; an interrupted stream raises `Unreachable` from the iterator, and
        the engine resumes with the offset it reached."""

    def has_blob(
        self, registry: str, repository: str, digest: str, credentials: Credentials | None
    ) -> bool:
        """Whether the repository has the blob (a push skips it then)."""

    def put_blob(
        self, registry: str, repository: str, digest: str, size: int,
        chunks: Iterable[bytes], credentials: Credentials | None,
        mount_from: str | None = None,
    ) -> None:
        """Upload a blob of `size` bytes; with `mount_from` (another repository of the
        same registry), try a cross-repository mount first and consume no chunks when
        it succeeds. Refuse (`DigestMismatch`) content that does not match `digest`."""

    def put_manifest(
        self, registry: str, repository: str, tag: str, manifest: Manifest,
        credentials: Credentials | None,
    ) -> str:
        """Upload a manifest under `tag`; return the digest the registry reports."""

    def list_tags(self, registry: str, repository: str, credentials: Credentials | None) -> list[str]:
        """Every tag of the repository, in the registry's order, across all pages of
        `GET /v2/<repository>/tags/list`; `NotFound` for an unknown repository."""

    def search(
        self, registry: str, term: str, limit: int, credentials: Credentials | None
    ) -> list[dict]:
        """At most `limit` repositories matching `term` (`docker search`), as Docker's
        result dicts: {"name": str, "description": str, "star_count": int,
        "is_official": bool, "is_automated": bool}.

        Use the registry's search API where it has one; otherwise list its catalog and
        keep the names containing `term`. Raise `Unsupported` when it offers neither.
        The engine validates `limit` (Docker allows 1-100)."""
