"""Address management for local networks: subnets from pools, addresses within them.

Docker's defaults: subnets come from 172.17.0.0/16 ... 172.31.0.0/16, then /20 slices of
192.168.0.0/16; the first usable address is the gateway. A pool is skipped when it
overlaps a route the host already has (so dockyard coexists with docker0, a VPN or a
LAN) or a network of ours. State lives in memory: the network manager persists networks
and endpoints and replays them here at start (`reserve_pool`, `reserve_address`).
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterable, Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from dockyard.errors import Conflict, Forbidden, InvalidParameter


def default_pools() -> Iterator[IPv4Network]:
    for second in range(17, 32):
        yield IPv4Network(f"172.{second}.0.0/16")
    yield from IPv4Network("192.168.0.0/16").subnets(new_prefix=20)


def host_routes() -> list[IPv4Network]:
    """Destinations of the host's IPv4 routes (main table), from /proc/net/route."""
    routes = []
    try:
        with open("/proc/net/route") as table:
            next(table)
            for line in table:
                fields = line.split()
                destination = IPv4Address(bytes.fromhex(fields[1])[::-1])
                mask = IPv4Address(bytes.fromhex(fields[7])[::-1])
                if int(mask) == 0:
                    continue  # the default route overlaps everything: it does not count
                routes.append(IPv4Network(f"{destination}/{mask}", strict=False))
    except (OSError, StopIteration, ValueError):
        pass
    return routes


class LocalIpam:
    def __init__(self, pools: Callable[[], Iterable[IPv4Network]] = default_pools,
                 routes: Callable[[], list[IPv4Network]] = host_routes) -> None:
        self._pools = pools
        self._routes = routes
        self._lock = threading.Lock()
        self._subnets: dict[IPv4Network, set[IPv4Address]] = {}

    # -- subnets -------------------------------------------------------------------

    def request_pool(self, subnet: IPv4Network | None = None) -> IPv4Network:
        with self._lock:
            if subnet is not None:
                if any(subnet.overlaps(taken) for taken in self._subnets):
                    raise Forbidden("invalid pool request: Pool overlaps with other one on this "
                                    "address space")
                self._subnets[subnet] = set()
                return subnet
            routes = self._routes()
            for candidate in self._pools():
                if any(candidate.overlaps(taken) for taken in self._subnets):
                    continue
                if any(candidate.overlaps(route) for route in routes):
                    continue
                self._subnets[candidate] = set()
                return candidate
        raise Forbidden("could not find an available, non-overlapping IPv4 address pool among the "
                        "defaults to assign to the network: give one with --subnet")

    def reserve_pool(self, subnet: IPv4Network) -> None:
        """Replay a pool known from saved state (no overlap check: it was checked)."""
        with self._lock:
            self._subnets.setdefault(subnet, set())

    def release_pool(self, subnet: IPv4Network) -> None:
        with self._lock:
            self._subnets.pop(subnet, None)

    # -- addresses -----------------------------------------------------------------

    def request_address(self, subnet: IPv4Network, wanted: str | IPv4Address | None = None,
                        ip_range: IPv4Network | None = None) -> IPv4Interface:
        with self._lock:
            used = self._subnets.get(subnet)
            if used is None:
                raise InvalidParameter(f"no address pool {subnet} on this network")
            if wanted is not None:
                try:
                    address = IPv4Address(str(wanted))
                except ValueError:
                    raise InvalidParameter(f"invalid IPv4 address: {wanted}") from None
                if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
                    raise InvalidParameter(f"no configured subnet or ip-range contain the IP address "
                                           f"{address}")
                if address in used:
                    raise Conflict("Address already in use")
                used.add(address)
                return IPv4Interface(f"{address}/{subnet.prefixlen}")
            for address in (ip_range or subnet).hosts():
                if address not in used and address in subnet:
                    used.add(address)
                    return IPv4Interface(f"{address}/{subnet.prefixlen}")
        raise Forbidden(f"no available IPv4 addresses on this network's address pools: {subnet}")

    def reserve_address(self, subnet: IPv4Network, address: IPv4Address) -> None:
        with self._lock:
            self._subnets.setdefault(subnet, set()).add(address)

    def release_address(self, subnet: IPv4Network, address: IPv4Interface | IPv4Address) -> None:
        with self._lock:
            used = self._subnets.get(subnet)
            if used is not None:
                used.discard(address.ip if isinstance(address, IPv4Interface) else address)


def parse_subnet(text: str) -> IPv4Network:
    try:
        return ipaddress.IPv4Network(text, strict=True)
    except ValueError as exc:
        if "/" in text:
            try:
                ipaddress.IPv4Network(text, strict=False)
                raise InvalidParameter(f"invalid subnet {text}: it has host bits set; did you mean "
                                       f"{ipaddress.IPv4Network(text, strict=False)}?") from None
            except ValueError:
                pass
        raise InvalidParameter(f"invalid subnet {text}: {exc} (IPv4 CIDR such as 10.1.0.0/24)") from None


def check_pool_request(pool: IPv4Network, gateway: str | None,
                       ip_range: str | None) -> tuple[IPv4Address | None, IPv4Network | None]:
    """`--gateway` and `--ip-range` checked against the subnet they must lie in: (the
    gateway asked for or None, the range or None), with Docker's messages."""
    chosen_range = None
    if ip_range:
        chosen_range = parse_subnet(ip_range)
        if not chosen_range.subnet_of(pool):
            raise InvalidParameter(f"invalid ip-range {ip_range}: it is not within subnet {pool}")
    gateway_address = None
    if gateway:
        try:
            gateway_address = IPv4Address(gateway)
        except ValueError:
            raise InvalidParameter(f"invalid gateway address {gateway}") from None
        if gateway_address not in pool:
            raise InvalidParameter(f"no matching subnet for gateway {gateway}: it is not within subnet "
                                   f"{pool}")
    return gateway_address, chosen_range
