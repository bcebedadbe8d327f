"""Networks end to end through the real docker CLI against dockyardd: user-defined bridges
with DNS by name and alias, isolation, published ports (loopback, a client namespace
routed to the host, a sibling container), egress NAT to a fake remote host, macvlan,
host/none/container modes, Docker's errors, live restore, and nothing left behind.

Traffic goes only to loopback and to namespaces this file or the daemon creates."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import docker, out

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    from dockyard.plugin.testing.daemon import DaemonProcess

    root = Path(tmp_path_factory.mktemp("nw", numbered=True))
    import sys

    process = DaemonProcess(root).start()
    if "bridge" not in [n["Name"] for n in process.client().get_json("/networks")]:
        process.teardown()
        pytest.skip("the bridge network driver does not run here: " + process.log()[-400:])
    try:
        subprocess.run([sys.executable, "-m", "dockyard.cli", "-H", process.host, "image", "bootstrap",
                        "busybox"], check=True, capture_output=True)
        yield process
    finally:
        api = process.client()
        for container in api.get_json("/containers/json", {"all": 1}):
            api.request("DELETE", f"/containers/{container['Id']}", {"force": 1}).read()
        for network in api.get_json("/networks"):
            if network["Name"] not in ("bridge", "host", "none"):
                api.request("DELETE", f"/networks/{network['Id']}").read()
        process.teardown()




def name(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


def links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def nft_tables() -> str:
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout


def nft_ruleset() -> str:
    return subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout


def settled(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_get(url: str, timeout: float = 5) -> str:
    deadline = time.monotonic() + 15
    while True:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class Namespace:
    """A network namespace of the test's own, joined to the host by a veth pair."""

    def __init__(self, host_address: str, inside_address: str) -> None:
        self.name = name("dyt")
        self.host_link = name("dyth")
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        subprocess.run(["ip", "link", "add", self.host_link, "type", "veth", "peer", "name", "eth0",
                        "netns", self.name], check=True)
        subprocess.run(["ip", "addr", "add", host_address, "dev", self.host_link], check=True)
        subprocess.run(["ip", "link", "set", self.host_link, "up"], check=True)
        self.run("ip", "addr", "add", inside_address, "dev", "eth0")
        self.run("ip", "link", "set", "eth0", "up")
        self.run("ip", "link", "set", "lo", "up")
        self.run("ip", "route", "add", "default", "via", host_address.split("/")[0])

    def run(self, *argv: str, **kwargs):
        kwargs.setdefault("check", True)
        kwargs.setdefault("capture_output", True)
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], **kwargs)

    def popen(self, *argv: str) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def close(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_link], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def test_network_lifecycle_and_dockers_errors(daemon):
    net = name("life")
    created = docker(daemon, "network", "create", "--subnet", "10.231.0.0/24", "--gateway", "10.231.0.254",
                     "--label", "team=a", net, check=True)
    network_id = out(created)
    listed = out(docker(daemon, "network", "ls", "--format", "{{.Name}} {{.Driver}}", check=True))
    assert f"{net} bridge" in listed.splitlines() and "host host" in listed and "none null" in listed
    info = json.loads(out(docker(daemon, "network", "inspect", net, check=True)))[0]
    assert info["Id"] == network_id
    assert info["IPAM"]["Config"] == [{"Subnet": "10.231.0.0/24", "Gateway": "10.231.0.254"}]
    assert info["Labels"] == {"team": "a"}

    overlap = docker(daemon, "network", "create", "--subnet", "10.231.0.128/25", name("x"))
    assert overlap.returncode == 1 and b"Pool overlaps with other one on this address space" in overlap.stderr
    outside = docker(daemon, "network", "create", "--subnet", "10.232.0.0/24", "--gateway", "10.9.9.9",
                     name("x"))
    assert outside.returncode == 1 and b"no matching subnet for gateway 10.9.9.9" in outside.stderr
    duplicate = docker(daemon, "network", "create", net)
    assert duplicate.returncode == 1
    assert f"network with name {net} already exists".encode() in duplicate.stderr
    unknown = docker(daemon, "network", "create", "-d", "nosuchdriver", name("x"))
    assert unknown.returncode == 1 and b'plugin "nosuchdriver" not found' in unknown.stderr
    predefined = docker(daemon, "network", "rm", "bridge")
    assert predefined.returncode == 1 and b"pre-defined network and cannot be removed" in predefined.stderr
    # nothing of the refused creates was kept: the overlapping subnet is still free after rm
    holder = out(docker(daemon, "run", "-d", "--network", net, "busybox", "sleep", "60", check=True))
    busy = docker(daemon, "network", "rm", net)
    assert busy.returncode == 1 and b"has active endpoints" in busy.stderr
    from dockyard.client import APIError

    with pytest.raises(APIError) as refused:
        daemon.client().request("DELETE", f"/networks/{network_id}")
    assert refused.value.status == 409
    docker(daemon, "rm", "-f", holder, check=True)
    docker(daemon, "network", "rm", net, check=True)
    assert f"dockyard-{network_id[:12]}" not in nft_tables()
    assert f"dy-{network_id[:12]}" not in links()
    docker(daemon, "network", "create", "--subnet", "10.231.0.128/25", net, check=True)
    docker(daemon, "network", "rm", net, check=True)


def test_containers_reach_each_other_by_name_and_alias(daemon):
    net = name("app")
    docker(daemon, "network", "create", net, check=True)
    web = name("web")
    docker(daemon, "run", "-d", "--name", web, "--network", net, "--network-alias", "db",
           "busybox", "sleep", "120", check=True)
    client = name("cli")
    docker(daemon, "run", "-d", "--name", client, "--network", net, "busybox", "sleep", "120", check=True)
    web_ip = json.loads(out(docker(daemon, "inspect", web, check=True)))[0]["NetworkSettings"]["Networks"][
        net]["IPAddress"]
    for target in (web, "db", web[:12]):
        lookup = docker(daemon, "exec", client, "nslookup", target, "127.0.0.11")
        assert web_ip in out(lookup), (target, out(lookup), lookup.stderr)
    assert docker(daemon, "exec", client, "ping", "-c1", "-W2", web).returncode == 0
    assert docker(daemon, "exec", client, "ping", "-c1", "-W2", "db").returncode == 0
    net_io = out(docker(daemon, "stats", "--no-stream", "--format", "{{.NetIO}}", client, check=True))
    received, sent = (part.strip() for part in net_io.split("/"))
    assert received != "0B" and sent != "0B", net_io  # eth0's counters, read from the namespace
    resolv = out(docker(daemon, "exec", client, "cat", "/etc/resolv.conf", check=True))
    assert "nameserver 127.0.0.11" in resolv
    hosts = out(docker(daemon, "exec", web, "cat", "/etc/hosts", check=True))
    assert web_ip in hosts
    docker(daemon, "rm", "-f", web, client, check=True)
    docker(daemon, "network", "rm", net, check=True)


def test_different_networks_are_isolated(daemon):
    first, second = name("iso"), name("iso")
    docker(daemon, "network", "create", first, check=True)
    docker(daemon, "network", "create", second, check=True)
    a = out(docker(daemon, "run", "-d", "--network", first, "busybox", "sleep", "120", check=True))
    b = out(docker(daemon, "run", "-d", "--network", second, "busybox", "sleep", "120", check=True))
    b_ip = json.loads(out(docker(daemon, "inspect", b)))[0]["NetworkSettings"]["Networks"][second][
        "IPAddress"]
    gateway = json.loads(out(docker(daemon, "inspect", a)))[0]["NetworkSettings"]["Networks"][first][
        "Gateway"]
    assert docker(daemon, "exec", a, "ping", "-c1", "-W1", gateway).returncode == 0
    assert docker(daemon, "exec", a, "ping", "-c1", "-W1", b_ip).returncode != 0
    docker(daemon, "rm", "-f", a, b, check=True)
    docker(daemon, "network", "rm", first, second, check=True)


def test_published_port_from_loopback_a_routed_namespace_and_a_sibling(daemon):
    port = free_port()
    web = name("httpd")
    docker(daemon, "run", "-d", "--name", web, "-h", "served", "-p", f"{port}:80", "busybox",
           "httpd", "-f", "-p", "80", "-h", "/etc", check=True)
    assert out(docker(daemon, "port", web, check=True)) == f"80/tcp -> 0.0.0.0:{port}"
    ps = out(docker(daemon, "ps", "--filter", f"name={web}", "--format", "{{.Ports}}", check=True))
    assert ps == f"0.0.0.0:{port}->80/tcp"
    assert http_get(f"http://127.0.0.1:{port}/hostname").strip() == "served"
    client = Namespace("10.253.7.1/30", "10.253.7.2/30")
    try:
        fetched = client.run("python3", "-c", "import sys, urllib.request; print(urllib.request.urlopen("
                             f"'http://10.253.7.1:{port}/hostname', timeout=10).read().decode())")
        assert fetched.stdout.decode().strip() == "served"
    finally:
        client.close()
    gateway = json.loads(out(docker(daemon, "inspect", web)))[0]["NetworkSettings"]["Gateway"]
    # busybox-static's wget crashes resolving even a numeric address: nc speaks HTTP here
    sibling = docker(daemon, "run", "--rm", "busybox", "sh", "-c",
                     f"printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {gateway} {port}")
    assert out(sibling).splitlines()[-1].strip() == "served", sibling.stderr
    taken = docker(daemon, "run", "-d", "-p", f"{port}:80", "busybox", "sleep", "60")
    assert taken.returncode == 125 and b"port is already allocated" in taken.stderr
    veths_before = {link for link in links() if link.startswith("dyv")}
    docker(daemon, "rm", "-f", web, check=True)
    # the kernel side of an exited container's endpoint goes on a background thread
    assert settled(lambda: len({link for link in links() if link.startswith("dyv")}) == len(veths_before) - 1)
    assert settled(lambda: f"dport {port}" not in nft_ruleset())
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/hostname", timeout=2)


def test_a_port_held_by_a_host_process_fails_the_start_cleanly(daemon):
    with socket.socket() as squatter:
        squatter.bind(("0.0.0.0", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        veths = {link for link in links() if link.startswith("dyv")}
        result = docker(daemon, "run", "--name", name("blocked"), "-p", f"{port}:80", "busybox", "true")
        assert result.returncode == 125
        assert b"address already in use" in result.stderr
        assert {link for link in links() if link.startswith("dyv")} <= veths  # none new, none kept
        assert f"dport {port}" not in nft_ruleset()


def test_egress_is_masqueraded_towards_a_fake_remote_host(daemon):
    remote = Namespace("10.254.9.1/30", "10.254.9.2/30")
    try:
        listener = remote.popen("python3", "-c", (
            "import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);"
            "s.bind(('10.254.9.2', 7000)); s.listen(); c, peer = s.accept();"
            "print(peer[0], c.recv(100).decode())"))
        time.sleep(0.5)
        sent = docker(daemon, "run", "--rm", "busybox", "sh", "-c", "echo hello | nc -w 3 10.254.9.2 7000")
        assert sent.returncode == 0, sent.stderr
        seen, _ = listener.communicate(timeout=20)
        assert seen.split() == ["10.254.9.1", "hello"]  # the host's address: masqueraded
    finally:
        remote.close()


def test_internal_network_has_no_egress_but_members_talk(daemon):
    net = name("int")
    docker(daemon, "network", "create", "--internal", net, check=True)
    remote = Namespace("10.254.10.1/30", "10.254.10.2/30")
    try:
        a = out(docker(daemon, "run", "-d", "--name", name("ia"), "--network", net, "busybox", "sleep", "60",
                       check=True))
        b = name("ib")
        docker(daemon, "run", "-d", "--name", b, "--network", net, "busybox", "sleep", "60", check=True)
        assert docker(daemon, "exec", a, "ping", "-c1", "-W2", b).returncode == 0
        assert docker(daemon, "exec", a, "ping", "-c1", "-W1", "10.254.10.2").returncode != 0
        docker(daemon, "rm", "-f", a, b, check=True)
    finally:
        remote.close()
    docker(daemon, "network", "rm", net, check=True)


def test_static_ip_connect_disconnect_and_conflicts(daemon):
    net = name("static")
    docker(daemon, "network", "create", "--subnet", "10.233.0.0/24", net, check=True)
    first = name("s1")
    docker(daemon, "run", "-d", "--name", first, "--network", net, "--ip", "10.233.0.50", "busybox",
           "sleep", "120", check=True)
    shown = out(docker(daemon, "exec", first, "ip", "-4", "addr", "show", "eth0", check=True))
    assert "10.233.0.50/24" in shown
    taken = docker(daemon, "run", "--name", name("s2"), "--network", net, "--ip", "10.233.0.50", "busybox",
                   "true")
    assert taken.returncode == 125 and b"Address already in use" in taken.stderr
    outside = docker(daemon, "create", "--network", net, "--ip", "10.99.0.5", "busybox", "true")
    assert outside.returncode == 1 and b"no configured subnet or ip-range contain the IP address" in \
        outside.stderr
    unknown = docker(daemon, "run", "--rm", "--network", "nosuchnet", "busybox", "true")
    assert unknown.returncode == 125 and b"network nosuchnet not found" in unknown.stderr
    assert b"Unable to find image" not in unknown.stderr
    default_ip = docker(daemon, "create", "--ip", "172.30.0.5", "busybox", "true")
    assert b"user specified IP address is supported on user defined networks only" in default_ip.stderr
    other = out(docker(daemon, "run", "-d", "busybox", "sleep", "120", check=True))
    docker(daemon, "network", "connect", "--alias", "joined", net, other, check=True)
    networks = json.loads(out(docker(daemon, "inspect", other)))[0]["NetworkSettings"]["Networks"]
    assert set(networks) == {"bridge", net}
    assert docker(daemon, "exec", other, "ping", "-c1", "-W2", first).returncode == 0
    assert docker(daemon, "exec", first, "ping", "-c1", "-W2", "joined").returncode == 0
    docker(daemon, "network", "disconnect", net, other, check=True)
    assert "eth1" not in out(docker(daemon, "exec", other, "ip", "link", check=True))
    docker(daemon, "rm", "-f", first, other, check=True)
    docker(daemon, "network", "rm", net, check=True)


def test_host_none_and_container_modes(daemon):
    host_links = out(docker(daemon, "run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net",
                            check=True)).split()
    steady = lambda names: {n for n in names if not n.startswith("dyv")}  # noqa: E731 (veths come and go)
    assert steady(host_links) == steady(links()) and "eth0" in host_links
    none_links = out(docker(daemon, "run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net",
                            check=True)).split()
    assert none_links == ["lo"]
    owner = out(docker(daemon, "run", "-d", "busybox", "sleep", "60", check=True))
    owner_ip = json.loads(out(docker(daemon, "inspect", owner)))[0]["NetworkSettings"]["IPAddress"]
    shared = out(docker(daemon, "run", "--rm", "--network", f"container:{owner}", "busybox", "ip", "-4",
                        "addr", "show", "eth0", check=True))
    assert owner_ip in shared
    docker(daemon, "rm", "-f", owner, check=True)


def test_endpoints_survive_a_daemon_kill(daemon):
    net = name("live")
    docker(daemon, "network", "create", net, check=True)
    port = free_port()
    web = name("lweb")
    docker(daemon, "run", "-d", "--name", web, "--network", net, "-h", "alive", "-p", f"127.0.0.1:{port}:80",
           "busybox", "httpd", "-f", "-p", "80", "-h", "/etc", check=True)
    client = name("lcli")
    docker(daemon, "run", "-d", "--name", client, "--network", net, "busybox", "sleep", "120", check=True)
    assert http_get(f"http://127.0.0.1:{port}/hostname").strip() == "alive"
    daemon.process.send_signal(signal.SIGKILL)
    daemon.process.wait()
    daemon.start()
    assert http_get(f"http://127.0.0.1:{port}/hostname").strip() == "alive"
    assert docker(daemon, "exec", client, "ping", "-c1", "-W2", web).returncode == 0
    taken = docker(daemon, "run", "-d", "-p", f"127.0.0.1:{port}:80", "busybox", "true")
    assert b"port is already allocated" in taken.stderr
    docker(daemon, "rm", "-f", web, client, check=True)
    docker(daemon, "network", "rm", net, check=True)


def test_macvlan_containers_reach_each_other_on_a_veth_parent(daemon):
    """The parent is one end of a veth pair the test makes (this kernel has no dummy
    links): it has a carrier, and macvlan's bridge mode switches between siblings."""
    if "macvlan" not in out(docker(daemon, "info", "--format", "{{json .Plugins.Network}}", check=True)):
        pytest.skip("the macvlan driver does not run here")
    parent = name("dyp")
    subprocess.run(["ip", "link", "add", parent, "type", "veth", "peer", "name", parent + "x"], check=True)
    for link in (parent, parent + "x"):
        subprocess.run(["ip", "link", "set", link, "up"], check=True)
    net = name("mv")
    try:
        docker(daemon, "network", "create", "-d", "macvlan", "-o", f"parent={parent}", "--subnet",
               "10.235.0.0/24", net, check=True)
        a = name("ma")
        docker(daemon, "run", "-d", "--name", a, "--network", net, "busybox", "sleep", "60", check=True)
        b = out(docker(daemon, "run", "-d", "--network", net, "busybox", "sleep", "60", check=True))
        assert docker(daemon, "exec", b, "ping", "-c1", "-W2", a).returncode == 0
        missing = docker(daemon, "network", "create", "-d", "macvlan", "-o", "parent=nosuch0", name("mv"))
        assert missing.returncode == 1 and b"nosuch0" in missing.stderr
        docker(daemon, "rm", "-f", a, b, check=True)
        docker(daemon, "network", "rm", net, check=True)
        assert parent in links()  # a parent the driver did not make is never deleted
    finally:
        subprocess.run(["ip", "link", "del", parent], capture_output=True)


def test_docker_py_sees_networks(daemon):
    import docker as docker_py

    client = docker_py.DockerClient(base_url=daemon.host, version="1.44")
    network = client.networks.create(name("py"), labels={"made": "py"})
    try:
        container = client.containers.run("busybox", ["sleep", "30"], detach=True, network=network.name)
        network.reload()
        assert [c.id for c in network.containers] == [container.id]
        container.remove(force=True)
    finally:
        network.remove()
    assert client.networks.prune(filters={"label": "made=py"})["NetworksDeleted"] is None


def dockyard(daemon, *args, check=True):
    import sys

    result = subprocess.run([sys.executable, "-m", "dockyard.cli", "-H", daemon.host, *args],
                            capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_publish_all_ranges_and_our_own_cli(daemon):
    web = out(docker(daemon, "run", "-d", "--expose", "80", "-P", "-h", "random", "busybox",
                     "httpd", "-f", "-p", "80", "-h", "/etc", check=True))
    mapping = out(docker(daemon, "port", web, "80", check=True))
    host_port = int(mapping.rsplit(":", 1)[1])
    low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert low <= host_port <= high
    assert http_get(f"http://127.0.0.1:{host_port}/hostname").strip() == "random"
    docker(daemon, "rm", "-f", web, check=True)

    first = free_port()
    while True:
        second = free_port()
        if second != first:
            break
    ranged = dockyard(daemon, "run", "-d", "-p", f"127.0.0.1:{first}:80", "-p", f"127.0.0.1:{second}:81/udp",
                      "busybox", "sleep", "60").stdout.strip()
    lines = dockyard(daemon, "port", ranged).stdout.splitlines()
    assert lines == [f"80/tcp -> 127.0.0.1:{first}", f"81/udp -> 127.0.0.1:{second}"]
    ps = dockyard(daemon, "ps", "--filter", f"publish={first}", "-q").stdout.split()
    assert ps == [ranged[:12]]
    dockyard(daemon, "rm", "-f", ranged)

    net = name("cli")
    network_id = dockyard(daemon, "network", "create", "--subnet", "10.236.0.0/24", "--label", "via=cli",
                          net).stdout.strip()
    assert net in dockyard(daemon, "network", "ls", "--filter", "label=via=cli").stdout
    inspected = json.loads(dockyard(daemon, "network", "inspect", net).stdout)[0]
    assert inspected["Id"] == network_id and inspected["IPAM"]["Config"][0]["Subnet"] == "10.236.0.0/24"
    member = dockyard(daemon, "run", "-d", "--network", net, "--ip", "10.236.0.9", "busybox", "sleep",
                      "60").stdout.strip()
    assert "10.236.0.9/24" in json.loads(dockyard(daemon, "network", "inspect", net).stdout)[0][
        "Containers"][member]["IPv4Address"]
    refused = dockyard(daemon, "network", "rm", net, check=False)
    assert refused.returncode == 1 and "has active endpoints" in refused.stderr
    dockyard(daemon, "rm", "-f", member)
    assert dockyard(daemon, "network", "prune", "-f", "--filter", "label=via=cli").stdout.split()[-1] == net
    assert net not in dockyard(daemon, "network", "ls").stdout
