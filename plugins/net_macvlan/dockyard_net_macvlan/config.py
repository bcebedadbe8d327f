"""A macvlan network's options, checked and resolved: which parent link, which mode.

Pure (no kernel access), with Docker's rules and, where Docker has one, its message:

    -o parent=IFACE         the host link the containers' macvlan links sit on. Absent,
                            or on an --internal network, a dummy link `dm-<id[:12]>`
                            stands in (containers then reach only one another).
                            `NAME.VLAN` that does not exist yet is an 802.1q
                            sub-interface of NAME, created by the driver.
    -o macvlan_mode=MODE    bridge (the default), private, vepa or passthru.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.plugin import NetworkDriverError, NetworkSpec

PARENT_OPTION = "parent"
MODE_OPTION = "macvlan_mode"
MODES = ("bridge", "private", "vepa", "passthru")
DEFAULT_MODE = "bridge"
DUMMY_PARENT_PREFIX = "dm-"
MAX_LINK_NAME = 15  # IFNAMSIZ less the terminating NUL


@dataclass(frozen=True)
class MacvlanConfig:
    parent: str
    mode: str
    dummy_parent: bool  # the parent is the stand-in dummy link, not one the user named


@dataclass(frozen=True)
class VlanParent:
    """`-o parent=eth0.10`: VLAN 10 on eth0."""

    base: str
    vlan_id: int


def dummy_parent_name(network_id: str) -> str:
    return DUMMY_PARENT_PREFIX + network_id[:12]


def parse_options(network: NetworkSpec) -> MacvlanConfig:
    """The network's configuration, or NetworkDriverError naming what is wrong."""
    options = network.options
    unknown = sorted(set(options) - {PARENT_OPTION, MODE_OPTION})
    if unknown:
        raise NetworkDriverError(
            f"the macvlan driver does not understand the option {', '.join(unknown)}; "
            f"it takes -o {PARENT_OPTION}=IFACE and -o {MODE_OPTION}={'|'.join(MODES)}"
        )
    mode = options.get(MODE_OPTION, "") or DEFAULT_MODE
    if mode not in MODES:
        raise NetworkDriverError(
            f"requested macvlan mode '{mode}' is not valid, 'bridge' mode is the macvlan driver "
            f"default (the modes are {', '.join(MODES)})"
        )
    parent = options.get(PARENT_OPTION, "").strip()
    # Docker treats --internal like an empty parent: an isolated dummy parent link.
    if network.internal or not parent:
        return MacvlanConfig(dummy_parent_name(network.network_id), mode, dummy_parent=True)
    if parent == "lo":
        raise NetworkDriverError("loopback interface is not a valid macvlan parent link; "
                                 "give -o parent=IFACE with an Ethernet interface of the host")
    check_link_name(parent)
    return MacvlanConfig(parent, mode, dummy_parent=False)


def check_link_name(name: str) -> None:
    if len(name.encode()) > MAX_LINK_NAME or "/" in name or name in (".", "..") \
            or any(char.isspace() for char in name):
        raise NetworkDriverError(
            f"-o {PARENT_OPTION}={name!r} is not a valid interface name "
            f"(at most {MAX_LINK_NAME} characters, no '/' and no spaces)"
        )


def parse_vlan_parent(parent: str) -> VlanParent:
    """`eth0.10` as VlanParent("eth0", 10), for a parent that does not exist yet."""
    base, dot, vlan = parent.partition(".")
    if not dot or not base or "." in vlan:
        raise NetworkDriverError(
            f"required interface name format is: name.vlan_id, ex. eth0.10 for vlan 10, "
            f"instead received {parent}"
        )
    try:
        vlan_id = int(vlan, 10)
    except ValueError:
        raise NetworkDriverError(
            f"unable to parse a valid vlan id from: {parent} (ex. eth0.10 for vlan 10)"
        ) from None
    # The VLAN identifier is a 12-bit field; 0 and 4095 are reserved.
    if not 1 <= vlan_id <= 4094:
        raise NetworkDriverError(f"vlan id must be between 1-4094, received: {vlan_id}")
    return VlanParent(base, vlan_id)
