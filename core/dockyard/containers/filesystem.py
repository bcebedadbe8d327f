"""A container's files from outside: changes (`docker diff`), export, copy in and out
(`docker cp`), and commit to a new image.

Paths given by users are resolved inside the container's root the way the container
would resolve them, symlinks included, and never leave it; archives copied in are
hostile input and go through dockyard.plugin.archive, which confines every entry.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import secrets
import stat
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from dockyard.containers.model import Container
from dockyard.containers.ocispec import resolve_in_rootfs
from dockyard.errors import Conflict, InvalidParameter, NotFound
from dockyard.plugin.archive import UnsafeArchive, apply_layer

CHUNK = 1 << 20
CHANGE_KINDS = {"C": 0, "A": 1, "D": 2}

# Go's os.FileMode type bits, which the docker CLI reads from the path-stat header.
_GO_DIR, _GO_SYMLINK, _GO_DEVICE, _GO_PIPE, _GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
_GO_CHAR, _GO_SETUID, _GO_SETGID, _GO_STICKY = 1 << 21, 1 << 23, 1 << 22, 1 << 20


@contextlib.contextmanager
def mounted(manager, container: Container) -> Iterator[Path]:
    """The container's root filesystem, mounted for as long as the block runs (mounts are
    counted, so a running container's own mount is untouched)."""
    rootfs = manager.context.storage.mount(container.layer_id)
    try:
        yield rootfs
    finally:
        manager.context.storage.unmount(container.layer_id)


@contextlib.contextmanager
def copy_root(manager, container: Container, path: str) -> Iterator[tuple[Path, str]]:
    """Where `docker cp` finds `path`: the directory it lives under and the path inside
    that. Under a volume or bind mount point that is the mount's source, as the
    container itself sees it, running or not (Docker mounts them for the copy); anywhere
    else the root filesystem, mounted for the block."""
    clean = "/" + path.strip("/")
    entry = mount_entry(container, path)
    if entry is None:
        with mounted(manager, container) as rootfs:
            yield rootfs, path
        return
    inner = "/" + clean[len(entry["Destination"].rstrip("/")):].lstrip("/")
    if path.endswith("/") and inner != "/":
        inner += "/"
    if entry["Type"] == "bind":
        yield Path(entry["Source"]), inner
        return
    volumes = manager.context.volumes
    holder = f"{container.id}-copy-{secrets.token_hex(4)}"  # counted apart from the container's own use
    source = volumes.mount(entry["Name"], holder)
    try:
        yield Path(source), inner
    finally:
        volumes.unmount(entry["Name"], holder)


def changes(manager, container: Container) -> list[dict]:
    found = manager.context.storage.changes(container.layer_id, container.diff_parent)
    return [{"Path": change.path, "Kind": CHANGE_KINDS[change.kind]} for change in found]


def export(manager, container: Container) -> Iterator[bytes]:
    """The whole root filesystem as one tar (`docker export`)."""
    from dockyard.plugin.archive import tar_directory

    with mounted(manager, container) as rootfs:
        yield from tar_directory(rootfs)
    manager.event(container, "export")


def _go_mode(mode: int) -> int:
    bits = stat.S_IMODE(mode) & 0o777
    kind = stat.S_IFMT(mode)
    bits |= {stat.S_IFDIR: _GO_DIR, stat.S_IFLNK: _GO_SYMLINK, stat.S_IFIFO: _GO_PIPE,
             stat.S_IFSOCK: _GO_SOCKET, stat.S_IFBLK: _GO_DEVICE,
             stat.S_IFCHR: _GO_DEVICE | _GO_CHAR}.get(kind, 0)
    if mode & stat.S_ISUID:
        bits |= _GO_SETUID
    if mode & stat.S_ISGID:
        bits |= _GO_SETGID
    if mode & stat.S_ISVTX:
        bits |= _GO_STICKY
    return bits


def _inside(rootfs: Path, path: str) -> tuple[Path, str]:
    if not path.startswith("/"):
        raise InvalidParameter(f"{path!r}: give an absolute path inside the container")
    # the last component itself is not followed when it is a symlink (as docker cp does)
    parent, _, name = path.rstrip("/").rpartition("/")
    resolved_parent = resolve_in_rootfs(rootfs, parent or "/")
    return (resolved_parent / name if name else resolved_parent), name or "/"


def path_stat(rootfs: Path, path: str) -> dict:
    target, name = _inside(rootfs, path)
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        raise NotFound(f"Could not find the file {path} in container") from None
    link = ""
    if stat.S_ISLNK(info.st_mode):
        link = "/" + str(resolve_in_rootfs(rootfs, path).relative_to(rootfs))
    moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(info.st_mtime)) + "Z"
    return {"name": name if name != "/" else "/", "size": info.st_size, "mode": _go_mode(info.st_mode),
            "mtime": moment, "linkTarget": link}


def stat_header(value: dict) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def _tar_entries(target: Path, arcname: str) -> Iterator[bytes]:
    """A tar of one file or tree, streamed entry by entry (big files never sit in memory)."""
    scratch = tarfile.open(fileobj=io.BytesIO(), mode="w", format=tarfile.PAX_FORMAT)  # for gettarinfo
    walk = [(target, arcname)]
    if target.is_dir() and not target.is_symlink():
        for directory, dirnames, filenames in os.walk(target):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                full = Path(directory) / name
                walk.append((full, f"{arcname}/{full.relative_to(target)}"))
    for path, name in walk:
        try:
            info = scratch.gettarinfo(str(path), arcname=name)
        except FileNotFoundError:
            continue  # removed while we walked
        if info is None:
            continue  # a socket: tar has no place for it
        yield info.tobuf(tarfile.PAX_FORMAT)
        if info.isreg() and info.size:
            sent = 0
            with open(path, "rb") as handle:
                while sent < info.size:
                    chunk = handle.read(min(CHUNK, info.size - sent))
                    if not chunk:
                        chunk = b"\0" * (info.size - sent)  # the file shrank meanwhile
                    sent += len(chunk)
                    yield chunk
            yield b"\0" * (-info.size % tarfile.BLOCKSIZE)
    yield b"\0" * (tarfile.BLOCKSIZE * 2)


def archive_stat(manager, container: Container, path: str) -> dict:
    """`HEAD .../archive`: what `docker cp` learns of a path before copying."""
    with copy_root(manager, container, path) as (root, inner):
        info = path_stat(root, inner)
    if inner == "/" and path.strip("/"):  # the mount point itself: named as the container names it
        info["name"] = path.rstrip("/").rpartition("/")[2]
    return info


def get_archive(manager, container: Container, path: str) -> tuple[dict, Iterator[bytes]]:
    """(stat, tar chunks) of a path in the container, for `docker cp CONTAINER:PATH ...`."""
    mount = copy_root(manager, container, path)
    root, inner = mount.__enter__()
    try:
        info = path_stat(root, inner)
        if inner == "/" and path.strip("/"):
            info["name"] = path.rstrip("/").rpartition("/")[2]
        target, _ = _inside(root, inner)
    except BaseException:
        mount.__exit__(None, None, None)
        raise

    def chunks() -> Iterator[bytes]:
        try:
            yield from _tar_entries(target, info["name"] if info["name"] != "/" else ".")
        finally:
            mount.__exit__(None, None, None)

    manager.event(container, "archive-path", path=path)
    return info, chunks()


def put_archive(manager, container: Container, path: str, stream: BinaryIO,
                no_overwrite_dir_non_dir: bool = False) -> None:
    """Unpack a tar into a directory of the container (`docker cp ... CONTAINER:PATH`)."""
    from dockyard.images.compression import decompressed

    with copy_root(manager, container, path) as (root, inner):
        target = resolve_in_rootfs(root, inner)
        if not target.exists():
            raise NotFound(f"Could not find the file {path} in container {container.name}")
        if not target.is_dir():
            raise InvalidParameter(f"extraction point is not a directory: {path}")
        entry = mount_entry(container, path)
        if entry is None and container.host_config.get("ReadonlyRootfs"):
            raise InvalidParameter("container rootfs is marked read-only")
        if entry is not None and not entry["RW"]:
            raise InvalidParameter("mounted volume is marked read-only")
        try:
            apply_layer(decompressed(stream), target, whiteouts="delete")
        except UnsafeArchive as exc:
            raise InvalidParameter(f"refusing the archive: {exc}") from None
    manager.event(container, "extract-to-dir", path=path)


def mount_entry(container: Container, path: str) -> dict | None:
    """The volume or bind mount (the deepest) that `path` of the container lies under."""
    clean = "/" + path.strip("/")
    under = [m for m in container.mounts if m["Type"] in ("volume", "bind")
             and (clean == m["Destination"] or clean.startswith(m["Destination"].rstrip("/") + "/"))]
    return max(under, key=lambda m: len(m["Destination"]), default=None)


class ChunkReader:
    """A file-like view of an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def commit(manager, container: Container, repo: str | None, tag: str | None, comment: str,
           author: str, change_list: list[str], pause: bool, config_overrides: dict | None) -> str:
    """A new image: the container's image plus its writable layer as one more layer."""
    from dockyard.images.changes import apply_changes
    from dockyard.images.manager import now_rfc3339

    images = manager.context.images
    paused_here = False
    if pause and container.running and not container.state.Paused:
        try:
            manager.pause(container.id)
            paused_here = True
        except Conflict:
            pass  # it exited (or was paused) between the check and the pause: nothing to pause
    try:
        base = images.resolve(container.image_id)
        base_config = images.config(base)
        base_manifest = images.manifest(base)
        target = images._import_target(repo, tag)
        container_config = dict(container.config)
        container_config.update(config_overrides or {})
        container_config.pop("Image", None)
        container_config = apply_changes(container_config, change_list)
        created = now_rfc3339()
        diff = manager.context.storage.diff(container.layer_id, container.diff_parent)
        with images.lease() as lease:
            layer, descriptor = images.add_layer(container.image_chain_id, ChunkReader(iter(diff)), lease)
            config = {
                "architecture": base_config.get("architecture", ""),
                "os": base_config.get("os", "linux"),
                "created": created,
                "author": author,
                "comment": comment,
                "container": container.id,
                "config": container_config,
                "rootfs": {"type": "layers",
                           "diff_ids": [*base_config.get("rootfs", {}).get("diff_ids", []), layer.diff_id]},
                "history": [*base_config.get("history", []),
                            {"created": created, "created_by": " ".join([container.path, *container.args]),
                             **({"author": author} if author else {}),
                             **({"comment": comment} if comment else {})}],
            }
            record = images.commit_image(config, [*base_manifest.get("layers", []), descriptor], lease,
                                         [target] if target else [])
            record.extra["parent"] = base.id
            images.images.add(record)
    finally:
        if paused_here and container.state.Paused:
            try:
                manager.unpause(container.id)
            except Conflict:
                pass  # it was unpaused or ended meanwhile
    manager.event(container, "commit", comment=comment)
    return record.id
