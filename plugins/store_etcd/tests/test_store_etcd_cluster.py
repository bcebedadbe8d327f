"""The etcd store on a three-member cluster: a member killed changes nothing for readers,
writers or watchers; a compacted revision and options from the daemon are handled."""

import json
import threading
import time
import urllib.request

import pytest
from dockyard.plugin import RevisionCompacted, StoreError
from dockyard.plugin.testing.etcd import DIRECT, EtcdCluster, etcd_binary
from dockyard_store_etcd.store import EtcdStore, parse_endpoint

pytestmark = pytest.mark.skipif(etcd_binary() is None, reason="etcd not installed (Debian etcd-server)")


@pytest.fixture
def cluster(tmp_path):
    with EtcdCluster(tmp_path / "etcd", members=3) as cluster:
        yield cluster


def test_a_killed_member_changes_nothing(cluster):
    store = EtcdStore(cluster.endpoints.split(","), prefix="failover")
    assert store.commit({"before": 0}, put={"before": "1"})
    _, revision = store.list("")
    watch = store.watch("", revision + 1)
    events = []
    reader = threading.Thread(target=lambda: events.extend(e for e in watch), daemon=True)
    reader.start()
    store.commit({}, put={"one": "1"})
    time.sleep(0.3)
    cluster.kill(0)  # the member every call went to so far, the watch's included
    assert cluster.running() == 2
    assert store.get("before").value == "1"
    assert store.commit({"after": 0}, put={"after": "2"})
    deadline = time.monotonic() + 15
    while len(events) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    watch.close()
    assert [(e.key, e.value) for e in events] == [("one", "1"), ("after", "2")]
    store.close()


def test_a_store_whose_members_all_died_says_which(cluster):
    store = EtcdStore(cluster.endpoints.split(","), prefix="gone")
    for index in range(3):
        cluster.kill(index)
    with pytest.raises(StoreError) as failure:
        store.get("x")
    for endpoint in cluster.endpoints.split(","):
        assert endpoint in str(failure.value)


def test_a_compacted_revision_is_reported(tmp_path):
    with EtcdCluster(tmp_path / "etcd") as cluster:
        store = EtcdStore([cluster.endpoints], prefix="compact")
        _, start = store.list("")
        for n in range(3):
            store.commit({}, put={"k": str(n)})
        _, now = store.list("")
        request = urllib.request.Request(f"{cluster.members[0].client_url}/v3/kv/compaction",
                                         data=json.dumps({"revision": str(now)}).encode(), method="POST")
        DIRECT.open(request, timeout=5).close()
        with pytest.raises(RevisionCompacted, match="list again"):
            for _ in store.watch("", start + 1):
                pass


def test_options_as_the_daemon_passes_them():
    store = EtcdStore.from_options({"endpoints": "10.0.0.1:2379, [fd00::1]:4001,etcd.example",
                                    "prefix": "/team/a/"})
    assert store.endpoints == ["10.0.0.1:2379", "[fd00::1]:4001", "etcd.example"]
    assert store.root == "/team/a/"
    assert parse_endpoint("[fd00::1]:4001") == ("fd00::1", 4001)
    assert parse_endpoint("etcd.example") == ("etcd.example", 2379)
    with pytest.raises(StoreError, match="not HOST"):
        parse_endpoint(":2379")
    with pytest.raises(StoreError, match="at least one endpoint"):
        EtcdStore.from_options({"endpoints": ""})
