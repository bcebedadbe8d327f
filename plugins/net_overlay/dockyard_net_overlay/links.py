"""Owns the kernel objects of overlay networks on this host, through pyroute2 netlink:
per network a bridge and a VXLAN device on it (learning off, ARP answered from the
neighbour table), per local endpoint a veth pair, and per remote endpoint one
forwarding-database entry (its MAC is behind that host's VTEP) and one neighbour entry
(its IP has that MAC), so no frame is ever flooded to find anyone.

One worker thread owns the daemon namespace's netlink socket (pyroute2 keeps a socket
per calling thread); work inside a container's namespace runs on a short-lived thread
that enters it (`dockyard.plugin.netns`).
"""

from __future__ import annotations

import errno
import socket
from ipaddress import IPv4Address

from dockyard.plugin import NetworkDriverError
from dockyard.plugin.netlink import NetlinkWorker, on_worker
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import ndmsg

VXLAN_PORT = 4789  # IANA's, as Docker's overlay uses
VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
_PERMANENT = ndmsg.states["permanent"]
_SELF = ndmsg.flags["self"]
_MASTER = ndmsg.flags["master"]


class OverlayLinks(NetlinkWorker):
    def __init__(self) -> None:
        super().__init__("overlay-netlink")

    def _index(self, name: str) -> int | None:
        link = self._get(name)
        return link["index"] if link is not None else None

    @on_worker
    def underlay_mtu(self, address: str) -> int:
        """The MTU of the link that holds `address` (the VTEP's), 1500 when none does."""
        for message in self._ipr.get_addr(family=socket.AF_INET):
            if message.get_attr("IFA_ADDRESS") == address:
                link = self._ipr.link("get", index=message["index"])[0]
                return link.get_attr("IFLA_MTU")
        return 1500

    @on_worker
    def names(self, prefix: str) -> list[str]:
        return [name for link in self._ipr.get_links()
                if (name := link.get_attr("IFLA_IFNAME")).startswith(prefix)]

    # -- a network's bridge and VXLAN device -----------------------------------------------

    @on_worker
    def ensure_network(self, bridge: str, vxlan: str, vni: int, local: str, mtu: int) -> None:
        created = []
        try:
            if self._get(bridge) is None:
                self._ipr.link("add", ifname=bridge, kind="bridge", mtu=mtu)
                created.append(bridge)
            bridge_index = self._index(bridge)
            existing = self._get(vxlan)
            if existing is not None and self._vni_of(existing) != vni:
                self._delete(vxlan)  # left by another network that had this id's prefix
                existing = None
            if existing is None:
                self._ipr.link("add", ifname=vxlan, kind="vxlan", vxlan_id=vni, vxlan_local=local,
                               vxlan_port=VXLAN_PORT, vxlan_learning=0, vxlan_proxy=1, mtu=mtu)
                created.append(vxlan)
            self._ipr.link("set", index=self._index(vxlan), master=bridge_index, state="up")
            self._ipr.link("set", index=bridge_index, state="up")
        except NetlinkError as exc:
            for name in reversed(created):
                self._delete(name)
            hint = (f": another VXLAN device of this host uses id {vni} on port {VXLAN_PORT}"
                    if exc.code == errno.EEXIST else "")
            raise NetworkDriverError(f"could not set up overlay devices {bridge}/{vxlan}: "
                                     f"{exc}{hint}") from None

    @staticmethod
    def _vni_of(link) -> int | None:
        info = link.get_attr("IFLA_LINKINFO")
        data = info.get_attr("IFLA_INFO_DATA") if info is not None else None
        return data.get_attr("IFLA_VXLAN_ID") if data is not None else None

    @on_worker
    def delete_network(self, bridge: str, vxlan: str) -> None:
        self._delete(vxlan)
        self._delete(bridge)

    # -- remote endpoints -----------------------------------------------------------------

    @on_worker
    def add_peer(self, vxlan: str, mac: str, address: IPv4Address, vtep: str) -> None:
        index = self._index(vxlan)
        if index is None:
            return
        self._ipr.neigh("replace", family=socket.AF_BRIDGE, ifindex=index, lladdr=mac, dst=vtep,
                        state=_PERMANENT, flags=_SELF)
        self._ipr.neigh("replace", dst=str(address), lladdr=mac, ifindex=index, state=_PERMANENT)

    @on_worker
    def remove_peer(self, vxlan: str, mac: str, address: IPv4Address, vtep: str) -> None:
        index = self._index(vxlan)
        if index is None:
            return
        # the VXLAN device's own entry, the ARP answer, and what the bridge learned of the
        # MAC on the VXLAN port (it would age out, but the endpoint is gone now)
        for request in ({"family": socket.AF_BRIDGE, "lladdr": mac, "dst": vtep, "flags": _SELF},
                        {"dst": str(address), "lladdr": mac},
                        {"family": socket.AF_BRIDGE, "lladdr": mac, "flags": _MASTER}):
            try:
                self._ipr.neigh("del", ifindex=index, **request)
            except NetlinkError as exc:
                if exc.code not in (errno.ENOENT, errno.ESRCH, errno.ENODEV):
                    raise

    @on_worker
    def peers(self, vxlan: str) -> set[tuple[str, str]]:
        """(MAC, VTEP) of every forwarding entry programmed on the VXLAN device."""
        index = self._index(vxlan)
        if index is None:
            return set()
        return {(entry.get_attr("NDA_LLADDR"), entry.get_attr("NDA_DST"))
                for entry in self._ipr.get_neighbours(family=socket.AF_BRIDGE, ifindex=index)
                if entry.get_attr("NDA_DST")}

    # -- local endpoints ------------------------------------------------------------------

    @on_worker
    def add_veth(self, host_name: str, bridge: str, mtu: int, netns_fd: int, peer_name: str,
                 peer_mac: str) -> int:
        """The pair, its peer born inside the container's namespace; returns its index there."""
        bridge_index = self._index(bridge)
        if bridge_index is None:
            raise NetworkDriverError(f"overlay bridge {bridge} is missing: the network was not set up here")
        if self._get(host_name) is not None:
            self._delete(host_name)  # left by an earlier join of this endpoint
        try:
            self._ipr.link("add", ifname=host_name, kind="veth", mtu=mtu, master=bridge_index, state="up",
                           peer={"ifname": peer_name, "net_ns_fd": netns_fd, "mtu": mtu, "address": peer_mac})
        except NetlinkError as exc:
            raise NetworkDriverError(f"could not create veth pair {host_name}/{peer_name}: {exc}") from None
        return self._get(host_name).get_attr("IFLA_LINK")

    @on_worker
    def delete(self, name: str) -> None:
        self._delete(name)

    @on_worker
    def exists(self, name: str) -> bool:
        return self._get(name) is not None
