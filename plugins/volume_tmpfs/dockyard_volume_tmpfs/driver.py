"""The `tmpfs` volume driver's calls: named volumes held in memory.

A volume's tmpfs is mounted when the volume is created, at `<exec_root>/volumes-tmpfs/<name>`,
and stays mounted until it is removed, so containers share its content and it is kept while
no container uses it. Mount ids are only counted. The volume's records live under the
driver's home: after a reboot the volume still exists and its tmpfs is mounted again,
empty (content never survives a reboot). The tmpfs is mounted nosuid,nodev: a volume every
container may share is no place for set-uid programs or device nodes.

One lock serializes every call: they are quick, and each must see the mount table it changes.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dockyard.plugin import DriverContext, VolumeDriverError
from dockyard.plugin import mounts as kernel
from dockyard.plugin.volume_records import VolumeRecords, check_name

from .options import TmpfsOptions, parse_options

MOUNT_DIR = "volumes-tmpfs"  # below the exec root: mount points must not outlive a reboot either
MOUNT_FLAGS = kernel.MS_NOSUID | kernel.MS_NODEV


class TmpfsVolumeDriver:
    scope = "local"

    def __init__(self, context: DriverContext) -> None:
        self._records = VolumeRecords(context.home.resolve())
        context.exec_root.mkdir(parents=True, exist_ok=True)
        # mountinfo shows resolved paths: resolve once so comparisons with it hold
        self._mounts = context.exec_root.resolve() / MOUNT_DIR
        self._mounts.mkdir(mode=0o700, exist_ok=True)
        self._log = context.logger
        self._lock = threading.Lock()
        with self._lock:
            for leftover in self._records.delete_leftovers():
                self._log.info("deleted %s, left by an interrupted create or remove", leftover)
            self._drop_orphan_mounts()

    # -- the contract -------------------------------------------------------------------

    def create(self, name: str, options: Mapping[str, str]) -> None:
        check_name(name)
        options = {str(key): str(value) for key, value in options.items()}
        wanted = parse_options(options)
        with self._lock:
            existing = self._records.options(name)
            if existing is not None:
                if parse_options(existing) != wanted:
                    raise VolumeDriverError(
                        f"volume {name} already exists with other options ({_describe(existing)}): "
                        "remove it first, or create it with the same options")
                self._ensure_mounted(name, wanted)
                return
            staging = self._records.stage(name, options)
            try:
                self._mount_fresh(name, wanted)
                self._records.commit(staging, name)
            except BaseException:
                self._unmount_tmpfs(name)
                self._records.discard(staging)
                raise

    def remove(self, name: str) -> None:
        check_name(name)
        with self._lock:
            # the tmpfs goes first: a crash in between leaves a volume restore mounts again
            self._unmount_tmpfs(name)
            self._records.remove(name)

    def mount(self, name: str, mount_id: str) -> Path:
        check_name(name)
        with self._lock:
            self._ensure_mounted(name, self._options(name))  # gone behind our back: back, empty
            holders = self._records.mount_ids(name)
            if mount_id not in holders:
                self._records.record_mount_ids(name, holders | {mount_id})
            return self._mount_point(name)

    def unmount(self, name: str, mount_id: str) -> None:
        check_name(name)
        with self._lock:
            holders = self._records.mount_ids(name)
            if mount_id in holders:
                self._records.record_mount_ids(name, holders - {mount_id})

    def path(self, name: str) -> Path | None:
        check_name(name)
        with self._lock:
            if not self._records.exists(name) or not self._is_mounted(name):
                return None
            return self._mount_point(name)

    def data_path(self, name: str) -> Path | None:
        """Beyond the Protocol: where the tmpfs is, or will be once mounted again after a
        reboot; None for no such volume."""
        check_name(name)
        with self._lock:
            return self._mount_point(name) if self._records.exists(name) else None

    def list(self) -> Sequence[str]:
        with self._lock:
            return self._records.names()

    def status(self, name: str) -> Mapping[str, Any]:
        check_name(name)
        with self._lock:
            return self._options(name).status()

    def restore(self, in_use: Mapping[str, Sequence[str]]) -> None:
        with self._lock:
            names = self._records.names()
            for unknown in sorted(set(in_use) - set(names)):
                self._log.warning("volume %s is in use but does not exist any more", unknown)
            for name in names:
                self._records.record_mount_ids(name, set(in_use.get(name, ())))
                try:
                    self._ensure_mounted(name, self._options(name))
                except VolumeDriverError as exc:  # one broken volume must not stop the daemon
                    self._log.warning("restoring tmpfs volume %s: %s", name, exc)
            self._drop_orphan_mounts()

    # -- mounting -------------------------------------------------------------------------

    def _options(self, name: str) -> TmpfsOptions:
        options = self._records.options(name)
        if options is None:
            raise VolumeDriverError(f"no such volume: {name}")
        return parse_options(options)

    def _mount_point(self, name: str) -> Path:
        return self._mounts / name

    def _is_mounted(self, name: str) -> bool:
        return kernel.filesystems_at(self._mount_point(name))[-1:] == ["tmpfs"]

    def _ensure_mounted(self, name: str, options: TmpfsOptions) -> None:
        if not self._is_mounted(name):
            self._log.info("mounting tmpfs volume %s again: its tmpfs was gone (a reboot?), so "
                           "it starts empty", name)
            self._mount_fresh(name, options)

    def _mount_fresh(self, name: str, options: TmpfsOptions) -> None:
        point = self._mount_point(name)
        self._unmount_tmpfs(name)  # whatever a crash left there is not this volume's content
        point.mkdir(mode=0o700)
        try:
            kernel.mount("tmpfs", point, "tmpfs", MOUNT_FLAGS, options.mount_data())
        except OSError as exc:
            point.rmdir()
            hint = ("the size is more than the kernel allows" if exc.errno == errno.EINVAL
                    else "mounting needs root (CAP_SYS_ADMIN)" if exc.errno == errno.EPERM else "")
            raise VolumeDriverError(f"cannot mount the tmpfs of volume {name} "
                                    f"({options.mount_data()}): {exc.strerror}"
                                    + (f": {hint}" if hint else "")) from None

    def _unmount_tmpfs(self, name: str) -> None:
        """Detach the volume's tmpfs (all of them, if mounts stacked) and delete its mount point."""
        point = self._mount_point(name)
        try:
            kernel.detach_everything_under(point)
        except OSError as exc:
            raise VolumeDriverError(f"cannot unmount volume {name} from {point}: {exc.strerror}; "
                                    "find what holds it with `findmnt -R` and unmount it") from None
        # nothing is mounted below it now, so deleting cannot reach into anyone's data
        if point.is_dir() and not point.is_symlink():
            shutil.rmtree(point)
        else:
            point.unlink(missing_ok=True)

    def _drop_orphan_mounts(self) -> None:
        """Mount points of volumes that have no records (a crash mid-create or mid-remove)."""
        known = set(self._records.names())
        for entry in os.scandir(self._mounts):
            if entry.name not in known:
                self._log.info("unmounting %s: no volume records it", entry.path)
                self._unmount_tmpfs(entry.name)


def _describe(options: Mapping[str, str]) -> str:
    return " ".join(f"{key}={value}" for key, value in sorted(options.items())) or "none"
