"""What a bridge network is made of, decided without the kernel: options, names, and the nft
table generated for it."""

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest
from dockyard.plugin import EndpointSpec, NetworkDriverError, NetworkSpec, PortBinding
from dockyard_net_bridge.firewall import table_script
from dockyard_net_bridge.options import bridge_network, check_endpoint, veth_name
from dockyard_net_bridge.state import EndpointRecord

NETWORK_ID = "0123456789abcdef" * 4


def spec(**changes) -> NetworkSpec:
    settings = dict(network_id=NETWORK_ID, name="web", subnets=(IPv4Network("10.99.0.0/24"),),
                    gateway=IPv4Interface("10.99.0.1/24"))
    settings.update(changes)
    return NetworkSpec(**settings)


def test_names_follow_the_ids():
    network = bridge_network(spec())
    assert (network.bridge, network.table) == ("dy-0123456789ab", "dockyard-0123456789ab")
    assert veth_name("fedcba9876543210" * 4) == "dyvfedcba98765"
    assert len(network.bridge) <= 15 and len(veth_name("f" * 64)) <= 15


def test_docker_options_are_understood():
    network = bridge_network(spec(options={
        "com.docker.network.bridge.name": "web0", "com.docker.network.driver.mtu": "1400",
        "com.docker.network.bridge.enable_ip_masquerade": "false",
        "com.docker.network.bridge.enable_icc": "False",
        "com.docker.network.bridge.host_binding_ipv4": "127.0.0.1",
        "com.docker.network.bridge.default_bridge": "true"}))
    assert network.bridge == "web0" and network.mtu == 1400
    assert not network.masquerade and not network.icc
    assert network.host_binding == IPv4Address("127.0.0.1")
    defaults = bridge_network(spec(options={"com.docker.network.bridge.host_binding_ipv4": "0.0.0.0"}))
    assert defaults.masquerade and defaults.icc and defaults.mtu is None and defaults.host_binding is None


@pytest.mark.parametrize("options, named", [
    ({"com.docker.network.bridge.inhibit_ipv4": "true"}, "com.docker.network.bridge.inhibit_ipv4"),
    ({"parent": "eth0"}, "parent"),
    ({"com.docker.network.bridge.name": "a-name-far-too-long"}, "a-name-far-too-long"),
    ({"com.docker.network.bridge.name": "bad/name"}, "bad/name"),
    ({"com.docker.network.driver.mtu": "huge"}, "com.docker.network.driver.mtu"),
    ({"com.docker.network.driver.mtu": "20"}, "68 to 65535"),
    ({"com.docker.network.bridge.enable_icc": "maybe"}, "enable_icc"),
    ({"com.docker.network.bridge.host_binding_ipv4": "localhost"}, "host_binding_ipv4"),
])
def test_bad_options_are_refused_by_name(options, named):
    with pytest.raises(NetworkDriverError, match=named.replace(".", r"\.")):
        bridge_network(spec(options=options))


def test_subnets_and_gateways_are_checked():
    with pytest.raises(NetworkDriverError, match="gateway"):
        bridge_network(spec(gateway=None))
    with pytest.raises(NetworkDriverError, match="not an address of subnet"):
        bridge_network(spec(gateway=IPv4Interface("10.98.0.1/24")))
    with pytest.raises(NetworkDriverError, match="one IPv4 subnet"):
        bridge_network(spec(subnets=(IPv4Network("10.99.0.0/24"), IPv4Network("10.98.0.0/24"))))
    assert bridge_network(spec(subnets=())).subnet == IPv4Network("10.99.0.0/24")
    with pytest.raises(NetworkDriverError, match="invalid network id"):
        bridge_network(spec(network_id='x"; flush ruleset'))


def test_endpoints_are_checked_before_join():
    network = bridge_network(spec())
    def endpoint(address: str | None, **changes) -> EndpointSpec:
        settings = dict(endpoint_id="e" * 64, container_id="c" * 64, netns_path="/proc/1/ns/net",
                        network_id=NETWORK_ID, address=IPv4Interface(address) if address else None)
        return EndpointSpec(**{**settings, **changes})

    check_endpoint(network, endpoint("10.99.0.2/24", ports=(PortBinding("tcp", 80, 8080),)))
    for bad, message in [
        (endpoint("10.1.0.2/24"), "outside"),
        (endpoint(None, ports=(PortBinding("tcp", 80, 8080),)), "need the endpoint"),
        (endpoint("10.99.0.2/24", ports=(PortBinding("icmp", 80, 8080),)), "icmp"),
        (endpoint("10.99.0.2/24", ports=(PortBinding("tcp", 80, 70000),)), "70000"),
        (endpoint(None, interface_name="a" * 16), "interface name"),
        (endpoint(None, endpoint_id="../../etc"), "invalid endpoint id"),
    ]:
        with pytest.raises(NetworkDriverError, match=message):
            check_endpoint(network, bad)


def test_the_table_has_nat_isolation_and_ports():
    network = bridge_network(spec(options={"com.docker.network.bridge.host_binding_ipv4": "10.0.0.5"}))
    ports = (PortBinding("tcp", 80, 8080), PortBinding("udp", 53, 5353, IPv4Address("127.0.0.1")),
             PortBinding("sctp", 9, 9999))
    record = EndpointRecord("e" * 64, NETWORK_ID, "dyveeeeeeeeeee", IPv4Interface("10.99.0.2/24"), ports)
    script = table_script(network, [record])
    assert script.startswith("add table ip dockyard-0123456789ab\ndelete table ip dockyard-0123456789ab\n")
    assert 'ip saddr 10.99.0.0/24 oifname != "dy-0123456789ab" masquerade' in script
    assert 'ip saddr 127.0.0.0/8 oifname "dy-0123456789ab" masquerade' in script
    assert 'ip saddr 10.99.0.0/24 oifname "dy-0123456789ab" ct status dnat masquerade' in script
    assert 'oifname "dy-0123456789ab" iifname != "dy-0123456789ab" drop' in script
    assert f'ip daddr 10.0.0.5 tcp dport 8080 dnat to 10.99.0.2:80 comment "{"e" * 64}"' in script
    assert "ip daddr 127.0.0.1 udp dport 5353 dnat to 10.99.0.2:53" in script
    assert "ip daddr 10.0.0.5 sctp dport 9999 dnat to 10.99.0.2:9" in script
    assert script.count("fib daddr type local jump published") == 2


def test_internal_and_unmasqueraded_networks_have_no_masquerade_out():
    internal = table_script(bridge_network(spec(internal=True)), [])
    assert "oifname != \"dy-0123456789ab\" masquerade" not in internal
    assert 'iifname "dy-0123456789ab" oifname != "dy-0123456789ab" drop' in internal
    plain = table_script(bridge_network(spec(options={
        "com.docker.network.bridge.enable_ip_masquerade": "false"})), [])
    assert "oifname != \"dy-0123456789ab\" masquerade" not in plain
    assert "ct state established,related accept" in plain
