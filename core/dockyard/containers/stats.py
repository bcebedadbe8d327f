"""Resource usage of a container, read from its cgroups (v1 controllers or unified v2),
in the shape of Docker's stats JSON."""

from __future__ import annotations

import os
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def unified() -> bool:
    return (CGROUP_ROOT / "cgroup.controllers").exists()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _int(path: Path, default: int = 0) -> int:
    text = _read(path).strip()
    if not text or text == "max":
        return default
    try:
        return int(text.split()[0])
    except ValueError:
        return default


def _key_values(path: Path) -> dict[str, int]:
    values = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(" ")
        try:
            values[key] = int(value)
        except ValueError:
            continue
    return values


def system_cpu_usage() -> int:
    """Host CPU time in nanoseconds, from /proc/stat (what Docker reports)."""
    fields = _read(Path("/proc/stat")).splitlines()[0].split()[1:8]
    ticks = sum(int(value) for value in fields)
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def sample(cgroup_path: str) -> dict:
    relative = cgroup_path.lstrip("/")
    online = os.cpu_count() or 1
    if unified():
        base = CGROUP_ROOT / relative
        cpu = _key_values(base / "cpu.stat")
        memory_stats = _key_values(base / "memory.stat")
        cpu_stats = {
            "cpu_usage": {"total_usage": cpu.get("usage_usec", 0) * 1000,
                          "usage_in_kernelmode": cpu.get("system_usec", 0) * 1000,
                          "usage_in_usermode": cpu.get("user_usec", 0) * 1000},
            "throttling_data": {"periods": cpu.get("nr_periods", 0),
                                "throttled_periods": cpu.get("nr_throttled", 0),
                                "throttled_time": cpu.get("throttled_usec", 0) * 1000},
        }
        memory = {"usage": _int(base / "memory.current"), "stats": memory_stats,
                  "limit": _int(base / "memory.max", _mem_total())}
        pids = {"current": _int(base / "pids.current"), "limit": _int(base / "pids.max")}
    else:
        cpuacct = CGROUP_ROOT / "cpuacct" / relative
        memory_dir = CGROUP_ROOT / "memory" / relative
        cpu_dir = CGROUP_ROOT / "cpu" / relative
        user_system = _key_values(cpuacct / "cpuacct.stat")
        ticks = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
        throttling = _key_values(cpu_dir / "cpu.stat")
        cpu_stats = {
            "cpu_usage": {"total_usage": _int(cpuacct / "cpuacct.usage"),
                          "percpu_usage": [int(v) for v in _read(cpuacct / "cpuacct.usage_percpu").split()],
                          "usage_in_kernelmode": user_system.get("system", 0) * ticks,
                          "usage_in_usermode": user_system.get("user", 0) * ticks},
            "throttling_data": {"periods": throttling.get("nr_periods", 0),
                                "throttled_periods": throttling.get("nr_throttled", 0),
                                "throttled_time": throttling.get("throttled_time", 0)},
        }
        limit = _int(memory_dir / "memory.limit_in_bytes")
        memory = {"usage": _int(memory_dir / "memory.usage_in_bytes"),
                  "max_usage": _int(memory_dir / "memory.max_usage_in_bytes"),
                  "failcnt": _int(memory_dir / "memory.failcnt"),
                  "stats": _key_values(memory_dir / "memory.stat"),
                  "limit": min(limit, _mem_total()) if limit else _mem_total()}
        pids_dir = CGROUP_ROOT / "pids" / relative
        pids = {"current": _int(pids_dir / "pids.current"), "limit": _int(pids_dir / "pids.max")}
    cpu_stats["system_cpu_usage"] = system_cpu_usage()
    cpu_stats["online_cpus"] = online
    return {"cpu_stats": cpu_stats, "memory_stats": memory, "pids_stats": pids}


def network_counters(pid: int) -> dict | None:
    """Per-interface counters of the process's network namespace, loopback left out, in
    Docker's `networks` shape; None when they cannot be read (the process is gone)."""
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return None
    found = {}
    for line in lines:
        name, _, numbers = line.partition(":")
        name, values = name.strip(), [int(v) for v in numbers.split()]
        if name == "lo" or len(values) < 16:
            continue
        found[name] = {"rx_bytes": values[0], "rx_packets": values[1], "rx_errors": values[2],
                       "rx_dropped": values[3], "tx_bytes": values[8], "tx_packets": values[9],
                       "tx_errors": values[10], "tx_dropped": values[11]}
    return found


def _mem_total() -> int:
    for line in _read(Path("/proc/meminfo")).splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def empty_cpu() -> dict:
    return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "system_cpu_usage": 0, "online_cpus": 0,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def stats_message(name: str, container_id: str, current: dict, previous: dict | None,
                  read_at: float, previous_at: float | None) -> dict:
    def stamp(moment: float | None) -> str:
        if moment is None:
            return "0001-01-01T00:00:00Z"
        seconds = int(moment)
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((moment % 1) * 1e9):09d}Z"

    return {
        "read": stamp(read_at),
        "preread": stamp(previous_at),
        "pids_stats": current["pids_stats"],
        "blkio_stats": {"io_service_bytes_recursive": None, "io_serviced_recursive": None,
                        "io_queue_recursive": None, "io_service_time_recursive": None,
                        "io_wait_time_recursive": None, "io_merged_recursive": None,
                        "io_time_recursive": None, "sectors_recursive": None},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": current["cpu_stats"],
        "precpu_stats": previous["cpu_stats"] if previous else empty_cpu(),
        "memory_stats": current["memory_stats"],
        **({"networks": current["networks"]} if current.get("networks") else {}),
        "name": f"/{name}",
        "id": container_id,
    }
