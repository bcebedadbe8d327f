"""Creating a container: the image's config merged in, name checks (or a random name),
the networks and mounts it asked for, and its -init and writable layers."""

from __future__ import annotations

import functools
import random
import re
import secrets
from typing import TYPE_CHECKING

from dockyard.containers import hostconfig, links
from dockyard.containers.model import Container, now_rfc3339
from dockyard.containers.mounts import drop_volumes, requested_mounts
from dockyard.errors import Conflict, InvalidParameter

if TYPE_CHECKING:
    from dockyard.containers.manager import ContainerManager

NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_ADJECTIVES = ("brave", "calm", "eager", "fervent", "gallant", "happy", "jolly", "keen", "lucid",
               "modest", "nifty", "quirky", "serene", "stoic", "tender", "upbeat", "vibrant", "zen")
_SURNAMES = ("archimedes", "babbage", "curie", "darwin", "euler", "faraday", "galileo", "hopper",
             "johnson", "kepler", "lovelace", "meitner", "noether", "pascal", "ritchie", "shannon",
             "turing", "wozniak")


def random_name() -> str:
    return f"{random.choice(_ADJECTIVES)}_{random.choice(_SURNAMES)}"


def create(manager: ContainerManager, name: str | None, config: dict, host_config: dict,
           networking_config: dict | None = None) -> Container:
    image_name = config.get("Image") or ""
    if not image_name:
        raise InvalidParameter("No image was given: config.Image is required")
    images = manager.context.images
    if images is None:
        raise InvalidParameter("no storage driver is running: install one (pip install "
                               "dockyard-storage-overlay) to create containers")
    record = images.resolve(image_name)
    image_config = images.config(record)
    from dockyard.containers.ocispec import merge_image_config, validate_config

    merged = merge_image_config(config, image_config.get("config") or {})
    if not merged.get("Cmd") and not merged.get("Entrypoint"):
        raise InvalidParameter("No command specified")
    validate_config(merged)
    host_config = hostconfig.normalize_host_config(host_config)
    runtime_name = host_config.get("Runtime") or manager.context.default_runtime
    if not runtime_name or runtime_name not in manager.context.runtimes:
        known = ", ".join(sorted(manager.context.runtimes)) or "none installed"
        raise InvalidParameter(f"unknown or invalid runtime name: {runtime_name or '(none)'} "
                               f"(available: {known})")
    from dockyard.containers.manager import LiveState  # not at the top: manager.py imports this module
    from dockyard.containers.ocispec import validate_host_config

    validate_host_config(host_config)
    linked = links.resolve(manager, host_config)
    network_settings = _requested_networks(manager, host_config, networking_config, merged.get("MacAddress"))
    container_id = secrets.token_hex(32)
    with manager.lock:
        if name is not None:
            if not NAME.match(name):
                raise InvalidParameter(
                    f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            name = name.lstrip("/")
            for other in manager.records.values():
                if other.name == name:
                    raise Conflict(
                        f'Conflict. The container name "/{name}" is already in use by container '
                        f'"{other.id}". You have to remove (or rename) that container to be able '
                        f"to reuse that name.")
        else:
            taken = {c.name for c in manager.records.values()}
            name = random_name()
            while name in taken:
                name = f"{random_name()}{random.randint(0, 99)}"
        mounts, made_volumes = requested_mounts(manager, merged, host_config)  # last: it creates volumes
        top_chain = images.top_layer(record)
        parent_layer = images.layers.get(top_chain).cache_id if top_chain else None
        entrypoint = merged.get("Entrypoint") or []
        command = merged.get("Cmd") or []
        argv = list(entrypoint) + list(command)
        container = Container(
            id=container_id, name=name, created=now_rfc3339(), image_id=record.id,
            image_name=image_name, config=merged, host_config=host_config,
            path=argv[0], args=argv[1:], driver=manager.context.storage_name,
            runtime=runtime_name, layer_id=container_id, image_layer_id=parent_layer,
            init_layer_id=f"{container_id}-init", image_chain_id=top_chain,
            network_settings=network_settings, mounts=mounts, links=linked,
        )
        try:
            _create_layers(manager, container)
            manager.save(container, durable=True)
        except BaseException:
            manager.context.storage.remove(container.layer_id)
            manager.context.storage.remove(container.init_layer_id)
            drop_volumes(manager, made_volumes)
            raise
        manager.records[container_id] = container
        manager.live[container_id] = LiveState()
    manager.event(container, "create")
    return container


def _requested_networks(manager: ContainerManager, host_config: dict, networking_config: dict | None,
                        mac_address: str | None = None) -> dict:
    """The networks a container joins at each start, with what was asked of each
    endpoint (static address, aliases): Docker's NetworkSettings.Networks, without
    the parts that exist only while it runs."""
    mode = host_config.get("NetworkMode") or "default"
    endpoints = dict((networking_config or {}).get("EndpointsConfig") or {})
    if "default" in endpoints:  # the docker CLI names the default network "default"
        endpoints["bridge" if mode == "default" else mode] = endpoints.pop("default")
    if mode in ("host", "none") or mode.startswith("container:"):
        if mode.startswith("container:"):
            manager.get(mode.split(":", 1)[1])  # 404 for an unknown container, as Docker does
        if endpoints and set(endpoints) != {mode}:
            raise InvalidParameter("conflicting options: container cannot be connected to multiple "
                                   f"networks with one of the networks in {mode} mode")
        return {"Networks": {}}
    networks = manager.context.networks
    if networks is None:
        return {"Networks": {}}
    primary = "bridge" if mode == "default" else mode
    if primary == "bridge" and networks.find("bridge") is None:
        return {"Networks": {}}  # no bridge driver here: loopback only (the daemon warned)
    requested = {}
    for name in dict.fromkeys([primary, *endpoints]):
        network = networks.find(name)
        if network is None:  # not a 404: the docker CLI would take that for a missing image
            raise InvalidParameter(f"network {name} not found")
        asked = dict(endpoints.get(name) or {})
        if name == primary and mac_address and not asked.get("MacAddress"):
            asked["MacAddress"] = mac_address  # Config.MacAddress, as API < 1.44 clients send it
        requested[network.name] = networks.endpoint_config(network, asked)
    return {"Networks": requested}


def _create_layers(manager: ContainerManager, container: Container) -> None:
    """Docker's -init layer holds the mount points the runtime binds over (/etc/hosts,
    /etc/resolv.conf, /etc/hostname, /dev/shm...), so they never show up in `docker
    diff` or in a committed image; the writable layer goes on top of it."""
    import io

    storage = manager.context.storage
    storage.create_layer(container.init_layer_id, container.image_layer_id)
    storage.apply_diff(container.init_layer_id, container.image_layer_id, io.BytesIO(_init_layer_tar()))
    storage.create_writable_layer(container.layer_id, container.init_layer_id)


@functools.cache
def _init_layer_tar() -> bytes:
    """The -init layer's content is the same for every container: its tar is built once."""
    import io
    import tarfile

    entries = io.BytesIO()
    with tarfile.open(fileobj=entries, mode="w") as tar:
        for name, kind in (("dev", tarfile.DIRTYPE), ("dev/pts", tarfile.DIRTYPE),
                           ("dev/shm", tarfile.DIRTYPE), ("proc", tarfile.DIRTYPE),
                           ("sys", tarfile.DIRTYPE), ("etc", tarfile.DIRTYPE),
                           ("etc/hosts", tarfile.REGTYPE), ("etc/hostname", tarfile.REGTYPE),
                           ("etc/resolv.conf", tarfile.REGTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.mode = kind, 0o755 if kind == tarfile.DIRTYPE else 0o644
            tar.addfile(info)
    return entries.getvalue()

