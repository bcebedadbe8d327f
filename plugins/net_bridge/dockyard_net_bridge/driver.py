"""Owns the `bridge` driver's answers to the NetworkDriver contract: the order in which links,
firewall and records change so that every call can be repeated after a crash, a failed
join or create leaves nothing behind, and restore touches only what this daemon recorded.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

from dockyard.plugin import DriverContext, EndpointSpec, NetworkDriverError, NetworkSpec
from dockyard.plugin.netlink import configure_interface
from pyroute2.netlink.exceptions import NetlinkError

from .firewall import Firewall
from .links import Links
from .options import (
    VETH_PREFIX,
    BridgeNetwork,
    bridge_network,
    check_endpoint,
    check_id,
    default_bridge_name,
    table_name,
    veth_name,
)
from .state import EndpointRecord, StateStore


class BridgeDriver:
    scope = "local"
    private_namespace = True

    def __init__(self, context: DriverContext) -> None:
        self._log = context.logger
        self._state = StateStore(context.home, self._log)
        self._links = Links()
        self._firewall = Firewall()
        self._guard = threading.Lock()
        self._network_locks: dict[str, threading.RLock] = {}

    def close(self) -> None:
        self._links.close()

    def _lock_for(self, network_id: str) -> threading.RLock:
        """Serializes one network's firewall changes (and its create/delete/restore)."""
        with self._guard:
            return self._network_locks.setdefault(network_id, threading.RLock())

    # -- networks -------------------------------------------------------------------------

    def create_network(self, network: NetworkSpec) -> None:
        bridge = bridge_network(network)  # bad options fail here, before anything exists
        with self._lock_for(bridge.network_id):
            recorded_before = self._state.network(bridge.network_id) is not None
            self._state.save_network(network)  # first: a crash from here on is restore's to clean
            created = False
            try:
                created = self._links.ensure_bridge(bridge)
                self._firewall.apply_table(bridge, self._state.endpoints(bridge.network_id))
            except BaseException:
                if not recorded_before:
                    self._undo(self._firewall.delete_table, bridge.table)
                    if created:
                        self._undo(self._links.delete, bridge.bridge)
                    self._state.forget_network(bridge.network_id)
                raise

    def delete_network(self, network_id: str) -> None:
        check_id("network", network_id)
        with self._lock_for(network_id):
            recorded = self._state.network(network_id)
            bridge = default_bridge_name(network_id)
            if recorded is not None:
                try:
                    bridge = bridge_network(recorded).bridge
                except NetworkDriverError:
                    pass
            self._firewall.delete_table(table_name(network_id))
            for port in self._links.ports(bridge):
                if port.startswith(VETH_PREFIX):
                    self._links.delete(port)
            self._links.delete(bridge)
            for record in self._state.endpoints(network_id):
                self._state.forget_endpoint(record.endpoint_id)
            self._state.forget_network(network_id)

    # -- endpoints ------------------------------------------------------------------------

    def join(self, network: NetworkSpec, endpoint: EndpointSpec) -> None:
        bridge = bridge_network(network)
        check_endpoint(bridge, endpoint)
        previous = self._state.endpoint(endpoint.endpoint_id)
        if previous is not None:  # a repeated join: start again from nothing
            self._unwire(previous.network_id, endpoint.endpoint_id, bool(previous.ports))
        self._wire(network, bridge, endpoint)

    def _wire(self, network: NetworkSpec, bridge: BridgeNetwork, endpoint: EndpointSpec) -> None:
        found = self._links.bridge(bridge.bridge)
        if found is None:  # deleted behind our back: make it again rather than fail the container
            self.create_network(network)
            found = self._links.bridge(bridge.bridge)
            if found is None:
                raise NetworkDriverError(f"bridge {bridge.bridge} of network "
                                         f"{network.name or network.network_id} is missing and could not "
                                         f"be made again")
        bridge_index, mtu = found
        try:
            netns_fd = os.open(endpoint.netns_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise NetworkDriverError(f"cannot open the container's network namespace {endpoint.netns_path}: "
                                     f"{exc.strerror} (has the container exited?)") from None
        record = EndpointRecord(endpoint.endpoint_id, bridge.network_id, veth_name(endpoint.endpoint_id),
                                endpoint.address, tuple(endpoint.ports))
        self._state.save_endpoint(record)  # first: a crash from here on is restore's to clean
        try:
            peer_index = self._links.add_veth(record.veth, bridge_index, mtu, netns_fd,
                                              endpoint.interface_name, endpoint.mac_address,
                                              isolated=not bridge.icc)
            gateway = bridge.gateway.ip if endpoint.default_route and endpoint.address is not None else None
            configure_interface(netns_fd, peer_index, endpoint.address, gateway)
            if record.ports:
                with self._lock_for(bridge.network_id):
                    if not self._firewall.add_ports(bridge, record):  # the table was gone: rewrite it
                        self._firewall.apply_table(bridge, self._state.endpoints(bridge.network_id))
        except BaseException as exc:
            self._undo(self._links.delete, record.veth)
            if record.ports:
                self._undo(self._firewall.remove_ports, bridge.table, endpoint.endpoint_id)
            self._state.forget_endpoint(endpoint.endpoint_id)
            if isinstance(exc, (NetlinkError, OSError)):
                raise NetworkDriverError(f"could not join the container to network "
                                         f"{network.name or network.network_id}: {exc}") from None
            raise
        finally:
            os.close(netns_fd)

    def leave(self, network: NetworkSpec, endpoint: EndpointSpec) -> None:
        check_id("endpoint", endpoint.endpoint_id)
        record = self._state.endpoint(endpoint.endpoint_id)
        network_id = record.network_id if record is not None else network.network_id
        had_ports = bool(endpoint.ports) or (record is not None and bool(record.ports))
        self._unwire(network_id, endpoint.endpoint_id, had_ports)

    def _unwire(self, network_id: str, endpoint_id: str, had_ports: bool) -> None:
        # Deleting our end deletes the pair, wherever the other end is (or was).
        self._links.delete(veth_name(endpoint_id))
        if had_ports:
            with self._lock_for(network_id):
                self._firewall.remove_ports(table_name(network_id), endpoint_id)
        self._state.forget_endpoint(endpoint_id)

    # -- restarts -------------------------------------------------------------------------

    def restore(self, networks: Sequence[NetworkSpec], endpoints: Sequence[EndpointSpec]) -> None:
        listed = {spec.network_id: spec for spec in networks}
        failures: list[str] = []
        for network_id in self._state.networks():
            if network_id not in listed:
                self._attempt(failures, f"deleting network {network_id[:12]}", self.delete_network,
                              network_id)
        endpoints_of = self._endpoints_by_network(listed, endpoints)
        kept = {endpoint.endpoint_id for members in endpoints_of.values() for endpoint in members}
        for record in self._state.endpoints():
            if record.endpoint_id not in kept:
                self._attempt(failures, f"removing endpoint {record.endpoint_id[:12]}", self._unwire,
                              record.network_id, record.endpoint_id, False)
        for network_id, spec in listed.items():
            self._attempt(failures, f"restoring network {spec.name or network_id[:12]}",
                          self._restore_network, spec, endpoints_of.get(network_id, []))
        if failures:
            raise NetworkDriverError("restore was incomplete: " + "; ".join(failures))

    def _endpoints_by_network(self, listed: dict[str, NetworkSpec],
                              endpoints: Sequence[EndpointSpec]) -> dict[str, list[EndpointSpec]]:
        """Each endpoint under its network: as the spec names it, else as our record does, else
        the listed network whose subnet holds the endpoint's address."""
        found: dict[str, list[EndpointSpec]] = {}
        for endpoint in endpoints:
            record = self._state.endpoint(endpoint.endpoint_id)
            network_id = endpoint.network_id if endpoint.network_id in listed else None
            if network_id is None and record is not None and record.network_id in listed:
                network_id = record.network_id
            if network_id is None and endpoint.address is not None:
                network_id = next((spec.network_id for spec in listed.values()
                                   if any(endpoint.address.ip in subnet for subnet in spec.subnets)), None)
            if network_id is None:
                self._log.warning("bridge driver: endpoint %s belongs to none of the networks to restore",
                                  endpoint.endpoint_id[:12])
                continue
            found.setdefault(network_id, []).append(endpoint)
        return found

    def _restore_network(self, spec: NetworkSpec, endpoints: list[EndpointSpec]) -> None:
        bridge = bridge_network(spec)
        with self._lock_for(bridge.network_id):
            self._state.save_network(spec)
            self._links.ensure_bridge(bridge)
            bridge_index, _mtu = self._links.bridge(bridge.bridge)
            wanted = set()
            for endpoint in endpoints:
                veth = veth_name(endpoint.endpoint_id)
                wanted.add(veth)
                if self._links.exists(veth):
                    self._links.ensure_port(veth, bridge_index, isolated=not bridge.icc)
                    self._state.save_endpoint(EndpointRecord(endpoint.endpoint_id, bridge.network_id, veth,
                                                             endpoint.address, tuple(endpoint.ports)))
                elif endpoint.netns_path and os.path.exists(endpoint.netns_path):
                    check_endpoint(bridge, endpoint)
                    self._wire(spec, bridge, endpoint)
                else:
                    self._log.warning("bridge driver: endpoint %s has no namespace left to restore into",
                                      endpoint.endpoint_id[:12])
                    self._state.forget_endpoint(endpoint.endpoint_id)
            for port in self._links.ports(bridge.bridge):
                if port.startswith(VETH_PREFIX) and port not in wanted:
                    self._links.delete(port)  # a join that never got recorded, or a lost record
            self._firewall.apply_table(bridge, self._state.endpoints(bridge.network_id))

    # -- helpers --------------------------------------------------------------------------

    def _attempt(self, failures: list[str], what: str, call, *arguments) -> None:
        try:
            call(*arguments)
        except (NetworkDriverError, NetlinkError, OSError) as exc:
            self._log.warning("bridge driver: %s failed: %s", what, exc)
            failures.append(f"{what}: {exc}")

    def _undo(self, call, *arguments) -> None:
        """One step of undoing a failed call: the original error is the one to report."""
        try:
            call(*arguments)
        except (NetworkDriverError, NetlinkError, OSError) as exc:
            self._log.warning("bridge driver: undoing a failed step also failed: %s", exc)
