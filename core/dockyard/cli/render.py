"""Text output of the CLI that must not need click (see dockyard.cli.main)."""

from __future__ import annotations

import os
import sys

from dockyard import API_VERSION, __version__


def _rows(pairs: list[tuple[str, object]], indent: str, width: int = 18) -> list[str]:
    return [f"{indent}{label + ':':<{width}}{value}" for label, value in pairs]


def client_version_lines() -> list[str]:
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    return ["Client:"] + _rows([
        ("Version", __version__),
        ("API version", API_VERSION),
        ("Python version", ".".join(map(str, sys.version_info[:3]))),
        ("OS/Arch", f"linux/{arch}"),
    ], " ")


def server_version_lines(server: dict) -> list[str]:
    lines = [f"Server: {server.get('Platform', {}).get('Name', '')}"]
    for component in server.get("Components") or []:
        details = component.get("Details") or {}
        lines.append(f" {component['Name']}:")
        pairs = [("Version", component.get("Version", ""))]
        if component["Name"] == "Engine":
            pairs += [
                ("API version", f"{details.get('ApiVersion')} (minimum version "
                                f"{details.get('MinAPIVersion')})"),
                ("Python version", details.get("GoVersion", "")),
                ("OS/Arch", f"{details.get('Os')}/{details.get('Arch')}"),
                ("Kernel", details.get("KernelVersion", "")),
            ]
        lines += _rows(pairs, "  ", 17)
    return lines


def print_version(host: str | None) -> int:
    """`dockyard version`: the client always, the server when it answers."""
    from dockyard.client import APIError, Client, DaemonUnreachable

    print("\n".join(client_version_lines()))
    try:
        server = Client(host).get_json("/version")
    except (DaemonUnreachable, APIError) as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 1
    print()
    print("\n".join(server_version_lines(server)))
    return 0
