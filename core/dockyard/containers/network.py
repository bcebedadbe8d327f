"""A container's network attachment: its own network namespace, joining its networks
at each start and leaving them when the run ends, and `docker network connect` and
`disconnect` of a container that may be running."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dockyard.containers import etc_files, hostconfig
from dockyard.errors import Forbidden
from dockyard.plugin.netns import create_namespace, remove_namespace

if TYPE_CHECKING:
    from dockyard.containers.manager import ContainerManager
    from dockyard.containers.model import Container

log = logging.getLogger(__name__)


# What a stopped container's endpoint keeps: what was asked of it, for the next start.
_ASKED = ("NetworkID", "IPAMConfig", "Aliases", "Links", "MacAddress", "_MacAsked")


def make_network_namespace(manager: ContainerManager, container: Container) -> str | None:
    """The container's own network namespace, made by the engine (not the runtime) and
    named under <exec-root>/netns, for every mode but host and container:<id>."""
    mode = hostconfig.network_mode(container.host_config)
    if mode == "host" or mode.startswith("container:"):
        return None
    path = manager.netns_path(container)
    remove_namespace(path)  # a stale one of a crashed run
    create_namespace(path)
    driver = manager.context.network_drivers.get("none")
    if driver is not None and hasattr(driver, "bring_up_loopback"):
        driver.bring_up_loopback(str(path))
    return str(path)


def join_network(manager: ContainerManager, container: Container, netns_path: str | None) -> None:
    if netns_path is None:  # host, or another container's namespace
        return
    networks = manager.context.networks
    if networks is None or not container.network_settings.get("Networks"):
        return
    wired = networks.attach(container, netns_path)
    settings = container.network_settings
    for name, endpoint in wired["Networks"].items():
        settings["Networks"][name] = {**settings["Networks"].get(name, {}), **endpoint}
    settings["Ports"] = wired["Ports"]
    settings["SandboxKey"] = netns_path
    if wired.get("Gateway"):  # the docker_gwbridge endpoint: not shown, but restored
        settings["_Gateway"] = wired["Gateway"]
    etc_files.write_hosts(manager, container)


def leave_networks(manager: ContainerManager, container: Container) -> None:
    """Unwire a container that no longer runs; what the user asked of each endpoint
    (static address, aliases) stays for the next start."""
    networks = manager.context.networks
    if networks is not None:
        networks.detach(container)
    try:
        remove_namespace(manager.netns_path(container))
    except OSError as exc:
        log.warning("%s: %s", container.short_id, exc)
    settings = container.network_settings
    for name, endpoint in (settings.get("Networks") or {}).items():
        settings["Networks"][name] = {key: endpoint.get(key) for key in _ASKED if key in endpoint}
        if not (endpoint.get("IPAMConfig") or {}).get("IPv4Address") and not endpoint.get("_MacAsked"):
            settings["Networks"][name]["MacAddress"] = ""  # derived from the address: made anew
    settings.pop("Ports", None)
    settings.pop("SandboxKey", None)
    settings.pop("_Gateway", None)



def connect_network(manager: ContainerManager, name_or_id: str, network_name: str,
                    endpoint_config: dict | None) -> None:
    networks = manager.context.networks
    container = manager.get(name_or_id)
    network = networks.get(network_name)
    mode = hostconfig.network_mode(container.host_config)
    if mode in ("host", "none") or mode.startswith("container:"):
        raise Forbidden(f"container {container.name} shares the network stack of {mode}: it cannot be "
                        "connected to other networks")
    if network.name in ("host", "none"):
        raise Forbidden(f"container cannot be connected to the {network.name} network: choose it at "
                        f"create with --network {network.name}")
    live = manager.live[container.id]
    with live.lock:
        attached = container.network_settings.setdefault("Networks", {})
        if network.name in attached:
            raise Forbidden(f"endpoint with name {container.name} already exists in network "
                            f"{network.name}")
        wanted = networks.endpoint_config(network, endpoint_config)
        if container.running:
            wanted = {**wanted, **networks.connect_running(network, container, wanted)}
        attached[network.name] = wanted
        manager.save(container)
        if container.running:
            etc_files.write_hosts(manager, container)
            etc_files.write_resolv_conf(manager, container)


def disconnect_network(manager: ContainerManager, name_or_id: str, network_name: str,
                       force: bool = False) -> None:
    networks = manager.context.networks
    container = manager.get(name_or_id)
    network = networks.get(network_name)
    live = manager.live[container.id]
    with live.lock:
        attached = container.network_settings.setdefault("Networks", {})
        if network.name not in attached:
            raise Forbidden(f"container {container.id} is not connected to network {network.name}")
        if container.running:
            networks.disconnect_running(network, container)
        del attached[network.name]
        manager.save(container)
        if container.running:
            etc_files.write_hosts(manager, container)


def using_network(manager: ContainerManager, network_id: str) -> list[str]:
    return [c.id for c in manager.all() if any(
        (e or {}).get("NetworkID") == network_id
        for e in (c.network_settings.get("Networks") or {}).values())]

