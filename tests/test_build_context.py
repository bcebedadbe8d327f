"""Build contexts: unpacking hostile tars safely, COPY sources, the Dockerfile, checksums."""

from __future__ import annotations

import bz2
import gzip
import io
import os
import tarfile

import pytest
from dockyard.builder.context import (
    ContextError,
    ContextSource,
    checksum,
    dockerfile_from_context,
    extract_context,
    is_url,
    resolve_sources,
    source_files,
)
from dockyard.formats.dockerignore import IgnoreMatcher


def tar_of(*members) -> bytes:
    """members: (name, kind, data_or_target, mode)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload, mode in members:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "char": tarfile.CHRTYPE}[kind]
            if kind in ("symlink", "hardlink"):
                info.linkname = payload
            tar.addfile(info)
    return buffer.getvalue()


def test_plain_gzip_and_bzip2_contexts(tmp_path):
    data = tar_of(("Dockerfile", "file", b"FROM scratch\n", 0o644), ("src", "dir", None, 0o750),
                  ("src/run.sh", "file", b"#!/bin/sh\n", 0o755), ("src/link", "symlink", "run.sh", 0o777),
                  ("src/hard", "hardlink", "src/run.sh", 0o755))
    for index, packed in enumerate((data, gzip.compress(data), bz2.compress(data))):
        target = tmp_path / str(index)
        target.mkdir()
        extract_context(io.BytesIO(packed), target)
        assert (target / "Dockerfile").read_bytes() == b"FROM scratch\n"
        assert (target / "src/run.sh").stat().st_mode & 0o777 == 0o755
        assert (target / "src").stat().st_mode & 0o777 == 0o750
        assert os.readlink(target / "src/link") == "run.sh"
        assert (target / "src/hard").stat().st_ino == (target / "src/run.sh").stat().st_ino


def test_missing_parents_are_created(tmp_path):
    extract_context(io.BytesIO(tar_of(("./a/b/c", "file", b"x", 0o600))), tmp_path)
    assert (tmp_path / "a/b/c").read_bytes() == b"x"


@pytest.mark.parametrize(("members", "problem"), [
    ([("../evil", "file", b"x", 0o644)], "outside of the build context"),
    ([("a/../../evil", "file", b"x", 0o644)], "outside of the build context"),
    ([("/abs", "file", b"x", 0o644)], "absolute path"),
    ([("link", "symlink", "/tmp", 0o777), ("link/file", "file", b"x", 0o644)], "symlink"),
    ([("link", "symlink", "..", 0o777), ("link/evil", "file", b"x", 0o644)], "symlink"),
    ([("hard", "hardlink", "../../etc/passwd", 0o644)], "outside of the build context"),
    ([("hard", "hardlink", "missing", 0o644)], "not in the context before it"),
    ([("dev", "char", None, 0o644)], "device node"),
])
def test_hostile_tars_are_refused(tmp_path, members, problem):
    context = tmp_path / "context"
    context.mkdir()
    with pytest.raises(ContextError, match=problem):
        extract_context(io.BytesIO(tar_of(*members)), context)
    assert not (tmp_path / "evil").exists()


def test_symlink_then_file_through_it_never_writes_outside(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    context = tmp_path / "context"
    context.mkdir()
    members = [("escape", "symlink", str(outside), 0o777), ("escape/pwned", "file", b"x", 0o644)]
    with pytest.raises(ContextError):
        extract_context(io.BytesIO(tar_of(*members)), context)
    assert list(outside.iterdir()) == []


def test_a_symlink_is_replaced_not_written_through(tmp_path):
    outside = tmp_path / "target"
    outside.write_text("keep")
    context = tmp_path / "context"
    context.mkdir()
    members = [("f", "symlink", str(outside), 0o777), ("f", "file", b"new", 0o644)]
    extract_context(io.BytesIO(tar_of(*members)), context)
    assert outside.read_text() == "keep" and (context / "f").read_bytes() == b"new"


def test_limits_and_garbage_fail_loudly(tmp_path):
    with pytest.raises(ContextError, match="larger than the limit of 3 bytes"):
        extract_context(io.BytesIO(tar_of(("big", "file", b"1234", 0o644))), tmp_path, max_bytes=3)
    with pytest.raises(ContextError, match="not a tar|corrupt"):
        extract_context(io.BytesIO(b"this is not a tar at all" * 40), tmp_path)
    truncated = tar_of(("f", "file", b"x" * 5000, 0o644))[:1500]
    with pytest.raises(ContextError):
        extract_context(io.BytesIO(truncated), tmp_path)


def test_a_tar_ending_right_after_its_last_member_is_whole(tmp_path):
    # What the docker CLI sends when it adds a Dockerfile from outside the context:
    # the last member's data, then nothing (no padding, no end-of-archive blocks).
    whole = tar_of(("a", "file", b"first", 0o644), ("b", "file", b"x" * 47, 0o644))
    unpadded = whole[:512 * 3 + 47]
    extract_context(io.BytesIO(unpadded), tmp_path)
    assert (tmp_path / "a").read_bytes() == b"first" and (tmp_path / "b").read_bytes() == b"x" * 47


# -- the Dockerfile ---------------------------------------------------------------------


def test_dockerfile_from_context(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/build.Dockerfile").write_text("FROM a\n")
    (tmp_path / ".dockerfile.0123456789abcdef0123").write_text("FROM b\n")
    assert dockerfile_from_context(tmp_path, "sub/build.Dockerfile") == ("sub/build.Dockerfile", "FROM a\n")
    assert dockerfile_from_context(tmp_path, ".dockerfile.0123456789abcdef0123")[1] == "FROM b\n"
    with pytest.raises(ContextError, match="Cannot locate specified Dockerfile: Dockerfile"):
        dockerfile_from_context(tmp_path)
    (tmp_path / "dockerfile").write_text("FROM c\n")
    assert dockerfile_from_context(tmp_path) == ("dockerfile", "FROM c\n")
    with pytest.raises(ContextError, match="Forbidden path outside the build context: ../x"):
        dockerfile_from_context(tmp_path, "../x")
    (tmp_path / "empty").write_text("")
    with pytest.raises(ContextError, match=r"the Dockerfile \(empty\) cannot be empty"):
        dockerfile_from_context(tmp_path, "empty")


# -- COPY sources -----------------------------------------------------------------------


@pytest.fixture
def context(tmp_path):
    for name in ("a.txt", "b.txt", "dir/c.txt", "dir/sub/d.txt", "secret.key", "dir/e.log"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
    (tmp_path / "inner").symlink_to("dir")
    (tmp_path / "up").symlink_to("../..")
    (tmp_path / "abs").symlink_to("/dir")
    return tmp_path


def names(sources):
    return [s.name for s in sources]


def test_plain_sources_and_leading_slash_or_dot(context):
    found = resolve_sources(context, ["a.txt", "/b.txt", "./dir", "."])
    assert names(found) == ["a.txt", "b.txt", "dir", "."]
    assert found[2].is_dir and found[3].path == context


def test_globs_match_files_and_directories(context):
    assert names(resolve_sources(context, ["*.txt"])) == ["a.txt", "b.txt"]
    assert names(resolve_sources(context, ["dir/*.txt"])) == ["dir/c.txt"]
    assert names(resolve_sources(context, ["d?r"])) == ["dir"]


def test_symlinks_are_followed_inside_the_context(context):
    (inner,) = resolve_sources(context, ["inner/c.txt"])
    assert inner.name == "inner/c.txt" and inner.path == context / "dir/c.txt"
    (absolute,) = resolve_sources(context, ["abs/c.txt"])  # "/dir" means the context's dir
    assert absolute.path == context / "dir/c.txt"
    (clamped,) = resolve_sources(context, ["up/a.txt"])  # ".." stops at the context root
    assert clamped.path == context / "a.txt"


@pytest.mark.parametrize("source", ["../x", "dir/../../x", "/../x", ".."])
def test_sources_outside_the_context(context, source):
    with pytest.raises(ContextError, match=f"Forbidden path outside the build context: {source} \\(\\)"):
        resolve_sources(context, [source])


def test_missing_and_ignored_sources(context):
    message = ("COPY failed: file not found in build context or excluded by .dockerignore: "
               "stat missing: file does not exist")
    with pytest.raises(ContextError, match=message):
        resolve_sources(context, ["missing"])
    with pytest.raises(ContextError, match="stat secret.key: file does not exist"):
        resolve_sources(context, ["secret.key"], IgnoreMatcher(["*.key"]))
    with pytest.raises(ContextError, match="ADD failed: no source files were specified"):
        resolve_sources(context, ["*.nothing"], instruction="ADD")


def test_source_files_leave_out_ignored_entries(context):
    (directory,) = resolve_sources(context, ["dir"])
    listed = [relative for relative, _ in source_files(directory, context, IgnoreMatcher(["**/*.log"]))]
    assert listed == ["c.txt", "sub", "sub/d.txt"]
    (single,) = resolve_sources(context, ["a.txt"])
    assert [r for r, _ in source_files(single, context)] == [""]


def test_checksum_follows_content_and_mode_not_mtime(context):
    sources = resolve_sources(context, ["dir", "a.txt"])
    first = checksum(sources, context)
    assert first.startswith("sha256:") and checksum(sources, context) == first
    os.utime(context / "dir/c.txt", (1, 1))
    assert checksum(sources, context) == first
    os.chmod(context / "dir/c.txt", 0o600)
    after_chmod = checksum(sources, context)
    assert after_chmod != first
    (context / "dir/c.txt").write_text("changed")
    assert checksum(sources, context) != after_chmod
    ignored = checksum(sources, context, IgnoreMatcher(["dir/e.log"]))
    (context / "dir/e.log").write_text("ignored changes do not count")
    assert checksum(sources, context, IgnoreMatcher(["dir/e.log"])) == ignored


def test_checksum_covers_symlink_targets(context):
    link = ContextSource("l", context / "l")
    (context / "l").symlink_to("a.txt")
    before = checksum([link], context)
    (context / "l").unlink()
    (context / "l").symlink_to("b.txt")
    assert checksum([link], context) != before


def test_is_url():
    assert is_url("https://example.com/x.tgz") and is_url("http://x/y")
    assert not is_url("x.tgz") and not is_url("git@github.com:x/y")
