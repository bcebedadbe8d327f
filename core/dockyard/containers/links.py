"""Legacy links (`--link name:alias`, HostConfig.Links) on the default bridge.

A link gives the parent container the child's address under the alias: an /etc/hosts
line (alias, the child's hostname and name) and the ALIAS_PORT_*, ALIAS_NAME and
ALIAS_ENV_* variables, fixed when the parent starts. The parent's record keeps alias ->
child id, so a renamed child stays linked and a removed one simply drops out. On a
user-defined network Docker registers no link: names resolve there already, and the
CLI copies `--link` into the endpoint's Links, which the resolver answers for that
container alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dockyard.containers import hostconfig
from dockyard.errors import Conflict, InvalidParameter, NotFound

if TYPE_CHECKING:
    from dockyard.containers.manager import ContainerManager
    from dockyard.containers.model import Container

DEFAULT_BRIDGE = "bridge"
HOST_AND_LINKS = ("conflicting options: host type networking can't be used with links. "
                  "This would result in undefined behavior")
CONTAINER_AND_LINKS = ("conflicting options: container type network can't be used with links. "
                       "This would result in undefined behavior")


def parse_link(value: str) -> tuple[str, str]:
    """"redis:db" -> ("redis", "db"); "redis" -> ("redis", "redis")."""
    name, _, alias = value.partition(":")
    name, alias = name.strip("/"), (alias or name).strip("/")
    if not name or not alias or ":" in alias:
        raise InvalidParameter(f"invalid link format: {value!r}: use name:alias (or name)")
    return name, alias


def resolve(manager: ContainerManager, host_config: dict) -> dict[str, str]:
    """alias -> child id for a container being created, with Docker's checks."""
    wanted = host_config.get("Links") or []
    if not wanted:
        return {}
    mode = hostconfig.network_mode(host_config)
    if mode == "host":
        raise InvalidParameter(HOST_AND_LINKS)
    if mode.startswith("container:"):
        raise InvalidParameter(CONTAINER_AND_LINKS)
    if mode not in ("default", DEFAULT_BRIDGE, "none"):
        return {}  # user-defined network: the endpoint's Links do the work
    links = {}
    for value in wanted:
        name, alias = parse_link(value)
        try:
            child = manager.get(name)
        except NotFound as exc:
            raise InvalidParameter(f"could not get container for {name}: {exc}") from None
        while (child_mode := hostconfig.network_mode(child.host_config)).startswith("container:"):
            child = manager.get(child_mode.split(":", 1)[1])
        if child_mode == "host":
            raise InvalidParameter(HOST_AND_LINKS)
        links[alias] = child.id
    return links


def children(manager: ContainerManager, container: Container) -> list[tuple[str, Container]]:
    """(alias, child) for the links whose child still exists."""
    found = []
    for alias, child_id in (container.links or {}).items():
        child = manager.records.get(child_id)
        if child is not None:
            found.append((alias, child))
    return found


def _bridge_address(container: Container) -> str:
    endpoint = (container.network_settings.get("Networks") or {}).get(DEFAULT_BRIDGE) or {}
    return endpoint.get("IPAddress") or ""


def _on_default_bridge(container: Container) -> bool:
    return DEFAULT_BRIDGE in (container.network_settings.get("Networks") or {})


def link_environment(manager: ContainerManager, container: Container) -> list[str]:
    """The variables a starting parent gets; Conflict when a child is not running."""
    if not _on_default_bridge(container):
        return []
    env: list[str] = []
    for alias, child in children(manager, container):
        link_name = f"/{container.name}/{alias}"
        if not child.running:
            raise Conflict(f"Cannot link to a non running container: /{child.name} AS {link_name}")
        address = _bridge_address(child)
        if not address:
            raise Conflict(f"container {child.id} not attached to default bridge network")
        env += environment(link_name, address, child.config.get("Env") or [],
                           list(child.config.get("ExposedPorts") or {}))
    return env


def _port_key(port: str) -> tuple[int, int]:
    number, _, protocol = port.partition("/")
    return int(number), 0 if (protocol or "tcp").lower() == "tcp" else 1


def _next_contiguous(numbers: list[int], value: int, index: int) -> int:
    """The last index of the run starting at `index` (moby's nextContiguous, whose run
    also takes a repeated number, 80/tcp then 80/udp, as the next one)."""
    for later in range(index + 1, len(numbers)):
        if numbers[later] > value + 1:
            return later - 1
        value += 1
    return len(numbers) - 1


def environment(link_name: str, address: str, child_env: list[str], exposed: list[str]) -> list[str]:
    """Docker's link variables (moby daemon/links ToEnv), in its order: the first port,
    each contiguous range, each port, the name, then the child's own variables but
    HOME and PATH."""
    alias = link_name.rsplit("/", 1)[-1].upper().replace("-", "_")
    ports = sorted((port if "/" in port else f"{port}/tcp" for port in exposed), key=_port_key)
    env = []
    if ports:
        number, _, protocol = ports[0].partition("/")
        env.append(f"{alias}_PORT={protocol}://{address}:{number}")
    numbers = [_port_key(port)[0] for port in ports]
    index = 0
    while index < len(ports):
        end = _next_contiguous(numbers, numbers[index], index)
        if end > index + 1:  # three or more in a row make a range, as in Docker
            first, _, protocol = ports[index].partition("/")
            last, _, last_protocol = ports[end].partition("/")
            prefix = f"{alias}_PORT_{first}_{protocol.upper()}"
            env += [f"{prefix}_START={protocol}://{address}:{first}", f"{prefix}_ADDR={address}",
                    f"{prefix}_PROTO={protocol}", f"{prefix}_PORT_START={first}",
                    f"{alias}_PORT_{first}_{last_protocol.upper()}_END={last_protocol}://{address}:{last}",
                    f"{alias}_PORT_{first}_{last_protocol.upper()}_PORT_END={last}"]
            index = end + 1
        else:
            index += 1
    for port in ports:
        number, _, protocol = port.partition("/")
        prefix = f"{alias}_PORT_{number}_{protocol.upper()}"
        env += [f"{prefix}={protocol}://{address}:{number}", f"{prefix}_ADDR={address}",
                f"{prefix}_PORT={number}", f"{prefix}_PROTO={protocol}"]
    env.append(f"{alias}_NAME={link_name}")
    for entry in child_env:
        name, equals, value = entry.partition("=")
        if equals and name not in ("HOME", "PATH"):
            env.append(f"{alias}_ENV_{name}={value}")
    return env


def hosts_entries(manager: ContainerManager, container: Container) -> list[str]:
    """/etc/hosts lines: the child's address, then alias, hostname and (if not the alias) name."""
    if not _on_default_bridge(container):
        return []
    entries = []
    for alias, child in children(manager, container):
        address = _bridge_address(child)
        if not address:
            continue
        names = [alias, child.config.get("Hostname") or child.id[:12]]
        if alias != child.name:
            names.append(child.name)
        entries.append(f"{address}\t{' '.join(names)}")
    return entries


def inspect_links(manager: ContainerManager, container: Container) -> list[str] | None:
    """HostConfig.Links as inspect shows it: "/child:/parent/alias"."""
    shown = [f"/{child.name}:/{container.name}/{alias}" for alias, child in children(manager, container)]
    return shown or None


def remove_link(manager: ContainerManager, link_name: str) -> None:
    """DELETE /containers/{parent}/{alias}?link=1: the parent forgets the alias; a running
    parent's /etc/hosts loses the line at once (its variables stay, as in Docker)."""
    parent_name, _, alias = link_name.strip("/").rpartition("/")
    if not parent_name:
        raise Conflict("Conflict, cannot remove the default link name of the container")
    try:
        parent = manager.get(parent_name)
    except NotFound:
        raise NotFound(f"Cannot get parent /{parent_name} for link name /{link_name.strip('/')}") from None
    with manager.lock:
        if alias not in (parent.links or {}):
            raise NotFound(f"No such container: {link_name}")
        parent.links = {name: child for name, child in parent.links.items() if name != alias}
        manager.save(parent)
    if parent.running:
        from dockyard.containers import etc_files

        etc_files.write_hosts(manager, parent)
