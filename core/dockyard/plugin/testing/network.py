"""The network driver conformance suite: the `NetworkDriver` contract, on the real kernel.

A driver package proves itself with a few lines:

    from dockyard.plugin.testing.network import NetworkDriverSuite

    class TestBridge(NetworkDriverSuite):
        driver_name = "bridge"

The driver is built as the daemon builds it: through the installed plugins (strict mode),
with a DriverContext whose home and exec root are fresh temporary directories; a second
home stands for a second daemon on the same host. A driver whose probe fails here is
skipped with the probe's reason. Containers are network namespaces the test creates
(`ip netns add`); the engine's part (addresses, MACs, host ports) is played by the test.

Traffic goes only to loopback and to addresses inside namespaces the tests create. Test
subnets are random /24s in 10.64.0.0/10 that no route or address of the host overlaps.

After every test the `net` fixture leaves every endpoint and deletes every network the test
made (both calls must be idempotent, so repeating them is fine), then fails the test if
anything is left: a link or nft table whose name carries a fragment of one of the test's
ids, or a host address inside one of its subnets (leftovers are removed, to keep the
machine clean).

Drivers whose containers cannot reach the host at the gateway, or that publish no ports,
set `gateway_reachable` or `publishes_ports` to False; a driver that needs options on every
network (a macvlan parent) overrides `network_options`. Needs root, iproute2's `ip` and a
static /bin/busybox (for ping).

Also here, for driver-specific tests: `Namespace` (a test container, or a fake remote host
routed to the host by its own veth), `TcpResponder` (a server in a namespace that answers
every connection with the address it came from), `tcp_ask` (its client, from the host or
from a namespace) and `in_namespace`. A driver's own test class can borrow the fixtures:
`make_driver = NetworkDriverSuite.make_driver; net = NetworkDriverSuite.net; driver =
NetworkDriverSuite.driver` in a class that sets `driver_name`.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from dockyard.daemon.pluginmanager import PluginManager
from dockyard.plugin import DriverContext
from dockyard.plugin.contracts.network import (
    EndpointSpec,
    NetworkDriver,
    NetworkDriverError,
    NetworkSpec,
    PortBinding,
)
from dockyard.plugin.netns import run_in_netns

BUSYBOX = "/bin/busybox"
TEST_SPACE = IPv4Network("10.64.0.0/10")  # where test subnets are drawn from
ID_FRAGMENT = 8  # leading characters of an id that a driver's object names are expected to carry
CLONE_NEWNET = 0x40000000
_handed_out: set[IPv4Network] = set()
_handed_out_lock = threading.Lock()


def random_id() -> str:
    """Like Docker's ids: 64 hex digits."""
    return secrets.token_hex(32)


def _ip_json(*arguments: str) -> list[dict]:
    result = subprocess.run(["ip", "-j", *arguments], capture_output=True, text=True, timeout=10)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(arguments)} failed: {result.stderr.strip()}")
    return json.loads(result.stdout or "[]")


def host_links() -> set[str]:
    return {link["ifname"] for link in _ip_json("link", "show")}


def host_addresses() -> list[IPv4Interface]:
    return [IPv4Interface(f"{info['local']}/{info['prefixlen']}")
            for link in _ip_json("-4", "addr", "show") for info in link.get("addr_info", [])
            if info.get("family") == "inet"]


def nft_tables() -> set[str]:
    """Every nft table of the host as "family name" (empty where nft is not installed)."""
    if not shutil.which("nft"):
        return set()
    result = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, timeout=10)
    return {line.removeprefix("table ").strip() for line in result.stdout.splitlines()
            if line.startswith("table")}


def _host_networks() -> list[IPv4Network]:
    taken = [address.network for address in host_addresses()]
    for route in _ip_json("-4", "route", "show", "table", "all"):
        destination = route.get("dst", "")
        if destination and destination != "default":
            try:
                taken.append(IPv4Network(destination, strict=False))
            except ValueError:
                continue
    return taken


def free_subnet(prefixlen: int = 24) -> IPv4Network:
    """A random subnet of TEST_SPACE that overlaps nothing on the host, nor any subnet this
    process handed out before."""
    taken = _host_networks()
    with _handed_out_lock:
        for _attempt in range(200):
            offset = random.randrange(TEST_SPACE.num_addresses >> (32 - prefixlen)) << (32 - prefixlen)
            subnet = IPv4Network(f"{TEST_SPACE.network_address + offset}/{prefixlen}")
            if subnet not in _handed_out and not any(subnet.overlaps(other) for other in taken):
                _handed_out.add(subnet)
                return subnet
    raise RuntimeError(f"no free /{prefixlen} left in {TEST_SPACE} on this host")


def free_port() -> int:
    """A TCP port nothing on the host is bound to (the engine's job, done crudely)."""
    for _attempt in range(100):
        port = random.randrange(20000, 30000)
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free TCP port found")


def in_namespace(netns_path: str, work: Callable[[], object]) -> object:
    """Run `work` in a thread that joined the network namespace at `netns_path`. Sockets it
    creates stay in that namespace, whichever thread uses them later."""
    return run_in_netns(netns_path, work, name="test netns")


@dataclass
class Namespace:
    """A network namespace made for a test (a container, a client, a fake remote host)."""

    name: str
    host_links: list[str] = field(default_factory=list)  # our veth ends in the host namespace

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    @classmethod
    def create(cls) -> Namespace:
        namespace = cls(f"dyt-{secrets.token_hex(4)}")
        subprocess.run(["ip", "netns", "add", namespace.name], check=True, timeout=10)
        return namespace

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)
        for link in self.host_links:  # normally gone with the namespace
            subprocess.run(["ip", "link", "del", link], capture_output=True, timeout=10)

    def run(self, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True, text=True,
                              timeout=timeout)

    def ip(self, *arguments: str) -> list[dict]:
        return _ip_json("-n", self.name, *arguments)

    def links(self) -> set[str]:
        return {link["ifname"] for link in self.ip("link", "show")}

    def interface(self, name: str = "eth0") -> dict | None:
        """{"mac", "mtu", "up", "addresses"} of an interface, None when it is not there."""
        found = [link for link in self.ip("addr", "show") if link["ifname"] == name]
        if not found:
            return None
        link = found[0]
        return {"mac": link.get("address"), "mtu": link.get("mtu"), "up": "UP" in link.get("flags", []),
                "addresses": [IPv4Interface(f"{i['local']}/{i['prefixlen']}")
                              for i in link.get("addr_info", []) if i.get("family") == "inet"]}

    def default_gateway(self) -> IPv4Address | None:
        routes = [r for r in self.ip("-4", "route", "show", "default") if r.get("gateway")]
        return IPv4Address(routes[0]["gateway"]) if routes else None

    def ping(self, address: IPv4Address | str, wait: int = 1) -> bool:
        answered = self.run(BUSYBOX, "ping", "-c", "1", "-W", str(wait), str(address), timeout=wait + 10)
        return answered.returncode == 0

    def connect_to_host(self, subnet: IPv4Network, default_route: bool) -> tuple[IPv4Address, IPv4Address]:
        """A veth from the host to this namespace on a /30: (host side, namespace side). With
        `default_route` the namespace routes everything to the host (a client); without, it
        knows only its /30 (a remote host that cannot route back to containers)."""
        host_address, inside_address = list(subnet.hosts())[:2]
        host_name, inside_name = f"dyth{self.name[4:]}", "uplink"
        subprocess.run(["ip", "link", "add", host_name, "type", "veth", "peer", "name", inside_name,
                        "netns", self.name], check=True, timeout=10)
        self.host_links.append(host_name)
        commands = [["ip", "addr", "add", f"{host_address}/{subnet.prefixlen}", "dev", host_name],
                    ["ip", "link", "set", host_name, "up"],
                    ["ip", "-n", self.name, "addr", "add", f"{inside_address}/{subnet.prefixlen}", "dev",
                     inside_name],
                    ["ip", "-n", self.name, "link", "set", inside_name, "up"],
                    ["ip", "-n", self.name, "link", "set", "lo", "up"]]
        if default_route:
            commands.append(["ip", "-n", self.name, "route", "add", "default", "via", str(host_address)])
        for command in commands:
            subprocess.run(command, check=True, timeout=10)
        return host_address, inside_address


class TcpResponder:
    """A TCP server inside a namespace: every connection is answered with the address it came
    from (what a server there sees as its peer), then closed."""

    def __init__(self, netns_path: str, port: int, address: str = "0.0.0.0") -> None:
        self.peers: list[str] = []
        self._socket = in_namespace(netns_path, lambda: socket.create_server((address, port)))
        self._socket.settimeout(0.1)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test responder", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, peer = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection:
                self.peers.append(peer[0])
                connection.sendall(f"{peer[0]}\n".encode())

    def close(self) -> None:
        self._stopping.set()
        self._thread.join()
        self._socket.close()

    def __enter__(self) -> TcpResponder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def tcp_ask(address: IPv4Address | str, port: int, netns_path: str | None = None,
            timeout: float = 2.0) -> str | None:
    """Connect (from the host, or from inside `netns_path`) and return what a TcpResponder
    answered; None when nothing answered."""
    make = lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # noqa: E731
    client = in_namespace(netns_path, make) if netns_path else make()
    client.settimeout(timeout)
    try:
        client.connect((str(address), port))
        return client.recv(100).decode().strip() or None
    except OSError:
        return None
    finally:
        client.close()


class NetworkHarness:
    """What one test made, so it can be cleaned up and checked for leftovers."""

    def __init__(self, make_driver: Callable[..., NetworkDriver]) -> None:
        self._make_driver = make_driver
        self.namespaces: list[Namespace] = []
        self.subnets: list[IPv4Network] = []
        self.ids: list[str] = []
        self.made: list[tuple[NetworkDriver, NetworkSpec | EndpointSpec, NetworkSpec | None]] = []
        self.base_options: dict[str, str] = {}  # what every network gets (NetworkDriverSuite.network_options)

    def driver(self, home: str = "home") -> NetworkDriver:
        return self._make_driver(home)

    def namespace(self) -> Namespace:
        namespace = Namespace.create()
        self.namespaces.append(namespace)
        return namespace

    def network_spec(self, internal: bool = False, options: dict | None = None,
                     subnet: IPv4Network | None = None) -> NetworkSpec:
        subnet = subnet or free_subnet()
        self.subnets.append(subnet)
        network_id = random_id()
        self.ids.append(network_id)
        return NetworkSpec(network_id=network_id, name=f"test-{network_id[:6]}", subnets=(subnet,),
                           gateway=IPv4Interface(f"{subnet.network_address + 1}/{subnet.prefixlen}"),
                           internal=internal, options={**self.base_options, **(options or {})})

    def network(self, driver: NetworkDriver, **spec_arguments) -> NetworkSpec:
        """A network created through `driver` (deleted after the test)."""
        spec = self.network_spec(**spec_arguments)
        self.made.append((driver, spec, None))
        driver.create_network(spec)
        return spec

    def endpoint_spec(self, network: NetworkSpec, namespace: Namespace | None, host: int,
                      ports: Sequence[PortBinding] = (), default_route: bool = True,
                      interface_name: str = "eth0", netns_path: str | None = None) -> EndpointSpec:
        subnet = network.subnets[0]
        address = IPv4Interface(f"{subnet.network_address + host}/{subnet.prefixlen}")
        endpoint_id = random_id()
        self.ids.append(endpoint_id)
        return EndpointSpec(endpoint_id=endpoint_id, container_id=random_id(), network_id=network.network_id,
                            netns_path=netns_path or (namespace.path if namespace else "/nonexistent"),
                            address=address,
                            mac_address="02:42:" + ":".join(f"{byte:02x}" for byte in address.ip.packed),
                            interface_name=interface_name, default_route=default_route, ports=tuple(ports))

    def join(self, driver: NetworkDriver, network: NetworkSpec, namespace: Namespace | None = None,
             host: int = 2, **endpoint_arguments) -> EndpointSpec:
        """A new namespace (unless given) joined to `network` as host number `host`."""
        namespace = namespace or self.namespace()
        endpoint = self.endpoint_spec(network, namespace, host, **endpoint_arguments)
        self.made.append((driver, endpoint, network))
        driver.join(network, endpoint)
        return endpoint

    def namespace_of(self, endpoint: EndpointSpec) -> Namespace:
        return next(n for n in self.namespaces if n.path == endpoint.netns_path)

    def leftovers(self, ids: Sequence[str] | None = None,
                  subnets: Sequence[IPv4Network] | None = None) -> list[str]:
        """Kernel objects still carrying the test's ids or subnets (all of them by default)."""
        fragments = [identifier[:ID_FRAGMENT] for identifier in (self.ids if ids is None else ids)]
        subnets = self.subnets if subnets is None else subnets
        found = [f"link {name}" for name in host_links() if any(f in name for f in fragments)]
        found += [f"nft table {name}" for name in nft_tables() if any(f in name for f in fragments)]
        found += [f"address {address}" for address in host_addresses()
                  if any(address.ip in subnet for subnet in subnets)]
        return found

    def clean_up_and_report(self) -> list[str]:
        problems = []
        for driver, made, network in reversed(self.made):
            try:
                if network is not None:
                    driver.leave(network, made)
                else:
                    driver.delete_network(made.network_id)
            except Exception as exc:
                what = f"endpoint {made.endpoint_id[:12]}" if network else f"network {made.network_id[:12]}"
                problems.append(f"cleaning up {what}: {type(exc).__name__}: {exc}")
        # Before the namespaces go: deleting one takes the veths inside it along, which would
        # hide a host-side end the driver forgot.
        leftovers = self.leftovers()
        for namespace in self.namespaces:
            namespace.delete()
        for leftover in leftovers:
            kind, _, name = leftover.rpartition(" ")
            if kind == "link":
                subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=10)
            elif kind == "nft table":
                subprocess.run(["nft", "delete", "table", *name.split()], capture_output=True, timeout=10)
        return problems + [f"left behind: {leftover}" for leftover in leftovers]


class NetworkDriverSuite:
    """Subclass with `driver_name` set; every test_* method is one clause of the contract."""

    driver_name: str = ""
    #: containers reach the host at their network's gateway address (bridge: yes; macvlan: no)
    gateway_reachable: bool = True
    #: the driver wires EndpointSpec.ports (published ports answering on the host's addresses)
    publishes_ports: bool = True

    # -- fixtures ---------------------------------------------------------------------

    @pytest.fixture
    def make_driver(self, tmp_path: Path) -> Iterator[Callable[..., NetworkDriver]]:
        """Builds a driver whose home is tmp_path/<home>: the same home again is a restarted
        daemon, another home a second daemon on the same host."""
        assert self.driver_name, "set driver_name on your NetworkDriverSuite subclass"
        manager = PluginManager(strict=True).load_all()
        spec = manager.find("network", self.driver_name)
        reason = manager.why_unsupported(spec)
        if reason:
            pytest.skip(f"network driver {spec.name} cannot run here: {reason}")
        if not shutil.which("ip") or not os.path.exists(BUSYBOX):
            pytest.skip(f"the network suite needs iproute2's ip and a static {BUSYBOX}")
        made: list[NetworkDriver] = []

        def make(home: str = "home") -> NetworkDriver:
            (tmp_path / home).mkdir(exist_ok=True)
            (tmp_path / f"{home}-exec").mkdir(exist_ok=True)
            driver = spec.factory(DriverContext(kind="network", name=spec.name, home=tmp_path / home,
                                                exec_root=tmp_path / f"{home}-exec"))
            assert isinstance(driver, NetworkDriver), f"{type(driver)} lacks NetworkDriver methods"
            made.append(driver)
            return driver

        yield make
        for driver in made:
            close = getattr(driver, "close", None)
            if close is not None:
                close()

    @pytest.fixture
    def net(self, make_driver: Callable[..., NetworkDriver]) -> Iterator[NetworkHarness]:
        harness = NetworkHarness(make_driver)
        try:
            # getattr: a driver's own test class may borrow the fixtures without the suite's methods
            network_options = getattr(self, "network_options", None)
            harness.base_options = network_options(harness) if network_options else {}
            yield harness
        finally:
            problems = harness.clean_up_and_report()
        if problems:
            pytest.fail("the test left things behind:\n- " + "\n- ".join(problems))

    @pytest.fixture
    def driver(self, net: NetworkHarness) -> NetworkDriver:
        return net.driver()

    # -- helpers ----------------------------------------------------------------------

    def network_options(self, net: NetworkHarness) -> dict[str, str]:
        """Options every network of the suite is created with: a driver that needs some (a
        macvlan parent, made with `net`) overrides this."""
        return {}

    @staticmethod
    def assert_wired(namespace: Namespace, network: NetworkSpec, endpoint: EndpointSpec) -> None:
        interface = namespace.interface(endpoint.interface_name)
        assert interface is not None, f"no {endpoint.interface_name} in the container's namespace"
        assert interface["addresses"] == [endpoint.address], interface
        assert interface["mac"] == endpoint.mac_address and interface["up"], interface
        if endpoint.default_route:
            assert namespace.default_gateway() == network.gateway.ip
        else:
            assert namespace.default_gateway() is None

    # -- the contract -------------------------------------------------------------------

    def test_the_driver_satisfies_the_protocol(self, driver: NetworkDriver) -> None:
        assert driver.scope in ("local", "global")
        assert driver.private_namespace is True

    def test_two_endpoints_are_wired_and_reach_each_other(self, net: NetworkHarness,
                                                         driver: NetworkDriver) -> None:
        network = net.network(driver)
        first, second = net.join(driver, network, host=2), net.join(driver, network, host=3)
        for endpoint in (first, second):
            self.assert_wired(net.namespace_of(endpoint), network, endpoint)
        assert net.namespace_of(first).ping(second.address.ip)
        assert net.namespace_of(second).ping(first.address.ip)
        if self.gateway_reachable:
            assert net.namespace_of(first).ping(network.gateway.ip)

    def test_leave_and_delete_leave_nothing_behind(self, net: NetworkHarness, driver: NetworkDriver) -> None:
        network = net.network(driver)
        endpoints = [net.join(driver, network, host=host) for host in (2, 3)]
        for endpoint in endpoints:
            driver.leave(network, endpoint)
            namespace = net.namespace_of(endpoint)
            assert endpoint.interface_name not in namespace.links(), "the container kept its interface"
        assert net.leftovers(ids=[e.endpoint_id for e in endpoints], subnets=[]) == []
        driver.delete_network(network.network_id)
        assert net.leftovers() == []

    def test_every_call_can_be_repeated(self, net: NetworkHarness, driver: NetworkDriver) -> None:
        network = net.network(driver)
        driver.create_network(network)
        first = net.join(driver, network, host=2)
        driver.join(network, first)  # a repeat after a crash
        second = net.join(driver, network, host=3)
        self.assert_wired(net.namespace_of(first), network, first)
        assert net.namespace_of(first).ping(second.address.ip)
        for _ in range(2):
            driver.leave(network, first)
            driver.leave(network, second)
        for _ in range(2):
            driver.delete_network(network.network_id)
        assert net.leftovers() == []
        driver.delete_network(random_id())  # never existed
        driver.leave(network, net.endpoint_spec(network, None, 9))

    def test_a_network_can_be_made_again_after_delete(self, net: NetworkHarness,
                                                      driver: NetworkDriver) -> None:
        network = net.network(driver)
        driver.delete_network(network.network_id)
        driver.create_network(network)
        first, second = net.join(driver, network, host=2), net.join(driver, network, host=3)
        assert net.namespace_of(first).ping(second.address.ip)

    def test_unknown_options_are_refused_by_name_and_leave_nothing(self, net: NetworkHarness,
                                                                  driver: NetworkDriver) -> None:
        spec = net.network_spec(options={"dockyard.test.no-such-option": "1"})
        with pytest.raises(NetworkDriverError, match="dockyard.test.no-such-option"):
            driver.create_network(spec)
        assert net.leftovers() == []

    def test_joining_a_missing_namespace_fails_and_leaves_nothing(self, net: NetworkHarness,
                                                                 driver: NetworkDriver) -> None:
        network = net.network(driver)
        endpoint = net.endpoint_spec(network, None, 2, netns_path=f"/run/netns/dyt-missing-{random_id()[:8]}")
        with pytest.raises(NetworkDriverError):
            driver.join(network, endpoint)
        assert net.leftovers(ids=[endpoint.endpoint_id], subnets=[]) == []
        working = net.join(driver, network, host=3)  # the network is unharmed
        self.assert_wired(net.namespace_of(working), network, working)

    def test_a_join_failing_midway_undoes_itself(self, net: NetworkHarness, driver: NetworkDriver) -> None:
        network = net.network(driver)
        namespace = net.namespace()
        # An eth0 already there (a veth pair: not every kernel has the dummy link type).
        subprocess.run(["ip", "-n", namespace.name, "link", "add", "eth0", "type", "veth", "peer", "name",
                        "taken"], check=True, timeout=10)
        endpoint = net.endpoint_spec(network, namespace, 2)
        with pytest.raises(NetworkDriverError):
            driver.join(network, endpoint)
        assert net.leftovers(ids=[endpoint.endpoint_id], subnets=[]) == []
        assert namespace.links() == {"lo", "eth0", "taken"} and namespace.interface("eth0")["addresses"] == []
        driver.leave(network, endpoint)

    def test_leave_works_after_the_namespace_is_gone(self, net: NetworkHarness,
                                                     driver: NetworkDriver) -> None:
        network = net.network(driver)
        ports = (PortBinding("tcp", 80, free_port()),) if self.publishes_ports else ()
        endpoint = net.join(driver, network, host=2, ports=ports)
        net.namespace_of(endpoint).delete()
        driver.leave(network, endpoint)
        assert net.leftovers(ids=[endpoint.endpoint_id], subnets=[]) == []

    def test_an_endpoint_without_the_default_route(self, net: NetworkHarness, driver: NetworkDriver) -> None:
        network = net.network(driver)
        endpoint = net.join(driver, network, host=2, default_route=False, interface_name="eth1")
        self.assert_wired(net.namespace_of(endpoint), network, endpoint)

    def test_joins_may_run_in_parallel(self, net: NetworkHarness, driver: NetworkDriver) -> None:
        network = net.network(driver)
        namespaces = [net.namespace() for _ in range(6)]
        endpoints = [net.endpoint_spec(network, namespace, host)
                     for host, namespace in enumerate(namespaces, 2)]
        net.made += [(driver, endpoint, network) for endpoint in endpoints]
        with ThreadPoolExecutor(len(endpoints)) as pool:
            list(pool.map(lambda endpoint: driver.join(network, endpoint), endpoints))
        for namespace, endpoint in zip(namespaces, endpoints, strict=True):
            self.assert_wired(namespace, network, endpoint)
        assert namespaces[-1].ping(endpoints[0].address.ip)
        with ThreadPoolExecutor(len(endpoints)) as pool:
            list(pool.map(lambda endpoint: driver.leave(network, endpoint), endpoints))
        assert net.leftovers(ids=[e.endpoint_id for e in endpoints], subnets=[]) == []

    def test_a_published_port_answers_on_loopback_until_leave(self, net: NetworkHarness,
                                                              driver: NetworkDriver) -> None:
        if not self.publishes_ports:
            pytest.skip(f"{self.driver_name} does not publish ports")
        network = net.network(driver)
        host_port = free_port()
        namespace = net.namespace()
        with TcpResponder(namespace.path, 80):
            endpoint = net.join(driver, network, namespace, ports=[PortBinding("tcp", 80, host_port)])
            assert tcp_ask("127.0.0.1", host_port) is not None
            driver.leave(network, endpoint)
            assert tcp_ask("127.0.0.1", host_port, timeout=0.5) is None

    # -- restarts -----------------------------------------------------------------------

    def test_restore_keeps_what_is_listed_and_removes_the_rest(self, net: NetworkHarness) -> None:
        before = net.driver()
        kept = net.network(before)
        kept_endpoint = net.join(before, kept, host=2)
        sibling = net.join(before, kept, host=3)
        dropped_endpoint = net.join(before, kept, host=4)
        dropped = net.network(before)
        in_dropped = net.join(before, dropped, host=2)

        after = net.driver()  # the daemon restarts; only `kept` and two endpoints survive
        after.restore([kept], [kept_endpoint, sibling])
        self.assert_wired(net.namespace_of(kept_endpoint), kept, kept_endpoint)
        assert net.namespace_of(kept_endpoint).ping(sibling.address.ip)
        for gone in (dropped_endpoint, in_dropped):
            assert gone.interface_name not in net.namespace_of(gone).links()
        gone_ids = [dropped.network_id, dropped_endpoint.endpoint_id, in_dropped.endpoint_id]
        assert net.leftovers(ids=gone_ids, subnets=[dropped.subnets[0]]) == []
        after.restore([kept], [kept_endpoint, sibling])  # restore is idempotent too
        assert net.namespace_of(sibling).ping(kept_endpoint.address.ip)

    def test_restore_leaves_another_daemons_networks_alone(self, net: NetworkHarness) -> None:
        ours, theirs = net.driver("home"), net.driver("other-daemon")
        network = net.network(theirs)
        first, second = net.join(theirs, network, host=2), net.join(theirs, network, host=3)
        ours.restore([], [])
        assert net.namespace_of(first).ping(second.address.ip)
        self.assert_wired(net.namespace_of(second), network, second)

    def test_restore_after_a_crash_mid_join_clears_the_half_made_endpoint(self, net: NetworkHarness) -> None:
        before = net.driver()
        network = net.network(before)
        survivor = net.join(before, network, host=2)
        half_made = net.join(before, network, host=3)  # the engine never recorded it
        after = net.driver()
        after.restore([network], [survivor])
        assert half_made.interface_name not in net.namespace_of(half_made).links()
        assert net.leftovers(ids=[half_made.endpoint_id], subnets=[]) == []
        # the engine joins it again under the same id: a clean start
        after.join(network, replace(half_made))
        assert net.namespace_of(half_made).ping(survivor.address.ip)
