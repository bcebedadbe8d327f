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
from cluster_lab import TTL, needs_etcd, peers, wait_for

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

    docker(d2, "run", "-d", "--name", "web", "--network", "ov1", "busybox", "sleep", "300")
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

    mtu = docker(d2, "exec", "web", "cat", "/sys/class/net/eth0/mtu").stdout.strip()
    assert mtu == "1450"  # the underlay's 1500 minus the VXLAN header

    peers = json.loads(docker(d1, "network", "inspect", "ov1").stdout)[0]["Peers"]
    assert [(p["IP"], p["Endpoints"]) for p in peers] == [(str(h2.address), 1)]

    refused = docker(d1, "network", "rm", "ov1", check=False)
    assert refused.returncode != 0 and "active endpoints" in refused.stderr
    assert str(h2.address) in refused.stderr  # names the host that still has one
    docker(d2, "rm", "-f", "web")
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
