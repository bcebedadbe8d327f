"""The cluster store conformance suite: the whole `ClusterStore` contract, against a real store.

A store package proves itself by naming its driver and saying where a running store is:

    from dockyard.plugin.testing.store import ClusterStoreSuite

    class TestEtcd(ClusterStoreSuite):
        driver_name = "etcd"

        @pytest.fixture(scope="class")
        @classmethod
        def store_endpoints(cls, tmp_path_factory):
            with EtcdCluster(tmp_path_factory.mktemp("etcd")) as cluster:
                yield cluster.endpoints

The driver is built as the daemon builds it, through the installed plugins (strict mode),
with a key prefix of its own per test, so tests never see each other's keys. After every
test the suite deletes what the test wrote and fails if a key is left under its prefix.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dockyard.daemon.pluginmanager import PluginManager
from dockyard.plugin import DriverContext
from dockyard.plugin.contracts.store import ClusterStore, StoreEvent, StoreUnavailable


def collect(watch, count: int, timeout: float = 10) -> list[StoreEvent]:
    """The first `count` events of `watch`, read on a thread so a silent watch fails the
    test instead of hanging it."""
    events: list[StoreEvent] = []
    done = threading.Event()

    def read():
        for event in watch:
            events.append(event)
            if len(events) >= count:
                break
        done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(timeout)
    watch.close()
    return events


class ClusterStoreSuite:
    """Subclass with `driver_name` set and a `store_endpoints` fixture."""

    driver_name: str = ""
    #: the shortest lease the store grants, in seconds (etcd's minimum TTL is a few seconds)
    lease_ttl: int = 2

    @pytest.fixture(scope="class")
    @classmethod
    def store_endpoints(cls) -> str:
        pytest.fail("override the store_endpoints fixture: it starts a store and returns its endpoints")

    @pytest.fixture
    def make_store(self, store_endpoints: str, tmp_path: Path) -> Iterator[Callable[..., ClusterStore]]:
        assert self.driver_name, "set driver_name on your ClusterStoreSuite subclass"
        manager = PluginManager(strict=True).load_all()
        spec = manager.find("store", self.driver_name)
        reason = manager.why_unsupported(spec)
        if reason:
            pytest.skip(f"store driver {self.driver_name}: {reason}")
        prefix = f"dyt-{secrets.token_hex(4)}"
        made: list[ClusterStore] = []

        def make(endpoints: str = store_endpoints, prefix: str = prefix) -> ClusterStore:
            (tmp_path / "home").mkdir(exist_ok=True)
            context = DriverContext(kind="store", name=self.driver_name, home=tmp_path / "home",
                                    exec_root=tmp_path, options={"endpoints": endpoints, "prefix": prefix})
            store = spec.factory(context)
            made.append(store)
            return store

        yield make
        cleaner = make()
        entries, _ = cleaner.list("")
        cleaner.commit({}, delete=[e.key for e in entries])
        left, _ = cleaner.list("")
        for store in made:
            store.close()
        assert left == [], f"keys left under the test's prefix: {[e.key for e in left]}"

    # -- reads and compare-and-swap ----------------------------------------------------

    def test_a_missing_key_reads_as_none(self, make_store):
        assert make_store().get("nothing/here") is None

    def test_create_if_absent_succeeds_once(self, make_store):
        store = make_store()
        assert store.commit({"a": 0}, put={"a": "first"}) is True
        assert store.commit({"a": 0}, put={"a": "second"}) is False
        entry = store.get("a")
        assert entry.value == "first" and entry.revision > 0 and entry.key == "a"

    def test_update_compares_the_revision(self, make_store):
        store = make_store()
        store.commit({"k": 0}, put={"k": "v1"})
        first = store.get("k")
        assert store.commit({"k": first.revision}, put={"k": "v2"}) is True
        assert store.commit({"k": first.revision}, put={"k": "stale"}) is False
        second = store.get("k")
        assert second.value == "v2" and second.revision > first.revision

    def test_a_failed_comparison_writes_nothing(self, make_store):
        store = make_store()
        store.commit({"held": 0}, put={"held": "x"})
        assert store.commit({"new": 0, "held": 0}, put={"new": "y", "other": "z"}) is False
        assert store.get("new") is None and store.get("other") is None

    def test_puts_and_deletes_apply_together(self, make_store):
        store = make_store()
        store.commit({}, put={"old": "1"})
        old = store.get("old")
        assert store.commit({"old": old.revision}, put={"new": "2"}, delete=["old"]) is True
        assert store.get("old") is None and store.get("new").value == "2"

    def test_values_keep_any_text(self, make_store):
        store = make_store()
        text = '{"name": "réseau ☃", "lines": "a\\nb"}\n\x01'
        store.commit({}, put={"text": text})
        assert store.get("text").value == text

    def test_list_is_a_sorted_prefix_and_says_its_revision(self, make_store):
        store = make_store()
        store.commit({}, put={"net/b": "2", "net/a": "1", "network": "x", "ne": "y"})
        entries, revision = store.list("net/")
        assert [(e.key, e.value) for e in entries] == [("net/a", "1"), ("net/b", "2")]
        assert revision >= max(e.revision for e in entries)
        assert store.list("none/") == ([], store.list("none/")[1])

    def test_prefixes_isolate_stores(self, make_store):
        one, two = make_store(), make_store(prefix=f"dyt-{secrets.token_hex(4)}")
        one.commit({}, put={"shared-name": "one"})
        assert two.get("shared-name") is None and two.list("")[0] == []

    def test_racing_creators_have_one_winner(self, make_store):
        stores = [make_store() for _ in range(4)]
        with ThreadPoolExecutor(8) as pool:
            wins = list(pool.map(lambda i: stores[i % 4].commit({"leader": 0}, put={"leader": str(i)}),
                                 range(16)))
        assert wins.count(True) == 1

    def test_racing_allocators_never_share_an_address(self, make_store):
        """Cluster-wide IPAM in miniature: each worker takes the first free address of a
        pool by creating its key; 3 workers x 10 addresses from a pool of 40."""
        stores = [make_store() for _ in range(3)]

        def allocate(worker: int) -> list[int]:
            store, mine = stores[worker], []
            while len(mine) < 10:
                taken = {int(e.key.rsplit("/", 1)[1]) for e in store.list("pool/")[0]}
                free = next(a for a in range(40) if a not in taken)
                if store.commit({f"pool/{free}": 0}, put={f"pool/{free}": str(worker)}):
                    mine.append(free)
            return mine

        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(allocate, range(3)))
        every = [address for result in results for address in result]
        assert len(every) == 30 and len(set(every)) == 30
        owners = {e.key: e.value for e in stores[0].list("pool/")[0]}
        for worker, result in enumerate(results):
            assert all(owners[f"pool/{a}"] == str(worker) for a in result)

    # -- leases ------------------------------------------------------------------------

    def test_keys_on_a_lease_live_while_it_is_renewed(self, make_store):
        store = make_store()
        lease = store.grant(self.lease_ttl)
        assert store.commit({}, put={"node/me": "up"}, lease=lease)
        assert store.get("node/me").lease == lease
        deadline = time.monotonic() + self.lease_ttl * 2
        while time.monotonic() < deadline:
            assert store.keep_alive(lease) is True
            time.sleep(self.lease_ttl / 4)
        assert store.get("node/me").value == "up"
        store.revoke(lease)

    def test_keys_go_when_their_lease_expires(self, make_store):
        store = make_store()
        lease = store.grant(self.lease_ttl)
        store.commit({}, put={"node/gone": "up", "node/also": "up"}, lease=lease)
        store.commit({}, put={"node/kept": "no lease"})
        deadline = time.monotonic() + self.lease_ttl + 10
        while store.get("node/gone") is not None and time.monotonic() < deadline:
            time.sleep(0.25)
        assert store.get("node/gone") is None and store.get("node/also") is None
        assert store.get("node/kept").value == "no lease"
        assert store.keep_alive(lease) is False

    def test_revoking_deletes_at_once_and_twice_is_fine(self, make_store):
        store = make_store()
        lease = store.grant(60)
        store.commit({}, put={"node/x": "1"}, lease=lease)
        store.revoke(lease)
        assert store.get("node/x") is None
        store.revoke(lease)
        assert store.keep_alive(lease) is False

    # -- watch -------------------------------------------------------------------------

    def test_a_watch_follows_puts_and_deletes_in_order(self, make_store):
        store = make_store()
        store.commit({}, put={"w/before": "0"})
        _, revision = store.list("w/")
        watch = store.watch("w/", revision + 1)
        store.commit({}, put={"w/a": "1"})
        store.commit({}, put={"w/a": "2", "elsewhere": "not seen"})
        store.commit({}, delete=["w/a"])
        events = collect(watch, 3)
        assert [(e.kind, e.key, e.value) for e in events] == [
            ("put", "w/a", "1"), ("put", "w/a", "2"), ("delete", "w/a", "")]
        assert [e.revision for e in events] == sorted(e.revision for e in events)
        assert events[0].revision > revision

    def test_a_watch_from_an_old_revision_replays_what_happened_since(self, make_store):
        store = make_store()
        _, start = store.list("r/")
        store.commit({}, put={"r/1": "a"})
        store.commit({}, put={"r/2": "b"})
        events = collect(store.watch("r/", start + 1), 2)
        assert [(e.key, e.value) for e in events] == [("r/1", "a"), ("r/2", "b")]

    def test_a_lease_expiry_shows_as_deletes(self, make_store):
        store = make_store()
        lease = store.grant(self.lease_ttl)
        store.commit({}, put={"e/node": "up"}, lease=lease)
        _, revision = store.list("e/")
        events = collect(store.watch("e/", revision + 1), 1, timeout=self.lease_ttl + 15)
        assert [(e.kind, e.key) for e in events] == [("delete", "e/node")]

    def test_close_ends_a_blocked_watch(self, make_store):
        store = make_store()
        _, revision = store.list("quiet/")
        watch = store.watch("quiet/", revision + 1)
        ended = threading.Event()

        def read():
            for _ in watch:
                pass
            ended.set()

        threading.Thread(target=read, daemon=True).start()
        time.sleep(0.5)
        watch.close()
        assert ended.wait(5), "close() did not end a watch blocked waiting for events"

    # -- failures ----------------------------------------------------------------------

    def test_an_unreachable_store_says_so_and_names_it(self, make_store):
        with socket_closed_port() as port:
            store = make_store(endpoints=f"127.0.0.1:{port}")
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}"):
                store.get("anything")
            with pytest.raises(StoreUnavailable):
                store.commit({"a": 0}, put={"a": "1"})
            assert time.monotonic() - started < 10


class socket_closed_port:
    """A loopback port nothing listens on, for the duration of a `with`."""

    def __enter__(self) -> int:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        return self._sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self._sock.close()
