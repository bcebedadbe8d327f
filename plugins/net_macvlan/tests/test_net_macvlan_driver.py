"""The macvlan driver against the real kernel: parents, modes, joins, leaves, restarts.

Traffic goes only between namespaces these tests create. The parent is a veth pair of
the test's own (`dyt-<hex>`, both ends up in the host namespace): unlike a dummy link,
veth exists on every kernel that runs containers, and it has a carrier, which macvlan
links need before they pass traffic.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path

import pytest
from dockyard.daemon.pluginmanager import PluginManager
from dockyard.plugin import DriverContext, EndpointSpec, NetworkDriver, NetworkDriverError, NetworkSpec

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="links and namespaces need root")]

SUBNET = IPv4Network("10.251.7.0/24")
GATEWAY = IPv4Interface("10.251.7.1/24")


def sh(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=check, text=True, capture_output=True)


def links(netns: str | None = None) -> list[dict]:
    """`ip -details link` of the host or of a test namespace, as dicts."""
    where = ("-n", netns) if netns else ()
    return json.loads(sh("ip", *where, "-json", "-details", "link", "show").stdout)


def link_names(netns: str | None = None) -> set[str]:
    return {link["ifname"] for link in links(netns)}


def kind(link: dict) -> str | None:
    return link.get("linkinfo", {}).get("info_kind")


def macvlan_links(netns: str | None = None) -> list[dict]:
    return [link for link in links(netns) if kind(link) == "macvlan"]


def ours_on_host(parent: str) -> set[str]:
    """Links the driver could have left in the host namespace: endpoint links under their
    temporary name, stand-in dummies, VLAN links on the test parent, any macvlan."""
    return {link["ifname"] for link in links()
            if link["ifname"].startswith(("dym", "dm-", f"{parent}.")) or kind(link) == "macvlan"}


def ping(netns: str, address: IPv4Interface) -> bool:
    return sh("ip", "netns", "exec", netns, "/bin/busybox", "ping", "-c1", "-W1",
              str(address.ip), check=False).returncode == 0


def add_veth(name: str) -> None:
    sh("ip", "link", "add", name, "type", "veth", "peer", "name", f"{name}p")
    sh("ip", "link", "set", name, "up")
    sh("ip", "link", "set", f"{name}p", "up")


def kernel_can_create(kind_args: list[str], parent: str) -> bool:
    """Try the link kind on the test's parent (the kernel may load its module on demand)."""
    probe = f"dyt-{secrets.token_hex(4)}"
    created = sh("ip", "link", "add", "link", parent, "name", probe, "type", *kind_args, check=False)
    sh("ip", "link", "del", probe, check=False)
    return created.returncode == 0


# -- fixtures -----------------------------------------------------------------------


@pytest.fixture
def parent() -> Iterator[str]:
    name = f"dyt-{secrets.token_hex(4)}"
    add_veth(name)
    try:
        yield name
    finally:
        sh("ip", "link", "del", name, check=False)  # takes its peer along


@pytest.fixture
def namespace() -> Iterator[Callable[[], str]]:
    made: list[str] = []

    def make() -> str:
        name = f"dytns-{secrets.token_hex(4)}"
        sh("ip", "netns", "add", name)
        made.append(name)
        return name

    try:
        yield make
    finally:
        for name in made:
            sh("ip", "netns", "del", name, check=False)


@pytest.fixture
def driver_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


def build_driver(home: Path, exec_root: Path) -> NetworkDriver:
    """As the daemon does: the plugin's spec from the plugin manager, then its factory."""
    spec = PluginManager(strict=True).load_all().find("network", "macvlan")
    assert spec.probe() is None, spec.probe()
    exec_root.mkdir(exist_ok=True)
    return spec.factory(DriverContext(kind="network", name="macvlan", home=home, exec_root=exec_root))


@pytest.fixture
def driver(driver_home: Path, tmp_path: Path) -> NetworkDriver:
    built = build_driver(driver_home, tmp_path / "exec")
    assert isinstance(built, NetworkDriver)
    return built


def network_on(parent: str | None, mode: str | None = None, **more: str) -> NetworkSpec:
    options = dict(more)
    if parent is not None:
        options["parent"] = parent
    if mode is not None:
        options["macvlan_mode"] = mode
    return NetworkSpec(network_id=secrets.token_hex(32), name="mv", subnets=(SUBNET,),
                       gateway=GATEWAY, options=options)


def endpoint_in(netns: str, host_number: int, **more) -> EndpointSpec:
    more.setdefault("mac_address", f"02:42:0a:fb:07:{host_number:02x}")
    return EndpointSpec(endpoint_id=secrets.token_hex(32), container_id=secrets.token_hex(32),
                        netns_path=f"/run/netns/{netns}",
                        address=IPv4Interface(f"10.251.7.{host_number}/24"), **more)


def records(home: Path) -> list[str]:
    return sorted(path.name for path in (home / "networks").glob("*.json"))


def assert_wired(netns: str, endpoint: EndpointSpec, mode: str) -> None:
    [link] = macvlan_links(netns)
    assert link["ifname"] == endpoint.interface_name
    assert link["address"] == endpoint.mac_address
    assert link["linkinfo"]["info_data"]["mode"] == mode
    assert "UP" in link["flags"]
    addresses = json.loads(sh("ip", "-n", netns, "-json", "-4", "addr", "show", "dev",
                              endpoint.interface_name).stdout)[0]["addr_info"]
    assert [(a["local"], a["prefixlen"]) for a in addresses] == [(str(endpoint.address.ip), 24)]


# -- modes ----------------------------------------------------------------------------


def test_bridge_mode_endpoints_reach_each_other_with_their_mac_and_address(
        driver, parent, namespace, driver_home):
    network = network_on(parent)
    driver.create_network(network)
    first, second = namespace(), namespace()
    one, two = endpoint_in(first, 2), endpoint_in(second, 3)
    driver.join(network, one)
    driver.join(network, two)

    assert_wired(first, one, "bridge")
    assert_wired(second, two, "bridge")
    routes = json.loads(sh("ip", "-n", first, "-json", "route", "show", "default").stdout)
    assert [(r["gateway"], r["dev"]) for r in routes] == [(str(GATEWAY.ip), "eth0")]
    assert ours_on_host(parent) == set()  # the links were born inside the namespaces
    assert ping(first, two.address) and ping(second, one.address)

    driver.leave(network, one)
    driver.leave(network, two)
    driver.delete_network(network.network_id)
    assert macvlan_links(first) == macvlan_links(second) == []
    assert ours_on_host(parent) == set() and parent in link_names()
    assert records(driver_home) == []


def test_private_mode_endpoints_cannot_reach_each_other(driver, parent, namespace):
    network = network_on(parent, "private")
    driver.create_network(network)
    first, second = namespace(), namespace()
    one, two = endpoint_in(first, 2), endpoint_in(second, 3)
    driver.join(network, one)
    driver.join(network, two)

    assert_wired(first, one, "private")
    assert not ping(first, two.address)


def test_passthru_gives_the_parent_to_one_container(driver, parent, namespace, driver_home):
    network = network_on(parent, "passthru")
    driver.create_network(network)
    first, second = namespace(), namespace()
    one, two = endpoint_in(first, 2), endpoint_in(second, 3)
    driver.join(network, one)
    assert_wired(first, one, "passthru")

    with pytest.raises(NetworkDriverError, match="passthru mode gives the whole parent to one"):
        driver.join(network, two)
    assert macvlan_links(second) == []
    with pytest.raises(NetworkDriverError, match="is already using parent interface .* passthru"):
        driver.create_network(network_on(parent))
    assert len(records(driver_home)) == 1
    driver.leave(network, one)
    assert macvlan_links(first) == []


# -- parents ------------------------------------------------------------------------


def test_a_missing_parent_fails_clearly_and_leaves_nothing(driver, parent, driver_home):
    missing = f"dyt-{secrets.token_hex(4)}"
    with pytest.raises(NetworkDriverError,
                       match=f"-o parent interface was not found on the host: {missing}"):
        driver.create_network(network_on(missing))
    with pytest.raises(NetworkDriverError,
                       match=f"-o parent interface was not found on the host: {missing} "
                             rf"\(it would carry the 802.1q sub-interface {missing}.10\)"):
        driver.create_network(network_on(f"{missing}.10"))
    assert records(driver_home) == []
    assert ours_on_host(missing) == set()


def test_unknown_options_and_bad_modes_fail_clearly(driver, parent, driver_home):
    with pytest.raises(NetworkDriverError, match="does not understand the option vlan_trunk"):
        driver.create_network(network_on(parent, vlan_trunk="yes"))
    with pytest.raises(NetworkDriverError, match="requested macvlan mode 'trunk' is not valid"):
        driver.create_network(network_on(parent, "trunk"))
    assert records(driver_home) == []


@pytest.fixture
def vlan_kernel(parent, monkeypatch) -> Iterator[bool]:
    """True when the kernel creates 802.1q links. Without 8021q, a veth pair stands in for
    the VLAN link the driver creates, so that what the driver owns, keeps and deletes is
    still tested; only the link's kind then differs."""
    if kernel_can_create(["vlan", "id", "99"], parent):
        yield True  # real VLAN links go with their base link, the parent fixture's
        return
    stand_ins: list[str] = []

    def create_a_veth_instead(host, name, spec, hint):
        assert spec["vlan_id"] == 10 and spec["link"] > 0
        sh("ip", "link", "add", name, "type", "veth", "peer", "name", f"dyp-{secrets.token_hex(4)}")
        stand_ins.append(name)
        return True

    monkeypatch.setattr("dockyard_net_macvlan.parent._create", create_a_veth_instead)
    monkeypatch.setattr("dockyard_net_macvlan.parent.VLAN", "veth")
    try:
        yield False
    finally:
        for name in stand_ins:
            sh("ip", "link", "del", name, check=False)


def test_a_vlan_parent_is_created_and_deleted_with_its_network(driver, parent, driver_home, vlan_kernel):
    network = network_on(f"{parent}.10")
    driver.create_network(network)
    driver.create_network(network)  # again: still ours, still one link
    [vlan] = [link for link in links() if link["ifname"] == f"{parent}.10"]
    assert "UP" in vlan["flags"]
    if vlan_kernel:
        assert kind(vlan) == "vlan" and vlan["linkinfo"]["info_data"]["id"] == 10

    driver.delete_network(network.network_id)
    assert ours_on_host(parent) == set() and parent in link_names()
    assert records(driver_home) == []


def test_a_vlan_parent_shared_by_two_networks_goes_with_the_last(driver, parent, vlan_kernel):
    first, second = network_on(f"{parent}.10"), network_on(f"{parent}.10", "private")
    driver.create_network(first)
    driver.create_network(second)
    driver.delete_network(first.network_id)
    assert f"{parent}.10" in link_names()
    driver.delete_network(second.network_id)
    assert f"{parent}.10" not in link_names()


def test_a_vlan_parent_on_a_kernel_without_8021q_fails_clearly(driver, parent, driver_home):
    if kernel_can_create(["vlan", "id", "99"], parent):
        pytest.skip("this kernel creates 802.1q VLAN links")
    with pytest.raises(NetworkDriverError, match=f"cannot create the 802.1q VLAN link {parent}.10 "
                                                 r"\(load it: modprobe 8021q\)"):
        driver.create_network(network_on(f"{parent}.10"))
    assert records(driver_home) == [] and ours_on_host(parent) == set()


def test_no_parent_stands_in_a_dummy_or_says_how_to_get_one(driver, parent, driver_home):
    network = network_on(None)
    dummy = f"dm-{network.network_id[:12]}"
    can_dummy = kernel_can_create(["dummy"], parent)
    if not can_dummy:
        with pytest.raises(NetworkDriverError, match=r"modprobe dummy\), or give -o parent=IFACE"):
            driver.create_network(network)
        assert records(driver_home) == [] and dummy not in link_names()
        return
    driver.create_network(network)
    assert dummy in link_names()
    driver.delete_network(network.network_id)
    assert dummy not in link_names()


def test_a_parent_that_was_there_before_is_never_deleted(driver, parent, driver_home):
    dotted = f"dyt-{secrets.token_hex(2)}.10"  # looks like a VLAN parent, but exists already
    add_veth(dotted)
    try:
        for existing in (parent, dotted):
            network = network_on(existing)
            driver.create_network(network)
            driver.create_network(network)
            driver.delete_network(network.network_id)
            assert existing in link_names()
        driver.restore([], [])
        assert {parent, dotted} <= link_names()
        assert records(driver_home) == []
    finally:
        sh("ip", "link", "del", dotted, check=False)


def test_two_networks_may_share_a_parent(driver, parent, namespace):
    bridge, vepa = network_on(parent), network_on(parent, "vepa")
    driver.create_network(bridge)
    driver.create_network(vepa)
    first = namespace()
    driver.join(bridge, endpoint_in(first, 2))
    driver.join(vepa, endpoint_in(first, 3, interface_name="eth1"))
    assert sorted(link["ifname"] for link in macvlan_links(first)) == ["eth0", "eth1"]


# -- joins and leaves ----------------------------------------------------------------------


def test_repeated_calls_are_not_errors(driver, parent, namespace, driver_home):
    network = network_on(parent)
    driver.create_network(network)
    driver.create_network(network)
    first = namespace()
    one = endpoint_in(first, 2)
    driver.join(network, one)
    driver.join(network, one)
    assert_wired(first, one, "bridge")

    driver.leave(network, one)
    driver.leave(network, one)
    driver.delete_network(network.network_id)
    driver.delete_network(network.network_id)
    driver.delete_network(secrets.token_hex(32))
    assert macvlan_links(first) == [] and ours_on_host(parent) == set()
    assert records(driver_home) == []


def test_leave_after_the_namespace_is_gone(driver, parent, namespace):
    network = network_on(parent)
    driver.create_network(network)
    first = namespace()
    one = endpoint_in(first, 2)
    driver.join(network, one)
    sh("ip", "netns", "del", first)
    driver.leave(network, one)
    driver.leave(network, endpoint_in("dytns-never-was", 3))
    assert ours_on_host(parent) == set()


def test_a_failed_join_leaves_nothing(driver, parent, namespace):
    network = NetworkSpec(network_id=secrets.token_hex(32), name="mv", subnets=(SUBNET,),
                          gateway=IPv4Interface("10.99.0.1/24"), options={"parent": parent})
    driver.create_network(network)
    first = namespace()
    with pytest.raises(NetworkDriverError, match="cannot route via the gateway 10.99.0.1"):
        driver.join(network, endpoint_in(first, 2))
    assert macvlan_links(first) == [] and ours_on_host(parent) == set()
    multicast = endpoint_in(first, 3, mac_address="03:00:5e:00:00:01")
    with pytest.raises(NetworkDriverError, match="not a valid unicast address"):
        driver.join(network_on(parent), multicast)
    assert macvlan_links(first) == [] and ours_on_host(parent) == set()


def test_join_to_a_namespace_that_is_gone_says_so(driver, parent):
    network = network_on(parent)
    driver.create_network(network)
    with pytest.raises(NetworkDriverError, match="is the container still running"):
        driver.join(network, endpoint_in("dytns-never-was", 2))
    assert ours_on_host(parent) == set()


def test_join_refuses_an_interface_name_taken_by_something_else(driver, parent, namespace):
    network = network_on(parent)
    driver.create_network(network)
    first = namespace()
    sh("ip", "-n", first, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
    one = endpoint_in(first, 2)
    with pytest.raises(NetworkDriverError, match="already has an interface named eth0"):
        driver.join(network, one)
    driver.leave(network, one)
    assert "eth0" in link_names(first) and macvlan_links(first) == []


def test_an_endpoint_without_default_route_gets_no_default_route(
        driver, parent, namespace):
    network = network_on(parent)
    driver.create_network(network)
    first = namespace()
    driver.join(network, endpoint_in(first, 2, default_route=False))
    assert sh("ip", "-n", first, "route", "show", "default").stdout.strip() == ""


# -- restarts ---------------------------------------------------------------------------


def test_restore_keeps_listed_networks_and_forgets_the_others(driver, parent, driver_home, tmp_path):
    kept, dropped = network_on(parent), network_on(parent, "private")
    driver.create_network(kept)
    driver.create_network(dropped)
    restarted = build_driver(driver_home, tmp_path / "exec")  # a new daemon on the same home
    restarted.restore([kept], [])
    assert records(driver_home) == [f"{kept.network_id}.json"]
    assert parent in link_names()


def test_restore_recreates_a_vlan_parent_it_owns(driver, parent, driver_home, tmp_path, vlan_kernel):
    network = network_on(f"{parent}.10")
    driver.create_network(network)
    sh("ip", "link", "del", f"{parent}.10")  # as a reboot would
    restarted = build_driver(driver_home, tmp_path / "exec")
    restarted.restore([network], [])
    assert f"{parent}.10" in link_names()
    restarted.restore([], [])
    assert f"{parent}.10" not in link_names() and records(driver_home) == []
