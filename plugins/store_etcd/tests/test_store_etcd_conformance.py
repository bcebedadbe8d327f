"""The etcd store passes the cluster store suite against a real single-member etcd."""

import pytest
from dockyard.plugin.testing.etcd import EtcdCluster, etcd_binary
from dockyard.plugin.testing.store import ClusterStoreSuite

pytestmark = pytest.mark.skipif(etcd_binary() is None, reason="etcd not installed (Debian etcd-server)")


class TestEtcd(ClusterStoreSuite):
    driver_name = "etcd"

    @pytest.fixture(scope="class")
    @classmethod
    def store_endpoints(cls, tmp_path_factory):
        with EtcdCluster(tmp_path_factory.mktemp("etcd")) as cluster:
            yield cluster.endpoints
