"""The build context: unpacking the client's tar safely, finding COPY/ADD sources in it,
and the checksum of what they copy (the cache key of a COPY/ADD step).

- `extract_context(stream, destination)` unpacks a plain, gzip, bzip2 or xz tar. The tar
  is hostile input: absolute names and names escaping with `..` are refused, every path
  is resolved one component at a time from directory descriptors with O_NOFOLLOW (so
  nothing is ever written through a symlink, wherever it points), hard links must point
  at files already unpacked, device nodes are refused. Modes are kept, uids/gids too
  when running as root. A `max_bytes` limit, when given, fails loudly.
- `dockerfile_from_context(root, name)` reads the Dockerfile `-f` names (a path inside
  the context; Docker's CLI sends a Dockerfile from elsewhere or stdin as an extra tar
  member `.dockerfile.<random>` and names that).
- `resolve_sources(root, sources, ignore)` finds COPY/ADD sources with Docker's classic
  rules: a leading `/` or `./` is relative to the context root, `..` may not leave it,
  symlinks on the way are followed inside the context only, Go filepath.Match globs
  match files and directories at any depth, .dockerignore'd files do not exist.
- `source_files(source, ignore)` lists what one source copies; `checksum(sources,
  ignore)` hashes names, content, mode, uid/gid and symlink targets (never mtimes).
URLs (ADD http://...) are the builder's: see `is_url`.
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dockyard.errors import InvalidParameter
from dockyard.formats.dockerignore import IgnoreMatcher, clean_path, has_glob, match_path_pattern
from dockyard.images.compression import UnsupportedCompression, decompressed

DEFAULT_DOCKERFILE = "Dockerfile"
CLIENT_DOCKERFILE_PREFIX = ".dockerfile."  # how Docker's CLI names a Dockerfile it adds
_MAX_SYMLINKS = 255
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


class ContextError(InvalidParameter):
    """The build context or a source in it cannot be used; the message says why and, in
    Docker's words where Docker has them, what to fix."""


# -- unpacking --------------------------------------------------------------------------


def _unsafe(name: str, problem: str) -> ContextError:
    return ContextError(f"build context tar member {name!r} {problem}; the context was rejected "
                        "(send a context without it)")


def extract_context(stream: BinaryIO, destination: Path, max_bytes: int | None = None) -> None:
    """Unpacks the context tar in `stream` into the existing directory `destination`."""
    destination = Path(destination)
    try:
        tar = tarfile.open(fileobj=decompressed(stream), mode="r|")
    except UnsupportedCompression as exc:
        raise ContextError(str(exc)) from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ContextError(f"the build context is not a tar archive (plain, gzip, bzip2 or xz): "
                           f"{exc}") from None
    unpacker = _Unpacker(destination, max_bytes)
    try:
        with tar:
            member = tar.next()
            while member is not None:
                unpacker.add(member, tar)
                try:
                    member = tar.next()
                except tarfile.ReadError:
                    # The docker CLI's rewritten context (-f from outside the context) ends
                    # right after the last member's data, without padding or end blocks; the
                    # member itself was read whole, so this is the end, as dockerd reads it.
                    break
        unpacker.finish()
    except (tarfile.TarError, EOFError) as exc:
        raise ContextError(f"the build context tar is corrupt or truncated: {exc}") from None
    finally:
        unpacker.close()


class _Unpacker:
    def __init__(self, root: Path, max_bytes: int | None) -> None:
        self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.as_root = os.geteuid() == 0
        self.max_bytes = max_bytes
        self.written = 0
        self.directories: list[tuple[tuple[str, ...], tarfile.TarInfo]] = []

    def close(self) -> None:
        os.close(self.root_fd)

    def _components(self, name: str) -> tuple[str, ...]:
        if name.startswith("/"):
            raise _unsafe(name, "has an absolute path")
        cleaned = clean_path(name)
        if cleaned == "..." or cleaned == ".." or cleaned.startswith("../"):
            raise _unsafe(name, "is outside of the build context (it climbs out with '..')")
        if cleaned == ".":
            return ()
        return tuple(cleaned.split("/"))

    def _open_dir(self, parts: Sequence[str], name: str, create: bool) -> int:
        """A descriptor for the directory `parts` under the root, never through a symlink."""
        fd = os.dup(self.root_fd)
        try:
            for part in parts:
                try:
                    next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(part, 0o755, dir_fd=fd)
                    next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise _unsafe(name, f"goes through {part!r}, which is a symlink or not a "
                                            "directory") from None
                    raise
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def add(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        parts = self._components(member.name)
        if not parts:
            if member.isdir():
                self.directories.append(((), member))
            return
        if member.ischr() or member.isblk():
            raise _unsafe(member.name, "is a device node, which a build context may not contain")
        parent_fd = self._open_dir(parts[:-1], member.name, create=True)
        leaf = parts[-1]
        try:
            if member.isdir():
                self._make_dir(parent_fd, leaf, member)
                self.directories.append((parts, member))
                return
            self._remove_existing(parent_fd, leaf)
            if member.isreg():
                self._write_file(parent_fd, leaf, member, tar)
            elif member.issym():
                os.symlink(member.linkname, leaf, dir_fd=parent_fd)
                self._own(parent_fd, leaf, member)
            elif member.islnk():
                self._hard_link(parent_fd, leaf, member)
            elif member.isfifo():
                os.mkfifo(leaf, member.mode & 0o7777, dir_fd=parent_fd)
                self._own(parent_fd, leaf, member)
            else:
                raise _unsafe(member.name, f"has an unsupported type {member.type!r}")
        finally:
            os.close(parent_fd)

    def _make_dir(self, parent_fd: int, leaf: str, member: tarfile.TarInfo) -> None:
        try:
            found = os.stat(leaf, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            os.mkdir(leaf, 0o700, dir_fd=parent_fd)  # opened up in finish(), once filled
            return
        if not stat.S_ISDIR(found.st_mode):
            os.unlink(leaf, dir_fd=parent_fd)
            os.mkdir(leaf, 0o700, dir_fd=parent_fd)

    def _remove_existing(self, parent_fd: int, leaf: str) -> None:
        try:
            found = os.stat(leaf, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(found.st_mode):
            raise _unsafe(leaf, "replaces a directory of the same name")
        os.unlink(leaf, dir_fd=parent_fd)

    def _write_file(self, parent_fd: int, leaf: str, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        if self.max_bytes is not None and self.written + member.size > self.max_bytes:
            raise ContextError(f"the build context is larger than the limit of {self.max_bytes} bytes "
                               f"(at {member.name!r}): make it smaller with a .dockerignore")
        fd = os.open(leaf, _NEW_FILE_FLAGS, 0o600, dir_fd=parent_fd)
        try:
            source = tar.extractfile(member)
            while source is not None and (chunk := source.read(_CHUNK)):
                _write_all(fd, chunk)
            self.written += member.size
            if self.as_root:
                os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, member.mode & 0o7777)
            os.utime(fd, (member.mtime, member.mtime))
        finally:
            os.close(fd)

    def _hard_link(self, parent_fd: int, leaf: str, member: tarfile.TarInfo) -> None:
        target = self._components(member.linkname)
        if not target:
            raise _unsafe(member.name, "is a hard link to the context root")
        target_fd = self._open_dir(target[:-1], member.name, create=False)
        try:
            found = os.stat(target[-1], dir_fd=target_fd, follow_symlinks=False)
            if stat.S_ISDIR(found.st_mode):
                raise _unsafe(member.name, "is a hard link to a directory")
            os.link(target[-1], leaf, src_dir_fd=target_fd, dst_dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise _unsafe(member.name, f"is a hard link to {member.linkname!r}, which is not in the "
                                       "context before it") from None
        finally:
            os.close(target_fd)

    def _own(self, parent_fd: int, leaf: str, member: tarfile.TarInfo) -> None:
        if self.as_root:
            os.chown(leaf, member.uid, member.gid, dir_fd=parent_fd, follow_symlinks=False)

    def finish(self) -> None:
        # deepest first, so a read-only directory is closed only after its content is in
        for parts, member in sorted(self.directories, key=lambda item: len(item[0]), reverse=True):
            fd = self._open_dir(parts, member.name, create=False)
            try:
                if self.as_root:
                    os.fchown(fd, member.uid, member.gid)
                os.fchmod(fd, member.mode & 0o7777)
                os.utime(fd, (member.mtime, member.mtime))
            finally:
                os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# -- the Dockerfile ---------------------------------------------------------------------


def dockerfile_from_context(root: Path, name: str = "") -> tuple[str, str]:
    """(the context-relative path of the Dockerfile `-f` names, its text). An empty
    `name` means `Dockerfile`, or `dockerfile` if only that exists, as Docker does."""
    root = Path(root)
    if not name:
        name = DEFAULT_DOCKERFILE
        if not _lexists_in(root, name) and _lexists_in(root, name.lower()):
            name = name.lower()
    relative = _relative_source(name)
    if relative == ".." or relative.startswith("../"):
        raise _outside(name)
    path = _resolve_in_scope(root, relative)
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ContextError(f"Cannot locate specified Dockerfile: {name}") from None
    if not data:
        raise ContextError(f"the Dockerfile ({name}) cannot be empty")
    return relative, data.decode("utf-8", errors="replace")


def _lexists_in(root: Path, name: str) -> bool:
    return os.path.lexists(root / name)


# -- COPY / ADD sources -----------------------------------------------------------------


@dataclass(frozen=True)
class ContextSource:
    """One thing a COPY/ADD source names. `name` is its context-relative path as matched
    (its basename names the copy when the destination is a directory); `path` is where
    its content is, symlinks on the way resolved inside the context."""

    name: str
    path: Path

    @property
    def is_dir(self) -> bool:
        return self.path.is_dir() and not self.path.is_symlink()


def is_url(source: str) -> bool:
    """Whether an ADD source is a URL to download rather than a context path."""
    return source.startswith(("http://", "https://"))


def _relative_source(source: str) -> str:
    """A source as a cleaned context-relative path; Docker treats `/x` as `x`."""
    relative = clean_path(source.lstrip("/")).lstrip("/")  # "/../x" is "../x", as in Docker
    return relative.removeprefix("./") or "."


def _outside(source: str) -> ContextError:
    return ContextError(f"Forbidden path outside the build context: {source} ()")


def _not_found(source: str, instruction: str) -> ContextError:
    return ContextError(f"{instruction} failed: file not found in build context or excluded by "
                        f".dockerignore: stat {source}: file does not exist")


def resolve_sources(context_root: Path, sources: Iterable[str], ignore: IgnoreMatcher | None = None,
                    instruction: str = "COPY") -> list[ContextSource]:
    """The context paths COPY/ADD `sources` name, in order (expand variables first). Raises
    ContextError: outside the context, not found (or ignored), no glob matches."""
    root = Path(context_root)
    ignore = ignore or IgnoreMatcher(())
    found: list[ContextSource] = []
    for source in sources:
        relative = _relative_source(source)
        if relative == ".." or relative.startswith("../"):
            raise _outside(source)
        if has_glob(relative):
            found.extend(_glob(root, relative, ignore))
            continue
        path = _resolve_in_scope(root, relative)
        # an excluded directory still holds what an exception keeps (`ignored/` with
        # `!ignored/subdir/file`): the directory is there, with only that in it
        hidden = relative != "." and ignore.matches(relative) and not (
            os.path.isdir(path) and ignore.may_keep_under(relative))
        if hidden or not os.path.lexists(path):
            raise _not_found(source, instruction)
        found.append(ContextSource(relative, path))
    if not found:
        raise ContextError(f"{instruction} failed: no source files were specified")
    return found


def _glob(root: Path, pattern: str, ignore: IgnoreMatcher) -> Iterator[ContextSource]:
    """Every file and directory (at any depth, not under a symlink) that matches."""
    match_path_pattern(pattern, ".")  # a malformed pattern fails even when nothing is there
    for relative, _ in _walk(root, ""):
        if match_path_pattern(pattern, relative) and not ignore.matches(relative):
            yield ContextSource(relative, root / relative)


def _walk(root: Path, start: str) -> Iterator[tuple[str, os.stat_result]]:
    """(relative path, lstat) under root/start, sorted, parents first, no symlink followed."""
    directory = root / start if start else root
    try:
        names = sorted(os.listdir(directory))
    except (NotADirectoryError, FileNotFoundError):
        return
    for name in names:
        relative = f"{start}/{name}" if start else name
        found = os.lstat(root / relative)
        yield relative, found
        if stat.S_ISDIR(found.st_mode):
            yield from _walk(root, relative)


def resolve_in_context(root: Path, path: str) -> Path:
    """A path of the context as the build sees it (symlinks kept inside); ContextError when
    it does not exist there. For `RUN --mount=type=bind,source=...`."""
    relative = _relative_source(path)
    if relative == ".." or relative.startswith("../"):
        raise _outside(path)
    resolved = _resolve_in_scope(Path(root), relative)
    if not os.path.lexists(resolved):
        raise ContextError(f"failed to compute cache key: {path}: not found in the build context")
    return resolved


def _resolve_in_scope(root: Path, relative: str) -> Path:
    """root/relative with symlinks resolved as if root were `/` (Docker's
    FollowSymlinkInScope): absolute targets and `..` never leave root."""
    pending = [] if relative == "." else relative.split("/")
    pending.reverse()
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:  # at the root, ".." stays there, as in a chroot
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        if candidate.is_symlink():
            links += 1
            if links > _MAX_SYMLINKS:
                raise ContextError(f"too many levels of symbolic links at {relative}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            pending.extend(reversed(target.split("/")))
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


def source_files(source: ContextSource, context_root: Path,
                 ignore: IgnoreMatcher | None = None) -> Iterator[tuple[str, Path]]:
    """What `source` copies: ("", path) for a file (or symlink); for a directory its
    content (not the directory itself, as Docker copies a directory's content) as
    (path relative to it, path), sorted, parents first, ignored entries left out."""
    ignore = ignore or IgnoreMatcher(())
    if not source.is_dir:
        yield "", source.path
        return
    root = Path(context_root)
    base = source.path.relative_to(root).as_posix() if source.path != root else ""
    for relative, _ in _walk(source.path, ""):
        in_context = posixpath.join(base, relative) if base else relative
        if ignore.matches(in_context):
            continue
        yield relative, source.path / relative


def checksum(sources: Sequence[ContextSource], context_root: Path,
             ignore: IgnoreMatcher | None = None) -> str:
    """"sha256:<hex>" over what `sources` copy: names, types, modes, uids/gids, sizes,
    content and symlink targets, in order; mtimes and atimes never count."""
    digest = hashlib.sha256()
    for source in sources:
        digest.update(b"source\0" + os.fsencode(source.name) + b"\0")
        for relative, path in source_files(source, context_root, ignore):
            found = os.lstat(path)
            digest.update(b"%s\0%o\0%d\0%d\0%d\0" % (os.fsencode(relative), found.st_mode, found.st_uid,
                                                     found.st_gid, found.st_size))
            if stat.S_ISLNK(found.st_mode):
                digest.update(os.fsencode(os.readlink(path)) + b"\0")
            elif stat.S_ISREG(found.st_mode):
                digest.update(_file_digest(path) + b"\0")
    return "sha256:" + digest.hexdigest()


def _file_digest(path: Path) -> bytes:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").digest()
