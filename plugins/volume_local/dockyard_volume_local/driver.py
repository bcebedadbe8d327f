"""The `local` volume driver's calls: Docker's local driver, directories under the driver's home.

A plain volume is its `_data` directory and nothing is ever mounted for it. A volume made with
`type`/`device`/`o` is mounted onto `_data` when its first mount id arrives and detached when
the last one leaves; the ids are recorded with the volume so a restarted daemon can rebuild
the count. One lock serializes every call: they are quick, and a mount decision must see the
count it changes.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dockyard.plugin import DriverContext, VolumeDriverError
from dockyard.plugin import mounts as kernel

from .options import MountPlan, check_device, data_for_kernel, plan_mount, without_secrets
from .store import VolumeStore, check_name


class LocalVolumeDriver:
    scope = "local"

    def __init__(self, context: DriverContext) -> None:
        # mountinfo shows resolved paths: resolve once so comparisons with it hold
        self._store = VolumeStore(context.home.resolve())
        self._log = context.logger
        self._lock = threading.Lock()
        for leftover in self._store.delete_leftovers():
            self._log.info("deleted %s, left by an interrupted create or remove", leftover)

    # -- the contract -------------------------------------------------------------------

    def create(self, name: str, options: Mapping[str, str]) -> None:
        check_name(name)
        options = {str(key): str(value) for key, value in options.items()}
        plan = plan_mount(options)
        with self._lock:
            existing = self._store.options(name)
            if existing is not None:
                if existing != options:
                    raise VolumeDriverError(
                        f"volume {name} already exists with other options ({_describe(existing)}): "
                        "remove it first, or create it with the same options")
                return
            if plan is not None:
                check_device(plan)
            self._store.create(name, options)

    def remove(self, name: str) -> None:
        check_name(name)
        with self._lock:
            if not self._store.exists(name):
                return
            self._detach(name)
            self._store.remove(name)

    def mount(self, name: str, mount_id: str) -> Path:
        check_name(name)
        with self._lock:
            plan = self._plan(name)
            holders = self._store.mount_ids(name)
            data = self._store.data_dir(name)
            if plan is not None and not kernel.filesystems_at(data):
                self._attach(name, plan)  # first holder, or mounted before a reboot
            if mount_id not in holders:
                self._store.record_mount_ids(name, holders | {mount_id})
            return data

    def unmount(self, name: str, mount_id: str) -> None:
        check_name(name)
        with self._lock:
            if not self._store.exists(name):
                return
            holders = self._store.mount_ids(name)
            if mount_id in holders:
                holders.discard(mount_id)
                self._store.record_mount_ids(name, holders)
            if not holders and self._plan(name) is not None:
                self._detach(name)

    def path(self, name: str) -> Path | None:
        check_name(name)
        with self._lock:
            options = self._store.options(name)
            if options is None:
                return None
            data = self._store.data_dir(name)
            if plan_mount(options) is not None and not kernel.filesystems_at(data):
                return None  # a device volume's _data is an empty directory until mounted
            return data

    def data_path(self, name: str) -> Path | None:
        """Beyond the Protocol: where the data is, or will be once mounted (Docker's
        Mountpoint, always `_data`); None for no such volume."""
        check_name(name)
        with self._lock:
            return self._store.data_dir(name) if self._store.exists(name) else None

    def list(self) -> Sequence[str]:
        with self._lock:
            return self._store.names()

    def status(self, name: str) -> Mapping[str, Any]:
        check_name(name)
        with self._lock:
            if self._plan(name) is None:
                return {}
            return {"mounted": bool(kernel.filesystems_at(self._store.data_dir(name)))}

    def restore(self, in_use: Mapping[str, Sequence[str]]) -> None:
        with self._lock:
            names = self._store.names()
            for unknown in sorted(set(in_use) - set(names)):
                self._log.warning("volume %s is in use but does not exist any more", unknown)
            for name in names:
                holders = set(in_use.get(name, ()))
                self._store.record_mount_ids(name, holders)
                try:
                    plan = self._plan(name)
                    if plan is None:
                        continue
                    mounted = bool(kernel.filesystems_at(self._store.data_dir(name)))
                    if holders and not mounted:
                        self._attach(name, plan)
                    elif not holders and mounted:
                        self._detach(name)
                except VolumeDriverError as exc:  # one broken volume must not stop the daemon
                    self._log.warning("restoring volume %s: %s", name, exc)

    # -- mounting -------------------------------------------------------------------------

    def _plan(self, name: str) -> MountPlan | None:
        options = self._store.options(name)
        if options is None:
            raise VolumeDriverError(f"no such volume: {name}")
        return plan_mount(options)

    def _attach(self, name: str, plan: MountPlan) -> None:
        check_device(plan)  # it may have gone since the volume was created
        data = self._store.data_dir(name)
        try:
            if plan.bind:
                kernel.mount(plan.device, data, None, plan.flags & (kernel.MS_BIND | kernel.MS_REC), None)
                if plan.flags & ~(kernel.MS_BIND | kernel.MS_REC):
                    # a bind ignores other flags on its first call; a remount applies them
                    kernel.mount(None, data, None, plan.flags | kernel.MS_REMOUNT, None)
            else:
                kernel.mount(plan.device, data, plan.fstype, plan.flags, data_for_kernel(plan) or None)
            if plan.propagation:
                kernel.mount(None, data, None, plan.propagation, None)
        except OSError as exc:
            if kernel.filesystems_at(data):
                kernel.detach_everything_under(data)  # a half-applied mount (the remount failed)
            raise VolumeDriverError(_mount_failure(name, plan, exc)) from None

    def _detach(self, name: str) -> None:
        data = self._store.data_dir(name)
        try:
            kernel.detach_everything_under(data)
        except OSError as exc:
            raise VolumeDriverError(f"cannot unmount volume {name} from {data}: {exc.strerror}; "
                                    "find what holds it with `findmnt -R` and unmount it") from None


def _describe(options: Mapping[str, str]) -> str:
    if not options:
        return "none"
    return " ".join(f"{key}={without_secrets(value)}" for key, value in sorted(options.items()))


def _mount_failure(name: str, plan: MountPlan, exc: OSError) -> str:
    what = (f"binding {plan.device}" if plan.bind
            else f"mounting {plan.fstype} {plan.device} with o={without_secrets(plan.data) or '(none)'}")
    message = f"failed to mount local volume {name}: {what}: {exc.strerror or exc}"
    hints = {
        errno.ENODEV: f"the kernel has no {plan.fstype} filesystem (check type=, or modprobe {plan.fstype})",
        errno.ENOTBLK: f"{plan.device} is not a block device (check device=)",
        errno.EINVAL: "the kernel refused the options: check type=, device= and o=",
        errno.EPERM: "mounting needs root (CAP_SYS_ADMIN)",
        errno.EACCES: "the device or server refused access",
    }
    hint = hints.get(exc.errno or 0)
    return f"{message} ({hint})" if hint else message
