"""The container's own /etc/hostname, /etc/hosts and /etc/resolv.conf: written in its
directory at each start, bind-mounted over the -init layer's, and rewritten in place
when its networks change."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.containers import hostconfig, links

if TYPE_CHECKING:
    from dockyard.containers.manager import ContainerManager
    from dockyard.containers.model import Container


def etc_files(manager: ContainerManager, container: Container) -> dict[str, Path]:
    directory = manager.directory(container)
    hostname = container.config.get("Hostname") or container.id[:12]
    if hostconfig.network_mode(container.host_config) == "host":
        hostname = container.config.get("Hostname") or os.uname().nodename
    (directory / "hostname").write_text(hostname + "\n")
    write_hosts(manager, container)
    write_resolv_conf(manager, container)
    return {"hostname": directory / "hostname", "hosts": directory / "hosts",
            "resolv.conf": directory / "resolv.conf"}


def write_hosts(manager: ContainerManager, container: Container) -> None:
    """Rewritten in place once the addresses are known: the file is bind-mounted, so
    the container sees the new content through the same inode."""
    hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes",
             "ff02::2\tip6-allrouters"]
    hosts += [f"{entry.partition(':')[2]}\t{entry.partition(':')[0]}"
              for entry in container.host_config.get("ExtraHosts") or []]
    hosts += links.hosts_entries(manager, container)
    if manager.context.networks is not None:
        hosts += manager.context.networks.hosts_entries(container)
    with open(manager.directory(container) / "hosts", "w") as hosts_file:
        hosts_file.write("\n".join(hosts) + "\n")


def write_resolv_conf(manager: ContainerManager, container: Container) -> None:
    """In place, like the hosts file: a running container joining its first
    user-defined network switches to the embedded resolver, as Docker's does."""
    networks = manager.context.networks
    embedded_dns = networks is not None and networks.uses_embedded_dns(container)
    with open(manager.directory(container) / "resolv.conf", "w") as resolv:
        resolv.write(resolv_conf(container.host_config, embedded_dns))


def resolv_conf(host_config: dict, embedded_dns: bool = False) -> str:
    """The host's resolvers without loopback ones (unreachable from the container's own
    network), or --dns / --dns-search / --dns-option when given. On user-defined
    networks the daemon's resolver at 127.0.0.11 (it forwards what is not a container
    name to the host's resolvers), unless --dns names servers explicitly."""
    servers = list(host_config.get("Dns") or [])
    search = list(host_config.get("DnsSearch") or [])
    options = list(host_config.get("DnsOptions") or [])
    if embedded_dns and not servers:
        servers = ["127.0.0.11"]
        options = options or ["ndots:0"]
    if not servers:
        try:
            text = Path("/etc/resolv.conf").read_text()
        except OSError:
            text = ""
        for line in text.splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "nameserver" and not words[1].startswith("127.") \
                    and words[1] != "::1" and not embedded_dns:
                servers.append(words[1])
            elif words and words[0] == "search" and not search:
                search = words[1:]
            elif words and words[0] == "options" and not options:
                options = words[1:]
    if not servers:
        servers = ["8.8.8.8", "8.8.4.4"]  # Docker's fallback when the host has only loopback ones
    lines = [f"nameserver {server}" for server in servers]
    if search:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"

