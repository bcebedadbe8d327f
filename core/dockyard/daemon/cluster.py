"""This daemon's membership in a cluster: its node record in the cluster store, kept
alive under a lease, and the peers it sees there.

The node registers `nodes/<daemon id>` (name, advertised address, version) attached to
a lease it renews every `discovery.heartbeat` seconds; when the daemon dies the renewals
stop, the lease expires after `discovery.ttl` seconds and the store deletes the record,
with every other key the daemon attached to the lease (its endpoints, its addresses).

A daemon whose store cannot be reached still starts: local networks work, `info` says
the store is unreachable, and the membership keeps trying; on (re)joining it tells its
listeners, which announce again what this host holds. A clean stop does not revoke the
lease: containers keep running through a daemon restart, and so must their presence
in the cluster. The lease id is kept in the exec root, so a daemon that comes back
before it expired (restarted, or killed with SIGKILL) renews the same one.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

from dockyard import __version__
from dockyard.daemon.config import ClusterStoreURL
from dockyard.plugin.contracts.store import ClusterStore, StoreError

log = logging.getLogger(__name__)

DEFAULT_TTL = 20
NODES = "nodes/"
_SIOCGIFADDR = 0x8915


class ClusterConfigError(Exception):
    """--cluster-advertise or a cluster store option is unusable; the message says why."""


def resolve_advertise(text: str) -> str:
    """`10.0.0.5`, `10.0.0.5:2376`, `eth0` or `eth0:2376` (Docker's forms) -> the IPv4
    address other hosts reach this one at; a port is accepted and not used."""
    host = text.strip()
    if host.count(":") == 1:
        host, _, port = host.partition(":")
        if not port.isdigit():
            raise ClusterConfigError(f"--cluster-advertise {text!r}: the part after ':' must be a port")
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    request = struct.pack("256s", host.encode()[:15])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            reply = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
        except OSError:
            raise ClusterConfigError(f"--cluster-advertise {text!r} is neither an IPv4 address nor an "
                                     "interface with one: give the address other hosts reach this one "
                                     "at") from None
    return socket.inet_ntoa(reply[20:24])


class ClusterMembership:
    def __init__(self, store: ClusterStore, url: ClusterStoreURL, node_id: str, name: str, address: str,
                 options: dict[str, str], state_dir: Path) -> None:
        self.store = store
        self.url = url
        self.node_id = node_id
        self.name = name
        self.address = address
        self.ttl = _positive(options.get("discovery.ttl"), DEFAULT_TTL, "discovery.ttl")
        self.heartbeat = _positive(options.get("discovery.heartbeat"), self.ttl / 3, "discovery.heartbeat")
        if self.heartbeat >= self.ttl:
            raise ClusterConfigError(f"cluster store option discovery.heartbeat ({self.heartbeat:g}s) must "
                                     f"be shorter than discovery.ttl ({self.ttl:g}s), or the lease expires "
                                     "between beats")
        self.lease = 0
        self.state = "joining"
        self.error = ""
        self.peers: list[dict] = []
        self._lease_file = state_dir / "cluster-lease"
        self._listeners: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def store_url(self) -> str:
        return f"{self.url.scheme}://{','.join(self.url.endpoints)}/{self.url.prefix}"

    def on_join(self, listener: Callable[[], None]) -> None:
        """Call `listener` each time this node (re)joins: after a start, after the store
        came back, after its lease expired and a new one was taken."""
        self._listeners.append(listener)

    def start(self) -> None:
        """Join in the background: a store that is slow to answer must not hold up the
        daemon's start (its local networks and containers need no store)."""
        self._thread = threading.Thread(target=self._run, name="cluster membership", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def status(self) -> dict:
        return {"Store": self.store_url, "Advertise": self.address, "NodeID": self.node_id,
                "State": self.state, "Error": self.error, "Peers": list(self.peers)}

    # -- the heartbeat -----------------------------------------------------------------

    def _run(self) -> None:
        self._beat()
        while not self._stop.wait(self.heartbeat if self.state == "joined" else min(self.heartbeat, 2.0)):
            self._beat()

    def _beat(self) -> None:
        joined_now = False
        try:
            if self.lease and not self.store.keep_alive(self.lease):
                log.warning("cluster lease %x expired: registering again", self.lease)
                self.lease = 0
            if not self.lease:
                self._register()
                joined_now = True
            entries, _ = self.store.list(NODES)
            self.peers = [_node(entry.value) for entry in entries]
        except StoreError as exc:
            if self.state != "unreachable":
                log.warning("cluster store %s: %s; local networks keep working, global ones wait for "
                            "it", self.store_url, exc)
            self.state, self.error = "unreachable", str(exc)
            return
        if self.state != "joined":
            log.info("joined the cluster at %s as %s (%s)", self.store_url, self.name, self.address)
        self.state, self.error = "joined", ""
        if joined_now:
            for listener in self._listeners:
                try:
                    listener()
                except Exception:  # one listener's failure must not stop the others or the beat
                    log.exception("a cluster join listener failed")

    def _register(self) -> None:
        lease = self._saved_lease()
        if not (lease and self.store.keep_alive(lease)):
            lease = self.store.grant(int(self.ttl))
            self._lease_file.parent.mkdir(parents=True, exist_ok=True)
            self._lease_file.write_text(f"{lease}\n")
        record = {"ID": self.node_id, "Name": self.name, "Address": self.address, "Version": __version__,
                  "Joined": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self.store.commit({}, put={NODES + self.node_id: json.dumps(record)}, lease=lease)
        self.lease = lease

    def _saved_lease(self) -> int:
        try:
            return int(self._lease_file.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0


def _node(value: str) -> dict:
    try:
        record = json.loads(value)
    except ValueError:
        return {}
    return {key: record.get(key, "") for key in ("ID", "Name", "Address", "Version")}


def _positive(text: str | None, default: float, name: str) -> float:
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise ClusterConfigError(f"cluster store option {name}={text!r} must be a number of seconds above 0")
    return value
