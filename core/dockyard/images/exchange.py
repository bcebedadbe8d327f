"""Images in and out as tar archives: `docker save` and `docker load`.

`save` writes what Docker 25+ writes: an OCI image layout (index.json, oci-layout,
blobs/sha256/...) that is also a docker-archive (manifest.json, repositories), with
uncompressed layer tars, so `docker load`, `skopeo ... docker-archive:` and
`oci-archive:` all read it. `save(..., oci=True)` writes a plain OCI layout with the
compressed layer blobs as stored. `load` reads both forms, compressed or not, and every
layer it reads is verified against the image config's diff ids before anything is
recorded: an archive that lies loads nothing of the image it lies about.
"""

from __future__ import annotations

import json
import posixpath
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dockyard.daemon import hostinfo
from dockyard.errors import InvalidParameter
from dockyard.formats.reference import InvalidReference, parse_normalized
from dockyard.images.compression import UnsupportedCompression, decompressed
from dockyard.images.content import check_digest, sha256_digest
from dockyard.images.manager import (
    DOCKER_LAYER_GZIP,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    ImageManager,
    ImageRecord,
    familiar,
)

CHUNK = 1 << 20
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
UNCOMPRESSED_LAYERS = {OCI_LAYER, "application/vnd.docker.image.rootfs.diff.tar"}
GZIP_LAYERS = {OCI_LAYER_GZIP, DOCKER_LAYER_GZIP}


# -- writing ---------------------------------------------------------------------------

class _TarWriter:
    """Emits a tar stream member by member without buffering whole members."""

    def header(self, name: str, size: int, mode: int = 0o644, kind: bytes = tarfile.REGTYPE) -> bytes:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = mode
        info.type = kind
        info.mtime = 0
        return info.tobuf(tarfile.PAX_FORMAT)

    def file(self, name: str, data: bytes) -> Iterator[bytes]:
        yield self.header(name, len(data)) + data + self.padding(len(data))

    def directory(self, name: str) -> bytes:
        return self.header(name.rstrip("/") + "/", 0, 0o755, tarfile.DIRTYPE)

    @staticmethod
    def padding(size: int) -> bytes:
        return b"\0" * (-size % tarfile.BLOCKSIZE)

    @staticmethod
    def end() -> bytes:
        return b"\0" * (tarfile.BLOCKSIZE * 2)


def _decompressed_chunks(manager: ImageManager, digest: str) -> Iterator[bytes]:
    with manager.content.open(digest) as blob:
        stream = decompressed(blob)
        while chunk := stream.read(CHUNK):
            yield chunk


def _layer_tar_chunks(manager: ImageManager, descriptor: dict) -> Iterator[bytes]:
    if descriptor["mediaType"] in UNCOMPRESSED_LAYERS:
        yield from manager.content.iter_chunks(descriptor["digest"])
    else:
        yield from _decompressed_chunks(manager, descriptor["digest"])


def save(manager: ImageManager, names: list[str], oci: bool = False) -> Iterator[bytes]:
    """Stream a tar of the named images (resolved before the first byte is sent)."""
    selected: list[tuple[ImageRecord, list[str]]] = []
    for name in names:
        record = manager.resolve(name)
        tags = _tags_to_save(manager, name, record)
        for index, (chosen, chosen_tags) in enumerate(selected):
            if chosen.id == record.id:
                selected[index] = (chosen, sorted(set(chosen_tags) | set(tags)))
                break
        else:
            selected.append((record, tags))
    return _save_stream(manager, selected, oci)


def _tags_to_save(manager: ImageManager, name: str, record: ImageRecord) -> list[str]:
    """Docker saves the name asked for; an image asked for by id is saved without names."""
    try:
        stored = str(parse_normalized(name).with_default_tag())
    except InvalidReference:
        return []
    return [stored] if manager.images.lookup_name(stored) == record.id else []


def _save_stream(manager: ImageManager, selected: list[tuple[ImageRecord, list[str]]],
                 oci: bool) -> Iterator[bytes]:
    tar = _TarWriter()
    written: set[str] = set()
    docker_manifest = []
    repositories: dict[str, dict[str, str]] = {}
    index_entries = []
    yield tar.directory("blobs")
    yield tar.directory("blobs/sha256")

    def blob(digest: str, size: int, chunks: Iterator[bytes]) -> Iterator[bytes]:
        if digest in written:
            return
        written.add(digest)
        yield tar.header(f"blobs/sha256/{check_digest(digest)}", size)
        sent = 0
        for chunk in chunks:
            sent += len(chunk)
            yield chunk
        if sent != size:
            raise RuntimeError(f"blob {digest} changed while it was being saved")
        yield tar.padding(size)

    for record, tags in selected:
        view = manager.view(record)
        manifest = manager.manifest(record)
        yield from blob(record.id, manager.content.size(record.id),
                        manager.content.iter_chunks(record.id))
        layer_paths = []
        if oci:
            for descriptor in manifest["layers"]:
                digest = descriptor["digest"]
                yield from blob(digest, manager.content.size(digest),
                                manager.content.iter_chunks(digest))
            manifest_digest = record.manifest
            manifest_size = manager.content.size(record.manifest)
            yield from blob(manifest_digest, manifest_size, manager.content.iter_chunks(manifest_digest))
        else:
            descriptors = []
            for layer, descriptor in zip(view.layers, manifest["layers"], strict=True):
                yield from blob(layer.diff_id, layer.tar_size, _layer_tar_chunks(manager, descriptor))
                layer_paths.append(f"blobs/sha256/{check_digest(layer.diff_id)}")
                descriptors.append({"mediaType": OCI_LAYER, "digest": layer.diff_id,
                                    "size": layer.tar_size})
            config_size = manager.content.size(record.id)
            manifest_bytes = json.dumps({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": record.id, "size": config_size},
                "layers": descriptors,
            }, separators=(",", ":")).encode()
            manifest_digest, manifest_size = sha256_digest(manifest_bytes), len(manifest_bytes)
            yield from blob(manifest_digest, manifest_size, iter([manifest_bytes]))
        for tag in tags or [None]:
            entry = {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": manifest_size}
            if tag:
                reference = parse_normalized(tag)
                entry["annotations"] = {"io.containerd.image.name": tag,
                                        "org.opencontainers.image.ref.name": reference.tag}
            index_entries.append(entry)
        if not oci:
            docker_manifest.append({
                "Config": f"blobs/sha256/{check_digest(record.id)}",
                "RepoTags": [familiar(t) for t in tags] or None,
                "Layers": layer_paths,
            })
            for tag in tags:
                reference = parse_normalized(tag)
                if view.layers:
                    repositories.setdefault(reference.familiar_name, {})[reference.tag] = \
                        check_digest(view.layers[-1].diff_id)
    yield from tar.file("index.json", json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index_entries}).encode())
    yield from tar.file("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    if not oci:
        yield from tar.file("manifest.json", json.dumps(docker_manifest).encode())
        if repositories:
            yield from tar.file("repositories", json.dumps(repositories).encode())
    yield tar.end()
    for record, _tags in selected:
        manager.events.publish("image", "save", record.id, {"name": record.id})


# -- reading ---------------------------------------------------------------------------

class _Staged:
    """An archive unpacked into a private directory, with paths confined to it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.links: dict[str, str] = {}

    def resolve(self, name: str, depth: int = 0) -> Path:
        clean = posixpath.normpath("/" + name).lstrip("/")
        if clean in self.links and depth < 16:
            return self.resolve(self.links[clean], depth + 1)
        path = self.root / clean
        if not path.is_file():
            raise InvalidParameter(f"invalid archive: {name} is missing or not a file")
        return path

    def json(self, name: str):
        try:
            return json.loads(self.resolve(name).read_bytes())
        except ValueError as exc:
            raise InvalidParameter(f"invalid archive: {name} is not valid JSON: {exc}") from None

    def exists(self, name: str) -> bool:
        clean = posixpath.normpath("/" + name).lstrip("/")
        return clean in self.links or (self.root / clean).is_file()


def _stage(source: BinaryIO, root: Path) -> _Staged:
    staged = _Staged(root)
    try:
        with tarfile.open(fileobj=decompressed(source), mode="r|") as archive:
            for member in archive:
                clean = posixpath.normpath("/" + member.name).lstrip("/")
                if not clean or clean == ".":
                    continue
                target = root / clean
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.extractfile(member) as data, open(target, "wb") as out:
                        shutil.copyfileobj(data, out, CHUNK)
                elif member.issym():
                    staged.links[clean] = posixpath.normpath(
                        posixpath.join(posixpath.dirname(clean), member.linkname)).lstrip("/")
                elif member.islnk():
                    staged.links[clean] = posixpath.normpath("/" + member.linkname).lstrip("/")
    except (tarfile.TarError, EOFError, UnsupportedCompression) as exc:
        raise InvalidParameter(f"invalid archive: {exc}") from None
    return staged


@dataclass
class Loaded:
    record: ImageRecord
    tags: list[str]


def load(manager: ImageManager, source: BinaryIO) -> Iterator[str]:
    """Load every image of a docker-archive or OCI-layout tar; yields progress lines."""
    staging = manager.tmp_dir / f"load-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        staged = _stage(source, staging)
        if staged.exists("manifest.json"):
            images = _load_docker_archive(manager, staged)
        elif staged.exists("index.json"):
            images = _load_oci_layout(manager, staged)
        else:
            raise InvalidParameter(
                "invalid archive: neither manifest.json (docker save) nor index.json (OCI layout) "
                "found; is this an image archive?")
        for loaded in images:
            for tag in loaded.tags:
                previous = manager.images.lookup_name(tag)
                if previous and previous != loaded.record.id:
                    yield (f"The image {familiar(tag)} already exists, renaming the old one with ID "
                           f"{previous} to empty string")
                manager._set_tag(tag, loaded.record.id)
                yield f"Loaded image: {familiar(tag)}"
            if not loaded.tags:
                yield f"Loaded image ID: {loaded.record.id}"
            manager.events.publish("image", "load", loaded.record.id,
                                   {"name": familiar(loaded.tags[0]) if loaded.tags else loaded.record.id})
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _normalized_tags(names) -> list[str]:
    tags = []
    for name in names or []:
        try:
            tags.append(str(parse_normalized(name).with_default_tag()))
        except InvalidReference as exc:
            raise InvalidParameter(f"invalid archive: tag {name!r}: {exc}") from None
    return tags


def _load_docker_archive(manager: ImageManager, staged: _Staged) -> Iterator[Loaded]:
    entries = staged.json("manifest.json")
    if not isinstance(entries, list):
        raise InvalidParameter("invalid archive: manifest.json must be a list")
    for entry in entries:
        config_bytes = staged.resolve(entry["Config"]).read_bytes()
        config = json.loads(config_bytes)
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        layer_paths = entry.get("Layers") or []
        if len(diff_ids) != len(layer_paths):
            raise InvalidParameter(
                f"invalid archive: image config lists {len(diff_ids)} layers, "
                f"manifest.json {len(layer_paths)}")
        with manager.lease() as lease:
            parent, descriptors = None, []
            for diff_id, path in zip(diff_ids, layer_paths, strict=True):
                with open(staged.resolve(path), "rb") as layer_file:
                    layer, descriptor = manager.add_layer(parent, decompressed(layer_file), lease,
                                                          expected_diff_id=diff_id)
                parent = layer.chain_id
                descriptors.append(descriptor)
            record = manager.commit_image(config_bytes, descriptors, lease)
        yield Loaded(record, _normalized_tags(entry.get("RepoTags")))


def _pick_manifest(manager: ImageManager, staged: _Staged, descriptor: dict) -> dict:
    """Follow indexes down to the manifest for this host's platform."""
    for _ in range(4):
        if descriptor.get("mediaType") not in (OCI_INDEX, DOCKER_MANIFEST_LIST):
            return descriptor
        index = staged.json(f"blobs/sha256/{check_digest(descriptor['digest'])}")
        wanted = ("linux", hostinfo.architecture())
        matches = [m for m in index.get("manifests", [])
                   if (m.get("platform", {}).get("os"), m.get("platform", {}).get("architecture"))
                   == wanted]
        if not matches:
            raise InvalidParameter(f"invalid archive: no image for linux/{wanted[1]} in an index")
        descriptor = matches[0]
    raise InvalidParameter("invalid archive: indexes nested too deep")


def _load_oci_layout(manager: ImageManager, staged: _Staged) -> Iterator[Loaded]:
    index = staged.json("index.json")
    for top in index.get("manifests", []):
        annotations = top.get("annotations") or {}
        descriptor = _pick_manifest(manager, staged, top)
        manifest_path = f"blobs/sha256/{check_digest(descriptor['digest'])}"
        manifest_bytes = staged.resolve(manifest_path).read_bytes()
        manifest = json.loads(manifest_bytes)
        config_digest = manifest["config"]["digest"]
        config_bytes = staged.resolve(f"blobs/sha256/{check_digest(config_digest)}").read_bytes()
        config = json.loads(config_bytes)
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        if len(diff_ids) != len(manifest.get("layers", [])):
            raise InvalidParameter("invalid archive: manifest and config disagree on the layers")
        with manager.lease() as lease:
            parent = None
            for diff_id, layer_descriptor in zip(diff_ids, manifest["layers"], strict=True):
                parent = _load_oci_layer(manager, staged, parent, diff_id, layer_descriptor, lease)
            record = manager.commit_image(config_bytes, manifest["layers"], lease,
                                          manifest_bytes=manifest_bytes)
        name = annotations.get("io.containerd.image.name") or annotations.get(
            "org.opencontainers.image.ref.name", "")
        yield Loaded(record, _names_from_annotation(name))


def _names_from_annotation(name: str) -> list[str]:
    """io.containerd.image.name is a full name; org.opencontainers.image.ref.name is often
    only a tag ("latest", umoci's "app"), which names no repository: those load untagged."""
    if not name or ("/" not in name and ":" not in name):
        return []
    try:
        reference = parse_normalized(name)
    except InvalidReference:
        return []  # a bare tag such as "latest" names no repository: load it untagged
    return [str(reference.with_default_tag())]


def _load_oci_layer(manager: ImageManager, staged: _Staged, parent: str | None, diff_id: str,
                    descriptor: dict, lease) -> str:
    """Keep the compressed blob as it is (verified against its digest) and apply its
    uncompressed content (verified against the diff id)."""
    media_type = descriptor.get("mediaType", "")
    if media_type not in UNCOMPRESSED_LAYERS | GZIP_LAYERS:
        raise InvalidParameter(f"unsupported layer media type {media_type!r}")
    path = staged.resolve(f"blobs/sha256/{check_digest(descriptor['digest'])}")
    with manager.content.writer(descriptor["digest"], descriptor.get("size"),
                                lease=lease.blobs) as writer, open(path, "rb") as blob:
        tee = _TeeReader(blob, writer.write)
        layer = manager.layers.register(parent, decompressed(tee), lease.layers,
                                        expected_diff_id=diff_id)
        tee.drain()
        writer.commit()
    return layer.chain_id


class _TeeReader:
    def __init__(self, source: BinaryIO, sink) -> None:
        self._source = source
        self._sink = sink

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        if data:
            self._sink(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

