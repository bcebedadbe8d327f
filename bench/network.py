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
from dockyard.netns import run_in_netns


def fresh_netns(tag: str) -> str:
    name = f"dybench-{tag}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    return name


def drop_netns(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


def bare_pyroute2_join(netns: str, address: str, bridge_index: int) -> None:
    from pyroute2 import IPRoute

    host_name = "dyx" + secrets.token_hex(5)
    with IPRoute() as ip:
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
    with IPRoute() as ip:
        ip.link("del", index=ip.link_lookup(ifname=host_name)[0])


def bare_ip_join(netns: str, address: str, bridge: str) -> None:
    host_name = "dyx" + secrets.token_hex(5)
    run = lambda *argv: subprocess.run(argv, check=True)  # noqa: E731
    run("ip", "link", "add", host_name, "type", "veth", "peer", "name", "dyxpeer")
    run("ip", "link", "set", host_name, "master", bridge, "up")
    run("ip", "link", "set", "dyxpeer", "netns", netns)
    run("ip", "-n", netns, "link", "set", "dyxpeer", "name", "eth0")
    run("ip", "-n", netns, "addr", "add", address, "dev", "eth0")
    run("ip", "-n", netns, "link", "set", "eth0", "up")
    run("ip", "-n", netns, "route", "add", "default", "via",
        str(IPv4Interface(address).network.network_address + 1))
    run("ip", "link", "del", host_name)


def measure_joins(count: int) -> dict[str, list[float]]:
    from dockyard.drivers.network import EndpointSpec, NetworkSpec
    from dockyard.plugin import DriverContext
    from dockyard.pluginmanager import PluginManager

    spec = next(s for s in PluginManager().load_all().supported("network") if s.name == "bridge")
    scratch = Path(tempfile.mkdtemp(prefix="dynet"))
    driver = spec.factory(DriverContext(kind="network", name="bridge", home=scratch / "home",
                                        exec_root=scratch / "exec", logger=logging.getLogger("bench")))
    (scratch / "home").mkdir(exist_ok=True)
    subnet = IPv4Network("10.249.0.0/16")
    network = NetworkSpec(network_id=secrets.token_hex(32), name="bench", subnets=(subnet,),
                          gateway=IPv4Interface("10.249.0.1/16"))
    driver.create_network(network)
    from pyroute2 import IPRoute

    bridge = f"dy-{network.network_id[:12]}"
    with IPRoute() as ip:
        bridge_index = ip.link_lookup(ifname=bridge)[0]
    samples: dict[str, list[float]] = {"dockyard bridge join+leave": [], "bare pyroute2 (bench)": [],
                                       "bare ip commands (bench)": []}
    try:
        for round_number in range(count + 1):
            for label in samples:
                netns = fresh_netns(secrets.token_hex(4))
                address = f"10.249.{round_number % 250 + 1}.{len(samples[label]) % 250 + 2}/16"
                try:
                    start = time.perf_counter()
                    if label.startswith("dockyard"):
                        endpoint = EndpointSpec(endpoint_id=secrets.token_hex(32), container_id="bench",
                                                netns_path=f"/run/netns/{netns}",
                                                address=IPv4Interface(address), mac_address=None)
                        driver.join(network, endpoint)
                        driver.leave(network, endpoint)
                    elif label.startswith("bare pyroute2"):
                        bare_pyroute2_join(netns, address, bridge_index)
                    else:
                        bare_ip_join(netns, address, bridge)
                    elapsed = time.perf_counter() - start
                finally:
                    drop_netns(netns)
                if round_number:
                    samples[label].append(elapsed)
    finally:
        driver.delete_network(network.network_id)
    return samples


def pump_seconds(run_receiver, run_sender, megabytes: int) -> float:
    receiver = run_receiver()
    time.sleep(0.5)
    start = time.perf_counter()
    run_sender(megabytes)
    receiver.wait(60)
    return time.perf_counter() - start


def measure_throughput(megabytes: int, rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"two containers on a dockyard bridge": [], "bare veth pair": []}
    root = Path(tempfile.mkdtemp(prefix="dynt"))
    daemon = start_daemon(root / "d")
    env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_CONFIG": str(root / "cfg")}
    docker = lambda *argv, **kw: subprocess.run(["docker", *argv], env=env, capture_output=True,  # noqa: E731
                                                check=True, **kw)
    left, right = fresh_netns("left"), fresh_netns("right")
    try:
        subprocess.run(["ip", "link", "add", "dybl", "netns", left, "type", "veth", "peer", "name", "dybr",
                        "netns", right], check=True)
        for netns, link, address in ((left, "dybl", "10.248.0.1/24"), (right, "dybr", "10.248.0.2/24")):
            subprocess.run(["ip", "-n", netns, "addr", "add", address, "dev", link], check=True)
            subprocess.run(["ip", "-n", netns, "link", "set", link, "up"], check=True)
        docker("network", "create", "benchnet")
        docker("run", "-d", "--name", "sink", "--network", "benchnet", "busybox", "sleep", "600")
        docker("run", "-d", "--name", "source", "--network", "benchnet", "busybox", "sleep", "600")
        pump = "dd if=/dev/zero bs=64k count={} 2>/dev/null | nc -w 5 {} 9000"
        bare_pump = pump.replace("dd ", "/bin/busybox dd ").replace("nc ", "/bin/busybox nc ")
        for _ in range(rounds):
            samples["two containers on a dockyard bridge"].append(pump_seconds(
                lambda: subprocess.Popen(["docker", "exec", "sink", "sh", "-c", "nc -l -p 9000 > /dev/null"],
                                         env=env),
                lambda mb: docker("exec", "source", "sh", "-c", pump.format(mb * 16, "sink")), megabytes))
            samples["bare veth pair"].append(pump_seconds(
                lambda: subprocess.Popen(["ip", "netns", "exec", right, "/bin/busybox", "sh", "-c",
                                          "/bin/busybox nc -l -p 9000 > /dev/null"]),
                lambda mb: subprocess.run(["ip", "netns", "exec", left, "/bin/busybox", "sh", "-c",
                                           bare_pump.format(mb * 16, "10.248.0.2")], check=True), megabytes))
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
    args = parser.parse_args()
    joins = measure_joins(args.joins)
    floor = statistics.median(joins["bare pyroute2 (bench)"])
    print(f"{'endpoint join + leave':<34}{'median ms':>10}{'ratio':>8}")
    for label, values in joins.items():
        median = statistics.median(values)
        print(f"{label:<34}{median * 1000:>10.1f}{median / floor:>7.2f}x")
    ours = statistics.median(joins["dockyard bridge join+leave"]) * 1000
    print(f"\nthe bridge driver's join + leave takes {ours:.1f} ms "
          f"({'meets' if ours < 30 else 'MISSES'} the 30 ms target)\n")
    pumped = measure_throughput(args.megabytes, args.rounds)
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
