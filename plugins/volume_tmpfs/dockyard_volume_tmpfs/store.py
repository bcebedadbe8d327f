"""The records of tmpfs volumes, kept under the driver's home so a volume outlives a reboot
(its content does not: the tmpfs is remounted empty):

    <home>/<name>/opts.json     the options it was created with
    <home>/<name>/mounts.json   the mount ids holding it

A volume's records are built in `<home>/.creating-<name>-<random>/` and renamed into place,
and renamed to `.removing-<name>-<random>` before they are deleted, so a crash leaves either
the whole volume or a dot-named leftover, which the next start deletes.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

from dockyard.drivers.volume import VolumeDriverError

NAME_PATTERN = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
MAX_NAME_LENGTH = 200  # leaves room for the `.creating-` prefix and suffix in a 255-byte file name
STAGING_PREFIX = ".creating-"
REMOVING_PREFIX = ".removing-"
OPTIONS_FILE, MOUNTS_FILE = "opts.json", "mounts.json"


def check_name(name: str) -> None:
    """Docker's rule for volume names; it also keeps every name a single path component."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise VolumeDriverError(
            f"{name!r} includes invalid characters for a volume name, only "
            f'"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed (at least two characters)')
    if len(name) > MAX_NAME_LENGTH:
        raise VolumeDriverError(f"volume name {name[:20]}... is {len(name)} characters long; "
                                f"use at most {MAX_NAME_LENGTH}")


def _write_json(path: Path, value: object) -> None:
    """Replace `path` whole: a reader (or a crash) sees the old content or the new."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, sort_keys=True) + "\n")
    os.replace(temporary, path)


def _read_json(path: Path, missing: object):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        if path.parent.is_dir():
            return missing
        raise
    except ValueError:
        raise VolumeDriverError(f"{path} is damaged: fix it, or delete the volume's directory "
                                f"{path.parent}") from None


class VolumeRecords:
    def __init__(self, home: Path) -> None:
        self.home = home

    def names(self) -> list[str]:
        return sorted(entry.name for entry in os.scandir(self.home)
                      if NAME_PATTERN.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False))

    def exists(self, name: str) -> bool:
        return (self.home / name).is_dir()

    def options(self, name: str) -> dict[str, str] | None:
        """The options `name` was created with, or None when there is no such volume."""
        try:
            return _read_json(self.home / name / OPTIONS_FILE, {})
        except FileNotFoundError:
            return None

    def stage(self, name: str, options: Mapping[str, str]) -> Path:
        """Write a new volume's records where `list` does not see them yet."""
        staging = self.home / f"{STAGING_PREFIX}{name}-{secrets.token_hex(4)}"
        try:
            staging.mkdir(mode=0o700)
            _write_json(staging / OPTIONS_FILE, dict(options))
            _write_json(staging / MOUNTS_FILE, [])
        except BaseException:
            self.discard(staging)
            raise
        return staging

    def commit(self, staging: Path, name: str) -> None:
        os.rename(staging, self.home / name)

    @staticmethod
    def discard(staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def remove(self, name: str) -> None:
        doomed = self.home / f"{REMOVING_PREFIX}{name}-{secrets.token_hex(4)}"
        try:
            os.rename(self.home / name, doomed)
        except FileNotFoundError:
            return
        shutil.rmtree(doomed)

    def mount_ids(self, name: str) -> set[str]:
        try:
            return set(_read_json(self.home / name / MOUNTS_FILE, []))
        except FileNotFoundError:
            return set()

    def record_mount_ids(self, name: str, mount_ids: set[str]) -> None:
        _write_json(self.home / name / MOUNTS_FILE, sorted(mount_ids))

    def delete_leftovers(self) -> list[str]:
        """Delete what a crash mid-create or mid-remove left (records only: the tmpfs mounts
        live elsewhere); returns the entries deleted."""
        deleted = []
        for entry in os.scandir(self.home):
            if entry.name.startswith((STAGING_PREFIX, REMOVING_PREFIX)):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                deleted.append(entry.name)
        return deleted
