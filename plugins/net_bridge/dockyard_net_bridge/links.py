"""Owns the kernel links of bridge networks, through pyroute2 netlink (never an `ip` process):
the bridge with its gateway address and sysctls, an endpoint's veth pair, and the
container's side of it, configured from inside the container's network namespace.

Inside a namespace, work is done by a short-lived thread that setns()es itself there and
opens its own netlink socket (which stays bound to that namespace): no process is spawned,
and the daemon's other threads never change namespace. In the daemon's own namespace, one
worker thread owns the driver's netlink socket: pyroute2 (0.9) opens a socket per calling
thread and keeps it until closed, so sharing one IPRoute among the engine's request threads
would leak a socket per thread.
"""

from __future__ import annotations

import errno
import os
import socket
from ipaddress import IPv4Interface

from dockyard.plugin import NetworkDriverError
from dockyard.plugin.netlink import NetlinkWorker, on_worker
from pyroute2.netlink.exceptions import NetlinkError

from .options import BridgeNetwork

CLONE_NEWNET = 0x40000000
PROC_IPV4 = "/proc/sys/net/ipv4"


def write_sysctl(path: str, value: str) -> None:
    try:
        with open(path) as current:
            if current.read().strip() == value:
                return
        with open(path, "w") as setting:
            setting.write(value)
    except OSError as exc:
        raise NetworkDriverError(f"could not set {path} to {value}: {exc.strerror}") from None


def _random_mac() -> str:
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFC) | 0x02  # locally administered, unicast
    return ":".join(f"{byte:02x}" for byte in raw)


def _kind(link) -> str | None:
    info = link.get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info is not None else None


class Links(NetlinkWorker):
    """The daemon namespace's links, through one netlink socket owned by one worker thread."""

    def __init__(self) -> None:
        super().__init__("bridge-netlink")

    @on_worker
    def bridge(self, name: str) -> tuple[int, int] | None:
        """(index, mtu) of the bridge `name`, None when there is none."""
        link = self._get(name)
        if link is None or _kind(link) != "bridge":
            return None
        return link["index"], link.get_attr("IFLA_MTU")

    @on_worker
    def exists(self, name: str) -> bool:
        return self._get(name) is not None

    @on_worker
    def ports(self, bridge: str) -> list[str]:
        """Names of the links attached to the bridge."""
        link = self._get(bridge)
        if link is None:
            return []
        return [port.get_attr("IFLA_IFNAME") for port in self._ipr.get_links()
                if port.get_attr("IFLA_MASTER") == link["index"]]

    def _ipv4_addresses(self) -> list[tuple[int, IPv4Interface]]:
        return [(message["index"], IPv4Interface(f"{message.get_attr('IFA_ADDRESS')}/{message['prefixlen']}"))
                for message in self._ipr.get_addr(family=socket.AF_INET)]

    # -- the bridge -----------------------------------------------------------------------

    @on_worker
    def ensure_bridge(self, network: BridgeNetwork) -> bool:
        """Make the network's bridge exist, addressed and up; True when it was created now."""
        link = self._get(network.bridge)
        addresses = self._ipv4_addresses()
        if link is not None:
            self._check_existing(link, network, addresses)
        ours = link["index"] if link is not None else None
        clashes = [f"{address} on link {index}" for index, address in addresses
                   if index != ours and address.network.overlaps(network.subnet)]
        if clashes:
            raise NetworkDriverError(
                f"subnet {network.subnet} overlaps an address of this host ({', '.join(clashes)}): "
                f"choose another subnet")
        created = link is None
        try:
            if created:
                settings = {"mtu": network.mtu} if network.mtu else {}
                self._ipr.link("add", ifname=network.bridge, kind="bridge", address=_random_mac(),
                               **settings)
                link = self._get(network.bridge)
            elif network.mtu and link.get_attr("IFLA_MTU") != network.mtu:
                self._ipr.link("set", index=link["index"], mtu=network.mtu)
            index = link["index"]
            try:
                self._ipr.addr("add", index=index, address=str(network.gateway.ip),
                               prefixlen=network.gateway.network.prefixlen)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise
            self._ipr.link("set", index=index, state="up")
            # Published ports reached through 127.0.0.1 leave by the bridge with that source
            # until masqueraded; without route_localnet the kernel drops them as martians.
            write_sysctl(f"{PROC_IPV4}/conf/{network.bridge}/route_localnet", "1")
            write_sysctl(f"{PROC_IPV4}/ip_forward", "1")
        except BaseException as exc:
            if created:
                self._delete(network.bridge)
            if isinstance(exc, NetlinkError):
                raise NetworkDriverError(f"could not set up bridge {network.bridge}: {exc}") from None
            raise
        return created

    @staticmethod
    def _check_existing(link, network: BridgeNetwork, addresses) -> None:
        name = network.bridge
        if _kind(link) != "bridge":
            kind = _kind(link) or "a plain device"
            raise NetworkDriverError(f"a link named {name} exists and is not a bridge ({kind}): remove it "
                                     f"or choose another name with -o com.docker.network.bridge.name=NAME")
        others = [str(address) for index, address in addresses
                  if index == link["index"] and address != network.gateway]
        if others:
            raise NetworkDriverError(f"bridge {name} exists already with address {', '.join(others)}, not "
                                     f"{network.gateway}: remove it (ip link del {name}) or choose another "
                                     f"name with -o com.docker.network.bridge.name=NAME")

    # -- deleting -------------------------------------------------------------------------

    @on_worker
    def delete(self, name: str) -> bool:
        """Delete a link (for a veth, the pair); False when it was not there."""
        return self._delete(name)

    # -- endpoints ------------------------------------------------------------------------

    @on_worker
    def add_veth(self, host_name: str, bridge_index: int, mtu: int, netns_fd: int, peer_name: str,
                 peer_mac: str | None, isolated: bool) -> int:
        """Create the pair with its peer born inside the namespace (named and addressed there,
        so it never collides with the host's own eth0); returns the peer's index there."""
        peer: dict = {"ifname": peer_name, "net_ns_fd": netns_fd, "mtu": mtu}
        if peer_mac:
            peer["address"] = peer_mac
        for attempt in (1, 2):
            try:
                self._ipr.link("add", ifname=host_name, kind="veth", mtu=mtu, master=bridge_index,
                               state="up", peer=peer)
                break
            except NetlinkError as exc:
                if exc.code == errno.EEXIST and attempt == 1 and self._get(host_name) is not None:
                    self._delete(host_name)  # left by an earlier join of this endpoint
                    continue
                hint = (f": the container's namespace may have an interface named {peer_name} already"
                        if exc.code == errno.EEXIST else "")
                raise NetworkDriverError(f"could not create veth pair {host_name}/{peer_name}: "
                                         f"{exc}{hint}") from None
        try:
            host = self._get(host_name)
            # Hairpin: a container reaching its own published port gets its packets back
            # through the port they came in by.
            self._ipr.brport("set", index=host["index"], mode=1, **({"isolated": 1} if isolated else {}))
        except BaseException as exc:
            self._delete(host_name)
            raise NetworkDriverError(f"could not attach {host_name} to its bridge: {exc}") from None
        return host.get_attr("IFLA_LINK")

    @on_worker
    def ensure_port(self, host_name: str, bridge_index: int, isolated: bool) -> None:
        """Restore: an existing host-side veth is attached, up and in hairpin mode."""
        host = self._get(host_name)
        if host is None:
            return
        if host.get_attr("IFLA_MASTER") != bridge_index:
            self._ipr.link("set", index=host["index"], master=bridge_index)
        self._ipr.link("set", index=host["index"], state="up")
        self._ipr.brport("set", index=host["index"], mode=1, isolated=1 if isolated else 0)
