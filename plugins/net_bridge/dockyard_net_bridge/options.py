"""Owns what a bridge network is made of, decided from its NetworkSpec before any kernel work:
the `-o` options this driver accepts, the names of its kernel objects (bridge, nft table,
host-side veth), and the validation that makes a bad request fail with nothing created.

Docker options accepted:
  com.docker.network.bridge.name                  the bridge's name (default dy-<id[:12]>)
  com.docker.network.driver.mtu                   the bridge's and every container side's MTU
  com.docker.network.bridge.enable_ip_masquerade  false: containers' egress keeps their address
  com.docker.network.bridge.enable_icc            false: containers of the network cannot talk
                                                  to each other (bridge ports are isolated)
  com.docker.network.bridge.host_binding_ipv4     the host address of published ports that name none
  com.docker.network.bridge.default_bridge        accepted and ignored: it only marks Docker's own
                                                  default network, nothing to do in the kernel
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from dockyard.plugin import EndpointSpec, NetworkDriverError, NetworkSpec

BRIDGE_NAME = "com.docker.network.bridge.name"
MTU = "com.docker.network.driver.mtu"
ENABLE_IP_MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
ENABLE_ICC = "com.docker.network.bridge.enable_icc"
HOST_BINDING_IPV4 = "com.docker.network.bridge.host_binding_ipv4"
DEFAULT_BRIDGE = "com.docker.network.bridge.default_bridge"
ACCEPTED = (BRIDGE_NAME, MTU, ENABLE_IP_MASQUERADE, ENABLE_ICC, HOST_BINDING_IPV4, DEFAULT_BRIDGE)

BRIDGE_PREFIX = "dy-"
TABLE_PREFIX = "dockyard-"
VETH_PREFIX = "dyv"
MAX_IFNAME = 15  # IFNAMSIZ less the terminating NUL

# Ids end up in interface names, nft identifiers and rule comments: keep them to characters
# that are safe in all three (Docker's ids are 64 hex digits).
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Linux allows more in interface names, but these must also sit in nft strings unquoted.
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_TRUE = {"1", "t", "true", "yes", "on"}  # Go's strconv.ParseBool, as Docker parses them
_FALSE = {"0", "f", "false", "no", "off"}
PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class BridgeNetwork:
    """Everything the kernel work of one network needs, validated."""

    network_id: str
    bridge: str
    table: str
    subnet: IPv4Network
    gateway: IPv4Interface
    mtu: int | None  # None: the kernel's default
    internal: bool
    masquerade: bool
    icc: bool
    host_binding: IPv4Address | None


def check_id(kind: str, value: str) -> str:
    if not value or not _ID.match(value) or len(value) > 128:
        raise NetworkDriverError(f"invalid {kind} id {value!r}: use letters, digits, '_', '.' or '-'")
    return value


def table_name(network_id: str) -> str:
    return TABLE_PREFIX + check_id("network", network_id)[:12]


def default_bridge_name(network_id: str) -> str:
    return BRIDGE_PREFIX + check_id("network", network_id)[:12]


def veth_name(endpoint_id: str) -> str:
    return VETH_PREFIX + check_id("endpoint", endpoint_id)[:11]


def check_interface_name(name: str, what: str) -> str:
    if not name or len(name) > MAX_IFNAME or name in (".", "..") or not _IFNAME.match(name):
        raise NetworkDriverError(
            f"invalid {what} {name!r}: an interface name is 1 to {MAX_IFNAME} letters, digits, "
            f"'_', '.' or '-'")
    return name


def _boolean(option: str, value: str) -> bool:
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise NetworkDriverError(f"invalid value {value!r} for option {option}: use true or false")


def _mtu(value: str) -> int | None:
    try:
        mtu = int(value)
    except ValueError:
        raise NetworkDriverError(f"invalid value {value!r} for option {MTU}: use a number") from None
    if mtu == 0:
        return None  # Docker's "not set"
    if not 68 <= mtu <= 65535:
        raise NetworkDriverError(f"invalid MTU {mtu} in option {MTU}: use 68 to 65535")
    return mtu


def _address_option(option: str, value: str) -> IPv4Address | None:
    try:
        address = IPv4Address(value.strip())
    except ValueError:
        raise NetworkDriverError(f"invalid value {value!r} for option {option}: use an IPv4 "
                                 f"address") from None
    return None if address == IPv4Address("0.0.0.0") else address


def bridge_network(spec: NetworkSpec) -> BridgeNetwork:
    """Validate a NetworkSpec; raises NetworkDriverError naming what is wrong."""
    unknown = sorted(set(spec.options) - set(ACCEPTED))
    if unknown:
        raise NetworkDriverError(
            f"the bridge driver does not support the option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(unknown)} (it accepts {', '.join(ACCEPTED)})")
    options = spec.options
    table = table_name(spec.network_id)
    bridge = check_interface_name(options.get(BRIDGE_NAME) or default_bridge_name(spec.network_id),
                                  f"bridge name (option {BRIDGE_NAME})")
    subnets = list(spec.subnets)
    if len(subnets) > 1:
        raise NetworkDriverError(f"a bridge network has one IPv4 subnet, not {len(subnets)} "
                                 f"({', '.join(map(str, subnets))})")
    if spec.gateway is None:
        raise NetworkDriverError("a bridge network needs a gateway address (the engine's IPAM assigns "
                                 "one with the subnet)")
    subnet = subnets[0] if subnets else spec.gateway.network
    if spec.gateway.ip not in subnet:
        raise NetworkDriverError(f"the gateway {spec.gateway} is not an address of subnet {subnet}")
    if subnet.prefixlen < 31 and spec.gateway.ip in (subnet.network_address, subnet.broadcast_address):
        raise NetworkDriverError(f"the gateway {spec.gateway.ip} is the network or broadcast address "
                                 f"of {subnet}")
    return BridgeNetwork(
        network_id=spec.network_id, bridge=bridge, table=table, subnet=subnet,
        gateway=IPv4Interface(f"{spec.gateway.ip}/{subnet.prefixlen}"),
        mtu=_mtu(options[MTU]) if MTU in options else None, internal=spec.internal,
        masquerade=_boolean(ENABLE_IP_MASQUERADE, options.get(ENABLE_IP_MASQUERADE, "true")),
        icc=_boolean(ENABLE_ICC, options.get(ENABLE_ICC, "true")),
        host_binding=(_address_option(HOST_BINDING_IPV4, options[HOST_BINDING_IPV4])
                      if HOST_BINDING_IPV4 in options else None),
    )


def check_endpoint(network: BridgeNetwork, endpoint: EndpointSpec) -> None:
    """What `join` refuses before touching anything."""
    check_id("endpoint", endpoint.endpoint_id)
    check_interface_name(endpoint.interface_name, "container interface name")
    if endpoint.address is not None and endpoint.address.ip not in network.subnet:
        raise NetworkDriverError(f"endpoint address {endpoint.address} is outside the network's "
                                 f"subnet {network.subnet}")
    if endpoint.ports and endpoint.address is None:
        raise NetworkDriverError("published ports need the endpoint's address: the engine assigns "
                                 "one before join")
    for binding in endpoint.ports:
        if binding.protocol not in PROTOCOLS:
            raise NetworkDriverError(f"cannot publish {binding.protocol} ports: use one of "
                                     f"{', '.join(PROTOCOLS)}")
        for port in (binding.host_port, binding.container_port):
            if not 0 < port < 65536:
                raise NetworkDriverError(f"invalid port {port} in a published port: use 1 to 65535")
