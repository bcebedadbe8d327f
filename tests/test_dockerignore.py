""".dockerignore reading and matching, with moby/patternmatcher's semantics."""

from __future__ import annotations

import os

import pytest
from dockyard.formats.dockerignore import (
    BadPattern,
    IgnoreMatcher,
    load,
    match_path_pattern,
    read_patterns,
    walk,
)


def test_read_patterns_cleans_and_skips_comments():
    text = "\ufeff# comment\n\n  /build/  \n./docs\n! important \n a/../b \n  # not a comment\n"
    assert read_patterns(text) == ["build", "docs", "!important", "b", "# not a comment"]


@pytest.mark.parametrize(("patterns", "path", "excluded"), [
    (["**/*.go"], "main.go", True),
    (["**/*.go"], "a/b/c.go", True),
    (["**/*.go"], "a/b/c.gox", False),
    (["*.md", "!README.md"], "README.md", False),
    (["*.md", "!README.md"], "docs/x.md", False),  # * stays in one component
    (["*/*.md"], "docs/x.md", True),
    (["build"], "build/x/y", True),  # a directory excludes all under it
    (["build/"], "build/x", True),
    (["build", "!build/keep"], "build/keep", False),
    (["build", "!build/keep"], "build/keep/deep", False),
    (["build", "!build/keep"], "build/other", True),
    (["!x", "x"], "x", True),  # order matters: the last match wins
    (["x", "!x"], "x", False),
    (["temp?"], "temp1", True),
    (["temp?"], "temp12", False),
    (["[a-c]at"], "bat", True),
    (["[^a-c]at"], "bat", False),
    (["dir/**"], "dir/a/b", True),
    (["dir/**"], "dir", False),
    (["**"], "anything/at/all", True),
    (["a/**/b"], "a/b", True),
    (["a/**/b"], "a/x/y/b", True),
    (["**/node_modules"], "node_modules", True),
    (["**/node_modules"], "x/node_modules/y", True),
    (["foo\\*"], "foo*", True),
    (["foo\\*"], "foox", False),
    (["/abs"], "abs", True),
])
def test_matches(patterns, path, excluded):
    assert IgnoreMatcher(read_patterns("\n".join(patterns))).matches(path) is excluded


def test_context_root_is_never_excluded():
    assert not IgnoreMatcher(["*"]).matches(".")


def test_bad_patterns():
    with pytest.raises(BadPattern, match='illegal exclusion pattern: "!"'):
        IgnoreMatcher(["!"])
    with pytest.raises(BadPattern, match="syntax error in pattern"):
        IgnoreMatcher(["[a"])


@pytest.mark.parametrize(("pattern", "name", "matched"), [
    ("*.txt", "a.txt", True),
    ("*.txt", "d/a.txt", False),
    ("d/*", "d/a", True),
    ("?", "a", True),
    ("[abc]", "b", True),
    ("[^abc]", "b", False),
    ("\\*", "*", True),
    ("a[", "a[", None),
    ("[]", "x", None),
])
def test_go_filepath_match(pattern, name, matched):
    if matched is None:
        with pytest.raises(BadPattern):
            match_path_pattern(pattern, name)
    else:
        assert match_path_pattern(pattern, name) is matched


def make_tree(root, files):
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def test_walk_keeps_dockerfile_and_dockerignore_and_exceptions(tmp_path):
    make_tree(tmp_path, ["Dockerfile", ".dockerignore", "a.go", "src/b.go", "important.go", "build/x",
                         "build/keep/y", "notes.md"])
    (tmp_path / "link").symlink_to("/etc")
    (tmp_path / ".dockerignore").write_text("**/*.go\n!important.go\nbuild\n!build/keep\nDockerfile\n"
                                            ".dockerignore\n*.md\n")
    kept = list(walk(tmp_path, load(tmp_path)))
    assert kept == [".dockerignore", "Dockerfile", "build", "build/keep", "build/keep/y", "important.go",
                    "link", "src"]
    assert load(tmp_path).matches("Dockerfile")  # the builder itself still treats it as ignored


def test_walk_skips_excluded_directories_without_spelled_out_exceptions(tmp_path):
    make_tree(tmp_path, ["vendor/a/keep", "vendor/b"])
    assert list(walk(tmp_path, IgnoreMatcher(["vendor", "!**/keep"]))) == []


def test_load_without_dockerignore(tmp_path):
    matcher = load(tmp_path)
    assert not matcher and not matcher.matches("x")
    os.mkdir(tmp_path / "d")
    assert list(walk(tmp_path, matcher)) == ["d"]
