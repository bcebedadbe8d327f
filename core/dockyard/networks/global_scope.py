"""Networks of global scope (overlay): records, names, subnets and addresses that live in
the cluster store, so every daemon of a cluster lists the same networks and no two ever
hand out one address.

Keys under the cluster's prefix:
    networks/<id>                 the network's record
    network-names/<name>          its id: a name is unique in the cluster
    subnets/<subnet>              its id: no two global subnets are the same
    addresses/<id>/<ip>           who holds the address (an endpoint's, on its host's lease)
    endpoints/<id>/<endpoint>     name, aliases, address and host of a running endpoint
                                  (on its host's lease): names across hosts, and inspect

Each change is one commit whose comparisons make it all or nothing against every other
daemon: two creating one name, or taking one address, cannot both win. Followers
(`dockyard.plugin.following`) keep this daemon's view of networks and endpoints current;
the manager merges that view with its local networks. What this host holds (its
endpoints' addresses and records) is written again under the node's lease whenever the
node (re)joins, so a lease that expired while the store was away costs nothing lasting.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from dockyard.errors import Conflict, EngineError, Forbidden, NotFound, Unavailable
from dockyard.networks.ipam import check_pool_request, host_routes
from dockyard.plugin.contracts.store import StoreError
from dockyard.plugin.following import PrefixFollower

log = logging.getLogger(__name__)

NETWORKS, NAMES, SUBNETS, ADDRESSES, ENDPOINTS = "networks/", "network-names/", "subnets/", "addresses/", \
    "endpoints/"
# Docker's default pool for overlay networks: /24s of 10.0.0.0/8
GLOBAL_POOL = IPv4Network("10.0.0.0/8")
GLOBAL_SUBNET_PREFIX = 24


def default_global_pools():
    yield from GLOBAL_POOL.subnets(new_prefix=GLOBAL_SUBNET_PREFIX)


class GlobalScope:
    def __init__(self, node, network_type, on_network: Callable[[object | None, object | None], None],
                 cache_dir: Path, pools: Callable = default_global_pools,
                 routes: Callable = host_routes) -> None:
        self.node = node
        self._network_type = network_type  # the manager's Network record class
        self._on_network = on_network
        # the last records seen, so a daemon that restarts while the store is away still
        # knows the networks its running containers are on
        self._cache = cache_dir
        self._cache.mkdir(parents=True, exist_ok=True)
        self._pools = pools
        self._routes = routes
        self._lock = threading.Lock()
        self._mine: dict[str, str] = {}  # keys this host holds on its lease, to write again on a join
        self._networks = PrefixFollower(node.store, NETWORKS, self._network_changed,
                                        on_listed=self._forget_unlisted)
        self._endpoints = PrefixFollower(node.store, ENDPOINTS, lambda *change: None)
        node.on_join(self._rejoined)

    def cached(self) -> list:
        """The global networks as last seen, before the store answers."""
        records = (self._parse(path.read_text()) for path in sorted(self._cache.glob("*.json")))
        return [record for record in records if record is not None]

    def _remember(self, old, new) -> None:
        """Cache what the store says; the create path and the follower both do it, at once."""
        with self._lock:
            if new is not None:
                path = self._cache / f"{new.id}.json"
                temporary = path.with_suffix(".tmp")
                temporary.write_text(json.dumps(asdict(new)))
                os.replace(temporary, path)
            elif old is not None:
                (self._cache / f"{old.id}.json").unlink(missing_ok=True)

    def _forget_unlisted(self, keys: set[str]) -> None:
        """A listing of the store: cached networks it no longer has were removed elsewhere."""
        listed = {key[len(NETWORKS):] for key in keys}
        for record in self.cached():
            if record.id not in listed:
                self._remember(record, None)
                self._on_network(record, None)

    def start(self) -> None:
        self._networks.start()
        self._endpoints.start()

    def stop(self) -> None:
        self._networks.stop()
        self._endpoints.stop()

    def wait_synced(self, timeout: float) -> bool:
        return self._networks.synced.wait(timeout)

    # -- the view ----------------------------------------------------------------------

    def _parse(self, value: str | None):
        if not value:
            return None
        try:
            record = json.loads(value)
            known = {f.name for f in fields(self._network_type)}
            return self._network_type(**{k: v for k, v in record.items() if k in known})
        except (ValueError, TypeError):
            return None

    def _network_changed(self, key: str, old: str | None, new: str | None) -> None:
        before, after = self._parse(old), self._parse(new)
        self._remember(before, after)
        self._on_network(before, after)

    def endpoints_of(self, network_id: str) -> list[dict]:
        prefix = f"{ENDPOINTS}{network_id}/"
        return [json.loads(value) for key, value in self._endpoints.entries().items()
                if key.startswith(prefix)]

    def peers(self, network_id: str) -> list[dict]:
        """Docker's Peers of an overlay network: each host with endpoints on it."""
        hosts: dict[str, dict] = {}
        for endpoint in self.endpoints_of(network_id):
            peer = hosts.setdefault(endpoint.get("Node", ""), {"Name": endpoint.get("NodeName", ""),
                                                               "IP": endpoint.get("NodeAddress", ""),
                                                               "Endpoints": 0})
            peer["Endpoints"] += 1
        return sorted(hosts.values(), key=lambda peer: peer["IP"])

    # -- networks ----------------------------------------------------------------------

    def create(self, network, driver, local_subnets: list[IPv4Network], subnet: IPv4Network | None,
               gateway: str | None, ip_range: str | None) -> None:
        """Give `network` (a record without IPAM yet) a subnet free across the cluster, the
        driver's cluster-wide options, and store it; all or nothing."""
        store = self.node.store
        try:
            taken = [IPv4Network(e.key[len(SUBNETS):].replace("_", "/")) for e in store.list(SUBNETS)[0]]
        except StoreError as exc:
            raise _store_error(exc, f"create network {network.name}") from None
        candidates = [subnet] if subnet is not None else list(self._pools())
        routes = self._routes()
        allocator = driver if hasattr(driver, "allocate_network") else None
        for candidate in candidates:
            clash = [t for t in taken + local_subnets if candidate.overlaps(t)]
            if clash or (subnet is None and any(candidate.overlaps(r) for r in routes)):
                if subnet is not None:
                    raise Forbidden(f"invalid pool request: Pool overlaps with other one on this address "
                                    f"space ({clash[0]})")
                continue
            network.ipam = [_pool(candidate, gateway, ip_range)]
            options = {}
            if allocator is not None:
                options = dict(allocator.allocate_network(network.spec()))
            network.options = {**network.options, **options}
            keys = {f"{NETWORKS}{network.id}": json.dumps(asdict(network)),
                    f"{NAMES}{network.name}": network.id,
                    f"{SUBNETS}{_subnet_key(candidate)}": network.id,
                    f"{ADDRESSES}{network.id}/{network.ipam[0]['Gateway']}": json.dumps({"Gateway": True})}
            try:
                won = store.commit({key: 0 for key in list(keys)[:3]}, put=keys)
            except StoreError as exc:
                self._free(allocator, network)
                raise _store_error(exc, f"create network {network.name}") from None
            if won:
                self._remember(None, network)
                self._on_network(None, network)  # visible here at once, before the follower sees it
                return
            self._free(allocator, network)
            if store.get(f"{NAMES}{network.name}") is not None:
                raise Conflict(f"network with name {network.name} already exists")
            if subnet is not None:
                raise Forbidden(f"invalid pool request: Pool overlaps with other one on this address space "
                                f"({subnet} was just taken by another network)")
            taken.append(candidate)  # lost a race for it: take the next one
        raise Forbidden("could not find an available, non-overlapping IPv4 address pool for the global "
                        "network: give one with --subnet")

    @staticmethod
    def _free(allocator, network) -> None:
        if allocator is not None:
            try:
                allocator.free_network(network.spec())
            except Exception as exc:  # the create's failure is the one to report
                log.warning("freeing what the driver reserved for %s: %s", network.name, exc)

    def remove(self, network, driver) -> None:
        store = self.node.store
        try:
            endpoints = store.list(f"{ENDPOINTS}{network.id}/")[0]
            if endpoints:
                hosts = sorted({json.loads(e.value).get("NodeAddress", "?") for e in endpoints})
                raise Conflict(f"error while removing network: network {network.name} id {network.id} has "
                               f"active endpoints (on {', '.join(hosts)})")
            record = store.get(f"{NETWORKS}{network.id}")
            if record is None:
                raise NotFound(f"network {network.name} not found")
            addresses = [e.key for e in store.list(f"{ADDRESSES}{network.id}/")[0]]
            subnet = network.subnet()
            keys = [record.key, f"{NAMES}{network.name}", *addresses]
            if subnet is not None:
                keys.append(f"{SUBNETS}{_subnet_key(subnet)}")
            if not store.commit({record.key: record.revision}, delete=keys):
                raise Conflict(f"network {network.name} changed while being removed: try again")
        except StoreError as exc:
            raise _store_error(exc, f"remove network {network.name}") from None
        if hasattr(driver, "free_network"):
            driver.free_network(network.spec())
        self._remember(network, None)
        self._on_network(network, None)

    # -- addresses and endpoints -------------------------------------------------------

    def request_address(self, network, wanted: str | None, ip_range: IPv4Network | None,
                        holder: Mapping[str, str]) -> IPv4Interface:
        subnet = network.subnet()
        prefix = f"{ADDRESSES}{network.id}/"
        value = json.dumps({**holder, "Node": self.node.node_id})
        store = self.node.store
        if not self.node.lease:  # an address must die with this host: it needs the host's lease
            raise Unavailable(f"cannot take an address on network {network.name}: this daemon has not joined "
                              f"the cluster store yet ({self.node.error or 'joining'})")
        try:
            if wanted:
                address = IPv4Address(wanted)
                if store.commit({f"{prefix}{address}": 0}, put={f"{prefix}{address}": value},
                                lease=self.node.lease):
                    return self._hold(f"{prefix}{address}", value, address, subnet)
                raise Conflict("Address already in use")
            while True:
                taken = {e.key[len(prefix):] for e in store.list(prefix)[0]}
                free = next((a for a in (ip_range or subnet).hosts() if str(a) not in taken and a in subnet),
                            None)
                if free is None:
                    raise Forbidden(f"no available IPv4 addresses on this network's address pools: {subnet}")
                key = f"{prefix}{free}"
                if store.commit({key: 0}, put={key: value}, lease=self.node.lease):
                    return self._hold(key, value, free, subnet)
        except StoreError as exc:
            raise _store_error(exc, f"take an address on network {network.name}") from None

    def _hold(self, key: str, value: str, address: IPv4Address, subnet: IPv4Network) -> IPv4Interface:
        with self._lock:
            self._mine[key] = value
        return IPv4Interface(f"{address}/{subnet.prefixlen}")

    def release_address(self, network, address: IPv4Interface) -> None:
        self._drop(f"{ADDRESSES}{network.id}/{address.ip}")

    def adopt_address(self, network, address: IPv4Interface, holder: Mapping[str, str]) -> None:
        """A running container's address after a daemon restart: ours again, on our lease."""
        key = f"{ADDRESSES}{network.id}/{address.ip}"
        with self._lock:
            self._mine[key] = json.dumps({**holder, "Node": self.node.node_id})

    def announce(self, network, endpoint_id: str, record: Mapping) -> None:
        key = f"{ENDPOINTS}{network.id}/{endpoint_id}"
        value = json.dumps({**record, "Node": self.node.node_id, "NodeName": getattr(self.node, "name", ""),
                            "NodeAddress": self.node.address})
        with self._lock:
            self._mine[key] = value
        if not self.node.lease:
            return  # written when the node joins (see _rejoined)
        try:
            self.node.store.commit({}, put={key: value}, lease=self.node.lease)
        except StoreError as exc:
            log.warning("endpoint %s not announced yet (%s): it will be once the store answers",
                        endpoint_id[:12], exc)

    def withdraw(self, network, endpoint_id: str) -> None:
        self._drop(f"{ENDPOINTS}{network.id}/{endpoint_id}")

    def _drop(self, key: str) -> None:
        with self._lock:
            self._mine.pop(key, None)
        try:
            self.node.store.commit({}, delete=[key])
        except StoreError as exc:  # the key is on this host's lease: it goes when the lease does
            log.warning("%s stays in the cluster store for now: %s", key, exc)

    def _rejoined(self) -> None:
        """Write this host's keys again under its (perhaps new) lease. An address another
        host took while this one's lease had expired stays theirs: this host's claim is
        dropped with a warning, never written over theirs."""
        with self._lock:
            mine = dict(self._mine)
        store = self.node.store
        for key, value in mine.items() if self.node.lease else ():
            if store.commit({key: 0}, put={key: value}, lease=self.node.lease):
                continue
            current = store.get(key)
            if current is None or json.loads(current.value).get("Node") == self.node.node_id:
                store.commit({key: current.revision if current else 0}, put={key: value},
                             lease=self.node.lease)
            else:
                log.warning("%s was taken by another host while this one was away from the cluster", key)
                with self._lock:
                    self._mine.pop(key, None)

    def remote_names(self, network_id: str, name: str) -> list[IPv4Address]:
        """Addresses of endpoints on other hosts answering to `name` on this network."""
        found = []
        for endpoint in self.endpoints_of(network_id):
            if endpoint.get("Node") == self.node.node_id or not endpoint.get("Address"):
                continue
            if name in (endpoint.get("Names") or []):
                found.append(IPv4Interface(endpoint["Address"]).ip)
        return found


def _store_error(exc: StoreError, doing: str) -> EngineError:
    return Unavailable(f"cannot {doing}: {exc}")


def _subnet_key(subnet: IPv4Network) -> str:
    return str(subnet).replace("/", "_")  # a '/' inside a key would read as a path


def _pool(subnet: IPv4Network, gateway: str | None, ip_range: str | None) -> dict:
    gateway_address, chosen_range = check_pool_request(subnet, gateway, ip_range)
    gateway_address = gateway_address or next(subnet.hosts())
    return {"Subnet": str(subnet), "Gateway": str(gateway_address),
            **({"IPRange": str(chosen_range)} if chosen_range else {})}
