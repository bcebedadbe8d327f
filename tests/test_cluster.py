"""Cluster membership across test hosts: daemons in network namespaces of their own, one
three-member etcd on the same underlay, and the real docker CLI and docker-py on each.

Every daemon registers under a lease; peers come and go with their leases; a store that
is down at start-up neither stops a daemon nor keeps it out once the store is back.
"""

from __future__ import annotations

import subprocess
import time

import docker
import pytest
from cluster_lab import TTL, dockyard_store_etcd, info, needs_etcd, peers, wait_for
from conftest import dockyard_cli, run_daemon_expecting_failure
from dockyard.plugin.testing.etcd import EtcdCluster

pytestmark = [pytest.mark.root, pytest.mark.compat]

needs_store_plugin = pytest.mark.skipif(dockyard_store_etcd is None, reason="needs dockyard-store-etcd")


@needs_etcd
def test_daemons_on_two_hosts_see_each_other(lab):
    h1, d1 = lab.daemon()
    h2, d2 = lab.daemon()
    both = {str(h1.address), str(h2.address)}
    wait_for(lambda: both <= peers(d1) and both <= peers(d2), what="both hosts in both daemons' peers")
    shown = info(d1)
    assert shown["ClusterStore"] == lab.store_url
    assert shown["ClusterAdvertise"] == str(h1.address)  # `eth0` resolved inside the host
    assert shown["ClusterStatus"]["State"] == "joined" and not shown["ClusterStatus"]["Error"]
    own = [p for p in shown["ClusterStatus"]["Peers"] if p["ID"] == shown["ClusterStatus"]["NodeID"]]
    assert [p["Address"] for p in own] == [str(h1.address)]
    assert subprocess.run(["docker", "-H", d1.host, "info"], capture_output=True, timeout=60).returncode == 0
    text = dockyard_cli("info", host=d2.host).stdout
    assert f"Cluster Store: {lab.store_url}" in text and "State: joined" in text
    assert f"{h2.address}  (this host)" in text
    for daemon in (d1, d2):
        daemon.stop()


@needs_etcd
def test_a_host_joining_later_is_seen_by_the_others(lab):
    _, d1 = lab.daemon()
    wait_for(lambda: info(d1)["ClusterStatus"]["State"] == "joined", what="the first daemon to join")
    h3, d3 = lab.daemon()
    wait_for(lambda: str(h3.address) in peers(d1), what="the late host in the first daemon's peers")
    d1.stop()
    d3.stop()


@needs_etcd
def test_a_killed_daemon_keeps_its_lease_if_it_returns_and_is_forgotten_if_not(lab):
    h1, d1 = lab.daemon()
    h2, d2 = lab.daemon()
    wait_for(lambda: str(h2.address) in peers(d1), what="h2 in h1's peers")
    node_id = info(d2)["ClusterStatus"]["NodeID"]
    store = lab.store()
    lease = store.get(f"nodes/{node_id}").lease
    d2.kill()  # SIGKILL: no goodbye
    assert str(h2.address) in peers(d1)  # its lease still runs
    d2.start()
    wait_for(lambda: info(d2)["ClusterStatus"]["State"] == "joined", what="h2 back")
    entry = store.get(f"nodes/{node_id}")
    assert entry is not None and entry.lease == lease  # the same lease, renewed: never absent
    d2.kill()
    started = time.monotonic()
    wait_for(lambda: str(h2.address) not in peers(d1), timeout=TTL + 10, what="h2 forgotten")
    assert time.monotonic() - started >= TTL - 1.5  # not before its lease could have expired
    assert store.get(f"nodes/{node_id}") is None
    d1.stop()
    store.close()


@needs_etcd
def test_one_etcd_member_killed_changes_nothing(lab):
    h1, d1 = lab.daemon()
    wait_for(lambda: info(d1)["ClusterStatus"]["State"] == "joined", what="h1 joined")
    lab.etcd.kill(0)
    try:
        h2, d2 = lab.daemon()
        wait_for(lambda: str(h2.address) in peers(d1), what="a host joining with one member down")
        time.sleep(TTL + 1)  # longer than a lease: renewals went to the living members
        assert {str(h1.address), str(h2.address)} <= peers(d2)
        assert info(d1)["ClusterStatus"]["State"] == "joined"
        d2.stop()
    finally:
        lab.etcd.restart(0)
    d1.stop()


@needs_etcd
def test_a_store_that_is_down_neither_stops_the_daemon_nor_keeps_it_out(lab, tmp_path):
    host = lab.net.add_host("s")  # where the store will be: nothing listens there yet
    url = f"etcd://{host.address}:2379/{lab.prefix}-late"
    _, daemon = lab.daemon(store_url=url)
    wait_for(lambda: info(daemon)["ClusterStatus"]["State"] == "unreachable",
             what="the daemon to find the store unreachable")
    shown = info(daemon)
    assert str(host.address) in shown["ClusterStatus"]["Error"]
    warnings = subprocess.run(["docker", "-H", daemon.host, "info"], capture_output=True, text=True,
                              timeout=60).stderr
    assert f"cluster store {url} is unreachable" in warnings and "local networks work" in warnings
    network = docker.DockerClient(base_url=daemon.host).networks.create("local-still-works")
    network.remove()
    with EtcdCluster(tmp_path / "late", addresses=[str(host.address)], netns=[host.name]):
        wait_for(lambda: info(daemon)["ClusterStatus"]["State"] == "joined",
                 what="joining once the store is up")
    daemon.stop()


@pytest.mark.parametrize("args, message", [
    (["--cluster-store", "etcd://"], "names no endpoint"),
    (["--cluster-store", "127.0.0.1:2379"], "must look like etcd://HOST:PORT"),
    (["--cluster-store", "etcd://127.0.0.1:2379"], "needs --cluster-advertise"),
    (["--cluster-advertise", "127.0.0.1"], "needs --cluster-store"),
    (["--cluster-store", "consul://127.0.0.1:8500", "--cluster-advertise", "127.0.0.1"],
     "store driver 'consul' not found"),
    pytest.param(["--cluster-store", "etcd://127.0.0.1:2379", "--cluster-advertise", "nosuchif0"],
                 "neither an IPv4 address nor an interface", marks=needs_store_plugin),
    pytest.param(["--cluster-store", "etcd://127.0.0.1:2379", "--cluster-advertise", "127.0.0.1",
                  "--cluster-store-opt", "discovery.ttl=soon"],
                 "discovery.ttl='soon' must be a number of seconds", marks=needs_store_plugin),
])
def test_bad_cluster_settings_stop_the_daemon_with_a_reason(make_daemon, args, message):
    printed = run_daemon_expecting_failure(make_daemon("bad", *args))
    assert message in printed, printed


@needs_etcd
def test_nothing_is_left_in_the_store_or_the_kernel(lab):
    """Runs last in this module: every daemon above has stopped, so once their leases
    expired nothing of theirs may remain under the prefix."""
    store = lab.store()
    wait_for(lambda: store.list("")[0] == [], timeout=TTL + 10, what="the store prefix to empty")
    store.close()
