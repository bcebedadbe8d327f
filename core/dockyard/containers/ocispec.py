"""A Docker container's configuration turned into an OCI runtime spec (config.json).

This module owns that translation and Docker's checks of the configuration: `build_spec`
gives the config.json object (OCI runtime-spec 1.0.2, as runc 1.1 reads it) with Docker's
defaults; `validate_config` and `validate_host_config` reject bad input at create time with
Docker's messages; `parse_signal` reads signal names and numbers the way Docker does;
`spec_for_container` adapts `build_spec` to the container manager's records.

The behaviour follows moby v25 (Engine API 1.44: oci/defaults.go, oci/caps, daemon/oci_linux.go,
daemon/daemon_unix.go, daemon/commit.go, moby/sys/user and moby/sys/signal), with the
masked-path list of moby v28 (it closes later security advisories).

It is pure apart from reading a few facts of the host, each cached or cheap: the daemon's
own capabilities (/proc/self/status), the CPUs and memory nodes it may use, which sysctls
exist, the thermal-throttle files to mask, the device nodes a privileged container gets,
and the container's own /etc/passwd and /etc/group inside its rootfs (which must be
mounted when `build_spec` runs). It writes nothing: creating the working directory in the
rootfs and preparing bind sources are the caller's.

Left out on purpose: seccomp (no default profile yet, so containers run without a syscall
filter, like `--security-opt seccomp=unconfined`), AppArmor and SELinux labels, user
namespaces, and the systemd cgroup driver.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import resource
import shutil
import socket
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from dockyard.daemon import hostinfo
from dockyard.errors import InvalidParameter, Unavailable

log = logging.getLogger(__name__)

OCI_VERSION = "1.0.2"

# moby oci/defaults.go defaultUnixPathEnv: PATH when neither image nor container sets one.
DEFAULT_PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# moby daemon/config/config.go DefaultShmSize.
DEFAULT_SHM_SIZE = 64 * 1024 * 1024

# moby daemon/daemon_unix.go linuxMinMemory: not a kernel limit, room for start-up overhead.
MIN_MEMORY = 6 * 1024 * 1024

# Where Docker puts its init (moby daemon/oci_linux.go inContainerInitPath).
INIT_PATH_IN_CONTAINER = "/sbin/docker-init"

# Our cgroupfs convention, Docker's with "dockyard" for "docker": <parent>/<container id>.
DEFAULT_CGROUP_PARENT = "/dockyard"

# containerd pkg/cap Known() (kernel 5.9): every capability Docker knows, in bit order, so
# the index of a name is its bit in /proc/<pid>/status.
KNOWN_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

# moby oci/caps/defaults.go DefaultCapabilities, in Docker's order.
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

# moby v28 oci/defaults.go defaultLinuxMaskedPaths (v25 lacks /proc/interrupts, added for
# GHSA-6fw5-f8r9-fgfm). Every /sys/devices/system/cpu/cpuN/thermal_throttle that exists on
# the host is masked too (same advisory); see `default_masked_paths`.
DEFAULT_MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)

# moby oci/defaults.go DefaultLinuxSpec ReadonlyPaths.
DEFAULT_READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# moby oci/defaults.go DefaultLinuxSpec: the devices cgroup denies everything, then allows
# null, zero, urandom, random, tty and console, and denies fuse explicitly. runc 1.1 appends
# its own allow list after these (mknod of any node, full, pts 136:*, ptmx 5:2, net/tun
# 10:200: libcontainer/specconv AllowedDevices) and creates the default nodes in /dev.
DEFAULT_DEVICE_CGROUP_RULES = (
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},  # /dev/zero
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},  # /dev/null
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},  # /dev/urandom
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},  # /dev/random
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},  # /dev/tty
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},  # /dev/console
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},  # /dev/fuse
)

# moby oci/defaults.go DefaultLinuxSpec Mounts, in order. /dev/shm gets size=<ShmSize>.
DEFAULT_MOUNTS = (
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["ro", "nosuid", "noexec", "nodev"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777"]},
)

# Default mounts a read-only rootfs leaves writable (moby daemon/oci_linux.go withMounts).
_WRITABLE_WITH_READONLY_ROOTFS = frozenset({"/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev"})

# Sysctls Docker adds for a container with its own network namespace, when the host kernel
# has them (moby daemon/oci_linux.go withCommonOptions): ping without CAP_NET_RAW, and
# ports below 1024 without CAP_NET_BIND_SERVICE.
DEFAULT_NETWORK_SYSCTLS = {"net.ipv4.ping_group_range": "0 2147483647",
                           "net.ipv4.ip_unprivileged_port_start": "0"}

# go-units ulimit.go ulimitNameMapping ("as" is disabled there: unusable with Docker's init).
ULIMIT_NAMES = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
                "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")

# moby/sys/signal signal_linux.go SignalMap (generic Linux numbering: x86, arm, arm64).
_SIGRTMIN, _SIGRTMAX = 34, 64
SIGNALS = {
    "ABRT": 6, "ALRM": 14, "BUS": 7, "CHLD": 17, "CLD": 17, "CONT": 18, "FPE": 8, "HUP": 1,
    "ILL": 4, "INT": 2, "IO": 29, "IOT": 6, "KILL": 9, "PIPE": 13, "POLL": 29, "PROF": 27,
    "PWR": 30, "QUIT": 3, "SEGV": 11, "STKFLT": 16, "STOP": 19, "SYS": 31, "TERM": 15,
    "TRAP": 5, "TSTP": 20, "TTIN": 21, "TTOU": 22, "URG": 23, "USR1": 10, "USR2": 12,
    "VTALRM": 26, "WINCH": 28, "XCPU": 24, "XFSZ": 25,
    "RTMIN": _SIGRTMIN, "RTMAX": _SIGRTMAX,
    **{f"RTMIN+{n}": _SIGRTMIN + n for n in range(1, 16)},
    **{f"RTMAX-{n}": _SIGRTMAX - n for n in range(1, 15)},
}

# runc libcontainer/configs/validate: sysctls that belong to the IPC namespace.
_IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                          "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"})

_MAX_ID = 2**31 - 1  # moby/sys/user: uids and gids stay in the 32-bit signed range
_RLIM_INFINITY = 2**64 - 1  # -1 in Docker's Ulimit, as the uint64 the runtime reads
_DEVICE_CGROUP_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")
_RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")
_TRUE_WORDS = {"1", "t", "T", "TRUE", "true", "True"}  # Go's strconv.ParseBool
_FALSE_WORDS = {"0", "f", "F", "FALSE", "false", "False"}


@dataclass(frozen=True)
class SpecInputs:
    """Everything `build_spec` needs; the caller resolves what refers to other objects.

    `config` is the container's Config (POST /containers/create). `image_config` is the
    image's OCI `config` object, merged into `config` the way Docker merges at create; pass
    an empty mapping when `config` is already the merged one Docker would store.
    `mounts` are OCI mount objects ready to use: volumes, binds, /etc/hosts,
    /etc/resolv.conf, /etc/hostname, and /dev/shm for IpcMode "shareable" or
    "container:<id>" (HostConfig.Tmpfs and IpcMode "host" are handled here).

    Namespaces to join are paths (`/proc/<pid>/ns/net`): `netns` for the network (None: a
    new, empty one; "host": the host's), `ipc_ns` and `pid_ns` for IpcMode and PidMode
    "container:<id>".
    """

    container_id: str
    config: Mapping[str, Any]
    rootfs: Path
    host_config: Mapping[str, Any] = field(default_factory=dict)
    image_config: Mapping[str, Any] = field(default_factory=dict)
    mounts: Sequence[Mapping[str, Any]] = ()
    netns: str | None = None
    ipc_ns: str | None = None
    pid_ns: str | None = None
    # HostConfig.CgroupParent wins; cgroupsPath is "<parent>/<container id>".
    cgroup_parent: str = DEFAULT_CGROUP_PARENT
    # A static init (tini, docker-init) run as pid 1 when HostConfig.Init is true.
    init_path: str | None = None
    # The daemon's own hard RLIMIT_NOFILE: a nofile ulimit above it is clamped (with a
    # warning in the log), as are other ulimits above the daemon's hard limits when it lacks
    # CAP_SYS_RESOURCE: runc could not raise them and the start would fail.
    max_nofile: int = field(default_factory=lambda: resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    # Legacy links' variables (ALIAS_PORT_..., ALIAS_NAME, ALIAS_ENV_...): after Docker's
    # defaults, before Config.Env, which overrides them.
    linked_env: Sequence[str] = ()
    # Docker gives containers their own cgroup namespace by default on cgroup v2 hosts only.
    cgroup_v2: bool = field(default_factory=lambda: hostinfo.cgroup_version() == "2")


# -- signals -------------------------------------------------------------------------------

def parse_signal(value: str | int) -> int:
    """A signal number from a name ("SIGTERM", "term", "RTMIN+3") or a number (1..64).

    Docker's rules (moby/sys/signal ParseSignal), except that numbers outside 1..64, which
    Docker passes on to fail later at kill time, are refused here."""
    if isinstance(value, bool):
        raise InvalidParameter(f"invalid signal: {value}")
    if isinstance(value, int):
        number = value
    elif re.fullmatch(r"[+-]?[0-9]+", value):
        number = int(value)
    else:
        name = value.upper()
        number = SIGNALS.get(name[3:] if name.startswith("SIG") else name, 0)
    if not 1 <= number <= _SIGRTMAX:
        raise InvalidParameter(f"invalid signal: {value}")
    return number


# -- the container's Config -----------------------------------------------------------------

def _string_list(value: Any) -> list[str] | None:
    """Docker's StrSlice: the API takes either a JSON string or a list of strings."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return list(value)


def merge_image_config(config: Mapping[str, Any], image_config: Mapping[str, Any]) -> dict[str, Any]:
    """The container's Config with the image's defaults, as Docker stores it after create
    (moby daemon/commit.go merge, then mergeAndVerifyConfig's Entrypoint reset).

    The container's Env comes first, then each image variable it does not set; a
    container Entrypoint drops the image's Cmd; `Entrypoint: [""]` means none."""
    merged = dict(config)
    image = image_config or {}
    for key in ("Entrypoint", "Cmd"):
        if key in merged:
            merged[key] = _string_list(merged[key])
    if not merged.get("User") and image.get("User"):
        merged["User"] = image["User"]
    if image.get("ExposedPorts"):
        merged["ExposedPorts"] = {**image["ExposedPorts"], **(merged.get("ExposedPorts") or {})}
    user_env = list(merged.get("Env") or [])
    if not user_env:
        if image.get("Env"):
            merged["Env"] = list(image["Env"])
    else:
        user_keys = {entry.partition("=")[0] for entry in user_env}
        merged["Env"] = user_env + [e for e in image.get("Env") or [] if e.partition("=")[0] not in user_keys]
    if image.get("Labels"):
        merged["Labels"] = {**image["Labels"], **(merged.get("Labels") or {})}
    if not merged.get("Entrypoint"):
        if not merged.get("Cmd") and image.get("Cmd") is not None:
            merged["Cmd"] = _string_list(image["Cmd"])
        # An empty list is an explicit "no entrypoint" (docker run --entrypoint ""); only an
        # absent one inherits the image's.
        if merged.get("Entrypoint") is None and image.get("Entrypoint") is not None:
            merged["Entrypoint"] = _string_list(image["Entrypoint"])
    if image.get("Healthcheck"):
        if not merged.get("Healthcheck"):
            merged["Healthcheck"] = dict(image["Healthcheck"])
        else:
            health = dict(merged["Healthcheck"])
            for key, value in image["Healthcheck"].items():
                if not health.get(key):
                    health[key] = value
            merged["Healthcheck"] = health
    for key in ("WorkingDir", "StopSignal"):
        if not merged.get(key) and image.get(key):
            merged[key] = image[key]
    if image.get("Volumes"):
        merged["Volumes"] = {**(merged.get("Volumes") or {}), **image["Volumes"]}
    if merged.get("Entrypoint") == [""]:
        merged["Entrypoint"] = None
    return merged


def command_line(config: Mapping[str, Any]) -> list[str]:
    """Entrypoint + Cmd of a merged Config: the container's argv."""
    argv = (_string_list(config.get("Entrypoint")) or []) + (_string_list(config.get("Cmd")) or [])
    if not argv:
        raise InvalidParameter("no command specified")
    return argv


# -- validation -----------------------------------------------------------------------------

def validate_config(config: Mapping[str, Any]) -> None:
    """Docker's create-time checks of Config (moby daemon/container.go validateContainerConfig)."""
    working_dir = config.get("WorkingDir")
    if working_dir and not PurePosixPath(working_dir).is_absolute():
        raise InvalidParameter(
            f"the working directory '{working_dir}' is invalid, it needs to be an absolute path")
    if config.get("StopSignal"):
        parse_signal(config["StopSignal"])
    for entry in config.get("Env") or []:
        if not entry.partition("=")[0]:
            raise InvalidParameter(f"invalid environment variable: {entry}")


def validate_host_config(host_config: Mapping[str, Any] | None) -> None:
    """Docker's create-time checks of HostConfig, with Docker's messages (moby
    daemon/container.go validateHostConfig, daemon/daemon_unix.go
    verifyPlatformContainerSettings and verifyPlatformContainerResources), plus the checks
    Docker leaves to the CLI or to runc (ulimits, sysctls, devices), made here so a bad
    value fails at create instead of at start. Raises InvalidParameter."""
    hc = host_config or {}
    _check_restart_policy(hc)
    for key in ("CapAdd", "CapDrop"):
        try:
            _normalize_capabilities(hc.get(key) or ())
        except InvalidParameter as exc:
            raise InvalidParameter(f"invalid {key}: {exc}") from None
    _check_memory(hc)
    _check_cpu(hc)
    blkio_weight = _int(hc, "BlkioWeight")
    if blkio_weight > 0 and not 10 <= blkio_weight <= 1000:
        raise InvalidParameter("Range of blkio weight is from 10 to 1000")
    _check_modes(hc)
    if _int(hc, "ShmSize") < 0:
        raise InvalidParameter("SHM size can not be less than 0")
    oom_score_adj = _int(hc, "OomScoreAdj")
    if not -1000 <= oom_score_adj <= 1000:
        raise InvalidParameter(f"Invalid value {oom_score_adj}, range for oom score adj is [-1000, 1000]")
    for destination, options in (hc.get("Tmpfs") or {}).items():
        _check_tmpfs_destination(destination)
        _tmpfs_options(options)
    _parse_security_opts(hc.get("SecurityOpt") or ())
    for ulimit in hc.get("Ulimits") or ():
        _check_ulimit(ulimit)
    _check_sysctls(hc.get("Sysctls") or {}, host_network=_mode(hc, "NetworkMode") == "host",
                   host_ipc=_mode(hc, "IpcMode") == "host", host_uts=_mode(hc, "UTSMode") == "host")
    for mapping in hc.get("Devices") or ():
        permissions = mapping.get("CgroupPermissions") or "rwm"
        if len(set(permissions)) != len(permissions) or not set(permissions) <= set("rwm"):
            raise InvalidParameter(f"invalid device mode {permissions!r} for {mapping.get('PathOnHost')}: "
                                   f"use one or more of r, w and m (e.g. rwm)")
    _device_cgroup_rules(hc.get("DeviceCgroupRules") or ())


def _int(hc: Mapping[str, Any], key: str) -> int:
    return int(hc.get(key) or 0)


def _mode(hc: Mapping[str, Any], key: str) -> str:
    return hc.get(key) or ""


def _check_restart_policy(hc: Mapping[str, Any]) -> None:
    policy = hc.get("RestartPolicy") or {}
    name = policy.get("Name") or ""
    retries = int(policy.get("MaximumRetryCount") or 0)
    if hc.get("AutoRemove") and name not in ("", "no"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    if name in ("always", "unless-stopped", "no") and retries != 0:
        message = "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        raise InvalidParameter(message + (" and cannot be negative" if retries < 0 else ""))
    if name == "on-failure" and retries < 0:
        raise InvalidParameter("invalid restart policy: maximum retry count cannot be negative")
    if name and name not in _RESTART_POLICIES:
        raise InvalidParameter(f"invalid restart policy: unknown policy '{name}'; use one of "
                               f"'no', 'always', 'on-failure', or 'unless-stopped'")


def _swappiness(hc: Mapping[str, Any]) -> int | None:
    value = hc.get("MemorySwappiness")
    # -1 is the API's "unset" (moby fixMemorySwappiness).
    return None if value is None or value == -1 else int(value)


def _check_memory(hc: Mapping[str, Any]) -> None:
    memory, swap, reservation = _int(hc, "Memory"), _int(hc, "MemorySwap"), _int(hc, "MemoryReservation")
    if memory != 0 and memory < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if memory > 0 and swap > 0 and swap < memory:
        raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, see usage")
    if memory == 0 and swap > 0:
        raise InvalidParameter(
            "You should always set the Memory limit when using Memoryswap limit, see usage")
    swappiness = _swappiness(hc)
    if swappiness is not None and not 0 <= swappiness <= 100:
        raise InvalidParameter(f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")
    if reservation > 0 and reservation < MIN_MEMORY:
        raise InvalidParameter("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise InvalidParameter(
            "Minimum memory limit can not be less than memory reservation limit, see usage")


def _check_cpu(hc: Mapping[str, Any]) -> None:
    nano_cpus, period, quota = _int(hc, "NanoCpus"), _int(hc, "CpuPeriod"), _int(hc, "CpuQuota")
    if nano_cpus > 0 and period > 0:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano_cpus > 0 and quota > 0:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    cpus = host_cpu_count()
    if nano_cpus != 0 and not 0 < nano_cpus <= cpus * 10**9:
        raise InvalidParameter(
            f"Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available")
    if period != 0 and not 1000 <= period <= 1000000:
        raise InvalidParameter(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if quota > 0 and quota < 1000:
        raise InvalidParameter("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    shares = _int(hc, "CpuShares")
    if shares < 0:
        raise InvalidParameter(f"invalid CPU shares ({shares}): value must be a positive integer")
    for key, what, missing in (("CpusetCpus", "cpus", "Requested CPUs are not available"),
                               ("CpusetMems", "mems", "Requested memory nodes are not available")):
        requested = hc.get(key) or ""
        if not requested:
            continue
        available = host_cpuset()[0 if what == "cpus" else 1]
        try:
            wanted = _parse_cpu_list(requested, maximum=max([8192, *_parse_cpu_list(available)]))
        except ValueError as exc:
            raise InvalidParameter(f"Invalid value {requested} for cpuset {what}: {exc}") from None
        if not wanted <= _parse_cpu_list(available):
            raise InvalidParameter(f"{missing} - requested {requested}, available: {available}")


def _parse_cpu_list(text: str, maximum: int = 0) -> set[int]:
    """A cgroup cpuset list ("0-2,5"); moby pkg/parsers ParseUintList, messages included."""
    found: set[int] = set()
    if not text:
        return found
    for part in text.split(","):
        low_text, dash, high_text = part.partition("-")
        if not low_text.isdigit() or (dash and not high_text.isdigit()):
            raise ValueError(f"invalid format: {text}")
        low, high = int(low_text), int(high_text) if dash else int(low_text)
        if high < low:
            raise ValueError(f"invalid format: {text}")
        if maximum and high > maximum:
            raise ValueError(f"value of out range, maximum is {maximum}")
        found.update(range(low, high + 1))
    return found


def _check_modes(hc: Mapping[str, Any]) -> None:
    ipc, pid, uts, cgroupns = (_mode(hc, key) for key in ("IpcMode", "PidMode", "UTSMode", "CgroupnsMode"))
    if not (ipc in ("", "none", "private", "shareable", "host") or _joined_container(ipc)):
        raise InvalidParameter(f"invalid IPC mode: {ipc}")
    if not (pid in ("", "host") or _joined_container(pid)):
        raise InvalidParameter(f"invalid PID mode: {pid}")
    if uts not in ("", "host"):
        raise InvalidParameter(f"invalid UTS mode: {uts}")
    if cgroupns not in ("", "private", "host"):
        raise InvalidParameter(f"invalid cgroup namespace mode: {cgroupns}")


def _joined_container(mode: str) -> str:
    """The container named by a "container:<id>" mode, or ""."""
    prefix, _, name = mode.partition(":")
    return name if prefix == "container" else ""


def _check_tmpfs_destination(destination: str) -> None:
    if os.path.normpath(destination.replace("\\", "/")) == "/":
        raise InvalidParameter("invalid specification: destination can't be '/'")
    if not destination.replace("\\", "/").startswith("/"):
        raise InvalidParameter(f"invalid mount path: '{destination}' mount path must be absolute")


def _check_ulimit(ulimit: Mapping[str, Any]) -> tuple[str, int, int]:
    name = ulimit.get("Name") or ""
    soft, hard = int(ulimit.get("Soft") or 0), int(ulimit.get("Hard") or 0)
    if name not in ULIMIT_NAMES:
        raise InvalidParameter(f"invalid ulimit type: {name}")
    if hard != -1:
        if soft == -1:
            raise InvalidParameter("ulimit soft limit must be less than or equal to hard limit: "
                                   f"soft: -1 (unlimited), hard: {hard}")
        if soft > hard:
            raise InvalidParameter(
                f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return name, soft, hard


def _check_sysctls(sysctls: Mapping[str, str], host_network: bool, host_ipc: bool, host_uts: bool) -> None:
    """runc's rules (libcontainer/configs/validate sysctl), with its messages: only
    namespaced sysctls, and only for namespaces the container has of its own."""
    for key in sysctls:
        # runc also accepts the slash form "net/ipv4/ip_forward".
        name = key.translate(str.maketrans("./", "/.")) if "/" in key else key
        if name in _IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if host_ipc:
                raise InvalidParameter(f'sysctl "{name}" is not allowed in the hosts ipc namespace')
            continue
        if name.startswith("net."):
            if host_network:
                raise InvalidParameter(f'sysctl "{name}" not allowed in host network namespace')
            continue
        if not host_uts:
            if name == "kernel.domainname":
                continue
            if name == "kernel.hostname":
                raise InvalidParameter(
                    f'sysctl "{name}" is not allowed as it conflicts with the OCI "hostname" field')
        raise InvalidParameter(f'sysctl "{name}" is not in a separate kernel namespace')


def _parse_security_opts(options: Iterable[str]) -> tuple[bool, bool | None]:
    """(no_new_privileges, writable_cgroups or None) from SecurityOpt (moby
    daemon/daemon_unix.go parseSecurityOpt). label, apparmor and seccomp are accepted and
    have no effect here (see the module docstring)."""
    no_new_privileges, writable_cgroups = False, None
    for option in options:
        if option == "no-new-privileges":
            no_new_privileges = True
            continue
        if option == "writable-cgroups":
            writable_cgroups = True
            continue
        if option == "disable":
            continue
        separator = "=" if "=" in option else ":" if ":" in option else ""
        if not separator:
            raise InvalidParameter(f"invalid --security-opt 1: {json.dumps(option)}")
        key, _, value = option.partition(separator)
        if key in ("label", "apparmor", "seccomp"):
            continue
        if key in ("no-new-privileges", "writable-cgroups") and value in _TRUE_WORDS | _FALSE_WORDS:
            if key == "no-new-privileges":
                no_new_privileges = value in _TRUE_WORDS
            else:
                writable_cgroups = value in _TRUE_WORDS
            continue
        raise InvalidParameter(f"invalid --security-opt 2: {json.dumps(option)}")
    return no_new_privileges, writable_cgroups


# -- capabilities ---------------------------------------------------------------------------

@cache
def available_capabilities() -> tuple[str, ...]:
    """The capabilities the daemon holds (its effective set), which is all a container can
    get: Docker's GetAllCapabilities, what --privileged and --cap-add ALL grant."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                bits = int(line.split()[1], 16)
                return tuple(name for bit, name in enumerate(KNOWN_CAPABILITIES) if bits >> bit & 1)
    except (OSError, ValueError, IndexError):
        pass
    return KNOWN_CAPABILITIES  # as Docker does when it cannot tell


def _normalize_capabilities(names: Iterable[str]) -> list[str]:
    """Upper-case with a CAP_ prefix, "ALL" kept (moby oci/caps NormalizeLegacyCapabilities)."""
    normalized = []
    for name in names:
        name = name.upper()
        if name != "ALL":
            if not name.startswith("CAP_"):
                name = "CAP_" + name
            if name not in KNOWN_CAPABILITIES:
                raise InvalidParameter(f"unknown capability: {json.dumps(name)}")
            if name not in available_capabilities():
                raise InvalidParameter("capability not supported by your kernel or not available in the "
                                       f"current environment: {json.dumps(name)}")
        normalized.append(name)
    return normalized


def _capabilities(hc: Mapping[str, Any]) -> list[str]:
    """moby oci/caps TweakCapabilities, without its duplicates (a CapAdd of a default one)."""
    if hc.get("Privileged"):
        return list(available_capabilities())
    adds, drops = hc.get("CapAdd") or (), hc.get("CapDrop") or ()
    if not adds and not drops:
        return list(DEFAULT_CAPABILITIES)
    try:
        drops = _normalize_capabilities(drops)
    except InvalidParameter as exc:
        raise InvalidParameter(f"invalid CapDrop: {exc}") from None
    try:
        adds = _normalize_capabilities(adds)
    except InvalidParameter as exc:
        raise InvalidParameter(f"invalid CapAdd: {exc}") from None
    if "ALL" in adds:
        chosen = [name for name in available_capabilities() if name not in drops]
    elif "ALL" in drops:
        chosen = adds
    else:
        chosen = [name for name in DEFAULT_CAPABILITIES if name not in drops] + adds
    return list(dict.fromkeys(chosen))


# -- host facts -----------------------------------------------------------------------------

def host_cpu_count() -> int:
    """CPUs this process may run on (Go's runtime.NumCPU, which Docker uses)."""
    return len(os.sched_getaffinity(0))


def host_cpuset() -> tuple[str, str]:
    """(cpus, memory nodes) a container may be pinned to: the root cpuset's lists, as
    moby pkg/sysinfo reads them."""
    candidates = {
        "cpus": ("/sys/fs/cgroup/cpuset/cpuset.cpus", "/sys/fs/cgroup/cpuset.cpus.effective",
                 "/sys/devices/system/cpu/online"),
        "mems": ("/sys/fs/cgroup/cpuset/cpuset.mems", "/sys/fs/cgroup/cpuset.mems.effective",
                 "/sys/devices/system/node/online"),
    }
    found = {}
    for key, paths in candidates.items():
        found[key] = "0"
        for path in paths:
            try:
                text = Path(path).read_text().strip()
            except OSError:
                continue
            if text:
                found[key] = text
                break
    return found["cpus"], found["mems"]


@cache
def default_masked_paths() -> tuple[str, ...]:
    """DEFAULT_MASKED_PATHS plus each CPU's thermal_throttle directory present on this host."""
    try:
        possible = _parse_cpu_list(Path("/sys/devices/system/cpu/possible").read_text().strip())
    except (OSError, ValueError):
        possible = set()
    throttles = [f"/sys/devices/system/cpu/cpu{cpu}/thermal_throttle" for cpu in sorted(possible)]
    return DEFAULT_MASKED_PATHS + tuple(path for path in throttles if os.path.exists(path))


def _host_has_sysctl(name: str) -> bool:
    return os.path.exists("/proc/sys/" + name.replace(".", "/"))


def _is_host_netns(path: str) -> bool:
    """Whether a namespace path is the daemon's own network namespace (runc's isHostNetNS)."""
    try:
        mine, theirs = os.stat("/proc/self/ns/net"), os.stat(path)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


# -- users and groups -----------------------------------------------------------------------

def resolve_in_rootfs(rootfs: Path, path: str) -> Path:
    """`path` inside the container's root, following symlinks as the container would see
    them: an absolute link or ".." never leaves the rootfs (moby's FollowSymlinkInScope)."""
    pending = [part for part in path.split("/") if part]
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = rootfs.joinpath(*resolved, part)
        if candidate.is_symlink():
            links += 1
            if links > 255:
                raise InvalidParameter(f"too many levels of symbolic links resolving {path} in the container")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            pending = [p for p in target.split("/") if p] + pending
            continue
        resolved.append(part)
    return rootfs.joinpath(*resolved)


def _read_table(rootfs: Path, path: str) -> list[list[str]] | None:
    """The colon-separated entries of a passwd/group file in the rootfs; None if absent."""
    try:
        text = resolve_in_rootfs(rootfs, path).read_text(errors="replace")
    except OSError:
        return None
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def _field(row: list[str], index: int) -> str:
    return row[index] if index < len(row) else ""


def _number(text: str) -> int:
    """A numeric passwd/group field; garbage counts as 0, as in moby/sys/user."""
    try:
        return int(text)
    except ValueError:
        return 0


def _numeric_id(text: str) -> int | None:
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    number = int(text)
    if not 0 <= number <= _MAX_ID:
        raise InvalidParameter(f"uids and gids must be in range 0-{_MAX_ID}")
    return number


def resolve_user(rootfs: Path, user_spec: str, group_add: Sequence[str]) -> dict[str, Any]:
    """The OCI process.user for Config.User ("", "name", "uid", "name:group", "uid:gid")
    through the container's own /etc/passwd and /etc/group (moby/sys/user GetExecUser and
    GetAdditionalGroups, moby daemon/oci_linux.go getUser)."""
    user_arg, _, rest = user_spec.partition(":")
    group_arg = rest.partition(":")[0]
    passwd = _read_table(rootfs, "/etc/passwd")
    groups = _read_table(rootfs, "/etc/group")
    uid, gid, matched_name = 0, 0, ""
    wanted_uid = _numeric_id(user_arg) if user_arg else 0
    for row in passwd or ():
        if (_number(_field(row, 2)) == wanted_uid) if wanted_uid is not None else (row[0] == user_arg):
            matched_name, uid, gid = row[0], _number(_field(row, 2)), _number(_field(row, 3))
            break
    else:
        if wanted_uid is None:
            raise InvalidParameter(f"unable to find user {user_arg}: no matching entries in passwd file")
        uid = wanted_uid
    supplementary: list[int] = []
    if group_arg:
        wanted_gid = _numeric_id(group_arg)
        for row in groups or ():
            if (_number(_field(row, 2)) == wanted_gid) if wanted_gid is not None else (row[0] == group_arg):
                gid = _number(_field(row, 2))
                break
        else:
            if wanted_gid is None:
                raise InvalidParameter(f"unable to find group {group_arg}: no matching entries in group file")
            gid = wanted_gid
    elif matched_name:
        # Supplementary groups only in the implicit form: every group listing the user.
        supplementary = [_number(_field(row, 2)) for row in groups or ()
                         if matched_name in _field(row, 3).split(",")]
    for name in group_add:
        for row in groups or ():
            if name in (row[0], str(_number(_field(row, 2)))):
                supplementary.append(_number(_field(row, 2)))
                break
        else:
            number = _numeric_id(name)
            if number is None:
                raise InvalidParameter(f"Unable to find group {name}: no matching entries in group file")
            supplementary.append(number)
    # Docker lists the primary group first and may repeat ids; runc takes either.
    return {"uid": uid, "gid": gid, "additionalGids": list(dict.fromkeys([gid, *supplementary]))}


# -- mounts ---------------------------------------------------------------------------------

def _tmpfs_options(data: str) -> list[str]:
    """HostConfig.Tmpfs options over Docker's defaults, the last of each kind winning
    (moby/sys/mount MergeTmpfsOptions)."""
    # A flag's kind: options that set or clear the same mount flag collide.
    kinds = {"ro": "rdonly", "rw": "rdonly", "suid": "nosuid", "nosuid": "nosuid", "dev": "nodev",
             "nodev": "nodev", "exec": "noexec", "noexec": "noexec", "sync": "sync", "async": "sync",
             "dirsync": "dirsync", "remount": "remount", "mand": "mand", "nomand": "mand",
             "atime": "noatime", "noatime": "noatime", "diratime": "nodiratime",
             "nodiratime": "nodiratime", "relatime": "relatime", "norelatime": "relatime",
             "strictatime": "strictatime", "nostrictatime": "strictatime"}
    for propagation in ("bind", "rbind", "unbindable", "runbindable", "private", "rprivate",
                        "shared", "rshared", "slave", "rslave"):
        kinds[propagation] = "propagation"
    data_keys = {"", "size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"}
    options = ["noexec", "nosuid", "nodev", "rprivate"] + (data.split(",") if data else [])
    seen: set[str] = set()
    merged: list[str] = []
    for option in reversed(options):
        if option == "defaults":
            continue
        if option in kinds:
            key = kinds[option]
        else:
            name, equals, _ = option.partition("=")
            if not equals or name not in data_keys:
                raise InvalidParameter(f"invalid tmpfs option {json.dumps(option.split('=', 1))}")
            key = "data:" + name
        if key not in seen:
            seen.add(key)
            merged.insert(0, option)
    return merged


def _mount_depth(mount: Mapping[str, Any]) -> int:
    return os.path.normpath(mount["destination"]).count("/")


def _mounts(inputs: SpecInputs, hc: Mapping[str, Any], init: bool, privileged: bool,
            writable_cgroups: bool) -> tuple[list[dict], str | None]:
    """(mounts, rootfsPropagation or None) as moby daemon/oci_linux.go withMounts makes them."""
    defaults = [copy.deepcopy(dict(m)) for m in DEFAULT_MOUNTS]
    if init:
        defaults.append({"destination": INIT_PATH_IN_CONTAINER, "type": "bind",
                         "source": inputs.init_path, "options": ["bind", "ro"]})
    user_mounts = [copy.deepcopy(dict(m)) for m in inputs.mounts]
    for destination, data in (hc.get("Tmpfs") or {}).items():
        _check_tmpfs_destination(destination)
        user_mounts.append({"destination": destination, "type": "tmpfs", "source": "tmpfs",
                            "options": _tmpfs_options(data or "")})
    ipc_mode = _mode(hc, "IpcMode")
    if ipc_mode == "host" and not any(os.path.normpath(m["destination"]) == "/dev/shm" for m in user_mounts):
        user_mounts.append({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                            "options": ["rbind", "rprivate"]})
    # Parents before children, so a mount never hides one made inside it; stable, so equal
    # depths keep the caller's order.
    user_mounts.sort(key=_mount_depth)
    user_destinations = {os.path.normpath(m["destination"]) for m in user_mounts}
    shm_size = _int(hc, "ShmSize") or DEFAULT_SHM_SIZE
    mounts = []
    for mount in defaults:
        destination = mount["destination"]
        if destination in user_destinations:
            continue
        if "/dev" in user_destinations and destination.startswith("/dev/"):
            continue
        if destination == "/dev/shm":
            if ipc_mode == "none":
                continue
            mount["options"].append(f"size={shm_size}")
        if hc.get("ReadonlyRootfs") and destination not in _WRITABLE_WITH_READONLY_ROOTFS \
                and "ro" not in mount["options"]:
            mount["options"].append("ro")
        if (privileged and destination == "/sys") or (writable_cgroups and mount["type"] == "cgroup"):
            mount["options"] = [option for option in mount["options"] if option != "ro"]
        mounts.append(mount)
    propagation = None
    for mount in user_mounts:
        options = set(mount.get("options") or ())
        if options & {"shared", "rshared"}:
            propagation = "shared"
        elif options & {"slave", "rslave"} and propagation is None:
            propagation = "rslave"
    return mounts + user_mounts, propagation


# -- devices --------------------------------------------------------------------------------

def _device_node(path: str) -> dict[str, Any] | None:
    """The OCI linux.devices entry for a device node, None if `path` is none."""
    info = os.lstat(path)
    kind = ("b" if stat.S_ISBLK(info.st_mode) else "c" if stat.S_ISCHR(info.st_mode)
            else "p" if stat.S_ISFIFO(info.st_mode) else None)
    if kind is None:
        return None
    return {"path": path, "type": kind, "major": os.major(info.st_rdev), "minor": os.minor(info.st_rdev),
            "fileMode": stat.S_IMODE(info.st_mode), "uid": info.st_uid, "gid": info.st_gid}


def _device_rule(device: Mapping[str, Any], access: str) -> dict[str, Any]:
    return {"allow": True, "type": device["type"], "major": device["major"], "minor": device["minor"],
            "access": access}


def _devices_from_path(on_host: str, in_container: str, access: str) -> tuple[list[dict], list[dict]]:
    """A HostConfig.Devices entry: one node, or every node under a directory (moby
    oci/devices_linux.go DevicesFromPath)."""
    resolved = os.path.realpath(on_host) if os.path.islink(on_host) else on_host
    try:
        node = _device_node(resolved)
    except OSError as exc:
        raise InvalidParameter(f"error gathering device information while adding custom device "
                               f"{json.dumps(on_host)}: lstat {resolved}: {exc.strerror.lower()}") from None
    if node is not None:
        node["path"] = in_container
        return [node], [_device_rule(node, access)]
    devices = []
    if os.path.isdir(resolved):
        for directory, _, files in os.walk(resolved):
            for name in sorted(files):
                try:
                    child = _device_node(os.path.join(directory, name))
                except OSError:
                    continue
                if child is not None:
                    child["path"] = child["path"].replace(resolved, in_container, 1)
                    devices.append(child)
    if not devices:
        raise InvalidParameter(f"error gathering device information while adding custom device "
                               f"{json.dumps(on_host)}: not a device node")
    return devices, [_device_rule(device, access) for device in devices]


def host_devices(root: str = "/dev") -> list[dict[str, Any]]:
    """Every device node under /dev, as a privileged container gets them (containerd
    pkg/oci HostDevices: no pts, shm, mqueue, fd, console, or fifos)."""
    found = []
    try:
        entries = sorted(os.scandir(root), key=lambda entry: entry.name)
    except OSError:
        return found
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.name not in ("pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"):
                found += host_devices(entry.path)
            continue
        if entry.name == "console":
            continue
        try:
            node = _device_node(entry.path)
        except OSError:
            continue
        if node is not None and node["type"] != "p":
            found.append(node)
    return found


def _device_cgroup_rules(rules: Iterable[str]) -> list[dict[str, Any]]:
    """HostConfig.DeviceCgroupRules ("c 10:200 rwm", "*" for any number)."""
    parsed = []
    for rule in rules:
        match = _DEVICE_CGROUP_RULE.match(rule)
        if not match:
            raise InvalidParameter(f"invalid device cgroup rule format: '{rule}'")
        kind, major, minor, access = match.groups()
        parsed.append({"allow": True, "type": kind, "major": -1 if major == "*" else int(major),
                       "minor": -1 if minor == "*" else int(minor), "access": access})
    return parsed


def _devices(hc: Mapping[str, Any], privileged: bool) -> tuple[list[dict], list[dict]]:
    """(linux.devices, linux.resources.devices) as moby daemon/oci_linux.go WithDevices."""
    rules = [dict(rule) for rule in DEFAULT_DEVICE_CGROUP_RULES]
    devices: list[dict] = []
    mappings = hc.get("Devices") or ()
    if privileged:
        devices = host_devices()
        for mapping in mappings:
            on_host = mapping.get("PathOnHost") or ""
            in_container = mapping.get("PathInContainer") or on_host
            if on_host != in_container:  # the same path is already there with all of /dev
                devices += _devices_from_path(on_host, in_container, "rwm")[0]
        return devices, rules + [{"allow": True, "access": "rwm"}]
    for mapping in mappings:
        on_host = mapping.get("PathOnHost") or ""
        found, allowed = _devices_from_path(on_host, mapping.get("PathInContainer") or on_host,
                                            mapping.get("CgroupPermissions") or "rwm")
        devices += found
        rules += allowed
    return devices, rules + _device_cgroup_rules(hc.get("DeviceCgroupRules") or ())


# -- resources ------------------------------------------------------------------------------

def _block_device_numbers(path: str) -> tuple[int, int]:
    try:
        rdev = os.stat(path).st_rdev
    except OSError as exc:
        raise InvalidParameter(f"stat {path}: {exc.strerror.lower()}") from None
    return os.major(rdev), os.minor(rdev)


def _resources(hc: Mapping[str, Any], device_rules: list[dict]) -> dict[str, Any]:
    """linux.resources from HostConfig (moby daemon/daemon_unix.go getMemoryResources,
    getCPUResources, getPidsLimit; adaptContainerSettings for the swap default)."""
    resources: dict[str, Any] = {"devices": device_rules}
    memory: dict[str, Any] = {}
    limit, reservation, swap = _int(hc, "Memory"), _int(hc, "MemoryReservation"), _int(hc, "MemorySwap")
    if limit > 0:
        memory["limit"] = limit
        if swap == 0:
            swap = 2 * limit  # Docker's default: as much swap as memory
    if reservation > 0:
        memory["reservation"] = reservation
    if swap > 0:  # -1, unlimited, is the runtime's default: nothing to write
        memory["swap"] = swap
    swappiness = _swappiness(hc)
    if swappiness is not None:
        memory["swappiness"] = swappiness
    memory["disableOOMKiller"] = bool(hc.get("OomKillDisable"))
    resources["memory"] = memory

    cpu: dict[str, Any] = {}
    if _int(hc, "CpuShares") > 0:
        cpu["shares"] = _int(hc, "CpuShares")
    nano_cpus = _int(hc, "NanoCpus")
    if nano_cpus > 0:
        # sched-bwc: a 100ms period, and the quota that many CPUs' worth of it.
        cpu["period"] = 100000
        cpu["quota"] = nano_cpus * 100000 // 10**9
    if _int(hc, "CpuPeriod"):
        cpu["period"] = _int(hc, "CpuPeriod")
    if _int(hc, "CpuQuota"):
        cpu["quota"] = _int(hc, "CpuQuota")
    if _int(hc, "CpuRealtimePeriod"):
        cpu["realtimePeriod"] = _int(hc, "CpuRealtimePeriod")
    if _int(hc, "CpuRealtimeRuntime"):
        cpu["realtimeRuntime"] = _int(hc, "CpuRealtimeRuntime")
    if hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    if hc.get("CpusetMems"):
        cpu["mems"] = hc["CpusetMems"]
    if cpu:
        resources["cpu"] = cpu

    if hc.get("PidsLimit") is not None:
        # 0 and negative values mean unlimited in the API; runc wants -1 for that.
        resources["pids"] = {"limit": hc["PidsLimit"] if hc["PidsLimit"] > 0 else -1}

    block_io: dict[str, Any] = {}
    if _int(hc, "BlkioWeight"):
        block_io["weight"] = _int(hc, "BlkioWeight")
    weight_devices = []
    for entry in hc.get("BlkioWeightDevice") or ():
        major, minor = _block_device_numbers(entry["Path"])
        weight_devices.append({"major": major, "minor": minor, "weight": int(entry["Weight"])})
    if weight_devices:
        block_io["weightDevice"] = weight_devices
    for key, oci_key in (("BlkioDeviceReadBps", "throttleReadBpsDevice"),
                         ("BlkioDeviceWriteBps", "throttleWriteBpsDevice"),
                         ("BlkioDeviceReadIOps", "throttleReadIOPSDevice"),
                         ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice")):
        throttles = []
        for entry in hc.get(key) or ():
            major, minor = _block_device_numbers(entry["Path"])
            throttles.append({"major": major, "minor": minor, "rate": int(entry["Rate"])})
        if throttles:
            block_io[oci_key] = throttles
    if block_io:
        resources["blockIO"] = block_io
    return resources


# go-units ulimit.go: the RLIMIT_* number of each ulimit name, for getrlimit.
_RLIMIT_NUMBERS = {"cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6, "nofile": 7,
                   "memlock": 8, "locks": 10, "sigpending": 11, "msgqueue": 12, "nice": 13, "rtprio": 14,
                   "rttime": 15}


def _rlimit_ceiling(name: str, max_nofile: int) -> int | None:
    """The most the runtime can set for a ulimit, None for no bound. Raising a hard limit
    above the daemon's own takes CAP_SYS_RESOURCE; runc inherits the daemon's limits and
    fails the start when it cannot set one, so never ask for more than the daemon holds."""
    if name == "nofile":
        return max_nofile
    if "CAP_SYS_RESOURCE" in available_capabilities():
        return None
    hard = resource.getrlimit(_RLIMIT_NUMBERS[name])[1]
    return None if hard == resource.RLIM_INFINITY else hard


def _rlimits(hc: Mapping[str, Any], max_nofile: int, container_id: str) -> list[dict[str, Any]]:
    """process.rlimits from HostConfig.Ulimits (-1 is unlimited), each clamped to what the
    daemon itself may set (see _rlimit_ceiling), with a warning in the daemon's log."""
    rlimits = []
    for ulimit in hc.get("Ulimits") or ():
        name, soft, hard = _check_ulimit(ulimit)
        ceiling = _rlimit_ceiling(name, max_nofile)
        if ceiling is not None:
            clamped_soft = ceiling if soft < 0 or soft > ceiling else soft
            clamped_hard = ceiling if hard < 0 or hard > ceiling else hard
            if (clamped_soft, clamped_hard) != (soft, hard):
                log.warning("container %s: ulimit %s=%d:%d is above the daemon's own hard limit %d; "
                            "using %d:%d (raise the daemon's limit to give containers more)",
                            container_id[:12], name, soft, hard, ceiling, clamped_soft, clamped_hard)
            soft, hard = clamped_soft, clamped_hard
        rlimits.append({"type": "RLIMIT_" + name.upper(),
                        "hard": _RLIM_INFINITY if hard < 0 else hard,
                        "soft": _RLIM_INFINITY if soft < 0 else soft})
    return rlimits


# -- namespaces -----------------------------------------------------------------------------

def _joined(kind: str, mode: str, path: str | None) -> dict[str, str]:
    if not path:
        raise ValueError(f"{kind} mode {mode!r} needs the path of that container's {kind} namespace "
                         f"(/proc/<pid>/ns/...) in SpecInputs")
    return {"type": kind, "path": path}


def _namespaces(inputs: SpecInputs, hc: Mapping[str, Any], config: Mapping[str, Any],
                host_network: bool) -> list[dict[str, str]]:
    """Docker's order (mount, network, uts, pid, ipc, cgroup) minus those shared with the
    host (moby daemon/oci_linux.go WithNamespaces)."""
    namespaces = [{"type": "mount"}]
    if config.get("NetworkDisabled"):
        namespaces.append({"type": "network"})
    elif not host_network:
        network_mode = _mode(hc, "NetworkMode")
        if _joined_container(network_mode):
            namespaces.append(_joined("network", network_mode, inputs.netns))
        elif inputs.netns:
            namespaces.append({"type": "network", "path": inputs.netns})
        else:
            namespaces.append({"type": "network"})
    if _mode(hc, "UTSMode") != "host":
        namespaces.append({"type": "uts"})
    pid_mode = _mode(hc, "PidMode")
    if _joined_container(pid_mode):
        namespaces.append(_joined("pid", pid_mode, inputs.pid_ns))
    elif pid_mode != "host":
        namespaces.append({"type": "pid"})
    ipc_mode = _mode(hc, "IpcMode")
    if _joined_container(ipc_mode):
        namespaces.append(_joined("ipc", ipc_mode, inputs.ipc_ns))
    elif ipc_mode != "host":
        namespaces.append({"type": "ipc"})
    cgroupns_mode = _mode(hc, "CgroupnsMode")
    if not cgroupns_mode:
        # moby adaptContainerSettings: private on cgroup v2; on v1 the host's.
        cgroupns_mode = "private" if inputs.cgroup_v2 else "host"
    if cgroupns_mode == "private":
        namespaces.append({"type": "cgroup"})
    return namespaces


# -- the spec -------------------------------------------------------------------------------

def _environment(config: Mapping[str, Any], hostname: str, linked_env: Sequence[str] = ()) -> list[str]:
    """Docker's defaults (PATH, HOSTNAME, TERM under a TTY, then links' variables)
    overridden by the merged Env; "NAME" without "=" removes a default (moby container
    CreateDaemonEnvironment, ReplaceOrAppendEnvValues)."""
    env = [f"PATH={DEFAULT_PATH_ENV}", f"HOSTNAME={hostname}"]
    if config.get("Tty"):
        env.append("TERM=xterm")
    env += linked_env
    index = {entry.partition("=")[0]: i for i, entry in enumerate(env)}
    removed = set()
    for entry in config.get("Env") or ():
        key, equals, _ = entry.partition("=")
        if not equals:
            if key in index:
                removed.add(index[key])
            continue
        if key in index:
            env[index[key]] = entry
            removed.discard(index[key])
        else:
            env.append(entry)  # like Docker, only the defaults are replaced, never an added one
    return [entry for i, entry in enumerate(env) if i not in removed]


def build_spec(inputs: SpecInputs) -> dict[str, Any]:
    """The OCI runtime spec (config.json) for a container, with Docker's defaults.

    Raises InvalidParameter for configuration Docker would refuse (a user missing from the
    container's passwd file, an unknown capability, a sysctl the container's namespaces
    cannot take, no command...), Unavailable when HostConfig.Init is asked for and the
    daemon has no init binary, and ValueError when a "container:<id>" mode comes without
    the namespace path the caller should have resolved."""
    hc = inputs.host_config or {}
    config = merge_image_config(inputs.config, inputs.image_config)
    argv = command_line(config)
    privileged = bool(hc.get("Privileged"))
    no_new_privileges, writable_cgroups = _parse_security_opts(hc.get("SecurityOpt") or ())
    host_network = _mode(hc, "NetworkMode") == "host" or inputs.netns == "host"
    host_uts = _mode(hc, "UTSMode") == "host"
    pid_private = _mode(hc, "PidMode") != "host" and not _joined_container(_mode(hc, "PidMode"))

    hostname = config.get("Hostname") or (socket.gethostname() if host_network else inputs.container_id[:12])
    # Only a container with its own pid namespace gets an init: elsewhere one already runs.
    init = bool(hc.get("Init")) and pid_private
    if init:
        if not inputs.init_path:
            raise Unavailable("HostConfig.Init needs an init binary (tini or docker-init) and the daemon "
                              "has none: install tini, or run the container without --init")
        argv = [INIT_PATH_IN_CONTAINER, "--", *argv]

    capabilities = _capabilities(hc)
    working_dir = config.get("WorkingDir") or "/"
    process: dict[str, Any] = {
        "terminal": bool(config.get("Tty")),
        "user": resolve_user(inputs.rootfs, config.get("User") or "", hc.get("GroupAdd") or ()),
        "args": argv,
        "env": _environment(config, hostname, inputs.linked_env),
        "cwd": os.path.normpath(working_dir),
        "capabilities": {key: list(capabilities) for key in ("bounding", "effective", "permitted")},
        "oomScoreAdj": _int(hc, "OomScoreAdj"),
    }
    console = hc.get("ConsoleSize") or (0, 0)
    if console[0] or console[1]:
        process["consoleSize"] = {"height": int(console[0]), "width": int(console[1])}
    rlimits = _rlimits(hc, inputs.max_nofile, inputs.container_id)
    if rlimits:
        process["rlimits"] = rlimits
    if no_new_privileges:
        process["noNewPrivileges"] = True

    namespaces = _namespaces(inputs, hc, config, host_network)
    network_ns = next((ns for ns in namespaces if ns["type"] == "network"), None)
    # "Host" as runc judges it: no network namespace, or a path to the daemon's own.
    shares_host_network = network_ns is None or ("path" in network_ns and _is_host_netns(network_ns["path"]))
    sysctls: dict[str, str] = {}
    if config.get("Domainname"):
        # No OCI field for the NIS domain name; this sysctl has the same effect.
        sysctls["kernel.domainname"] = config["Domainname"]
    if not shares_host_network and not _joined_container(_mode(hc, "NetworkMode")):
        sysctls.update({key: value for key, value in DEFAULT_NETWORK_SYSCTLS.items()
                        if _host_has_sysctl(key)})
    sysctls.update(hc.get("Sysctls") or {})
    types = {ns["type"] for ns in namespaces}
    _check_sysctls(sysctls, host_network=shares_host_network, host_ipc="ipc" not in types,
                   host_uts="uts" not in types)

    mounts, propagation = _mounts(inputs, hc, init, privileged,
                                  privileged if writable_cgroups is None else writable_cgroups)
    devices, device_rules = _devices(hc, privileged)
    # Explicit lists win, even for a privileged container (moby createSpec applies them last).
    masked = hc.get("MaskedPaths")
    if masked is None:
        masked = () if privileged else default_masked_paths()
    readonly = hc.get("ReadonlyPaths")
    if readonly is None:
        readonly = () if privileged else DEFAULT_READONLY_PATHS
    parent = hc.get("CgroupParent") or inputs.cgroup_parent
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "maskedPaths": list(masked),
        "readonlyPaths": list(readonly),
        "devices": devices,
        "resources": _resources(hc, device_rules),
        "cgroupsPath": os.path.join(parent, inputs.container_id),
        "sysctl": sysctls,
    }
    if propagation:
        linux["rootfsPropagation"] = propagation

    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": str(inputs.rootfs), "readonly": bool(hc.get("ReadonlyRootfs"))},
        "mounts": mounts,
        "linux": linux,
    }
    if not host_uts:
        spec["hostname"] = hostname
    if hc.get("Annotations"):
        spec["annotations"] = dict(hc["Annotations"])
    return spec


def resources_for(host_config: Mapping[str, Any]) -> dict[str, Any]:
    """The OCI `linux.resources` of a HostConfig alone (for `docker update` of a live container)."""
    _, device_rules = _devices(host_config, bool(host_config.get("Privileged")))
    return _resources(host_config, device_rules)


def find_init() -> str | None:
    """A static init on the daemon's PATH for HostConfig.Init: docker-init as Docker looks
    it up, else tini-static; plain tini last, as it needs the image to have a libc."""
    for name in ("docker-init", "tini-static", "tini"):
        path = shutil.which(name)
        if path:
            return path
    return None


def spec_for_container(*, container: Any, rootfs: Path, mounts: Sequence[Mapping[str, Any]] = (),
                       netns: str | None = None, max_nofile: int | None = None, ipc_ns: str | None = None,
                       pid_ns: str | None = None, init_path: str | None = None,
                       linked_env: Sequence[str] = ()) -> dict[str, Any]:
    """`build_spec` for the container manager's record (`.id`, `.config` already merged with
    the image as Docker stores it, `.host_config`), the init found on PATH when not given."""
    inputs = SpecInputs(
        container_id=container.id, config=container.config, host_config=container.host_config,
        rootfs=Path(rootfs), mounts=tuple(mounts), netns=netns, ipc_ns=ipc_ns, pid_ns=pid_ns,
        init_path=init_path or (find_init() if container.host_config.get("Init") else None),
        linked_env=tuple(linked_env),
        **({} if max_nofile is None else {"max_nofile": max_nofile}))
    return build_spec(inputs)
