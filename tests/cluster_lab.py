"""The multi-host lab the cluster and overlay tests share: an underlay, a three-member
etcd on hosts of its own, and daemons started on further hosts with a cluster store."""

from __future__ import annotations

import secrets
import subprocess
import time

import docker
import pytest
from dockyard.plugin.testing.etcd import EtcdCluster, etcd_binary
from dockyard.plugin.testing.hosts import HostNetwork

try:
    import dockyard_store_etcd
except ImportError:
    dockyard_store_etcd = None

needs_etcd = pytest.mark.skipif(etcd_binary() is None or dockyard_store_etcd is None,
                                reason="needs etcd (Debian etcd-server) and dockyard-store-etcd")

TTL = 3  # seconds a dead daemon's lease outlives it


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The underlay, three etcd members each on a host of its own, and a store prefix."""
    if etcd_binary() is None or dockyard_store_etcd is None:
        pytest.skip("needs etcd (Debian etcd-server) and dockyard-store-etcd")
    with HostNetwork() as net:
        members = [net.add_host("e") for _ in range(3)]
        cluster = EtcdCluster(tmp_path_factory.mktemp("etcd"), addresses=[str(m.address) for m in members],
                              netns=[m.name for m in members]).start()
        try:
            yield Lab(net, cluster, tmp_path_factory)
        finally:
            cluster.stop()
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert net.prefix not in namespaces, f"test hosts left behind: {namespaces}"
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert net.root_link not in links, "the test process's underlay link was left behind"


class Lab:
    def __init__(self, net: HostNetwork, etcd: EtcdCluster, tmp_path_factory) -> None:
        self.net, self.etcd, self.tmp = net, etcd, tmp_path_factory
        self.prefix = f"dyt-{secrets.token_hex(3)}"

    @property
    def store_url(self) -> str:
        return f"etcd://{self.etcd.endpoints}/{self.prefix}"

    def daemon(self, host=None, *extra: str, store_url: str | None = None):
        host = host or self.net.add_host()
        daemon = host.daemon(self.tmp.mktemp(host.name), "--cluster-store", store_url or self.store_url,
                             "--cluster-advertise", "eth0", "--cluster-store-opt", f"discovery.ttl={TTL}",
                             "--cluster-store-opt", "discovery.heartbeat=0.5", *extra)
        return host, daemon.start()

    def store(self):
        from dockyard_store_etcd.store import EtcdStore

        return EtcdStore(self.etcd.endpoints.split(","), prefix=self.prefix)


def info(daemon) -> dict:
    client = docker.DockerClient(base_url=daemon.host, timeout=30)
    try:
        return client.info()
    finally:
        client.close()


def peers(daemon) -> set[str]:
    status = info(daemon).get("ClusterStatus") or {}
    return {peer["Address"] for peer in status.get("Peers") or []}


def wait_for(condition, timeout: float = 15, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


