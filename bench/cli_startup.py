"""CLI start-up: `dockyard version` against `python3 -c pass`, measured side by side.

All commands run alternately in one loop (this machine is noisy, so only ratios from
one run mean anything) against a dockyardd this script starts on a temporary socket.
Target (issue #2): `dockyard version` within 1.6x of the bare interpreter.

The floor line imports only `json` and `socket`, which any Python client of a JSON API
over a socket needs: how far `dockyard version` is above the floor is what the CLI's own
code costs; the floor's distance from `pass` is the interpreter's.

    python bench/cli_startup.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dockyard.plugin.testing.daemon import DaemonProcess


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                   check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()

    script = shutil.which("dockyard", path=str(Path(sys.executable).parent))
    if script is None:
        sys.exit("the dockyard console script is not installed next to this python")
    with tempfile.TemporaryDirectory(prefix="dybench") as root:
        daemon = DaemonProcess(Path(root)).start()
        try:
            env = {"DOCKYARD_HOST": daemon.host, "PATH": "/usr/bin:/bin"}
            commands = {
                "python3 -c pass": [sys.executable, "-c", "pass"],
                "floor: json+socket": [sys.executable, "-c", "import json, socket"],
                "dockyard version": [script, "version"],
                "dockyard info": [script, "info"],
            }
            samples: dict[str, list[float]] = {name: [] for name in commands}
            for command in commands.values():  # warm the page cache
                timed(command, env)
            for _ in range(args.rounds):
                for name, command in commands.items():
                    samples[name].append(timed(command, env))
        finally:
            daemon.stop()

    baseline = statistics.median(samples["python3 -c pass"])
    print(f"{'command':<20}{'median ms':>10}{'p90 ms':>9}{'ratio':>8}")
    for name, values in samples.items():
        p90 = sorted(values)[int(len(values) * 0.9) - 1]
        ratio = statistics.median(values) / baseline
        print(f"{name:<20}{statistics.median(values) * 1000:>10.1f}{p90 * 1000:>9.1f}{ratio:>7.2f}x")
    version = statistics.median(samples["dockyard version"])
    floor = statistics.median(samples["floor: json+socket"])
    verdict = "meets" if version / baseline <= 1.6 else "MISSES"
    print(f"\n`dockyard version` is {version / baseline:.2f}x `python3 -c pass` ({verdict} the 1.6x "
          f"target) and {version / floor:.2f}x the json+socket floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
