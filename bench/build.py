"""A 20-instruction Dockerfile built by `DOCKER_BUILDKIT=0 docker build` against
dockyardd: uncached (--no-cache) beside fully cached, in the same run.

Target (issue #8): a fully cached rebuild runs no RUN step (checked by counting the
container create events during it) and takes under 5% of the uncached build's time;
dockerd's classic builder, when installed, for reference.

    python bench/build.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import _dockerd as dockerd

DOCKERFILE = """\
FROM busybox
ARG VARIANT=bench
ENV APP=/app PATH=/app/bin:$PATH
LABEL org.example.variant=$VARIANT
WORKDIR /app
RUN mkdir -p bin data && dd if=/dev/urandom of=data/blob1 bs=1M count=4 2>/dev/null
COPY config/ config/
RUN for i in $(seq 1 200); do echo "line $i" >> data/lines; done
COPY scripts/run.sh bin/run
RUN chmod 755 bin/run && dd if=/dev/zero of=data/zeros bs=1M count=2 2>/dev/null
ENV MODE=production
RUN sha256sum data/* > data/SUMS
COPY static/ static/
RUN find /app -type f | wc -l > /app/count
EXPOSE 8080
RUN adduser -D app 2>/dev/null || echo 'app:x:1000:1000::/app:/bin/sh' >> /etc/passwd
USER app
VOLUME /app/data
HEALTHCHECK --interval=30s CMD test -f /app/count
CMD ["run"]
"""


def make_context(root: Path) -> Path:
    context = root / "context"
    (context / "config").mkdir(parents=True)
    (context / "scripts").mkdir()
    (context / "static").mkdir()
    (context / "Dockerfile").write_text(DOCKERFILE)
    for number in range(20):
        (context / "config" / f"setting{number}.conf").write_text(f"setting={number}\n")
        (context / "static" / f"page{number}.html").write_bytes(os.urandom(16 * 1024))
    (context / "scripts" / "run.sh").write_text("#!/bin/sh\necho running\n")
    return context


def build(env: dict, context: Path, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(["docker", "build", "-t", "bench-build:1", *args, str(context)],
                            capture_output=True, text=True, check=True,
                            env={**os.environ, **env, "DOCKER_BUILDKIT": "0"})
    return time.perf_counter() - start, result.stdout


def container_creates(daemon, since: float, until: float) -> int:
    response = daemon.client().request("GET", "/events", {
        "since": f"{since:.6f}", "until": f"{until:.6f}",
        "filters": json.dumps({"type": ["container"], "event": ["create"]})}, stream=True)
    return sum(1 for _ in response.iter_json())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    assert len([line for line in DOCKERFILE.splitlines() if line.strip()]) == 20
    samples: dict[str, dict[str, list[float]]] = {}
    runs_in_cached = []
    with tempfile.TemporaryDirectory(prefix="dybuild") as scratch, contextlib.ExitStack() as stack:
        root = Path(scratch)
        daemon, engines = dockerd.engines(stack, root)
        context = make_context(root)
        for engine, env in engines.items():
            samples[engine] = {"uncached": [], "cached": []}
            build(env, context)  # warm: the first build also fills the page cache
            for _ in range(args.rounds):
                elapsed, _output = build(env, context, "--no-cache")
                samples[engine]["uncached"].append(elapsed)
                started = time.time()
                elapsed, output = build(env, context)
                samples[engine]["cached"].append(elapsed)
                assert "Running in" not in output, output
                if engine == "dockyardd":
                    runs_in_cached.append(container_creates(daemon, started, time.time()))
    print(f"{'build (20 instructions, 7 RUN)':<44}{'median s':>10}{'ratio':>8}")
    for engine, kinds in samples.items():
        floor = statistics.median(kinds["uncached"])
        cached = statistics.median(kinds["cached"])
        print(f"{engine + ': uncached (--no-cache)':<44}{floor:>10.2f}{1:>7.2f}x")
        print(f"{engine + ': fully cached':<44}{cached:>10.3f}{cached / floor:>7.3f}x")
    print(f"containers created during dockyardd's cached rebuilds: {runs_in_cached} (target: none)")
    ours = samples["dockyardd"]
    ratio = statistics.median(ours["cached"]) / statistics.median(ours["uncached"])
    print(f"a cached rebuild takes {ratio:.1%} of an uncached one "
          f"({'meets' if ratio < 0.05 and not any(runs_in_cached) else 'MISSES'} the target: under 5%, "
          "no RUN)")
    for engine in samples:
        if engine != "dockyardd":
            for kind in ("uncached", "cached"):
                versus = statistics.median(ours[kind]) / statistics.median(samples[engine][kind])
                print(f"{kind}: dockyardd takes {versus:.2f}x the time of {engine}'s classic builder")
    if not dockerd.available():
        print("dockerd is not installed here: no comparison with its classic builder "
              "(apt-get install docker.io)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
