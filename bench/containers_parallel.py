"""20 containers started at once with `docker run -d`: containers per second, and what
each costs in memory: the daemon, the monitor zygote, every monitor (RSS, PSS and USS,
since monitors share the zygote's pages), and conmon for comparison when installed.

    python bench/containers_parallel.py [--count 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import busybox_bundle, memory, processes_holding, start_daemon, stop_daemon


def conmon_memory(scratch: Path) -> dict[str, int] | None:
    """One container under conmon (podman's monitor), for comparison."""
    if shutil.which("conmon") is None:
        return None
    bundle = busybox_bundle(scratch / "conmon-bundle", ["/bin/sleep", "60"], "/dockyard-bench/conmon")
    pid_file, conmon_pid = scratch / "conmon-ctr.pid", scratch / "conmon.pid"
    runc = shutil.which("runc")
    subprocess.run(["conmon", "--api-version", "1", "-c", "benchconmon", "-u", "benchconmon", "-r", runc,
                    "-b", str(bundle), "-p", str(pid_file), "--conmon-pidfile", str(conmon_pid),
                    "-l", f"k8s-file:{scratch / 'conmon.log'}", "--exit-dir", str(scratch),
                    "--socket-dir-path", str(scratch), "--runtime-arg", "--root",
                    "--runtime-arg", str(scratch / "runc-root")], check=True, capture_output=True,
                   timeout=30)
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() and time.monotonic() < deadline:  # conmon creates it in the background
            time.sleep(0.02)
        subprocess.run([runc, "--root", str(scratch / "runc-root"), "start", "benchconmon"], check=True)
        time.sleep(0.5)
        return memory(int(conmon_pid.read_text()))
    finally:
        subprocess.run([runc, "--root", str(scratch / "runc-root"), "delete", "--force", "benchconmon"],
                       capture_output=True)
        time.sleep(0.3)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dypar") as scratch:
        root = Path(scratch)
        daemon = start_daemon(root / "d")
        env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_CONFIG": str(root / "cfg")}
        failures: list[str] = []

        def run_one(index: int) -> None:
            command = ["docker", "run", "-d", "--name", f"par{index}", "busybox", "sleep", "300"]
            result = subprocess.run(command, capture_output=True, env=env)
            if result.returncode:
                failures.append(result.stderr.decode())

        try:
            started = time.perf_counter()
            threads = [threading.Thread(target=run_one, args=(i,)) for i in range(args.count)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            time.sleep(1.0)
            monitors = processes_holding(str(daemon.exec_root / "m"))
            zygote = int((daemon.exec_root / "monitor-zygote.sock.pid").read_text())
            monitors = [pid for pid in monitors if pid not in (zygote, daemon.process.pid)]
            daemon_memory = memory(daemon.process.pid)
            zygote_memory = memory(zygote)
            monitor_memory = [memory(pid) for pid in monitors]
            conmon = conmon_memory(root)
        finally:
            stop_daemon(daemon)
            for leftover in Path("/sys/fs/cgroup").glob("*/dockyard-bench"):
                subprocess.run(["rmdir", str(leftover)], capture_output=True)
    if failures:
        print(f"{len(failures)} runs failed, first: {failures[0]}")
    print(f"{args.count} containers started in parallel in {elapsed:.2f} s: "
          f"{args.count / elapsed:.1f} containers/s")
    print(f"\n{'process (KiB)':<34}{'RSS':>8}{'PSS':>8}{'USS':>8}")
    print(f"{'dockyardd':<34}{daemon_memory['rss']:>8}{daemon_memory['pss']:>8}{daemon_memory['uss']:>8}")
    print(f"{'monitor zygote (one per host)':<34}{zygote_memory['rss']:>8}{zygote_memory['pss']:>8}"
          f"{zygote_memory['uss']:>8}")
    if monitor_memory:
        median = {key: int(statistics.median(m[key] for m in monitor_memory))
                  for key in ("rss", "pss", "uss")}
        print(f"{f'monitor, median of {len(monitor_memory)}':<34}{median['rss']:>8}{median['pss']:>8}"
              f"{median['uss']:>8}")
    if conmon:
        print(f"{'conmon (one container)':<34}{conmon['rss']:>8}{conmon['pss']:>8}{conmon['uss']:>8}")
    else:
        print("conmon is not installed: no measured comparison (apt-get install conmon)")
    print("containerd-shim: not installed here; DESIGN.md gives 13 MB RSS per container")
    if monitor_memory and conmon:
        print(f"\nper-container cost (USS): monitor {median['uss']} KiB vs conmon {conmon['uss']} KiB "
              f"({median['uss'] / conmon['uss']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
