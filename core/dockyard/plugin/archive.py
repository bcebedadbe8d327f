"""Layer tars: applying untrusted ones safely, and writing them from directory trees.

This module owns the OCI layer format (uncompressed tar, `.wh.NAME` whiteouts,
`.wh..wh..opq` opaque directories) on the way in and on the way out:

- `apply_layer` unpacks a layer tar into a directory, in one of two whiteout styles:
  "delete" (the directory holds a full copy of the parent layer, as vfs keeps them) or
  "overlay" (the directory is an overlayfs upper dir: whiteouts become 0/0 character
  devices and opaque directories get the `trusted.overlay.opaque` xattr).
- `tree_changes` / `tree_diff` compare two full trees (drivers that copy layers).
- `overlay_changes` / `overlay_diff` read an overlayfs upper dir back into OCI form.
- `tar_directory` tars a whole tree (`docker export`, importing a root filesystem).

Layer tars are hostile input. The reader is our own (not `tarfile`'s extraction) so
that every rule is visible here: paths are resolved one component at a time from
directory file descriptors with O_NOFOLLOW, so no symlink is ever followed, and
nothing is written outside the target whatever the tar says. Standard library only.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from dockyard.plugin.contracts.storage import Change

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"

_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)
_READ_SIZE = 1 << 20  # file data moves in 1 MiB reads: per-call overhead stays invisible
_CHUNK = 64 * 1024  # what the tar writers yield at a time
_MAX_METADATA = 1 << 20  # PAX headers and GNU long names are held in memory: cap them
_MAX_CACHED_DIRS = 256

_WH = WHITEOUT_PREFIX.encode()
_OPQ = OPAQUE_MARKER.encode()
_WH_META = _WH + _WH  # aufs-internal names (.wh..wh.plnk, ...): never content
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# xattrs that are never layer content: overlayfs' own bookkeeping (a tar must not be able
# to plant redirects or opaque markers except through whiteouts) and host SELinux labels.
_FOREIGN_XATTR_PREFIXES = (b"trusted.overlay.", b"security.selinux")

_REGULAR_TYPES = (b"0", b"\0", b"7")


class UnsafeArchive(ValueError):
    """The layer tar tries to reach outside the layer (or to exceed its size limit).

    Raised by `apply_layer`, which then stops; the caller discards the half-applied
    layer. The message names the offending entry and what to do about it."""


class InvalidArchive(UnsafeArchive):
    """The data is not a well-formed tar: corrupt, truncated, compressed, or not a tar at
    all. A subclass of UnsafeArchive, so one `except UnsafeArchive` rejects every bad
    layer."""


def _shown(name: bytes) -> str:
    return name.decode("utf-8", "backslashreplace")


def _unsafe(name: bytes, problem: str) -> UnsafeArchive:
    return UnsafeArchive(
        f"unsafe layer entry {_shown(name)!r}: {problem}; the layer was rejected "
        "(rebuild the image, or pull it from a source you trust)"
    )


def _invalid(position: int, problem: str) -> InvalidArchive:
    return InvalidArchive(
        f"invalid layer tar at byte {position}: {problem}; a layer must be a complete, "
        "uncompressed tar (download it again, or decompress it first)"
    )


# -- reading ----------------------------------------------------------------------------


class _Entry:
    """One tar member, with PAX and GNU long-name extensions already folded in."""

    __slots__ = ("name", "type", "mode", "uid", "gid", "size", "mtime_ns", "linkname", "xattrs")

    def __init__(self) -> None:
        self.xattrs: dict[bytes, bytes] | None = None


def _number(field: bytes, position: int) -> int:
    if field[0] & 0x80:  # GNU base-256, for values too large for octal
        if field[0] == 0xFF:
            return int.from_bytes(field, "big", signed=True)
        return int.from_bytes(field[1:], "big")
    digits = field.split(b"\0", 1)[0].strip()
    if digits.isdigit() and b"8" not in digits and b"9" not in digits:
        return int(digits, 8)
    if not digits:
        return 0
    raise _invalid(position, f"bad octal number {digits!r} in a header")


def _pax_records(data: bytes, position: int) -> dict[bytes, bytes]:
    records: dict[bytes, bytes] = {}
    offset = 0
    while offset < len(data) and data[offset] != 0:
        space = data.find(b" ", offset)
        length_text = data[offset:space]
        if space < 0 or not length_text.isdigit():
            raise _invalid(position, "malformed PAX extended header")
        end = offset + int(length_text)
        record = data[space + 1:end]
        if end > len(data) or not record.endswith(b"\n") or b"=" not in record:
            raise _invalid(position, "malformed PAX extended header")
        keyword, _, value = record[:-1].partition(b"=")
        records[keyword] = value
        offset = end
    return records


def _pax_time_ns(value: bytes, position: int) -> int:
    sign = -1 if value.startswith(b"-") else 1
    seconds, _, fraction = value.lstrip(b"-").partition(b".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()):
        raise _invalid(position, f"bad PAX mtime {value!r}")
    return sign * (int(seconds) * 1_000_000_000 + int((fraction + b"000000000")[:9]))


class _TarReader:
    """Reads an uncompressed tar stream strictly in order: no seeking, and `drain` reads
    what follows the end-of-archive marker, so a caller hashing the stream sees it all."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._buffer = b""
        self._view = memoryview(self._buffer)
        self._offset = 0
        self._consumed = 0  # stream bytes before self._buffer
        self.data_left = 0  # unread data bytes of the current entry

    @property
    def position(self) -> int:
        return self._consumed + self._offset

    def _refill(self) -> bool:
        self._consumed += len(self._buffer)
        self._buffer = self._stream.read(_READ_SIZE) or b""
        self._view = memoryview(self._buffer)
        self._offset = 0
        return bool(self._buffer)

    def _take(self, size: int, what: str) -> bytes:
        end = self._offset + size
        if end <= len(self._buffer):
            self._offset = end
            return self._buffer[end - size:end]
        parts = []
        while size:
            if self._offset == len(self._buffer) and not self._refill():
                raise _invalid(self.position, f"the stream ends inside {what} (truncated?)")
            piece = self._buffer[self._offset:self._offset + size]
            self._offset += len(piece)
            size -= len(piece)
            parts.append(piece)
        return b"".join(parts)

    def _skip(self, size: int, name: bytes | None) -> None:
        while size:
            if self._offset == len(self._buffer) and not self._refill():
                what = f"the data of {_shown(name)!r}" if name is not None else "an extended header"
                raise _invalid(self.position, f"the stream ends inside {what} (truncated?)")
            step = min(size, len(self._buffer) - self._offset)
            self._offset += step
            size -= step

    def copy_data(self, fd: int, name: bytes) -> None:
        """Write the current entry's data to `fd`."""
        while self.data_left:
            if self._offset == len(self._buffer) and not self._refill():
                raise _invalid(self.position,
                               f"the stream ends inside the data of {_shown(name)!r} (truncated?)")
            step = min(self.data_left, len(self._buffer) - self._offset)
            chunk = self._view[self._offset:self._offset + step]
            while chunk:
                chunk = chunk[os.write(fd, chunk):]
            self._offset += step
            self.data_left -= step

    def drain(self) -> None:
        self._offset = len(self._buffer)
        while self._refill():
            self._offset = len(self._buffer)

    def entries(self) -> Iterator[_Entry]:
        global_pax: dict[bytes, bytes] = {}
        pax: dict[bytes, bytes] = {}
        long_name = long_link = None
        while True:
            start = self.position
            if self._offset == len(self._buffer) and not self._refill():
                # No end-of-archive blocks: Go's archive/tar (so Docker) takes this as the end,
                # and umoci writes such tars. A stream cut at an entry boundary is for the
                # caller's digest check to catch; a cut inside an entry is caught below.
                if pax or long_name is not None or long_link is not None:
                    raise _invalid(start, "the stream ends right after an extended header")
                return
            block = self._take(_BLOCK, "a tar header")
            if block == _ZERO_BLOCK:
                if pax or long_name is not None or long_link is not None:
                    raise _invalid(start, "the archive ends right after an extended header")
                return
            kind, size, entry = self._parse_header(block, start)
            padding = -size % _BLOCK
            if kind in (b"x", b"g", b"L", b"K"):
                if size > _MAX_METADATA:
                    raise _invalid(start, f"an extended header of {size} bytes (limit {_MAX_METADATA})")
                data = self._take(size, "an extended header")
                self._skip(padding, None)
                if kind == b"x":
                    pax.update(_pax_records(data, start))
                elif kind == b"g":
                    global_pax.update(_pax_records(data, start))
                elif kind == b"L":
                    long_name = data.split(b"\0", 1)[0]
                else:
                    long_link = data.split(b"\0", 1)[0]
                continue
            if kind == b"S" or (pax and any(key.startswith(b"GNU.sparse.") for key in pax)):
                raise _invalid(start, f"{_shown(entry.name)!r} is a sparse file, which layers may "
                                      "not contain (re-create the tar without --sparse)")
            if long_name is not None:
                entry.name = long_name
            if long_link is not None:
                entry.linkname = long_link
            if global_pax or pax:
                size = self._apply_pax({**global_pax, **pax}, entry, size, start)
                padding = -size % _BLOCK
            has_data = kind not in (b"1", b"2", b"3", b"4", b"5", b"6")  # unknown types have data
            entry.size = size if has_data else 0
            self.data_left = entry.size
            pax = {}
            long_name = long_link = None
            yield entry
            if self.data_left:
                self._skip(self.data_left, entry.name)
                self.data_left = 0
            if has_data and padding:
                if self._offset == len(self._buffer) and not self._refill():
                    return  # the data ends the stream, without padding: as Go, the end
                self._skip(padding, entry.name)

    @staticmethod
    def _parse_header(block: bytes, start: int) -> tuple[bytes, int, _Entry]:
        # mode, uid, gid, size, mtime, checksum: usually NUL- or space-terminated octal
        numbers = block[100:156].replace(b"\0", b" ").split()
        fields: tuple[int, ...] | None = None
        try:
            if len(numbers) != 6:
                raise ValueError
            *parsed, stored = (int(number, 8) for number in numbers)
            fields = tuple(parsed)
        except ValueError:  # base-256, empty or malformed fields: checked one at a time below
            try:
                stored = _number(block[148:156], start) if block[148:156].strip(b" \0") else -1
            except InvalidArchive:
                stored = -1
        unsigned = sum(block) - sum(block[148:156]) + 256  # the checksum field counts as spaces
        if stored != unsigned:
            signed = sum(b - 256 if b > 127 else b for b in block[:148] + block[156:]) + 256
            if stored != signed:
                if start == 0:
                    raise _invalid(0, _what_it_is_instead(block))
                raise _invalid(start, "bad header checksum (corrupt data)")
        if fields is None:
            fields = tuple(_number(block[offset:offset + length], start)
                           for offset, length in ((100, 8), (108, 8), (116, 8), (124, 12), (136, 12)))
        mode, uid, gid, size, mtime = fields
        entry = _Entry()
        name = block[:100].split(b"\0", 1)[0]
        if block[257:263] == b"ustar\0" and block[345] != 0:  # POSIX ustar: prefix/name
            name = block[345:500].split(b"\0", 1)[0] + b"/" + name
        entry.name = name
        entry.type = kind = block[156:157]
        entry.linkname = block[157:257].split(b"\0", 1)[0]
        entry.uid, entry.gid = uid, gid
        entry.mode = mode & 0o7777
        entry.mtime_ns = mtime * 1_000_000_000
        if size < 0:
            raise _invalid(start, "negative entry size")
        return kind, size, entry

    @staticmethod
    def _apply_pax(records: dict[bytes, bytes], entry: _Entry, size: int, start: int) -> int:
        for keyword, value in records.items():
            if not value:  # an empty value cancels the keyword: the header's value stands
                continue
            if keyword == b"path":
                entry.name = value
            elif keyword == b"linkpath":
                entry.linkname = value
            elif keyword in (b"size", b"uid", b"gid"):
                if not value.isdigit():
                    raise _invalid(start, f"bad PAX {keyword.decode()} {value!r}")
                if keyword == b"size":
                    size = int(value)
                else:
                    setattr(entry, keyword.decode(), int(value))
            elif keyword == b"mtime":
                entry.mtime_ns = _pax_time_ns(value, start)
            elif keyword.startswith(b"SCHILY.xattr."):
                if entry.xattrs is None:
                    entry.xattrs = {}
                entry.xattrs[keyword[len(b"SCHILY.xattr."):]] = value
        return size


def _what_it_is_instead(block: bytes) -> str:
    if block.startswith(b"\x1f\x8b"):
        return "this is gzip data, not a tar (decompress the layer before applying it)"
    if block.startswith(b"\x28\xb5\x2f\xfd"):
        return "this is zstd data, not a tar (decompress the layer before applying it)"
    if block.startswith(b"BZh"):
        return "this looks like bzip2 data, not a tar (decompress the layer first)"
    return "this is not a tar archive (bad header checksum at the first header)"


# -- applying ---------------------------------------------------------------------------


def apply_layer(tar_stream: BinaryIO, target: Path, whiteouts: str = "delete",
                max_bytes: int | None = None) -> int:
    """Unpack the uncompressed layer tar `tar_stream` into the directory `target`.

    whiteouts="delete": `target` holds a full copy of the parent layer (vfs). `.wh.NAME`
    deletes NAME; `.wh..wh..opq` deletes everything in its directory that this layer
    did not bring itself (wherever the marker sits in the tar).
    whiteouts="overlay": `target` is an overlayfs upper dir. `.wh.NAME` becomes a 0/0
    character device NAME; `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its
    directory. A directory that replaces a whiteout of this same layer is made opaque.

    Kept: regular files, directories, symlinks (never followed), hard links (to entries
    of this layer, and in "delete" mode to files of the parent copy), FIFOs, mode
    (setuid bits included), mtime, xattrs (PAX `SCHILY.xattr.*`, except overlayfs'
    `trusted.overlay.*`, which only whiteouts may produce), and uid/gid when running as
    root. Character and block devices are skipped with one logged warning: containers get
    /dev from the runtime, and device nodes in images are a way to reach host hardware.
    Missing parent directories are created 0755, as Docker does.

    Leading "/" is stripped (paths are relative to the layer root, as in Docker). The tar
    is rejected with `UnsafeArchive` for `..` components, paths through a symlink, hard
    links to anything outside the layer, and content beyond `max_bytes`; with
    `InvalidArchive` (a subclass) for corrupt, truncated, compressed or non-tar data.
    Nothing is ever written outside `target`; on error `target` is left half-applied for
    the caller to discard.

    The stream is read sequentially (never seeked) and, on success, to its very end, so
    a caller hashing it sees every byte. As with Docker's (Go's) tar reader, a stream
    that stops at an entry boundary without the end-of-archive blocks, or right after an
    entry's data without its padding, is complete (umoci writes such tars); one that stops
    inside a header or inside data is not. Returns the bytes of regular-file content written.
    """
    if whiteouts not in ("delete", "overlay"):
        raise ValueError(f"whiteouts must be 'delete' or 'overlay', not {whiteouts!r}")
    reader = _TarReader(tar_stream)
    with _Extractor(Path(target), overlay=whiteouts == "overlay", max_bytes=max_bytes) as extractor:
        for entry in reader.entries():
            try:
                extractor.apply(entry, reader)
            except UnsafeArchive:
                raise
            except OSError as exc:
                if exc.errno in _ERRORS_CAUSED_BY_THE_TAR:
                    raise InvalidArchive(
                        f"cannot apply layer entry {_shown(entry.name)!r}: {exc.strerror}; "
                        "the layer was rejected (the image is broken: rebuild it)"
                    ) from exc
                exc.add_note(f"while applying layer entry {_shown(entry.name)!r} into {target}")
                raise
        extractor.finish()
    reader.drain()
    return extractor.written_bytes


_ERRORS_CAUSED_BY_THE_TAR = {errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTDIR, errno.EISDIR,
                             errno.EINVAL, errno.EEXIST, errno.EMLINK, errno.ENOTEMPTY}


class _Extractor:
    """Applies entries under one root, resolving every path from directory fds."""

    def __init__(self, target: Path, overlay: bool, max_bytes: int | None) -> None:
        self.overlay = overlay
        self.max_bytes = max_bytes
        self.as_root = os.geteuid() == 0
        self.written_bytes = 0
        self.root_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        # Open directories by path relative to the root; b"" is the root itself.
        self.dir_fds: dict[bytes, int] = {b"": self.root_fd}
        # Paths this layer brought (delete mode): an opaque marker must keep them.
        self.brought: set[bytes] = set()
        self.deferred_dirs: list[tuple[bytes, int, int]] = []  # (path, mode, mtime_ns)
        self.skipped_devices: list[bytes] = []
        self.dropped_xattrs: set[bytes] = set()

    def __enter__(self) -> _Extractor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for fd in self.dir_fds.values():
            os.close(fd)
        self.dir_fds = {}

    # -- paths ------------------------------------------------------------------------

    @staticmethod
    def relative(name: bytes, entry_name: bytes) -> bytes:
        if b"\0" in name:
            raise _unsafe(entry_name, "the path contains a NUL byte")
        parts = [part for part in name.split(b"/") if part and part != b"."]
        if b".." in parts:
            raise _unsafe(entry_name, "its path climbs out of the layer with '..'")
        return b"/".join(parts)

    def forget_dirs(self, removed: bytes) -> None:
        """Close the cached fds of the directory `removed` and of everything below it."""
        below = removed + b"/"
        for path in [path for path in self.dir_fds if path == removed or path.startswith(below)]:
            os.close(self.dir_fds.pop(path))

    def trim_cache(self) -> None:
        """Bound the open fds. Only called between entries, when no fd is held elsewhere."""
        if len(self.dir_fds) >= _MAX_CACHED_DIRS:
            for path in [path for path in self.dir_fds if path]:
                os.close(self.dir_fds.pop(path))

    def dir_fd(self, path: bytes, entry_name: bytes, create: bool, quiet: bool = False) -> int | None:
        """An fd of the directory `path` under the root, reached without following any
        symlink. Missing directories are created 0755 when `create`, else None. A symlink
        on the way raises UnsafeArchive, unless `quiet` (then None)."""
        fd = self.dir_fds.get(path)
        if fd is not None:
            return fd
        parts = path.split(b"/")
        known = len(parts) - 1
        while known and b"/".join(parts[:known]) not in self.dir_fds:
            known -= 1
        fd = self.dir_fds[b"/".join(parts[:known])]
        for index in range(known, len(parts)):
            try:
                child = self._open_child_dir(fd, parts[index], b"/".join(parts[:index + 1]),
                                             entry_name, create, quiet)
            finally:
                if index > known:  # intermediate fds are not cached: deep paths cost no fds
                    os.close(fd)
            if child is None:
                return None
            fd = child
        self.dir_fds[path] = fd
        return fd

    def _open_child_dir(self, parent_fd: int, name: bytes, path: bytes, entry_name: bytes,
                        create: bool, quiet: bool) -> int | None:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            if not create:
                return None
            os.mkdir(name, 0o755, dir_fd=parent_fd)
            if not self.overlay:
                self.brought.add(path)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
            os.fchmod(fd, 0o755)  # whatever the umask
            return fd
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            if quiet:
                return None
            found = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            if stat.S_ISLNK(found.st_mode):
                raise _unsafe(entry_name, f"it would be written through the symlink {_shown(path)!r}") \
                    from None
            if not create:
                return None
            raise InvalidArchive(
                f"invalid layer entry {_shown(entry_name)!r}: {_shown(path)!r} is not a directory; "
                "the layer was rejected (the image is broken: rebuild it)") from None

    def remove(self, parent_fd: int, parent: bytes, name: bytes) -> bool:
        """Remove `name` from the directory `parent` if present (a directory with all its
        content). True when what went away was an overlay whiteout."""
        try:
            found = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(found.st_mode):
            shutil.rmtree(name, dir_fd=parent_fd)
            self.forget_dirs(parent + b"/" + name if parent else name)
        else:
            os.unlink(name, dir_fd=parent_fd)
        return is_overlay_whiteout(found)

    # -- entries ----------------------------------------------------------------------

    def apply(self, entry: _Entry, reader: _TarReader) -> None:
        self.trim_cache()
        path = self.relative(entry.name, entry.name)
        parent, _, base = path.rpartition(b"/")
        if base.startswith(_WH):
            self.whiteout(entry, parent, base)
            return
        kind = entry.type
        if kind in (b"3", b"4"):
            self.skipped_devices.append(path)
            return
        if kind not in _REGULAR_TYPES and kind not in (b"1", b"2", b"5", b"6"):
            log.warning("skipping layer entry %r of tar type %r", _shown(entry.name), kind)
            return
        if not path:
            if kind != b"5":
                raise _unsafe(entry.name, "it names the layer root but is not a directory")
            self.set_owner_and_xattrs(self.root_fd, entry)
            self.deferred_dirs.append((b"", entry.mode, entry.mtime_ns))
            return
        parent_fd = self.dir_fd(parent, entry.name, create=True)
        assert parent_fd is not None
        if not self.overlay:
            self.brought.add(path)
        if kind == b"5":
            self.directory(entry, parent_fd, parent, base)
        elif kind == b"2":
            self.symlink(entry, parent_fd, parent, base)
        elif kind == b"1":
            self.hard_link(entry, parent_fd, parent, base)
        elif kind == b"6":
            self.fifo(entry, parent_fd, parent, base)
        else:
            self.regular_file(entry, parent_fd, parent, base, reader)

    def regular_file(self, entry: _Entry, parent_fd: int, parent: bytes, base: bytes,
                     reader: _TarReader) -> None:
        if self.max_bytes is not None and self.written_bytes + entry.size > self.max_bytes:
            raise _unsafe(entry.name, f"the layer's content exceeds the limit of {self.max_bytes} bytes")
        try:
            fd = os.open(base, _NEW_FILE_FLAGS, 0o600, dir_fd=parent_fd)
        except FileExistsError:
            # Replace, never truncate: the old file may share its inode with a hard link.
            self.remove(parent_fd, parent, base)
            fd = os.open(base, _NEW_FILE_FLAGS, 0o600, dir_fd=parent_fd)
        try:
            reader.copy_data(fd, entry.name)
            if self.as_root:
                os.fchown(fd, entry.uid, entry.gid)
            os.fchmod(fd, entry.mode)  # after chown, which clears setuid bits
            if entry.xattrs:
                self.set_xattrs(fd, entry)
            os.utime(fd, ns=(entry.mtime_ns, entry.mtime_ns))
        finally:
            os.close(fd)
        self.written_bytes += entry.size

    def directory(self, entry: _Entry, parent_fd: int, parent: bytes, base: bytes) -> None:
        path = parent + b"/" + base if parent else base
        replaced_whiteout = False
        try:
            os.mkdir(base, 0o700, dir_fd=parent_fd)
        except FileExistsError:
            found = os.stat(base, dir_fd=parent_fd, follow_symlinks=False)
            if not stat.S_ISDIR(found.st_mode):  # a directory merges; anything else goes
                replaced_whiteout = self.remove(parent_fd, parent, base)
                os.mkdir(base, 0o700, dir_fd=parent_fd)
        fd = self.dir_fd(path, entry.name, create=False)
        assert fd is not None
        self.set_owner_and_xattrs(fd, entry)
        if replaced_whiteout and self.overlay:
            # The layer deleted the lower directory and made a new one: hide the old content.
            os.setxattr(fd, OVERLAY_OPAQUE_XATTR, b"y")
        self.deferred_dirs.append((path, entry.mode, entry.mtime_ns))

    def symlink(self, entry: _Entry, parent_fd: int, parent: bytes, base: bytes) -> None:
        if not entry.linkname or b"\0" in entry.linkname:
            raise _unsafe(entry.name, "a symlink without a valid target")
        try:
            os.symlink(entry.linkname, base, dir_fd=parent_fd)
        except FileExistsError:
            self.remove(parent_fd, parent, base)
            os.symlink(entry.linkname, base, dir_fd=parent_fd)
        self.finish_special(entry, parent_fd, base, chmod=False)

    def fifo(self, entry: _Entry, parent_fd: int, parent: bytes, base: bytes) -> None:
        try:
            os.mkfifo(base, 0o600, dir_fd=parent_fd)
        except FileExistsError:
            self.remove(parent_fd, parent, base)
            os.mkfifo(base, 0o600, dir_fd=parent_fd)
        self.finish_special(entry, parent_fd, base, chmod=True)

    def hard_link(self, entry: _Entry, parent_fd: int, parent: bytes, base: bytes) -> None:
        source = self.relative(entry.linkname, entry.name)
        if not source:
            raise _unsafe(entry.name, "a hard link to the layer root")
        path = parent + b"/" + base if parent else base
        if source == path:
            return
        if source.startswith(path + b"/"):  # replacing its own directory would delete it
            raise _unsafe(entry.name, f"a hard link to {_shown(source)!r}, inside the directory it replaces")
        source_parent, _, source_base = source.rpartition(b"/")
        source_fd = self.dir_fd(source_parent, entry.name, create=False)
        try:
            if source_fd is None:
                raise FileNotFoundError
            found = os.stat(source_base, dir_fd=source_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise _unsafe(entry.name, f"a hard link to {_shown(source)!r}, which is not in the "
                                      "layer (nor, for copied layers, in its parent)") from None
        if stat.S_ISDIR(found.st_mode):
            raise _unsafe(entry.name, f"a hard link to the directory {_shown(source)!r}")
        if stat.S_ISCHR(found.st_mode) or stat.S_ISBLK(found.st_mode):
            raise _unsafe(entry.name, f"a hard link to the device or whiteout {_shown(source)!r}")
        try:
            os.link(source_base, base, src_dir_fd=source_fd, dst_dir_fd=parent_fd,
                    follow_symlinks=False)
        except FileExistsError:
            self.remove(parent_fd, parent, base)
            os.link(source_base, base, src_dir_fd=source_fd, dst_dir_fd=parent_fd,
                    follow_symlinks=False)

    def whiteout(self, entry: _Entry, parent: bytes, base: bytes) -> None:
        if base == _OPQ:
            self.opaque(entry, parent)
            return
        if base.startswith(_WH_META):  # aufs bookkeeping, never content
            return
        hidden = base[len(_WH):]
        if hidden in (b"", b".", b".."):
            raise _unsafe(entry.name, "a whiteout of nothing, '.' or '..'")
        if self.overlay:
            parent_fd = self.dir_fd(parent, entry.name, create=True)
            assert parent_fd is not None
            self.remove(parent_fd, parent, hidden)
            os.mknod(hidden, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent_fd)
            return
        parent_fd = self.dir_fd(parent, entry.name, create=False)
        if parent_fd is not None:
            self.remove(parent_fd, parent, hidden)
            self.brought.discard(parent + b"/" + hidden if parent else hidden)

    def opaque(self, entry: _Entry, path: bytes) -> None:
        fd = self.dir_fd(path, entry.name, create=True)
        assert fd is not None
        if self.overlay:
            os.setxattr(fd, OVERLAY_OPAQUE_XATTR, b"y")
            return
        # Delete everything below that this layer did not bring (keeping the directories
        # that lead to what it brought), wherever in the tar the marker came.
        keep = set()
        for brought in self.brought:
            while brought and brought not in keep:
                keep.add(brought)
                brought = brought.rpartition(b"/")[0]
        pending = [(path, fd, False)]  # (directory, fd, whether we must close the fd)
        try:
            while pending:
                directory, directory_fd, owned = pending.pop()
                try:
                    for name in sorted(os.fsencode(name) for name in os.listdir(directory_fd)):
                        child = directory + b"/" + name if directory else name
                        if child not in keep:
                            self.remove(directory_fd, directory, name)
                        elif stat.S_ISDIR(os.stat(name, dir_fd=directory_fd,
                                                  follow_symlinks=False).st_mode):
                            pending.append((child, os.open(name, _DIR_FLAGS, dir_fd=directory_fd), True))
                finally:
                    if owned:
                        os.close(directory_fd)
        finally:
            for _, directory_fd, owned in pending:
                if owned:
                    os.close(directory_fd)

    # -- metadata ---------------------------------------------------------------------

    def set_owner_and_xattrs(self, fd: int, entry: _Entry) -> None:
        if self.as_root:
            os.fchown(fd, entry.uid, entry.gid)
        if entry.xattrs:
            self.set_xattrs(fd, entry)

    def finish_special(self, entry: _Entry, parent_fd: int, base: bytes, chmod: bool) -> None:
        """Metadata of a symlink or FIFO, which cannot be opened for an fd of their own."""
        if self.as_root:
            os.chown(base, entry.uid, entry.gid, dir_fd=parent_fd, follow_symlinks=False)
        if chmod:  # a FIFO we just made: not a symlink, so following is harmless
            os.chmod(base, entry.mode, dir_fd=parent_fd)
        if entry.xattrs:
            # The kernel resolves the directory fd's /proc link; the last component is not
            # followed. xattr calls take no dir_fd, and a symlink cannot be opened itself.
            self.set_xattrs(os.fsencode(f"/proc/self/fd/{parent_fd}/") + base, entry)
        os.utime(base, ns=(entry.mtime_ns, entry.mtime_ns), dir_fd=parent_fd, follow_symlinks=False)

    def set_xattrs(self, target: int | bytes, entry: _Entry) -> None:
        assert entry.xattrs is not None
        for key, value in entry.xattrs.items():
            if key.startswith(_FOREIGN_XATTR_PREFIXES) or b"\0" in key or not key:
                self.dropped_xattrs.add(key)
                continue
            try:
                if isinstance(target, int):
                    os.setxattr(target, key, value)
                else:
                    os.setxattr(target, key, value, follow_symlinks=False)
            except OSError as exc:
                # Like Docker: a filesystem or file type without this xattr namespace
                # (user.* on symlinks, say) is not a reason to reject the image.
                if exc.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise
                log.warning("layer entry %r: cannot set xattr %r here (%s)", _shown(entry.name),
                            _shown(key), exc.strerror)

    def finish(self) -> None:
        """Directory modes and mtimes go last: adding entries changes a directory's mtime,
        and a read-only directory must still receive its content."""
        for path, mode, mtime_ns in self.deferred_dirs:
            self.trim_cache()
            fd = self.dir_fd(path, path, create=False, quiet=True)
            if fd is None:  # removed, or replaced by a file or symlink, later in the tar
                continue
            os.fchmod(fd, mode)
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        if self.skipped_devices:
            shown = ", ".join(_shown(path) for path in self.skipped_devices[:5])
            log.warning("skipped %d device node(s) in the layer (%s%s): containers get /dev "
                        "from the runtime", len(self.skipped_devices), shown,
                        ", ..." if len(self.skipped_devices) > 5 else "")
        if self.dropped_xattrs:
            log.warning("dropped xattrs that are not layer content: %s",
                        ", ".join(sorted(_shown(key) for key in self.dropped_xattrs)))


# -- writing ----------------------------------------------------------------------------


def _xattrs_of(path: bytes) -> dict[str, str]:
    """The xattrs worth carrying in a tar, as PAX `SCHILY.xattr.*` values."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM):
            return {}
        raise
    found = {}
    for name in names:
        if name.encode().startswith(_FOREIGN_XATTR_PREFIXES):
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError as exc:
            if exc.errno == errno.ENODATA:  # removed since listxattr
                continue
            raise
        found[name] = value.decode("utf-8", "surrogateescape")
    return found


class _TarWriter:
    """Turns (path, lstat) pairs into tar bytes, in ~64 KiB chunks.

    PAX format; mtimes in whole seconds (what Docker writes, and what makes a tar of the
    same tree reproducible); no user or group names; files that share an inode become
    hard links to the first path written."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._links: dict[tuple[int, int], str] = {}

    def _header(self, info: tarfile.TarInfo) -> None:
        self._pending += info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")

    def whiteout(self, path: bytes) -> Iterator[bytes]:
        parent, _, base = path.rpartition(b"/")
        name = (parent + b"/" if parent else b"") + _WH + base
        info = tarfile.TarInfo(os.fsdecode(name))
        info.mode = 0
        self._header(info)
        yield from self._flush(small=True)

    def opaque(self, directory: bytes) -> Iterator[bytes]:
        info = tarfile.TarInfo(os.fsdecode(directory + b"/" + _OPQ))
        info.mode = 0
        self._header(info)
        yield from self._flush(small=True)

    def entry(self, full_path: bytes, path: bytes, found: os.stat_result) -> Iterator[bytes]:
        info = tarfile.TarInfo(os.fsdecode(path))
        mode = found.st_mode
        info.mode = stat.S_IMODE(mode)
        info.uid, info.gid = found.st_uid, found.st_gid
        info.mtime = int(found.st_mtime)
        info.uname = info.gname = ""
        if stat.S_ISREG(mode):
            key = (found.st_dev, found.st_ino)
            if found.st_nlink > 1 and key in self._links:
                info.type = tarfile.LNKTYPE
                info.linkname = self._links[key]
                self._header(info)
                yield from self._flush(small=True)
                return
            if found.st_nlink > 1:
                self._links[key] = info.name
            info.size = found.st_size
        elif stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.fsdecode(os.readlink(full_path))
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(found.st_rdev), os.minor(found.st_rdev)
        else:  # sockets have no tar form; a listening socket is runtime state anyway
            return
        xattrs = _xattrs_of(full_path)
        if xattrs:
            info.pax_headers = {f"SCHILY.xattr.{key}": value for key, value in xattrs.items()}
        self._header(info)
        if info.type == tarfile.REGTYPE and info.size:
            yield from self._file_data(full_path, info.size)
        else:
            yield from self._flush(small=True)

    def _file_data(self, full_path: bytes, size: int) -> Iterator[bytes]:
        fd = os.open(full_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            left = size
            while left:
                room = _CHUNK - len(self._pending)
                if room <= 0:
                    yield from self._flush(small=False)
                    continue
                data = os.read(fd, min(left, room))
                if not data:  # the file shrank while we read it: keep the tar well-formed
                    data = bytes(min(left, room))
                self._pending += data
                left -= len(data)
        finally:
            os.close(fd)
        self._pending += bytes(-size % _BLOCK)
        yield from self._flush(small=True)

    def _flush(self, small: bool) -> Iterator[bytes]:
        if self._pending and (not small or len(self._pending) >= _CHUNK):
            yield bytes(self._pending)
            self._pending.clear()

    def end(self) -> Iterator[bytes]:
        self._pending += bytes(2 * _BLOCK)
        yield from self._flush(small=False)


def _names(directory: bytes) -> list[bytes]:
    try:
        return sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _join(root: bytes, path: bytes) -> bytes:
    return root + b"/" + path if path else root


def _walk(root: bytes, start: bytes = b"") -> Iterator[tuple[bytes, os.stat_result]]:
    """Every entry under `root`/`start` (not `start` itself) in a stable order: each
    directory right before its content, names sorted bytewise (so: sorted by path
    components)."""
    stack = [(start, iter(_names(_join(root, start))))]
    while stack:
        directory, names = stack[-1]
        for name in names:
            path = directory + b"/" + name if directory else name
            found = os.lstat(root + b"/" + path)
            yield path, found
            if stat.S_ISDIR(found.st_mode):
                stack.append((path, iter(_names(root + b"/" + path))))
                break
        else:
            stack.pop()


def _tree_order(path: bytes) -> list[bytes]:
    return path.split(b"/")


def tar_directory(path: Path) -> Iterator[bytes]:
    """A tar of everything under `path` (not `path` itself), in chunks of about 64 KiB.

    The order is stable (each directory before its content, names sorted bytewise) and
    mtimes are whole seconds, so the same tree always gives the same bytes. Hard links
    within the tree stay hard links; sockets are left out."""
    root = os.fsencode(path)
    writer = _TarWriter()
    for relative, found in _walk(root):
        yield from writer.entry(root + b"/" + relative, relative, found)
    yield from writer.end()


# -- comparing full trees ----------------------------------------------------------------


def _same_entry(layer_path: bytes, layer: os.stat_result, parent_path: bytes,
                parent: os.stat_result) -> bool:
    if (layer.st_mode, layer.st_uid, layer.st_gid, layer.st_mtime_ns) != \
            (parent.st_mode, parent.st_uid, parent.st_gid, parent.st_mtime_ns):
        return False
    # A directory's size says nothing (ext4 never shrinks one); its mtime does count: a
    # file made and deleted again is a change overlayfs would report too.
    if not stat.S_ISDIR(layer.st_mode) and (layer.st_size, layer.st_rdev) != (parent.st_size, parent.st_rdev):
        return False
    if stat.S_ISLNK(layer.st_mode) and os.readlink(layer_path) != os.readlink(parent_path):
        return False
    return _xattrs_of(layer_path) == _xattrs_of(parent_path)


def _changed_paths(layer_root: bytes, parent_root: bytes | None) -> list[tuple[bytes, str]]:
    """(path, kind) of every change from `parent_root` to `layer_root`, in tree order
    (see `tree_diff` for what counts as a change)."""
    found: dict[bytes, str] = {}
    pending = [b""]
    while pending:
        directory = pending.pop()
        layer_names = _names(_join(layer_root, directory))
        parent_names = set(_names(_join(parent_root, directory))) if parent_root is not None else set()
        for name in layer_names:
            path = directory + b"/" + name if directory else name
            layer_path = layer_root + b"/" + path
            layer = os.lstat(layer_path)
            if name in parent_names:
                parent_path = parent_root + b"/" + path  # type: ignore[operator]
                parent = os.lstat(parent_path)
                both_dirs = stat.S_ISDIR(layer.st_mode) and stat.S_ISDIR(parent.st_mode)
                if not _same_entry(layer_path, layer, parent_path, parent):
                    found[path] = "C"
                if both_dirs:
                    pending.append(path)
                    continue
                if path not in found:
                    continue
            else:
                found[path] = "A"
            if stat.S_ISDIR(layer.st_mode):
                for below, _ in _walk(layer_root, path):
                    found[below] = "A"
        for name in parent_names.difference(layer_names):
            found[directory + b"/" + name if directory else name] = "D"
    for path in list(found):
        parent = path.rpartition(b"/")[0]
        while parent and parent not in found:
            found[parent] = "C"
            parent = parent.rpartition(b"/")[0]
    return sorted(found.items(), key=lambda item: _tree_order(item[0]))


def _as_changes(paths: Iterable[tuple[bytes, str]]) -> list[Change]:
    return sorted((Change("/" + os.fsdecode(path), kind) for path, kind in paths),
                  key=lambda change: change.path)


def tree_changes(layer_dir: Path, parent_dir: Path | None) -> list[Change]:
    """What the full tree `layer_dir` changed relative to the full tree `parent_dir`
    (None: an empty parent), sorted by path. See `tree_diff` for what counts as a change."""
    parent_root = os.fsencode(parent_dir) if parent_dir is not None else None
    return _as_changes(_changed_paths(os.fsencode(layer_dir), parent_root))


def tree_diff(layer_dir: Path, parent_dir: Path | None) -> Iterator[bytes]:
    """The layer tar that turns the full tree `parent_dir` into the full tree
    `layer_dir`: added and changed entries with their content, a `.wh.NAME` for each
    deletion, each directory before its content.

    Entries are compared by metadata, never by content: type, mode, owner, mtime (to the
    nanosecond), size and device number (not for directories), symlink target, xattrs.
    Reading both copies of every file would make `docker commit` read the image twice;
    the price is that a write which restores both the size and the mtime of the
    original goes unnoticed, as in Docker's own naive differ. Below an added or
    replaced directory everything is added; below a deleted one nothing is listed; every
    directory holding a change is itself changed ("C"), so its metadata travels."""
    layer_root = os.fsencode(layer_dir)
    parent_root = os.fsencode(parent_dir) if parent_dir is not None else None
    writer = _TarWriter()
    for path, kind in _changed_paths(layer_root, parent_root):
        if kind == "D":
            yield from writer.whiteout(path)
        else:
            full_path = layer_root + b"/" + path
            yield from writer.entry(full_path, path, os.lstat(full_path))
    yield from writer.end()


# -- overlayfs upper dirs ---------------------------------------------------------------


def is_overlay_whiteout(found: os.stat_result) -> bool:
    """overlayfs marks a deleted lower path with a 0/0 character device in the upper dir."""
    return stat.S_ISCHR(found.st_mode) and found.st_rdev == 0


def _is_opaque(path: bytes) -> bool:
    try:
        return os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP):
            return False
        raise


def overlay_changes(upper_dir: Path, lower_dir: Path | None = None) -> list[Change]:
    """What an overlayfs upper dir changes, sorted by path.

    `lower_dir` is a view of the full filesystem below the upper dir (the parent layer,
    mounted), or None when there is nothing below. It decides "A" (the path is not
    below) from "C" (it is), and lists what an opaque directory hides ("D" for each). A
    0/0 character device is "D". Every entry present in the upper dir is reported: a
    file copied up without a write counts as changed, which is how overlayfs sees it."""
    upper = os.fsencode(upper_dir)
    lower = os.fsencode(lower_dir) if lower_dir is not None else None
    found: list[tuple[bytes, str]] = []
    for path, entry in _walk(upper):
        if is_overlay_whiteout(entry):
            found.append((path, "D"))
            continue
        below = lower is not None and os.path.lexists(lower + b"/" + path)
        found.append((path, "C" if below else "A"))
        if below and stat.S_ISDIR(entry.st_mode) and _is_opaque(upper + b"/" + path):
            present = set(_names(upper + b"/" + path))
            found.extend((path + b"/" + name, "D")
                         for name in _names(lower + b"/" + path)  # type: ignore[operator]
                         if name not in present)
    return _as_changes(found)


def overlay_diff(upper_dir: Path) -> Iterator[bytes]:
    """The OCI layer tar of an overlayfs upper dir: 0/0 character devices become
    `.wh.NAME`, an opaque directory is followed by its `.wh..wh..opq` marker, overlayfs'
    own `trusted.overlay.*` xattrs are left out."""
    upper = os.fsencode(upper_dir)
    writer = _TarWriter()
    for path, entry in _walk(upper):
        full_path = upper + b"/" + path
        if is_overlay_whiteout(entry):
            yield from writer.whiteout(path)
            continue
        yield from writer.entry(full_path, path, entry)
        if stat.S_ISDIR(entry.st_mode) and _is_opaque(full_path):
            yield from writer.opaque(path)
    yield from writer.end()
