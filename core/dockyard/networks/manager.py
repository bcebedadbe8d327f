"""Networks: their records, and the endpoints that join containers to them.

The manager owns network state (one JSON record per network under
`<data-root>/network/`), and for every endpoint the address (ipam), MAC address, host
ports (ports) and names (dns). Networks of global scope (overlay) keep their record,
subnet and addresses in the cluster store instead (global_scope), merged into the same
view. Drivers do the kernel work and never see one another;
the manager never imports a concrete driver. An endpoint exists while its container
runs: `attach` wires a started container's namespace to its networks and `detach`
unwires it; what the user asked for (static IP, aliases) stays in the container's
record between runs, as Docker keeps it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from dockyard.daemon.events import EventsManager
from dockyard.errors import Conflict, EngineError, Forbidden, InvalidParameter, NotFound
from dockyard.formats.filters import label_filters_match, until_timestamp
from dockyard.networks import ports as port_rules
from dockyard.networks.ipam import LocalIpam, check_pool_request, parse_subnet
from dockyard.plugin.contracts.network import EndpointSpec, NetworkDriverError, NetworkSpec, PortBinding

log = logging.getLogger(__name__)

PREDEFINED = ("bridge", "host", "none")
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
# Docker's: the local bridge through which containers whose networks all span hosts reach
# the outside world and publish ports (its containers cannot talk to each other over it)
_MAC = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$")
GATEWAY_NETWORK = "docker_gwbridge"
GATEWAY_OPTIONS = {BRIDGE_NAME_OPTION: "dy_gwbridge", "com.docker.network.bridge.enable_icc": "false",
                   "com.docker.network.bridge.enable_ip_masquerade": "true"}


def now_rfc3339() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int((now % 1) * 1e9):09d}Z"


@dataclass
class Network:
    id: str
    name: str
    driver: str
    created: str
    internal: bool = False
    attachable: bool = False
    labels: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    ipam: list = field(default_factory=list)  # [{"Subnet", "Gateway", "IPRange"}]
    materialized: bool = True  # its kernel objects exist (the default bridge waits for a first user)
    scope: str = "local"  # "global": the record lives in the cluster store (see global_scope)

    @property
    def predefined(self) -> bool:
        return self.name in PREDEFINED

    @property
    def user_defined(self) -> bool:
        """Docker gives name resolution to user-defined networks only."""
        return not self.predefined

    def subnet(self) -> IPv4Network | None:
        return IPv4Network(self.ipam[0]["Subnet"]) if self.ipam else None

    def gateway(self) -> IPv4Interface | None:
        if not self.ipam or not self.ipam[0].get("Gateway"):
            return None
        return IPv4Interface(f"{self.ipam[0]['Gateway']}/{self.subnet().prefixlen}")

    def ip_range(self) -> IPv4Network | None:
        text = self.ipam[0].get("IPRange") if self.ipam else None
        return IPv4Network(text) if text else None

    def spec(self) -> NetworkSpec:
        subnet = self.subnet()
        return NetworkSpec(network_id=self.id, name=self.name, subnets=(subnet,) if subnet else (),
                           gateway=self.gateway(), internal=self.internal, options=dict(self.options))


@dataclass
class Endpoint:
    """A running container's place on one network."""

    network_id: str
    container_id: str
    container_name: str
    endpoint_id: str
    address: IPv4Interface | None
    mac_address: str
    aliases: list[str]
    hostname: str
    default_route: bool
    ports: list[PortBinding] = field(default_factory=list)
    interface: str = "eth0"
    links: list[str] = field(default_factory=list)  # "container:alias": names only this one resolves

    def spec(self, netns_path: str) -> EndpointSpec:
        return EndpointSpec(endpoint_id=self.endpoint_id, container_id=self.container_id,
                            netns_path=netns_path, network_id=self.network_id, address=self.address,
                            mac_address=self.mac_address, interface_name=self.interface,
                            default_route=self.default_route, ports=tuple(self.ports))


def mac_for(address: IPv4Interface | None) -> str:
    """Docker's scheme: 02:42 and the four bytes of the address (random without one)."""
    raw = address.ip.packed if address is not None else os.urandom(4)
    return "02:42:" + ":".join(f"{byte:02x}" for byte in raw)


class NetworkManager:
    def __init__(self, data_root: Path, drivers: Mapping[str, object], events: EventsManager,
                 bridge_name: str = "dockyard0", bridge_cidr: str | None = None, dns=None,
                 cluster=None) -> None:
        self.root = data_root / "networks"
        self.root.mkdir(parents=True, exist_ok=True)
        self.drivers = drivers
        self.events = events
        self.bridge_name = bridge_name
        self.bridge_cidr = bridge_cidr
        self.dns = dns
        self.ipam = LocalIpam()
        self.ports = port_rules.PortAllocator()
        self._lock = threading.RLock()
        self._networks: dict[str, Network] = {}
        self._endpoints: dict[str, dict[str, Endpoint]] = {}  # network id -> container id -> endpoint
        self._netns: dict[str, str] = {}  # container id -> the namespace its endpoints live in
        self._leaver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="network leave")
        self._leaving: set[Future] = set()
        self._load()
        self.global_scope = None
        if cluster is not None:
            from dockyard.networks.global_scope import GlobalScope

            self.global_scope = GlobalScope(cluster, Network, self._global_network_changed,
                                            self.root / "global")
            for network in self.global_scope.cached():
                self._global_network_changed(None, network)
            self.global_scope.start()

    # -- records ---------------------------------------------------------------------

    def _load(self) -> None:
        for path in sorted(self.root.glob("*.json")):
            try:
                network = Network(**json.loads(path.read_text()))
            except (ValueError, TypeError) as exc:
                log.warning("ignoring unreadable network record %s: %s", path, exc)
                continue
            self._networks[network.id] = network
            if network.subnet() is not None:
                self.ipam.reserve_pool(network.subnet())
                if network.gateway() is not None:
                    self.ipam.reserve_address(network.subnet(), network.gateway().ip)

    def _save(self, network: Network) -> None:
        if network.scope == "global":
            return  # the cluster store holds it
        path = self.root / f"{network.id}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(network)))
        os.replace(temporary, path)

    def ensure_predefined(self) -> None:
        """Docker's three networks: bridge (when a bridge driver runs), host and none."""
        for name, driver in (("host", "host"), ("none", "null")):
            if self._by_name(name) is None:
                network = Network(id=secrets.token_hex(32), name=name, driver=driver, created=now_rfc3339())
                self._networks[network.id] = network
                self._save(network)
        if "bridge" in self.drivers and self._by_name("bridge") is None:
            try:
                self.create("bridge", "bridge", subnet=self.bridge_cidr and str(
                    IPv4Interface(self.bridge_cidr).network), gateway=self.bridge_cidr and str(
                    IPv4Interface(self.bridge_cidr).ip),
                    options={BRIDGE_NAME_OPTION: self.bridge_name,
                             "com.docker.network.bridge.default_bridge": "true"},
                    predefined=True, deferred=True)
            except EngineError as exc:
                log.warning("the default bridge network could not be created: %s", exc)

    def _global_network_changed(self, old: Network | None, new: Network | None) -> None:
        """The cluster store's view changed: a global network appeared, changed or went."""
        gone = None
        with self._lock:
            if new is not None:
                new.scope = "global"
                current = self._networks.get(new.id)
                new.materialized = current.materialized if current is not None else False
                if current is None and new.subnet() is not None:
                    self.ipam.reserve_pool(new.subnet())  # local networks keep off its subnet
                self._networks[new.id] = new
            elif old is not None:
                gone = self._networks.pop(old.id, None)
                if gone is not None and gone.subnet() is not None:
                    self.ipam.release_pool(gone.subnet())
        if gone is not None and gone.materialized:
            driver = self.drivers.get(gone.driver)
            if driver is not None:
                try:
                    driver.delete_network(gone.id)
                except Exception as exc:
                    log.warning("deleting the devices of removed network %s: %s", gone.name, exc)

    def _by_name(self, name: str) -> Network | None:
        return next((n for n in self._networks.values() if n.name == name), None)

    def get(self, name_or_id: str) -> Network:
        with self._lock:
            if name_or_id in self._networks:
                return self._networks[name_or_id]
            named = self._by_name(name_or_id)
            if named is not None:
                return named
            matches = [n for n in self._networks.values() if n.id.startswith(name_or_id)] \
                if name_or_id else []
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise NotFound(f"network {name_or_id} is ambiguous ({len(matches)} matches)")
        raise NotFound(f"network {name_or_id} not found")

    def find(self, name_or_id: str) -> Network | None:
        try:
            return self.get(name_or_id)
        except NotFound:
            return None

    def all(self) -> list[Network]:
        with self._lock:
            return list(self._networks.values())

    def driver_for(self, network: Network):
        driver = self.drivers.get(network.driver)
        if driver is None and network.driver not in ("host", "null"):
            raise NotFound(f"network {network.name} uses driver {network.driver!r}, which is not running "
                           f"in this daemon (see `dockyard plugins`)")
        if driver is not None and not network.materialized:
            with self._lock:
                if not network.materialized:
                    try:
                        driver.create_network(network.spec())
                    except NetworkDriverError as exc:
                        raise EngineError(f"network {network.name}: {exc}") from None
                    network.materialized = True
                    self._save(network)
        return driver

    # -- create and remove ------------------------------------------------------------

    def create(self, name: str, driver_name: str = "bridge", *, subnet: str | None = None,
               gateway: str | None = None, ip_range: str | None = None, internal: bool = False,
               attachable: bool = False, labels: Mapping | None = None, options: Mapping | None = None,
               predefined: bool = False, deferred: bool = False) -> Network:
        """Create a network. `deferred` records it without kernel objects yet: the default
        bridge gets them when a first container joins, so a daemon that never runs a
        container leaves no bridge behind."""
        if not name:
            raise InvalidParameter("a network needs a name")
        if name in PREDEFINED and not predefined:
            raise Forbidden(f"{name} is a pre-defined network and cannot be created")
        driver_name = driver_name or "bridge"
        if driver_name in ("host", "null"):
            raise Forbidden(f"only one instance of \"{driver_name}\" network is allowed")
        driver = self.drivers.get(driver_name)
        if driver is None:
            raise NotFound(f"plugin \"{driver_name}\" not found: no network driver of that name runs in "
                           f"this daemon (installed drivers: {', '.join(sorted(self.drivers)) or 'none'})")
        if getattr(driver, "scope", "local") == "global":
            network = self._create_global(name, driver_name, driver, subnet, gateway, ip_range, internal,
                                          attachable, labels, options)
            self._event(network, "create")
            return network
        with self._lock:
            if self._by_name(name) is not None:
                raise Conflict(f"network with name {name} already exists")
            pool = self._request_pool(subnet, gateway, ip_range)
            network = Network(id=secrets.token_hex(32), name=name, driver=driver_name, created=now_rfc3339(),
                              internal=internal, attachable=attachable, labels=dict(labels or {}),
                              options={str(k): str(v) for k, v in (options or {}).items()}, ipam=[pool],
                              materialized=not deferred)
            try:
                if not deferred:
                    driver.create_network(network.spec())
            except NetworkDriverError as exc:
                self._release_pool(pool)
                raise InvalidParameter(str(exc)) from None
            except Exception:
                self._release_pool(pool)
                try:
                    driver.delete_network(network.id)
                except Exception:  # the create's error is the one to report
                    pass
                raise
            self._networks[network.id] = network
            self._save(network)
        if not predefined:  # the daemon's own networks appear silently at its first start
            self._event(network, "create")
        return network

    def _create_global(self, name, driver_name, driver, subnet, gateway, ip_range, internal, attachable,
                       labels, options) -> Network:
        if self.global_scope is None:
            raise InvalidParameter(f"{driver_name} networks span the hosts of a cluster and need a cluster "
                                   "store: start dockyardd with --cluster-store etcd://HOST:2379 "
                                   "--cluster-advertise ADDRESS")
        wanted = parse_subnet(subnet) if subnet else None
        if wanted is None and (gateway or ip_range):
            raise InvalidParameter("--gateway and --ip-range need a --subnet")
        with self._lock:
            if self._by_name(name) is not None:
                raise Conflict(f"network with name {name} already exists")
            local_subnets = [n.subnet() for n in self._networks.values()
                             if n.scope == "local" and n.subnet() is not None]
        network = Network(id=secrets.token_hex(32), name=name, driver=driver_name, created=now_rfc3339(),
                          internal=internal, attachable=attachable, labels=dict(labels or {}),
                          options={str(k): str(v) for k, v in (options or {}).items()}, materialized=False,
                          scope="global")
        try:
            self.global_scope.create(network, driver, local_subnets, wanted, gateway, ip_range)
        except NetworkDriverError as exc:
            raise InvalidParameter(str(exc)) from None
        return network

    def _request_pool(self, subnet: str | None, gateway: str | None, ip_range: str | None) -> dict:
        wanted = parse_subnet(subnet) if subnet else None
        if wanted is None and (gateway or ip_range):
            raise InvalidParameter("--gateway and --ip-range need a --subnet")
        pool = self.ipam.request_pool(wanted)
        try:
            gateway_address, chosen_range = check_pool_request(pool, gateway, ip_range)
            if gateway_address is not None:
                self.ipam.request_address(pool, gateway_address)
            else:
                gateway_address = self.ipam.request_address(pool).ip
        except BaseException:
            self.ipam.release_pool(pool)
            raise
        return {"Subnet": str(pool), "Gateway": str(gateway_address),
                **({"IPRange": str(chosen_range)} if chosen_range else {})}

    def _release_pool(self, pool: dict) -> None:
        self.ipam.release_pool(IPv4Network(pool["Subnet"]))

    def remove(self, name_or_id: str) -> None:
        self._settle_leaves()  # endpoints of exited containers must be gone before their network
        with self._lock:
            network = self.get(name_or_id)
            if network.predefined:
                raise Forbidden(f"{network.name} is a pre-defined network and cannot be removed")
            if self._endpoints.get(network.id):
                raise Conflict(f"error while removing network: network {network.name} id {network.id} "
                               f"has active endpoints")
            if network.scope == "global":
                self.global_scope.remove(network, self.drivers.get(network.driver))
                self._event(network, "destroy")
                return
            driver = self.driver_for(network)
            driver.delete_network(network.id)
            if network.subnet() is not None:
                self.ipam.release_pool(network.subnet())
            self._networks.pop(network.id, None)
            self._endpoints.pop(network.id, None)
            (self.root / f"{network.id}.json").unlink(missing_ok=True)
        self._event(network, "destroy")

    def prune(self, filters: Mapping[str, list[str]]) -> list[str]:
        until = until_timestamp(filters["until"][-1], _rfc3339_seconds) if "until" in filters else None
        deleted = []
        for network in self.all():
            if network.predefined or not label_filters_match(filters, network.labels):
                continue
            if until is not None and _rfc3339_seconds(network.created) >= until:
                continue
            try:
                self.remove(network.id)
            except (Conflict, Forbidden):
                continue
            deleted.append(network.name)
        return deleted

    # -- endpoints ---------------------------------------------------------------------

    def attach(self, container, netns_path: str) -> dict:
        """Wire a started container's namespace to each network its record names.
        Returns its NetworkSettings.Networks and Ports. All or nothing: on failure every
        endpoint made so far is undone before the error is raised."""
        requested = [(name, wanted or {}, self.get((wanted or {}).get("NetworkID") or name))
                     for name, wanted in (container.network_settings.get("Networks") or {}).items()]
        made: list[Endpoint] = []
        settings: dict[str, dict] = {}
        exposed = container.config.get("ExposedPorts")
        port_requests = port_rules.requests_from(container.host_config, exposed)
        # a container whose first network spans hosts gets out through docker_gwbridge
        first = requested[0][2] if requested else None
        through_gateway = first is not None and first.scope == "global" and not first.internal
        gateway_settings = None
        try:
            for position, (_, wanted, network) in enumerate(requested):
                primary = position == 0 and not through_gateway
                endpoint = self._join(network, container, wanted, netns_path, default_route=primary,
                                      port_requests=port_requests if primary else (),
                                      interface=f"eth{position}", made=made)
                settings[network.name] = self._endpoint_settings(network, endpoint, wanted)
            if through_gateway:
                gateway = self._gateway_network()
                endpoint = self._join(gateway, container, {}, netns_path, default_route=True,
                                      port_requests=port_requests, interface=f"eth{len(requested)}",
                                      made=made)
                gateway_settings = self._endpoint_settings(gateway, endpoint, {})
        except BaseException as exc:
            for endpoint in reversed(made):
                self._drop_endpoint(endpoint, netns_path)
            if isinstance(exc, NetworkDriverError):
                raise EngineError(str(exc)) from None
            raise
        self._netns[container.id] = netns_path
        self._serve_names(container, netns_path)
        ports = made[-1].ports if through_gateway else made[0].ports if made else []
        return {"Networks": settings, "Ports": port_rules.docker_ports(ports, exposed),
                **({"Gateway": gateway_settings} if gateway_settings else {})}

    def _join(self, network: Network, container, wanted: dict, netns_path: str, default_route: bool,
              port_requests, interface: str, made: list[Endpoint]) -> Endpoint:
        endpoint = self._new_endpoint(network, container, wanted, default_route=default_route,
                                      port_requests=port_requests, interface=interface)
        made.append(endpoint)
        driver = self.driver_for(network)
        if driver is not None:
            driver.join(network.spec(), endpoint.spec(netns_path))
        with self._lock:
            self._endpoints.setdefault(network.id, {})[container.id] = endpoint
        self._announce(network, endpoint)
        self._event(network, "connect", container=container.id)
        return endpoint

    def _gateway_network(self) -> Network:
        """docker_gwbridge, made on first use as Docker makes it."""
        existing = self._by_name(GATEWAY_NETWORK)
        if existing is not None:
            return existing
        if "bridge" not in self.drivers:
            raise EngineError("containers on global networks reach the outside through docker_gwbridge, a "
                              "bridge network: install dockyard-net-bridge, or use an --internal network")
        try:
            return self.create(GATEWAY_NETWORK, "bridge", options=GATEWAY_OPTIONS)
        except Conflict:  # another container's start made it just now
            return self.get(GATEWAY_NETWORK)

    def detach(self, container) -> None:
        """Unwire an exited container's endpoints (idempotent). Its names go at once; the
        kernel work (a veth delete waits out an RCU grace period, ~20 ms) goes to a
        background thread, so an exit or an `--rm` never waits for it. The addresses and
        host ports stay reserved until that work is done, and whoever asks for one of
        them by name meanwhile waits for it (`_settle_leaves`)."""
        netns_path = self._netns.pop(container.id, "")
        if self.dns is not None:
            self.dns.remove_listener(container.id)
        leaving = []
        with self._lock:
            for endpoints in self._endpoints.values():
                endpoint = endpoints.pop(container.id, None)
                if endpoint is not None:
                    leaving.append(endpoint)
        if not leaving:
            return
        for endpoint in leaving:
            network = self._networks.get(endpoint.network_id)
            if network is not None:
                self._event(network, "disconnect", container=container.id)
        future = self._leaver.submit(lambda: [self._drop_endpoint(e, netns_path) for e in leaving])
        with self._lock:
            self._leaving.add(future)
        future.add_done_callback(self._left)

    def _left(self, future) -> None:
        with self._lock:
            self._leaving.discard(future)
        if future.exception() is not None:
            log.warning("unwiring an exited container failed: %s", future.exception())

    def _settle_leaves(self, timeout: float = 60) -> None:
        with self._lock:
            pending = list(self._leaving)
        for future in pending:
            try:
                future.result(timeout)
            except Exception:  # already logged by _left
                pass

    def _announce(self, network: Network, endpoint: Endpoint) -> None:
        """A global network's endpoint, told to the cluster: other hosts resolve its names."""
        if network.scope == "global":
            self.global_scope.announce(network, endpoint.endpoint_id, {
                "Container": endpoint.container_id, "Names": self._names_of(endpoint, network),
                "Address": str(endpoint.address) if endpoint.address else "",
                "MacAddress": endpoint.mac_address})

    def _new_endpoint(self, network: Network, container, wanted: dict, default_route: bool,
                      port_requests, interface: str) -> Endpoint:
        subnet = network.subnet()
        address = None
        if subnet is not None and network.scope == "global":
            static = ((wanted.get("IPAMConfig") or {}).get("IPv4Address")) or None
            address = self.global_scope.request_address(network, static, network.ip_range(),
                                                        {"Container": container.id, "Name": container.name})
        elif subnet is not None:
            static = ((wanted.get("IPAMConfig") or {}).get("IPv4Address")) or None
            if static:
                self._settle_leaves()  # it may be the address of a container that just exited
            try:
                address = self.ipam.request_address(subnet, static, network.ip_range())
            except Forbidden:  # exhausted: addresses of exited containers may be on their way back
                self._settle_leaves()
                address = self.ipam.request_address(subnet, static, network.ip_range())
        endpoint = Endpoint(network_id=network.id, container_id=container.id, container_name=container.name,
                            endpoint_id=secrets.token_hex(32), address=address,
                            mac_address=wanted.get("MacAddress") or mac_for(address),
                            aliases=list(wanted.get("Aliases") or []),
                            hostname=container.config.get("Hostname") or "", default_route=default_route,
                            interface=interface, links=list(wanted.get("Links") or []))
        if port_requests and network.driver != "null":
            if any(request.host_ports is not None for request in port_requests):
                self._settle_leaves()  # a port an exited container published is on its way back
            try:
                endpoint.ports = self.ports.allocate(
                    container.id, port_requests, f"{container.name} ({endpoint.endpoint_id})")
            except BaseException:
                if address is not None:
                    self._release_address(network, address)
                raise
        return endpoint

    def _release_address(self, network: Network, address: IPv4Interface) -> None:
        if network.scope == "global":
            self.global_scope.release_address(network, address)
        elif network.subnet() is not None:
            self.ipam.release_address(network.subnet(), address)

    def _drop_endpoint(self, endpoint: Endpoint, netns_path: str) -> None:
        network = self._networks.get(endpoint.network_id)
        if network is not None:
            driver = self.drivers.get(network.driver)
            if driver is not None:
                try:
                    driver.leave(network.spec(), endpoint.spec(netns_path))
                except Exception as exc:  # the container is going: record, never block it
                    log.warning("leaving network %s for %s: %s", network.name,
                                endpoint.container_id[:12], exc)
            if network.scope == "global":
                self.global_scope.withdraw(network, endpoint.endpoint_id)
            if endpoint.address is not None:
                self._release_address(network, endpoint.address)
        if endpoint.ports:
            self.ports.release(endpoint.container_id)
        with self._lock:
            endpoints = self._endpoints.get(endpoint.network_id) or {}
            if endpoints.get(endpoint.container_id) is endpoint:
                del endpoints[endpoint.container_id]

    def _endpoint_settings(self, network: Network, endpoint: Endpoint, wanted: dict) -> dict:
        gateway = network.gateway()
        return {
            "IPAMConfig": wanted.get("IPAMConfig"), "Links": endpoint.links or None,
            "Aliases": endpoint.aliases or None,
            "MacAddress": endpoint.mac_address, "NetworkID": network.id, "EndpointID": endpoint.endpoint_id,
            "Gateway": str(gateway.ip) if gateway else "",
            "IPAddress": str(endpoint.address.ip) if endpoint.address else "",
            "IPPrefixLen": endpoint.address.network.prefixlen if endpoint.address else 0,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DriverOpts": None,
            "DNSNames": self._names_of(endpoint, network) or None,
            "_ports": [port_rules.binding_to_json(b) for b in endpoint.ports],
            "_interface": endpoint.interface,
        }

    # -- names ------------------------------------------------------------------------

    def _names_of(self, endpoint: Endpoint, network: Network) -> list[str]:
        if not network.user_defined or network.name == GATEWAY_NETWORK:
            return []
        names = [endpoint.container_name, endpoint.container_id[:12], *endpoint.aliases]
        if endpoint.hostname:
            names.append(endpoint.hostname)
        return [name.lower() for name in dict.fromkeys(names)]

    @staticmethod
    def _linked_name(asker: Endpoint, name: str) -> str | None:
        """The container a `--link target:alias` of the asker's names `name` after, if any."""
        for link in asker.links:
            target, _, alias = link.partition(":")
            if (alias or target).strip("/").lower() == name:
                return target.strip("/")
        return None

    def lookup(self, container_id: str, name: str) -> list[IPv4Address] | None:
        """What `name` is for a container: addresses of the containers answering to it on
        the user-defined networks the asker is on; None when no such name is ours."""
        name = name.lower().rstrip(".")
        found: list[IPv4Address] = []
        with self._lock:
            for network_id, endpoints in self._endpoints.items():
                network = self._networks.get(network_id)
                if network is None or not network.user_defined or container_id not in endpoints:
                    continue
                linked = self._linked_name(endpoints[container_id], name)
                for endpoint in endpoints.values():
                    if endpoint.address is None:
                        continue
                    if name in self._names_of(endpoint, network) or linked in (endpoint.container_name,
                                                                                endpoint.container_id):
                        found.append(endpoint.address.ip)
                if network.scope == "global":
                    found += self.global_scope.remote_names(network_id, name)
        return found or None

    def _serve_names(self, container, netns_path: str, force: bool = False) -> None:
        if self.dns is None or not (force or self.uses_embedded_dns(container)):
            return
        try:
            self.dns.add_listener(container.id, netns_path, lambda name: self.lookup(container.id, name))
        except OSError as exc:
            log.warning("no name resolution for %s: %s", container.short_id, exc)

    def uses_embedded_dns(self, container) -> bool:
        """Docker's rule: containers on a user-defined network get the embedded resolver."""
        for name, wanted in (container.network_settings.get("Networks") or {}).items():
            network = self.find(wanted.get("NetworkID") or name)
            if network is not None and network.user_defined:
                return True
        return False

    def hosts_entries(self, container) -> list[str]:
        """/etc/hosts lines for the container's own addresses."""
        entries = []
        hostname = container.config.get("Hostname") or container.id[:12]
        for network_id, endpoints in self._endpoints.items():
            endpoint = endpoints.get(container.id)
            network = self._networks.get(network_id)
            if network is not None and network.name == GATEWAY_NETWORK:
                continue  # not an address anyone should reach the container at
            if endpoint is not None and endpoint.address is not None:
                entries.append(f"{endpoint.address.ip}\t{hostname}")
        return entries

    # -- connect and disconnect (the API's) ----------------------------------------------

    def endpoint_config(self, network: Network, endpoint_config: Mapping | None) -> dict:
        """Validate what the user asks of an endpoint before anything is made."""
        config = dict(endpoint_config or {})
        ipam_config = config.get("IPAMConfig") or {}
        static = ipam_config.get("IPv4Address")
        if static:
            if network.predefined:
                raise InvalidParameter("user specified IP address is supported on user defined networks only")
            subnet = network.subnet()
            try:
                address = IPv4Address(static)
            except ValueError:
                raise InvalidParameter(f"invalid IPv4 address: {static}") from None
            if subnet is None or address not in subnet:
                raise InvalidParameter(f"no configured subnet or ip-range contain the IP address {static}")
        if config.get("Aliases") and network.predefined:
            raise InvalidParameter("network-scoped alias is supported only for containers in user defined "
                                   "networks")
        mac = config.get("MacAddress") or ""
        if mac and not _MAC.match(mac):
            raise InvalidParameter(f"{mac} is not a valid mac address")
        # _MacAsked: the MAC is the user's, kept across runs (a derived one is made anew)
        links = list(config.get("Links") or [])
        if links and network.predefined:
            links = []  # on the default bridge, links are the container's (HostConfig.Links)
        return {"NetworkID": network.id, "IPAMConfig": ipam_config or None,
                "Aliases": list(config.get("Aliases") or []), "MacAddress": mac, "_MacAsked": bool(mac),
                "Links": links or None}

    def connect_running(self, network: Network, container, wanted: dict) -> dict:
        netns_path = self._netns.get(container.id) or f"/proc/{container.state.Pid}/ns/net"
        taken = {e.interface for e in self._endpoints_of_container(container.id)}
        interface = next(f"eth{n}" for n in range(len(taken) + 1) if f"eth{n}" not in taken)
        endpoint = self._new_endpoint(network, container, wanted, default_route=False, port_requests=(),
                                      interface=interface)
        try:
            driver = self.driver_for(network)
            if driver is not None:
                driver.join(network.spec(), endpoint.spec(netns_path))
        except BaseException as exc:
            self._drop_endpoint(endpoint, netns_path)
            if isinstance(exc, NetworkDriverError):
                raise EngineError(str(exc)) from None
            raise
        with self._lock:
            self._endpoints.setdefault(network.id, {})[container.id] = endpoint
        self._announce(network, endpoint)
        self._netns[container.id] = netns_path
        if network.user_defined:
            self._serve_names(container, netns_path, force=True)
        self._event(network, "connect", container=container.id)
        return self._endpoint_settings(network, endpoint, wanted)

    def disconnect_running(self, network: Network, container) -> None:
        endpoint = (self._endpoints.get(network.id) or {}).get(container.id)
        if endpoint is not None:
            self._drop_endpoint(endpoint, self._netns.get(container.id, ""))
        self._event(network, "disconnect", container=container.id)

    def endpoints_of(self, network: Network) -> dict[str, Endpoint]:
        with self._lock:
            return dict(self._endpoints.get(network.id) or {})

    # -- restart -----------------------------------------------------------------------

    def restore(self, running: Iterable) -> None:
        """After a daemon start: take back the endpoints of containers still running,
        then let each driver make the kernel match (and drop what a crash left)."""
        if self.global_scope is not None and not self.global_scope.wait_synced(5):
            log.warning("the cluster store did not answer: global networks are as this daemon last saw "
                        "them, and its endpoints are announced once the store answers")
        for container in running:
            netns_path = container.network_settings.get("SandboxKey") or f"/proc/{container.state.Pid}/ns/net"
            attached = list((container.network_settings.get("Networks") or {}).items())
            gateway = container.network_settings.get("_Gateway")
            if gateway:
                attached.append((GATEWAY_NETWORK, gateway))
            for name, settings in attached:
                network = self.find(settings.get("NetworkID") or name)
                if network is None or not settings.get("EndpointID"):
                    continue
                address = None
                if settings.get("IPAddress"):
                    address = IPv4Interface(f"{settings['IPAddress']}/{settings.get('IPPrefixLen') or 32}")
                    if network.scope == "global":
                        self.global_scope.adopt_address(network, address,
                                                        {"Container": container.id, "Name": container.name})
                        network.materialized = True  # its devices must exist again for this container
                    elif network.subnet() is not None:
                        self.ipam.reserve_address(network.subnet(), address.ip)
                bindings = [port_rules.binding_from_json(b) for b in settings.get("_ports") or []]
                default_route = (name == GATEWAY_NETWORK) if gateway else not self._endpoints_of_container(
                    container.id)
                endpoint = Endpoint(network.id, container.id, container.name, settings["EndpointID"], address,
                                    settings.get("MacAddress") or "", list(settings.get("Aliases") or []),
                                    container.config.get("Hostname") or "", default_route, bindings,
                                    settings.get("_interface") or "eth0", list(settings.get("Links") or []))
                if bindings:
                    try:
                        self.ports.hold_again(container.id, bindings)
                    except EngineError as exc:
                        log.warning("container %s: %s", container.short_id, exc)
                self._endpoints.setdefault(network.id, {})[container.id] = endpoint
                self._netns[container.id] = netns_path
                self._announce(network, endpoint)
        for driver_name, driver in self.drivers.items():
            networks = [n for n in self._networks.values() if n.driver == driver_name and n.materialized]
            endpoints = [e.spec(self._netns.get(e.container_id, ""))
                         for n in networks for e in (self._endpoints.get(n.id) or {}).values()]
            try:
                driver.restore([n.spec() for n in networks], endpoints)
            except Exception as exc:
                log.warning("network driver %s could not restore its networks: %s", driver_name, exc)
        for container in running:
            if container.id in self._netns:
                self._serve_names(container, self._netns[container.id])

    def _endpoints_of_container(self, container_id: str) -> list[Endpoint]:
        return [e[container_id] for e in self._endpoints.values() if container_id in e]

    def shutdown(self) -> None:
        if self.global_scope is not None:
            self.global_scope.stop()
        self._settle_leaves(timeout=30)
        self._leaver.shutdown(wait=False)
        if self.dns is not None:
            self.dns.stop()

    # -- events --------------------------------------------------------------------------

    def _event(self, network: Network, action: str, **attributes: str) -> None:
        self.events.publish("network", action, network.id,
                         {"name": network.name, "type": network.driver, **attributes})


def _rfc3339_seconds(text: str) -> float:
    from dockyard.containers.logs import parse_time_nano

    try:
        return parse_time_nano(text) / 1e9
    except ValueError:
        return 0.0
