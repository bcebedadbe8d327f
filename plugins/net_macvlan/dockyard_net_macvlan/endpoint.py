"""An endpoint's macvlan link: created on the host parent straight into the container's
namespace, configured there, and removed from there.

The link is born in the container's namespace under a temporary name (`dym` + the
endpoint id's first 11 characters), so it never shows in the host's namespace and a
crash between creation and rename leaves a name that says whose it is. Inside, it is
tagged with the alias `dockyard-endpoint:<endpoint_id>`, renamed to the endpoint's
interface name, given its MAC, address, `up` and the default route. The alias is what
tells a later join or leave that an `eth0` is ours: nothing else is ever deleted.
"""

from __future__ import annotations

import errno

from dockyard.plugin import EndpointSpec, NetworkDriverError, NetworkSpec
from pyroute2.netlink.exceptions import NetlinkError

from dockyard_net_macvlan.links import delete_link, find_link, link_kind, set_up
from dockyard_net_macvlan.netns import NamespaceSession
from dockyard_net_macvlan.parent import parent_index

TEMPORARY_PREFIX = "dym"
ALIAS_PREFIX = "dockyard-endpoint:"


def temporary_name(endpoint_id: str) -> str:
    return TEMPORARY_PREFIX + endpoint_id[:11]


def endpoint_alias(endpoint_id: str) -> str:
    return ALIAS_PREFIX + endpoint_id


def _ours(link, endpoint: EndpointSpec) -> bool:
    return link_kind(link) == "macvlan" and link.get_attr("IFLA_IFALIAS") == endpoint_alias(
        endpoint.endpoint_id)


def _leftover(link) -> bool:
    """A link under our temporary name: a join that crashed before tagging it."""
    return link_kind(link) == "macvlan"


def wire(session: NamespaceSession, network: NetworkSpec, endpoint: EndpointSpec,
         parent: str, mode: str) -> None:
    """Give the namespace its macvlan link, configured. Runs inside the namespace (with a
    host IPRoute in the session); on failure the link is removed before raising."""
    inside = session.inside
    existing = find_link(inside, endpoint.interface_name)
    if existing is not None and not _ours(existing, endpoint):
        raise NetworkDriverError(
            f"the container already has an interface named {endpoint.interface_name}; "
            "give this network's endpoint another interface name")
    temporary = temporary_name(endpoint.endpoint_id)
    if existing is None:
        leftover = find_link(inside, temporary)
        if leftover is not None and _leftover(leftover):
            delete_link(inside, leftover["index"])
        _create(session, parent, mode, temporary, endpoint)
        link = find_link(inside, temporary)
        if link is None:
            raise NetworkDriverError(f"the macvlan link {temporary} vanished right after it was "
                                     "created; try again")
    else:
        link = existing  # joined before: make sure it is complete, which repeats nothing
    try:
        _configure(session, link, network, endpoint)
    except BaseException:
        delete_link(inside, link["index"])
        raise


def _create(session: NamespaceSession, parent: str, mode: str, name: str,
            endpoint: EndpointSpec) -> None:
    assert session.host is not None, "wire() needs a session with a host IPRoute"
    spec = dict(ifname=name, kind="macvlan", link=parent_index(session.host, parent),
                macvlan_mode=mode, net_ns_fd=session.netns_fd)
    if endpoint.mac_address:
        spec["address"] = endpoint.mac_address
    try:
        session.host.link("add", **spec)
    except NetlinkError as exc:
        raise NetworkDriverError(_creation_failure(exc, parent, mode)) from None


def _creation_failure(exc: NetlinkError, parent: str, mode: str) -> str:
    what = f"cannot create a {mode} macvlan link on {parent}"
    if mode == "passthru" and exc.code in (errno.EINVAL, errno.EBUSY):
        return (f"{what}: passthru mode gives the whole parent to one container, and {parent} "
                "carries another macvlan link already; use bridge mode to share it")
    if exc.code == errno.EBUSY:
        return (f"{what}: it is in use as a port of a bridge, bond or team "
                "(pick a parent that is not enslaved)")
    if exc.code == errno.EOPNOTSUPP:
        return f"{what}: this kernel has no macvlan support (load it: modprobe macvlan)"
    if exc.code == errno.EADDRNOTAVAIL:
        return f"{what}: the MAC address is not a valid unicast address"
    return f"{what}: {exc.args[-1]}"


def _configure(session: NamespaceSession, link, network: NetworkSpec,
               endpoint: EndpointSpec) -> None:
    inside = session.inside
    index = link["index"]
    change: dict = {"ifalias": endpoint_alias(endpoint.endpoint_id)}
    if link.get_attr("IFLA_IFNAME") != endpoint.interface_name:
        change["ifname"] = endpoint.interface_name  # the link is still down: renaming works
    if endpoint.mac_address and link.get_attr("IFLA_ADDRESS") != endpoint.mac_address.lower():
        # passthru links inherit the parent's MAC at creation; setting it here moves the
        # parent's MAC too, as in Docker (the kernel puts the parent's back on deletion).
        change["address"] = endpoint.mac_address
    try:
        inside.link("set", index=index, **change)
    except NetlinkError as exc:
        raise NetworkDriverError(f"cannot make the macvlan link {endpoint.interface_name} with MAC "
                                 f"{endpoint.mac_address}: {exc.args[-1]}") from None
    if endpoint.address is not None:
        try:
            inside.addr("add", index=index, address=str(endpoint.address.ip),
                        prefixlen=endpoint.address.network.prefixlen)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise NetworkDriverError(f"cannot give {endpoint.interface_name} the address "
                                         f"{endpoint.address}: {exc.args[-1]}") from None
    set_up(inside, index)
    gateway = network.gateway
    if endpoint.default_route and gateway is not None and not network.internal \
            and endpoint.address is not None:
        try:
            inside.route("replace", dst="0.0.0.0/0", gateway=str(gateway.ip), oif=index)
        except NetlinkError as exc:
            raise NetworkDriverError(
                f"cannot route via the gateway {gateway.ip} from {endpoint.address}: {exc.args[-1]} "
                "(the gateway must be inside the endpoint's subnet)") from None


def unwire(session: NamespaceSession, endpoint: EndpointSpec) -> None:
    """Remove the endpoint's link from the namespace, if it is still there: the one under
    the interface name only when its alias says it is ours."""
    inside = session.inside
    link = find_link(inside, endpoint.interface_name)
    if link is not None and _ours(link, endpoint):
        delete_link(inside, link["index"])
    leftover = find_link(inside, temporary_name(endpoint.endpoint_id))
    if leftover is not None and _leftover(leftover):
        delete_link(inside, leftover["index"])
