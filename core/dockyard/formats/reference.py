"""Image references: parsing, normalizing and printing names such as `busybox:1.36` the way Docker does.

This module owns the reference grammar (domain, path, tag, digest), Docker Hub normalization
("busybox" is "docker.io/library/busybox") and the error messages Docker prints for a bad reference.
It follows github.com/distribution/reference (ParseNormalizedNamed, ParseDockerRef, ParseAnyReference,
FamiliarString, TagNameOnly); it does no I/O and knows nothing of registries or the image store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

DEFAULT_DOMAIN = "docker.io"
DEFAULT_TAG = "latest"
# The old name of Docker Hub ("the Docker Index"); users still type it and it means docker.io.
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPOSITORY_PREFIX = "library/"
MAX_PATH_LENGTH = 255

# Hex lengths of the digest algorithms Docker registers (sha256 and, through crypto/sha512, sha384
# and sha512). Other algorithms are accepted on grammar alone, see `_check_digest`.
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}

# The grammar of distribution/reference. Character classes are spelled out in ASCII because Python's
# `\w` and `\d` match any Unicode letter or digit where Go's match ASCII only.
_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
# Bracketed IPv6 only, and no zone identifier ("%eth0") nor embedded IPv4, as Docker allows.
_IPV6_ADDRESS = r"\[[a-fA-F0-9:]+\]"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6_ADDRESS})(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_REFERENCE_RE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)
_DOMAIN_RE = re.compile(_DOMAIN)
_PATH_RE = re.compile(_PATH)
_TAG_RE = re.compile(_TAG)
_DIGEST_RE = re.compile(_DIGEST)
# The OCI image-spec digest grammar, which go-digest checks digests of unknown algorithms against.
_OCI_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_LOWER_HEX_RE = re.compile(r"[a-f0-9]+")
_IMAGE_ID_RE = re.compile(r"[a-f0-9]{64}")

INVALID_FORMAT = "invalid reference format"
NAME_CONTAINS_UPPERCASE = "repository name must be lowercase"
NAME_TOO_LONG = f"repository name must not be more than {MAX_PATH_LENGTH} characters"
INVALID_TAG_FORMAT = "invalid tag format"
INVALID_DIGEST_FORMAT = "invalid digest format"
INVALID_CHECKSUM_FORMAT = "invalid checksum digest format"
INVALID_CHECKSUM_LENGTH = "invalid checksum digest length"


class InvalidReference(ValueError):
    """A string that is not a valid image reference; the message is the one Docker prints for it."""


@dataclass(frozen=True)
class Reference:
    """A parsed image reference: `domain/path[:tag][@digest]`.

    Build references with `parse_normalized` or `parse_docker_ref`: the constructor checks each field
    against the grammar but does not normalize, so `Reference("docker.io", "busybox")` is accepted
    although the parsers would have made its path "library/busybox". The parsers leave `domain`
    empty only where Docker does: a first component with a "." that is no valid host, such as
    "foo_bar.com/x", is read as part of the path.
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        if self.domain and not _DOMAIN_RE.fullmatch(self.domain):
            raise InvalidReference(INVALID_FORMAT)
        if not _PATH_RE.fullmatch(self.path):
            lowered = self.path.lower()
            raise InvalidReference(
                NAME_CONTAINS_UPPERCASE if lowered != self.path and _PATH_RE.fullmatch(lowered)
                else INVALID_FORMAT
            )
        if len(self.path) > MAX_PATH_LENGTH:
            raise InvalidReference(NAME_TOO_LONG)
        if self.tag is not None and not _TAG_RE.fullmatch(self.tag):
            raise InvalidReference(INVALID_TAG_FORMAT)
        if self.digest is not None:
            if not _DIGEST_RE.fullmatch(self.digest):
                raise InvalidReference(INVALID_DIGEST_FORMAT)
            _check_digest(self.digest)

    @property
    def name(self) -> str:
        """The repository without tag or digest: "docker.io/library/busybox"."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def familiar_name(self) -> str:
        """The repository as the docker CLI shows it: "busybox", "foo/bar", "host:5000/a/b"."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        official = self.path.removeprefix(OFFICIAL_REPOSITORY_PREFIX)
        # Only "library/<name>" is shortened: "library/a/b" keeps its prefix, as Docker Hub has no
        # nested official repositories and the short form "a/b" would name a different one.
        if official != self.path and "/" not in official:
            return official
        return self.path

    def __str__(self) -> str:
        return self.name + self._suffix()

    def familiar(self) -> str:
        """The whole reference as the docker CLI shows it: "busybox:latest", "foo/bar@sha256:..."."""
        return self.familiar_name + self._suffix()

    def with_tag(self, tag: str) -> Reference:
        """The same reference with `tag` (a digest, if any, is kept)."""
        return replace(self, tag=tag)

    def with_default_tag(self) -> Reference:
        """Adds the "latest" tag to a reference that has neither tag nor digest (Docker's TagNameOnly)."""
        if self.tag is None and self.digest is None:
            return replace(self, tag=DEFAULT_TAG)
        return self

    def _suffix(self) -> str:
        suffix = f":{self.tag}" if self.tag is not None else ""
        return suffix + (f"@{self.digest}" if self.digest is not None else "")


def parse_normalized(text: str) -> Reference:
    """Parses a reference as typed by a user, filling in Docker Hub's domain and "library/" namespace.

    "busybox" becomes docker.io/library/busybox, "index.docker.io/foo/bar" docker.io/foo/bar. No
    default tag is added (see `parse_docker_ref`). Raises InvalidReference with Docker's message.
    """
    if _IMAGE_ID_RE.fullmatch(text):
        # A bare image ID would otherwise parse as docker.io/library/<hex>; Docker refuses the ambiguity.
        raise InvalidReference(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_domain(text)
    # Checked before the grammar so that the message can name the offending repository.
    repository = remainder.partition(":")[0]
    if repository.lower() != repository:
        raise InvalidReference(f"{INVALID_FORMAT}: repository name ({repository}) must be lowercase")
    return _parse(f"{domain}/{remainder}")


def parse_docker_ref(text: str) -> Reference:
    """Parses like `parse_normalized`, then adds the tag "latest" unless there is a tag or digest.

    A reference with both a tag and a digest loses its tag, as with Docker's ParseDockerRef: the
    digest alone decides which image is meant.
    """
    reference = parse_normalized(text)
    if reference.tag is not None and reference.digest is not None:
        return replace(reference, tag=None)
    return reference.with_default_tag()


def parse_any_reference(text: str) -> Reference | str:
    """Parses an image ID or a reference, as Docker's ParseAnyReference does.

    A bare 64-hex ID is returned as the digest "sha256:<hex>", and a full digest of an algorithm
    Docker can compute (sha256, sha384, sha512) as itself; anything else, "md5:<hex>" included, is
    parsed with `parse_normalized`.
    """
    if _IMAGE_ID_RE.fullmatch(text):
        return f"sha256:{text}"
    algorithm, _, encoded = text.partition(":")
    length = _DIGEST_HEX_LENGTHS.get(algorithm)
    if length is not None and len(encoded) == length and _LOWER_HEX_RE.fullmatch(encoded):
        return text
    return parse_normalized(text)


def is_full_image_id(text: str) -> bool:
    """Whether `text` is a complete image ID: "sha256:<64 hex>" or the 64 lowercase hex digits alone."""
    return _IMAGE_ID_RE.fullmatch(text.removeprefix("sha256:")) is not None


def _split_domain(text: str) -> tuple[str, str]:
    """Splits `text` into a registry domain and the rest, defaulting to Docker Hub."""
    first, slash, rest = text.partition("/")
    if not slash:
        # A single component is always a Docker Hub official image, even "localhost" or
        # "example.com": otherwise "busybox:1.36" would be read as the host "busybox", port "1.36".
        return DEFAULT_DOMAIN, OFFICIAL_REPOSITORY_PREFIX + text
    if first == LEGACY_DEFAULT_DOMAIN:
        domain, remainder = DEFAULT_DOMAIN, rest
    elif first == "localhost" or "." in first or ":" in first or first.lower() != first:
        # Namespaces on Docker Hub are lowercase, so an uppercase first component can only be a host.
        domain, remainder = first, rest
    else:
        domain, remainder = DEFAULT_DOMAIN, text
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPOSITORY_PREFIX + remainder
    return domain, remainder


def _parse(text: str) -> Reference:
    """Parses a reference whose domain is already explicit, as Docker's reference.Parse does."""
    match = _REFERENCE_RE.fullmatch(text)
    if match is None:
        lowered = text.lower()
        if lowered != text and _REFERENCE_RE.fullmatch(lowered):
            raise InvalidReference(NAME_CONTAINS_UPPERCASE)
        raise InvalidReference(INVALID_FORMAT)
    return Reference(match["domain"] or "", match["path"], match["tag"], match["digest"])


def _check_digest(digest: str) -> None:
    """Refuses a digest of a known algorithm whose hex has the wrong length or case.

    Docker refuses algorithms it has no hash for ("unsupported digest algorithm"); here any algorithm
    the OCI grammar allows passes, so that references to content this engine cannot verify still parse.
    """
    algorithm, _, encoded = digest.partition(":")
    length = _DIGEST_HEX_LENGTHS.get(algorithm)
    if length is None:
        if not _OCI_DIGEST_RE.fullmatch(digest):
            raise InvalidReference(INVALID_CHECKSUM_FORMAT)
        return
    if len(encoded) != length:
        raise InvalidReference(INVALID_CHECKSUM_LENGTH)
    if not _LOWER_HEX_RE.fullmatch(encoded):
        raise InvalidReference(INVALID_CHECKSUM_FORMAT)
