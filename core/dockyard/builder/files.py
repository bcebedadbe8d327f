"""COPY and ADD: putting files from the build context (or another image) into a rootfs.

This module owns Docker's rules for where copied things land: a directory source
copies its content, a file lands inside a destination that ends with `/` or is an
existing directory, several sources need a directory destination ending with `/`, and
a relative destination is relative to WORKDIR. Everything written is owned by root, or
by `--chown`, and keeps its mode unless `--chmod` says otherwise. ADD also unpacks a
local tar archive (plain or compressed) into the destination, and downloads URLs.

Paths inside the rootfs are resolved the way the container would resolve them
(symlinks in the image never lead outside it); the archive unpacker confines every
entry it writes.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from pathlib import Path

from dockyard.builder.context import ContextError, ContextSource, source_files
from dockyard.containers.ocispec import resolve_in_rootfs, resolve_user
from dockyard.formats.dockerignore import IgnoreMatcher
from dockyard.images.compression import UnsupportedCompression, decompressed, sniff
from dockyard.plugin.archive import UnsafeArchive, apply_layer

DOWNLOAD_LIMIT = 1 << 30


def owner_of(rootfs: Path, chown: str | None) -> tuple[int, int]:
    """`--chown` (user, user:group, numeric or names from the image's /etc/passwd and
    /etc/group) as (uid, gid); root without it. A user alone names its group too, as
    Docker reads it (`--chown=10` is 10:10)."""
    if not chown:
        return 0, 0
    spec = chown if ":" in chown else f"{chown}:{chown}"
    user = resolve_user(rootfs, spec, [])
    return user["uid"], user["gid"]


def parse_chmod(chmod: str | None) -> int | None:
    if not chmod:
        return None
    try:
        mode = int(chmod, 8)
    except ValueError:
        raise ContextError(f"invalid chmod parameter: {chmod!r}: give an octal mode such as 0755") from None
    if mode > 0o7777:
        raise ContextError(f"invalid chmod parameter: {chmod!r}: a mode is at most 7777")
    return mode


def destination_path(destination: str, workdir: str) -> str:
    """The absolute destination, keeping a trailing `/` (it means "a directory")."""
    absolute = destination if destination.startswith("/") else posixpath.join(workdir or "/", destination)
    normal = posixpath.normpath(absolute)
    if destination.endswith(("/", "/.")) or destination in (".", "./"):
        normal = normal.rstrip("/") + "/"
    return normal


class Placer:
    """Writes sources into `rootfs` under one owner and mode policy."""

    def __init__(self, rootfs: Path, owner: tuple[int, int], mode: int | None) -> None:
        self.rootfs = rootfs
        self.uid, self.gid = owner
        self.mode = mode

    # -- directories -------------------------------------------------------------------

    def directory(self, path: str) -> Path:
        """`path` as a directory inside the rootfs, created (with its missing parents,
        owned as the copy is) if needed."""
        target = resolve_in_rootfs(self.rootfs, path)
        if target.is_dir():
            return target
        if os.path.lexists(target):
            raise ContextError(f"cannot copy to {path}: it exists and is not a directory")
        parent = self.directory(posixpath.dirname(path.rstrip("/")) or "/")
        made = parent / posixpath.basename(path.rstrip("/"))
        made.mkdir(mode=0o755)
        os.chown(made, self.uid, self.gid)
        return made

    def _replace(self, target: Path) -> None:
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif os.path.lexists(target):
            target.unlink()

    # -- one entry -----------------------------------------------------------------------

    def entry(self, source: Path, target: Path) -> None:
        """Copy one file, symlink or directory (not its content) from `source` to `target`,
        whose parent exists and is inside the rootfs."""
        found = os.lstat(source)
        if stat.S_ISDIR(found.st_mode):
            if not target.is_dir() or target.is_symlink():
                self._replace(target)
                target.mkdir()
            mode = stat.S_IMODE(found.st_mode)
        elif stat.S_ISLNK(found.st_mode):
            self._replace(target)
            os.symlink(os.readlink(source), target)
            os.lchown(target, self.uid, self.gid)
            return
        elif stat.S_ISREG(found.st_mode):
            self._replace(target)
            with open(source, "rb") as reader, open(target, "xb") as writer:
                shutil.copyfileobj(reader, writer, 1 << 20)
            mode = stat.S_IMODE(found.st_mode)
        else:
            return  # devices, fifos and sockets are not copied from a context
        os.chown(target, self.uid, self.gid)
        os.chmod(target, self.mode if self.mode is not None else mode)
        os.utime(target, ns=(found.st_atime_ns, found.st_mtime_ns))

    def tree(self, source: ContextSource, source_root: Path, destination: str,
             ignore: IgnoreMatcher | None) -> None:
        """A directory source: its content into `destination` (a directory)."""
        self.directory(destination)
        for relative, path in source_files(source, source_root, ignore):
            # the parent may be an excluded directory whose content an exception keeps
            # (`ignored/` with `!ignored/subdir/file`): it is made as Docker makes it
            parent = self.directory(posixpath.join(destination, posixpath.dirname(relative)))
            self.entry(path, parent / posixpath.basename(relative))

    def archive(self, path: Path, destination: str) -> bool:
        """ADD's unpacking of a local tar archive; False when `path` is not one."""
        with open(path, "rb") as file:
            head = file.read(512)
        if sniff(head) is None and not _looks_like_tar(head):
            return False
        target = self.directory(destination)
        try:
            with open(path, "rb") as file:
                stream = decompressed(file)
                apply_layer(stream, target, whiteouts="delete")
        except (UnsafeArchive, UnsupportedCompression, tarfile.TarError, EOFError) as exc:
            raise ContextError(f"ADD failed: cannot unpack {path.name}: {exc}") from None
        return True


def _looks_like_tar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


def place(rootfs: Path, sources: Sequence[ContextSource], source_root: Path, destination: str,
          workdir: str, owner: tuple[int, int], mode: int | None, ignore: IgnoreMatcher | None,
          instruction: str, unpack_archives: bool = False) -> None:
    """Docker's COPY/ADD of `sources` (already resolved in `source_root`) to `destination`."""
    path = destination_path(destination, workdir)
    as_directory = path.endswith("/")
    if len(sources) > 1 and not as_directory:
        raise ContextError(f"When using {instruction} with more than one source file, the destination "
                           "must be a directory and end with a /")
    placer = Placer(rootfs, owner, mode)
    for source in sources:
        if source.is_dir:
            placer.tree(source, source_root, path.rstrip("/") or "/", ignore)
            continue
        if unpack_archives and source.path.is_file() and placer.archive(source.path, path.rstrip("/") or "/"):
            continue
        existing = resolve_in_rootfs(rootfs, path)
        if as_directory or existing.is_dir():
            directory = placer.directory(path.rstrip("/") or "/")
            target = directory / posixpath.basename(source.name.rstrip("/"))
        else:
            parent = placer.directory(posixpath.dirname(path) or "/")
            target = parent / posixpath.basename(path)
        placer.entry(source.path, target)


def download(url: str, into: Path) -> tuple[Path, str]:
    """ADD <url>: the file (mode 0600, the server's Last-Modified as mtime) in `into`,
    and the name it gets when the destination is a directory."""
    name = posixpath.basename(urllib.parse.urlsplit(url).path) or "index.html"
    target = Path(tempfile.mkdtemp(dir=into)) / name
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:  # noqa: S310
            copied = 0
            while chunk := response.read(1 << 20):
                copied += len(chunk)
                if copied > DOWNLOAD_LIMIT:
                    raise ContextError(f"ADD failed: {url} is larger than {DOWNLOAD_LIMIT} bytes")
                out.write(chunk)
            modified = response.headers.get("Last-Modified")
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise ContextError(f"ADD failed: cannot download {url}: {getattr(exc, 'reason', exc)}") from None
    os.chmod(target, 0o600)
    if modified:
        try:
            stamp = parsedate_to_datetime(modified).timestamp()
            os.utime(target, (stamp, stamp))
        except (TypeError, ValueError):
            pass
    return target, name
