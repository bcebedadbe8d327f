"""Where local volumes live on disk, and how they appear and disappear in one step.

    <home>/<name>/_data         the data (mode 0755, root's, like Docker's)
    <home>/<name>/opts.json     the options it was created with
    <home>/<name>/mounts.json   the mount ids holding it

A volume is built as `<home>/.creating-<name>-<random>/` and renamed into place, and is
renamed to `.removing-<name>-<random>` before it is deleted, so a crash leaves either the
whole volume or a dot-named leftover, which the next start deletes. Volume names start with
a letter or digit, so they never collide with these.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

from dockyard import mounts as kernel
from dockyard.drivers.volume import VolumeDriverError

NAME_PATTERN = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
MAX_NAME_LENGTH = 200  # leaves room for the `.creating-` prefix and suffix in a 255-byte file name
STAGING_PREFIX = ".creating-"
REMOVING_PREFIX = ".removing-"
DATA_DIR, OPTIONS_FILE, MOUNTS_FILE = "_data", "opts.json", "mounts.json"


def check_name(name: str) -> None:
    """Docker's rule for volume names; it also keeps every name a single path component."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise VolumeDriverError(
            f"{name!r} includes invalid characters for a local volume name, only "
            f'"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed (at least two characters). '
            "If you intended to pass a host directory, use absolute path")
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
        raise VolumeDriverError(f"{path} is damaged: fix or delete it "
                                "(a missing opts.json makes a plain volume)") from None


def delete_tree(path: Path) -> None:
    """Delete a directory tree, after detaching anything mounted inside it: deleting through
    a bind mount would delete the host directory's files."""
    kernel.detach_everything_under(path)
    if not path.is_dir() or path.is_symlink():
        path.unlink(missing_ok=True)
        return
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        shutil.rmtree(path)  # again, to raise the error that kept it


class VolumeStore:
    def __init__(self, home: Path) -> None:
        self.home = home

    def volume_dir(self, name: str) -> Path:
        return self.home / name

    def data_dir(self, name: str) -> Path:
        return self.home / name / DATA_DIR

    def names(self) -> list[str]:
        return sorted(entry.name for entry in os.scandir(self.home)
                      if NAME_PATTERN.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False))

    def exists(self, name: str) -> bool:
        return self.volume_dir(name).is_dir()

    def options(self, name: str) -> dict[str, str] | None:
        """The options `name` was created with, or None when there is no such volume. A
        volume directory without opts.json is a plain one (Docker writes none for those)."""
        try:
            return _read_json(self.volume_dir(name) / OPTIONS_FILE, {})
        except FileNotFoundError:
            return None

    def create(self, name: str, options: Mapping[str, str]) -> None:
        staging = self.home / f"{STAGING_PREFIX}{name}-{secrets.token_hex(4)}"
        try:
            staging.mkdir(mode=0o700)
            data = staging / DATA_DIR
            data.mkdir()
            os.chmod(data, 0o755)  # not left to the umask: Docker's _data is 0755
            write_json(staging / OPTIONS_FILE, dict(options))
            write_json(staging / MOUNTS_FILE, [])
            os.chmod(staging, 0o755)
            os.rename(staging, self.volume_dir(name))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

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
