"""The `macvlan` network driver: each container gets its own MAC address on a host link.

As Docker's macvlan driver: a network is a parent link on the host (`-o parent=eth0`,
an 802.1q sub-interface `eth0.10` the driver creates, or a `dm-<id>` dummy link when no
parent is given) and a mode (`-o macvlan_mode=bridge|private|vepa|passthru`); joining a
container creates a macvlan link on the parent inside the container's namespace. The
host itself cannot talk to its containers through the parent (a macvlan property).

Published ports are not supported, as in Docker: the container sits on the parent's
LAN with its own address, so `endpoint.ports` are ignored.

Kernel state lives where it is used: network records (parent, mode, whether the driver
created the parent) under the driver's home; endpoint links only inside containers'
namespaces, so they die with them and nothing on the host needs sweeping.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from dockyard.plugin import DriverContext, EndpointSpec, NetworkDriverError, NetworkSpec
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from dockyard_net_macvlan import endpoint as endpoint_link
from dockyard_net_macvlan.config import MacvlanConfig, parse_options
from dockyard_net_macvlan.netns import NamespaceGone, run_in_namespace
from dockyard_net_macvlan.parent import delete_owned_parent, ensure_parent
from dockyard_net_macvlan.records import NetworkRecord, NetworkRecords


class MacvlanDriver:
    scope = "local"
    private_namespace = True

    def __init__(self, context: DriverContext) -> None:
        self.log = context.logger
        self.records = NetworkRecords(context.home, self.log)
        # Networks share parents (and records say who owns one): their changes go one
        # at a time. Joins and leaves touch only their own namespace and need no lock.
        self._networks_lock = threading.Lock()

    # -- networks ----------------------------------------------------------------

    def create_network(self, network: NetworkSpec) -> None:
        config = parse_options(network)
        with self._networks_lock:
            try:
                self._set_up_network(network, config)
            except NetlinkError as exc:
                raise NetworkDriverError(f"cannot set up the parent {config.parent} of macvlan network "
                                         f"{network.name}: {exc}") from exc

    def _set_up_network(self, network: NetworkSpec, config: MacvlanConfig) -> None:
        self._refuse_passthru_conflicts(network.network_id, config)
        earlier = self.records.get(network.network_id)
        owned = earlier.created_parent if earlier and earlier.parent == config.parent else None
        with IPRoute() as host:
            created = ensure_parent(host, config, owned)
            try:
                self.records.save(NetworkRecord(network.network_id, config.parent, config.mode,
                                                created_parent=created))
            except BaseException:
                if created and not owned:  # nothing may stay behind a failed create
                    delete_owned_parent(host, config.parent, created)
                raise

    def _refuse_passthru_conflicts(self, network_id: str, config: MacvlanConfig) -> None:
        """passthru hands the whole parent to one container: no other network may share it."""
        for other in self.records.all():
            if other.network_id == network_id or other.parent != config.parent:
                continue
            if config.mode == "passthru":
                raise NetworkDriverError(
                    f"cannot use mode passthru, macvlan network {other.network_id[:12]} is already "
                    f"using parent interface {config.parent}")
            if other.mode == "passthru":
                raise NetworkDriverError(
                    f"macvlan network {other.network_id[:12]} is already using parent interface "
                    f"{config.parent} in mode passthru")

    def delete_network(self, network_id: str) -> None:
        with self._networks_lock:
            self._tear_down_network(network_id)

    def _tear_down_network(self, network_id: str) -> None:
        record = self.records.get(network_id)
        if record is None:
            return
        if record.created_parent:
            heir = next((other for other in self.records.all()
                         if other.parent == record.parent and other.network_id != network_id), None)
            if heir is not None:
                # Another network still sits on the parent we created: it inherits the
                # duty to delete it, rather than losing its parent under its containers.
                heir.created_parent = record.created_parent
                self.records.save(heir)
            else:
                with IPRoute() as host:
                    delete_owned_parent(host, record.parent, record.created_parent)
        self.records.forget(network_id)

    # -- endpoints ---------------------------------------------------------------

    def join(self, network: NetworkSpec, endpoint: EndpointSpec) -> None:
        """Create the container's macvlan link. `endpoint.ports` are ignored: macvlan does
        not publish ports (the container has its own address on the parent's LAN)."""
        config = parse_options(network)
        try:
            run_in_namespace(
                endpoint.netns_path,
                lambda session: endpoint_link.wire(session, network, endpoint, config.parent,
                                                   config.mode),
                with_host=True)
        except NamespaceGone as exc:
            raise NetworkDriverError(f"cannot join the container to {network.name}: {exc.strerror}; "
                                     "is the container still running?") from None
        except (OSError, NetlinkError) as exc:  # what the kernel said, in the driver's terms
            raise NetworkDriverError(f"cannot join the container to {network.name}: {exc}") from exc

    def leave(self, network: NetworkSpec, endpoint: EndpointSpec) -> None:
        """Delete the container's link; when its namespace is gone, the kernel deleted the
        link with it and there is nothing on the host to undo."""
        try:
            run_in_namespace(endpoint.netns_path,
                             lambda session: endpoint_link.unwire(session, endpoint))
        except NamespaceGone:
            pass

    # -- restart -----------------------------------------------------------------

    def restore(self, networks: Sequence[NetworkSpec], endpoints: Sequence[EndpointSpec]) -> None:
        """Bring back parents the driver owns (a VLAN link or dummy lost to a reboot) and
        forget networks that are not listed, deleting parents they owned.

        Endpoints need nothing: their links live in the containers' namespaces, which a
        daemon restart leaves alone and a reboot took away together with the links."""
        listed = {network.network_id for network in networks}
        with self._networks_lock:
            for record in self.records.all():
                if record.network_id not in listed:
                    self._tear_down_network(record.network_id)
            for network in networks:
                try:
                    self._set_up_network(network, parse_options(network))
                except NetworkDriverError as exc:  # one broken network must not hide the others
                    self.log.warning("macvlan network %s cannot be restored: %s", network.name, exc)
