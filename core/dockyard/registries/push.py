"""The push plan: a local image's blobs and manifest into a repository of a registry.

For every layer blob, bottom first and a few at a time (Docker's
max-concurrent-uploads): skip it when the registry has it, else ask the registry to
mount it from another of its repositories known to hold it, else upload it. Then the
config blob, then the manifest under the tag; the digest the registry reports becomes
one of the image's repository digests. The manifest pushed is the one stored with the
image, byte for byte, so an image pulled and pushed again keeps its digest.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from dockyard.errors import NotFound
from dockyard.formats.reference import Reference, parse_normalized
from dockyard.images.content import check_digest
from dockyard.images.manager import OCI_MANIFEST, ImageManager, ImageRecord, familiar
from dockyard.plugin.contracts.registry import Credentials, Manifest, RegistryClient
from dockyard.registries import progress
from dockyard.registries.pull import Cancelled
from dockyard.registries.sources import BlobSources

CHUNK = 1 << 20


class Pusher:
    def __init__(self, images: ImageManager, client: RegistryClient, sources: BlobSources,
                 concurrency: int) -> None:
        self.images = images
        self.client = client
        self.sources = sources
        self.concurrency = max(1, concurrency)

    def targets(self, reference: Reference) -> list[tuple[str, ImageRecord]]:
        """The tags to push: the one named, or every tag of the repository."""
        if reference.tag:
            names = [str(reference)]
        else:
            prefix = reference.name + ":"
            names = sorted(n for n in self.images.images.all_tags() if n.startswith(prefix))
        found = []
        for name in names:
            image_id = self.images.images.lookup_name(name)
            if image_id and self.images.images.get(image_id):
                found.append((parse_normalized(name).tag, self.images.images.get(image_id)))
        if not found:
            raise NotFound(f"An image does not exist locally with the tag: {familiar(str(reference))}")
        return found

    def push(self, reference: Reference, tag: str, record: ImageRecord,
             credentials: Credentials | None, say: Callable[[dict], None],
             cancel: threading.Event) -> str:
        registry, repository = reference.domain, reference.path
        view = self.images.view(record)
        manifest_bytes = self.images.content.read(record.manifest)
        document = json.loads(manifest_bytes)
        descriptors = document.get("layers") or []
        # Docker names a pushed layer by its diff id; a layer's descriptor pairs with it by position.
        shorts = [check_digest(layer.diff_id)[:12] for layer in view.layers]
        for short in shorts:
            say(progress.status("Preparing", short))
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="upload") as uploads:
            futures = []
            for descriptor, short in zip(descriptors, shorts, strict=True):
                say(progress.status("Waiting", short))
                futures.append(uploads.submit(self._push_blob, registry, repository, descriptor,
                                              credentials, say, short, cancel))
            for future in futures:
                future.result()
        config = document["config"]
        self._push_blob(registry, repository, config, credentials, lambda message: None, "", cancel)
        media_type = document.get("mediaType") or OCI_MANIFEST
        digest = self.client.put_manifest(registry, repository, tag,
                                          Manifest(media_type, record.manifest, manifest_bytes),
                                          credentials)
        self.images.images.set_digest(f"{reference.name}@{digest}", record.id)
        self.sources.add([d["digest"] for d in descriptors] + [config["digest"]], registry, repository)
        say(progress.status(f"{tag}: digest: {digest} size: {len(manifest_bytes)}"))
        say({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": len(manifest_bytes)}})
        self.images.events.publish("image", "push", record.id,
                                   {"name": familiar(f"{reference.name}:{tag}")})
        return digest

    def _push_blob(self, registry: str, repository: str, descriptor: dict,
                   credentials: Credentials | None, say: Callable[[dict], None], short: str,
                   cancel: threading.Event) -> None:
        if cancel.is_set():
            raise Cancelled()
        digest, size = descriptor["digest"], descriptor["size"]
        if self.client.has_blob(registry, repository, digest, credentials):
            say(progress.status("Layer already exists", short))
            return
        pacer = progress.Pacer()
        sent = {"bytes": 0, "started": False}

        def chunks() -> Iterator[bytes]:
            sent["started"] = True
            for chunk in self.images.content.iter_chunks(digest):
                if cancel.is_set():
                    raise Cancelled()
                sent["bytes"] += len(chunk)
                if pacer.due("Pushing", short, sent["bytes"] >= size):
                    say(progress.counting("Pushing", short, sent["bytes"], size))
                yield chunk

        mount_from = next(iter(self.sources.repositories(digest, registry, repository)), None)
        self.client.put_blob(registry, repository, digest, size, chunks(), credentials,
                             mount_from=mount_from)
        if mount_from and not sent["started"]:
            say(progress.status(f"Mounted from {mount_from}", short))
        else:
            say(progress.status("Pushed", short))
