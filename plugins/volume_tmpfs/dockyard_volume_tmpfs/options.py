"""What a tmpfs volume is made of: `size`, `mode`, `uid` and `gid`, checked when the volume is
created and turned into the tmpfs mount's data string.

    docker volume create -d tmpfs -o size=64m -o mode=1777 NAME

Sizes are written as Docker writes them (go-units' RAMInBytes: 64m, 1.5g, 512k, 100, 64MiB;
units are powers of 1024), and passed to the kernel in bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from dockyard.plugin import VolumeDriverError

VALID_KEYS = ("size", "mode", "uid", "gid")
DEFAULT_MODE = 0o1777  # the kernel's default for a tmpfs root, and what Docker's --tmpfs gives
_SIZE = re.compile(r"(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


@dataclass(frozen=True)
class TmpfsOptions:
    size: int | None  # bytes; None leaves the kernel's default (half of RAM)
    mode: int
    uid: int | None
    gid: int | None

    def mount_data(self) -> str:
        words = [f"mode={self.mode:o}"]
        if self.size is not None:
            words.append(f"size={self.size}")
        if self.uid is not None:
            words.append(f"uid={self.uid}")
        if self.gid is not None:
            words.append(f"gid={self.gid}")
        return ",".join(words)

    def status(self) -> dict[str, str]:
        facts = {"size": str(self.size) if self.size is not None else "half of RAM (the kernel's default)",
                 "mode": f"{self.mode:04o}"}
        if self.uid is not None:
            facts["uid"] = str(self.uid)
        if self.gid is not None:
            facts["gid"] = str(self.gid)
        return facts


def parse_size(text: str) -> int:
    """Docker's size syntax in bytes; refuses 0, which tmpfs would read as "no limit"."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise VolumeDriverError(f"invalid size: {text!r} (write it like 64m, 1g, 512k or a number of bytes)")
    size = int(float(match[1]) * _UNITS[(match[2] or "").lower()])
    if size <= 0:
        raise VolumeDriverError(f"invalid size: {text!r}: a tmpfs volume needs at least one byte "
                                "(leave size out for the kernel's default, half of RAM)")
    return size


def parse_mode(text: str) -> int:
    if not re.fullmatch(r"0?[0-7]{1,4}", text.strip()):
        raise VolumeDriverError(f"invalid mode: {text!r} (write it in octal, like 1777 or 0755)")
    return int(text.strip(), 8)


def parse_id(key: str, text: str) -> int:
    if not re.fullmatch(r"\d{1,10}", text.strip()) or int(text) >= 2**32 - 1:
        raise VolumeDriverError(f"invalid {key}: {text!r} (a numeric id such as 1000; names are not "
                                "looked up)")
    return int(text)


def parse_options(options: Mapping[str, str]) -> TmpfsOptions:
    unknown = sorted(key for key in options if key not in VALID_KEYS)
    if unknown:
        named = ", ".join(f'"{key}"' for key in unknown)
        raise VolumeDriverError(f"invalid option: {named} "
                                f"(the tmpfs driver takes {', '.join(VALID_KEYS)})")
    return TmpfsOptions(
        size=parse_size(options["size"]) if "size" in options else None,
        mode=parse_mode(options["mode"]) if "mode" in options else DEFAULT_MODE,
        uid=parse_id("uid", options["uid"]) if "uid" in options else None,
        gid=parse_id("gid", options["gid"]) if "gid" in options else None,
    )
