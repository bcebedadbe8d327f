"""Images made to order for tests and benchmarks: docker-archive tars with chosen layers.

`image_archive` writes what `docker save` writes (manifest.json, a config, one tar per
layer), so `docker load` or `POST /images/load` turns it into an image with exactly
the layers asked for: the way to get multi-layer images, shared base layers and large
layers without a build or a network.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile


def layer_tar(files: dict[str, bytes]) -> bytes:
    """An uncompressed layer: regular files (parents made as directories), mtime fixed so
    the same files always give the same diff id."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        made: set[str] = set()
        for name in sorted(files):
            parts = name.strip("/").split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if directory not in made:
                    made.add(directory)
                    info = tarfile.TarInfo(directory)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
                    tar.addfile(info)
            info = tarfile.TarInfo(name.strip("/"))
            info.size, info.mode, info.mtime = len(files[name]), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(files[name]))
    return buffer.getvalue()


def random_layer(size: int, name: str = "data.bin") -> bytes:
    """A layer with one incompressible file of `size` bytes (distinct every call)."""
    return layer_tar({name: os.urandom(size)})


def image_archive(tag: str, layers: list[bytes], architecture: str = "amd64",
                  config: dict | None = None) -> bytes:
    """A docker-archive with the given layer tars, bottom first, tagged `tag`."""
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    config_bytes = json.dumps({
        "architecture": architecture,
        "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"], **(config or {})},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": f"layer {i}"}
                    for i in range(len(layers))],
    }).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add(config_name, config_bytes)
        paths = []
        for diff_id, layer in zip(diff_ids, layers, strict=True):
            path = f"{diff_id[7:]}/layer.tar"
            add(path, layer)
            paths.append(path)
        add("manifest.json", json.dumps([{"Config": config_name, "RepoTags": [tag],
                                          "Layers": paths}]).encode())
    return buffer.getvalue()
