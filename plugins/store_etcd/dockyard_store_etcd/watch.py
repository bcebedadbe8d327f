"""`EtcdWatch`: every change under a prefix from a revision on, across endpoint failures.

The gateway streams a watch as JSON lines on one long POST. When the stream breaks
(its member died or restarted), the watch opens a new one on the next endpoint that
answers, from the revision after the last one it delivered, so no change is lost or
repeated. etcd3gw has a watcher too, but it reads the stream on a thread pool that
drops a broken stream without a word and splits lines where HTTP chunks end; a reader
of cluster state must know when its stream ended, so this one reads lines itself.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import requests
from dockyard.plugin import RevisionCompacted, StoreEvent, StoreUnavailable

from dockyard_store_etcd.store import CONNECT_TIMEOUT, decode, encode, range_end

if TYPE_CHECKING:
    from dockyard_store_etcd.store import EtcdStore

log = logging.getLogger(__name__)


class EtcdWatch:
    def __init__(self, store: EtcdStore, full_prefix: str, start_revision: int) -> None:
        self._store = store
        self._prefix = full_prefix
        self._next_revision = max(1, int(start_revision))
        self._closed = threading.Event()
        self._response: requests.Response | None = None

    def __iter__(self) -> Iterator[StoreEvent]:
        try:
            while not self._closed.is_set():
                response = self._open()
                if response is None:  # closed
                    return
                try:
                    yield from self._events(response)
                except (requests.exceptions.RequestException, OSError, ValueError) as exc:
                    if not self._closed.is_set():
                        log.info("watch of %s broke (%s); resuming at revision %d", self._prefix, exc,
                                 self._next_revision)
                finally:
                    response.close()
        finally:
            self._store.forget_watch(self)

    def _events(self, response: requests.Response) -> Iterator[StoreEvent]:
        root = len(self._store.root)
        for line in response.iter_lines(chunk_size=65536):
            if not line:
                continue
            message = json.loads(line)
            result = message.get("result") or {}
            if "error" in message or result.get("canceled"):
                compacted = int(result.get("compact_revision") or 0)
                if compacted:
                    raise RevisionCompacted(
                        f"the cluster store no longer keeps revision {self._next_revision} (compacted "
                        f"to {compacted}): list again and watch from the revision the list returns")
                return  # the member ended this watch: resume on a new stream
            last = 0
            for event in result.get("events") or []:
                kv = event.get("kv") or {}
                revision = int(kv.get("mod_revision") or 0)
                last = max(last, revision)
                yield StoreEvent(kind="delete" if event.get("type") == "DELETE" else "put",
                                 key=decode(kv.get("key"))[root:], value=decode(kv.get("value")),
                                 revision=revision)
            if last:  # all events of one revision arrive in one message
                self._next_revision = last + 1

    def _open(self) -> requests.Response | None:
        request = {"create_request": {"key": encode(self._prefix), "range_end": range_end(self._prefix),
                                      "start_revision": str(self._next_revision)}}
        failures = []
        for endpoint, client in self._store.client_order():
            if self._closed.is_set():
                break
            try:
                response = client.session.post(client.get_url("/watch"), json=request, stream=True,
                                               timeout=(CONNECT_TIMEOUT, None))
            except requests.exceptions.RequestException as exc:
                failures.append(f"{endpoint}: {type(exc).__name__}")
                continue
            if response.status_code != 200:
                failures.append(f"{endpoint}: HTTP {response.status_code}")
                response.close()
                continue
            self._store.answered(client)
            self._response = response
            if self._closed.is_set():  # closed while connecting: close() saw no response yet
                self._shut(response)
            return response
        if self._closed.is_set():
            return None
        raise StoreUnavailable(f"cluster store unreachable: no etcd endpoint accepted a watch "
                               f"({'; '.join(failures)})")

    def close(self) -> None:
        self._closed.set()
        if self._response is not None:
            self._shut(self._response)

    @staticmethod
    def _shut(response: requests.Response) -> None:
        """Unblock a reader waiting on the stream: shut the socket down under it (closing
        the response from another thread leaves that reader blocked in recv)."""
        try:
            raw = response.raw._fp.fp.raw._sock  # urllib3 -> http.client -> socket
            raw.shutdown(socket.SHUT_RDWR)
        except (AttributeError, OSError):
            pass
        response.close()
