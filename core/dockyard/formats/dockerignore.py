""".dockerignore files and the matcher that applies them, with moby/patternmatcher's rules.

This module owns which files of a build context take part in a build:

- `read_patterns(text)` reads a .dockerignore: `#` comments (only at the start of a
  line), blank lines, `!` exceptions, patterns cleaned like Go's filepath.Clean and with
  a leading `/` removed (patterns are relative to the context root).
- `IgnoreMatcher(patterns).matches(path)` says whether a context-relative path is
  excluded. Patterns apply in order and the last one that matches wins; a pattern also
  matches every path under a directory it matches (`build` excludes `build/x/y`), so an
  exception can re-include a file under an excluded directory (`build` then
  `!build/keep`). `*` and `?` stay within one path component, `**` spans any number of
  them (`**/*.go`), `[...]` is a character class.
- `walk(root, matcher)` lists what a client puts in the context tar: the kept paths,
  where the Dockerfile and .dockerignore stay readable for the builder even when
  ignored (Docker's CLI adds `!Dockerfile` and `!.dockerignore` the same way). The
  builder then applies the plain matcher to COPY/ADD sources, so an ignored Dockerfile
  is still not copied.
- `match_path_pattern(pattern, name)` is Go's filepath.Match, also used for COPY globs.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

DOCKERIGNORE = ".dockerignore"
_UTF8_BOM = "\ufeff"


class BadPattern(ValueError):
    """A .dockerignore or COPY pattern is malformed (an unclosed `[`, a lone `!`)."""


def read_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore file, cleaned, in order (exceptions keep their `!`)."""
    patterns = []
    for number, line in enumerate(text.splitlines()):
        if number == 0:
            line = line.removeprefix(_UTF8_BOM)
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        exception = pattern.startswith("!")
        if exception:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = clean_path(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if exception else pattern)
    return patterns


def load(context_root: Path) -> IgnoreMatcher:
    """The matcher of the .dockerignore at the root of `context_root` (none: matches nothing)."""
    try:
        text = (Path(context_root) / DOCKERIGNORE).read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return IgnoreMatcher(())
    return IgnoreMatcher(read_patterns(text))


def clean_path(path: str) -> str:
    """Go's filepath.Clean on a slash-separated path ("" becomes ".")."""
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


class _Pattern:
    __slots__ = ("text", "exception", "components", "regex")

    def __init__(self, text: str, exception: bool) -> None:
        self.text = text
        self.exception = exception
        self.components = len(text.split("/"))
        self.regex = _compile_ignore_pattern(text)

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None


class IgnoreMatcher:
    """Decides which context-relative paths a list of .dockerignore patterns excludes."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self._patterns: list[_Pattern] = []
        for raw in patterns:
            text = raw.strip()
            if not text:
                continue
            text = clean_path(text)
            exception = text.startswith("!")
            if exception:
                if len(text) == 1:
                    raise BadPattern('illegal exclusion pattern: "!"')
                text = text[1:]
            match_path_pattern(text, ".")  # rejects malformed patterns now, as Docker does
            self._patterns.append(_Pattern(text, exception))

    @property
    def patterns(self) -> list[str]:
        return [("!" if p.exception else "") + p.text for p in self._patterns]

    @property
    def has_exceptions(self) -> bool:
        return any(p.exception for p in self._patterns)

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def matches(self, path: str) -> bool:
        """True if `path` (relative to the context root, `/`-separated) is excluded."""
        path = clean_path(path.lstrip("/")) if path not in ("", "/") else "."
        if path == ".":
            return False
        parent = posixpath.dirname(path)
        parents = parent.split("/") if parent else []
        excluded = False
        for pattern in self._patterns:
            # an exception can only undo an exclusion, and an exclusion only matters
            # while the path is still included
            if pattern.exception != excluded:
                continue
            matched = pattern.match(path)
            if not matched:
                matched = any(pattern.match("/".join(parents[:depth + 1])) for depth in range(len(parents)))
            if matched:
                excluded = not pattern.exception
        return excluded

    def keeping(self, *paths: str) -> IgnoreMatcher:
        """This matcher plus exceptions for `paths` that it would exclude."""
        extra = [clean_path(p) for p in paths if self.matches(p)]
        return IgnoreMatcher(self.patterns + ["!" + p for p in extra])

    def may_keep_under(self, directory: str) -> bool:
        """Whether an exception could re-include something under an excluded directory.
        Like Docker, only exceptions spelled with the directory as a prefix count
        (`!dir/keep` does, `!**/keep` does not), so excluded trees are skipped cheaply."""
        prefix = directory + "/"
        return any(p.exception and (p.text + "/").startswith(prefix) for p in self._patterns)


def walk(root: Path, matcher: IgnoreMatcher,
         keep: Iterable[str] = ("Dockerfile", DOCKERIGNORE)) -> Iterator[str]:
    """The context-relative paths under `root` that the context keeps, sorted, each
    directory before its content; symlinks are listed, never followed. The paths in
    `keep` are kept even when ignored. A kept file under an excluded directory comes
    with its parent directories, so that the tar recreates them."""
    matcher = matcher.keeping(*keep)
    root = Path(root)

    def visit(directory: str, pending_parents: list[str]) -> Iterator[str]:
        absolute = root / directory if directory else root
        with os.scandir(absolute) as scanned:
            entries = sorted(scanned, key=lambda e: e.name)
        for entry in entries:
            relative = f"{directory}/{entry.name}" if directory else entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            if matcher.matches(relative):
                if is_dir and matcher.may_keep_under(relative):
                    yield from visit(relative, pending_parents + [relative])
                continue
            yield from pending_parents
            pending_parents = []
            yield relative
            if is_dir:
                yield from visit(relative, [])

    yield from visit("", [])


# -- pattern compilation ----------------------------------------------------------------


@lru_cache(maxsize=1024)
def _compile_ignore_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex, following patternmatcher: `**` (with its
    following `/`) matches any number of components, `*` and `?` stay within one, a
    backslash escapes, `[...]` is a class. Exact and prefix patterns compile too."""
    out = []
    i = 0
    kind = "exact"
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*" and pattern[i:i + 1] == "*":
            starts = i == 1
            i += 1
            if pattern[i:i + 1] == "/":
                i += 1
            if i >= len(pattern):
                # a trailing `**` is a plain prefix test in patternmatcher (so `dir**`
                # also matches `dirx`), kept for fidelity
                out.append(".*")
                kind = "prefix" if kind == "exact" else "regex"
            else:
                out.append("(?:.*/)?")
                kind = "regex"
            if starts:
                kind = "suffix"
        elif ch == "*":
            out.append("[^/]*")
            kind = "regex"
        elif ch == "?":
            out.append("[^/]")
            kind = "regex"
        elif ch == "\\":
            if i < len(pattern):
                out.append(re.escape(pattern[i]))
                i += 1
                kind = "regex"
            else:
                out.append(re.escape("\\"))
        elif ch == "[":
            regex, i = _class(pattern, i)
            out.append(regex)
            kind = "regex"
        else:
            out.append(re.escape(ch))
    if kind == "prefix":
        return re.compile(re.escape(pattern[:-2]), re.DOTALL)
    if kind == "suffix" and not any(c in pattern[2:] for c in "*?[\\"):
        suffix = pattern[2:]
        if not suffix:
            return re.compile("", re.DOTALL)
        return re.compile(f"(?:.*{re.escape(suffix)}|{re.escape(suffix.removeprefix('/'))})$", re.DOTALL)
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def match_path_pattern(pattern: str, name: str) -> bool:
    """Go's filepath.Match: `*` is any run of non-`/` characters, `?` one such character,
    `[abc]`, `[a-z]`, `[^a]` classes, backslash escapes; the whole of `name` must match.
    Raises BadPattern for a malformed pattern, whatever `name` is."""
    return _compile_glob(pattern).fullmatch(name) is not None


def has_glob(pattern: str) -> bool:
    """Whether `pattern` uses any of filepath.Match's special characters."""
    return any(c in pattern for c in "*?[\\")


@lru_cache(maxsize=1024)
def _compile_glob(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i >= len(pattern):
                raise BadPattern(f"syntax error in pattern: {pattern}")
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "[":
            regex, i = _class(pattern, i)
            out.append(regex)
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _class(pattern: str, start: int) -> tuple[str, int]:
    """The regex for the character class whose body starts at `start` (after `[`), and
    the index just past its `]`. Go's rules: `^` negates; every item is a character or a
    range `a-z`; `-` and `]` must be escaped inside an item; `[]` is malformed."""
    i = start
    negated = pattern[i:i + 1] == "^"
    if negated:
        i += 1
    items: list[str] = []
    item_count = 0

    def character() -> str:
        nonlocal i
        if i >= len(pattern) or pattern[i] in "-]":
            raise BadPattern(f"syntax error in pattern: {pattern}")
        if pattern[i] == "\\":
            i += 1
            if i >= len(pattern):
                raise BadPattern(f"syntax error in pattern: {pattern}")
        ch = pattern[i]
        i += 1
        return ch

    while True:
        if i < len(pattern) and pattern[i] == "]" and item_count:
            i += 1
            break
        item_count += 1
        low = character()
        if pattern[i:i + 1] == "-":
            i += 1
            high = character()
            if low <= high:  # Go accepts a reversed range, which matches nothing
                items.append(f"{re.escape(low)}-{re.escape(high)}")
        else:
            items.append(re.escape(low))
    if not items:
        return ("." if negated else "(?!)"), i
    return ("[^" if negated else "[") + "".join(items) + "]", i
