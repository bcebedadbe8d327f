"""`run --rm busybox true`: dockyard through the real docker CLI, and through its own CLI,
against `runc run` of a prepared bundle, measured side by side in one run.

Target (issue #4): the docker CLI against dockyardd within 3x of bare runc; dockerd,
when installed, for reference (our target: under half of its time).

    python bench/container_run.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import _dockerd as dockerd
from _common import busybox_bundle, start_daemon, stop_daemon, timed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dyrun") as scratch, contextlib.ExitStack() as stack:
        root = Path(scratch)
        daemon = start_daemon(root / "d")
        stack.callback(stop_daemon, daemon)
        bundle = busybox_bundle(root / "bundle", ["/bin/true"], "/dockyard-bench/runc")
        runc_root = root / "runc"
        docker_env = {"DOCKER_HOST": daemon.host, "DOCKER_CONFIG": str(root / "cfg")}
        commands = {
            "runc run (bundle ready)": (lambda i: ["runc", "--root", str(runc_root), "run", "--bundle",
                                                   str(bundle), f"bench-{i}"], docker_env),
            "docker run --rm (dockyardd)": (lambda i: ["docker", "run", "--rm", "busybox", "true"],
                                            docker_env),
            "dockyard run --rm": (lambda i: [sys.executable, "-m", "dockyard.cli", "-H", daemon.host,
                                             "run", "--rm", "busybox", "true"], docker_env),
        }
        if dockerd.available():
            dockerd_env = stack.enter_context(dockerd.running(root / "dockerd", docker_env))
            commands[f"docker run --rm (dockerd {dockerd.version(dockerd_env)})"] = (
                lambda i: ["docker", "run", "--rm", "busybox", "true"], dockerd_env)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        try:
            for round_number in range(args.rounds + 1):
                for name, (command, env) in commands.items():
                    elapsed = timed(command(round_number), env)
                    if round_number:  # the first round warms caches
                        samples[name].append(elapsed)
        finally:
            for leftover in Path("/sys/fs/cgroup").glob("*/dockyard-bench"):
                subprocess.run(["rmdir", str(leftover)], capture_output=True)
    floor = statistics.median(samples["runc run (bundle ready)"])
    print(f"{'command':<40}{'median ms':>10}{'ratio':>8}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:<40}{median * 1000:>10.1f}{median / floor:>7.2f}x")
    ours = statistics.median(samples["docker run --rm (dockyardd)"])
    print(f"\ndocker run --rm against dockyardd is {ours / floor:.2f}x runc run "
          f"({'meets' if ours / floor <= 3 else 'MISSES'} the 3x target)")
    theirs = [statistics.median(v) for name, v in samples.items() if "(dockerd" in name]
    if theirs:
        print(f"dockyardd takes {ours / theirs[0]:.2f}x dockerd's time "
              f"({'meets' if ours / theirs[0] < 0.5 else 'MISSES'} the target: under half)")
    else:
        print("dockerd is not installed here: no comparison with it (apt-get install docker.io)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
