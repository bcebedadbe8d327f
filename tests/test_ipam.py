"""Address pools, addresses and published-port requests, without root or a kernel."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv4Network

import pytest
from dockyard.errors import Conflict, Forbidden, InvalidParameter
from dockyard.networks.ipam import LocalIpam, parse_subnet
from dockyard.networks.ports import PortAllocator, PortRequest, docker_ports, requests_from


def ipam_with_routes(*routes: str) -> LocalIpam:
    return LocalIpam(routes=lambda: [IPv4Network(r) for r in routes])


def test_pools_skip_the_hosts_routes_and_each_other():
    ipam = ipam_with_routes("172.17.0.0/16", "172.19.5.0/24")
    assert ipam.request_pool() == IPv4Network("172.18.0.0/16")
    assert ipam.request_pool() == IPv4Network("172.20.0.0/16")  # 172.19/16 overlaps a /24 route
    ipam.release_pool(IPv4Network("172.18.0.0/16"))
    assert ipam.request_pool() == IPv4Network("172.18.0.0/16")


def test_after_the_172_pools_come_192_168_slices():
    ipam = ipam_with_routes(*[f"172.{n}.0.0/16" for n in range(17, 32)])
    assert ipam.request_pool() == IPv4Network("192.168.0.0/20")


def test_an_explicit_subnet_may_not_overlap_ours():
    ipam = ipam_with_routes()
    ipam.request_pool(IPv4Network("10.1.0.0/16"))
    with pytest.raises(Forbidden, match="Pool overlaps with other one on this address space"):
        ipam.request_pool(IPv4Network("10.1.2.0/24"))


def test_addresses_in_order_static_ones_and_exhaustion():
    ipam = ipam_with_routes()
    subnet = ipam.request_pool(IPv4Network("10.9.0.0/29"))  # 6 usable addresses
    assert str(ipam.request_address(subnet)) == "10.9.0.1/29"
    assert str(ipam.request_address(subnet, "10.9.0.5")) == "10.9.0.5/29"
    with pytest.raises(Conflict, match="Address already in use"):
        ipam.request_address(subnet, "10.9.0.5")
    with pytest.raises(InvalidParameter, match="no configured subnet or ip-range contain the IP address"):
        ipam.request_address(subnet, "10.9.0.7")  # the broadcast address
    taken = [str(ipam.request_address(subnet).ip) for _ in range(4)]
    assert taken == ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.6"]
    with pytest.raises(Forbidden, match="no available IPv4 addresses"):
        ipam.request_address(subnet)
    ipam.release_address(subnet, IPv4Address("10.9.0.3"))
    assert str(ipam.request_address(subnet).ip) == "10.9.0.3"


def test_ip_range_limits_dynamic_addresses():
    ipam = ipam_with_routes()
    subnet = ipam.request_pool(IPv4Network("10.8.0.0/24"))
    assert str(ipam.request_address(subnet, ip_range=IPv4Network("10.8.0.128/25")).ip) == "10.8.0.129"


def test_subnets_with_host_bits_say_what_was_meant():
    with pytest.raises(InvalidParameter, match="did you mean 10.0.0.0/24"):
        parse_subnet("10.0.0.7/24")
    with pytest.raises(InvalidParameter, match="IPv4 CIDR"):
        parse_subnet("not-a-subnet")


def test_port_requests_from_bindings_and_publish_all():
    requests = requests_from({"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                                               "53/udp": [{"HostPort": ""}]},
                              "PublishAllPorts": True},
                             {"80/tcp": {}, "9000/tcp": {}})
    assert PortRequest("tcp", 80, "127.0.0.1", (8080, 8080)) in requests
    assert PortRequest("udp", 53, "", None) in requests
    assert PortRequest("tcp", 9000, "", None) in requests
    assert len(requests) == 3
    with pytest.raises(InvalidParameter, match="invalid proto"):
        requests_from({"PortBindings": {"80/icmp": [{}]}}, None)
    with pytest.raises(InvalidParameter, match="invalid hostPort"):
        requests_from({"PortBindings": {"80/tcp": [{"HostPort": "99999"}]}}, None)


def test_allocator_holds_ports_and_refuses_them_twice():
    allocator = PortAllocator()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bindings = allocator.allocate("first", [PortRequest("tcp", 80, "127.0.0.1", (port, port))])
    assert bindings[0].host_port == port
    with pytest.raises(Conflict, match="port is already allocated"):
        allocator.allocate("second", [PortRequest("tcp", 80, "", (port, port))])
    with socket.socket() as squatter, pytest.raises(OSError):
        squatter.bind(("127.0.0.1", port))  # held while the container publishes it
    allocator.release("first")
    assert allocator.allocate("second", [PortRequest("tcp", 80, "127.0.0.1", (port, port))])
    allocator.release("second")


def test_a_failed_request_releases_the_ports_taken_before_it():
    allocator = PortAllocator()
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        busy = held.getsockname()[1]
        with pytest.raises(Conflict, match="address already in use"):
            allocator.allocate("c", [PortRequest("tcp", 80, "127.0.0.1", None),
                                     PortRequest("tcp", 81, "127.0.0.1", (busy, busy))])
    assert allocator._held == {}


def test_docker_ports_shape():
    allocator = PortAllocator()
    bindings = allocator.allocate("c", [PortRequest("tcp", 80, "127.0.0.1", None)])
    shown = docker_ports(bindings, {"80/tcp": {}, "443/tcp": {}})
    assert shown == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(bindings[0].host_port)}],
                     "443/tcp": None}
    allocator.release("c")
