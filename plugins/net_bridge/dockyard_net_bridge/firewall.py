"""Owns the nftables side of bridge networks, driven through the `nft` binary: one table per
network (family ip, named dockyard-<network id[:12]>), so two daemons never share a table and
deleting a network is `delete table`.

A table holds, for its bridge B and subnet S:
  postrouting  masquerade of S leaving by another interface (not for internal networks, nor
               with enable_ip_masquerade=false); of 127.0.0.0/8 leaving by B (a published
               port reached through localhost); of S coming back to B after a DNAT (hairpin:
               a container reaching a sibling, or itself, through a host address).
  forward      into B from elsewhere only replies and DNATed traffic: new connections from
               other networks or from outside straight to container addresses are dropped
               (stricter than Docker, deliberately). Internal networks: nothing leaves or
               enters B. The network's own egress is accepted.
  prerouting,  `fib daddr type local` jumps to `published`, where each published port is
  output       one rule `[ip daddr H] PROTO dport P dnat to C:p` commented with its endpoint id.
  raw          member-to-member traffic skips connection tracking (see table_script).

Published ports are appended by join and deleted by handle in leave: additions are nft's
cheap transactions (about 5 ms), while anything that deletes waits for the kernel's RCU
grace period (15 ms or more), so only leave and whole-table rewrites pay that.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable

from dockyard.plugin import NetworkDriverError

from .options import BridgeNetwork
from .state import EndpointRecord

PUBLISHED = "published"
_MISSING = "No such file or directory"
_TIMEOUT = 30


def _port_rules(network: BridgeNetwork, record: EndpointRecord) -> list[str]:
    rules = []
    if record.address is None:
        return rules
    for binding in record.ports:
        host_ip = binding.host_ip or network.host_binding
        match = f"ip daddr {host_ip} " if host_ip is not None else ""
        rules.append(f"{match}{binding.protocol} dport {binding.host_port} "
                     f"dnat to {record.address.ip}:{binding.container_port} "
                     f'comment "{record.endpoint_id}"')
    return rules


def table_script(network: BridgeNetwork, endpoints: Iterable[EndpointRecord]) -> str:
    """The whole table, replacing any earlier one in the same (atomic) transaction."""
    bridge, subnet, table = f'"{network.bridge}"', network.subnet, network.table
    postrouting = []
    if network.masquerade and not network.internal:
        postrouting.append(f"ip saddr {subnet} oifname != {bridge} masquerade")
    postrouting += [f"ip saddr 127.0.0.0/8 oifname {bridge} masquerade",
                    f"ip saddr {subnet} oifname {bridge} ct status dnat masquerade"]
    if network.internal:
        forward = [f"iifname {bridge} oifname != {bridge} drop",
                   f"oifname {bridge} iifname != {bridge} drop"]
    else:
        forward = [f"oifname {bridge} iifname != {bridge} ct state established,related accept",
                   f"oifname {bridge} iifname != {bridge} ct status dnat accept",
                   f"oifname {bridge} iifname != {bridge} drop",
                   f"iifname {bridge} accept"]
    published = [rule for record in endpoints for rule in _port_rules(network, record)]

    def chain(name: str, header: str | None, rules: list[str]) -> str:
        lines = [f"\tchain {name} {{"]
        if header:
            lines.append(f"\t\t{header}")
        lines += [f"\t\t{rule}" for rule in rules]
        return "\n".join(lines + ["\t}"])

    # Traffic between two members of the network never needs NAT or a forward verdict; with
    # br_netfilter on (bridge-nf-call-iptables=1, as here), it would still pay for connection
    # tracking on every packet. The gateway is left out: replies to hairpin NAT come to it.
    untracked = [f"iifname {bridge} ip saddr {subnet} ip daddr {subnet} ip daddr != {network.gateway.ip} "
                 "notrack"]
    body = "\n".join([
        chain("raw", "type filter hook prerouting priority raw; policy accept;", untracked),
        chain(PUBLISHED, None, published),
        chain("prerouting", "type nat hook prerouting priority dstnat; policy accept;",
              [f"fib daddr type local jump {PUBLISHED}"]),
        chain("output", "type nat hook output priority -100; policy accept;",
              [f"fib daddr type local jump {PUBLISHED}"]),
        chain("postrouting", "type nat hook postrouting priority srcnat; policy accept;", postrouting),
        chain("forward", "type filter hook forward priority filter; policy accept;", forward),
    ])
    return f"add table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n{body}\n}}\n"


class Firewall:
    def __init__(self) -> None:
        self._nft = shutil.which("nft") or "/usr/sbin/nft"

    def _run(self, arguments: list[str], script: str | None = None) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([self._nft, *arguments], input=script, capture_output=True, text=True,
                                  timeout=_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NetworkDriverError(f"could not run nft ({exc}): is nftables installed and working?") \
                from None

    def _apply(self, script: str, what: str) -> None:
        result = self._run(["-f", "-"], script)
        if result.returncode != 0:
            raise NetworkDriverError(f"nft refused the rules for {what}: {result.stderr.strip()}")

    def apply_table(self, network: BridgeNetwork, endpoints: Iterable[EndpointRecord]) -> None:
        self._apply(table_script(network, endpoints), f"network {network.network_id[:12]}")

    def delete_table(self, table: str) -> None:
        self._apply(f"add table ip {table}\ndelete table ip {table}\n", f"table {table}")

    def add_ports(self, network: BridgeNetwork, record: EndpointRecord) -> bool:
        """Append an endpoint's port rules; False when the network's table is missing (the
        caller rewrites the whole table then)."""
        rules = _port_rules(network, record)
        if not rules:
            return True
        script = "".join(f"add rule ip {network.table} {PUBLISHED} {rule}\n" for rule in rules)
        result = self._run(["-f", "-"], script)
        if result.returncode == 0:
            return True
        if _MISSING in result.stderr:
            return False
        raise NetworkDriverError(f"nft refused the published ports of endpoint {record.endpoint_id[:12]}: "
                                 f"{result.stderr.strip()}")

    def port_rule_handles(self, table: str) -> dict[str, list[int]]:
        """Endpoint id -> handles of its rules in the table's `published` chain."""
        result = self._run(["-j", "-a", "list", "chain", "ip", table, PUBLISHED])
        if result.returncode != 0:
            if _MISSING in result.stderr:
                return {}
            raise NetworkDriverError(f"nft could not list table {table}: {result.stderr.strip()}")
        handles: dict[str, list[int]] = {}
        for item in json.loads(result.stdout).get("nftables", []):
            rule = item.get("rule")
            if rule and rule.get("comment"):
                handles.setdefault(rule["comment"], []).append(rule["handle"])
        return handles

    def remove_ports(self, table: str, endpoint_id: str) -> None:
        """Delete exactly this endpoint's port rules; nothing to delete is not an error."""
        for _attempt in range(3):  # a handle may vanish under us (a concurrent table rewrite)
            handles = self.port_rule_handles(table).get(endpoint_id, [])
            if not handles:
                return
            script = "".join(f"delete rule ip {table} {PUBLISHED} handle {h}\n" for h in handles)
            result = self._run(["-f", "-"], script)
            if result.returncode == 0:
                return
            if _MISSING not in result.stderr:
                break
        raise NetworkDriverError(f"nft could not delete the published ports of endpoint {endpoint_id[:12]} "
                                 f"from table {table}: {result.stderr.strip()}")

    def tables(self) -> list[str]:
        result = self._run(["list", "tables", "ip"])
        if result.returncode != 0:
            raise NetworkDriverError(f"nft could not list tables: {result.stderr.strip()}")
        return [line.split()[-1] for line in result.stdout.splitlines() if line.startswith("table ip ")]
