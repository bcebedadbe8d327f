"""`EtcdStore`: the cluster store contract over etcd v3's JSON gateway.

One etcd3gw client per endpoint; a call goes to the endpoint that answered last and
moves on to the next when it cannot connect. A read can always be sent again; a write
is sent again only when the failed attempt never reached a member (the connection was
refused), since a timed-out transaction may have been applied: retried elsewhere, its
comparison would fail and a success would look like a lost race. Such a write raises
StoreUnavailable saying its outcome is unknown, and callers that must know read back.

Keys are stored under `/<prefix>/`; values are UTF-8 (the gateway carries base64).
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from dockyard.plugin import StoreEntry, StoreError, StoreUnavailable
from etcd3gw.client import Etcd3Client
from etcd3gw.exceptions import ConnectionFailedError, ConnectionTimeoutError, Etcd3Exception

log = logging.getLogger(__name__)

DEFAULT_PORT = 2379
DEFAULT_PREFIX = "dockyard"
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0
# What requests says when the connection was never made: nothing reached a member.
_NEVER_SENT = ("Connection refused", "Failed to establish a new connection", "No route to host",
               "Name or service not known", "ConnectTimeout")


def encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def decode(data: str | None) -> str:
    return base64.b64decode(data or "").decode()


def range_end(prefix: str) -> str:
    """The first key after every key starting with `prefix` (etcd's prefix range)."""
    raw = bytearray(prefix.encode())
    while raw and raw[-1] == 0xFF:
        raw.pop()
    if not raw:
        return encode("\0")
    raw[-1] += 1
    return base64.b64encode(bytes(raw)).decode()


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    parts = urlsplit(f"//{endpoint.strip()}")
    if not parts.hostname:
        raise StoreError(f"cluster store endpoint {endpoint!r} is not HOST[:PORT]")
    try:
        return parts.hostname, parts.port or DEFAULT_PORT
    except ValueError:
        raise StoreError(f"cluster store endpoint {endpoint!r} has an invalid port") from None


class EtcdStore:
    def __init__(self, endpoints: list[str], prefix: str = DEFAULT_PREFIX, ca_file: str | None = None,
                 cert_file: str | None = None, key_file: str | None = None,
                 timeout: float = READ_TIMEOUT) -> None:
        if not endpoints:
            raise StoreError("the etcd cluster store needs at least one endpoint, such as 127.0.0.1:2379")
        self.endpoints = [e.strip() for e in endpoints]
        self.root = "/" + prefix.strip("/") + "/"
        protocol = "https" if ca_file or cert_file else "http"
        self._clients = []
        for endpoint in self.endpoints:
            host, port = parse_endpoint(endpoint)
            self._clients.append(Etcd3Client(host=host, port=port, protocol=protocol, ca_cert=ca_file,
                                             cert_key=key_file, cert_cert=cert_file,
                                             timeout=(CONNECT_TIMEOUT, timeout), api_path="/v3/"))
        self._current = 0
        self._lock = threading.Lock()
        self._watches: set = set()

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> EtcdStore:
        """The options the engine passes a store driver (see the store hookspec)."""
        endpoints = [e for e in (options.get("endpoints") or "").split(",") if e.strip()]
        return cls(endpoints, options.get("prefix") or DEFAULT_PREFIX, options.get("kv.cacertfile"),
                   options.get("kv.certfile"), options.get("kv.keyfile"))

    # -- transport -------------------------------------------------------------------

    def client_order(self) -> list[tuple[str, Etcd3Client]]:
        """Endpoints to try, the one that answered last first."""
        start = self._current
        count = len(self._clients)
        return [(self.endpoints[(start + i) % count], self._clients[(start + i) % count])
                for i in range(count)]

    def answered(self, client: Etcd3Client) -> None:
        self._current = self._clients.index(client)

    def post(self, path: str, body: dict, write: bool = False) -> dict:
        failures = []
        for endpoint, client in self.client_order():
            try:
                result = client.post(client.get_url(path), json=body)
            except (ConnectionFailedError, ConnectionTimeoutError) as exc:
                reason = str(exc.detail_text or exc)
                failures.append(f"{endpoint}: {_short(reason)}")
                if write and not any(marker in reason for marker in _NEVER_SENT):
                    raise StoreUnavailable(
                        f"cluster store etcd at {endpoint} did not answer a write in time, so its "
                        f"outcome is unknown: {_short(reason)}") from None
                continue
            except Etcd3Exception as exc:
                raise StoreError(f"cluster store etcd at {endpoint} refused the request: "
                                 f"{_short(str(exc.detail_text or exc))}") from None
            self.answered(client)
            return result
        raise StoreUnavailable(f"cluster store unreachable: no etcd endpoint answered "
                               f"({'; '.join(failures)})")

    # -- the contract ----------------------------------------------------------------

    def get(self, key: str) -> StoreEntry | None:
        result = self.post("/kv/range", {"key": encode(self.root + key)})
        kvs = result.get("kvs") or []
        return self._entry(kvs[0]) if kvs else None

    def list(self, prefix: str) -> tuple[list[StoreEntry], int]:
        full = self.root + prefix
        result = self.post("/kv/range", {"key": encode(full), "range_end": range_end(full),
                                         "sort_order": "ASCEND", "sort_target": "KEY"})
        revision = int((result.get("header") or {}).get("revision") or 0)
        return [self._entry(kv) for kv in result.get("kvs") or []], revision

    def commit(self, expect: Mapping[str, int], put: Mapping[str, str] = {},
               delete: Iterable[str] = (), lease: int = 0) -> bool:
        compare = []
        for key, revision in expect.items():
            if revision:
                compare.append({"key": encode(self.root + key), "target": "MOD", "result": "EQUAL",
                                "mod_revision": str(revision)})
            else:
                compare.append({"key": encode(self.root + key), "target": "VERSION", "result": "EQUAL",
                                "version": "0"})
        success = []
        for key, value in put.items():
            request = {"key": encode(self.root + key), "value": encode(value)}
            if lease:
                request["lease"] = str(lease)
            success.append({"request_put": request})
        for key in delete:
            success.append({"request_delete_range": {"key": encode(self.root + key)}})
        result = self.post("/kv/txn", {"compare": compare, "success": success, "failure": []}, write=True)
        return bool(result.get("succeeded"))

    def grant(self, ttl: int) -> int:
        result = self.post("/lease/grant", {"TTL": int(ttl)}, write=True)
        if result.get("error"):
            raise StoreError(f"cluster store etcd refused a lease: {result['error']}")
        return int(result["ID"])

    def keep_alive(self, lease: int) -> bool:
        result = self.post("/lease/keepalive", {"ID": str(lease)})
        return int((result.get("result") or {}).get("TTL") or 0) > 0

    def revoke(self, lease: int) -> None:
        try:
            self.post("/lease/revoke", {"ID": str(lease)}, write=True)
        except StoreError as exc:
            if "lease not found" not in str(exc):
                raise

    def watch(self, prefix: str, start_revision: int):
        from dockyard_store_etcd.watch import EtcdWatch

        watch = EtcdWatch(self, self.root + prefix, start_revision)
        with self._lock:
            self._watches.add(watch)
        return watch

    def forget_watch(self, watch) -> None:
        with self._lock:
            self._watches.discard(watch)

    def close(self) -> None:
        with self._lock:
            watches = list(self._watches)
        for watch in watches:
            watch.close()
        for client in self._clients:
            client.session.close()

    def _entry(self, kv: dict) -> StoreEntry:
        return StoreEntry(key=decode(kv.get("key"))[len(self.root):], value=decode(kv.get("value")),
                          revision=int(kv.get("mod_revision") or 0), lease=int(kv.get("lease") or 0))


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
