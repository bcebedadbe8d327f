"""A directory per volume: the on-disk records of a volume driver, for driver authors.

    <home>/<name>/opts.json     the options the volume was created with
    <home>/<name>/mounts.json   the mount ids holding it
    <home>/<name>/...           whatever else the driver keeps there (local: `_data`)

A volume is built in `<home>/.creating-<name>-<random>/` and renamed into place, and is
renamed to `.removing-<name>-<random>` before it is deleted, so a crash leaves either the
whole volume or a dot-named leftover, which `delete_leftovers` removes at the next start.
Volume names start with a letter or digit, so they never collide with these. Deleting
detaches whatever is mounted inside first: deleting through a bind mount would delete
the host directory's files.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

from dockyard.plugin import mounts as kernel
from dockyard.plugin.contracts.volume import VolumeDriverError

NAME_PATTERN = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
MAX_NAME_LENGTH = 200  # leaves room for the `.creating-` prefix and suffix in a 255-byte file name
STAGING_PREFIX = ".creating-"
REMOVING_PREFIX = ".removing-"
OPTIONS_FILE, MOUNTS_FILE = "opts.json", "mounts.json"


def check_name(name: str, kind: str = "", hint: str = "") -> None:
    """Docker's rule for volume names; it also keeps every name a single path component.
    `kind` names the driver in the message ("local"), `hint` ends it."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        what = f"a {kind} volume name" if kind else "a volume name"
        raise VolumeDriverError(
            f"{name!r} includes invalid characters for {what}, only "
            f'"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed (at least two characters)'
            + (f". {hint}" if hint else ""))
    if len(name) > MAX_NAME_LENGTH:
        raise VolumeDriverError(f"volume name {name[:20]}... is {len(name)} characters long; "
                                f"use at most {MAX_NAME_LENGTH}")


def write_json(path: Path, value: object) -> None:
    """Replace `path` whole: a reader (or a crash) sees the old content or the new."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, sort_keys=True) + "\n")
    os.replace(temporary, path)


def _read_json(path: Path, missing: object):
    """A record's content; `missing` when the volume is there but the record is not. Raises
    FileNotFoundError when the volume itself is not there."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        if path.parent.is_dir():
            return missing
        raise
    except ValueError:
        raise VolumeDriverError(f"{path} is damaged: fix it, or delete the volume's directory "
                                f"{path.parent} (a missing {path.name} counts as empty)") from None


def delete_tree(path: Path) -> None:
    """Delete a directory tree (or a file), after detaching anything mounted inside it."""
    kernel.detach_everything_under(path)
    if not path.is_dir() or path.is_symlink():
        path.unlink(missing_ok=True)
        return
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        shutil.rmtree(path)  # again, to raise the error that kept it


class VolumeRecords:
    def __init__(self, home: Path) -> None:
        self.home = home

    def volume_dir(self, name: str) -> Path:
        return self.home / name

    def names(self) -> list[str]:
        return sorted(entry.name for entry in os.scandir(self.home)
                      if NAME_PATTERN.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False))

    def exists(self, name: str) -> bool:
        return self.volume_dir(name).is_dir()

    def options(self, name: str) -> dict[str, str] | None:
        """The options `name` was created with, or None when there is no such volume. A
        volume directory without opts.json has none (Docker writes none for plain volumes)."""
        try:
            return _read_json(self.volume_dir(name) / OPTIONS_FILE, {})
        except FileNotFoundError:
            return None

    def stage(self, name: str, options: Mapping[str, str]) -> Path:
        """Write a new volume's records where `names` does not see them yet; the driver
        adds what else it keeps there, then calls `commit` (or `discard`)."""
        staging = self.home / f"{STAGING_PREFIX}{name}-{secrets.token_hex(4)}"
        try:
            staging.mkdir(mode=0o700)
            write_json(staging / OPTIONS_FILE, dict(options))
            write_json(staging / MOUNTS_FILE, [])
            os.chmod(staging, 0o755)
        except BaseException:
            self.discard(staging)
            raise
        return staging

    def commit(self, staging: Path, name: str) -> None:
        os.rename(staging, self.volume_dir(name))

    @staticmethod
    def discard(staging: Path) -> None:
        delete_tree(staging)

    def remove(self, name: str) -> None:
        """Delete a volume whose data is not mounted any more."""
        doomed = self.home / f"{REMOVING_PREFIX}{name}-{secrets.token_hex(4)}"
        try:
            os.rename(self.volume_dir(name), doomed)
        except FileNotFoundError:
            return
        delete_tree(doomed)

    def mount_ids(self, name: str) -> set[str]:
        try:
            return set(_read_json(self.volume_dir(name) / MOUNTS_FILE, []))
        except FileNotFoundError:
            return set()

    def record_mount_ids(self, name: str, mount_ids: set[str]) -> None:
        write_json(self.volume_dir(name) / MOUNTS_FILE, sorted(mount_ids))

    def delete_leftovers(self) -> list[str]:
        """Delete what a crash mid-create or mid-remove left; returns the entries deleted."""
        deleted = []
        for entry in os.scandir(self.home):
            if entry.name.startswith((STAGING_PREFIX, REMOVING_PREFIX)):
                delete_tree(Path(entry.path))
                deleted.append(entry.name)
        return deleted
