"""Pull and push of a ~128 MiB image in 4 layers through a local registry (the real
`docker-registry` on 127.0.0.1), against a sequential floor measured in the same run.

- pull: `docker pull` against dockyardd (the image removed before each round) beside
  one sequential client downloading the same blobs and extracting each with `tar -xz`.
- push: `docker push` against dockyardd into an empty registry beside one sequential
  client uploading the same blobs (monolithic PUTs) and the manifest.

Target (issue #7): dockyard faster than the sequential floor; dockerd, when installed,
for reference (our target: under 0.7x of its time).

    python bench/registry.py [--rounds 3] [--layer-mib 32]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import _dockerd as dockerd
import requests
from _common import start_daemon, stop_daemon
from dockyard.plugin.testing.images import image_archive, layer_tar
from dockyard.plugin.testing.registry import RegistryServer

FILE_SIZE = 128 * 1024


def layer(size: int, seed: int) -> bytes:
    """Files half random, half repetitive: compresses about 2:1, like real images."""
    files = {}
    for number in range(size // FILE_SIZE):
        if number % 2:
            data = os.urandom(FILE_SIZE)
        else:
            data = (f"layer {seed} file {number} " * (FILE_SIZE // 16)).encode()[:FILE_SIZE]
        files[f"layer{seed}/dir{number // 32}/file{number}"] = data
    return layer_tar(files)


def docker(env: dict, *args: str, stdin: bytes | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(["docker", *args], input=stdin, check=True, capture_output=True,
                   env={**os.environ, **env})
    return time.perf_counter() - start


def sequential_pull(url: str, repository: str, manifest: dict, target: Path) -> float:
    """The floor: one client, each blob downloaded to a file then extracted with tar."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    start = time.perf_counter()
    session = requests.Session()
    config = session.get(f"{url}/v2/{repository}/blobs/{manifest['config']['digest']}", timeout=60)
    config.raise_for_status()
    for descriptor in manifest["layers"]:
        path = target / "layer.tar.gz"
        digest = hashlib.sha256()
        with session.get(f"{url}/v2/{repository}/blobs/{descriptor['digest']}", stream=True,
                         timeout=60) as response, open(path, "wb") as out:
            response.raise_for_status()
            for chunk in response.iter_content(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        assert "sha256:" + digest.hexdigest() == descriptor["digest"]
        subprocess.run(["tar", "-xzf", str(path), "-C", str(target)], check=True)
        path.unlink()
    return time.perf_counter() - start


def sequential_push(url: str, repository: str, blobs: dict[str, bytes], manifest: bytes) -> float:
    """The floor: one client, each blob in one monolithic upload, then the manifest."""
    session = requests.Session()
    start = time.perf_counter()
    for digest, data in blobs.items():
        started = session.post(f"{url}/v2/{repository}/blobs/uploads/", timeout=60)
        started.raise_for_status()
        location = requests.compat.urljoin(url, started.headers["Location"])
        session.put(location, params={"digest": digest}, data=data, timeout=60,
                    headers={"Content-Type": "application/octet-stream"}).raise_for_status()
    session.put(f"{url}/v2/{repository}/manifests/1", data=manifest, timeout=60,
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}).raise_for_status()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--layer-mib", type=int, default=32)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {name: [] for name in (
        "pull: docker pull (dockyardd)", "pull: sequential download + tar -x",
        "push: docker push (dockyardd)", "push: sequential upload")}
    with tempfile.TemporaryDirectory(prefix="dyregb") as scratch, contextlib.ExitStack() as stack:
        root = Path(scratch)
        daemon = start_daemon(root / "d")
        stack.callback(stop_daemon, daemon)
        env = {"DOCKER_HOST": daemon.host, "DOCKER_CONFIG": str(root / "cfg")}
        layers = [layer(args.layer_mib << 20, seed) for seed in range(4)]
        dockerd_env = None

        def theirs_name(kind: str) -> str:
            return next(n for n in samples if n.startswith(f"{kind}: docker {kind} (dockerd"))

        if dockerd.available():
            dockerd_env = stack.enter_context(dockerd.running(root / "dockerd"))
            for kind in ("pull", "push"):
                samples[f"{kind}: docker {kind} (dockerd {dockerd.version(dockerd_env)})"] = []
        for round_number in range(args.rounds):
            for name in ("registry", "floor", "theirs"):
                (root / f"{name}{round_number}").mkdir()
            with RegistryServer(root=root / f"registry{round_number}") as registry:
                name = f"{registry.address}/bench/big:1"
                docker(env, "load", stdin=image_archive(name, layers))
                samples["push: docker push (dockyardd)"].append(docker(env, "push", name))
                digest = json.loads(subprocess.run(
                    ["docker", "image", "inspect", name, "--format", "{{json .RepoDigests}}"],
                    capture_output=True, check=True, env={**os.environ, **env}).stdout)[0].split("@")[1]
                manifest_bytes = registry.blob_path(digest).read_bytes()
                manifest = json.loads(manifest_bytes)
                blobs = {d["digest"]: registry.blob_path(d["digest"]).read_bytes()
                         for d in [*manifest["layers"], manifest["config"]]}
                docker(env, "rmi", name)
                samples["pull: docker pull (dockyardd)"].append(docker(env, "pull", name))
                docker(env, "rmi", name)
                samples["pull: sequential download + tar -x"].append(
                    sequential_pull(registry.url, "bench/big", manifest, root / "extract"))
            with RegistryServer(root=root / f"floor{round_number}") as empty:
                samples["push: sequential upload"].append(
                    sequential_push(empty.url, "bench/big", blobs, manifest_bytes))
            if dockerd_env is not None:
                with RegistryServer(root=root / f"theirs{round_number}") as theirs:
                    name = f"{theirs.address}/bench/big:1"
                    docker(dockerd_env, "load", stdin=image_archive(name, layers))
                    samples[theirs_name("push")].append(docker(dockerd_env, "push", name))
                    docker(dockerd_env, "rmi", name)
                    samples[theirs_name("pull")].append(docker(dockerd_env, "pull", name))
                    docker(dockerd_env, "rmi", name)
            for name in ("registry", "floor", "theirs"):
                shutil.rmtree(root / f"{name}{round_number}", ignore_errors=True)
    compressed = sum(len(b) for b in blobs.values()) / (1 << 20)
    print(f"image: 4 layers, {4 * args.layer_mib} MiB uncompressed, {compressed:.0f} MiB compressed; "
          f"median of {args.rounds} rounds")
    print(f"{'operation':<40}{'median s':>10}{'ratio':>8}")
    for kind in ("pull", "push"):
        names = [n for n in samples if n.startswith(kind)]
        floor = statistics.median(samples[names[1]])
        for name in names:
            median = statistics.median(samples[name])
            print(f"{name:<40}{median:>10.2f}{median / floor:>7.2f}x")
    for kind in ("pull", "push"):
        names = [n for n in samples if n.startswith(kind)]
        ratio = statistics.median(samples[names[0]]) / statistics.median(samples[names[1]])
        print(f"docker {kind} against dockyardd is {ratio:.2f}x the sequential floor "
              f"({'meets' if ratio < 1 else 'MISSES'} the target: faster than the floor)")
    for kind, target in (("pull", 0.7), ("push", 0.7)):
        theirs = [n for n in samples if n.startswith(f"{kind}: docker {kind} (dockerd")]
        if theirs:
            ratio = statistics.median(samples[f"{kind}: docker {kind} (dockyardd)"]) / \
                statistics.median(samples[theirs[0]])
            print(f"docker {kind} against dockyardd takes {ratio:.2f}x dockerd's time "
                  f"({'meets' if ratio < target else 'MISSES'} the target: under {target}x)")
    if not dockerd.available():
        print("dockerd is not installed here: no comparison with it (apt-get install docker.io)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
