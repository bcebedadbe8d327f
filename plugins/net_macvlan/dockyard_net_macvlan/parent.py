"""A macvlan network's parent link on the host: found, or created when the driver may.

Two parents are the driver's to create (and later to delete), as in Docker:

    NAME.VLAN   an 802.1q sub-interface of an existing NAME (`-o parent=eth0.10`)
    dm-<id>     a dummy link standing in when no parent is given (or --internal)

Any other parent must exist already, and the driver never changes or deletes it.
"""

from __future__ import annotations

import errno

from dockyard.plugin import NetworkDriverError
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from dockyard_net_macvlan.config import MacvlanConfig, parse_vlan_parent
from dockyard_net_macvlan.links import delete_link, find_link, link_is_up, link_kind, set_up

VLAN, DUMMY = "vlan", "dummy"


def not_found(name: str, hint: str = "") -> NetworkDriverError:
    return NetworkDriverError(f"-o parent interface was not found on the host: {name}"
                              + (f" ({hint})" if hint else ""))


def parent_index(host: IPRoute, parent: str) -> int:
    """The ifindex of an existing parent (at join time it must be there)."""
    link = find_link(host, parent)
    if link is None:
        raise not_found(parent, "it was removed after the network was created; bring it back, "
                                "or recreate the network on another parent")
    return link["index"]


def ensure_parent(host: IPRoute, config: MacvlanConfig, owned_kind: str | None) -> str | None:
    """Make sure the parent exists (and is up, when it is ours); return the kind of link
    the driver owns ("vlan", "dummy") or None for a parent it found and must leave alone.

    `owned_kind` is what the network's record says the driver created earlier: an
    existing parent stays ours then, so repeating create_network keeps the ownership."""
    link = find_link(host, config.parent)
    if link is not None:
        if owned_kind is not None and not link_is_up(link):
            set_up(host, link["index"])
        return owned_kind
    if config.dummy_parent:
        kind = DUMMY
        created = _create(host, config.parent, dict(kind=DUMMY), hint=(
            "no -o parent was given, and this kernel cannot create the dummy link that stands in "
            "for one (load it: modprobe dummy), or give -o parent=IFACE"))
    elif "." in config.parent:
        kind = VLAN
        vlan = parse_vlan_parent(config.parent)
        base = find_link(host, vlan.base)
        if base is None:
            raise not_found(vlan.base, f"it would carry the 802.1q sub-interface {config.parent}")
        spec = dict(kind=VLAN, link=base["index"], vlan_id=vlan.vlan_id)
        created = _create(host, config.parent, spec, hint=(
            f"this kernel cannot create the 802.1q VLAN link {config.parent} "
            "(load it: modprobe 8021q), or give an existing interface as -o parent"))
    else:
        raise not_found(config.parent, "give an existing interface, or NAME.VLAN for an 802.1q "
                                       "sub-interface of one")
    if not created:
        return None
    link = find_link(host, config.parent)
    if link is None:
        raise NetworkDriverError(f"the parent link {config.parent} vanished right after it was "
                                 "created; try again")
    try:
        set_up(host, link["index"])
    except BaseException:
        delete_link(host, link["index"])
        raise
    return kind


def _create(host: IPRoute, name: str, spec: dict, hint: str) -> bool:
    """Create the link; False when someone else created it meanwhile (it is not ours then)."""
    try:
        host.link("add", ifname=name, **spec)
    except NetlinkError as exc:
        if exc.code == errno.EEXIST:
            return False
        if exc.code == errno.EOPNOTSUPP:
            raise NetworkDriverError(hint) from None
        raise NetworkDriverError(f"cannot create the parent link {name}: {exc.args[-1]}") from None
    return True


def delete_owned_parent(host: IPRoute, name: str, owned_kind: str) -> None:
    """Delete a parent the driver created: only while it still is a link of that kind,
    so that a link of the same name someone made since is left alone."""
    link = find_link(host, name)
    if link is not None and link_kind(link) == owned_kind:
        delete_link(host, link["index"])
