"""`--change` instructions (`docker import -c`, `docker commit -c`) applied to an image config.

They are Dockerfile instructions restricted to those that only edit the config:
CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR.
"""

from __future__ import annotations

import json
import shlex

from dockyard.errors import InvalidParameter

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER",
           "VOLUME", "WORKDIR")


def _command(argument: str) -> list[str]:
    """JSON form `["a", "b"]` as is; shell form runs under /bin/sh -c, as Docker does."""
    stripped = argument.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", stripped]


def _pairs(instruction: str, argument: str) -> list[tuple[str, str]]:
    """`K=V K2="v 2"`, or the legacy single-pair form `K V...`."""
    words = shlex.split(argument)
    if not words:
        raise InvalidParameter(f"{instruction} requires at least one argument")
    if "=" not in words[0]:
        if instruction == "LABEL" or len(words) < 2:
            raise InvalidParameter(f"{instruction} needs key=value pairs, got {argument!r}")
        return [(words[0], argument.strip()[len(words[0]):].strip())]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InvalidParameter(f"{instruction}: {word!r} is not key=value")
        pairs.append((key, value))
    return pairs


def apply_changes(config: dict, changes: list[str]) -> dict:
    """Return a copy of a container config (`Cmd`, `Env`, ... keys) with changes applied."""
    result = json.loads(json.dumps(config or {}))
    for change in changes:
        change = change.strip()
        if not change:
            continue
        instruction, _, argument = change.partition(" ")
        instruction = instruction.upper()
        if instruction not in ALLOWED:
            raise InvalidParameter(f"{instruction} is not a valid change command")
        if instruction == "CMD":
            result["Cmd"] = _command(argument)
        elif instruction == "ENTRYPOINT":
            result["Entrypoint"] = _command(argument)
        elif instruction == "ENV":
            env = [e for e in result.get("Env") or []]
            for key, value in _pairs("ENV", argument):
                env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
            result["Env"] = env
        elif instruction == "LABEL":
            labels = dict(result.get("Labels") or {})
            labels.update(_pairs("LABEL", argument))
            result["Labels"] = labels
        elif instruction == "EXPOSE":
            ports = dict(result.get("ExposedPorts") or {})
            for port in argument.split():
                number, _, protocol = port.partition("/")
                if not number.isdigit() or protocol not in ("", "tcp", "udp", "sctp"):
                    raise InvalidParameter(f"EXPOSE: invalid port {port!r}")
                ports[f"{number}/{protocol or 'tcp'}"] = {}
            result["ExposedPorts"] = ports
        elif instruction == "VOLUME":
            volumes = dict(result.get("Volumes") or {})
            stripped = argument.strip()
            paths = json.loads(stripped) if stripped.startswith("[") else stripped.split()
            for path in paths:
                volumes[path] = {}
            result["Volumes"] = volumes
        elif instruction == "ONBUILD":
            result["OnBuild"] = [*(result.get("OnBuild") or []), argument.strip()]
        else:
            key = {"STOPSIGNAL": "StopSignal", "USER": "User", "WORKDIR": "WorkingDir"}[instruction]
            if not argument.strip():
                raise InvalidParameter(f"{instruction} requires an argument")
            result[key] = argument.strip()
    return result
