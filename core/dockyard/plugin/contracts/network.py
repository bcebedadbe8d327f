"""The network driver contract: networks, and endpoints joining containers to them.

Shaped after libnetwork and CNI: a driver creates and deletes networks, and connects a
container's network namespace to one (an endpoint). The engine owns everything that is
not kernel work: it assigns addresses (the `Ipam` role, so a driver never invents
addresses of its own), MAC addresses, host ports for published ports (it reserves
them), names and DNS. The driver owns the kernel objects: links, addresses, routes,
firewall rules. Every call may be repeated after a crash, so each must be idempotent:
creating what exists, or deleting what is gone, is not an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class NetworkSpec:
    """A network as the engine hands it to its driver.

    `options` are the `-o key=value` pairs of `docker network create` (Docker's names,
    such as com.docker.network.bridge.name or com.docker.network.driver.mtu, or
    driver-specific ones such as parent for macvlan). A driver rejects an option it
    does not understand in `create_network`, with a message naming it."""

    network_id: str
    name: str
    subnets: Sequence[IPv4Network] = ()
    gateway: IPv4Interface | None = None  # the gateway address, with the subnet's prefix
    internal: bool = False  # no traffic in or out of the network, only between members
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PortBinding:
    """One published port: traffic to host_ip:host_port reaches the container's
    container_port. The engine has already chosen (and reserved) host_port."""

    protocol: str  # "tcp" or "udp"
    container_port: int
    host_port: int
    host_ip: IPv4Address | None = None  # None: every address of the host


@dataclass(frozen=True)
class EndpointSpec:
    """One container's attachment to one network."""

    endpoint_id: str
    container_id: str
    netns_path: str  # the container's network namespace (/proc/PID/ns/net or a bind)
    network_id: str = ""  # the network it joins (restore gets endpoints of many networks)
    address: IPv4Interface | None = None  # with the subnet's prefix length
    mac_address: str | None = None
    interface_name: str = "eth0"
    default_route: bool = True  # route everything via this network's gateway
    ports: Sequence[PortBinding] = ()


class NetworkDriverError(Exception):
    """A failure the user can act on; its message says what to do."""


@runtime_checkable
class NetworkDriver(Protocol):
    scope: str
    """"local" (one host) or "global" (networks span hosts, like overlay)."""

    private_namespace: bool
    """False for drivers whose containers share the host's stack (host): the runtime
    then creates no network namespace. True for everything else."""

    def create_network(self, network: NetworkSpec) -> None:
        """Create the network's kernel objects (a bridge, a parent link...). Raise
        NetworkDriverError for bad options: nothing may be left behind then."""

    def delete_network(self, network_id: str) -> None:
        """Delete everything `create_network` made; the engine calls it only once no
        endpoint is left."""

    def join(self, network: NetworkSpec, endpoint: EndpointSpec) -> None:
        """Give the container an interface on `network` inside `endpoint.netns_path`,
        with the endpoint's address and MAC, a default route via the gateway when
        `endpoint.default_route`, and its published ports. On failure, undo the part
        done and raise: the container must not start half-wired."""

    def leave(self, network: NetworkSpec, endpoint: EndpointSpec) -> None:
        """Undo `join`. The namespace may already be gone (the container exited): the
        host-side objects (links, firewall rules) must still go."""

    def restore(self, networks: Sequence[NetworkSpec], endpoints: Sequence[EndpointSpec]) -> None:
        """After a daemon restart (or a reboot): make the kernel state of these networks
        and endpoints exist again, and remove objects of this driver that belong to
        networks or endpoints not listed (they died with a crash)."""


@runtime_checkable
class GlobalNetworkAllocator(Protocol):
    """Optional, for drivers of scope "global": what must be unique across the cluster.

    The engine calls `allocate_network` once per network, on the host where the user
    creates it, before any host's `create_network`; the options it returns (a VXLAN id,
    say) are stored in the network's record and reach `create_network` on every host.
    `free_network` is called once, on the host where the network is removed, after
    every host's endpoints are gone. Both use the store of `DriverContext.cluster`."""

    def allocate_network(self, network: NetworkSpec) -> Mapping[str, str]: ...

    def free_network(self, network: NetworkSpec) -> None: ...


@runtime_checkable
class Ipam(Protocol):
    """Address management for one address space."""

    def request_pool(self, subnet: IPv4Network | None) -> IPv4Network: ...

    def release_pool(self, subnet: IPv4Network) -> None: ...

    def request_address(self, subnet: IPv4Network, wanted: str | None = None) -> IPv4Interface: ...

    def release_address(self, subnet: IPv4Network, address: IPv4Interface) -> None: ...
