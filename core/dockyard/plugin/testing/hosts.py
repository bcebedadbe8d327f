"""Several test "hosts" on one machine: network namespaces wired to one underlay.

    with HostNetwork() as net:
        h1, h2 = net.add_host(), net.add_host()      # namespaces with an eth0 each
        daemon = h1.daemon(tmp_path / "h1", "--cluster-store", ...)  # dockyardd inside h1
        net.cut(h2)                                   # h2 loses the underlay; net.heal(h2)
        net.cut_from(h1, ["198.51.100.7"])            # h1 cannot reach that address any more

The underlay is a bridge in a namespace of its own; every host has a veth on it with an
address of TEST-NET-2 (198.51.100.0/24, never a real network's), and so has the test
process itself (`<prefix>r` in the root namespace), so it can reach what runs on the
hosts. Only these addresses carry the traffic. Deleting the namespaces at the end takes
every link, address, route and firewall table made in them along.
"""

from __future__ import annotations

import ipaddress
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.plugin.testing.daemon import DaemonProcess

UNDERLAY = ipaddress.IPv4Network("198.51.100.0/24")
TEST_PROCESS_ADDRESS = UNDERLAY[254]


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    command = ["ip", *(["-n", netns] if netns else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")
    return result


@dataclass
class Host:
    name: str  # also the namespace's name
    address: ipaddress.IPv4Address
    network: HostNetwork
    daemons: list[DaemonProcess] = field(default_factory=list)

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.name}"

    def run(self, *command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        result = subprocess.run(["ip", "netns", "exec", self.name, *command], capture_output=True,
                                text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(command)}: {result.stderr.strip()}")
        return result

    def daemon(self, root: Path, *args: str, **env: str) -> DaemonProcess:
        """A dockyardd inside this host's namespace (not yet started): its own data root,
        exec root, pid file and bridge, as on a machine of its own."""
        daemon = DaemonProcess(Path(root), tuple(args), dict(env), netns=self.name)
        self.daemons.append(daemon)
        return daemon

    def links(self) -> list[str]:
        out = ip("-o", "link", "show", netns=self.name).stdout
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


class HostNetwork:
    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or f"dy{secrets.token_hex(2)}"
        self.underlay = f"{self.prefix}ul"
        self.root_link = f"{self.prefix}r"
        self.hosts: list[Host] = []
        self._next = 1

    def create(self) -> HostNetwork:
        holder = [line.split()[1] for line in ip("-o", "-4", "addr", "show").stdout.splitlines()
                  if f" {TEST_PROCESS_ADDRESS}/" in line]
        if holder:  # two underlays on one subnet: the test process would reach the wrong one
            raise RuntimeError(f"another HostNetwork is alive here ({holder[0]} holds "
                               f"{TEST_PROCESS_ADDRESS}): end it (ip link del it and its namespaces) or "
                               "wait for its test to finish")
        ip("netns", "add", self.underlay)
        ip("link", "add", "br0", "type", "bridge", netns=self.underlay)
        ip("link", "set", "br0", "up", netns=self.underlay)
        ip("link", "set", "lo", "up", netns=self.underlay)
        ip("link", "add", self.root_link, "type", "veth", "peer", "name", "root", "netns", self.underlay)
        ip("link", "set", "root", "master", "br0", "up", netns=self.underlay)
        ip("addr", "add", f"{TEST_PROCESS_ADDRESS}/{UNDERLAY.prefixlen}", "dev", self.root_link)
        ip("link", "set", self.root_link, "up")
        return self

    def add_host(self, label: str | None = None) -> Host:
        index = self._next
        self._next += 1
        name = f"{self.prefix}{label or 'h'}{index}"
        address = UNDERLAY[index]
        ip("netns", "add", name)
        ip("link", "set", "lo", "up", netns=name)
        ip("link", "add", f"p{index}", "type", "veth", "peer", "name", "eth0", "netns", name,
           netns=self.underlay)
        ip("link", "set", f"p{index}", "master", "br0", "up", netns=self.underlay)
        ip("addr", "add", f"{address}/{UNDERLAY.prefixlen}", "dev", "eth0", netns=name)
        ip("link", "set", "eth0", "up", netns=name)
        host = Host(name, address, self)
        self.hosts.append(host)
        return host

    def _port_of(self, host: Host) -> str:
        return f"p{int(host.address) - int(UNDERLAY.network_address)}"

    def cut(self, host: Host) -> None:
        """A partition: the host's cable is pulled (its underlay port goes down)."""
        ip("link", "set", self._port_of(host), "down", netns=self.underlay)

    def heal(self, host: Host) -> None:
        ip("link", "set", self._port_of(host), "up", netns=self.underlay)

    def cut_from(self, host: Host, addresses: list[str]) -> None:
        """A partial partition: the host's packets to `addresses` are dropped (say, the
        cluster store's members), while the rest of the underlay still reaches it."""
        rules = (f"table inet dy_partition {{\n chain out {{\n  type filter hook output priority 0\n"
                 f"  ip daddr {{ {', '.join(addresses)} }} drop\n }}\n}}\n")
        subprocess.run(["ip", "netns", "exec", host.name, "nft", "-f", "-"], input=rules, text=True,
                       check=True, capture_output=True, timeout=30)

    def reconnect(self, host: Host) -> None:
        subprocess.run(["ip", "netns", "exec", host.name, "nft", "delete", "table", "inet", "dy_partition"],
                       capture_output=True, timeout=30)

    def destroy(self) -> None:
        for host in self.hosts:
            for daemon in host.daemons:
                try:
                    daemon.remove_containers()  # a test that failed half-way leaves some running
                finally:
                    daemon.teardown()
        for host in self.hosts:
            ip("netns", "del", host.name, check=False)
        ip("link", "del", self.root_link, check=False)
        ip("netns", "del", self.underlay, check=False)

    def __enter__(self) -> HostNetwork:
        return self.create()

    def __exit__(self, *exc) -> None:
        self.destroy()
