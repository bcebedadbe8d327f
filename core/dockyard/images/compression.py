"""Compressed streams: recognise gzip, bzip2, xz and zstd by their magic bytes, and
decompress the first three with the standard library while streaming."""

from __future__ import annotations

import bz2
import lzma
import zlib
from typing import BinaryIO

CHUNK = 1 << 20
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


class UnsupportedCompression(ValueError):
    pass


def sniff(head: bytes) -> str | None:
    return next((name for magic, name in _MAGIC if head.startswith(magic)), None)


class _Decompressor:
    """Decompresses on demand, never producing more than the caller asked for, so memory
    stays bounded whatever the compression ratio (a small bomb cannot fill it)."""

    def __init__(self, source: BinaryIO, head: bytes, kind: str) -> None:
        self._source = source
        self._input = head
        self._kind = kind
        self._engine = self._new_engine()

    def _new_engine(self):
        if self._kind == "gzip":
            return zlib.decompressobj(47)  # 32 + 15: expect a gzip header, any window size
        if self._kind == "bzip2":
            return bz2.BZ2Decompressor()
        return lzma.LZMADecompressor()

    def _has_buffered_output(self) -> bool:
        return not getattr(self._engine, "needs_input", True)

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            return b"".join(iter(lambda: self.read(CHUNK), b""))
        while True:
            if self._engine.eof:
                leftover = self._engine.unused_data
                if not leftover and not self._input:
                    leftover = self._source.read(CHUNK)
                if not leftover and not self._input:
                    return b""
                # several compressed members back to back (pigz, pbzip2): start the next one
                self._input = leftover + self._input
                self._engine = self._new_engine()
            if not self._input and not self._has_buffered_output():
                self._input = self._source.read(CHUNK)
                if not self._input:
                    raise EOFError(f"{self._kind} stream ended before its end marker")
            data, self._input = self._input, b""
            out = self._engine.decompress(data, size)
            if self._kind == "gzip" and not self._engine.eof:
                # at the end of a member zlib reports the rest in unused_data (and, when
                # output was capped, in unconsumed_tail as well): take it from one place
                self._input = self._engine.unconsumed_tail
            if out:
                return out


class _Prefixed:
    """A stream with bytes already read from it put back in front."""

    def __init__(self, source: BinaryIO, head: bytes) -> None:
        self._source = source
        self._head = head

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._source.read(size)
        if size < 0:
            data, self._head = self._head + self._source.read(), b""
            return data
        data, self._head = self._head[:size], self._head[size:]
        if len(data) < size:
            data += self._source.read(size - len(data))
        return data


def decompressed(source: BinaryIO) -> BinaryIO:
    """`source` itself if it is not compressed, else a decompressing reader over it."""
    head = b""
    while len(head) < 6:
        data = source.read(6 - len(head))
        if not data:
            break
        head += data
    kind = sniff(head)
    if kind is None:
        return _Prefixed(source, head)
    if kind == "zstd":
        raise UnsupportedCompression("zstd-compressed archives are not supported yet: "
                                     "decompress with `zstd -d` first")
    return _Decompressor(source, head, kind)
