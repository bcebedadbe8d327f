"""Docker's mount requests, parsed and checked: `-v`/HostConfig.Binds strings,
`--mount`/HostConfig.Mounts objects, anonymous volumes from Config.Volumes (image VOLUMEs
and `-v /path`), `--volumes-from` entries, and the `--mount` CSV the CLI turns into a
HostConfig.Mounts object.

The rules and messages follow moby v28 (volume/mounts/linux_parser.go, daemon/volumes.go
registerMountPoints, volume/local's name check) and docker CLI v28 (opts/mount.go,
internal/volumespec, cli/command/container/opts.go). On top of Docker, mounting anything
over /proc is refused: the container needs the runtime's /proc.

Pure: no kernel work and no I/O apart from the CLI helpers resolving "./relative" host
paths against the working directory, as the docker CLI does. Creating volumes, checking that
bind sources exist and creating missing ones (`create_host_path`) are the caller's.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import InvalidParameter

__all__ = [
    "MountRequest",
    "MountSpecError",
    "PROPAGATION_MODES",
    "mount_request",
    "mount_requests",
    "ram_in_bytes",
    "parse_bind",
    "parse_mount_flag",
    "split_volume_flags",
    "volumes_from",
]


class MountSpecError(InvalidParameter, ValueError):
    """A mount request Docker would refuse; the message is Docker's where Docker has one.
    An InvalidParameter, so the API answers 400 with it."""


PROPAGATION_MODES = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
DEFAULT_PROPAGATION = "rprivate"
_LABEL_MODES = ("z", "Z")
_CONSISTENCY_MODES = ("consistent", "cached", "delegated")
_RW_MODES = ("rw", "ro")
_COPY_MODES = ("nocopy",)
_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
_VOLUME_NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
# Paths the container gets from the runtime and must keep.
_RUNTIME_PATHS = ("/proc",)


class _FrozenMap(Mapping):
    """A read-only, hashable str→str mapping (MountRequest stays frozen and hashable)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._data = dict(data)

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return repr(self._data)


@dataclass(frozen=True)
class MountRequest:
    """One mount the container manager has to provide at create time."""

    kind: str  # "volume" | "bind" | "tmpfs"
    destination: str  # absolute, normalized (Go's path.Clean)
    source: str = ""  # volume name ("" = anonymous volume) or absolute, normalized host path
    read_only: bool = False
    propagation: str = ""  # binds: rprivate (default) | private | rshared | shared | rslave | slave
    volume_driver: str = ""  # driver to create a missing volume with ("" = local)
    volume_options: Mapping[str, str] = field(default_factory=_FrozenMap)  # driver options
    volume_labels: Mapping[str, str] = field(default_factory=_FrozenMap)
    no_copy: bool = False  # don't copy the image's content at the destination into a new volume
    create_host_path: bool = False  # create a missing bind source (-v does; --mount only on request)
    tmpfs_size: int = 0  # bytes, 0 = the kernel's default
    tmpfs_mode: int | None = None
    non_recursive: bool = False  # bind: plain bind instead of rbind (bind-nonrecursive)
    volume_subpath: str = ""  # mount this relative path inside the volume instead of its root
    tmpfs_options: tuple[str, ...] = ()  # TmpfsOptions.Options: "exec" / "noexec"

    def __post_init__(self) -> None:
        for name in ("volume_options", "volume_labels"):
            value = getattr(self, name)
            if not isinstance(value, _FrozenMap):
                object.__setattr__(self, name, _FrozenMap(value or {}))
        if not isinstance(self.tmpfs_options, tuple):
            object.__setattr__(self, "tmpfs_options", tuple(self.tmpfs_options))

    @property
    def anonymous(self) -> bool:
        return self.kind == "volume" and not self.source


# -- paths -----------------------------------------------------------------------------

def _clean(path: str) -> str:
    """Go's path.Clean: posixpath.normpath, except that a leading "//" becomes "/"."""
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


class _ConfigError(Exception):
    """A mount config problem, wrapped by the caller as Docker's errMountConfig."""


def _check_absolute(path: str) -> None:
    if not path.startswith("/"):
        raise _ConfigError(f"invalid mount path: '{path}' mount path must be absolute")
    if "\x00" in path:
        raise _ConfigError(f"invalid mount path: {path!r} must not contain a NUL byte")


def _check_target(target: str) -> None:
    """moby validateMountConfigImpl's checks of Target, in its order."""
    if not target:
        raise _ConfigError("field Target must not be empty")
    if _clean(target) == "/":
        raise _ConfigError("invalid specification: destination can't be '/'")
    _check_absolute(target)


def _check_runtime_paths(destination: str) -> None:
    for path in _RUNTIME_PATHS:
        if destination == path:
            raise MountSpecError(f"cannot mount over {path}: the container needs it")
        if destination.startswith(path + "/"):
            raise MountSpecError(f"cannot mount over {destination}: the container needs {path}")


def _check_volume_name(name: str) -> None:
    if not _VOLUME_NAME.fullmatch(name):
        raise MountSpecError(
            f"{_go_quote(name)} includes invalid characters for a local volume name, only "
            f"{_go_quote(_VOLUME_NAME_CHARS)} are allowed. If you intended to pass a host directory, "
            "use absolute path")


def _is_local(path: str) -> bool:
    """Go's filepath.IsLocal on Unix: relative, non-empty, and not escaping with "..\""""
    if not path or path.startswith("/") or "\x00" in path:
        return False
    cleaned = posixpath.normpath(path)
    return cleaned != ".." and not cleaned.startswith("../")


# -- -v / HostConfig.Binds ---------------------------------------------------------------

def _valid_mode(mode: str) -> bool:
    """moby linuxValidMountMode: known options, at most one of each kind."""
    if not mode:
        return True
    counts = dict.fromkeys(("rw", "label", "propagation", "copy", "consistency"), 0)
    for option in mode.split(","):
        if option in _RW_MODES:
            counts["rw"] += 1
        elif option in _LABEL_MODES:
            counts["label"] += 1
        elif option in PROPAGATION_MODES:
            counts["propagation"] += 1
        elif option in _COPY_MODES:
            counts["copy"] += 1
        elif option in _CONSISTENCY_MODES:
            counts["consistency"] += 1
        else:
            return False
    return all(count <= 1 for count in counts.values())


def parse_bind(text: str, volume_driver: str = "") -> MountRequest:
    """One `-v` / HostConfig.Binds entry: `name:/dst[:opts]` (named volume), `/src:/dst[:opts]`
    (bind) or `/dst` (anonymous volume). `volume_driver` is HostConfig.VolumeDriver, the
    driver for the volumes this creates."""
    if not isinstance(text, str):
        raise MountSpecError(f"invalid volume specification: {text!r}: a bind must be a string")
    parts = text.split(":", 3)
    if not parts[0]:
        raise MountSpecError(f"invalid volume specification: '{text}'")
    source, mode = "", ""
    if len(parts) == 1:
        target = parts[0]
    elif len(parts) == 2:
        if _valid_mode(parts[1]):  # "/foo:rw": a mode without a destination
            raise MountSpecError(f"invalid volume specification: '{text}'")
        source, target = parts
    elif len(parts) == 3:
        source, target, mode = parts
    else:
        raise MountSpecError(f"invalid volume specification: '{text}'")
    if not _valid_mode(mode):
        raise MountSpecError(f"invalid mode: {mode}")
    options = mode.split(",") if mode else []
    kind = "bind" if source.startswith("/") else "volume"
    propagation = next((o for o in options if o in PROPAGATION_MODES), "")
    no_copy = "nocopy" in options
    try:
        _check_target(target)
        if kind == "bind":
            if no_copy:  # Docker sets VolumeOptions for a copy mode, which a bind must not have
                raise _ConfigError("field VolumeOptions must not be specified")
            _check_absolute(source)
        elif propagation:  # and BindOptions for a propagation mode, which a volume must not have
            raise _ConfigError("field BindOptions must not be specified")
    except _ConfigError as exc:
        raise MountSpecError(f"invalid volume specification: '{text}': "
                             f"invalid mount config for type \"{kind}\": {exc}") from None
    destination = _clean(target)
    _check_runtime_paths(destination)
    read_only = "ro" in options
    if kind == "bind":
        return MountRequest("bind", destination, _clean(source), read_only=read_only,
                            propagation=propagation or DEFAULT_PROPAGATION, create_host_path=True)
    if source:
        _check_volume_name(source)
    return MountRequest("volume", destination, source, read_only=read_only,
                        volume_driver=volume_driver or "", no_copy=no_copy)


# -- --mount / HostConfig.Mounts ---------------------------------------------------------

def _field(obj: Mapping[str, Any], name: str) -> Any:
    """A field of a decoded Go struct: Go's JSON decoder matches names case-insensitively."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def _typed(obj: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    value = _field(obj, name)
    if value is None:
        return None
    wrong = isinstance(value, bool) and kind is int  # JSON true is not a number
    if wrong or not isinstance(value, kind):
        wanted = {str: "string", bool: "boolean", int: "integer", list: "array"}.get(kind, "object")
        raise MountSpecError(f"invalid mount config: {where}{name} must be a {wanted}, "
                             f"not {json.dumps(value, default=str)}")
    return value


def _string_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise MountSpecError(f"invalid mount config: {where} must map strings to strings")
    return dict(value)


def mount_request(mount: Mapping[str, Any]) -> MountRequest:
    """One HostConfig.Mounts object (Type, Source, Target, ReadOnly, BindOptions,
    VolumeOptions, TmpfsOptions) as moby's ParseMountSpec checks it. Whether a bind source
    exists is left to the caller (`create_host_path` says whether to create it)."""
    if not isinstance(mount, Mapping):
        raise MountSpecError(f"invalid mount config: a mount must be an object, not {mount!r}")
    kind = _typed(mount, "Type", str, "") or ""
    source = _typed(mount, "Source", str, "") or ""
    target = _typed(mount, "Target", str, "") or ""
    read_only = bool(_typed(mount, "ReadOnly", bool, ""))
    bind_options = _typed(mount, "BindOptions", Mapping, "")
    volume_options = _typed(mount, "VolumeOptions", Mapping, "")
    tmpfs_options = _typed(mount, "TmpfsOptions", Mapping, "")

    def error(message: str) -> MountSpecError:
        return MountSpecError(f"invalid mount config for type {_go_quote(kind)}: {message}")

    try:
        _check_target(target)
    except _ConfigError as exc:
        raise error(str(exc)) from None
    destination = _clean(target)
    if kind == "bind":
        if not source:
            raise error("field Source must not be empty")
        propagation = ""
        non_recursive = create = False
        if bind_options is not None:
            propagation = _typed(bind_options, "Propagation", str, "BindOptions.") or ""
            if propagation and propagation not in PROPAGATION_MODES:
                raise error(f"invalid propagation mode: {propagation}")
            non_recursive = bool(_typed(bind_options, "NonRecursive", bool, "BindOptions."))
            create = bool(_typed(bind_options, "CreateMountpoint", bool, "BindOptions."))
        if volume_options is not None:
            raise error("field VolumeOptions must not be specified")
        try:
            _check_absolute(source)
        except _ConfigError as exc:
            raise error(str(exc)) from None
        _check_runtime_paths(destination)
        return MountRequest("bind", destination, _clean(source), read_only=read_only,
                            propagation=propagation or DEFAULT_PROPAGATION, create_host_path=create,
                            non_recursive=non_recursive)
    if kind == "volume":
        if bind_options is not None:
            raise error("field BindOptions must not be specified")
        driver, options, labels, no_copy, subpath = "", {}, {}, False, ""
        if volume_options is not None:
            where = "VolumeOptions."
            no_copy = bool(_typed(volume_options, "NoCopy", bool, where))
            labels = _string_map(_typed(volume_options, "Labels", Mapping, where), where + "Labels")
            subpath = _typed(volume_options, "Subpath", str, where) or ""
            driver_config = _typed(volume_options, "DriverConfig", Mapping, where)
            if driver_config is not None:
                where += "DriverConfig."
                driver = _typed(driver_config, "Name", str, where) or ""
                options = _string_map(_typed(driver_config, "Options", Mapping, where), where + "Options")
        if subpath:
            if not source:
                raise error("must not set Subpath when using anonymous volumes")
            if not _is_local(subpath):
                raise error("subpath must be a relative path within the volume")
        if read_only and not source:
            raise error("must not set ReadOnly mode when using anonymous volumes")
        _check_runtime_paths(destination)
        if source:
            _check_volume_name(source)
        return MountRequest("volume", destination, source, read_only=read_only, volume_driver=driver,
                            volume_options=options, volume_labels=labels, no_copy=no_copy,
                            volume_subpath=subpath)
    if kind == "tmpfs":
        if bind_options is not None:
            raise error("field BindOptions must not be specified")
        if source:
            raise error("field Source must not be specified")
        size, mode, extra = 0, None, ()
        if tmpfs_options is not None:
            size = _typed(tmpfs_options, "SizeBytes", int, "TmpfsOptions.") or 0
            if size < 0:
                raise error(f"invalid tmpfs size: {size}")
            mode = _typed(tmpfs_options, "Mode", int, "TmpfsOptions.") or None
            if mode is not None:
                if mode < 0:
                    raise error(f"invalid tmpfs mode: {mode}")
                mode &= 0o7777  # a Go os.FileMode may carry type bits; tmpfs takes the permissions
            extra = _tmpfs_extra_options(_typed(tmpfs_options, "Options", list, "TmpfsOptions."), error)
        _check_runtime_paths(destination)
        return MountRequest("tmpfs", destination, read_only=read_only, tmpfs_size=size, tmpfs_mode=mode,
                            tmpfs_options=extra)
    if kind == "image":
        raise error("image mounts are not supported")
    raise error("mount type unknown")


def _tmpfs_extra_options(raw: list | None, error) -> tuple[str, ...]:
    """moby validateTmpfsOptions: [["exec"]] or [["noexec"]]."""
    options = []
    for option in raw or ():
        if not isinstance(option, list) or not 1 <= len(option) <= 2 or not all(
                isinstance(part, str) for part in option):
            raise error("invalid option array length")
        if option[0] not in ("exec", "noexec"):
            raise error(f"invalid option: {option[0]}")
        options.append("=".join(option))
    return tuple(options)


# -- the whole request -------------------------------------------------------------------

def mount_requests(config: Mapping[str, Any] | None,
                   host_config: Mapping[str, Any] | None) -> list[MountRequest]:
    """The mounts a new container asks for: HostConfig.Binds, then HostConfig.Mounts, then
    the anonymous volumes of Config.Volumes (image VOLUMEs and `-v /path`) that no user mount
    or HostConfig.Tmpfs entry already covers. HostConfig.VolumeDriver is the driver for the
    volumes Binds and Config.Volumes create. HostConfig.Tmpfs itself is left to the OCI spec
    code, but a bind or mount on one of its destinations is a duplicate, like one given twice.
    HostConfig.VolumesFrom is the caller's (see `volumes_from`)."""
    config = config or {}
    host_config = host_config or {}
    driver = host_config.get("VolumeDriver") or ""
    if not isinstance(driver, str):
        raise MountSpecError(f"invalid VolumeDriver: {driver!r}")
    tmpfs = host_config.get("Tmpfs") or {}
    if not isinstance(tmpfs, Mapping):
        raise MountSpecError("invalid Tmpfs: it must map destinations to options")
    taken = {_clean(path) for path in tmpfs if isinstance(path, str) and path.startswith("/")}
    requests: list[MountRequest] = []
    for name in ("Binds", "Mounts"):
        entries = host_config.get(name) or []
        if not isinstance(entries, list | tuple):
            raise MountSpecError(f"invalid {name}: it must be a list")
        for entry in entries:
            request = parse_bind(entry, driver) if name == "Binds" else mount_request(entry)
            if request.destination in taken:
                shown = request.destination if name == "Binds" else _field(entry, "Target")
                raise MountSpecError(f"Duplicate mount point: {shown}")
            taken.add(request.destination)
            requests.append(request)
    volumes = config.get("Volumes") or {}
    if not isinstance(volumes, Mapping):
        raise MountSpecError("invalid Volumes: it must map destinations to {}")
    for path in volumes:
        if not isinstance(path, str):
            raise MountSpecError(f"invalid volume: {path!r}")
        try:
            _check_target(path)
        except _ConfigError as exc:
            raise MountSpecError(f"invalid mount config for type \"volume\": {exc}") from None
        destination = _clean(path)
        if destination in taken:  # the user's mount wins over the image's volume
            continue
        _check_runtime_paths(destination)
        taken.add(destination)
        requests.append(MountRequest("volume", destination, volume_driver=driver))
    return requests


def volumes_from(entry: str) -> tuple[str, str]:
    """One HostConfig.VolumesFrom entry, "container[:mode]", as (container, "ro" | "rw").
    The mode takes moby's volume modes except propagation and nocopy; a label (z, Z) or
    consistency option is accepted and ignored."""
    if not isinstance(entry, str) or not entry:
        raise MountSpecError("volumes-from specification cannot be an empty string")
    container, _, mode = entry.partition(":")
    if not mode:
        return container, "rw"
    options = mode.split(",")
    if (not _valid_mode(mode) or any(o in PROPAGATION_MODES for o in options)
            or any(o in _COPY_MODES for o in options)):
        raise MountSpecError(f"invalid mode: {mode}")
    return container, "ro" if "ro" in options else "rw"


# -- the docker CLI's side ---------------------------------------------------------------

def _go_csv_record(text: str) -> list[str]:
    """The first record of `text` as Go's encoding/csv reads it (the docker CLI reads
    --mount with it): comma-separated, fields may be double-quoted with "" for a quote, a
    quote inside an unquoted field is an error."""
    lines = text.split("\n")
    while lines and lines[0] in ("", "\r"):  # Go skips empty lines
        lines.pop(0)
    if not lines:
        raise MountSpecError("EOF")
    text = "\n".join(lines)
    fields: list[str] = []
    index, end = 0, len(text)
    while True:
        if index < end and text[index] == '"':
            index += 1
            parts = []
            while True:
                close = text.find('"', index)
                if close < 0:
                    raise MountSpecError(f'parse error on line 1, column {end + 1}: '
                                         'extraneous or missing " in quoted-field')
                parts.append(text[index:close])
                index = close + 1
                if text.startswith('"', index):
                    parts.append('"')
                    index += 1
                    continue
                break
            fields.append("".join(parts))
            if index >= end or text[index] in "\r\n":
                return fields
            if text[index] != ",":
                raise MountSpecError(f'parse error on line 1, column {index + 1}: '
                                     'extraneous or missing " in quoted-field')
            index += 1
            continue
        stop = index
        while stop < end and text[stop] not in ",\n":
            stop += 1
        value = text[index:stop]
        if '"' in value:
            raise MountSpecError(f'parse error on line 1, column {index + value.index(chr(34)) + 1}: '
                                 'bare " in non-quoted-field')
        if stop >= end or text[stop] == "\n":
            fields.append(value.removesuffix("\r"))
            return fields
        fields.append(value)
        index = stop + 1


_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def _go_bool(value: str, message: str) -> bool:
    if value in _GO_TRUE:
        return True
    if value in _GO_FALSE:
        return False
    raise MountSpecError(message)


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: a number with an optional binary suffix (b, k, kb, kib, m...,
    case-insensitive, one optional space before it): "64m" → 67108864."""
    match = re.fullmatch(r"([0-9]*\.?[0-9]+|[0-9]+\.) ?([a-zA-Z]{0,3})", text)
    if not match:
        raise ValueError(f"invalid size: '{text}'")
    size, suffix = float(match.group(1)), match.group(2).lower()
    if not suffix or suffix == "b":
        return int(size)
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}.get(suffix[0])
    if scale is None or suffix[1:] not in ("", "b", "ib"):
        raise ValueError(f"invalid suffix: '{match.group(2)}'")
    return int(size * scale)


def parse_mount_flag(text: str, cwd: str | None = None) -> dict[str, Any]:
    """One `--mount` value as the docker CLI v28 turns it into a HostConfig.Mounts object
    (keys and empty values left out as Go's JSON encoder leaves them out). A source starting
    with "." is made absolute against `cwd` (default: the working directory). The daemon's
    checks (a bind needs a source, a tmpfs must not have one...) are `mount_request`'s."""
    mount: dict[str, Any] = {"Type": "volume"}

    def volume_options() -> dict[str, Any]:
        options = mount.setdefault("VolumeOptions", {"Labels": {}})
        options.setdefault("DriverConfig", {})
        return options

    def section(name: str) -> dict[str, Any]:
        return mount.setdefault(name, {})

    def set_pair(target: dict[str, str], value: str) -> None:
        key, _, item = value.partition("=")
        if key:
            target[key] = item

    for item in _go_csv_record(text):
        key, has_value, value = item.partition("=")
        key = key.lower()
        if not has_value:
            if key in ("readonly", "ro"):
                mount["ReadOnly"] = True
            elif key == "volume-nocopy":
                volume_options()["NoCopy"] = True
            elif key == "bind-nonrecursive":
                section("BindOptions")["NonRecursive"] = True
            else:
                raise MountSpecError(f"invalid field '{item}' must be a key=value pair")
            continue
        invalid = f"invalid value for {key}: {value}"
        if key == "type":
            mount["Type"] = value.lower()
        elif key in ("source", "src"):
            if not value.startswith("/") and value.startswith("."):
                value = os.path.abspath(os.path.join(cwd or os.getcwd(), value))
            mount["Source"] = value
        elif key in ("target", "dst", "destination"):
            mount["Target"] = value
        elif key in ("readonly", "ro"):
            mount["ReadOnly"] = _go_bool(value, invalid)
        elif key == "consistency":
            mount["Consistency"] = value.lower()
        elif key == "bind-propagation":
            section("BindOptions")["Propagation"] = value.lower()
        elif key == "bind-nonrecursive":
            section("BindOptions")["NonRecursive"] = _go_bool(value, invalid)
        elif key == "bind-recursive":
            flag = {"enabled": None, "disabled": "NonRecursive", "writable": "ReadOnlyNonRecursive",
                    "readonly": "ReadOnlyForceRecursive"}
            if value not in flag:
                raise MountSpecError(f'{invalid} (must be "enabled", "disabled", "writable", or "readonly")')
            if flag[value]:  # "enabled" is the default and sets nothing
                section("BindOptions")[flag[value]] = True
        elif key == "volume-subpath":
            volume_options()["Subpath"] = value
        elif key == "volume-nocopy":
            volume_options()["NoCopy"] = _go_bool(value, f"invalid value for volume-nocopy: {value}")
        elif key == "volume-label":
            set_pair(volume_options()["Labels"], value)
        elif key == "volume-driver":
            volume_options()["DriverConfig"]["Name"] = value
        elif key == "volume-opt":
            set_pair(volume_options()["DriverConfig"].setdefault("Options", {}), value)
        elif key == "image-subpath":
            section("ImageOptions")["Subpath"] = value
        elif key == "tmpfs-size":
            try:
                section("TmpfsOptions")["SizeBytes"] = ram_in_bytes(value)
            except ValueError:
                raise MountSpecError(invalid) from None
        elif key == "tmpfs-mode":
            if not re.fullmatch(r"[0-7]+", value) or int(value, 8) >= 1 << 32:
                raise MountSpecError(invalid)
            section("TmpfsOptions")["Mode"] = int(value, 8)
        else:
            raise MountSpecError(f"unexpected key '{key}' in '{item}'")

    kind = mount["Type"]
    if not kind:
        raise MountSpecError("type is required")
    if not mount.get("Target"):
        raise MountSpecError("target is required")
    for name, prefix, wanted in (("VolumeOptions", "volume", "volume"), ("ImageOptions", "image", "image"),
                                 ("BindOptions", "bind", "bind"), ("TmpfsOptions", "tmpfs", "tmpfs")):
        if name in mount and kind != wanted:
            raise MountSpecError(f"cannot mix '{prefix}-*' options with mount type '{kind}'")
    bind = mount.get("BindOptions") or {}
    if bind.get("ReadOnlyNonRecursive") and not mount.get("ReadOnly"):
        raise MountSpecError("option 'bind-recursive=writable' requires 'readonly' to be specified "
                             "in conjunction")
    if bind.get("ReadOnlyForceRecursive"):
        if not mount.get("ReadOnly"):
            raise MountSpecError("option 'bind-recursive=readonly' requires 'readonly' to be specified "
                                 "in conjunction")
        if bind.get("Propagation") != "rprivate":
            raise MountSpecError("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' "
                                 "to be specified in conjunction")
    return _omit_empty(mount)


# mount.Mount's fields in Go's order, which its JSON encoder keeps.
_GO_FIELDS = ("Type", "Source", "Target", "ReadOnly", "Consistency", "BindOptions", "VolumeOptions",
              "ImageOptions", "TmpfsOptions", "Propagation", "NonRecursive", "CreateMountpoint",
              "ReadOnlyNonRecursive", "ReadOnlyForceRecursive", "NoCopy", "Labels", "Subpath",
              "DriverConfig", "Name", "Options", "SizeBytes", "Mode")


def _omit_empty(value: dict[str, Any]) -> dict[str, Any]:
    """mount.Mount as Go's JSON encoder writes it: fields in struct order, map keys sorted,
    empty strings, false, 0 and empty maps left out (`omitempty`), but an option struct that
    was set kept even if empty (it is a pointer)."""
    result = {}
    for key in sorted(value, key=_GO_FIELDS.index):
        item = value[key]
        if isinstance(item, dict) and key not in ("Labels", "Options"):
            result[key] = _omit_empty(item)
        elif isinstance(item, dict):
            if item:
                result[key] = dict(sorted(item.items()))
        elif item not in ("", False, 0, None):
            result[key] = item
    return result


def _cli_volume_source(spec: str) -> str:
    """The source part of a `-v` value as the docker CLI's volumespec.Parse finds it ("" for
    an anonymous volume), raising its errors (it ignores unknown options: the daemon checks
    them)."""
    if not spec:
        raise MountSpecError("invalid empty volume spec")
    if len(spec.encode()) <= 2:
        return ""
    source = target = ""
    buffer = ""
    for char in [*spec, None]:
        if char == ":" and len(buffer) == 1 and buffer.isalpha():  # a Windows drive letter
            buffer += char
            continue
        if char not in (":", None):
            buffer += char
            continue
        if not buffer:
            raise MountSpecError(f"invalid spec: {spec}: empty section between colons")
        if not source and char is None:
            target = buffer
        elif not source:
            source = buffer
        elif not target:
            target = buffer
        elif char == ":":
            raise MountSpecError(f"invalid spec: {spec}: too many colons")
        buffer = ""
    return source


def split_volume_flags(values: Iterable[str], cwd: str | None = None) -> tuple[list[str], dict[str, dict]]:
    """`-v` values as the docker CLI v28 sends them: (HostConfig.Binds, Config.Volumes).
    Values with a source go to Binds, a host path starting with "." made absolute against
    `cwd` (default: the working directory); `-v /path` alone becomes {"/path": {}} in
    Config.Volumes. A value given twice counts once."""
    binds: list[str] = []
    volumes: dict[str, dict] = {}
    for spec in dict.fromkeys(values):
        if not _cli_volume_source(spec):
            volumes[spec] = {}
            continue
        host, _, rest = spec.partition(":")
        if host.startswith(".") and rest:
            spec = os.path.abspath(os.path.join(cwd or os.getcwd(), host)) + ":" + rest
        binds.append(spec)
    return binds, volumes
