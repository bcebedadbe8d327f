"""Small netlink link helpers the parent and endpoint code share (any namespace)."""

from __future__ import annotations

import errno

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

GONE = (errno.ENODEV, errno.ENOENT)


def find_link(ipr: IPRoute, name: str):
    """The link message of `name` in the IPRoute's namespace, or None."""
    try:
        return ipr.link("get", ifname=name)[0]
    except NetlinkError as exc:
        if exc.code in GONE:
            return None
        raise


def link_kind(link) -> str | None:
    """"macvlan", "vlan", "dummy"... or None for a physical link."""
    info = link.get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info is not None else None


def link_is_up(link) -> bool:
    return bool(link["flags"] & 1)  # IFF_UP


def delete_link(ipr: IPRoute, index: int) -> None:
    """Delete a link; one that is gone already is fine."""
    try:
        ipr.link("del", index=index)
    except NetlinkError as exc:
        if exc.code not in GONE:
            raise


def set_up(ipr: IPRoute, index: int) -> None:
    ipr.link("set", index=index, state="up")
