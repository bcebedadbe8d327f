"""The pull plan: from a reference to a committed image, fetching only what is missing.

1. Resolve: fetch the manifest (mirrors first for Docker Hub), follow an index to the
   manifest for the wanted platform, and check that it describes a container image.
   Nothing is stored yet, and errors here reach the client as HTTP errors.
2. Fetch: the config blob, then every layer whose chain id is not in the layer store,
   through the daemon's shared download pool (bounded, shared between pulls, resumed
   after a broken connection, verified against its digest). Layers are extracted in
   order as soon as each one and its parent are ready, so extraction overlaps the
   downloads still running.
3. Commit: the image record is written last, then its tag and repository digest.

Everything made before the commit is held by a lease: an interrupted pull leaves no
image, and its layers and blobs are collected (at the latest at the next start).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from dockyard.daemon import hostinfo
from dockyard.errors import InvalidParameter, NotFound, UpstreamError
from dockyard.formats.reference import Reference
from dockyard.images.compression import decompressed
from dockyard.images.content import check_digest
from dockyard.images.exchange import DOCKER_MANIFEST_LIST, GZIP_LAYERS, OCI_INDEX, UNCOMPRESSED_LAYERS
from dockyard.images.layers import LayerError, chain_ids
from dockyard.images.manager import DOCKER_CONFIG, OCI_CONFIG, ImageManager, ImageRecord, Lease, familiar
from dockyard.plugin.contracts.registry import Credentials, Manifest, RegistryClient, RegistryError
from dockyard.registries import progress
from dockyard.registries.downloads import DownloadPool
from dockyard.registries.sources import BlobSources

INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)
# Non-distributable layers that a registry serves anyway are ordinary layers.
LAYER_TYPES = UNCOMPRESSED_LAYERS | GZIP_LAYERS | {
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"}
MAX_CONFIG_SIZE = 8 * 1024 * 1024


class Cancelled(Exception):
    """The client went away; the pull stops at its next step and commits nothing."""


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str | None) -> Platform:
        """`linux/arm64/v8`, `linux/amd64`, `arm64`; empty means this host."""
        if not text:
            return cls("linux", hostinfo.architecture())
        parts = text.strip().lower().split("/")
        if len(parts) == 1:
            parts = ["linux", parts[0]]
        if len(parts) > 3 or not all(parts):
            raise InvalidParameter(f'"{text}": unknown operating system or architecture: '
                                   "expected os/arch[/variant], like linux/amd64")
        architecture = {"x86_64": "amd64", "aarch64": "arm64"}.get(parts[1], parts[1])
        return cls(parts[0], architecture, parts[2] if len(parts) == 3 else "")

    def matches(self, entry: dict) -> bool:
        if entry.get("os") != self.os or entry.get("architecture") != self.architecture:
            return False
        variant = entry.get("variant") or ""
        if self.variant:
            return variant == self.variant or (self.architecture == "arm64" and not variant
                                               and self.variant == "v8")
        return True

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Resolved:
    """A manifest found for a reference, ready to fetch."""

    reference: Reference
    registry: str  # the endpoint it came from (a mirror, or the reference's registry)
    repository: str
    digest: str  # what the reference resolved to: an index's digest for multi-platform images
    manifest: Manifest  # the image manifest for the platform
    document: dict


def _descriptor(value, what: str, name: str) -> dict:
    if not isinstance(value, dict) or not isinstance(value.get("digest"), str) \
            or not isinstance(value.get("size"), int) or value["size"] < 0:
        raise UpstreamError(f"{name}: malformed manifest: {what} is not a descriptor with a digest "
                            "and a size")
    try:
        check_digest(value["digest"])
    except ValueError as exc:
        raise UpstreamError(f"{name}: {what}: {exc}") from None
    return value


def _json_object(content: bytes, what: str) -> dict:
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UpstreamError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise UpstreamError(f"{what} is not a JSON object")
    return document


class _Counting:
    """A file read through, reporting how far."""

    def __init__(self, source: BinaryIO, report: Callable[[int], None]) -> None:
        self._source, self._report, self.count = source, report, 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.count += len(data)
        self._report(self.count)
        return data


class Puller:
    def __init__(self, images: ImageManager, client: RegistryClient, downloads: DownloadPool,
                 sources: BlobSources, endpoints: Callable[[Reference], list[str]]) -> None:
        self.images = images
        self.client = client
        self.downloads = downloads
        self.sources = sources
        self.endpoints = endpoints

    # -- resolving -----------------------------------------------------------------

    def resolve(self, reference: Reference, platform: Platform,
                credentials: Credentials | None) -> Resolved:
        wanted = reference.digest or reference.tag or "latest"
        endpoints = self.endpoints(reference)
        for index, registry in enumerate(endpoints):
            try:
                manifest = self.client.get_manifest(registry, reference.path, wanted, credentials)
                break
            except RegistryError:
                if index + 1 == len(endpoints):
                    raise  # a mirror that fails is skipped; the registry itself is the last word
        name = familiar(str(reference))
        if reference.digest and manifest.digest != reference.digest:
            raise UpstreamError(f"{name}: the registry sent manifest {manifest.digest}, "
                                f"not {reference.digest}")
        top_digest = manifest.digest
        document = _json_object(manifest.content, f"{name}: the manifest")
        for _depth in range(2):
            media_type = document.get("mediaType") or manifest.media_type
            if media_type not in INDEX_TYPES and "manifests" not in document:
                break
            entries = [e for e in document.get("manifests") or [] if isinstance(e, dict)]
            chosen = next((e for e in entries if platform.matches(e.get("platform") or {})), None)
            if chosen is None:
                raise NotFound(f"no matching manifest for {platform} in the manifest list entries")
            _descriptor(chosen, "an index entry", name)
            manifest = self.client.get_manifest(registry, reference.path, chosen["digest"], credentials)
            if manifest.digest != chosen["digest"]:
                raise UpstreamError(f"{name}: the registry sent manifest {manifest.digest}, "
                                    f"not {chosen['digest']}")
            document = _json_object(manifest.content, f"{name}: the manifest")
        self._check_image_manifest(document, name)
        return Resolved(reference, registry, reference.path, top_digest, manifest, document)

    @staticmethod
    def _check_image_manifest(document: dict, name: str) -> None:
        if document.get("schemaVersion") != 2:
            raise UpstreamError(f"{name}: unsupported manifest schema version "
                                f"{document.get('schemaVersion')!r}")
        config = _descriptor(document.get("config"), "config", name)
        if config.get("mediaType") not in CONFIG_TYPES:
            raise UpstreamError(f"{name}: unsupported media type {config.get('mediaType')}: "
                                "this is not a container image (an OCI artifact?)")
        if config["size"] > MAX_CONFIG_SIZE:
            raise UpstreamError(f"{name}: image config is too big ({config['size']} bytes)")
        layers = document.get("layers")
        if not isinstance(layers, list):
            raise UpstreamError(f"{name}: malformed manifest: no list of layers")
        for position, layer in enumerate(layers):
            _descriptor(layer, f"layer {position + 1}", name)
            if layer.get("mediaType") not in LAYER_TYPES:
                raise UpstreamError(f"{name}: unsupported media type {layer.get('mediaType')} for "
                                    f"layer {layer['digest']}" + (
                                        ": zstd-compressed layers are not supported yet"
                                        if "zstd" in str(layer.get("mediaType")) else ""))

    # -- fetching ------------------------------------------------------------------

    def fetch(self, resolved: Resolved, credentials: Credentials | None):
        """Progress messages while the image is fetched and committed on a worker thread;
        returns the image record. Closing the generator cancels the pull."""
        return progress.on_worker(lambda say, cancel: self._fetch(resolved, credentials, say, cancel))

    def _fetch(self, resolved: Resolved, credentials: Credentials | None,
               say: Callable[[dict], None], cancel: threading.Event) -> ImageRecord:
        try:
            return self._fetch_under_lease(resolved, credentials, say, cancel)
        except BaseException:
            self.images.collect()  # what the failed pull made, now that its lease is gone
            raise

    def _fetch_under_lease(self, resolved: Resolved, credentials: Credentials | None,
                           say: Callable[[dict], None], cancel: threading.Event) -> ImageRecord:
        name = familiar(str(resolved.reference))
        pacer = progress.Pacer()
        layers = resolved.document["layers"]
        with self.images.lease() as lease:
            config_bytes = self._config(resolved, credentials, lease)
            config = _json_object(config_bytes, f"{name}: the image config")
            diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
            if len(diff_ids) != len(layers):
                raise UpstreamError(f"{name}: the image config lists {len(diff_ids)} layers, "
                                    f"the manifest {len(layers)}")
            chains = chain_ids(diff_ids)
            pending = []
            for position, (descriptor, chain) in enumerate(zip(layers, chains, strict=True)):
                short = check_digest(descriptor["digest"])[:12]
                self.images.layers.hold(lease.layers, chain)
                if self.images.layers.exists(chain):
                    say(progress.status("Already exists", short))
                    continue
                say(progress.status("Pulling fs layer", short))
                pending.append((position, self._download(resolved, credentials, descriptor,
                                                         lease, say, pacer, short)))
            for position, download in pending:
                descriptor = layers[position]
                if download is not None:
                    try:
                        download.result()
                    except RegistryError as exc:
                        raise type(exc)(f"failed to fetch layer {descriptor['digest']}: {exc}") from exc
                if cancel.is_set():
                    raise Cancelled()
                self._extract(descriptor, chains[position - 1] if position else None,
                              diff_ids[position], lease, say, pacer)
            descriptors = [self._local_descriptor(descriptor, chain, lease, resolved, credentials)
                           for descriptor, chain in zip(layers, chains, strict=True)]
            if cancel.is_set():
                raise Cancelled()
            verbatim = descriptors == layers
            reference = resolved.reference
            tags = [str(reference)] if reference.tag and not reference.digest else []
            record = self.images.commit_image(
                config_bytes, descriptors, lease, tags, "pull", {"name": name},
                manifest_bytes=resolved.manifest.content if verbatim else None)
            self.images.images.set_digest(f"{reference.name}@{resolved.digest}", record.id)
        self.sources.add([d["digest"] for d in layers] + [resolved.document["config"]["digest"]],
                         resolved.registry, resolved.repository)
        return record

    def _config(self, resolved: Resolved, credentials: Credentials | None, lease: Lease) -> bytes:
        descriptor = resolved.document["config"]
        digest = descriptor["digest"]
        self.images.content.hold(lease.blobs, digest)
        if self.images.content.exists(digest):
            return self.images.content.read(digest)
        chunks = self.client.get_blob(resolved.registry, resolved.repository, digest, credentials)
        data = b"".join(chunks)
        if len(data) != descriptor["size"]:
            raise UpstreamError(f"image config {digest} has {len(data)} bytes, its descriptor says "
                                f"{descriptor['size']}")
        self.images.content.put(data, expected=digest, lease=lease.blobs)
        return data

    def _download(self, resolved: Resolved, credentials: Credentials | None, descriptor: dict,
                  lease: Lease, say: Callable[[dict], None], pacer: progress.Pacer, short: str):
        """Start (or join) the layer blob's download; None when the blob is already here."""
        digest, size = descriptor["digest"], descriptor["size"]
        self.images.content.hold(lease.blobs, digest)
        if self.images.content.exists(digest):
            return None

        def opener(offset: int) -> Iterator[bytes]:
            return self.client.get_blob(resolved.registry, resolved.repository, digest, credentials,
                                        offset)

        def listener(state: str, done: int) -> None:
            if state == "waiting":
                say(progress.status("Waiting", short))
            elif state == "downloading":
                if pacer.due("Downloading", short, done == size):
                    say(progress.counting("Downloading", short, done, size))
            elif state == "verifying":
                say(progress.status("Verifying Checksum", short))
            elif state == "complete":
                say(progress.status("Download complete", short))

        return self.downloads.fetch(digest, size, opener, listener).future

    def _extract(self, descriptor: dict, parent: str | None, diff_id: str, lease: Lease,
                 say: Callable[[dict], None], pacer: progress.Pacer) -> None:
        digest, size = descriptor["digest"], descriptor["size"]
        short = check_digest(digest)[:12]

        def report(done: int) -> None:
            if pacer.due("Extracting", short, done >= size):
                say(progress.counting("Extracting", short, done, size))

        with self.images.content.open(digest) as blob:
            try:
                self.images.layers.register(parent, decompressed(_Counting(blob, report)), lease.layers,
                                            expected_diff_id=diff_id)
            except LayerError as exc:
                raise UpstreamError(f"layer {digest}: {exc}") from None
            except (OSError, EOFError, ValueError) as exc:
                raise UpstreamError(f"layer {digest} cannot be extracted: {exc}") from None
        say(progress.status("Pull complete", short))

    def _local_descriptor(self, descriptor: dict, chain: str, lease: Lease, resolved: Resolved,
                          credentials: Credentials | None) -> dict:
        """The registry's descriptor when its blob is here. A layer that was already here
        may have come in another compression (a local build, another registry): then the
        blob another image keeps for it serves, and the blob is fetched only if none does."""
        content = self.images.content
        if content.exists(descriptor["digest"]):
            return descriptor
        for record in self.images.images.all():
            try:
                other_chains = chain_ids((self.images.config(record).get("rootfs") or {})
                                         .get("diff_ids") or [])
                other_layers = self.images.manifest(record).get("layers") or []
            except (OSError, ValueError):
                continue
            if chain in other_chains and len(other_layers) == len(other_chains):
                candidate = other_layers[other_chains.index(chain)]
                content.hold(lease.blobs, candidate["digest"])
                if content.exists(candidate["digest"]):
                    return candidate
        future = self._download(resolved, credentials, descriptor, lease, lambda message: None,
                                progress.Pacer(), "")
        if future is not None:
            future.result()
        return descriptor
