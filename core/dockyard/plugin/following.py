"""Follow a prefix of the cluster store: a local copy of its keys, kept current.

    follower = PrefixFollower(store, "endpoints/", on_change)
    follower.start()            # lists, then watches from the next revision, on a thread
    follower.entries()          # {key: value} as last seen

`on_change(key, old, new)` is called for every key that appears (old None), changes, or
goes (new None). When the watch breaks (the store went away, a revision was compacted)
the follower lists again once the store answers and reports the difference with what it
had, so a reader misses nothing and sees nothing twice: the list-then-watch pattern every
reader of shared state needs, written once for drivers and the engine alike.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from dockyard.plugin.contracts.store import ClusterStore, RevisionCompacted, StoreError

log = logging.getLogger(__name__)

Change = Callable[[str, "str | None", "str | None"], None]


class PrefixFollower:
    def __init__(self, store: ClusterStore, prefix: str, on_change: Change, retry: float = 1.0,
                 on_listed: Callable[[set[str]], None] | None = None) -> None:
        self.store = store
        self.prefix = prefix
        self._on_change = on_change
        self._on_listed = on_listed  # called with the keys of every full listing, once applied
        self._retry = retry
        self._lock = threading.Lock()
        self._entries: dict[str, str] = {}
        self._stop = threading.Event()
        self._watch = None
        self.synced = threading.Event()  # set once a first listing has been applied
        self._thread = threading.Thread(target=self._run, name=f"follow {prefix}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        watch = self._watch
        if watch is not None:
            watch.close()

    def entries(self) -> dict[str, str]:
        with self._lock:
            return dict(self._entries)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                listed, revision = self.store.list(self.prefix)
                current = {entry.key: entry.value for entry in listed}
                self._replace(current)
                if self._on_listed is not None:
                    self._on_listed(set(current))
                self.synced.set()
                self._watch = self.store.watch(self.prefix, revision + 1)
                if self._stop.is_set():
                    self._watch.close()
                for event in self._watch:
                    self._set(event.key, event.value if event.kind == "put" else None)
            except RevisionCompacted:
                continue
            except StoreError as exc:
                log.info("following %s: %s; listing again shortly", self.prefix, exc)
            except Exception:  # the follower must outlive a bug in one callback
                log.exception("following %s failed", self.prefix)
            self._stop.wait(self._retry)

    def _replace(self, current: dict[str, str]) -> None:
        with self._lock:
            before = dict(self._entries)
        for key in before.keys() - current.keys():
            self._set(key, None)
        for key, value in current.items():
            if before.get(key) != value:
                self._set(key, value)

    def _set(self, key: str, value: str | None) -> None:
        with self._lock:
            old = self._entries.get(key)
            if value is None:
                self._entries.pop(key, None)
            else:
                self._entries[key] = value
        if old == value:
            return
        try:
            self._on_change(key, old, value)
        except Exception:  # one bad entry must not stop the others
            log.exception("following %s: handling %s failed", self.prefix, key)
