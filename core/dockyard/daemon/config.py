"""The daemon's configuration: defaults, then daemon.yaml, then command-line flags.

Keys in daemon.yaml are spelled like dockerd's daemon.json keys (`data-root`,
`storage-driver`, ...). Unknown keys and wrong types are errors that name the key: a
typo must never be silently ignored by a daemon that then runs with defaults.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_SOCKET = "unix:///run/dockyard.sock"
DEFAULT_CONFIG_FILE = "/etc/dockyard/daemon.yaml"
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


class ConfigError(Exception):
    pass


@dataclass
class DaemonConfig:
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_SOCKET])
    data_root: str = "/var/lib/dockyard"
    exec_root: str = "/run/dockyard"
    pidfile: str = "/run/dockyard.pid"
    group: str = "dockyard"
    storage_driver: str = ""
    storage_opts: list[str] = field(default_factory=list)
    default_runtime: str = ""
    registry_driver: str = ""
    registry_opts: list[str] = field(default_factory=list)  # key=value for the registry client
    log_level: str = "info"
    debug: bool = False
    tls: bool = False
    tlsverify: bool = False
    tlscacert: str = ""
    tlscert: str = ""
    tlskey: str = ""
    labels: list[str] = field(default_factory=list)
    strict_plugins: bool = False
    live_restore: bool = True
    insecure_registries: list[str] = field(default_factory=list)
    registry_mirrors: list[str] = field(default_factory=list)
    # per-registry TLS files, as Docker's /etc/docker/certs.d: <dir>/<host:port>/ca.crt
    registry_certs_dir: str = "/etc/dockyard/certs.d"
    max_concurrent_downloads: int = 3
    max_concurrent_uploads: int = 5
    bridge: str = "dockyard0"  # the default bridge network's Linux bridge (Docker's docker0)
    bip: str = ""  # its address and subnet, e.g. 172.17.0.1/16; empty: the first free pool
    # a multi-host cluster: the store its daemons share, and the address others reach this one at
    cluster_store: str = ""  # SCHEME://HOST:PORT[,HOST:PORT...][/PREFIX], e.g. etcd://10.0.0.1:2379
    cluster_advertise: str = ""  # ADDRESS or INTERFACE, optionally :PORT (Docker's form)
    cluster_store_opts: list[str] = field(default_factory=list)  # key=value: kv.cacertfile, discovery.ttl

    @property
    def data_root_path(self) -> Path:
        return Path(self.data_root)

    @property
    def exec_root_path(self) -> Path:
        return Path(self.exec_root)

    def storage_options(self) -> dict[str, str]:
        return _key_values(self.storage_opts, "storage option")

    def registry_options(self) -> dict[str, str]:
        return _key_values(self.registry_opts, "registry option")

    def cluster_store_options(self) -> dict[str, str]:
        return _key_values(self.cluster_store_opts, "cluster store option")

    def cluster_store_url(self) -> ClusterStoreURL | None:
        return parse_cluster_store(self.cluster_store) if self.cluster_store else None


@dataclass(frozen=True)
class ClusterStoreURL:
    scheme: str  # the store driver's name
    endpoints: tuple[str, ...]
    prefix: str


def parse_cluster_store(url: str) -> ClusterStoreURL:
    """`etcd://h1:2379,h2:2379/team` -> etcd, (h1:2379, h2:2379), "team"."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise ConfigError(f"--cluster-store {url!r} must look like etcd://HOST:PORT[,HOST:PORT...][/PREFIX]")
    hosts, _, prefix = rest.partition("/")
    endpoints = tuple(h.strip() for h in hosts.split(",") if h.strip())
    if not endpoints:
        raise ConfigError(f"--cluster-store {url!r} names no endpoint: give HOST:PORT after {scheme}://")
    return ClusterStoreURL(scheme.lower(), endpoints, prefix.strip("/") or "dockyard")


def _key_values(items: list[str], what: str) -> dict[str, str]:
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} {item!r} must look like key=value")
        options[key.strip()] = value.strip()
    return options


_FIELDS = {f.name.replace("_", "-"): f for f in dataclasses.fields(DaemonConfig)}


def _check_type(key: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"'{key}' must be true or false, not {value!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"'{key}' must be a non-negative integer, not {value!r}")
    elif isinstance(default, list):
        if isinstance(value, str):
            value = [value]
        elif isinstance(value, dict):  # daemon.json's map form: {"kv.cacertfile": "..."}
            value = [f"{k}={v}" for k, v in value.items()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"'{key}' must be a list of strings, not {value!r}")
    elif not isinstance(value, str):
        raise ConfigError(f"'{key}' must be a string, not {value!r}")
    return value


def read_config_file(path: str, required: bool) -> dict[str, Any]:
    """Parse daemon.yaml into {field_name: value}; a missing default file is no error."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        if required:
            raise ConfigError(f"configuration file {path} does not exist") from None
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context, opened = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and opened:
            problem += f" ({context} started at line {opened.line + 1})"
        raise ConfigError(f"{path} is not valid YAML{where}: {problem}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"{path} must be a mapping of settings, like 'data-root: /srv/dockyard'")
    unknown = sorted(str(k) for k in document if k not in _FIELDS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s): {', '.join(unknown)}; "
            f"known settings are: {', '.join(sorted(_FIELDS))}"
        )
    settings = {}
    for key, value in document.items():
        spec = _FIELDS[key]
        default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()
        try:
            settings[spec.name] = _check_type(key, value, default)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return settings


def build_config(config_file: str, config_file_given: bool, flags: dict[str, Any]) -> DaemonConfig:
    """Defaults < daemon.yaml < flags (a flag left unset is None and changes nothing)."""
    settings = read_config_file(config_file, required=config_file_given)
    settings.update({k: v for k, v in flags.items() if v not in (None, (), [])})
    config = DaemonConfig(**settings)
    if config.log_level not in LOG_LEVELS:
        raise ConfigError(
            f"log level {config.log_level!r} is not one of {', '.join(LOG_LEVELS)}"
        )
    for attr in ("data_root", "exec_root"):
        value = getattr(config, attr)
        if not os.path.isabs(value):
            raise ConfigError(f"--{attr.replace('_', '-')} must be an absolute path, not {value!r}")
    config.storage_options()  # validates key=value early
    config.registry_options()
    config.cluster_store_options()
    if config.cluster_advertise and not config.cluster_store:
        raise ConfigError("--cluster-advertise needs --cluster-store: the store the cluster's daemons share")
    if config.cluster_store:
        config.cluster_store_url()
        if not config.cluster_advertise:
            raise ConfigError("--cluster-store needs --cluster-advertise ADDRESS (or INTERFACE): the address "
                              "the cluster's other hosts reach this one at")
    if not config.bridge or len(config.bridge) > 15 or "/" in config.bridge or " " in config.bridge:
        raise ConfigError(f"--bridge {config.bridge!r} is not a valid interface name (1 to 15 characters, "
                          "no '/' or space)")
    for attr in ("max_concurrent_downloads", "max_concurrent_uploads"):
        if getattr(config, attr) < 1:
            raise ConfigError(f"--{attr.replace('_', '-')} must be at least 1")
    for mirror in config.registry_mirrors:
        if not mirror.startswith(("http://", "https://")):
            raise ConfigError(f"registry mirror {mirror!r} must be a URL starting with http:// or https://")
    if config.bip:
        import ipaddress

        try:
            ipaddress.IPv4Interface(config.bip)
        except ValueError:
            raise ConfigError(f"--bip {config.bip!r} is not an IPv4 address with a prefix, such as "
                              "172.17.0.1/16") from None
    return config
