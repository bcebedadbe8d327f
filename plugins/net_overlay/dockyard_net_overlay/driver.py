"""Owns the `overlay` driver's answers to the NetworkDriver contract: networks that span
every host of a cluster, as one VXLAN segment per network.

- `allocate_network` / `free_network` (once per network, cluster-wide): a VXLAN id
  unique in the cluster, taken with compare-and-swap under `drivers/overlay/vnis/`, and
  handed to every host as Docker's `com.docker.network.driver.overlay.vxlanid_list`;
- `create_network` / `delete_network` (on each host that needs the network): the bridge
  and the VXLAN device (links.py), with the remote endpoints already known programmed;
- `join` / `leave`: a veth into the container, and its peer record in the store
  (peers.py), which tells the other hosts where its MAC and IP are.

No multicast and no learning: every host's forwarding and neighbour entries come from
the store's watch. The MTU is the underlay's minus the VXLAN header.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dockyard.plugin import DriverContext, EndpointSpec, NetworkDriverError, NetworkSpec, StoreError
from dockyard.plugin.netlink import configure_interface

from .links import VXLAN_OVERHEAD, OverlayLinks
from .peers import Peer, PeerTable

VNI_OPTION = "com.docker.network.driver.overlay.vxlanid_list"
MTU_OPTION = "com.docker.network.driver.mtu"
KNOWN_OPTIONS = (VNI_OPTION, MTU_OPTION)
VNIS = "drivers/overlay/vnis/"
FIRST_VNI = 4096  # Docker's: lower ids are left to hand-made VXLANs
LAST_VNI = (1 << 24) - 1
BRIDGE_PREFIX, VXLAN_PREFIX, VETH_PREFIX = "dyov", "dyvx", "dyoe"
NO_CLUSTER = ("overlay networks need a cluster store: start dockyardd with --cluster-store "
              "etcd://HOST:2379 --cluster-advertise ADDRESS on every host")


@dataclass(frozen=True)
class OverlayNetwork:
    network_id: str
    vni: int
    mtu: int

    @property
    def bridge(self) -> str:
        return BRIDGE_PREFIX + self.network_id[:11]

    @property
    def vxlan(self) -> str:
        return VXLAN_PREFIX + self.network_id[:11]


def veth_name(endpoint_id: str) -> str:
    return VETH_PREFIX + endpoint_id[:11]


class OverlayDriver:
    scope = "global"
    private_namespace = True

    def __init__(self, context: DriverContext) -> None:
        self._log = context.logger
        self._node = context.cluster
        self._links = OverlayLinks()
        self._networks: dict[str, OverlayNetwork] = {}
        self._peers = None
        if self._node is not None:
            self._peers = PeerTable(self._node, self._program, self._unprogram)
            self._node.on_join(self._peers.reannounce)
            self._peers.start()

    def close(self) -> None:
        if self._peers is not None:
            self._peers.stop()
        self._links.close()

    def _cluster(self):
        if self._node is None:
            raise NetworkDriverError(NO_CLUSTER)
        return self._node

    # -- once per network, cluster-wide ------------------------------------------------

    def allocate_network(self, network: NetworkSpec) -> Mapping[str, str]:
        unknown = sorted(set(network.options) - set(KNOWN_OPTIONS))
        if unknown:
            raise NetworkDriverError(f"unknown overlay network option {unknown[0]!r} (known: "
                                     f"{', '.join(KNOWN_OPTIONS)})")
        self._mtu(network)  # a bad MTU fails before anything is taken
        store = self._cluster().store
        try:
            while True:
                taken = {int(e.key[len(VNIS):]) for e in store.list(VNIS)[0] if e.key[len(VNIS):].isdigit()}
                vni = next((n for n in range(FIRST_VNI, LAST_VNI + 1) if n not in taken), None)
                if vni is None:
                    raise NetworkDriverError("every VXLAN id of the cluster is taken: remove overlay "
                                             "networks")
                if store.commit({f"{VNIS}{vni}": 0}, put={f"{VNIS}{vni}": network.network_id}):
                    return {VNI_OPTION: str(vni)}
        except StoreError as exc:
            raise NetworkDriverError(f"could not reserve a VXLAN id: {exc}") from None

    def free_network(self, network: NetworkSpec) -> None:
        vni = network.options.get(VNI_OPTION)
        if not vni:
            return
        store = self._cluster().store
        entry = store.get(f"{VNIS}{vni}")
        if entry is not None and entry.value == network.network_id:
            store.commit({entry.key: entry.revision}, delete=[entry.key])

    # -- on each host ----------------------------------------------------------------------

    def _mtu(self, network: NetworkSpec) -> int | None:
        text = network.options.get(MTU_OPTION)
        if not text:
            return None
        if not text.isdigit() or not 68 <= int(text) <= 65535:
            raise NetworkDriverError(f"invalid {MTU_OPTION} {text!r}: give a number from 68 to 65535")
        return int(text)

    def _overlay(self, network: NetworkSpec) -> OverlayNetwork:
        node = self._cluster()
        vni = network.options.get(VNI_OPTION, "")
        if not vni.isdigit():
            raise NetworkDriverError(f"overlay network {network.name} has no VXLAN id: it was not created "
                                     "through the cluster store")
        mtu = self._mtu(network) or self._links.underlay_mtu(node.address) - VXLAN_OVERHEAD
        return OverlayNetwork(network.network_id, int(vni), mtu)

    def create_network(self, network: NetworkSpec) -> None:
        overlay = self._overlay(network)
        self._links.ensure_network(overlay.bridge, overlay.vxlan, overlay.vni, self._cluster().address,
                                   overlay.mtu)
        self._networks[network.network_id] = overlay
        for peer in self._peers.remote_of(network.network_id):
            self._program(peer)

    def delete_network(self, network_id: str) -> None:
        overlay = self._networks.pop(network_id, None)
        if overlay is None:
            overlay = OverlayNetwork(network_id, 0, 0)
        self._links.delete_network(overlay.bridge, overlay.vxlan)

    def join(self, network: NetworkSpec, endpoint: EndpointSpec) -> None:
        overlay = self._networks.get(network.network_id)
        if overlay is None:
            self.create_network(network)
            overlay = self._networks[network.network_id]
        if endpoint.address is None or not endpoint.mac_address:
            raise NetworkDriverError("an overlay endpoint needs an address and a MAC address")
        host_name = veth_name(endpoint.endpoint_id)
        fd = os.open(endpoint.netns_path, os.O_RDONLY)
        try:
            index = self._links.add_veth(host_name, overlay.bridge, overlay.mtu, fd, endpoint.interface_name,
                                         endpoint.mac_address)
            try:
                configure_interface(fd, index, endpoint.address)  # no gateway: the subnet is on-link
                self._peers.announce(self._peer(network, endpoint))
            except BaseException as exc:
                self._links.delete(host_name)
                if isinstance(exc, StoreError):
                    raise NetworkDriverError(f"could not announce the endpoint to the cluster: "
                                             f"{exc}") from None
                raise
        finally:
            os.close(fd)

    def leave(self, network: NetworkSpec, endpoint: EndpointSpec) -> None:
        self._links.delete(veth_name(endpoint.endpoint_id))
        if endpoint.address is not None and self._peers is not None:
            try:
                self._peers.withdraw(self._peer(network, endpoint))
            except StoreError as exc:  # the lease takes it out when this host goes
                self._log.warning("overlay endpoint %s stays in the store: %s",
                                  endpoint.endpoint_id[:12], exc)

    def _peer(self, network: NetworkSpec, endpoint: EndpointSpec) -> Peer:
        return Peer(network.network_id, endpoint.endpoint_id, endpoint.mac_address, str(endpoint.address.ip),
                    self._node.address, self._node.node_id)

    def restore(self, networks: Sequence[NetworkSpec], endpoints: Sequence[EndpointSpec]) -> None:
        kept_links = set()
        for network in networks:
            try:
                self.create_network(network)
            except NetworkDriverError as exc:
                self._log.warning("overlay network %s not restored: %s", network.name, exc)
                continue
            overlay = self._networks[network.network_id]
            kept_links |= {overlay.bridge, overlay.vxlan}
        by_id = {n.network_id: n for n in networks}
        for endpoint in endpoints:
            kept_links.add(veth_name(endpoint.endpoint_id))
            network = by_id.get(endpoint.network_id)
            if network is not None and endpoint.address is not None and self._peers is not None:
                self._peers.local[self._peer(network, endpoint).key] = self._peer(network, endpoint)
        for prefix in (VETH_PREFIX, VXLAN_PREFIX, BRIDGE_PREFIX):  # what a crash left of the others
            for name in self._links.names(prefix):
                if name not in kept_links:
                    self._links.delete(name)
        if self._peers is not None:
            try:
                self._peers.reannounce()
            except StoreError as exc:  # the node announces again when it (re)joins
                self._log.info("overlay endpoints announced once the store answers: %s", exc)

    # -- remote endpoints, from the peer table ---------------------------------------------

    def _program(self, peer: Peer) -> None:
        overlay = self._networks.get(peer.network_id)
        if overlay is not None:
            self._links.add_peer(overlay.vxlan, peer.mac, peer.ip, peer.vtep)

    def _unprogram(self, peer: Peer) -> None:
        overlay = self._networks.get(peer.network_id)
        if overlay is not None:
            self._links.remove_peer(overlay.vxlan, peer.mac, peer.ip, peer.vtep)
