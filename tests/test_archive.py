"""dockyard.plugin.archive: applying hostile layer tars safely, whiteouts in both styles, and
tars written from trees that apply back to the same tree (unit and property tests)."""

from __future__ import annotations

import io
import logging
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest
from dockyard.plugin import archive
from dockyard.plugin.archive import InvalidArchive, UnsafeArchive, apply_layer, tar_directory
from dockyard.plugin.contracts.storage import Change
from dockyard.plugin.testing.storage import LayerTar, StorageDriverSuite, assert_same_tree, tree_snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

AS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not AS_ROOT, reason="whiteout devices and ownership need root")
MODES = ("delete", "overlay") if AS_ROOT else ("delete",)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    path = tmp_path / "target"
    path.mkdir()
    return path


def assert_untouched(secret: Path) -> None:
    """The sentinel is still the plain file it was; checked before reading it, since a
    FIFO planted in its place would block the read forever."""
    found = os.lstat(secret)
    assert stat.S_ISREG(found.st_mode) and found.st_nlink == 1, f"{secret} was replaced or linked"
    assert secret.read_text() == "keep me"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def make_tree(root: Path) -> None:
    """A small tree with one of everything a layer holds."""
    (root / "etc").mkdir()
    (root / "etc" / "hostname").write_text("box\n")
    (root / "bin").mkdir(mode=0o755)
    (root / "bin" / "sh").write_bytes(b"\x7fELF" + os.urandom(200_000))
    os.chmod(root / "bin" / "sh", 0o4755)
    os.link(root / "bin" / "sh", root / "bin" / "ash")
    os.symlink("/etc/hostname", root / "absolute")
    os.symlink("../etc", root / "bin" / "relative")
    os.mkfifo(root / "fifo")
    (root / "empty").mkdir()
    (root / "locked").mkdir()
    (root / "locked" / "inside").write_text("x")
    os.chmod(root / "locked", 0o500)
    os.setxattr(root / "etc" / "hostname", "user.origin", b"\xff\x00binary")
    if AS_ROOT:
        os.chown(root / "etc" / "hostname", 1000, 70_000)
    os.utime(root / "etc" / "hostname", (0, 1_234_567_890))
    os.utime(root / "absolute", (0, 1_000_000_000), follow_symlinks=False)
    for directory in ("etc", "bin", "empty", "locked"):
        os.utime(root / directory, (0, 1_111_111_111))


# -- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("whiteouts", MODES)
def test_a_tree_survives_tar_directory_and_apply_layer(tmp_path: Path, target: Path, whiteouts: str) -> None:
    source = tmp_path / "source"
    source.mkdir()
    make_tree(source)
    tar = b"".join(tar_directory(source))
    written = apply_layer(io.BytesIO(tar), target, whiteouts)
    assert written == 200_004 + len("box\n") + len("x")  # the hard link's data is written once
    assert_same_tree(tree_snapshot(target), tree_snapshot(source))


def test_tar_directory_is_deterministic_and_ordered(tmp_path: Path) -> None:
    make_tree(tmp_path)
    first = list(tar_directory(tmp_path))
    assert b"".join(first) == b"".join(tar_directory(tmp_path))
    assert all(len(chunk) <= 64 * 1024 + 1024 for chunk in first) and len(first) > 3
    names = tarfile.open(fileobj=io.BytesIO(b"".join(first))).getnames()
    assert names == ["absolute", "bin", "bin/ash", "bin/relative", "bin/sh", "empty", "etc",
                     "etc/hostname", "fifo", "locked", "locked/inside"]
    members = {member.name: member for member in tarfile.open(fileobj=io.BytesIO(b"".join(first)))}
    assert members["bin/sh"].islnk() and members["bin/sh"].linkname == "bin/ash"
    assert members["etc/hostname"].pax_headers["SCHILY.xattr.user.origin"].encode(
        "utf-8", "surrogateescape") == b"\xff\x00binary"


def test_names_that_are_not_utf8_and_long_paths_round_trip(tmp_path: Path, target: Path) -> None:
    source = tmp_path / "source"
    deep = source / "/".join(["d" * 50] * 8)
    deep.mkdir(parents=True)
    (deep / ("f" * 200)).write_text("long")
    os.symlink("t" * 300, deep / "long-link")
    odd = os.fsencode(source) + b"/caf\xe9-latin1"
    with open(odd, "wb") as file:
        file.write(b"bytes")
    apply_layer(io.BytesIO(b"".join(tar_directory(source))), target)
    assert_same_tree(tree_snapshot(target), tree_snapshot(source))
    assert open(os.fsencode(target) + b"/caf\xe9-latin1", "rb").read() == b"bytes"


@pytest.mark.parametrize("tar_format", [tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT])
def test_gnu_ustar_and_pax_headers_are_understood(target: Path, tar_format: int) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as tar:
        name = "p" * 90 + "/" + "n" * 90  # ustar puts this in the prefix field
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = 3, 1_600_000_000, 0o600
        if tar_format != tarfile.USTAR_FORMAT:
            info.uid = 3_000_000  # base-256 in GNU headers, a PAX record in PAX ones
        tar.addfile(info, io.BytesIO(b"abc"))
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "x" * 99
        tar.addfile(link)
    apply_layer(io.BytesIO(buffer.getvalue()), target)
    found = os.lstat(target / name)
    assert (target / name).read_bytes() == b"abc" and found.st_mtime == 1_600_000_000
    if AS_ROOT and tar_format != tarfile.USTAR_FORMAT:
        assert found.st_uid == 3_000_000
    assert os.readlink(target / "link") == "x" * 99


def test_pax_mtimes_keep_their_fraction(target: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("f")
        info.pax_headers = {"mtime": "1600000000.25"}
        tar.addfile(info)
    apply_layer(io.BytesIO(buffer.getvalue()), target)
    assert os.lstat(target / "f").st_mtime_ns == 1_600_000_000_250_000_000


def test_the_stream_is_read_to_its_end_and_never_seeked(target: Path) -> None:
    class OneWayStream(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data, self.position = data, 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            piece = self.data[self.position:self.position + min(len(buffer), 777)]  # short reads
            buffer[:len(piece)] = piece
            self.position += len(piece)
            return len(piece)

        def seek(self, *args):
            raise AssertionError("apply_layer seeked")

    data = LayerTar().file("a", b"x" * 100_000).dir("d").file("d/b", b"y").bytes() + bytes(5000)
    stream = OneWayStream(data)
    apply_layer(io.BufferedReader(stream), target)
    assert stream.position == len(data)
    assert (target / "d" / "b").read_bytes() == b"y"


def test_apply_leaks_no_file_descriptors(tmp_path: Path, target: Path) -> None:
    before = open_fds()
    deep = LayerTar()
    path = ""
    for number in range(300):  # deeper than the directory fd cache
        path += f"/d{number}"
        deep.dir(path.lstrip("/")).file(f"{path.lstrip('/')}/f", b"x")
    apply_layer(deep.stream(), target)
    for tar in StorageDriverSuite.hostile_tars(tmp_path / "outside").values():
        with pytest.raises(UnsafeArchive):
            apply_layer(tar.stream(), target)
    assert open_fds() <= before  # other tests' sockets may close meanwhile; none may stay open


# -- whiteouts ----------------------------------------------------------------------------


def lower_copy(target: Path) -> None:
    """What a vfs layer starts from: a full copy of the parent."""
    (target / "a").mkdir()
    for name in ("x", "y"):
        (target / "a" / name).write_text(name)
    (target / "d" / "sub").mkdir(parents=True)
    (target / "d" / "p").write_text("p")
    (target / "d" / "sub" / "r").write_text("r")
    (target / "f").write_text("f")


@pytest.mark.parametrize("marker_first", [True, False])
def test_delete_whiteouts_remove_paths_and_opaque_dirs_keep_only_this_layer(
        target: Path, marker_first: bool) -> None:
    lower_copy(target)
    tar = LayerTar().whiteout("f").dir("a").whiteout("a/x").dir("d")
    if marker_first:
        tar.opaque("d").dir("d/sub").file("d/sub/new", b"n")
    else:
        tar.dir("d/sub").file("d/sub/new", b"n").opaque("d")
    tar.file("a/.wh..wh.plnk", b"aufs bookkeeping is ignored")
    apply_layer(tar.stream(), target)
    assert sorted(str(path.relative_to(target)) for path in target.rglob("*")) == \
        ["a", "a/y", "d", "d/sub", "d/sub/new"]


@needs_root
def test_overlay_whiteouts_become_devices_and_opaque_xattrs(target: Path) -> None:
    tar = (LayerTar().whiteout("f").dir("d").opaque("d").file("d/new", b"n")
           .whiteout("e").dir("e").file("e/fresh", b"f"))  # deleted, then made anew
    apply_layer(tar.stream(), target, whiteouts="overlay")
    whiteout = os.lstat(target / "f")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert os.getxattr(target / "d", archive.OVERLAY_OPAQUE_XATTR) == b"y"
    assert os.getxattr(target / "e", archive.OVERLAY_OPAQUE_XATTR) == b"y"
    assert sorted(os.listdir(target)) == ["d", "e", "f"]


@pytest.mark.parametrize("whiteouts", MODES)
def test_later_entries_replace_earlier_ones_whatever_their_type(target: Path, whiteouts: str) -> None:
    tar = (LayerTar().dir("a", mode=0o700).file("a/x", b"x").symlink("a", "elsewhere")  # dir -> symlink
           .file("b", b"file").dir("b").file("b/y", b"y")  # file -> dir
           .symlink("c", "/etc").file("c", b"not through the symlink"))  # symlink -> file
    apply_layer(tar.stream(), target, whiteouts)
    assert os.readlink(target / "a") == "elsewhere"
    assert (target / "b" / "y").read_bytes() == b"y"
    assert (target / "c").read_bytes() == b"not through the symlink"


def test_a_file_where_a_directory_should_be_is_a_broken_layer(target: Path) -> None:
    with pytest.raises(InvalidArchive, match="'a' is not a directory"):
        apply_layer(LayerTar().file("a", b"x").file("a/b", b"y").stream(), target)


def test_whiteouts_of_missing_paths_are_harmless(target: Path) -> None:
    apply_layer(LayerTar().whiteout("nothing/here").whiteout("absent").stream(), target)
    assert os.listdir(target) == []


# -- hostile and broken input ---------------------------------------------------------------


@pytest.mark.parametrize("whiteouts", MODES)
def test_every_hostile_layer_is_rejected_with_a_named_entry(tmp_path: Path, whiteouts: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("keep me")
    for case, tar in StorageDriverSuite.hostile_tars(outside).items():
        target = tmp_path / f"target-{len(os.listdir(tmp_path))}"
        target.mkdir()
        with pytest.raises(UnsafeArchive, match="unsafe layer entry '.+': .+; the layer was rejected"):
            apply_layer(tar.stream(), target, whiteouts)
        assert os.listdir(outside) == ["secret"], case
        assert_untouched(outside / "secret")


def test_absolute_names_are_relative_to_the_layer(target: Path) -> None:
    apply_layer(LayerTar().file("/etc/passwd", b"root:x:0:0").file("./a/./b", b"b").stream(), target)
    assert (target / "etc" / "passwd").read_bytes() == b"root:x:0:0"
    assert (target / "a" / "b").read_bytes() == b"b"


def test_hard_links_may_reach_the_parent_copy_in_delete_mode_only(target: Path) -> None:
    (target / "lib").mkdir()
    (target / "lib" / "libc.so").write_text("libc")
    apply_layer(LayerTar().hardlink("libc-link", "lib/libc.so").stream(), target)
    assert os.lstat(target / "libc-link").st_ino == os.lstat(target / "lib" / "libc.so").st_ino
    if AS_ROOT:
        with pytest.raises(UnsafeArchive, match="not in the layer"):
            apply_layer(LayerTar().hardlink("other-link", "lib/absent.so").stream(), target, "overlay")


def test_a_size_limit_stops_the_layer_at_the_entry_that_exceeds_it(target: Path) -> None:
    tar = LayerTar().file("small", bytes(1000)).file("big", bytes(5000))
    with pytest.raises(UnsafeArchive, match="'big': the layer's content exceeds the limit of 4096 bytes"):
        apply_layer(tar.stream(), target, max_bytes=4096)
    assert apply_layer(LayerTar().file("fits", bytes(4096)).stream(), target, max_bytes=4096) == 4096


def test_device_nodes_are_skipped_with_one_warning(target: Path, caplog) -> None:
    tar = LayerTar().dir("dev").device("dev/null", 1, 3).device("dev/sda", 8, 0).file("dev/keep")
    with caplog.at_level(logging.WARNING, logger="dockyard.plugin.archive"):
        apply_layer(tar.stream(), target)
    assert os.listdir(target / "dev") == ["keep"]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "skipped 2 device node(s)" in warnings[0] and "/dev" in warnings[0]


def test_overlay_xattrs_in_a_tar_are_dropped(target: Path) -> None:
    tar = LayerTar().dir("d", xattrs={"trusted.overlay.redirect": b"/etc", "user.kept": b"1"})
    apply_layer(tar.stream(), target)
    assert os.listxattr(target / "d") == ["user.kept"]


GOOD = LayerTar().file("a", b"x" * 3000).file("b", b"y").bytes()


@pytest.mark.parametrize("cut, names", [
    (0, []),  # an empty stream is an empty layer, to Go's archive/tar and so to Docker
    (3584, ["a"]),  # at an entry boundary, before b's header
    (3512, ["a"]),  # right after a's data, without its padding (umoci writes such tars)
    (4097, ["a", "b"]),
])
def test_a_stream_ending_between_entries_ends_the_layer_as_in_docker(target: Path, cut: int,
                                                                      names: list[str]) -> None:
    apply_layer(io.BytesIO(GOOD[:cut]), target)
    assert sorted(os.listdir(target)) == names


@pytest.mark.parametrize("data, message", [
    (GOOD[:1024], "ends inside the data of 'a'"),
    (GOOD[:3550], "ends inside the data of 'a'"),  # inside the padding after a's data
    (GOOD[:3584 + 100], "ends inside a tar header"),  # b's header starts at 3584
    (b"\x1f\x8b\x08\x00" + bytes(1020), "gzip data, not a tar"),
    (b"\x28\xb5\x2f\xfd" + bytes(1020), "zstd data, not a tar"),
    (b"<html>404 not found</html>".ljust(1024), "not a tar archive"),
    (GOOD[:3584] + b"garbage!" * 64 + GOOD[4096:], "bad header checksum"),
])
def test_broken_streams_are_invalid_archives_that_say_so(target: Path, data: bytes, message: str) -> None:
    with pytest.raises(InvalidArchive, match=message) as caught:
        apply_layer(io.BytesIO(data), target)
    assert "uncompressed tar" in str(caught.value)


def test_gnu_sparse_files_are_refused(tmp_path: Path, target: Path) -> None:
    sparse = tmp_path / "sparse"
    with open(sparse, "wb") as file:
        file.truncate(10 << 20)
        file.write(b"data")
    tar_file = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", str(tar_file), "-C", str(tmp_path), "sparse"],
                   check=True)
    with pytest.raises(InvalidArchive, match="sparse"):
        apply_layer(open(tar_file, "rb"), target)


# -- comparing trees -------------------------------------------------------------------------


def test_tree_changes_compare_metadata_not_content(tmp_path: Path) -> None:
    parent, layer = tmp_path / "parent", tmp_path / "layer"
    parent.mkdir()
    for name in ("same", "chmod", "touched", "rewritten", "sneaky", "gone"):
        (parent / name).write_text("12345")
    (parent / "dir").mkdir()
    (parent / "dir" / "deep").write_text("x")
    subprocess.run(["cp", "-a", str(parent), str(layer)], check=True)
    os.chmod(layer / "chmod", 0o600)
    os.utime(layer / "touched", ns=(0, 5))
    (layer / "rewritten").write_text("123456")
    sneaky = os.lstat(layer / "sneaky")
    (layer / "sneaky").write_text("54321")  # same size, and the mtime put back: not seen
    os.utime(layer / "sneaky", ns=(sneaky.st_atime_ns, sneaky.st_mtime_ns))
    (layer / "gone").unlink()
    shutil.rmtree(layer / "dir")
    (layer / "dir").write_text("a file now")
    assert archive.tree_changes(layer, parent) == [
        Change("/chmod", "C"), Change("/dir", "C"), Change("/gone", "D"), Change("/rewritten", "C"),
        Change("/touched", "C"),
    ]
    assert archive.tree_changes(layer, None)[0] == Change("/chmod", "A")


@needs_root
def test_overlay_changes_read_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    upper.mkdir()
    lower_copy(lower)
    apply_layer(LayerTar().whiteout("f").dir("a").whiteout("a/x").file("a/z", b"z").dir("d")
                .opaque("d").file("d/p", b"new p").stream(), upper, "overlay")
    assert archive.overlay_changes(upper, lower) == [
        Change("/a", "C"), Change("/a/x", "D"), Change("/a/z", "A"), Change("/d", "C"),
        Change("/d/p", "C"), Change("/d/sub", "D"), Change("/f", "D"),
    ]
    assert [change.kind for change in archive.overlay_changes(upper, None)] == ["A", "D", "A", "A", "A", "D"]
    names = tarfile.open(fileobj=io.BytesIO(b"".join(archive.overlay_diff(upper)))).getnames()
    assert names == ["a", "a/.wh.x", "a/z", "d", "d/.wh..wh..opq", "d/p", ".wh.f"]


# -- properties ------------------------------------------------------------------------------

OUT = "{OUT}"  # the sentinel directory's path, filled in per example
_components = st.sampled_from(["a", "b", "evil", "..", ".", "", "secret", ".wh.a", ".wh..wh..opq",
                               ".wh..", "link", OUT.strip("/")])
_hostile_names = st.one_of(
    st.lists(_components, min_size=1, max_size=5).map("/".join),
    st.sampled_from([f"{OUT}/pwned", "../" * 12 + f"{OUT}/pwned", "evil/pwned", "evil/secret",
                     "a/../../pwned", "/evil/x", "link/secret", "a/evil/x", "evil/.wh.secret",
                     "evil/.wh..wh..opq", "link/sub/deeper", "evil"]),
)
_targets = st.sampled_from([OUT, f"{OUT}/secret", "../" * 12 + OUT, "a", "/", "..", "../evil", "evil",
                            "evil/secret", "/etc/passwd", "link", "a/file"])
# Symlinks are planted where the other entries then try to write through them.
_planted = st.tuples(st.just("symlink"), st.sampled_from(["evil", "link", "a", "a/evil"]), _targets,
                     st.just(b""))
_others = st.tuples(st.sampled_from(["file", "dir", "symlink", "hardlink", "fifo", "device"]),
                    _hostile_names, _targets, st.binary(max_size=64))
_entries = st.lists(st.one_of(_planted, _others), min_size=1, max_size=12)


def _hostile_tar(entries, outside: Path) -> LayerTar:
    tar = LayerTar()
    fill = lambda text: text.replace(OUT, str(outside).lstrip("/"))  # noqa: E731
    for kind, name, target, data in entries:
        name = fill(name) if not name.startswith(OUT) else "/" + fill(name)
        target = "/" + fill(target) if target.startswith(OUT) else fill(target)
        if kind == "file":
            tar.file(name, data)
        elif kind == "dir":
            tar.dir(name)
        elif kind == "symlink":
            tar.symlink(name, target)
        elif kind == "hardlink":
            tar.hardlink(name, target)
        elif kind == "fifo":
            tar.fifo(name)
        else:
            tar.device(name)
    return tar


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=_entries, whiteouts=st.sampled_from(MODES))
def test_property_no_archive_writes_outside_its_target(entries, whiteouts) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        outside, target = scratch / "outside", scratch / "target"
        outside.mkdir()
        target.mkdir()
        (outside / "secret").write_text("keep me")
        (target / "a").mkdir()  # something for whiteouts and links to aim at
        (target / "a" / "file").write_text("in the layer")
        try:
            apply_layer(_hostile_tar(entries, outside).stream(), target, whiteouts)
        except UnsafeArchive:
            pass
        assert sorted(os.listdir(scratch)) == ["outside", "target"]
        assert os.listdir(outside) == ["secret"]
        assert_untouched(outside / "secret")
        for path in target.rglob("*"):
            found = os.lstat(path)
            assert not stat.S_ISBLK(found.st_mode)
            assert not stat.S_ISCHR(found.st_mode) or (whiteouts == "overlay" and found.st_rdev == 0)


_names = st.text(alphabet="abcxyz-_.é ", min_size=1, max_size=6).filter(
    lambda name: name not in (".", "..") and not name.startswith(".wh."))
_files = st.tuples(st.just("file"), st.binary(max_size=2000),
                   st.sampled_from([0o644, 0o755, 0o600, 0o4755, 0o444, 0o2711]),
                   st.integers(0, 2**32), st.integers(0, 70_000))
_symlinks = st.tuples(st.just("symlink"), st.sampled_from(["a", "/etc/passwd", "../x", "é", "."]))
_nodes = st.recursive(_files | _symlinks,
                      lambda children: st.dictionaries(_names, children, max_size=4).map(
                          lambda content: ("dir", content)), max_leaves=20)
_trees = st.dictionaries(_names, _nodes, max_size=5)  # what goes in the root directory


def _materialize(root: Path, content: dict, files: list[Path]) -> None:
    for name, node in content.items():
        path = root / name
        if node[0] == "dir":
            path.mkdir()
            _materialize(path, node[1], files)
            os.utime(path, ns=(0, 1_600_000_000 * 10**9))
        elif node[0] == "symlink":
            os.symlink(node[1], path)
        else:
            _, data, mode, mtime, owner = node
            path.write_bytes(data)
            if AS_ROOT:
                os.chown(path, owner, owner // 2)
            os.chmod(path, mode)
            os.utime(path, (0, mtime))
            files.append(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_trees, links=st.lists(st.integers(0, 100), max_size=3),
       whiteouts=st.sampled_from(MODES))
def test_property_tar_directory_then_apply_layer_reproduces_the_tree(tree, links, whiteouts) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        source, target = Path(scratch) / "source", Path(scratch) / "target"
        source.mkdir()
        target.mkdir()
        files: list[Path] = []
        _materialize(source, tree, files)
        for number, index in enumerate(links):
            if files:
                os.link(files[index % len(files)], source / f"hard-link-{number}")
        apply_layer(io.BytesIO(b"".join(tar_directory(source))), target, whiteouts)
        assert_same_tree(tree_snapshot(target), tree_snapshot(source))


_operations = st.lists(st.tuples(
    st.sampled_from(["write", "append", "delete", "chmod", "mkdir", "symlink", "replace-by-file"]),
    st.integers(0, 1000), _names), max_size=8)


def _change(root: Path, operations) -> None:
    """What a container might do; symlinks are never followed (one points at /etc/passwd)."""
    for operation, index, name in operations:
        paths = sorted(root.rglob("*"))
        path = paths[index % len(paths)] if paths else root
        real_dir = path.is_dir() and not path.is_symlink()
        directory = path if real_dir else path.parent
        new = directory / name
        if operation == "write" and not (new.is_dir() and not new.is_symlink()):
            if new.is_symlink():
                new.unlink()
            new.write_bytes(name.encode() * 3)
        elif operation == "append" and paths and path.is_file() and not path.is_symlink():
            with open(path, "ab") as file:
                file.write(b"more")
        elif operation in ("delete", "replace-by-file") and paths:
            if real_dir:
                shutil.rmtree(path)
            else:
                path.unlink()
            if operation == "replace-by-file":
                path.write_text("replaced")
        elif operation == "chmod" and paths and not path.is_symlink():
            os.chmod(path, 0o700 if real_dir else 0o640)
        elif operation == "mkdir" and not os.path.lexists(new):
            new.mkdir()
        elif operation == "symlink" and not os.path.lexists(new):
            os.symlink(name, new)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_trees, operations=_operations)
def test_property_tree_diff_turns_the_parent_into_the_layer(tree, operations) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        parent, layer, rebuilt = (Path(scratch) / name for name in ("parent", "layer", "rebuilt"))
        parent.mkdir()
        _materialize(parent, tree, [])
        subprocess.run(["cp", "-a", str(parent), str(layer)], check=True)
        _change(layer, operations)
        subprocess.run(["cp", "-a", str(parent), str(rebuilt)], check=True)
        apply_layer(io.BytesIO(b"".join(archive.tree_diff(layer, parent))), rebuilt)
        assert_same_tree(tree_snapshot(rebuilt), tree_snapshot(layer))


@needs_root
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_trees, operations=_operations)
def test_property_overlay_diff_turns_the_lower_into_the_merged_view(tree, operations) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        lower, upper, work, merged, rebuilt, upper_again = (
            Path(scratch) / name for name in ("lower", "upper", "work", "merged", "rebuilt", "upper2"))
        for path in (lower, upper, work, merged, upper_again):
            path.mkdir()
        _materialize(lower, tree, [])
        options = f"lowerdir={lower},upperdir={upper},workdir={work},redirect_dir=off,index=off"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)], check=True)
        try:
            _change(merged, operations)
            expected = tree_snapshot(merged)
        finally:
            subprocess.run(["umount", str(merged)], check=True)
        diff = b"".join(archive.overlay_diff(upper))
        subprocess.run(["cp", "-a", str(lower), str(rebuilt)], check=True)
        apply_layer(io.BytesIO(diff), rebuilt, "delete")
        assert_same_tree(tree_snapshot(rebuilt), expected)
        apply_layer(io.BytesIO(diff), upper_again, "overlay")  # and back into an upper dir
        options = f"lowerdir={upper_again}:{lower}"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)], check=True)
        try:
            assert_same_tree(tree_snapshot(merged), expected)
        finally:
            subprocess.run(["umount", str(merged)], check=True)
