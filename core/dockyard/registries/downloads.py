"""Blob downloads shared by every pull in progress.

One download per digest at a time, whoever asks for it: a second pull of the same
image joins the first one's downloads instead of fetching the bytes again. At most
`limit` downloads run at once across the daemon (Docker's max-concurrent-downloads);
the rest wait their turn. A download that breaks off mid-blob resumes from the bytes
already written (an HTTP Range request), a bounded number of times.

Bytes go into the content store's ingest area and become a blob only when their
digest and size match the descriptor, so a download never makes a wrong blob
visible. The blob is not leased here: each pull holds the digest in its own lease
before asking, which keeps the blob from collection however the pulls interleave.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from dockyard.images.content import ContentStore, DigestMismatch
from dockyard.plugin.contracts.registry import Unreachable

# Given the offset to start from, a stream of the blob's bytes from there.
Opener = Callable[[int], Iterator[bytes]]
# Told what a download is doing: ("waiting" | "downloading" | "verifying" | "complete", bytes so far)
Listener = Callable[[str, int], None]


class Download:
    def __init__(self, digest: str, size: int) -> None:
        self.digest = digest
        self.size = size
        self.future: Future = Future()
        self._state = ("waiting", 0)
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def listen(self, listener: Listener) -> None:
        """Add a listener; it hears the current state at once, then every change."""
        with self._lock:
            self._listeners.append(listener)
            state = self._state
        listener(*state)

    def forget(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def tell(self, state: str, done: int) -> None:
        with self._lock:
            self._state = (state, done)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(state, done)


class DownloadPool:
    def __init__(self, content: ContentStore, limit: int, attempts: int = 5) -> None:
        self.content = content
        self.attempts = attempts
        self._executor = ThreadPoolExecutor(max_workers=max(1, limit), thread_name_prefix="download")
        self._running: dict[str, Download] = {}
        self._lock = threading.Lock()

    def fetch(self, digest: str, size: int, opener: Opener, listener: Listener) -> Download:
        """Start downloading `digest`, or join the download already under way."""
        with self._lock:
            download = self._running.get(digest)
            if download is None:
                download = self._running[digest] = Download(digest, size)
                self._executor.submit(self._run, download, opener)
        download.listen(listener)
        return download

    def _run(self, download: Download, opener: Opener) -> None:
        try:
            self._write(download, opener)
        except BaseException as exc:
            with self._lock:
                self._running.pop(download.digest, None)
            download.future.set_exception(exc)
        else:
            with self._lock:
                self._running.pop(download.digest, None)
            download.tell("complete", download.size)
            download.future.set_result(download.digest)

    def _write(self, download: Download, opener: Opener) -> None:
        with self.content.writer(expected=download.digest, expected_size=download.size) as writer:
            failures = 0
            download.tell("downloading", 0)
            while True:
                start = writer.size
                try:
                    for chunk in opener(writer.size):
                        writer.write(chunk)
                        if writer.size > download.size:
                            raise DigestMismatch(
                                f"blob {download.digest} is longer than the {download.size} bytes "
                                "its descriptor announced")
                        download.tell("downloading", writer.size)
                    break
                except Unreachable:
                    # A stream that keeps breaking without delivering anything is given up on
                    # sooner than one that makes progress between breaks.
                    failures += 1 if writer.size > start else 2
                    if failures >= self.attempts:
                        raise
                    time.sleep(min(0.1 * 2 ** failures, 2.0))
            download.tell("verifying", writer.size)
            writer.commit()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
