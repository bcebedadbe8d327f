"""The macvlan network options (`-o parent=`, `-o macvlan_mode=`), checked without the kernel."""

import pytest
from dockyard.plugin import NetworkDriverError, NetworkSpec
from dockyard_net_macvlan.config import VlanParent, parse_options, parse_vlan_parent

NETWORK_ID = "0123456789abcdef" * 4


def _network(internal: bool = False, **options: str) -> NetworkSpec:
    return NetworkSpec(network_id=NETWORK_ID, name="mv", internal=internal, options=options)


def test_parent_and_mode_are_taken_as_given():
    config = parse_options(_network(parent="eth0.10", macvlan_mode="private"))
    assert (config.parent, config.mode, config.dummy_parent) == ("eth0.10", "private", False)


@pytest.mark.parametrize("mode", ["", None])
def test_mode_defaults_to_bridge(mode):
    options = {"parent": "eth0"} | ({"macvlan_mode": mode} if mode is not None else {})
    assert parse_options(_network(**options)).mode == "bridge"


@pytest.mark.parametrize("mode", ["bridge", "private", "vepa", "passthru"])
def test_every_docker_mode_is_accepted(mode):
    assert parse_options(_network(parent="eth0", macvlan_mode=mode)).mode == mode


def test_a_bad_mode_is_named_with_the_valid_ones():
    with pytest.raises(NetworkDriverError, match=r"mode 'trunk' is not valid.*bridge.*passthru"):
        parse_options(_network(parent="eth0", macvlan_mode="trunk"))


def test_an_unknown_option_is_named():
    with pytest.raises(NetworkDriverError, match=r"does not understand the option "
                                                 r"com\.docker\.network\.driver\.mtu"):
        parse_options(_network(parent="eth0", **{"com.docker.network.driver.mtu": "1400"}))


def test_no_parent_means_the_dummy_stand_in_named_after_the_network():
    config = parse_options(_network())
    assert (config.parent, config.dummy_parent) == ("dm-0123456789ab", True)


def test_an_internal_network_ignores_its_parent_as_docker_does():
    config = parse_options(_network(internal=True, parent="eth0"))
    assert (config.parent, config.dummy_parent) == ("dm-0123456789ab", True)


@pytest.mark.parametrize("parent", ["lo"])
def test_loopback_is_not_a_parent(parent):
    with pytest.raises(NetworkDriverError, match="loopback"):
        parse_options(_network(parent=parent))


@pytest.mark.parametrize("parent", ["a-name-too-long-for-linux", "eth0/1", "eth 0"])
def test_impossible_interface_names_are_refused(parent):
    with pytest.raises(NetworkDriverError, match="not a valid interface name"):
        parse_options(_network(parent=parent))


def test_a_vlan_parent_is_split_into_base_and_id():
    assert parse_vlan_parent("eth0.10") == VlanParent("eth0", 10)


@pytest.mark.parametrize(("parent", "message"), [
    ("eth0.1.2", "name.vlan_id"),
    (".10", "name.vlan_id"),
    ("eth0.x", "valid vlan id"),
    ("eth0.0", "between 1-4094"),
    ("eth0.4095", "between 1-4094"),
])
def test_bad_vlan_parents_are_explained(parent, message):
    with pytest.raises(NetworkDriverError, match=message):
        parse_vlan_parent(parent)
