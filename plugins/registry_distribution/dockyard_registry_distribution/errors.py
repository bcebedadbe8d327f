"""What the distribution client raises. Every message names the registry it concerns."""

from __future__ import annotations


class RegistryError(Exception):
    """A registry refused a request, answered nonsense, or could not be reached."""


class Unauthorized(RegistryError):
    """The registry wants credentials, or refused the ones given."""


class NotFound(RegistryError):
    """No such repository, manifest or blob."""


class DigestMismatch(RegistryError):
    """Content does not hash to the digest it was asked for (or announced)."""


class Unsupported(RegistryError):
    """Content the client will not handle: schema 1 manifests, oversized manifests."""


class Unreachable(RegistryError):
    """The registry could not be reached, or stopped answering (timeouts)."""
