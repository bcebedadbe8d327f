"""`dockyard image bootstrap busybox`: a real busybox image from the host's static binary.

Built on the client, imported through the API like any `docker import`: it needs no
network and no registry, so a fresh machine has an image to run (Debian's
busybox-static package provides /bin/busybox).
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
DIRECTORIES = {"bin": 0o755, "sbin": 0o755, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755,
               "etc": 0o755, "root": 0o700, "tmp": 0o1777, "var": 0o755, "home": 0o755,
               "proc": 0o755, "sys": 0o755, "dev": 0o755}


class BootstrapError(Exception):
    pass


def find_busybox(path: str | None) -> str:
    candidate = path or shutil.which("busybox") or "/bin/busybox"
    if not os.path.isfile(candidate):
        raise BootstrapError(f"no busybox binary at {candidate}: apt-get install busybox-static")
    if _is_dynamic_elf(candidate):
        raise BootstrapError(f"{candidate} is dynamically linked and would not run inside an "
                             "image: apt-get install busybox-static")
    return candidate


def _is_dynamic_elf(path: str) -> bool:
    """True when the ELF file asks for an interpreter (PT_INTERP), i.e. is not static."""
    with open(path, "rb") as binary:
        header = binary.read(64)
        if header[:4] != b"\x7fELF":
            raise BootstrapError(f"{path} is not an ELF executable")
        if header[4] != 2:
            raise BootstrapError(f"{path} is not a 64-bit executable")
        endian = "<" if header[5] == 1 else ">"
        phoff, = struct.unpack_from(endian + "Q", header, 32)
        phentsize, phnum = struct.unpack_from(endian + "HH", header, 54)
        binary.seek(phoff)
        for _ in range(phnum):
            entry = binary.read(phentsize)
            if struct.unpack_from(endian + "I", entry, 0)[0] == 3:  # PT_INTERP
                return True
    return False


def applets(busybox: str) -> list[str]:
    listed = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True)
    return sorted({line.strip().lstrip("/") for line in listed.stdout.splitlines() if line.strip()}
                  - {"bin/busybox"})


def rootfs_tar(busybox: str) -> tempfile.SpooledTemporaryFile:
    """The image's single layer; entries are stamped with the binary's mtime, so the same
    binary always gives the same layer (and the layer is shared between bootstraps)."""
    stamp = int(os.stat(busybox).st_mtime)
    layer = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, kind: bytes, mode: int, data: bytes = b"", target: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.linkname = kind, mode, stamp, target
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        for directory, mode in DIRECTORIES.items():
            add(directory, tarfile.DIRTYPE, mode)
        with open(busybox, "rb") as binary:
            add("bin/busybox", tarfile.REGTYPE, 0o755, binary.read())
        for applet in applets(busybox):
            add(applet, tarfile.SYMTYPE, 0o777, target="/bin/busybox")
        add("etc/passwd", tarfile.REGTYPE, 0o644, PASSWD.encode())
        add("etc/group", tarfile.REGTYPE, 0o644, GROUP.encode())
    layer.seek(0)
    return layer
