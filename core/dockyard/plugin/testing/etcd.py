"""A real etcd cluster for tests: members started from the `etcd` binary (Debian's
etcd-server), on loopback or inside network namespaces a test made, and killed again.

    with EtcdCluster(tmp_path, members=3) as cluster:
        cluster.endpoints         # "127.0.0.1:PORT,127.0.0.1:PORT,127.0.0.1:PORT"
        cluster.kill(0)           # SIGKILL one member; the other two keep the quorum

`addresses` puts each member on an address of its own (one per test "host"), and
`netns` runs each inside a named network namespace (`ip netns exec`), so that only
addresses the test made carry the store's traffic.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# the members are on the test's own addresses: never through a proxy from the environment
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def etcd_binary() -> str | None:
    return shutil.which("etcd")


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


@dataclass
class EtcdMember:
    name: str
    address: str
    client_port: int
    peer_port: int
    data_dir: Path
    netns: str | None = None
    process: subprocess.Popen | None = None

    @property
    def client_url(self) -> str:
        return f"http://{self.address}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.address}:{self.peer_port}"


class EtcdCluster:
    def __init__(self, root: Path, members: int = 1, addresses: list[str] | None = None,
                 netns: list[str | None] | None = None, token: str = "dockyard-test") -> None:
        addresses = addresses or ["127.0.0.1"] * members
        netns = netns or [None] * len(addresses)
        self.root = Path(root)
        self.token = token
        self.members = []
        for index, (address, namespace) in enumerate(zip(addresses, netns, strict=True)):
            # on a shared address each member needs ports of its own; inside a namespace of
            # its own etcd's usual ports are free
            client_port, peer_port = ((free_port(), free_port()) if namespace is None else (2379, 2380))
            self.members.append(EtcdMember(f"m{index}", address, client_port, peer_port,
                                           self.root / f"etcd-m{index}", namespace))

    @property
    def endpoints(self) -> str:
        return ",".join(f"{m.address}:{m.client_port}" for m in self.members)

    def command(self, member: EtcdMember, state: str = "new") -> list[str]:
        cluster = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        command = [etcd_binary() or "etcd", "--name", member.name, "--data-dir", str(member.data_dir),
                   "--listen-client-urls", member.client_url, "--advertise-client-urls", member.client_url,
                   "--listen-peer-urls", member.peer_url, "--initial-advertise-peer-urls", member.peer_url,
                   "--initial-cluster", cluster, "--initial-cluster-state", state,
                   "--initial-cluster-token", self.token, "--heartbeat-interval", "100",
                   "--election-timeout", "1000", "--log-level", "warn"]
        if member.netns:
            command = ["ip", "netns", "exec", member.netns, *command]
        return command

    def start(self, timeout: float = 30) -> EtcdCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        for member in self.members:
            self._launch(member, "new")
        self.wait_healthy(timeout)
        return self

    def _launch(self, member: EtcdMember, state: str) -> None:
        log = open(self.root / f"{member.name}.log", "ab")
        member.process = subprocess.Popen(self.command(member, state), stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        log.close()

    def healthy(self, member: EtcdMember) -> bool:
        if member.process is None or member.process.poll() is not None:
            return False
        try:
            with DIRECT.open(member.client_url + "/health", timeout=2) as response:
                return b'"true"' in response.read()
        except OSError:
            return False

    def wait_healthy(self, timeout: float = 30, members: list[EtcdMember] | None = None) -> None:
        deadline = time.monotonic() + timeout
        for member in members or [m for m in self.members if m.process is not None]:
            while not self.healthy(member):
                if member.process.poll() is not None:
                    raise RuntimeError(f"etcd {member.name} exited: {self.log_tail(member)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"etcd {member.name} not healthy after {timeout}s: "
                                       f"{self.log_tail(member)}")
                time.sleep(0.1)

    def log_tail(self, member: EtcdMember) -> str:
        try:
            return (self.root / f"{member.name}.log").read_text()[-1500:]
        except OSError:
            return ""

    def kill(self, index: int) -> None:
        """SIGKILL one member, as a crash would."""
        member = self.members[index]
        if member.process is not None and member.process.poll() is None:
            os.killpg(member.process.pid, signal.SIGKILL)
            member.process.wait(timeout=10)

    def restart(self, index: int, timeout: float = 30) -> None:
        """Start a killed member again on its data directory: it rejoins and catches up."""
        member = self.members[index]
        self._launch(member, "existing")
        self.wait_healthy(timeout, [member])

    def stop(self) -> None:
        for index in range(len(self.members)):
            self.kill(index)
        shutil.rmtree(self.root, ignore_errors=True)

    def running(self) -> int:
        return sum(1 for m in self.members if m.process is not None and m.process.poll() is None)

    def __enter__(self) -> EtcdCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

