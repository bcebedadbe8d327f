"""Owns what this driver instance remembers under its DriverContext.home: one JSON record per
network it created (networks/<id>.json) and per endpoint it joined (endpoints/<id>.json).

The records are the proof of ownership `restore` relies on: two daemons may share a host,
and a bridge, table or veth of a network not recorded here is another daemon's, never
touched. An endpoint is recorded before its kernel objects are made, so a crash mid-join
leaves a record that lets the next restore find what was half made. Writes replace a
file by rename (no fsync: after a power loss the kernel objects are gone too).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from dockyard.plugin import NetworkSpec, PortBinding


@dataclass(frozen=True)
class EndpointRecord:
    endpoint_id: str
    network_id: str
    veth: str
    address: IPv4Interface | None = None
    ports: tuple[PortBinding, ...] = field(default=())


def network_to_json(spec: NetworkSpec) -> dict:
    return {"network_id": spec.network_id, "name": spec.name, "subnets": [str(s) for s in spec.subnets],
            "gateway": str(spec.gateway) if spec.gateway else None, "internal": spec.internal,
            "options": dict(spec.options)}


def network_from_json(data: dict) -> NetworkSpec:
    return NetworkSpec(network_id=data["network_id"], name=data.get("name", ""),
                       subnets=tuple(IPv4Network(s) for s in data.get("subnets", ())),
                       gateway=IPv4Interface(data["gateway"]) if data.get("gateway") else None,
                       internal=bool(data.get("internal")), options=dict(data.get("options") or {}))


def _endpoint_to_json(record: EndpointRecord) -> dict:
    return {"endpoint_id": record.endpoint_id, "network_id": record.network_id, "veth": record.veth,
            "address": str(record.address) if record.address else None,
            "ports": [[b.protocol, b.container_port, b.host_port, str(b.host_ip) if b.host_ip else None]
                      for b in record.ports]}


def _endpoint_from_json(data: dict) -> EndpointRecord:
    return EndpointRecord(
        endpoint_id=data["endpoint_id"], network_id=data["network_id"], veth=data["veth"],
        address=IPv4Interface(data["address"]) if data.get("address") else None,
        ports=tuple(PortBinding(protocol, container_port, host_port,
                                IPv4Address(host_ip) if host_ip else None)
                    for protocol, container_port, host_port, host_ip in data.get("ports") or ()))


class StateStore:
    """The records, mirrored in memory (read once at start, written through)."""

    def __init__(self, home: Path, logger) -> None:
        self._networks_dir = home / "networks"
        self._endpoints_dir = home / "endpoints"
        self._networks_dir.mkdir(parents=True, exist_ok=True)
        self._endpoints_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._networks: dict[str, NetworkSpec] = {}
        self._endpoints: dict[str, EndpointRecord] = {}
        for data in self._read_all(self._networks_dir, logger):
            spec = network_from_json(data)
            self._networks[spec.network_id] = spec
        for data in self._read_all(self._endpoints_dir, logger):
            record = _endpoint_from_json(data)
            self._endpoints[record.endpoint_id] = record

    @staticmethod
    def _read_all(directory: Path, logger) -> Iterator[dict]:
        for path in sorted(directory.glob("*.json")):
            try:
                yield json.loads(path.read_text())
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.warning("bridge driver: ignoring unreadable record %s: %s", path, exc)

    @staticmethod
    def _write(path: Path, data: dict) -> None:
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        temporary.write_text(json.dumps(data))
        os.replace(temporary, path)

    # -- networks -------------------------------------------------------------------------

    def save_network(self, spec: NetworkSpec) -> None:
        with self._lock:
            self._write(self._networks_dir / f"{spec.network_id}.json", network_to_json(spec))
            self._networks[spec.network_id] = spec

    def network(self, network_id: str) -> NetworkSpec | None:
        with self._lock:
            return self._networks.get(network_id)

    def networks(self) -> dict[str, NetworkSpec]:
        with self._lock:
            return dict(self._networks)

    def forget_network(self, network_id: str) -> None:
        with self._lock:
            (self._networks_dir / f"{network_id}.json").unlink(missing_ok=True)
            self._networks.pop(network_id, None)

    # -- endpoints ------------------------------------------------------------------------

    def save_endpoint(self, record: EndpointRecord) -> None:
        with self._lock:
            self._write(self._endpoints_dir / f"{record.endpoint_id}.json", _endpoint_to_json(record))
            self._endpoints[record.endpoint_id] = record

    def endpoint(self, endpoint_id: str) -> EndpointRecord | None:
        with self._lock:
            return self._endpoints.get(endpoint_id)

    def endpoints(self, network_id: str | None = None) -> list[EndpointRecord]:
        with self._lock:
            return [r for r in self._endpoints.values() if network_id is None or r.network_id == network_id]

    def forget_endpoint(self, endpoint_id: str) -> None:
        with self._lock:
            (self._endpoints_dir / f"{endpoint_id}.json").unlink(missing_ok=True)
            self._endpoints.pop(endpoint_id, None)
