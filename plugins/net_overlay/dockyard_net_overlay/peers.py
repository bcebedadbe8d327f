"""Where every endpoint of the cluster's overlay networks is: this host's own announced in
the cluster store, the other hosts' followed from it.

Each local endpoint is one key, `drivers/overlay/peers/<network>/<endpoint>`, holding its
MAC, IP and the VTEP (the advertised address of its host), attached to the node's lease:
a host that dies takes its peers out of the store when its lease expires. A follower
(`dockyard.plugin.following`) keeps a copy of the prefix current and hands every remote
peer that appears or goes to the driver, which programs or removes its forwarding and
neighbour entries; after the store was away, the difference is applied, so nothing is
missed.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from ipaddress import IPv4Address

from dockyard.plugin import StoreUnavailable
from dockyard.plugin.following import PrefixFollower

PEERS = "drivers/overlay/peers/"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Peer:
    network_id: str
    endpoint_id: str
    mac: str
    address: str
    vtep: str
    node: str

    @property
    def key(self) -> str:
        return f"{PEERS}{self.network_id}/{self.endpoint_id}"

    @property
    def ip(self) -> IPv4Address:
        return IPv4Address(self.address)

    @classmethod
    def parse(cls, value: str) -> Peer | None:
        try:
            return cls(**json.loads(value))
        except (ValueError, TypeError):
            return None


class PeerTable:
    def __init__(self, node, program: Callable[[Peer], None], unprogram: Callable[[Peer], None]) -> None:
        self._node = node
        self._program = program
        self._unprogram = unprogram
        self._lock = threading.Lock()
        self.local: dict[str, Peer] = {}
        self._follower = PrefixFollower(node.store, PEERS, self._changed)

    def start(self) -> None:
        self._follower.start()

    def stop(self) -> None:
        self._follower.stop()

    # -- this host's endpoints ---------------------------------------------------------

    def announce(self, peer: Peer) -> None:
        """Raises StoreError when the store cannot take it: a join must not half-succeed."""
        if not self._node.lease:
            raise StoreUnavailable("this daemon has not joined the cluster store yet")
        self._node.store.commit({}, put={peer.key: json.dumps(asdict(peer))}, lease=self._node.lease)
        with self._lock:
            self.local[peer.key] = peer

    def withdraw(self, peer: Peer) -> None:
        with self._lock:
            self.local.pop(peer.key, None)
        self._node.store.commit({}, delete=[peer.key])

    def reannounce(self) -> None:
        """After the node (re)joined, perhaps with a new lease: every local peer again."""
        with self._lock:
            local = list(self.local.values())
        if local and self._node.lease:  # without a lease yet, the join calls this again
            self._node.store.commit({}, put={p.key: json.dumps(asdict(p)) for p in local},
                                    lease=self._node.lease)

    def remote_of(self, network_id: str) -> list[Peer]:
        peers = (Peer.parse(value) for value in self._follower.entries().values())
        return [p for p in peers if p is not None and p.network_id == network_id and self._remote(p)]

    # -- the others' ---------------------------------------------------------------------

    def _remote(self, peer: Peer) -> bool:
        return peer.node != self._node.node_id

    def _changed(self, key: str, old: str | None, new: str | None) -> None:
        before = Peer.parse(old) if old else None
        after = Peer.parse(new) if new else None
        if before is not None and self._remote(before):
            self._apply(self._unprogram, before)
        if after is not None and self._remote(after):
            self._apply(self._program, after)

    @staticmethod
    def _apply(change: Callable[[Peer], None], peer: Peer) -> None:
        try:
            change(peer)
        except Exception as exc:  # one bad entry must not stop the others
            log.warning("overlay peer %s on network %s: %s", peer.address, peer.network_id[:12], exc)
