"""The network driver contract: networks, and endpoints joining containers to them.

Shaped after libnetwork and CNI: a driver creates and deletes networks, and connects a
container's network namespace to one (an endpoint). Address management is a separate
role (`Ipam`) so a driver never invents addresses of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv4Network
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class NetworkSpec:
    """A network as the engine hands it to its driver."""

    network_id: str
    name: str
    subnets: Sequence[IPv4Network] = ()
    gateway: IPv4Interface | None = None
    internal: bool = False
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EndpointSpec:
    """One container's attachment to one network."""

    endpoint_id: str
    container_id: str
    netns_path: str  # the container's network namespace (/proc/PID/ns/net or a bind)
    address: IPv4Interface | None = None
    mac_address: str | None = None
    interface_name: str = "eth0"


@runtime_checkable
class NetworkDriver(Protocol):
    scope: str
    """"local" (one host) or "global" (networks span hosts, like overlay)."""

    private_namespace: bool
    """False for drivers whose containers share the host's stack (host): the runtime
    then creates no network namespace. True for everything else."""

    def create_network(self, network: NetworkSpec) -> None: ...

    def delete_network(self, network_id: str) -> None: ...

    def join(self, network: NetworkSpec, endpoint: EndpointSpec) -> None:
        """Give the container an interface on `network` inside `endpoint.netns_path`."""

    def leave(self, network: NetworkSpec, endpoint: EndpointSpec) -> None: ...

    def restore(self, networks: Sequence[NetworkSpec], endpoints: Sequence[EndpointSpec]) -> None:
        """After a daemon restart: make sure the kernel state of these still exists."""


@runtime_checkable
class Ipam(Protocol):
    """Address management for one address space."""

    def request_pool(self, subnet: IPv4Network | None) -> IPv4Network: ...

    def release_pool(self, subnet: IPv4Network) -> None: ...

    def request_address(self, subnet: IPv4Network, wanted: str | None = None) -> IPv4Interface: ...

    def release_address(self, subnet: IPv4Network, address: IPv4Interface) -> None: ...
