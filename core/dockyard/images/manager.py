"""The image manager: every operation on images, with Docker's rules and messages.

It owns the content, layer and image stores under `<data-root>/image/` and is the only
code that changes them. Creating an image follows one order everywhere: layers are
registered under a lease, then blobs are written, and the image record written last is
the commit point, so an interrupted import or load leaves nothing visible; whatever it
did leave is collected by `recover` at the next start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from dockyard.daemon import hostinfo
from dockyard.daemon.events import EventsManager
from dockyard.errors import Conflict, InvalidParameter, NotFound
from dockyard.formats.filters import label_filters_match, until_timestamp
from dockyard.formats.reference import InvalidReference, parse_normalized
from dockyard.images.changes import apply_changes
from dockyard.images.compression import decompressed
from dockyard.images.content import ContentStore
from dockyard.images.layers import Layer, LayerStore, chain_ids
from dockyard.images.store import ImageRecord, ImageStore
from dockyard.plugin.contracts.storage import StorageDriver

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
GZIP_LEVEL = 1  # layers are compressed as they are stored: speed over the last 10 % of size
_HEX_PREFIX = re.compile(r"^[a-f0-9]{1,64}$")

# Given an image id: the containers using it, as (container id, running) pairs. The
# container manager supplies this; images alone know of none.
ContainersUsing = Callable[[str], list[tuple[str, bool]]]


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_created(value: str | None) -> float:
    """An image config's `created` (RFC 3339 with up to nanoseconds) as unix seconds."""
    if not value:
        return 0.0
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", value)
    if not match:
        return 0.0
    base = datetime.fromisoformat(match.group(1) + (match.group(3).replace("Z", "+00:00")))
    fraction = float("0" + match.group(2)) if match.group(2) else 0.0
    return base.timestamp() + fraction


def short_id(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


@dataclass(frozen=True)
class Lease:
    """What an operation in progress has made but not yet recorded in an image."""

    layers: set[str]
    blobs: set[str]


@dataclass
class ImageView:
    """Everything the API shows about one image."""

    record: ImageRecord
    config: dict
    tags: list[str]  # familiar names: "busybox:latest"
    digests: list[str]  # "busybox@sha256:..."
    layers: list[Layer]  # bottom first
    size: int

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def created(self) -> float:
        return parse_created(self.config.get("created"))


class _GzipSink:
    """Compresses what it is fed into a content-store writer (the layer's blob)."""

    def __init__(self, writer) -> None:
        self._writer = writer
        self._engine = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: gzip, mtime 0

    def __call__(self, data: bytes) -> None:
        self._writer.write(self._engine.compress(data))

    def finish(self) -> None:
        self._writer.write(self._engine.flush())


def familiar(name: str) -> str:
    return parse_normalized(name).familiar()


class ImageManager:
    def __init__(self, root: Path, driver: StorageDriver, driver_name: str,
                 events: EventsManager) -> None:
        self.root = root
        self.driver = driver
        self.driver_name = driver_name
        self.events = events
        self.content = ContentStore(root / "content")
        self.layers = LayerStore(root / "layers", driver)
        self.images = ImageStore(root)
        self.tmp_dir = root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.containers_using: ContainersUsing = lambda image_id: []
        # chain ids of image layers that containers sit on (set by the engine)
        self.container_layers: Callable[[], set[str]] = lambda: set()
        self._lock = threading.RLock()  # names, deletion and collection

    # -- start-up ------------------------------------------------------------------

    def recover(self, container_layer_ids: Iterable[str] = (), container_parents: Iterable[str] = ()):
        """Remove what interrupted operations left: ingest files, staging dirs, layers
        and blobs that no image or container uses."""
        import shutil

        self.content.recover()
        for leftover in self.tmp_dir.iterdir():
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink()
        self.collect(extra_layers=set(container_parents))
        self.layers.recover(set(container_layer_ids))

    # -- lookup --------------------------------------------------------------------

    def resolve(self, name: str) -> ImageRecord:
        """Docker's lookup order: full id, then name (tag or digest), then id prefix."""
        image_id = self._resolve_id(name)
        record = self.images.get(image_id) if image_id else None
        if record is None:
            raise NotFound(f"No such image: {self._display(name)}")
        return record

    def _display(self, name: str) -> str:
        try:
            return parse_normalized(name).with_default_tag().familiar()
        except InvalidReference:
            return name

    def _resolve_id(self, name: str) -> str | None:
        bare = name[7:] if name.startswith("sha256:") else name
        if len(bare) == 64 and _HEX_PREFIX.match(bare):
            return "sha256:" + bare
        try:
            reference = parse_normalized(name)
        except InvalidReference:
            reference = None
        if reference is not None:
            found = self.images.lookup_name(str(reference.with_default_tag()))
            if found:
                return found
        if name.startswith("sha256:") or (reference is not None and _HEX_PREFIX.match(name)):
            matches = self.images.ids_with_prefix(bare)
            if len(matches) == 1:
                return matches[0]
        return None

    def config(self, record: ImageRecord) -> dict:
        return json.loads(self.content.read(record.id))

    def manifest(self, record: ImageRecord) -> dict:
        return json.loads(self.content.read(record.manifest))

    def top_layer(self, record: ImageRecord) -> str | None:
        diff_ids = self.config(record).get("rootfs", {}).get("diff_ids", [])
        return chain_ids(diff_ids)[-1] if diff_ids else None

    def view(self, record: ImageRecord) -> ImageView:
        config = self.config(record)
        top = self.top_layer(record)
        layers = list(reversed(self.layers.ancestry(top))) if top else []
        return ImageView(
            record=record,
            config=config,
            tags=[familiar(name) for name in self.images.tags_of(record.id)],
            digests=[familiar(name) for name in self.images.digests_of(record.id)],
            layers=layers,
            size=sum(layer.size for layer in layers),
        )

    def inspect(self, name: str) -> ImageView:
        return self.view(self.resolve(name))

    # -- creation ------------------------------------------------------------------

    @contextlib.contextmanager
    def lease(self) -> Iterator[Lease]:
        with self.layers.lease() as layers, self.content.lease() as blobs:
            yield Lease(layers, blobs)

    def add_layer(self, parent: str | None, tar_stream: BinaryIO, lease: Lease,
                  expected_diff_id: str | None = None) -> tuple[Layer, dict]:
        """Register an uncompressed layer tar and store it gzip-compressed as a blob.
        Returns the layer and its manifest descriptor."""
        with self.content.writer(lease=lease.blobs) as writer:
            sink = _GzipSink(writer)
            layer = self.layers.register(parent, tar_stream, lease.layers, expected_diff_id, [sink])
            sink.finish()
            digest = writer.commit()
            size = writer.size
        return layer, {"mediaType": OCI_LAYER_GZIP, "digest": digest, "size": size}

    def commit_image(self, config: dict | bytes, layer_descriptors: list[dict], lease: Lease,
                     tags: Iterable[str] = (), action: str = "", attributes: dict | None = None,
                     manifest_bytes: bytes | None = None) -> ImageRecord:
        """Write config and manifest blobs, then the image record (the commit point),
        then its names. Config and manifest given as bytes are kept byte for byte: the
        config's digest is the image id, and a loaded image must keep its id."""
        tags = list(tags)
        if isinstance(config, bytes):
            config_bytes = config
        else:
            config_bytes = json.dumps(config, separators=(",", ":")).encode()
        config_digest = self.content.put(config_bytes, lease=lease.blobs)
        if manifest_bytes is None:
            manifest_bytes = json.dumps({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest,
                           "size": len(config_bytes)},
                "layers": layer_descriptors,
            }, separators=(",", ":")).encode()
        manifest_digest = self.content.put(manifest_bytes, lease=lease.blobs)
        with self._lock:
            record = self.images.get(config_digest) or ImageRecord(config_digest, manifest_digest)
            self.images.add(record)
            for tag in tags:
                self._set_tag(tag, record.id)
        if action:
            names = [familiar(t) for t in tags]
            self.events.publish("image", action, record.id,
                                {"name": names[0] if names else record.id, **(attributes or {})})
        return record

    def import_rootfs(self, source: BinaryIO, repo: str | None, tag: str | None,
                      changes: list[str], message: str, origin: str) -> ImageRecord:
        """`docker import`: one layer from a (possibly compressed) rootfs tar."""
        target = self._import_target(repo, tag)
        container_config = apply_changes({}, changes)
        created = now_rfc3339()
        with self.lease() as lease:
            layer, descriptor = self.add_layer(None, decompressed(source), lease)
            config = {
                "architecture": hostinfo.architecture(),
                "os": "linux",
                "created": created,
                "config": container_config,
                "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
                "history": [{"created": created, "comment": message or f"Imported from {origin}"}],
            }
            if message:
                config["comment"] = message
            return self.commit_image(config, [descriptor], lease,
                                     [target] if target else [], "import")

    def _import_target(self, repo: str | None, tag: str | None) -> str | None:
        if not repo:
            return None
        try:
            reference = parse_normalized(repo)
            if tag:
                if reference.tag or reference.digest:
                    raise InvalidParameter(f"invalid reference: {repo}:{tag} has two tags")
                reference = reference.with_tag(tag)
        except InvalidReference as exc:
            raise InvalidParameter(str(exc)) from None
        if reference.digest:
            raise InvalidParameter("cannot import with a digest reference; give a tag")
        return str(reference.with_default_tag())

    # -- names ---------------------------------------------------------------------

    def _set_tag(self, name: str, image_id: str) -> None:
        previous = self.images.set_tag(name, image_id)
        if previous is not None:
            self.events.publish("image", "untag", previous, {"name": familiar(name)})

    def tag(self, source: str, repo: str, tag: str | None) -> str:
        record = self.resolve(source)
        try:
            reference = parse_normalized(repo)
            if tag:
                reference = reference.with_tag(tag)
        except InvalidReference as exc:
            raise InvalidParameter(str(exc)) from None
        if reference.digest:
            raise InvalidParameter("refusing to create a tag with a digest reference")
        name = str(reference.with_default_tag())
        with self._lock:
            self._set_tag(name, record.id)
        self.events.publish("image", "tag", record.id, {"name": familiar(name)})
        return familiar(name)

    # -- deletion ------------------------------------------------------------------

    def delete(self, name: str, force: bool = False, prune: bool = True) -> list[dict]:
        """`docker rmi`: untag a name, and delete the image when nothing else names it."""
        with self._lock:
            record = self.resolve(name)
            users = self.containers_using(record.id)
            named_by_reference = self._named_by_reference(name, record)
            results: list[dict] = []
            if named_by_reference is not None:
                others = [n for n in self.images.tags_of(record.id) + self.images.digests_of(record.id)
                          if n != named_by_reference]
                if not others and users and not force:
                    container, _running = users[0]
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{name}" (must force) - '
                        f"container {short_id(container)} is using its referenced image "
                        f"{short_id(record.id)}")
                for removed in [named_by_reference, *self._digests_left_behind(named_by_reference, others)]:
                    self.images.remove_name(removed)
                    results.append({"Untagged": familiar(removed)})
                    self.events.publish("image", "untag", record.id, {"name": familiar(removed)})
                if self.images.tags_of(record.id) + self.images.digests_of(record.id) or users:
                    return results
            else:
                if self.children(record.id):
                    raise Conflict(
                        f"conflict: unable to delete {short_id(record.id)} (cannot be forced) - "
                        f"image has dependent child images")
                running = [c for c, is_running in users if is_running]
                if running:
                    raise Conflict(
                        f"conflict: unable to delete {short_id(record.id)} (cannot be forced) - "
                        f"image is being used by running container {short_id(running[0])}")
                if users and not force:
                    raise Conflict(
                        f"conflict: unable to delete {short_id(record.id)} (must be forced) - "
                        f"image is being used by stopped container {short_id(users[0][0])}")
                names = self.images.tags_of(record.id) + self.images.digests_of(record.id)
                if len(self.images.tags_of(record.id)) > 1 and not force:
                    raise Conflict(
                        f"conflict: unable to delete {short_id(record.id)} (must be forced) - "
                        f"image is referenced in multiple repositories")
                for other in names:
                    self.images.remove_name(other)
                    results.append({"Untagged": familiar(other)})
                    self.events.publish("image", "untag", record.id, {"name": familiar(other)})
                if users:
                    return results
            results += self._remove_image(record, prune_parents=prune)
            return results

    @staticmethod
    def _digests_left_behind(tag: str, others: list[str]) -> list[str]:
        """As Docker: untagging the last tag of a repository also drops that repository's
        digest references (`repo@sha256:...` from a pull or push), which only named the tag's
        content and would otherwise keep the image alive unseen."""
        if "@" in tag:
            return []
        repository = parse_normalized(tag).name
        same_repository = [n for n in others if parse_normalized(n).name == repository]
        if any("@" not in n for n in same_repository):
            return []
        return same_repository

    def _named_by_reference(self, name: str, record: ImageRecord) -> str | None:
        """The stored name `name` stands for, if the user named the image by reference."""
        try:
            reference = parse_normalized(name)
        except InvalidReference:
            return None
        stored = str(reference.with_default_tag())
        return stored if self.images.lookup_name(stored) == record.id else None

    def _remove_image(self, record: ImageRecord, prune_parents: bool = True) -> list[dict]:
        """Delete the image, then (as Docker's rmi does unless --no-prune) its untagged
        parents that nothing else uses: the intermediate images of a build."""
        removed = [record]
        parent_id = record.extra.get("parent")
        while prune_parents and parent_id:
            parent = self.images.get(parent_id)
            if (parent is None or self.images.tags_of(parent.id) or self.images.digests_of(parent.id)
                    or self.containers_using(parent.id)
                    or self.children(parent.id) - {r.id for r in removed}):
                break
            removed.append(parent)
            parent_id = parent.extra.get("parent")
        for image in removed:
            self.images.remove(image.id)
            self.events.publish("image", "delete", image.id, {"name": image.id})
        self.collect()
        return [{"Deleted": image.id} for image in removed]

    def children(self, image_id: str) -> set[str]:
        """Images whose parent is `image_id` (the next steps of a build)."""
        return {r.id for r in self.images.all() if r.extra.get("parent") == image_id}

    def _parents(self) -> set[str]:
        return {r.extra["parent"] for r in self.images.all() if r.extra.get("parent")}

    def collect(self, extra_layers: set[str] | None = None) -> int:
        """Remove layers and blobs no image or container uses; returns bytes freed."""
        with self._lock:
            in_use = set(extra_layers or ()) | self.container_layers()
            blobs: set[str] = set()
            for record in self.images.all():
                blobs.update(self._blobs_of(record))
                top = self.top_layer(record)
                if top:
                    in_use.add(top)
            removed = self.layers.collect(in_use)
            self.content.collect(blobs)
            return sum(layer.size for layer in removed)

    def _blobs_of(self, record: ImageRecord) -> set[str]:
        blobs = {record.id, record.manifest}
        try:
            manifest = self.manifest(record)
        except FileNotFoundError:
            return blobs
        blobs.update(layer["digest"] for layer in manifest.get("layers", []))
        return blobs

    def prune(self, filters: dict[str, list[str]]) -> dict:
        """`docker image prune`: dangling images, or with dangling=false every unused one."""
        dangling_only = (filters.get("dangling") or ["true"])[-1].lower() in ("true", "1")
        until = filters.get("until")
        deleted: list[dict] = []
        reclaimed = 0
        with self._lock:
            # Children before parents: a parent is removable once its last child is gone.
            removable = True
            while removable:
                removable = False
                parents = self._parents()
                for record in self.images.all():
                    if record.id in parents:
                        continue
                    view = self.view(record)
                    if dangling_only and view.tags:
                        continue
                    if self.containers_using(record.id):
                        continue
                    if until and view.created >= _until_seconds(until[-1]):
                        continue
                    if not _label_filters_match(filters, view.config):
                        continue
                    for name in self.images.tags_of(record.id) + self.images.digests_of(record.id):
                        self.images.remove_name(name)
                        deleted.append({"Untagged": familiar(name)})
                    self.images.remove(record.id)
                    self.events.publish("image", "delete", record.id, {"name": record.id})
                    deleted.append({"Deleted": record.id})
                    removable = True
            if deleted:
                reclaimed = self.collect()
        self.events.publish("image", "prune", "", {"reclaimed": str(reclaimed)})
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # -- listing -------------------------------------------------------------------

    def list(self, filters: dict[str, list[str]], all_images: bool = False) -> list[ImageView]:
        """Images as `docker images` lists them: untagged images that are parents (the
        intermediate steps of builds) only with `all_images`, and never as dangling."""
        parents = self._parents()
        views = [self.view(record) for record in self.images.all()]
        if not all_images:
            views = [v for v in views if v.tags or v.digests or v.id not in parents]
        if "dangling" in filters:
            want = filters["dangling"][-1].lower() in ("true", "1")
            views = [v for v in views if (not v.tags and v.id not in parents) == want]
        if "reference" in filters:  # as Docker: only the names that match are listed
            patterns = filters["reference"]

            def matching(names: list[str], name_of=lambda name: name) -> list[str]:
                return [n for n in names if any(_reference_matches(p, name_of(n)) for p in patterns)]

            views = [dataclasses.replace(v, tags=matching(v.tags),
                                         digests=matching(v.digests, lambda d: d.partition("@")[0]))
                     for v in views]
            views = [v for v in views if v.tags]
        for key, keep in (("before", lambda v, pivot: v.created < pivot.created),
                          ("since", lambda v, pivot: v.created > pivot.created)):
            if key in filters:
                pivot = self.inspect(filters[key][-1])
                views = [v for v in views if keep(v, pivot)]
        if "until" in filters:
            limit = _until_seconds(filters["until"][-1])
            views = [v for v in views if v.created < limit]
        views = [v for v in views if _label_filters_match(filters, v.config)]
        return sorted(views, key=lambda v: v.created, reverse=True)

    def disk_usage(self) -> tuple[int, list[tuple[ImageView, int, int]]]:
        """Total size of all layers, and per image (view, shared size, containers)."""
        views = [self.view(record) for record in self.images.all()]
        users: dict[str, int] = {}
        for view in views:
            for layer in view.layers:
                users[layer.chain_id] = users.get(layer.chain_id, 0) + 1
        total = sum(layer.size for layer in self.layers.all())
        rows = []
        for view in views:
            shared = sum(layer.size for layer in view.layers if users[layer.chain_id] > 1)
            rows.append((view, shared, len(self.containers_using(view.id))))
        return total, rows


def _until_seconds(value: str) -> float:
    return until_timestamp(value, parse_created)


def _label_filters_match(filters: dict[str, list[str]], config: dict) -> bool:
    return label_filters_match(filters, (config.get("config") or {}).get("Labels") or {})


def _reference_matches(pattern: str, familiar_tag: str) -> bool:
    """Docker matches `reference=` against the familiar name with path.Match globbing."""
    import fnmatch

    name, _, tag = familiar_tag.rpartition(":")
    if ":" in pattern.split("/")[-1]:
        return fnmatch.fnmatchcase(familiar_tag, pattern)
    return fnmatch.fnmatchcase(name, pattern)
