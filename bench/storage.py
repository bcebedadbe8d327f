"""Storage: applying a layer tar, and making a container's rootfs, measured side by side.

(a) `apply_layer` against `tar -x` of the same ~200 MiB layer tar (3000 small files and
    4 large ones) into an empty directory, in both whiteout styles ("delete" is what vfs
    uses, "overlay" what the overlay driver uses). Target (issue #3): within 1.5x of tar.
(b) a container's rootfs: create_writable_layer + mount + unmount over a 1 GiB image and
    over a 2 MiB one. Target for overlay: the big image within 1.2x of the small one
    (the cost must not grow with the image). vfs, which copies the image, for contrast.

The contenders run alternately within each round, with the page cache flushed before
every timed run (this machine is noisy: only ratios from one run mean anything). Needs
root. Everything lives in one temporary directory that is removed at the end, mounts
included, whatever happens.

    python bench/storage.py [--rounds 5] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from dockyard.daemon.pluginmanager import PluginManager
from dockyard.plugin import DriverContext
from dockyard.plugin.archive import apply_layer
from dockyard.plugin.testing.storage import mounts_under

MiB = 1 << 20
_BLOCK = os.urandom(4 * MiB)  # file content: random, so no filesystem can cheat on it


class _Content(io.RawIOBase):
    """`size` bytes of file content, without holding them in memory."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.left, len(_BLOCK))
        buffer[:count] = _BLOCK[:count]
        self.left -= count
        return count


def write_layer(out, small_files: int, small_size: tuple[int, int], large_files: int, large_size: int,
                seed: int = 1) -> int:
    """Write a layer tar to the binary file `out`; returns the bytes of content in it."""
    rng = random.Random(seed)
    total = 0
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for number in range(small_files):
            if number % 30 == 0:
                directory = tarfile.TarInfo(f"usr/lib/d{number // 30}")
                directory.type, directory.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(directory)
            info = tarfile.TarInfo(f"usr/lib/d{number // 30}/f{number}.so")
            info.size, info.mode, info.mtime = rng.randint(*small_size), 0o644, 1_700_000_000
            tar.addfile(info, io.BufferedReader(_Content(info.size)))
            total += info.size
        for number in range(large_files):
            info = tarfile.TarInfo(f"opt/large{number}.bin")
            info.size, info.mode = large_size, 0o644
            tar.addfile(info, io.BufferedReader(_Content(info.size), buffer_size=MiB))
            total += info.size
    return total


def generated_layer(**shape) -> tuple[io.BufferedReader, threading.Thread]:
    """A layer tar streamed through a pipe as it is generated (no copy of it on disk)."""
    read_end, write_end = os.pipe()
    reader = open(read_end, "rb", buffering=MiB)

    def produce() -> None:
        with open(write_end, "wb", buffering=MiB) as out:
            write_layer(out, **shape)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    return reader, thread


def timed(action: Callable[[], object]) -> float:
    os.sync()  # the previous run's dirty pages must not be written back on this run's clock
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    return path


def row(label: str, seconds: float, base: float | None, note: str = "") -> str:
    shown = f"{seconds * 1000:8.1f} ms" if seconds < 1 else f"{seconds:8.3f} s "
    ratio = f"{seconds / base:6.2f}x" if base else "      "
    return f"  {label:<38}{shown}  {ratio}  {note}".rstrip()


def apply_file(layer: Path, target: Path, whiteouts: str) -> int:
    with open(layer, "rb") as stream:
        return apply_layer(stream, target, whiteouts)


def make_rootfs(driver, container: str, image: str) -> None:
    driver.create_writable_layer(container, image)
    driver.mount(container)
    driver.unmount(container)


def bench_apply(root: Path, rounds: int) -> list[str]:
    layer = root / "layer.tar"
    with open(layer, "wb") as out:
        content = write_layer(out, small_files=3000, small_size=(200, 16_000), large_files=4,
                              large_size=44 * MiB)
    target = root / "target"
    contenders: dict[str, Callable[[], object]] = {
        "tar -x": lambda: subprocess.run(["tar", "-xf", str(layer), "-C", str(target)], check=True),
        "apply_layer, whiteouts=delete": functools.partial(apply_file, layer, target, "delete"),
        "apply_layer, whiteouts=overlay": functools.partial(apply_file, layer, target, "overlay"),
    }
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, action in contenders.items():
            fresh_dir(target)
            samples[name].append(timed(action))
    shutil.rmtree(target)
    size = layer.stat().st_size
    layer.unlink()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["tar -x"]
    lines = [f"(a) applying a {size / MiB:.0f} MiB layer tar ({content / MiB:.0f} MiB of content: "
             "3000 small files, 4 large) into an empty directory"]
    for name, median in medians.items():
        lines.append(row(name, median, base, "" if name == "tar -x" else "(target <= 1.50x)"))
    return lines


def bench_rootfs(root: Path, rounds: int, vfs_rounds: int) -> list[str]:
    plugins = PluginManager(strict=True).load_all()
    lines = ["(b) a container rootfs: create_writable_layer + mount + unmount"]
    for name, driver_rounds in (("overlay", rounds), ("vfs", vfs_rounds)):
        spec = plugins.find("storage", name)
        reason = spec.why_unsupported()
        if reason:
            lines.append(f"  {name}: skipped ({reason})")
            continue
        home = root / name
        home.mkdir()
        driver = spec.factory(DriverContext(kind="storage", name=name, home=home, exec_root=root))
        try:
            lines += _rootfs_rounds(driver, name, driver_rounds)
        finally:
            driver.recover(set())  # unmounts and deletes everything the bench made
            shutil.rmtree(home)
    return lines


def _rootfs_rounds(driver, name: str, rounds: int) -> list[str]:
    images = {
        "2 MiB image": dict(small_files=100, small_size=(20_000, 22_000), large_files=0, large_size=0),
        "1 GiB image": dict(small_files=1000, small_size=(16_000, 17_000), large_files=21,
                            large_size=48 * MiB),
    }
    for image, shape in images.items():
        stream, producer = generated_layer(**shape)
        driver.create_layer(image.replace(" ", "-"), None)
        driver.apply_diff(image.replace(" ", "-"), None, stream)
        producer.join()
        stream.close()
    samples: dict[str, list[float]] = {image: [] for image in images}
    for number in range(rounds):
        for image in images:
            container = f"container-{number}-{image.split()[0]}"
            samples[image].append(timed(functools.partial(make_rootfs, driver, container,
                                                          image.replace(" ", "-"))))
            driver.remove(container)
    small, big = (statistics.median(samples[image]) for image in images)
    target = "(target <= 1.20x)" if name == "overlay" else "(a full copy: no target)"
    return [row(f"{name}, 2 MiB image", small, small),
            row(f"{name}, 1 GiB image", big, small, target)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--vfs-rounds", type=int, default=2, help="vfs copies 1 GiB each round")
    parser.add_argument("--dir", default=None, help="where to work (default: the temp dir)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/storage.py needs root: tar -x keeps owners only as root, overlay mounts need it")
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="dybench-storage-", dir=args.dir))
    try:
        lines = bench_apply(root, args.rounds)
        lines += bench_rootfs(root, args.rounds * 4, args.vfs_rounds)
    finally:
        for point in sorted(mounts_under(root), reverse=True):  # only after a crash
            subprocess.run(["umount", "-l", point], check=False)
        shutil.rmtree(root, ignore_errors=True)
    print(f"storage bench: medians of {args.rounds} rounds ((b): {args.rounds * 4} for overlay, "
          f"{args.vfs_rounds} for vfs); ratios against the first line of each block")
    print("\n".join(lines))
    print(f"(took {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
