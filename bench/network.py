"""Networking costs, side by side in one run (issue #5):

1. Endpoint join: the bridge driver's join + leave of a fresh network namespace, against
   the bare minimum done by this bench with the same netlink library (veth pair, move,
   address, up, route) and with the `ip` command. Target: the networking part of `run`
   under 30 ms here.
2. Throughput: bytes pumped between two containers on a dockyard bridge, against the
   same pump between two namespaces joined by a bare veth pair. Target: within 1.1x.

Traffic stays inside namespaces this bench creates.

    python bench/network.py [--joins 30] [--megabytes 512]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path

from _common import start_daemon, stop_daemon
from dockyard.plugin.netns import run_in_netns


def fresh_netns(tag: str) -> str:
    name = f"dybench-{tag}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    return name


def drop_netns(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


def bare_pyroute2(ip, netns: str, address: str, bridge_index: int) -> tuple[float, float]:
    """The least a join can do, with one netlink socket kept open (as the driver keeps
    one): veth pair, host end on the bridge, peer moved, named, addressed, up, routed."""
    from pyroute2 import IPRoute

    host_name = "dyx" + secrets.token_hex(5)
    start = time.perf_counter()
    ip.link("add", ifname=host_name, kind="veth", peer="dyxpeer")
    host = ip.link_lookup(ifname=host_name)[0]
    ip.link("set", index=host, master=bridge_index, state="up")
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        ip.link("set", index=ip.link_lookup(ifname="dyxpeer")[0], net_ns_fd=fd)
    finally:
        os.close(fd)

    def configure() -> None:
        with IPRoute() as inner:
            peer = inner.link_lookup(ifname="dyxpeer")[0]
            inner.link("set", index=peer, ifname="eth0")
            interface = IPv4Interface(address)
            inner.addr("add", index=peer, address=str(interface.ip), prefixlen=interface.network.prefixlen)
            inner.link("set", index=peer, state="up")
            inner.route("add", dst="0.0.0.0/0", gateway=str(interface.network.network_address + 1))

    run_in_netns(f"/run/netns/{netns}", configure)
    joined = time.perf_counter()
    ip.link("del", index=host)
    return joined - start, time.perf_counter() - joined


def bare_ip(netns: str, address: str, bridge: str) -> tuple[float, float]:
    host_name = "dyx" + secrets.token_hex(5)
    run = lambda *argv: subprocess.run(argv, check=True)  # noqa: E731
    start = time.perf_counter()
    run("ip", "link", "add", host_name, "type", "veth", "peer", "name", "dyxpeer")
    run("ip", "link", "set", host_name, "master", bridge, "up")
    run("ip", "link", "set", "dyxpeer", "netns", netns)
    run("ip", "-n", netns, "link", "set", "dyxpeer", "name", "eth0")
    run("ip", "-n", netns, "addr", "add", address, "dev", "eth0")
    run("ip", "-n", netns, "link", "set", "eth0", "up")
    run("ip", "-n", netns, "route", "add", "default", "via",
        str(IPv4Interface(address).network.network_address + 1))
    joined = time.perf_counter()
    run("ip", "link", "del", host_name)
    return joined - start, time.perf_counter() - joined


def measure_joins(count: int) -> dict[str, list[tuple[float, float]]]:
    from dockyard.daemon.pluginmanager import PluginManager
    from dockyard.plugin import DriverContext
    from dockyard.plugin.contracts.network import EndpointSpec, NetworkSpec
    from pyroute2 import IPRoute

    spec = next(s for s in PluginManager().load_all().supported("network") if s.name == "bridge")
    scratch = Path(tempfile.mkdtemp(prefix="dynet"))
    (scratch / "home").mkdir()
    driver = spec.factory(DriverContext(kind="network", name="bridge", home=scratch / "home",
                                        exec_root=scratch / "exec", logger=logging.getLogger("bench")))
    subnet = IPv4Network("10.249.0.0/16")
    network = NetworkSpec(network_id=secrets.token_hex(32), name="bench", subnets=(subnet,),
                          gateway=IPv4Interface("10.249.0.1/16"))
    driver.create_network(network)
    bridge = f"dy-{network.network_id[:12]}"
    ip = IPRoute()
    bridge_index = ip.link_lookup(ifname=bridge)[0]

    def ours(netns: str, address: str) -> tuple[float, float]:
        endpoint = EndpointSpec(endpoint_id=secrets.token_hex(32), container_id="bench",
                                netns_path=f"/run/netns/{netns}", address=IPv4Interface(address))
        start = time.perf_counter()
        driver.join(network, endpoint)
        joined = time.perf_counter()
        driver.leave(network, endpoint)
        return joined - start, time.perf_counter() - joined

    ways = {"dockyard bridge driver": ours,
            "bare pyroute2 (bench)": lambda n, a: bare_pyroute2(ip, n, a, bridge_index),
            "bare ip commands (bench)": lambda n, a: bare_ip(n, a, bridge)}
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label in ways}
    try:
        for round_number in range(count + 1):
            for offset, (label, way) in enumerate(ways.items()):
                netns = fresh_netns(secrets.token_hex(4))
                try:
                    measured = way(netns, f"10.249.{round_number % 250 + 1}.{offset + 2}/16")
                finally:
                    drop_netns(netns)
                if round_number:  # the first round warms caches
                    samples[label].append(measured)
    finally:
        ip.close()
        driver.delete_network(network.network_id)
    return samples


RECEIVER = """
import socket, sys
server = socket.create_server((sys.argv[1], 9000))
print("ready", flush=True)
conn, _ = server.accept()
buffer = bytearray(1 << 20)
while conn.recv_into(buffer):
    pass
conn.close()
"""

SENDER = """
import socket, sys, time
chunk = bytes(1 << 20)
total = int(sys.argv[2]) << 20
sock = socket.create_connection((sys.argv[1], 9000))
start = time.perf_counter()
for _ in range(total >> 20):
    sock.sendall(chunk)
sock.shutdown(socket.SHUT_WR)
sock.recv(1)  # the receiver closes once it has read everything
print(time.perf_counter() - start)
"""


def pump_seconds(source_netns: str, sink_netns: str, sink_address: str, megabytes: int) -> float:
    """A Python socket pump between two namespaces (nsenter keeps the host's filesystem,
    so the containers need no Python): only the network path differs between runs."""
    receiver = subprocess.Popen(["nsenter", f"--net={sink_netns}", sys.executable, "-c", RECEIVER,
                                 sink_address], stdout=subprocess.PIPE, text=True)
    assert receiver.stdout.readline().strip() == "ready"
    sent = subprocess.run(["nsenter", f"--net={source_netns}", sys.executable, "-c", SENDER, sink_address,
                           str(megabytes)], capture_output=True, text=True, check=True)
    receiver.wait(60)
    return float(sent.stdout)


def measure_throughput(megabytes: int, rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"two containers on a dockyard bridge": [], "bare veth pair": []}
    root = Path(tempfile.mkdtemp(prefix="dynt"))
    daemon = start_daemon(root / "d")
    env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_CONFIG": str(root / "cfg")}
    docker = lambda *argv: subprocess.run(["docker", *argv], env=env, capture_output=True,  # noqa: E731
                                          check=True, text=True).stdout.strip()
    left, right = fresh_netns("left"), fresh_netns("right")
    try:
        subprocess.run(["ip", "link", "add", "dybl", "netns", left, "type", "veth", "peer", "name", "dybr",
                        "netns", right], check=True)
        for netns, link, address in ((left, "dybl", "10.248.0.1/24"), (right, "dybr", "10.248.0.2/24")):
            subprocess.run(["ip", "-n", netns, "addr", "add", address, "dev", link], check=True)
            subprocess.run(["ip", "-n", netns, "link", "set", link, "up"], check=True)
        docker("network", "create", "benchnet")
        pids, addresses = [], []
        for role in ("sink", "source"):
            docker("run", "-d", "--name", role, "--network", "benchnet", "busybox", "sleep", "600")
            info = json.loads(docker("inspect", role))[0]
            pids.append(info["State"]["Pid"])
            addresses.append(info["NetworkSettings"]["Networks"]["benchnet"]["IPAddress"])
        sink_ns, source_ns = (f"/proc/{pid}/ns/net" for pid in pids)
        for _ in range(rounds):
            samples["two containers on a dockyard bridge"].append(
                pump_seconds(source_ns, sink_ns, addresses[0], megabytes))
            samples["bare veth pair"].append(
                pump_seconds(f"/run/netns/{left}", f"/run/netns/{right}", "10.248.0.2", megabytes))
    finally:
        drop_netns(left)
        drop_netns(right)
        subprocess.run(["docker", "rm", "-f", "sink", "source"], env=env, capture_output=True)
        subprocess.run(["docker", "network", "rm", "benchnet"], env=env, capture_output=True)
        stop_daemon(daemon)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--joins", type=int, default=30)
    parser.add_argument("--megabytes", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--without-br-netfilter", action="store_true",
                        help="set net.bridge.bridge-nf-call-iptables to 0 for the throughput runs "
                             "(restored after): shows what the host's br_netfilter costs bridged traffic")
    args = parser.parse_args()
    joins = measure_joins(args.joins)
    print(f"{'endpoint (median ms)':<30}{'join':>8}{'ratio':>8}{'leave':>8}{'ratio':>8}")
    floor_join = statistics.median(j for j, _ in joins["bare pyroute2 (bench)"])
    floor_leave = statistics.median(leave for _, leave in joins["bare pyroute2 (bench)"])
    for label, values in joins.items():
        join = statistics.median(j for j, _ in values)
        leave = statistics.median(leave for _, leave in values)
        print(f"{label:<30}{join * 1000:>8.1f}{join / floor_join:>7.2f}x{leave * 1000:>8.1f}"
              f"{leave / floor_leave:>7.2f}x")
    ours = statistics.median(j for j, _ in joins["dockyard bridge driver"]) * 1000
    print(f"\nthe bridge driver's join, the networking part of `run` before the process starts, takes "
          f"{ours:.1f} ms ({'meets' if ours < 30 else 'MISSES'} the 30 ms target)\n")
    br_netfilter = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    setting = br_netfilter.read_text().strip() if br_netfilter.exists() else "absent"
    print(f"net.bridge.bridge-nf-call-iptables is {setting}"
          + (" (set to 0 for this run)" if args.without_br_netfilter and setting == "1" else ""))
    if args.without_br_netfilter and setting == "1":
        br_netfilter.write_text("0")
    try:
        pumped = measure_throughput(args.megabytes, args.rounds)
    finally:
        if args.without_br_netfilter and setting == "1":
            br_netfilter.write_text("1")
    print(f"{'throughput, ' + str(args.megabytes) + ' MiB':<38}{'MiB/s':>8}{'ratio':>8}")
    bare = args.megabytes / statistics.median(pumped["bare veth pair"])
    for label, values in pumped.items():
        rate = args.megabytes / statistics.median(values)
        print(f"{label:<38}{rate:>8.0f}{bare / rate:>7.2f}x")
    ratio = statistics.median(pumped["two containers on a dockyard bridge"]) / \
        statistics.median(pumped["bare veth pair"])
    print(f"\ncontainer to container over the bridge takes {ratio:.2f}x the bare veth pair's time "
          f"({'meets' if ratio <= 1.1 else 'MISSES'} the 1.1x target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
