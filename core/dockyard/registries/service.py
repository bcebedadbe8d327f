"""The registry service: pull, push, login and search as the API offers them.

It owns the daemon's registry settings (mirrors, download and upload limits), the
download pool shared by all pulls, and the memory of where blobs were seen; the pull
and push plans live in their own modules. It speaks to registries only through the
`RegistryClient` contract, and it turns that contract's errors into the engine's, with
Docker's wording where users know it ("pull access denied", "manifest unknown").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from dockyard.errors import (
    EngineError,
    InvalidParameter,
    NotFound,
    Unavailable,
    UpstreamError,
)
from dockyard.errors import Unauthorized as NotAuthorized
from dockyard.formats.reference import DEFAULT_DOMAIN, InvalidReference, Reference, parse_normalized
from dockyard.formats.registry_auth import registry_host
from dockyard.images import content
from dockyard.images.manager import ImageManager, familiar
from dockyard.plugin.contracts.registry import (
    Credentials,
    RegistryClient,
    RegistryError,
    Unauthorized,
    Unreachable,
)
from dockyard.plugin.contracts.registry import NotFound as RegistryNotFound
from dockyard.registries import progress
from dockyard.registries.downloads import DownloadPool
from dockyard.registries.pull import Cancelled, Platform, Puller
from dockyard.registries.push import Pusher
from dockyard.registries.sources import BlobSources


def mirror_host(url: str) -> str:
    """daemon.yaml lists mirrors as URLs (`https://mirror.example:5000`); the client wants host:port."""
    return urlsplit(url if "://" in url else f"https://{url}").netloc


class RegistryService:
    def __init__(self, images: ImageManager, client: RegistryClient, mirrors: list[str],
                 max_concurrent_downloads: int, max_concurrent_uploads: int) -> None:
        self.images = images
        self.client = client
        self.mirrors = [mirror_host(url) for url in mirrors if mirror_host(url)]
        self.sources = BlobSources(images.root / "blob-sources.json")
        self.sources.forget_except(set(images.content.digests()))
        self.downloads = DownloadPool(images.content, max_concurrent_downloads)
        self.puller = Puller(images, client, self.downloads, self.sources, self.endpoints)
        self.pusher = Pusher(images, client, self.sources, max_concurrent_uploads)

    def endpoints(self, reference: Reference) -> list[str]:
        """Where to look for a reference: Docker Hub's mirrors first, then the registry."""
        if reference.domain == DEFAULT_DOMAIN:
            return [*self.mirrors, DEFAULT_DOMAIN]
        return [reference.domain]

    def close(self) -> None:
        self.downloads.shutdown()

    # -- pull ----------------------------------------------------------------------

    def pull(self, image: str, tag: str | None, platform: str | None,
             credentials: Credentials | None) -> Iterator[dict]:
        """`docker pull`: progress messages. The manifest is resolved before the first
        message, so a missing image or a refusal is an HTTP error, as Docker answers."""
        reference = self._reference(image, tag)
        wanted = Platform.parse(platform)
        if reference.tag or reference.digest:
            return self._pull_one(reference, wanted, credentials)
        return self._pull_all_tags(reference, wanted, credentials)

    @staticmethod
    def _reference(image: str, tag: str | None) -> Reference:
        try:
            reference = parse_normalized(image)
            if tag:
                field = "digest" if ":" in tag else "tag"
                reference = dataclasses.replace(reference, **{field: tag})
        except InvalidReference as exc:
            raise InvalidParameter(f"invalid reference format: {image}{':' + tag if tag else ''}: "
                                   f"{exc}") from None
        return reference

    def _pull_one(self, reference: Reference, platform: Platform,
                  credentials: Credentials | None) -> Iterator[dict]:
        resolved = self._resolving(lambda: self.puller.resolve(reference, platform, credentials),
                                   reference)
        return self._translated(self._pull_stream(resolved, credentials, final=True), reference, "pull")

    def _pull_stream(self, resolved, credentials, final: bool) -> Iterator[dict]:
        reference = resolved.reference
        previous = self.images.images.lookup_name(str(reference))
        yield progress.status(f"Pulling from {reference.path}", reference.digest or reference.tag)
        record = yield from self.puller.fetch(resolved, credentials)
        yield progress.status(f"Digest: {resolved.digest}")
        if final:
            name = familiar(str(reference))
            if previous == record.id:
                yield progress.status(f"Status: Image is up to date for {name}")
            else:
                yield progress.status(f"Status: Downloaded newer image for {name}")

    def _pull_all_tags(self, reference: Reference, platform: Platform,
                       credentials: Credentials | None) -> Iterator[dict]:
        tags = self._resolving(lambda: self._list_tags(reference, credentials), reference)

        def stream() -> Iterator[dict]:
            for tag in tags:
                tagged = dataclasses.replace(reference, tag=tag)
                resolved = self.puller.resolve(tagged, platform, credentials)
                yield from self._pull_stream(resolved, credentials, final=False)
            yield progress.status(f"Status: Downloaded newer image for {reference.familiar_name}")

        return self._translated(stream(), reference, "pull")

    def _list_tags(self, reference: Reference, credentials: Credentials | None) -> list[str]:
        endpoints = self.endpoints(reference)
        for index, registry in enumerate(endpoints):
            try:
                return sorted(self.client.list_tags(registry, reference.path, credentials))
            except RegistryError:
                if index + 1 == len(endpoints):
                    raise
        raise AssertionError("unreachable")

    # -- push ----------------------------------------------------------------------

    def push(self, image: str, tag: str | None, credentials: Credentials | None) -> Iterator[dict]:
        """`docker push`: every tag of the repository when none is given."""
        reference = self._reference(image, tag)
        if reference.digest:
            raise InvalidParameter(f"cannot push a digest reference: {familiar(str(reference))}")
        targets = self.pusher.targets(reference)
        repository = dataclasses.replace(reference, tag=None)

        def stream() -> Iterator[dict]:
            yield progress.status(f"The push refers to repository [{repository.name}]")
            for each_tag, record in targets:
                yield from progress.on_worker(
                    lambda say, cancel, t=each_tag, r=record:
                    self.pusher.push(repository, t, r, credentials, say, cancel))

        return self._translated(stream(), reference, "push")

    # -- login and search ------------------------------------------------------------

    def login(self, server_address: str, credentials: Credentials | None) -> dict:
        """`POST /auth`: check the credentials against the registry's /v2/ endpoint."""
        registry = registry_host(server_address)
        if not registry:
            raise InvalidParameter("give a registry server address to log in to")
        try:
            self.client.ping(registry, credentials)
        except Unauthorized as exc:
            raise NotAuthorized(f"login to {registry} failed: {exc}") from None
        except RegistryError as exc:
            raise _engine_error(exc) from None
        return {"Status": "Login Succeeded", "IdentityToken": ""}

    def search(self, term: str, limit: int, credentials: Credentials | None) -> list[dict]:
        registry, _, query = term.partition("/") if _names_registry(term) else ("", "", term)
        registry = registry or DEFAULT_DOMAIN
        try:
            return self.client.search(registry, query, limit, credentials)[:limit]
        except RegistryError as exc:
            raise _engine_error(exc) from None

    # -- errors ----------------------------------------------------------------------

    @staticmethod
    def _resolving(call: Callable, reference: Reference):
        """Errors while finding what a reference names, in Docker's words."""
        try:
            return call()
        except Unauthorized as exc:
            raise NotFound(f"pull access denied for {reference.familiar_name}, repository does not "
                           f"exist or may require 'docker login': {exc}") from None
        except RegistryNotFound as exc:
            raise NotFound(f"manifest for {familiar(str(reference))} not found: {exc}") from None
        except RegistryError as exc:
            raise _engine_error(exc) from None

    @staticmethod
    def _translated(messages: Iterator[dict], reference: Reference, action: str) -> Iterator[dict]:
        """Errors once a pull or push is under way: they travel in the stream."""
        try:
            yield from messages
        except Unauthorized as exc:
            raise NotAuthorized(f"{action} of {familiar(str(reference))} refused: {exc}") from None
        except RegistryError as exc:
            raise _engine_error(exc) from None
        except content.DigestMismatch as exc:
            raise UpstreamError(f"{familiar(str(reference))}: {exc}") from None
        except Cancelled:
            return


def _names_registry(term: str) -> bool:
    first, sep, _ = term.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost")


def _engine_error(exc: RegistryError) -> EngineError:
    if isinstance(exc, Unauthorized):
        return NotAuthorized(str(exc))
    if isinstance(exc, RegistryNotFound):
        return NotFound(str(exc))
    if isinstance(exc, Unreachable):
        return Unavailable(str(exc))
    return UpstreamError(str(exc))  # DigestMismatch, Unsupported, and refusals
