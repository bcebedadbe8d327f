"""Multi-host overlay networks, measured side by side in one run (issue #14):

1. Throughput between containers on two hosts over an overlay network (VXLAN), against
   the same pump between the two hosts' namespaces straight over the underlay.
   Target: at least 0.8x.
2. Time from a container's start on host A until a container on host B reaches it by
   name, with 2, 5 and 10 hosts in the cluster. Target: under 0.5 s.
3. Store traffic per container start: requests the cluster store served (by kind) and
   watch events it sent, read from etcd's own metrics, so the cost at 100 hosts can be
   estimated on paper.

The hosts are network namespaces on one underlay, each with its own dockyardd, and one
etcd member; traffic stays inside them (TEST-NET-2 addresses).

    python bench/overlay.py [--megabytes 512] [--rounds 3] [--hosts 2,5,10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from dockyard.plugin.testing.etcd import EtcdCluster
from dockyard.plugin.testing.hosts import HostNetwork
from network import pump_seconds


def docker(daemon, *args: str) -> str:
    env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_CONFIG": str(daemon.root / "cfg")}
    done = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.net = HostNetwork().create()
        member = self.net.add_host("e")
        self.etcd = EtcdCluster(root / "etcd", addresses=[str(member.address)], netns=[member.name]).start()
        self.daemons = []

    def add(self):
        host = self.net.add_host()
        daemon = host.daemon(self.root / host.name, "--cluster-store", f"etcd://{self.etcd.endpoints}/bench",
                             "--cluster-advertise", "eth0").start()
        subprocess.run([sys.executable, "-m", "dockyard.cli", "-H", daemon.host, "image", "bootstrap",
                        "busybox"], check=True, capture_output=True)
        self.daemons.append((host, daemon))
        return host, daemon

    def wait_joined(self) -> None:
        deadline = time.monotonic() + 60
        for _, daemon in self.daemons:
            while (daemon.client().get_json("/info").get("ClusterStatus") or {}).get("State") != "joined":
                if time.monotonic() > deadline:
                    raise RuntimeError("a daemon did not join the cluster")
                time.sleep(0.1)

    def close(self) -> None:
        for _, daemon in self.daemons:
            api = daemon.client()
            for container in api.get_json("/containers/json", {"all": 1}):
                api.request("DELETE", f"/containers/{container['Id']}", {"force": 1}).read()
            for network in api.get_json("/networks"):
                if network["Scope"] == "global":
                    api.request("DELETE", f"/networks/{network['Id']}").read()
        self.net.destroy()
        self.etcd.stop()


def wait_network(daemon, name: str) -> None:
    deadline = time.monotonic() + 30
    while name not in docker(daemon, "network", "ls", "--format", "{{.Name}}").split():
        if time.monotonic() > deadline:
            raise RuntimeError(f"network {name} did not reach every host")
        time.sleep(0.1)


def container(daemon, name: str, network: str, *command: str) -> tuple[int, str]:
    docker(daemon, "run", "-d", "--name", name, "--network", network, "busybox", *command)
    info = json.loads(docker(daemon, "inspect", name))[0]
    return info["State"]["Pid"], info["NetworkSettings"]["Networks"][network]["IPAddress"]


# -- 1. throughput ----------------------------------------------------------------------

def throughput(root: Path, megabytes: int, rounds: int) -> dict[str, list[float]]:
    cluster = Cluster(root / "tp")
    try:
        (h1, d1), (h2, d2) = cluster.add(), cluster.add()
        cluster.wait_joined()
        docker(d1, "network", "create", "-d", "overlay", "--subnet", "10.240.0.0/24", "tp")
        wait_network(d2, "tp")
        source_pid, _ = container(d1, "source", "tp", "sleep", "900")
        sink_pid, sink_address = container(d2, "sink", "tp", "sleep", "900")
        samples = {"containers on two hosts, overlay (VXLAN)": [], "the two hosts, underlay": []}
        for _ in range(rounds):
            samples["containers on two hosts, overlay (VXLAN)"].append(
                pump_seconds(f"/proc/{source_pid}/ns/net", f"/proc/{sink_pid}/ns/net", sink_address,
                             megabytes))
            samples["the two hosts, underlay"].append(
                pump_seconds(h1.netns_path, h2.netns_path, str(h2.address), megabytes))
        return samples
    finally:
        cluster.close()


# -- 2. time to reach by name ---------------------------------------------------------------

PROBE = "until ping -c 1 -W 1 {name} >/dev/null 2>&1; do usleep 5000; done; echo reached"


def time_to_reach(root: Path, hosts: int, samples: int) -> list[float]:
    cluster = Cluster(root / f"reach{hosts}")
    try:
        for _ in range(hosts):
            cluster.add()
        cluster.wait_joined()
        (_, first), (_, last) = cluster.daemons[0], cluster.daemons[-1]
        docker(first, "network", "create", "-d", "overlay", "--subnet", "10.241.0.0/24", "reach")
        for _, daemon in cluster.daemons:
            wait_network(daemon, "reach")
        times = []
        for n in range(samples):
            name = f"target{n}"
            env = {**os.environ, "DOCKER_HOST": last.host, "DOCKER_CONFIG": str(last.root / "cfg")}
            prober = subprocess.Popen(["docker", "run", "--rm", "--network", "reach", "busybox", "sh", "-c",
                                       PROBE.format(name=name)], env=env, stdout=subprocess.PIPE, text=True)
            time.sleep(1.0)  # the prober runs and keeps failing: the name is not there yet
            docker(first, "run", "-d", "--name", name, "--network", "reach", "busybox", "sleep", "300")
            started = time.perf_counter()
            line = prober.stdout.readline()
            times.append(time.perf_counter() - started)
            assert line.strip() == "reached", line
            prober.wait(30)
            docker(first, "rm", "-f", name)
        return times
    finally:
        cluster.close()


# -- 3. store traffic -----------------------------------------------------------------------

METRIC = re.compile(r'^(grpc_server_handled_total\{.*grpc_method="(\w+)".*\}'
                    r'|etcd_debugging_mvcc_events_total) ([0-9.e+]+)$')


def store_counters(cluster: Cluster) -> dict[str, float]:
    counts: dict[str, float] = {}
    url = cluster.etcd.members[0].client_url + "/metrics"
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=10) as response:
        for line in response.read().decode().splitlines():
            match = METRIC.match(line)
            if match:
                key = match.group(2) or "watch events sent"
                counts[key] = counts.get(key, 0) + float(match.group(3))
    return counts


def store_traffic(root: Path, hosts: int, samples: int) -> dict[str, float]:
    cluster = Cluster(root / f"traffic{hosts}")
    try:
        for _ in range(hosts):
            cluster.add()
        cluster.wait_joined()
        first = cluster.daemons[0][1]
        docker(first, "network", "create", "-d", "overlay", "--subnet", "10.242.0.0/24", "traffic")
        for _, daemon in cluster.daemons:
            wait_network(daemon, "traffic")
        time.sleep(1)
        totals: dict[str, float] = {}
        for n in range(samples):
            before = store_counters(cluster)
            quiet = time.perf_counter()
            docker(first, "run", "-d", "--name", f"t{n}", "--network", "traffic", "busybox", "sleep", "300")
            time.sleep(0.5)  # the other hosts' watches deliver
            after = store_counters(cluster)
            elapsed = time.perf_counter() - quiet
            # lease renewals and node listings go on meanwhile: subtract their idle rate
            idle_before = store_counters(cluster)
            time.sleep(elapsed)
            idle_after = store_counters(cluster)
            for key in set(after) | set(before):
                delta = after.get(key, 0) - before.get(key, 0)
                idle = idle_after.get(key, 0) - idle_before.get(key, 0)
                totals[key] = totals.get(key, 0) + max(0.0, delta - idle)
        return {key: value / samples for key, value in totals.items() if value > 0}
    finally:
        cluster.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hosts", default="2,5,10")
    parser.add_argument("--samples", type=int, default=5)
    options = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dyov", dir="/tmp"))

    samples = throughput(root, options.megabytes, options.rounds)
    print(f"Throughput, {options.megabytes} MiB per round, {options.rounds} rounds (median):")
    medians = {label: statistics.median(values) for label, values in samples.items()}
    for label, seconds in medians.items():
        print(f"  {label:45s} {options.megabytes / seconds:8.0f} MiB/s")
    overlay, underlay = medians.values()
    print(f"  overlay / underlay throughput: {underlay / overlay:.2f}x (target at least 0.8x)\n")

    print("Time from a container's start on host A until host B reaches it by name:")
    print("  hosts   median    max")
    for count in (int(n) for n in options.hosts.split(",")):
        times = time_to_reach(root, count, options.samples)
        print(f"  {count:5d}  {statistics.median(times):6.3f}s {max(times):6.3f}s")
    print("  (target under 0.5 s)\n")

    for count in (2, 5):
        traffic = store_traffic(root, count, options.samples)
        print(f"Store traffic per container start, {count} hosts (requests by kind, watch events sent):")
        for key, value in sorted(traffic.items()):
            print(f"  {key:24s} {value:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
