"""`RUN --mount` (builds through BuildKit's API): cache, tmpfs and bind mounts for one step.

A cache mount is a directory the daemon keeps between builds, by `id` (the target when
none is given), mounted read-write; `sharing=locked` lets one step at a time use it,
`private` gives a concurrent step a fresh directory of its own, `shared` (the default)
lets them all in. A bind mount shows a path of the context read-only unless `rw` (the context is
the build's private copy: writes never reach the client's files or the image; `from=` a
stage or image is not served yet). A
tmpfs mount is an empty memory filesystem. A secret mount is the client's secret (read
through its session's Secrets service), as a read-only file in memory (/dev/shm) for
that step only, at /run/secrets/<id> by default; it never enters the image or the
step's cache key. SSH mounts are refused with a message.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.errors import InvalidParameter

_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
_KEYS = {"type", "target", "dst", "destination", "source", "src", "from", "id", "sharing", "mode",
         "uid", "gid", "ro", "readonly", "rw", "readwrite", "size", "required", "env"}


@dataclass(frozen=True)
class RunMount:
    type: str
    target: str
    source: str = ""
    id: str = ""
    sharing: str = "shared"
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    read_only: bool = False
    size: int = 0
    required: bool = False  # a secret the client must have (else the mount is skipped)

    def key(self) -> str:
        """What the step's cache key takes from this mount (never a secret's content)."""
        return f"{self.type}:{self.target}:{self.source}:{self.id}:{self.read_only}"


def _boolean(value: str | None) -> bool:
    return value is None or value.lower() in ("", "true", "1")


def parse_mount(text: str) -> RunMount:
    """One `--mount` value: comma-separated key=value pairs, as BuildKit writes them."""
    fields: dict[str, str | None] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, equals, value = part.partition("=")
        key = key.lower()
        if key not in _KEYS:
            raise InvalidParameter(f"unexpected key '{key}' in '{part}'")
        fields[key] = value if equals else None
    kind = (fields.get("type") or "bind").lower()
    if kind not in _TYPES:
        raise InvalidParameter(f"unsupported mount type {kind!r}")
    if fields.get("from"):
        raise InvalidParameter("RUN --mount with from= is not supported by dockyard yet: mount a path "
                               "of the build context, or COPY --from the stage first")
    if kind == "ssh":
        raise InvalidParameter("RUN --mount=type=ssh is not supported by dockyard yet: the client's SSH "
                               "agent is not forwarded")
    if fields.get("env") is not None:
        raise InvalidParameter("RUN --mount=type=secret,env=... is not supported by dockyard yet: mount the "
                               "secret as a file")
    target = fields.get("target") or fields.get("dst") or fields.get("destination") or ""
    if kind == "secret":
        secret_id = fields.get("id") or posixpath.basename(target)
        if not secret_id:
            raise InvalidParameter("a secret mount needs an id (or a target to take it from)")
        fields["id"] = secret_id
        target = target or f"/run/secrets/{secret_id}"
    if not target:
        raise InvalidParameter("mount destination (target) is required")
    read_only = kind == "bind"  # BuildKit's binds are read-only unless asked otherwise
    for names, value in ((("rw", "readwrite"), False), (("ro", "readonly"), True)):
        given = [name for name in names if name in fields]
        if given:
            read_only = value if _boolean(fields[given[0]]) else not value
    sharing = (fields.get("sharing") or "shared").lower()
    if sharing not in ("shared", "private", "locked"):
        raise InvalidParameter(f"unsupported sharing value {sharing!r}")
    try:
        mode = int(fields["mode"], 8) if fields.get("mode") else (0o400 if kind == "secret" else 0o755)
        uid = int(fields.get("uid") or 0)
        gid = int(fields.get("gid") or 0)
        size = int(fields.get("size") or 0)
    except ValueError as exc:
        raise InvalidParameter(f"invalid mount option in {text!r}: {exc}") from None
    source = fields.get("source") or fields.get("src") or ""
    return RunMount(kind, posixpath.normpath("/" + target.lstrip("/")), source=source,
                    id=fields.get("id") or "", sharing=sharing, mode=mode, uid=uid, gid=gid,
                    read_only=read_only or kind == "secret", size=size,
                    required=kind == "secret" and "required" in fields and _boolean(fields["required"]))


def parse_mounts(flag: str | None) -> list[RunMount]:
    return [parse_mount(value) for value in (flag or "").split("\n") if value.strip()]


@dataclass
class _CacheDirectory:
    path: Path
    lock: threading.Lock = field(default_factory=threading.Lock)


class CacheMounts:
    """The daemon's cache-mount directories, by id, kept under `root` between builds."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._directories: dict[str, _CacheDirectory] = {}
        self._lock = threading.Lock()

    def _directory(self, mount: RunMount) -> _CacheDirectory:
        name = hashlib.sha256((mount.id or mount.target).encode()).hexdigest()[:32]
        with self._lock:
            found = self._directories.get(name)
            if found is None:
                path = self.root / name
                if not path.exists():
                    path.mkdir(parents=True)
                    os.chmod(path, mode=mount.mode)
                    os.chown(path, mount.uid, mount.gid)
                found = self._directories[name] = _CacheDirectory(path)
            return found

    def acquire(self, mount: RunMount, scratch: Path) -> tuple[Path, threading.Lock | None]:
        """The directory to mount, and the lock to release after the step (or None)."""
        directory = self._directory(mount)
        if mount.sharing == "shared":
            return directory.path, None
        if mount.sharing == "locked":
            directory.lock.acquire()
            return directory.path, directory.lock
        if directory.lock.acquire(blocking=False):  # private: the shared one when free
            return directory.path, directory.lock
        fresh = Path(tempfile.mkdtemp(prefix="cache-private-", dir=scratch))
        os.chmod(fresh, mount.mode)
        os.chown(fresh, mount.uid, mount.gid)
        return fresh, None

    def usage(self) -> list[tuple[str, int, float]]:
        """(id, bytes, last modified) of each cache directory, for DiskUsage and `system df`."""
        found = []
        for path in sorted(self.root.glob("*")) if self.root.is_dir() else []:
            found.append((path.name, _size(path), path.stat().st_mtime))
        return found

    def prune(self) -> tuple[list[str], int]:
        """Remove every cache directory no step is using (`docker builder prune`): the
        ids removed and the bytes freed. A shared mount in use right now is removed too,
        as its step keeps the directory it has open."""
        removed, freed = [], 0
        with self._lock:
            for path in list(self.root.glob("*")) if self.root.is_dir() else []:
                entry = self._directories.get(path.name)
                if entry is not None and not entry.lock.acquire(blocking=False):
                    continue  # a locked or private step has it
                freed += _size(path)
                shutil.rmtree(path, ignore_errors=True)
                self._directories.pop(path.name, None)
                removed.append(path.name)
        return removed, freed


def _size(path: Path) -> int:
    return sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
