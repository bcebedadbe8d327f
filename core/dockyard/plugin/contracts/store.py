"""The cluster store contract: the small key-value API through which daemons share state.

Several dockyardd daemons form a cluster by pointing `--cluster-store` at one store
(etcd, or any other a plugin provides): global networks, their address allocations and
the hosts' endpoints live there, so every daemon sees the same ones. The contract is
etcd v3's model cut to what that needs:

- keys and values are strings; keys are '/'-separated paths relative to the daemon's
  prefix (the store adds and strips it);
- every change bumps one store-wide `revision`; an entry carries the revision of its
  last change (`StoreEntry.revision`), which is what compare-and-swap compares;
- `commit` is the only write: a transaction that applies its puts and deletes only if
  every expected revision holds (0 = the key must be absent), so several daemons
  allocating at once never both win;
- a lease is a time-to-live that keys can be attached to: when its holder stops
  renewing it (the daemon died, or lost the store), the store deletes those keys;
- `watch` streams every change under a prefix from a revision on, so a reader lists
  once, then follows changes without missing or repeating one.

An implementation talks to every endpoint it was given and moves to another when one
stops answering; only when none answers does a call raise `StoreUnavailable`, whose
message names the endpoints.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class StoreEntry:
    key: str
    value: str
    revision: int  # the store revision of the entry's last change (etcd's mod_revision)
    lease: int = 0  # the lease the entry is attached to, 0 for none


@dataclass(frozen=True)
class StoreEvent:
    """One change seen by a watch: `value` is "" for a delete."""

    kind: str  # "put" or "delete"
    key: str
    value: str
    revision: int


class StoreError(Exception):
    """A failure the user can act on; its message says what to do."""


class StoreUnavailable(StoreError):
    """No endpoint of the store answered."""


class RevisionCompacted(StoreError):
    """A watch asked for a revision the store no longer keeps: list again and watch
    from the revision that listing returns."""


@runtime_checkable
class StoreWatch(Protocol):
    def __iter__(self) -> Iterator[StoreEvent]:
        """Events in revision order, blocking until the next one. Ends after `close`;
        raises StoreUnavailable when no endpoint can be reached to resume from, or
        RevisionCompacted."""

    def close(self) -> None:
        """End the watch; an iteration blocked in another thread returns."""


@runtime_checkable
class ClusterStore(Protocol):
    endpoints: Sequence[str]
    """What the store was given to reach, for messages (`host:port` each)."""

    def get(self, key: str) -> StoreEntry | None:
        """The entry at `key`, or None."""

    def list(self, prefix: str) -> tuple[list[StoreEntry], int]:
        """Every entry whose key starts with `prefix`, sorted by key, and the store
        revision they were read at (watch from that revision + 1 to follow them)."""

    def commit(self, expect: Mapping[str, int], put: Mapping[str, str] = {},
               delete: Iterable[str] = (), lease: int = 0) -> bool:
        """If every key in `expect` has that revision (0: is absent), write `put` (attached
        to `lease` unless it is 0) and delete `delete`, all at once, and return True;
        else change nothing and return False."""

    def grant(self, ttl: int) -> int:
        """A new lease of `ttl` seconds; returns its id."""

    def keep_alive(self, lease: int) -> bool:
        """Renew a lease; False when it has expired (its keys are gone)."""

    def revoke(self, lease: int) -> None:
        """End a lease now, deleting its keys; a lease already gone is not an error."""

    def watch(self, prefix: str, start_revision: int) -> StoreWatch:
        """Follow every change under `prefix` from `start_revision` (inclusive) on."""

    def close(self) -> None:
        """Release connections; watches still open end."""


@runtime_checkable
class ClusterNode(Protocol):
    """This daemon's place in its cluster, as drivers see it (`DriverContext.cluster`).

    Keys a driver writes go under `drivers/<driver name>/` of `store`. What must vanish
    when this host dies (where its endpoints are, say) is attached to `lease`, which can
    change: after the store was lost long enough for the lease to expire, the node
    registers with a new one and calls every `on_join` listener, which must write such
    keys again."""

    node_id: str
    address: str  # the address other hosts reach this one at (--cluster-advertise)
    store: ClusterStore
    lease: int

    def on_join(self, listener) -> None:
        """Call `listener()` after each (re)registration of this node."""
