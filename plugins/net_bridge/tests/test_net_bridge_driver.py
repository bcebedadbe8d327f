"""The bridge driver on the real kernel, beyond the generic suite: its kernel objects and
options, isolation between networks, masquerade, internal networks, published ports reached
from loopback, from outside, from siblings and from the container itself, and restore
remaking what vanished.

Traffic goes only to loopback and into namespaces the tests create: a "client" or "remote
host" namespace hangs off the host by its own veth on a /30 of the test space.
"""

import json
import os
import socket
import subprocess
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import dockyard_net_bridge.driver as driver_module
import pytest
from dockyard.plugin import NetworkDriverError, PortBinding
from dockyard.plugin.testing.network import (
    NetworkDriverSuite,
    NetworkHarness,
    TcpResponder,
    free_port,
    free_subnet,
    in_namespace,
    random_id,
    tcp_ask,
)
from dockyard_net_bridge.firewall import Firewall

pytestmark = pytest.mark.root


def link_details(name: str) -> dict | None:
    result = subprocess.run(["ip", "-d", "-j", "addr", "show", "dev", name], capture_output=True, text=True)
    return json.loads(result.stdout)[0] if result.returncode == 0 else None


def port_rule_comments(table: str) -> list[str]:
    result = subprocess.run(["nft", "-j", "list", "chain", "ip", table, "published"], capture_output=True,
                            text=True)
    if result.returncode != 0:
        return []
    return [item["rule"].get("comment") for item in json.loads(result.stdout)["nftables"] if "rule" in item]


def udp_arrives(address: IPv4Address, port: int, sender_netns: str, listener_netns: str) -> bool:
    """One datagram, no reply needed: what a one-way leak would carry."""
    make = lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # noqa: E731
    with in_namespace(listener_netns, make) as listener, in_namespace(sender_netns, make) as sender:
        listener.bind(("0.0.0.0", port))
        listener.settimeout(1)
        sender.sendto(b"hello", (str(address), port))
        try:
            return listener.recv(16) == b"hello"
        except TimeoutError:
            return False


class TestBridgeDriver:
    driver_name = "bridge"
    make_driver = NetworkDriverSuite.make_driver
    net = NetworkDriverSuite.net
    driver = NetworkDriverSuite.driver

    # -- kernel objects and options ---------------------------------------------------------

    def test_the_bridge_veth_and_table_it_makes(self, net: NetworkHarness, driver, tmp_path: Path) -> None:
        bridge_name = f"dytb{random_id()[:8]}"
        network = net.network(driver, options={"com.docker.network.bridge.name": bridge_name,
                                               "com.docker.network.driver.mtu": "1400"})
        endpoint = net.join(driver, network, host=2)
        bridge = link_details(bridge_name)
        assert bridge["linkinfo"]["info_kind"] == "bridge" and bridge["mtu"] == 1400
        assert [f"{a['local']}/{a['prefixlen']}" for a in bridge["addr_info"] if a["family"] == "inet"] \
            == [str(network.gateway)]
        veth = link_details(f"dyv{endpoint.endpoint_id[:11]}")
        assert veth["master"] == bridge_name and veth["mtu"] == 1400 and "UP" in veth["flags"]
        assert veth["linkinfo"]["info_slave_data"]["hairpin"] is True
        assert net.namespace_of(endpoint).interface("eth0")["mtu"] == 1400
        assert Path(f"/proc/sys/net/ipv4/conf/{bridge_name}/route_localnet").read_text().strip() == "1"
        assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1"
        assert f"dockyard-{network.network_id[:12]}" in Firewall().tables()
        records = tmp_path / "home"
        assert [p.name for p in (records / "networks").iterdir()] == [f"{network.network_id}.json"]
        assert [p.name for p in (records / "endpoints").iterdir()] == [f"{endpoint.endpoint_id}.json"]

    def test_bad_options_leave_nothing(self, net: NetworkHarness, driver) -> None:
        for options in ({"com.docker.network.bridge.name": "dytb-far-too-long-a-name"},
                        {"com.docker.network.driver.mtu": "9"},
                        {"com.docker.network.bridge.enable_ip_masquerade": "perhaps"}):
            with pytest.raises(NetworkDriverError):
                driver.create_network(net.network_spec(options=options))
        assert net.leftovers() == []

    def test_a_bridge_that_exists_with_another_address_is_refused(self, net: NetworkHarness, driver) -> None:
        name, elsewhere = f"dytb{random_id()[:8]}", free_subnet()
        subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
        try:
            subprocess.run(["ip", "addr", "add", f"{elsewhere.network_address + 1}/24", "dev", name],
                           check=True)
            spec = net.network_spec(options={"com.docker.network.bridge.name": name})
            with pytest.raises(NetworkDriverError, match=f"{name} exists already with address"):
                driver.create_network(spec)
            assert link_details(name) is not None, "the driver deleted a bridge it did not make"
            assert net.leftovers(ids=[spec.network_id]) == []
        finally:
            subprocess.run(["ip", "link", "del", name])

    def test_a_subnet_the_host_already_uses_is_refused(self, net: NetworkHarness, driver) -> None:
        client = net.namespace()
        used = free_subnet(30)
        client.connect_to_host(used, default_route=False)
        taken = used.supernet(new_prefix=24)
        spec = replace(net.network_spec(), subnets=(taken,),
                       gateway=IPv4Interface(f"{taken.network_address + 1}/24"))
        with pytest.raises(NetworkDriverError, match="overlaps"):
            driver.create_network(spec)
        assert net.leftovers(ids=[spec.network_id], subnets=[]) == []

    # -- who reaches whom -------------------------------------------------------------------

    def test_networks_are_isolated_from_each_other(self, net: NetworkHarness, driver) -> None:
        red, blue = net.network(driver), net.network(driver)
        in_red, in_blue = net.join(driver, red, host=2), net.join(driver, blue, host=2)
        red_side, blue_side = net.namespace_of(in_red), net.namespace_of(in_blue)
        assert red_side.ping(red.gateway.ip) and blue_side.ping(blue.gateway.ip)
        assert not red_side.ping(in_blue.address.ip)
        assert not blue_side.ping(in_red.address.ip)

    def test_egress_is_masqueraded_behind_the_host(self, net: NetworkHarness, driver) -> None:
        network = net.network(driver)
        container = net.join(driver, network, host=2)
        remote = net.namespace()  # knows only its /30: replies must go to the host's address
        host_side, remote_side = remote.connect_to_host(free_subnet(30), default_route=False)
        with TcpResponder(remote.path, 7000):
            assert tcp_ask(remote_side, 7000, container.netns_path) == str(host_side)

    def test_without_masquerade_egress_keeps_the_container_address(self, net: NetworkHarness,
                                                                   driver) -> None:
        network = net.network(driver, options={"com.docker.network.bridge.enable_ip_masquerade": "false"})
        container = net.join(driver, network, host=2)
        remote = net.namespace()
        _host_side, remote_side = remote.connect_to_host(free_subnet(30), default_route=True)
        with TcpResponder(remote.path, 7000):
            assert tcp_ask(remote_side, 7000, container.netns_path) == str(container.address.ip)

    def test_outside_cannot_open_connections_to_containers(self, net: NetworkHarness, driver) -> None:
        network = net.network(driver)
        container = net.join(driver, network, host=2)
        client = net.namespace()
        client.connect_to_host(free_subnet(30), default_route=True)
        with TcpResponder(container.netns_path, 7000):
            assert tcp_ask(container.address.ip, 7000, client.path, timeout=1) is None

    def test_an_internal_network_has_no_way_out_or_in(self, net: NetworkHarness, driver) -> None:
        network = net.network(driver, internal=True)
        first, second = net.join(driver, network, host=2), net.join(driver, network, host=3)
        assert net.namespace_of(first).ping(second.address.ip)
        remote = net.namespace()
        _host_side, remote_side = remote.connect_to_host(free_subnet(30), default_route=True)
        with TcpResponder(remote.path, 7000):
            assert tcp_ask(remote_side, 7000, first.netns_path, timeout=1) is None
        with TcpResponder(first.netns_path, 7000):
            assert tcp_ask(first.address.ip, 7000, remote.path, timeout=1) is None
        assert udp_arrives(second.address.ip, 7001, first.netns_path, second.netns_path)
        assert not udp_arrives(remote_side, 7001, first.netns_path, remote.path)

    def test_without_icc_containers_reach_only_the_gateway(self, net: NetworkHarness, driver) -> None:
        network = net.network(driver, options={"com.docker.network.bridge.enable_icc": "false"})
        first, second = net.join(driver, network, host=2), net.join(driver, network, host=3)
        assert net.namespace_of(first).ping(network.gateway.ip)
        assert not net.namespace_of(first).ping(second.address.ip)

    # -- published ports --------------------------------------------------------------------

    def test_a_published_port_from_everywhere_and_gone_after_leave(self, net: NetworkHarness,
                                                                   driver) -> None:
        network, other = net.network(driver), net.network(driver)
        host_port = free_port()
        server_side = net.namespace()
        client = net.namespace()
        host_address, client_address = client.connect_to_host(free_subnet(30), default_route=True)
        with TcpResponder(server_side.path, 80) as responder:
            server = net.join(driver, network, server_side, host=2, ports=[PortBinding("tcp", 80, host_port)])
            sibling = net.join(driver, network, host=3)
            stranger = net.join(driver, other, host=2)
            assert tcp_ask("127.0.0.1", host_port) == str(network.gateway.ip)
            assert tcp_ask(host_address, host_port) is not None  # the host, to one of its addresses
            assert tcp_ask(host_address, host_port, client.path) == str(client_address)  # the source kept
            assert tcp_ask(host_address, host_port, sibling.netns_path) == str(network.gateway.ip)  # hairpin
            assert tcp_ask(host_address, host_port, server.netns_path) is not None  # to itself
            assert tcp_ask(host_address, host_port, stranger.netns_path) is not None  # another network
            assert len(responder.peers) == 6
            table = f"dockyard-{network.network_id[:12]}"
            assert port_rule_comments(table) == [server.endpoint_id]
            driver.leave(network, server)
            assert port_rule_comments(table) == []
            assert tcp_ask("127.0.0.1", host_port, timeout=0.5) is None
            assert tcp_ask(host_address, host_port, client.path, timeout=0.5) is None

    def test_a_port_bound_to_one_host_address(self, net: NetworkHarness, driver) -> None:
        network = net.network(driver, options={"com.docker.network.bridge.host_binding_ipv4": "127.0.0.1"})
        client = net.namespace()
        host_address, _ = client.connect_to_host(free_subnet(30), default_route=True)
        loopback_only, anywhere = free_port(), free_port()
        server_side = net.namespace()
        with TcpResponder(server_side.path, 80):
            net.join(driver, network, server_side, ports=[
                PortBinding("tcp", 80, loopback_only),
                PortBinding("tcp", 80, anywhere, IPv4Address(str(host_address)))])
            assert tcp_ask("127.0.0.1", loopback_only) is not None
            assert tcp_ask(host_address, loopback_only, client.path, timeout=0.5) is None
            assert tcp_ask(host_address, anywhere, client.path) is not None
            assert tcp_ask("127.0.0.1", anywhere, timeout=0.5) is None

    def test_leave_removes_only_its_own_port_rules(self, net: NetworkHarness, driver) -> None:
        network = net.network(driver)
        ports = free_port(), free_port()
        sides = net.namespace(), net.namespace()
        with TcpResponder(sides[0].path, 80), TcpResponder(sides[1].path, 80):
            first = net.join(driver, network, sides[0], host=2, ports=[PortBinding("tcp", 80, ports[0])])
            second = net.join(driver, network, sides[1], host=3, ports=[PortBinding("tcp", 80, ports[1])])
            driver.join(network, first)  # a repeat must not double its rules
            assert sorted(port_rule_comments(f"dockyard-{network.network_id[:12]}")) \
                == sorted([first.endpoint_id, second.endpoint_id])
            driver.leave(network, first)
            assert port_rule_comments(f"dockyard-{network.network_id[:12]}") == [second.endpoint_id]
            assert tcp_ask("127.0.0.1", ports[1]) == str(network.gateway.ip)

    # -- failures, restarts, costs ------------------------------------------------------------

    @pytest.mark.parametrize("failing_step", ["namespace", "firewall"])
    def test_a_join_failing_after_the_veth_exists_undoes_it(self, net: NetworkHarness, driver, monkeypatch,
                                                            failing_step: str) -> None:
        network = net.network(driver)

        def fail(*arguments, **keywords):
            raise NetworkDriverError(f"injected failure in the {failing_step} step")

        if failing_step == "namespace":
            monkeypatch.setattr(driver_module, "configure_interface", fail)
        else:
            monkeypatch.setattr(Firewall, "add_ports", fail)
        endpoint = net.endpoint_spec(network, net.namespace(), 2, ports=[PortBinding("tcp", 80, free_port())])
        with pytest.raises(NetworkDriverError, match="injected"):
            driver.join(network, endpoint)
        assert net.leftovers(ids=[endpoint.endpoint_id], subnets=[]) == []
        assert "eth0" not in net.namespace_of(endpoint).links()
        assert port_rule_comments(f"dockyard-{network.network_id[:12]}") == []
        assert driver._state.endpoint(endpoint.endpoint_id) is None

    def test_restore_remakes_what_vanished(self, net: NetworkHarness) -> None:
        before = net.driver()
        network = net.network(before)
        host_port = free_port()
        server_side = net.namespace()
        with TcpResponder(server_side.path, 80):
            server = net.join(before, network, server_side, ports=[PortBinding("tcp", 80, host_port)])
            lost = net.join(before, network, host=3)
            bridge, table = f"dy-{network.network_id[:12]}", f"dockyard-{network.network_id[:12]}"
            subprocess.run(["ip", "link", "del", f"dyv{lost.endpoint_id[:11]}"], check=True)
            subprocess.run(["ip", "link", "del", bridge], check=True)
            subprocess.run(["nft", "delete", "table", "ip", table], check=True)
            after = net.driver()
            after.restore([network], [server, lost])
            assert link_details(f"dyv{server.endpoint_id[:11]}")["master"] == bridge
            assert tcp_ask("127.0.0.1", host_port) == str(network.gateway.ip)
            rejoined = net.namespace_of(lost)  # its veth was gone: restore joined it again
            NetworkDriverSuite.assert_wired(rejoined, network, lost)
            assert rejoined.ping(server.address.ip) and rejoined.ping(network.gateway.ip)

    def test_delete_network_takes_forgotten_endpoints_along(self, net: NetworkHarness, driver) -> None:
        network = net.network(driver)
        endpoint = net.join(driver, network, host=2, ports=[PortBinding("tcp", 80, free_port())])
        driver.delete_network(network.network_id)
        assert net.leftovers() == []
        assert "eth0" not in net.namespace_of(endpoint).links()

    def test_join_spawns_no_process_but_one_nft_for_ports(self, net: NetworkHarness, driver,
                                                          monkeypatch) -> None:
        network = net.network(driver)
        plain = net.endpoint_spec(network, net.namespace(), 2)
        published = net.endpoint_spec(network, net.namespace(), 3,
                                      ports=[PortBinding("tcp", 80, free_port())])
        net.made += [(driver, plain, network), (driver, published, network)]
        started: list[list[str]] = []
        real_popen = subprocess.Popen

        class CountingPopen(real_popen):
            def __init__(self, args, *rest, **keywords):
                started.append(list(args))
                super().__init__(args, *rest, **keywords)

        monkeypatch.setattr(subprocess, "Popen", CountingPopen)
        driver.join(network, plain)
        assert started == []
        driver.join(network, published)
        assert len(started) == 1 and os.path.basename(started[0][0]) == "nft"
        monkeypatch.undo()

