"""Overlay networks across test hosts: one network every daemon of the cluster lists,
containers on different hosts that reach each other by address and by name over VXLAN,
addresses no two hosts ever share, and nothing left behind in the kernel or the store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from cluster_lab import TTL, info, needs_etcd, peers, wait_for

pytestmark = [pytest.mark.root, pytest.mark.compat, needs_etcd]

OVERLAY_LINKS = ("dyov", "dyvx", "dyoe")


def docker(daemon, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_CONFIG": str(daemon.root / "cfg")}
    result = subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check:
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result


def bootstrap(daemon) -> None:
    subprocess.run([sys.executable, "-m", "dockyard.cli", "-H", daemon.host, "image", "bootstrap", "busybox"],
                   check=True, capture_output=True, timeout=120)


def names(daemon) -> str:
    return docker(daemon, "network", "ls", "--format", "{{.Name}}").stdout


def overlay_links(host) -> list[str]:
    return [name for name in host.links() if name.startswith(OVERLAY_LINKS)]


@pytest.fixture(scope="module")
def cluster(lab):
    """Two hosts with a daemon and a busybox image each."""
    hosts = []
    for _ in range(2):
        host, daemon = lab.daemon()
        bootstrap(daemon)
        hosts.append((host, daemon))
    for _, daemon in hosts:
        wait_for(lambda d=daemon: len(peers(d)) >= 2, what="both hosts joined")
    yield hosts
    for _, daemon in hosts:
        api = daemon.client()
        for container in api.get_json("/containers/json", {"all": 1}):
            api.request("DELETE", f"/containers/{container['Id']}", {"force": 1}).read()


def test_one_network_on_every_host_and_containers_reach_each_other(cluster, lab):
    (h1, d1), (h2, d2) = cluster
    docker(d1, "network", "create", "-d", "overlay", "--subnet", "10.231.0.0/24", "ov1")
    listed = wait_for(lambda: "ov1 overlay global" in docker(d2, "network", "ls", "--format",
                                                              "{{.Name}} {{.Driver}} {{.Scope}}").stdout,
                      what="the network to show on the other host")
    assert listed
    first, second = (json.loads(docker(d, "network", "inspect", "ov1").stdout)[0] for d in (d1, d2))
    assert first["Id"] == second["Id"] and first["Scope"] == "global"
    assert second["IPAM"]["Config"][0]["Subnet"] == "10.231.0.0/24"
    assert overlay_links(h1) == [] and overlay_links(h2) == []  # devices come with a first container

    docker(d2, "run", "-d", "--name", "web", "--network", "ov1", "--network-alias", "www", "busybox",
           "sleep", "300")
    settings = json.loads(docker(d2, "inspect", "web").stdout)[0]["NetworkSettings"]
    web = settings["Networks"]["ov1"]["IPAddress"]
    assert web.startswith("10.231.0.")
    by_address = docker(d1, "run", "--rm", "--network", "ov1", "busybox", "ping", "-c", "2", "-W", "3", web,
                        check=False)
    assert by_address.returncode == 0, by_address.stdout + by_address.stderr
    by_name = docker(d1, "run", "--rm", "--network", "ov1", "busybox", "ping", "-c", "1", "-W", "3", "web",
                     check=False)
    assert by_name.returncode == 0, by_name.stdout + by_name.stderr
    assert f"({web})" in by_name.stdout  # the name resolved to the other host's container
    short_id = json.loads(docker(d2, "inspect", "web").stdout)[0]["Id"][:12]
    for other_name in ("www", short_id):  # its alias and short id answer too
        resolved = docker(d1, "run", "--rm", "--network", "ov1", "busybox", "nslookup", other_name,
                          check=False)
        assert web in resolved.stdout, resolved.stdout + resolved.stderr
    vxlan = "dyvx" + first["Id"][:11]
    entries = h1.run("bridge", "fdb", "show", "dev", vxlan).stdout
    mac = settings["Networks"]["ov1"]["MacAddress"]
    assert f"{mac} dst {h2.address}" in entries  # programmed from the store, no learning

    mtu = docker(d2, "exec", "web", "cat", "/sys/class/net/eth0/mtu").stdout.strip()
    assert mtu == "1450"  # the underlay's 1500 minus the VXLAN header

    peers = json.loads(docker(d1, "network", "inspect", "ov1").stdout)[0]["Peers"]
    assert [(p["IP"], p["Endpoints"]) for p in peers] == [(str(h2.address), 1)]

    refused = docker(d1, "network", "rm", "ov1", check=False)
    assert refused.returncode != 0 and "active endpoints" in refused.stderr
    assert str(h2.address) in refused.stderr  # names the host that still has one
    docker(d2, "rm", "-f", "web")
    wait_for(lambda: mac not in h1.run("bridge", "fdb", "show", "dev", vxlan).stdout,
             what="the gone endpoint's forwarding entries (the VXLAN's and the bridge's) to be removed")
    wait_for(lambda: docker(d1, "network", "rm", "ov1", check=False).returncode == 0,
             what="the network to be removable once its endpoints are gone")
    wait_for(lambda: "ov1" not in names(d2),
             what="the other host to forget the network")
    wait_for(lambda: overlay_links(h1) == [] and overlay_links(h2) == [], what="the overlay devices to go")
    store = lab.store()
    left = [e.key for e in store.list("")[0] if not e.key.startswith("nodes/")]
    store.close()
    assert left == []


def test_a_name_is_unique_in_the_cluster_and_overlay_needs_a_store(cluster, make_daemon):
    (_, d1), (_, d2) = cluster
    docker(d1, "network", "create", "-d", "overlay", "--subnet", "10.232.0.0/24", "taken")
    clash = docker(d2, "network", "create", "-d", "overlay", "--subnet", "10.232.1.0/24", "taken",
                   check=False)
    assert clash.returncode != 0 and "already exists" in clash.stderr
    overlap = docker(d2, "network", "create", "-d", "overlay", "--subnet", "10.232.0.0/25", "other",
                     check=False)
    assert overlap.returncode != 0 and "overlaps" in overlap.stderr
    docker(d2, "network", "rm", "taken")
    lonely = make_daemon("lonely").start()
    alone = docker(lonely, "network", "create", "-d", "overlay", "solo", check=False)
    assert alone.returncode != 0 and "need a cluster store" in alone.stderr
    lonely.stop()


def test_hosts_allocating_at_once_never_share_an_address(cluster, lab):
    (_, d1), (_, d2) = cluster
    h3, d3 = lab.daemon()
    bootstrap(d3)
    docker(d1, "network", "create", "-d", "overlay", "--subnet", "10.233.0.0/27", "busy")
    wait_for(lambda: "busy" in names(d3), what="busy on h3")
    daemons = [d1, d2, d3]

    def start(n: int) -> str:
        daemon = daemons[n % 3]
        docker(daemon, "run", "-d", "--name", f"c{n}", "--network", "busy", "busybox", "sleep", "300")
        settings = json.loads(docker(daemon, "inspect", f"c{n}").stdout)[0]["NetworkSettings"]
        return settings["Networks"]["busy"]["IPAddress"]

    with ThreadPoolExecutor(6) as pool:
        addresses = list(pool.map(start, range(12)))
    assert len(set(addresses)) == 12, addresses
    for n in range(12):
        docker(daemons[n % 3], "rm", "-f", f"c{n}")
    d3.stop()
    wait_for(lambda: docker(d1, "network", "rm", "busy", check=False).returncode == 0, what="busy removed")


def test_a_dead_hosts_addresses_are_freed_when_its_lease_expires(cluster, lab):
    (_, d1), _ = cluster
    h3, d3 = lab.daemon()
    bootstrap(d3)
    docker(d1, "network", "create", "-d", "overlay", "--subnet", "10.234.0.0/24", "lease")
    wait_for(lambda: "lease" in names(d3), what="lease on h3")
    docker(d3, "run", "-d", "--name", "doomed", "--network", "lease", "--ip", "10.234.0.50", "busybox",
           "sleep", "300")
    taken = docker(d1, "run", "--rm", "--network", "lease", "--ip", "10.234.0.50", "busybox", "true",
                   check=False)
    assert taken.returncode != 0 and "Address already in use" in taken.stderr
    d3.kill()  # the host dies; its container's address must come back to the cluster
    wait_for(lambda: docker(d1, "run", "--rm", "--network", "lease", "--ip", "10.234.0.50", "busybox", "true",
                            check=False).returncode == 0, timeout=TTL + 20,
             what="the dead host's address to be free again")
    d3.start()  # back, and cleaned up: its container goes
    docker(d3, "rm", "-f", "doomed")
    wait_for(lambda: docker(d1, "network", "rm", "lease", check=False).returncode == 0, what="lease removed")
    d3.stop()


def test_egress_and_published_ports_go_through_the_gateway_bridge(cluster, lab):
    (h1, d1), _ = cluster
    remote = lab.net.add_host("r")  # a machine on the underlay that is no cluster member
    listener = subprocess.Popen(["ip", "netns", "exec", remote.name, "python3", "-c", (
        "import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);"
        f"s.bind(('{remote.address}', 7000)); s.listen(); c, peer = s.accept();"
        "print(peer[0], c.recv(100).decode())")], stdout=subprocess.PIPE, text=True)
    docker(d1, "network", "create", "-d", "overlay", "--subnet", "10.235.0.0/24", "out")
    try:
        wait_for(lambda: docker(d1, "run", "--rm", "--network", "out", "busybox", "sh", "-c",
                                f"echo hello | nc -w 3 {remote.address} 7000", check=False).returncode == 0,
                 what="a container on an overlay network reaching a remote host")
        seen, _ = listener.communicate(timeout=20)
        assert seen.split() == [str(h1.address), "hello"]  # masqueraded behind its own host
        assert "docker_gwbridge bridge local" in docker(d1, "network", "ls", "--format",
                                                        "{{.Name}} {{.Driver}} {{.Scope}}").stdout

        docker(d1, "run", "-d", "--name", "published", "--network", "out", "-p", "8080:7001", "busybox", "sh",
               "-c", "while true; do echo served | nc -l -p 7001; done")
        settings = json.loads(docker(d1, "inspect", "published").stdout)[0]["NetworkSettings"]
        assert list(settings["Networks"]) == ["out"]  # the gateway endpoint is not one of its networks
        assert settings["Ports"]["7001/tcp"][0]["HostPort"] == "8080"
        fetched = wait_for(lambda: remote.run("sh", "-c", f"echo hi | busybox nc -w 3 {h1.address} 8080",
                                              check=False).stdout.strip(), what="the published port")
        assert fetched == "served"
        internal = docker(d1, "network", "create", "-d", "overlay", "--internal", "--subnet", "10.235.1.0/24",
                          "sealed")
        assert internal.returncode == 0
        cut_off = docker(d1, "run", "--rm", "--network", "sealed", "busybox", "sh", "-c",
                         f"echo x | nc -w 2 {remote.address} 7000", check=False)
        assert cut_off.returncode != 0  # no gateway for an internal network
    finally:
        listener.kill()
        docker(d1, "rm", "-f", "published", check=False)
        for network in ("out", "sealed"):
            docker(d1, "network", "rm", network, check=False)


def ping(daemon, container: str, target: str, count: int = 1) -> subprocess.CompletedProcess:
    return docker(daemon, "exec", container, "ping", "-c", str(count), "-W", "2", target, check=False)


def test_a_killed_daemon_comes_back_with_its_endpoints_and_announces_them_again(cluster):
    (_, d1), (_, d2) = cluster
    docker(d1, "network", "create", "-d", "overlay", "--subnet", "10.236.0.0/24", "again")
    wait_for(lambda: "again" in names(d2), what="again on h2")
    docker(d1, "run", "-d", "--name", "asker", "--network", "again", "busybox", "sleep", "300")
    docker(d2, "run", "-d", "--name", "kept", "--network", "again", "busybox", "sleep", "300")
    started = json.loads(docker(d2, "inspect", "kept").stdout)[0]["State"]["StartedAt"]
    wait_for(lambda: ping(d1, "asker", "kept").returncode == 0, what="kept reachable by name")
    d2.kill()
    # its lease expires: the others forget its endpoints, names and addresses
    wait_for(lambda: ping(d1, "asker", "kept").returncode != 0, timeout=TTL + 15, what="kept forgotten")
    d2.start()
    wait_for(lambda: ping(d1, "asker", "kept").returncode == 0, timeout=30,
             what="kept announced again by its restarted daemon")
    # live restore: the same run of the container, never restarted
    assert json.loads(docker(d2, "inspect", "kept").stdout)[0]["State"]["StartedAt"] == started
    for daemon, name in ((d1, "asker"), (d2, "kept")):
        docker(daemon, "rm", "-f", name)
    wait_for(lambda: docker(d1, "network", "rm", "again", check=False).returncode == 0, what="again removed")


def test_a_host_cut_from_the_store_keeps_talking_and_fails_creates_clearly(lab):
    hosts = []
    for _ in range(2):  # leases that outlive the partition: the data plane must not notice it
        host, daemon = lab.daemon(None, "--cluster-store-opt", "discovery.ttl=60",
                                  "--cluster-store-opt", "discovery.heartbeat=1")
        bootstrap(daemon)
        hosts.append((host, daemon))
    (ha, da), (_, db) = hosts
    docker(da, "network", "create", "-d", "overlay", "--subnet", "10.237.0.0/24", "split")
    wait_for(lambda: "split" in names(db), what="split on the second host")
    docker(da, "run", "-d", "--name", "left", "--network", "split", "busybox", "sleep", "300")
    docker(db, "run", "-d", "--name", "right", "--network", "split", "busybox", "sleep", "300")
    right = json.loads(docker(db, "inspect", "right").stdout)[0]["NetworkSettings"]["Networks"]["split"]
    wait_for(lambda: ping(da, "left", "right").returncode == 0, what="left reaching right")
    store = lab.store()
    keys_before = sorted(e.key for e in store.list("")[0] if not e.key.startswith("nodes/"))
    links_before = overlay_links(ha)

    lab.net.cut_from(ha, [str(member.address) for member in lab.etcd.members])
    try:
        assert ping(da, "left", right["IPAddress"], count=3).returncode == 0  # the data plane stays up
        created = docker(da, "network", "create", "-d", "overlay", "--subnet", "10.237.1.0/24", "nope",
                         check=False)
        assert created.returncode != 0 and "cluster store" in created.stderr, created.stderr
        joined = docker(da, "run", "--rm", "--network", "split", "busybox", "true", check=False)
        assert joined.returncode != 0 and "cluster store" in joined.stderr, joined.stderr
        assert overlay_links(ha) == links_before  # no device or veth of the failed start stays
        da.kill()  # and a restart while the store is away: the network is known from the last view
        da.start()
        assert "split" in names(da)
        assert ping(da, "left", right["IPAddress"], count=2).returncode == 0
    finally:
        lab.net.reconnect(ha)
    wait_for(lambda: info_state(da) == "joined", timeout=30, what="the cut host to rejoin")
    assert sorted(e.key for e in store.list("")[0] if not e.key.startswith("nodes/")) == keys_before
    assert ping(da, "left", "right").returncode == 0
    store.close()
    docker(da, "rm", "-f", "left")
    docker(db, "rm", "-f", "right")
    wait_for(lambda: docker(da, "network", "rm", "split", check=False).returncode == 0, what="split removed")
    for _, daemon in hosts:
        daemon.stop()


def info_state(daemon) -> str:
    return (info(daemon).get("ClusterStatus") or {}).get("State", "")


def test_options_labels_and_docker_py(cluster):
    import docker as docker_py

    (_, d1), (_, d2) = cluster
    one, two = (docker_py.DockerClient(base_url=d.host, timeout=60) for d in (d1, d2))
    ipam = docker_py.types.IPAMConfig(pool_configs=[docker_py.types.IPAMPool(
        subnet="10.238.0.0/24", gateway="10.238.0.254", iprange="10.238.0.128/28")])
    made = one.networks.create("tuned", driver="overlay", ipam=ipam, labels={"team": "blue"},
                               options={"com.docker.network.driver.mtu": "1400"})
    wait_for(lambda: "tuned" in names(d2), what="tuned on h2")
    seen = two.networks.list(filters={"scope": "global"})
    assert [n.name for n in seen] == ["tuned"]
    attrs = two.networks.get(made.id).attrs
    assert attrs["Labels"] == {"team": "blue"} and attrs["Scope"] == "global"
    assert attrs["IPAM"]["Config"][0] == {"Subnet": "10.238.0.0/24", "Gateway": "10.238.0.254",
                                         "IPRange": "10.238.0.128/28"}
    script = "cat /sys/class/net/eth0/mtu; ip -4 -o addr show eth0"
    output = two.containers.run("busybox", ["sh", "-c", script], network="tuned", remove=True).decode()
    mtu, address = output.splitlines()[0], output.split("inet ")[1].split("/")[0]
    assert mtu == "1400"  # the option wins over the underlay's MTU
    assert address.startswith("10.238.0.") and 128 <= int(address.rsplit(".", 1)[1]) < 144  # from --ip-range
    bad = docker(d1, "network", "create", "-d", "overlay", "-o", "color=red", "bad", check=False)
    assert bad.returncode != 0 and "unknown overlay network option 'color'" in bad.stderr
    assert "bad" not in names(d2)
    made.remove()
    one.close()
    two.close()


def test_one_store_member_killed_changes_nothing_for_overlay_networks(cluster, lab):
    (_, d1), (_, d2) = cluster
    lab.etcd.kill(1)
    try:
        docker(d1, "network", "create", "-d", "overlay", "--subnet", "10.239.0.0/24", "degraded")
        wait_for(lambda: "degraded" in names(d2), what="degraded on h2")
        docker(d2, "run", "-d", "--name", "far", "--network", "degraded", "busybox", "sleep", "300")
        reached = docker(d1, "run", "--rm", "--network", "degraded", "busybox", "ping", "-c", "1", "-W", "3",
                         "far", check=False)
        assert reached.returncode == 0, reached.stdout + reached.stderr
        docker(d2, "rm", "-f", "far")
        wait_for(lambda: docker(d1, "network", "rm", "degraded", check=False).returncode == 0,
                 what="degraded removed")
    finally:
        lab.etcd.restart(1)
