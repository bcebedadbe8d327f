"""What a local volume is made of: Docker's `type`, `device` and `o` options, checked when the
volume is created and turned into the arguments of mount(2) when it is mounted.

With no option a volume is a plain directory. `o` is read like mount(8)'s option list: the
words mount(8) turns into mount flags (ro, nosuid, noatime, bind...) become MS_* flags, the
rest is the filesystem's own data string (size=64m,uid=1000 for tmpfs), passed as it is.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dockyard.plugin import VolumeDriverError
from dockyard.plugin import mounts as kernel

VALID_KEYS = ("type", "device", "o")
# An option given alone is useless: each needs the ones listed (moby's mandatoryOpts).
REQUIRED_WITH = {"type": ("device",), "device": ("type",), "o": ("device", "type")}

# mount(8) words that are mount flags: word -> (flags it sets, flags it clears).
_FLAG_WORDS = {
    "defaults": (0, 0),
    "ro": (kernel.MS_RDONLY, 0), "rw": (0, kernel.MS_RDONLY),
    "nosuid": (kernel.MS_NOSUID, 0), "suid": (0, kernel.MS_NOSUID),
    "nodev": (kernel.MS_NODEV, 0), "dev": (0, kernel.MS_NODEV),
    "noexec": (kernel.MS_NOEXEC, 0), "exec": (0, kernel.MS_NOEXEC),
    "sync": (kernel.MS_SYNCHRONOUS, 0), "async": (0, kernel.MS_SYNCHRONOUS),
    "dirsync": (kernel.MS_DIRSYNC, 0),
    "mand": (kernel.MS_MANDLOCK, 0), "nomand": (0, kernel.MS_MANDLOCK),
    "noatime": (kernel.MS_NOATIME, 0), "atime": (0, kernel.MS_NOATIME),
    "nodiratime": (kernel.MS_NODIRATIME, 0), "diratime": (0, kernel.MS_NODIRATIME),
    "relatime": (kernel.MS_RELATIME, 0), "norelatime": (0, kernel.MS_RELATIME),
    "strictatime": (kernel.MS_STRICTATIME, 0), "nostrictatime": (0, kernel.MS_STRICTATIME),
    "bind": (kernel.MS_BIND, 0), "rbind": (kernel.MS_BIND | kernel.MS_REC, 0),
}
# Propagation changes take a mount(2) call of their own, after the mount exists.
_PROPAGATION_WORDS = {
    "private": kernel.MS_PRIVATE, "rprivate": kernel.MS_PRIVATE | kernel.MS_REC,
    "shared": kernel.MS_SHARED, "rshared": kernel.MS_SHARED | kernel.MS_REC,
    "slave": kernel.MS_SLAVE, "rslave": kernel.MS_SLAVE | kernel.MS_REC,
    "unbindable": kernel.MS_UNBINDABLE, "runbindable": kernel.MS_UNBINDABLE | kernel.MS_REC,
}
_REFUSED_WORDS = {
    "remount": "o=remount changes an existing mount, and a volume is always mounted afresh: leave it out",
    "loop": "o=loop needs mount(8) to set up a loop device, which mount(2) does not do: attach the "
            "image with `losetup --find --show IMAGE` and use device=/dev/loopN",
}
# Filesystems whose kernel client needs the server's address as an IP in addr=.
_NETWORK_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3")


@dataclass(frozen=True)
class MountPlan:
    """A device volume's mount(2) arguments. `flags` go with the first call (for a bind,
    with the remount that applies them: a bind ignores them on the first call)."""

    fstype: str
    device: str
    flags: int
    propagation: int
    data: str
    bind: bool


def plan_mount(options: Mapping[str, str]) -> MountPlan | None:
    """Check a volume's options; None for a plain directory, else how to mount it."""
    unknown = sorted(key for key in options if key not in VALID_KEYS)
    if unknown:  # Docker names the first one
        hint = ""
        if unknown[0] == "size":
            hint = (": the local driver limits size only for tmpfs volumes "
                    "(-o type=tmpfs -o device=tmpfs -o o=size=64m), or use the tmpfs volume driver")
        raise VolumeDriverError(f'invalid option: "{unknown[0]}"{hint} '
                                f"(the local driver takes {', '.join(VALID_KEYS)})")
    given = {key for key, value in options.items() if value.strip()}
    for key in VALID_KEYS:
        if key in options:
            for needed in REQUIRED_WITH[key]:
                if needed not in given:
                    raise VolumeDriverError(f'missing required option: "{needed}"')
    if not given:
        return None
    fstype, device = options["type"].strip(), options["device"].strip()
    flags = propagation = 0
    data: list[str] = []
    for word in (part.strip() for part in options.get("o", "").split(",")):
        if not word:
            continue
        if word in _REFUSED_WORDS:
            raise VolumeDriverError(_REFUSED_WORDS[word])
        if word in _FLAG_WORDS:
            sets, clears = _FLAG_WORDS[word]
            flags = (flags | sets) & ~clears
        elif word in _PROPAGATION_WORDS:
            propagation |= _PROPAGATION_WORDS[word]
        else:
            data.append(word)
    bind = bool(flags & kernel.MS_BIND)
    if bind and data:
        raise VolumeDriverError(f"o={','.join(data)} does not apply to a bind mount: a bind takes only "
                                "mount flags such as ro, nosuid, nodev, noexec")
    if fstype == "none" and not bind:
        raise VolumeDriverError("type=none mounts nothing by itself: add o=bind to bind a host "
                                "directory (-o type=none -o o=bind -o device=/host/dir)")
    return MountPlan(fstype, device, flags, propagation, ",".join(data), bind)


def check_device(plan: MountPlan) -> None:
    """A device that is a host path must be there; say so before mount(2) answers ENOENT."""
    if plan.bind:
        if not plan.device.startswith("/"):
            raise VolumeDriverError(f"device {plan.device!r} of a bind must be an absolute host path")
        source = Path(plan.device)
        if not source.exists():
            raise VolumeDriverError(f"device {plan.device} does not exist: create the directory "
                                    "first, or correct -o device=")
        if not source.is_dir():
            raise VolumeDriverError(f"device {plan.device} is not a directory: a volume binds a "
                                    "directory")
    elif plan.device.startswith("/") and not Path(plan.device).exists():
        raise VolumeDriverError(f"device {plan.device} does not exist: correct -o device= "
                                f"(for a {plan.fstype} volume it names the block device or image)")


def data_for_kernel(plan: MountPlan) -> str:
    """The data string as the kernel wants it: network filesystems take addr= as an IP address,
    so a host name there is resolved now (as moby does), at each mount."""
    if plan.fstype not in _NETWORK_FILESYSTEMS or not plan.data:
        return plan.data
    words = []
    for word in plan.data.split(","):
        key, _, value = word.partition("=")
        if key == "addr" and value:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                try:
                    value = socket.getaddrinfo(value, None)[0][4][0]
                except OSError as exc:
                    raise VolumeDriverError(f"cannot resolve addr={value}: {exc}") from None
            word = f"addr={value}"
        words.append(word)
    return ",".join(words)


def without_secrets(text: str) -> str:
    """Hide a password= value before text reaches a log or an error message."""
    return ",".join("password=********" if word.startswith("password=") else word
                    for word in text.split(","))
