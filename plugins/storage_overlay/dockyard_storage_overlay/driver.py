"""The overlay storage driver: layers stacked by the kernel's overlayfs, as moby's overlay2.

Layout under the driver's home (one directory per layer, named by its id):

    <id>/diff/     what the layer itself holds; overlayfs' upper dir for writable layers
    <id>/link      the layer's short name: l/<short> is a symlink to ../<id>/diff
    <id>/lower     (layers with a parent) the stack below, top first: "l/AB12:l/CD34"
    <id>/parent    (layers with a parent) the parent's id
    <id>/work      (writable layers) overlayfs' work dir
    <id>/merged    (layers with a parent) where mount() mounts the layer
    l/<short>      short symlinks, so a mount of a deep stack fits in one page of options
    .new-*, .gone-*  layers being created or deleted; recover() finishes the job

A base layer mounts as its diff dir; an image layer with a parent as a read-only overlay
of its diff over its parent's stack; a writable (container) layer as a read-write
overlay with its diff as the upper dir. Mounts are counted in memory and rebuilt from
/proc/self/mountinfo by recover().
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from dockyard.plugin import LAYER_ID_PATTERN, Change, DriverContext, archive

from dockyard_storage_overlay import kernel

LINKS = "l"
_SHORT_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_SHORT_LENGTH = 10  # "l/" + 10 + ":" = 13 bytes a layer: some 300 layers fit in one page
# Pinned so that upper dirs only ever hold what overlay_diff understands (no redirects,
# no metacopy stubs, no index), whatever the kernel's defaults.
_FEATURES = "index=off,redirect_dir=off,metacopy=off"
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class OverlayDriver:
    """The `overlay` storage driver (see the module docstring for the layout)."""

    def __init__(self, context: DriverContext) -> None:
        self.home = Path(context.home)
        self.log = context.logger
        self.links = self.home / LINKS
        self.links.mkdir(exist_ok=True)
        self._mounts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._doomed: list[Path] = []
        self._doomed_ready = threading.Condition()
        self._deleter = threading.Thread(target=self._delete_set_aside, name="overlay delete",
                                         daemon=True)
        self._deleter.start()
        check_upper_filesystem(self.home)

    # -- layers -----------------------------------------------------------------------

    def _layer(self, layer_id: str) -> Path:
        if not LAYER_ID_PATTERN.match(layer_id) or layer_id == LINKS:
            raise ValueError(f"invalid layer id {layer_id!r}: use letters, digits, '_', '.', '-' "
                             f"(up to 128, not starting with a symbol, and not {LINKS!r})")
        return self.home / layer_id

    def _existing(self, layer_id: str) -> Path:
        layer = self._layer(layer_id)
        if not (layer / "diff").is_dir():
            raise FileNotFoundError(f"layer {layer_id!r} does not exist in {self.home}")
        return layer

    def create_layer(self, layer_id: str, parent_id: str | None) -> None:
        self._create(layer_id, parent_id, writable=False)

    def create_writable_layer(self, layer_id: str, parent_id: str | None) -> None:
        self._create(layer_id, parent_id, writable=True)

    def _create(self, layer_id: str, parent_id: str | None, writable: bool) -> None:
        layer = self._layer(layer_id)
        with self._lock:
            if layer.exists():
                raise FileExistsError(f"layer {layer_id!r} already exists in {self.home}")
            lower = ""
            if parent_id is not None:
                parent = self._existing(parent_id)
                parent_lower = parent / "lower"
                lower = f"{LINKS}/{(parent / 'link').read_text()}"
                if parent_lower.exists():
                    lower += ":" + parent_lower.read_text()
                depth = lower.count(":") + 1
                if len(self._mount_options(layer_id, lower, writable=True, absolute=False)) >= _PAGE_SIZE:
                    raise OSError(f"layer {layer_id!r} would sit on {depth} layers, more than one "
                                  "overlay mount can stack; flatten the image (docker export | "
                                  "docker import) or build it with fewer layers")
            # Built aside and renamed into place: a crash leaves a .new-* that recover() removes.
            staging = self.home / f".new-{layer_id}-{secrets.token_hex(4)}"
            staging.mkdir()
            (staging / "diff").mkdir()
            (staging / "diff").chmod(0o755)  # whatever the umask: the layer's / in the merged view
            short = self._new_short_name()
            (staging / "link").write_text(short)
            if parent_id is not None:
                (staging / "lower").write_text(lower)
                (staging / "parent").write_text(parent_id)
                (staging / "merged").mkdir()
                if writable:
                    (staging / "work").mkdir()
            (self.links / short).symlink_to(f"../{layer_id}/diff")
            staging.rename(layer)

    def _new_short_name(self) -> str:
        while True:
            short = "".join(secrets.choice(_SHORT_ALPHABET) for _ in range(_SHORT_LENGTH))
            if not os.path.lexists(self.links / short):
                return short

    def apply_diff(self, layer_id: str, parent_id: str | None, tar_stream: BinaryIO) -> int:
        diff = self._existing(layer_id) / "diff"
        return archive.apply_layer(tar_stream, diff, whiteouts="overlay")

    def exists(self, layer_id: str) -> bool:
        return (self._layer(layer_id) / "diff").is_dir()

    def remove(self, layer_id: str) -> None:
        layer = self._layer(layer_id)
        with self._lock:
            if not layer.exists():
                return
            self._mounts.pop(layer_id, None)
            doomed = self._set_aside(layer)
        # The id is free once the layer is set aside; its files go in the background, so
        # `docker rm` (and `run --rm`) never waits for a big delete. A crash leaves a
        # .gone-* directory, which recover() deletes.
        with self._doomed_ready:
            self._doomed.append(doomed)
            self._doomed_ready.notify()

    def _delete_set_aside(self) -> None:
        while True:
            with self._doomed_ready:
                while not self._doomed:
                    self._doomed_ready.wait()
                doomed = self._doomed[0]
            shutil.rmtree(doomed, ignore_errors=True)
            with self._doomed_ready:
                self._doomed.pop(0)
                self._doomed_ready.notify_all()

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until every removed layer's files are gone (tests, shutdown)."""
        with self._doomed_ready:
            return self._doomed_ready.wait_for(lambda: not self._doomed, timeout)

    def _discard(self, layer: Path) -> None:
        shutil.rmtree(self._set_aside(layer))

    def _set_aside(self, layer: Path) -> Path:
        """Unmount a stale mount, drop the short link, and rename the layer to a .gone-*
        name: its id is free at once, and a crash before the delete ends leaves only a
        .gone-* for recover(). Returns the new name."""
        for mount_point in sorted(kernel.mounts_under(layer), reverse=True):
            kernel.unmount(mount_point)
        try:
            short = (layer / "link").read_text()
            link = self.links / short
            if os.readlink(link) == f"../{layer.name}/diff":
                link.unlink()
        except (FileNotFoundError, NotADirectoryError, ValueError):
            pass
        doomed = self.home / f".gone-{layer.name}-{secrets.token_hex(4)}"
        layer.rename(doomed)
        return doomed

    # -- mounts -----------------------------------------------------------------------

    def _mount_options(self, layer_id: str, lower: str, writable: bool, absolute: bool) -> str:
        prefix = f"{self.home}/" if absolute else ""
        lowers = ":".join(prefix + path for path in lower.split(":"))
        if writable:
            return (f"lowerdir={lowers},upperdir={prefix}{layer_id}/diff,"
                    f"workdir={prefix}{layer_id}/work,{_FEATURES}")
        # A read-only image layer: its own diff on top of the stack, no upper dir at all.
        return f"lowerdir={prefix}{layer_id}/diff:{lowers},{_FEATURES}"

    def mount(self, layer_id: str) -> Path:
        layer = self._existing(layer_id)
        with self._lock:
            count = self._mounts.get(layer_id, 0)
            lower_file = layer / "lower"
            if not lower_file.exists():  # a base layer is its diff dir
                self._mounts[layer_id] = count + 1
                return layer / "diff"
            merged = layer / "merged"
            if count == 0 and merged not in kernel.mounts_under(merged):
                writable = (layer / "work").is_dir()
                lower = lower_file.read_text()
                options = self._mount_options(layer_id, lower, writable, absolute=True)
                flags = 0 if writable else kernel.MS_RDONLY
                if len(options) < _PAGE_SIZE:
                    kernel.mount_overlay(merged, options, flags)
                else:  # moby's way out: paths relative to home, mounted from there
                    options = self._mount_options(layer_id, lower, writable, absolute=False)
                    kernel.mount_overlay(merged, options, flags, cwd=self.home)
            self._mounts[layer_id] = count + 1
            return merged

    def unmount(self, layer_id: str) -> None:
        """Drop one mount reference. Unmounting a layer that is not mounted does nothing
        (logged): after a crash the engine may not know what is still mounted."""
        layer = self._layer(layer_id)
        with self._lock:
            count = self._mounts.get(layer_id, 0)
            if count > 1:
                self._mounts[layer_id] = count - 1
                return
            if count == 0:
                self.log.warning("overlay: unmount of layer %s, which is not mounted", layer_id)
                return
            del self._mounts[layer_id]
            merged = layer / "merged"
            if merged in kernel.mounts_under(merged):
                kernel.unmount(merged)

    # -- diffs ------------------------------------------------------------------------

    def _check_parent(self, layer_id: str, parent_id: str | None) -> Path:
        layer = self._existing(layer_id)
        parent_file = layer / "parent"
        actual = parent_file.read_text() if parent_file.exists() else None
        if actual != parent_id:
            raise ValueError(f"layer {layer_id!r} sits on {actual!r}, not {parent_id!r}: overlay "
                             "diffs a layer against its own parent only")
        return layer

    def diff(self, layer_id: str, parent_id: str | None) -> Iterator[bytes]:
        layer = self._check_parent(layer_id, parent_id)
        return archive.overlay_diff(layer / "diff")

    def changes(self, layer_id: str, parent_id: str | None) -> list[Change]:
        layer = self._check_parent(layer_id, parent_id)
        if parent_id is None:
            return archive.overlay_changes(layer / "diff", None)
        lower = self.mount(parent_id)
        try:
            return archive.overlay_changes(layer / "diff", lower)
        finally:
            self.unmount(parent_id)

    def diff_size(self, layer_id: str, parent_id: str | None) -> int:
        """Bytes of regular files in the layer's diff dir (a file copied up to be
        changed counts whole), each hard-linked inode once."""
        diff = self._check_parent(layer_id, parent_id) / "diff"
        seen: set[int] = set()
        total = 0
        for directory, _, files in os.walk(diff):
            for name in files:
                found = os.lstat(os.path.join(directory, name))
                if stat.S_ISREG(found.st_mode) and found.st_ino not in seen:
                    seen.add(found.st_ino)
                    total += found.st_size
        return total

    # -- the driver's life ------------------------------------------------------------

    def status(self) -> Sequence[tuple[str, str]]:
        return [
            ("Backing Filesystem", kernel.filesystem_type(self.home)),
            ("Supports d_type", "true"),
            ("Using metacopy", "false"),
            ("Native Overlay Diff", "true"),
            ("userxattr", "false"),
        ]

    def recover(self, known_layer_ids: set[str]) -> list[str]:
        removed = []
        with self._lock:
            self._mounts.clear()
            mounted = kernel.mounts_under(self.home)
            for entry in sorted(self.home.iterdir()):
                name = entry.name
                if name == LINKS:
                    continue
                if name in known_layer_ids and entry.is_dir() and not name.startswith("."):
                    if entry / "merged" in mounted:
                        self._mounts[name] = 1  # mounted before the restart: counts once
                    self._relink(entry)
                    continue
                if name.startswith(".gone-"):
                    # Already set aside: a crash's leftover, unless the background deleter
                    # has it queued now (a layer collected during this start-up).
                    with self._doomed_ready:
                        queued = entry in self._doomed
                    if not queued:
                        shutil.rmtree(entry, ignore_errors=True)
                    continue
                self.log.info("overlay: removing %s, which no image or container uses", entry)
                if entry.is_dir() and not entry.is_symlink():
                    self._discard(entry)
                else:
                    entry.unlink()
                if not name.startswith("."):
                    removed.append(name)
            for link in self.links.iterdir():
                if not link.exists():  # dangling: its layer is gone
                    link.unlink()
        return removed

    def _relink(self, layer: Path) -> None:
        """Recreate the short link of a known layer if a crash lost it."""
        try:
            link = self.links / (layer / "link").read_text()
        except FileNotFoundError:
            return
        if not os.path.lexists(link):
            link.symlink_to(f"../{layer.name}/diff")

    def cleanup(self) -> None:
        """Finish deleting removed layers. Container mounts stay (live restore); the
        short-lived mounts of parents that `changes` makes are undone before it returns."""
        self.settle(timeout=60)


def check_upper_filesystem(home: Path) -> None:
    """Mount a tiny overlay in `home` and check that deleting a lower file leaves a
    whiteout and that a re-made directory turns opaque: a filesystem without d_type or
    trusted xattrs (xfs with ftype=0, overlay itself, some network filesystems) fails
    here, once, at start-up, instead of at the first container."""
    probe = home / f".new-probe-{secrets.token_hex(4)}"
    try:
        for name in ("lower1", "lower2", "upper", "work", "merged"):
            (probe / name).mkdir(parents=True)
        (probe / "lower2" / "file").write_text("x")
        (probe / "lower1" / "dir").mkdir()
        (probe / "lower1" / "dir" / "old").write_text("x")
        options = (f"lowerdir={probe}/lower1:{probe}/lower2,upperdir={probe}/upper,"
                   f"workdir={probe}/work,{_FEATURES}")
        try:
            kernel.mount_overlay(probe / "merged", options)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise RuntimeError(
                f"the filesystem of {home} ({kernel.filesystem_type(home)}) cannot hold overlayfs "
                f"upper dirs (test mount: {reason}); put the data root on ext4 or xfs with "
                "ftype=1, or start with --storage-driver vfs") from exc
        try:
            (probe / "merged" / "file").unlink()
            shutil.rmtree(probe / "merged" / "dir")
            (probe / "merged" / "dir").mkdir()
            whiteout = archive.is_overlay_whiteout(os.lstat(probe / "upper" / "file"))
            opaque = os.getxattr(probe / "upper" / "dir", archive.OVERLAY_OPAQUE_XATTR) == b"y"
        except OSError as exc:
            whiteout = opaque = False
            problem = exc.strerror
        else:
            problem = "deleted files leave no whiteout" if not whiteout else "no opaque directories"
        finally:
            kernel.unmount(probe / "merged")
        if not (whiteout and opaque):
            raise RuntimeError(
                f"overlayfs on {home} ({kernel.filesystem_type(home)}) cannot record deletions as "
                f"image layers need ({problem}); start with --storage-driver vfs")
    finally:
        shutil.rmtree(probe, ignore_errors=True)
