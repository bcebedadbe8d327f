"""Receiving a directory from a client session: FileSync's DiffCopy, fsutil's protocol.

The client walks the directory and sends one STAT packet per entry, then an empty STAT;
the receiver asks for the contents of regular files by their index in that listing
(REQ), the client answers with DATA packets (an empty one ends a file), and FIN ends
the exchange. Modes are Go's os.FileMode bits. Nothing is written outside the
destination: paths are checked, and parents must be directories this receiver made.
"""

from __future__ import annotations

import os
import posixpath
import queue
import stat as stat_module
from pathlib import Path

from dockyard.builder.buildkit.wire import filesync_pb2_grpc, wire_pb2
from dockyard.errors import InvalidParameter

# Go os.FileMode type bits (io/fs)
GO_DIR = 1 << 31
GO_SYMLINK = 1 << 27
GO_TYPE_BITS = (1 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)
GO_SETUID, GO_SETGID, GO_STICKY = 1 << 23, 1 << 22, 1 << 20

Packet = wire_pb2.Packet


def _unix_permissions(mode: int) -> int:
    permissions = mode & 0o777
    if mode & GO_SETUID:
        permissions |= stat_module.S_ISUID
    if mode & GO_SETGID:
        permissions |= stat_module.S_ISGID
    if mode & GO_STICKY:
        permissions |= stat_module.S_ISVTX
    return permissions


def _inside(destination: Path, relative: str) -> Path:
    clean = posixpath.normpath(relative)
    if not relative or clean.startswith(("../", "/")) or clean in ("..", "."):
        raise InvalidParameter(f"the client sent a path outside the build context: {relative!r}")
    return destination / clean


class _Receiver:
    def __init__(self, destination: Path) -> None:
        self.destination = destination
        self.directories = {destination}
        self.listing: list = []
        self.files: dict[int, Path] = {}
        self.open: dict[int, object] = {}
        self.times: list[tuple[Path, int, int]] = []

    def _parent_ok(self, path: Path) -> None:
        if path.parent not in self.directories:
            raise InvalidParameter(f"the client sent {path.relative_to(self.destination)} "
                                   "before its directory")

    def add(self, entry) -> None:
        index = len(self.listing)
        self.listing.append(entry)
        path = _inside(self.destination, entry.path)
        self._parent_ok(path)
        if entry.mode & GO_DIR:
            path.mkdir(exist_ok=True)
            os.chmod(path, _unix_permissions(entry.mode))
            self.directories.add(path)
        elif entry.mode & GO_SYMLINK:
            os.symlink(entry.linkname, path)
        elif entry.mode & GO_TYPE_BITS:
            return  # devices, pipes and sockets have no place in a build context
        elif entry.linkname:  # a hard link to an entry sent before
            os.link(_inside(self.destination, entry.linkname), path, follow_symlinks=False)
        else:
            self.files[index] = path
            with open(path, "wb"):
                pass
            os.chmod(path, _unix_permissions(entry.mode))
        self.times.append((path, entry.modTime, entry.mode))

    def data(self, packet) -> bool:
        """True when the packet ended a file."""
        path = self.files.get(packet.ID)
        if path is None:
            raise InvalidParameter(f"the client sent data for an entry not asked for ({packet.ID})")
        handle = self.open.get(packet.ID)
        if handle is None:
            handle = self.open[packet.ID] = open(path, "ab")
        if packet.data:
            handle.write(packet.data)
            return False
        handle.close()
        del self.open[packet.ID]
        return True

    def finish(self) -> None:
        for handle in self.open.values():
            handle.close()
        for path, mtime, mode in reversed(self.times):  # children before their directories
            os.utime(path, ns=(mtime, mtime), follow_symlinks=not mode & GO_SYMLINK)


def receive_directory(channel, name: str, destination: Path, follow_paths: list[str] | None = None,
                      include_patterns: list[str] | None = None,
                      exclude_patterns: list[str] | None = None) -> int:
    """The client's local directory `name` ("context", "dockerfile") into `destination`
    (existing, empty); the client leaves out what `exclude_patterns` (.dockerignore's
    lines) match. Returns the number of entries received."""
    metadata = [("dir-name", name)]
    metadata += [("followpaths", path) for path in follow_paths or ()]
    metadata += [("include-patterns", pattern) for pattern in include_patterns or ()]
    metadata += [("exclude-patterns", pattern) for pattern in exclude_patterns or ()]
    outbox: queue.Queue = queue.Queue()

    def requests():
        while (packet := outbox.get()) is not None:
            yield packet

    receiver = _Receiver(Path(destination))
    stub = filesync_pb2_grpc.FileSyncStub(channel)
    replies = stub.DiffCopy(requests(), metadata=metadata)
    pending = 0
    try:
        for packet in replies:
            if packet.type == Packet.PACKET_STAT:
                if packet.HasField("stat"):
                    receiver.add(packet.stat)
                    continue
                for index in receiver.files:  # the listing is complete: ask for every file
                    outbox.put(Packet(type=Packet.PACKET_REQ, ID=index))
                pending = len(receiver.files)
                if not pending:
                    outbox.put(Packet(type=Packet.PACKET_FIN))
            elif packet.type == Packet.PACKET_DATA:
                if receiver.data(packet):
                    pending -= 1
                    if not pending:
                        outbox.put(Packet(type=Packet.PACKET_FIN))
            elif packet.type == Packet.PACKET_ERR:
                reason = packet.data.decode(errors="replace")
                raise InvalidParameter(f"the client could not send {name}: {reason}")
            elif packet.type == Packet.PACKET_FIN:
                break
    finally:
        outbox.put(None)
        replies.cancel()
    receiver.finish()
    return len(receiver.listing)
