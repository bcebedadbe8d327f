"""Published ports: Docker's `-p`/`-P` requests turned into host ports that are really free.

A host port is held by a bound (never listening) socket for as long as the container
publishes it, so neither another container nor a host process can take it meanwhile;
the traffic itself never reaches that socket, the driver's DNAT rules take it first.
Docker's messages are kept: "port is already allocated" for a port of ours, "address
already in use" for one a host process holds.
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address

from dockyard.errors import Conflict, EngineError, InvalidParameter
from dockyard.plugin.contracts.network import PortBinding


@dataclass(frozen=True)
class PortRequest:
    protocol: str
    container_port: int
    host_ip: str  # "" for every address
    host_ports: tuple[int, int] | None  # an inclusive range; None for "any free port"


def ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as source:
            low, high = (int(value) for value in source.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _port_key(key: str) -> tuple[int, str]:
    port, _, protocol = key.partition("/")
    protocol = protocol or "tcp"
    if protocol not in ("tcp", "udp", "sctp"):
        raise InvalidParameter(f"invalid proto: {protocol}")
    try:
        number = int(port)
    except ValueError:
        raise InvalidParameter(f"invalid containerPort: {port}") from None
    if not 0 < number < 65536:
        raise InvalidParameter(f"invalid containerPort: {port}")
    return number, protocol


def _host_range(text: str) -> tuple[int, int] | None:
    if not text:
        return None
    low, _, high = text.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        raise InvalidParameter(f"invalid hostPort: {text}") from None
    if not (0 <= first <= last < 65536):
        raise InvalidParameter(f"invalid hostPort: {text}")
    return None if first == 0 else (first, last)


def requests_from(host_config: Mapping, exposed: Mapping | None) -> list[PortRequest]:
    """HostConfig.PortBindings, plus every exposed port with a random host port when
    PublishAllPorts (-P) is set."""
    found: list[PortRequest] = []
    bindings = host_config.get("PortBindings") or {}
    for key, entries in bindings.items():
        container_port, protocol = _port_key(key)
        for entry in entries or [{}]:
            host_ip = (entry or {}).get("HostIp") or ""
            if host_ip:
                try:
                    IPv4Address(host_ip)
                except ValueError:
                    raise InvalidParameter(f"invalid host IP {host_ip!r} for port {key}: only IPv4 "
                                           "addresses can be published") from None
            found.append(PortRequest(protocol, container_port, host_ip,
                                     _host_range(str((entry or {}).get("HostPort") or ""))))
    if host_config.get("PublishAllPorts"):
        for key in exposed or {}:
            container_port, protocol = _port_key(key)
            if not any(r.container_port == container_port and r.protocol == protocol for r in found):
                found.append(PortRequest(protocol, container_port, "", None))
    return found


class PortAllocator:
    """Every host port the daemon publishes, with the socket that holds it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str, int], tuple[str, socket.socket]] = {}

    def allocate(self, owner: str, requests: Sequence[PortRequest],
                 describe_owner: str = "") -> list[PortBinding]:
        """Host ports for all of `requests`, or none at all (an error releases the part done)."""
        bindings: list[PortBinding] = []
        try:
            for request in requests:
                bindings.append(self._allocate_one(owner, request, describe_owner))
        except BaseException:
            self.release(owner)
            raise
        return bindings

    def _allocate_one(self, owner: str, request: PortRequest, describe_owner: str) -> PortBinding:
        if request.host_ports is None:
            low, high = ephemeral_range()
            candidates = list(range(low, high + 1))
            random.shuffle(candidates)
            candidates = candidates[:200]
        else:
            candidates = list(range(request.host_ports[0], request.host_ports[1] + 1))
        last_error: EngineError | None = None
        for port in candidates:
            try:
                self._hold(owner, request.protocol, request.host_ip, port, describe_owner)
            except EngineError as exc:
                last_error = exc
                continue
            return PortBinding(request.protocol, request.container_port, port,
                               IPv4Address(request.host_ip) if request.host_ip else None)
        raise last_error or Conflict("no free host port for the published port")

    def _hold(self, owner: str, protocol: str, host_ip: str, port: int, describe_owner: str) -> None:
        shown = f"{host_ip or '0.0.0.0'}:{port}"
        with self._lock:
            for (held_protocol, held_ip, held_port) in self._held:
                if held_protocol == protocol and held_port == port and \
                        (not held_ip or not host_ip or held_ip == host_ip):
                    raise Conflict(f"driver failed programming external connectivity on endpoint "
                                   f"{describe_owner}: Bind for {shown} failed: port is already allocated")
            kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
            sock = socket.socket(socket.AF_INET, kind)
            try:
                sock.bind((host_ip, port))
            except OSError as exc:
                sock.close()
                raise Conflict(f"failed to bind port {shown}/{protocol}: listen {protocol}4 {shown}: bind: "
                               f"{exc.strerror.lower() if exc.strerror else exc}") from None
            self._held[(protocol, host_ip, port)] = (owner, sock)

    def release(self, owner: str) -> None:
        with self._lock:
            for key, (holder, sock) in list(self._held.items()):
                if holder == owner:
                    sock.close()
                    del self._held[key]

    def hold_again(self, owner: str, bindings: Sequence[PortBinding]) -> None:
        """After a daemon restart: take back the ports a running container publishes.
        A port taken meanwhile by someone else is logged by the caller, not fatal."""
        for binding in bindings:
            self._hold(owner, binding.protocol, str(binding.host_ip or ""), binding.host_port, owner)


def docker_ports(bindings: Sequence[PortBinding], exposed: Mapping | None = None) -> dict:
    """NetworkSettings.Ports as Docker shows it: every exposed or published port, with
    its host bindings (None when only exposed)."""
    ports: dict[str, list | None] = {key if "/" in key else f"{key}/tcp": None for key in (exposed or {})}
    for binding in bindings:
        key = f"{binding.container_port}/{binding.protocol}"
        entries = ports.get(key) or []
        entries.append({"HostIp": str(binding.host_ip or "0.0.0.0"), "HostPort": str(binding.host_port)})
        ports[key] = entries
    return ports


def binding_to_json(binding: PortBinding) -> dict:
    return {"protocol": binding.protocol, "container_port": binding.container_port,
            "host_port": binding.host_port, "host_ip": str(binding.host_ip) if binding.host_ip else ""}


def binding_from_json(data: Mapping) -> PortBinding:
    return PortBinding(data["protocol"], int(data["container_port"]), int(data["host_port"]),
                       IPv4Address(data["host_ip"]) if data.get("host_ip") else None)
