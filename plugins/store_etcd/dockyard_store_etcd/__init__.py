"""dockyard-store-etcd: the `etcd` cluster store, for `--cluster-store etcd://H1:2379,H2:2379`.

It speaks etcd v3 (3.4 and later) through etcd's JSON gateway with etcd3gw, a small
client over requests: no gRPC stack to install. The work lives in store.py (reads,
transactions, leases, failing over between endpoints) and watch.py (following a prefix
from a revision, resumed on another endpoint when one goes).
"""

from dockyard.plugin import DriverContext, DriverSpec, hookimpl


def _make(context: DriverContext):
    from dockyard_store_etcd.store import EtcdStore

    return EtcdStore.from_options(context.options)


@hookimpl
def dockyard_store_drivers():
    yield DriverSpec(kind="store", name="etcd", factory=_make, priority=10, probe=lambda: None,
                     description="etcd v3 cluster store (shared state of a multi-host cluster)")
