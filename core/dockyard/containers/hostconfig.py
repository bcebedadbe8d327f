"""A container's HostConfig as the manager reads it: Docker's defaults and restart-policy
rules applied at create and update, the network mode, the json-file log limits and
whether the image's healthcheck is on."""

from __future__ import annotations

import re

from dockyard.errors import InvalidParameter


def normalize_host_config(host_config: dict | None) -> dict:
    host_config = dict(host_config or {})
    host_config.setdefault("NetworkMode", "default")
    host_config.setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
    policy = host_config["RestartPolicy"] or {"Name": "no"}
    name = policy.get("Name") or "no"
    if name not in ("no", "always", "on-failure", "unless-stopped"):
        raise InvalidParameter(f"invalid restart policy '{name}'")
    if name != "on-failure" and policy.get("MaximumRetryCount"):
        raise InvalidParameter("invalid restart policy: maximum retry count can only be used with "
                               "'on-failure'")
    if host_config.get("AutoRemove") and name != "no":
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    log_config = host_config.get("LogConfig") or {}
    if (log_config.get("Type") or "json-file") not in ("json-file",):
        raise InvalidParameter(f"logging driver {log_config.get('Type')!r} is not supported "
                               f"(only json-file)")
    host_config["LogConfig"] = {"Type": "json-file", "Config": log_config.get("Config") or {}}
    return host_config


def network_mode(host_config: dict) -> str:
    mode = host_config.get("NetworkMode") or "default"
    return "bridge" if mode == "default" else mode


def _parse_size(value: str) -> int:
    match = re.fullmatch(r"(\d+)([kmg]?)b?", value.strip().lower())
    if not match:
        raise InvalidParameter(f"invalid log size {value!r}: use e.g. 10m")
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1 << 20, "g": 1 << 30}[match.group(2)]


def log_size(host_config: dict) -> int:
    value = ((host_config.get("LogConfig") or {}).get("Config") or {}).get("max-size")
    return _parse_size(value) if value else 0


def log_files(host_config: dict) -> int:
    value = ((host_config.get("LogConfig") or {}).get("Config") or {}).get("max-file")
    try:
        return max(1, int(value)) if value else 1
    except ValueError:
        raise InvalidParameter(f"invalid max-file {value!r}: give a number") from None


def healthcheck_enabled(healthcheck: dict) -> bool:
    test = healthcheck.get("Test") or []
    return bool(test) and test[0] != "NONE"

