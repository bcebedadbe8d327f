"""Dockerfile variable expansion and word splitting, as Docker's builder does it.

This module owns the small shell-like language of Dockerfile arguments: `$VAR`,
`${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`,
`${VAR?msg}`, the pattern forms `${VAR#p}`, `${VAR##p}`, `${VAR%p}`, `${VAR%%p}`,
`${VAR/p/r}`, `${VAR//p/r}`, single and double quotes, and the escape character (`\\`,
or a backtick after `# escape=``). It never runs anything.

Which instructions expand variables (the builder calls `expand` on their words with the
stage's ARG and ENV values): see `EXPANDING_INSTRUCTIONS`. RUN, CMD, ENTRYPOINT, SHELL
and HEALTHCHECK do not: the shell in the container expands their `$VAR`s at run time.

- `expand(word, env)` is Docker's ProcessWord: quotes and escapes are removed, variables
  substituted, spaces kept. Used for one word: a COPY source, a WORKDIR, an ENV value.
- `expand_words(word, env)` is ProcessWords: the same, then split on unquoted
  whitespace (whitespace coming from a variable splits too). Used for EXPOSE.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# ONBUILD is in Docker's list because its trigger is expanded when it fires (in the child
# build), following the rules of the instruction it wraps.
EXPANDING_INSTRUCTIONS = frozenset({
    "ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME",
    "WORKDIR", "ONBUILD",
})

_SPECIAL_PARAMETERS = "@*#?-$!0"


class ExpansionError(ValueError):
    """A word has a syntax error (`${}`, an unclosed quote) or `${VAR?}` found VAR unset.
    The message names the word, in Docker's wording."""


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """`word` with quotes and escapes removed and variables from `env` substituted."""
    return _Lexer(word, env, escape).run()[0]


def expand_words(word: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """`word` expanded as by `expand`, then split into words on unquoted whitespace."""
    return _Lexer(word, env, escape).run()[1]


class _Words:
    """Collects words the way Docker does: whitespace ends a word unless it was quoted
    or escaped ("raw"); an empty pair of quotes alone makes no word."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.current: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.current:
                self.words.append("".join(self.current))
                self.current = []
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.current.append(text)
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def finish(self) -> list[str]:
        if "".join(self.current):
            self.words.append("".join(self.current))
            self.current = []
        return self.words


class _Lexer:
    def __init__(self, word: str, env: Mapping[str, str], escape: str) -> None:
        self.text = word
        self.pos = 0
        self.env = env
        self.escape = escape

    def run(self) -> tuple[str, list[str]]:
        try:
            return self._until(None, raw_escapes=False)
        except ExpansionError as exc:
            raise ExpansionError(f"failed to process {_go_quote(self.text)}: {exc}") from None

    # -- scanning helpers

    def _peek(self) -> str | None:
        return self.text[self.pos] if self.pos < len(self.text) else None

    def _next(self) -> str | None:
        ch = self._peek()
        if ch is not None:
            self.pos += 1
        return ch

    # -- grammar

    def _until(self, stop: str | None, raw_escapes: bool) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        while (ch := self._peek()) is not None:
            if stop is not None and ch == stop:
                self._next()
                return "".join(result), words.finish()
            if ch == "$":
                value = self._dollar()
                result.append(value)
                words.add_string(value)
            elif ch == "'":
                value = self._single_quoted()
                result.append(value)
                words.add_raw(value)
            elif ch == '"':
                value = self._double_quoted(raw_escapes)
                result.append(value)
                words.add_raw(value)
            else:
                self._next()
                if ch == self.escape:
                    if raw_escapes:
                        words.add_raw(ch)
                        result.append(ch)
                    ch = self._next()
                    if ch is None:
                        break  # an escape at the very end is dropped
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop is not None:
            raise ExpansionError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.finish()

    def _single_quoted(self) -> str:
        self._next()
        start = self.pos
        end = self.text.find("'", start)
        if end < 0:
            raise ExpansionError("unexpected end of statement while looking for matching single-quote")
        self.pos = end + 1
        return self.text[start:end]

    def _double_quoted(self, raw_escapes: bool) -> str:
        self._next()
        result: list[str] = []
        while True:
            ch = self._peek()
            if ch is None:
                raise ExpansionError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self._next()
                return "".join(result)
            if ch == "$":
                result.append(self._dollar())
                continue
            self._next()
            if ch == self.escape:
                if raw_escapes:
                    result.append(ch)
                following = self._peek()
                if following is None:
                    continue
                if following in ('"', "$", self.escape):
                    ch = self._next()
            result.append(ch)

    def _name(self) -> str:
        ch = self._peek()
        if ch is None:
            return ""
        if ch.isdigit():
            start = self.pos
            while (ch := self._peek()) is not None and ch.isdigit():
                self._next()
            return self.text[start:self.pos]
        if ch in _SPECIAL_PARAMETERS:
            self._next()
            return ch
        start = self.pos
        while (ch := self._peek()) is not None and (ch.isalnum() or ch == "_"):
            self._next()
        return self.text[start:self.pos]

    def _dollar(self) -> str:
        self._next()
        if self._peek() != "{":
            name = self._name()
            return self.env.get(name, "") if name else "$"
        self._next()
        ch = self._peek()
        if ch is None:
            raise ExpansionError("syntax error: missing '}'")
        if ch in "{}:":
            raise ExpansionError("syntax error: bad substitution")
        name = self._name()
        ch = self._next()
        if ch == "}":
            return self.env.get(name, "")
        if ch == "/":
            return self._replace(name)
        modifier = ch or ""
        null_is_unset = ch == ":"
        if null_is_unset:
            ch = self._next()
            modifier += ch or ""
        if ch not in ("+", "-", "?", "#", "%"):
            raise ExpansionError(f"unsupported modifier ({modifier}) in substitution")
        pattern_op = ch in ("#", "%")
        if null_is_unset and pattern_op:
            raise ExpansionError(f"unsupported modifier ({modifier}) in substitution")
        word = self._modifier_word("}", pattern_op, "syntax error: missing '}'")
        value = self.env.get(name)
        is_set = value is not None
        value = value or ""
        empty_or_unset = not is_set or (null_is_unset and value == "")
        if ch == "-":
            return word if empty_or_unset else value
        if ch == "+":
            return "" if empty_or_unset else word
        if ch == "?":
            if not is_set:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
            if empty_or_unset:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        longest = word.startswith(ch)
        if longest:
            word = word[1:]
        if ch == "#":
            return _trim_prefix(word, value, longest)
        return _trim_prefix(_reverse_pattern(word), value[::-1], longest)[::-1]

    def _modifier_word(self, stop: str, raw_escapes: bool, missing: str) -> str:
        try:
            return self._until(stop, raw_escapes)[0]
        except ExpansionError:
            if self._peek() is None:
                raise ExpansionError(missing) from None
            raise

    def _replace(self, name: str) -> str:
        replace_all = self._peek() == "/"
        if replace_all:
            self._next()
        pattern = self._modifier_word("/", True, "syntax error: missing '/' in ${}")
        replacement = self._modifier_word("}", True, "syntax error: missing '}'")
        value = self.env.get(name, "")
        regex = _pattern_regex(pattern, greedy=True, anchored=False)
        return regex.sub(lambda _: replacement, value, count=0 if replace_all else 1)


def _pattern_regex(pattern: str, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A shell wildcard pattern (`*`, `?`, backslash escapes; no brackets) as a regex."""
    out = ["^"] if anchored else []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*" if greedy else ".*?")
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            if i < len(pattern) and pattern[i] in "}/":
                continue  # escaped so as not to end the ${...}; not part of the pattern
            if i >= len(pattern) or pattern[i] not in "*?\\":
                shown = pattern[i] if i < len(pattern) else ""
                raise ExpansionError(f"invalid pattern ({pattern}) in substitution: "
                                     f"invalid escape '\\{shown}'")
            out.append(re.escape(pattern[i]))
            i += 1
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _trim_prefix(pattern: str, value: str, longest: bool) -> str:
    match = _pattern_regex(pattern, greedy=longest, anchored=True).match(value)
    return value[match.end():] if match else value


def _reverse_pattern(pattern: str) -> str:
    """`pattern` reversed, keeping each backslash in front of the character it escapes,
    so that a shortest-suffix match becomes a shortest-prefix match on reversed text."""
    tokens: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            tokens.append(pattern[i:i + 2])
            i += 2
        else:
            tokens.append(pattern[i])
            i += 1
    return "".join(reversed(tokens))


def _go_quote(text: str) -> str:
    """`text` quoted as Go's %q does for printable text, so messages match Docker's."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
