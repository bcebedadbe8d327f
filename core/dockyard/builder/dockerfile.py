"""The Dockerfile parser: text in, stages of checked instructions out. Nothing is run here.

This module owns the classic Dockerfile syntax as Docker reads it: parser directives
(`# escape=`` and `# syntax=`, only before anything else), `#` comments, line
continuations with the escape character (comment lines and empty lines inside a
continuation are skipped, the latter with a warning, as Docker does), case-insensitive
instruction keywords, `--flag=value` options, JSON (exec) form with fallback to the
shell form when the JSON is not valid, and the per-instruction argument rules.

Use: `parse(text) -> Dockerfile`. A build runs `dockerfile.meta_args` (the ARGs before
the first FROM), then each `Stage` in order: `stage.base` is the image (or earlier
stage, or `scratch`) to start from, `stage.instructions` what to run. Arguments are kept
as written: the builder expands variables (shell_words.expand with the stage's ARG/ENV
values) for the instructions in shell_words.EXPANDING_INSTRUCTIONS, e.g. each ENV key and
value, each COPY source and destination, `--chown`, `--chmod` and `stage.base` (with the
meta args only). All values of one ENV/LABEL/ARG are expanded with the variables as they
were before that instruction (`ENV a=1 b=$a` gives b the old a), as in Docker.

Errors are `DockerfileError`, worded as Docker's and naming the line:
`Dockerfile parse error line 3: unknown instruction: FOO`.

Flags only BuildKit implements (`COPY --link`, `RUN --mount`, ...) are refused with
Docker's classic-builder message, and so are heredocs (`RUN <<EOF`), which the classic
builder does not support. A build through BuildKit's API parses with `buildkit=True`:
heredocs are read (their bodies in `Instruction.heredocs`), `RUN --mount` and
`COPY --link` are taken, and the BuildKit-only flags not built yet are named as such.
ONBUILD triggers are parsed and checked when their ONBUILD is (Docker waits until they
fire); `parse_trigger` parses a trigger stored in a base image's config for the child
build, refusing `ONBUILD ONBUILD`, FROM and MAINTAINER.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from dockyard.builder.shell_words import EXPANDING_INSTRUCTIONS

__all__ = [
    "Dockerfile", "DockerfileError", "EXPANDING_INSTRUCTIONS", "Healthcheck", "Instruction",
    "Stage", "parse", "parse_trigger",
]

KEYWORDS = (
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
    "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME",
    "WORKDIR",
)
BUILDKIT_URL = "https://docs.docker.com/go/buildkit/"

# Flag kinds per instruction, as BuildKit's instruction parser defines them.
_STRING, _BOOL, _STRINGS = "string", "bool", "strings"
_FLAGS: dict[str, dict[str, str]] = {
    "ADD": {"chown": _STRING, "chmod": _STRING, "link": _BOOL, "keep-git-dir": _BOOL,
            "checksum": _STRING, "unpack": _BOOL, "exclude": _STRINGS},
    "COPY": {"chown": _STRING, "from": _STRING, "chmod": _STRING, "link": _BOOL,
             "exclude": _STRINGS, "parents": _BOOL},
    "FROM": {"platform": _STRING},
    "RUN": {"mount": _STRINGS, "network": _STRING, "security": _STRING, "device": _STRINGS},
    "HEALTHCHECK": {"interval": _STRING, "timeout": _STRING, "start-period": _STRING,
                    "start-interval": _STRING, "retries": _STRING},
}
# Accepted by the parser, implemented by BuildKit only: the classic builder refuses them.
_BUILDKIT_ONLY_FLAGS = {"link", "keep-git-dir", "checksum", "unpack", "exclude", "parents", "mount",
                        "security", "device"}
# Of those, what a build through BuildKit's API (parse(..., buildkit=True)) runs here.
# `COPY --link` gives the same files as a plain COPY: only BuildKit's layer rebasing differs.
_BUILDKIT_FLAGS_BUILT = {"mount", "link"}
_NETWORK_MODES = ("default", "none", "host")

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*\Z")
_KNOWN_DIRECTIVES = ("syntax", "escape", "check")
_STAGE_NAME = re.compile(r"[a-z][a-z0-9-_.]*\Z")
_HEREDOC_WORD = re.compile(r"\d*<<-?\s*[^<\s]")
_HEREDOC_MARKER = re.compile(r"<<(-?)(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")
_HEREDOC_KEYWORDS = ("RUN", "COPY", "ADD")
_HEREDOC_OPERATOR = re.compile(r"\d*<<-?\Z")
_NOT_STRINGS = "when using JSON array syntax, arrays must be comprised of strings only"
_ONBUILD_PREFIX = re.compile(r"^\s*ONBUILD\s*", re.IGNORECASE)
_BOM = "\ufeff"


class DockerfileError(ValueError):
    """The Dockerfile cannot be built as written. `line` is 1-based (0: not tied to a line)."""

    def __init__(self, message: str, line: int = 0) -> None:
        self.message = message
        self.line = line
        super().__init__(f"Dockerfile parse error line {line}: {message}" if line else message)


@dataclass(frozen=True)
class Healthcheck:
    """HEALTHCHECK's configuration in the image config's terms. `test` is ("NONE",),
    ("CMD", arg, ...) or ("CMD-SHELL", command); durations are nanoseconds, 0 (or a
    retries of 0) meaning "inherit the default"."""

    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True)
class Instruction:
    """One instruction. `args` are as written (quotes and `$VAR`s untouched) except for
    JSON form, where they are the decoded strings. Per kind:

    - ENV, LABEL: `pairs` ((key, value), ...) as written, to expand.
    - ARG: `pairs` ((name, default or None), ...).
    - RUN, CMD, ENTRYPOINT, SHELL: `command` (exec form: the strings; shell form: one
      string for the shell).
    - HEALTHCHECK: `healthcheck`. ONBUILD: `trigger`, whose `original` is the text that
      goes into the image config's OnBuild list.
    - COPY, ADD: `args[:-1]` sources, `args[-1]` destination; `flags` from, chown, chmod.
    """

    keyword: str
    line: int
    end_line: int
    original: str
    args: tuple[str, ...] = ()
    flags: Mapping[str, str] = field(default_factory=dict)
    json_form: bool = False
    pairs: tuple[tuple[str, str | None], ...] = ()
    healthcheck: Healthcheck | None = None
    trigger: Instruction | None = None
    heredocs: tuple[Heredoc, ...] = ()  # builds through BuildKit's API only

    @property
    def command(self) -> tuple[str, ...]:
        if self.json_form or not self.args:
            return self.args
        return (" ".join(self.args),)

    @property
    def sources(self) -> tuple[str, ...]:
        return self.args[:-1]

    @property
    def destination(self) -> str:
        return self.args[-1]


@dataclass(frozen=True)
class Heredoc:
    """`<<NAME` ... `NAME` after a RUN, COPY or ADD (BuildKit's syntax). `expand`: the
    delimiter was unquoted, so COPY expands variables in the content."""

    name: str
    content: str
    expand: bool = True
    marker: str = ""  # as written: <<EOF, <<-EOF, <<"EOF"


@dataclass(frozen=True)
class Stage:
    """One FROM and what follows it. `name` is lowercased (None if unnamed); `base` is
    the image reference as written (expand it with the meta args); `platform` is
    `--platform`'s value as written, or None."""

    index: int
    name: str | None
    base: str
    platform: str | None
    line: int
    instructions: tuple[Instruction, ...]
    from_instruction: Instruction


@dataclass(frozen=True)
class Dockerfile:
    directives: Mapping[str, str]
    meta_args: tuple[Instruction, ...]
    stages: tuple[Stage, ...]
    warnings: tuple[str, ...] = ()

    @property
    def escape(self) -> str:
        return self.directives.get("escape", "\\")

    @property
    def syntax(self) -> str | None:
        return self.directives.get("syntax")

    def stage(self, reference: str, before: int | None = None) -> Stage | None:
        """The stage named `reference` (any case) or numbered `reference` ("0", "1"...),
        among the stages before `before` if given (COPY --from can only use earlier
        stages); None when it names no stage (then it is an image)."""
        candidates = self.stages if before is None else self.stages[:before]
        if reference.isdigit():
            number = int(reference)
            return candidates[number] if number < len(candidates) else None
        wanted = reference.lower()
        return next((s for s in candidates if s.name == wanted), None)


# -- reading lines ----------------------------------------------------------------------


class _Directives:
    """Parser directives are `# key=value` comments before any other line; an unknown
    key, a blank line, a plain comment or an instruction ends them."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.done = False
        self.escape = "\\"
        self.continuation = _continuation_regex("\\")

    def offer(self, line: str) -> bool:
        if self.done:
            return False
        if not line.startswith("#"):
            self.done = True
            return False
        match = _DIRECTIVE.match(line[1:].lstrip())
        if not match or match.group(1).lower() not in _KNOWN_DIRECTIVES:
            self.done = True
            return False
        key, value = match.group(1).lower(), match.group(2)
        if key in self.values:
            raise ValueError(f"only one {key} parser directive can be used")
        if key == "escape":
            if value not in ("`", "\\"):
                raise ValueError(f"invalid escape token '{value}' does not match ` or \\")
            self.escape = value
            self.continuation = _continuation_regex(value)
        self.values[key] = value
        return True


def _continuation_regex(escape: str) -> re.Pattern[str]:
    token = re.escape(escape)
    return re.compile(rf"([^{token}]){token}[ \t]*\Z|^{token}[ \t]*\Z")


def _strip_continuation(line: str, directives: _Directives) -> tuple[str, bool]:
    """(line without its continuation token, whether the logical line ends here)."""
    match = directives.continuation.search(line)
    if not match:
        return line, True
    return line[:match.start()] + (match.group(1) or ""), False


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def heredoc_markers(instruction_text: str) -> list[re.Match]:
    """The `<<NAME` markers of a RUN, COPY or ADD line in shell form, in order."""
    parts = _WHITESPACE.split(instruction_text.strip(), maxsplit=1)
    if len(parts) < 2 or parts[0].upper() not in _HEREDOC_KEYWORDS or parts[1].lstrip().startswith("["):
        return []
    return list(_HEREDOC_MARKER.finditer(parts[1]))


def _read_heredocs(lines: list[str], number: int, joined: str) -> tuple[int, tuple[Heredoc, ...]]:
    """The bodies of `joined`'s heredocs, from line index `number` on; the index after them."""
    bodies = []
    for marker in heredoc_markers(joined):
        strip_tabs, quote, name = marker.group(1) == "-", marker.group(2), marker.group(3)
        content = []
        while True:
            if number >= len(lines):
                raise DockerfileError(f"unterminated heredoc {name}: no line with only {name} ends it",
                                      number)
            raw = lines[number].rstrip("\r")
            number += 1
            if strip_tabs:
                raw = raw.lstrip("\t")
            if raw == name:
                break
            content.append(raw + "\n")
        bodies.append(Heredoc(name, "".join(content), expand=not quote, marker=marker.group(0)))
    return number, tuple(bodies)


def _logical_lines(text: str, directives: _Directives, warnings: list[str], heredocs: bool = False):
    """Yields (start line, end line, joined text, heredocs) for each instruction; the
    heredocs' bodies only when `heredocs` (builds through BuildKit's API)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if lines:
        lines[0] = lines[0].removeprefix(_BOM)
    number = 0
    while number < len(lines):
        token = lines[number].rstrip("\r\n").lstrip()
        try:
            directives.offer(token)
        except ValueError as exc:
            raise DockerfileError(str(exc), number + 1) from None
        number += 1
        start = number
        if _is_comment(token):
            token = ""
        token, ended = _strip_continuation(token, directives)
        if ended and not token:
            continue
        parts = [token]
        empty_continuation = False
        while not ended and number < len(lines):
            raw = lines[number].rstrip("\r\n")
            number += 1
            if _is_comment(raw):
                continue
            if not raw.strip():
                empty_continuation = True
                continue
            raw, ended = _strip_continuation(raw, directives)
            parts.append(raw)
        joined = "".join(parts)
        if empty_continuation:
            warnings.append(f"Empty continuation line found in: {joined}")
        bodies: tuple[Heredoc, ...] = ()
        if heredocs:
            number, bodies = _read_heredocs(lines, number, joined)
        yield start, number, joined, bodies


# -- splitting one instruction ----------------------------------------------------------


def _split_flags(rest: str, escape: str) -> tuple[str, list[str]]:
    """Leading `--name[=value]` words off `rest` (quotes and escapes removed from them),
    and what follows. A bare `--` ends the flags."""
    flags: list[str] = []
    i = 0
    while True:
        while i < len(rest) and rest[i].isspace():
            i += 1
        if not rest.startswith("--", i):
            return rest[i:], flags
        word: list[str] = []
        quote = None
        quoted = False
        while i < len(rest):
            ch = rest[i]
            if quote is None and ch.isspace():
                break
            if quote is None and ch in "'\"":
                quote, quoted = ch, True
            elif quote is not None and ch == quote:
                quote = None
            else:
                if ch == escape:
                    if i + 1 == len(rest):
                        i += 1
                        continue
                    i += 1
                    ch = rest[i]
                word.append(ch)
            i += 1
        text = "".join(word)
        if text == "--" and not quoted:
            return rest[i:], flags
        if text or quoted:
            flags.append(text)


def _words(rest: str, escape: str) -> list[str]:
    """Splits on whitespace outside quotes, keeping quotes and escapes in the words (they
    are removed by expansion later), as Docker's parseWords does for ENV, LABEL and ARG."""
    words: list[str] = []
    current: list[str] = []
    quote = None
    blank_ok = False
    i = 0
    while i < len(rest):
        ch = rest[i]
        if quote is None:
            if ch.isspace():
                if blank_ok or current:
                    words.append("".join(current))
                current, blank_ok = [], False
                i += 1
                continue
            if ch in "'\"":
                quote, blank_ok = ch, True
            if ch == escape:
                if i + 1 == len(rest):
                    i += 1
                    continue
                current.append(ch)
                i += 1
                ch = rest[i]
        else:
            if ch == quote:
                quote = None
            elif ch == escape and quote != "'":
                if i + 1 == len(rest):
                    i += 1
                    continue
                current.append(ch)
                i += 1
                ch = rest[i]
        current.append(ch)
        i += 1
    if blank_ok or current:
        words.append("".join(current))
    return words


class _NotStrings(Exception):
    pass


def _json_array(rest: str) -> list[str] | None:
    """The strings of a JSON array, or None if `rest` is not one (then it is shell form).
    An array with anything but strings in it is an error, as in Docker."""
    rest = rest.lstrip()
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest, parse_constant=_refuse_constant)
    except (ValueError, _NotStrings):
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise _NotStrings
    return value


def _refuse_constant(name: str):
    raise _NotStrings(name)  # NaN and Infinity are not JSON to Go, so not exec form


# -- building instructions --------------------------------------------------------------


class _Builder:
    """Turns one logical line into an Instruction, raising plain ValueErrors in Docker's
    words; the caller adds the line number."""

    def __init__(self, escape: str, buildkit: bool = False) -> None:
        self.escape = escape
        self.buildkit = buildkit

    def instruction(self, text: str, start: int, end: int, heredocs: tuple[Heredoc, ...] = ()) -> Instruction:
        parts = _WHITESPACE.split(text.strip(), maxsplit=1)
        keyword_as_written = parts[0]
        keyword = keyword_as_written.upper()
        rest, raw_flags = _split_flags(parts[1], self.escape) if len(parts) == 2 else ("", [])
        rest = rest.strip()
        if keyword not in KEYWORDS:
            raise ValueError(_unknown_instruction(keyword_as_written))
        base = {"keyword": keyword, "line": start, "end_line": end, "original": text}
        parse_kind = getattr(self, "_" + keyword.lower())
        if keyword == "HEALTHCHECK" and rest.split(None, 1)[:1] and rest.split(None, 1)[0].upper() == "NONE":
            flags: dict[str, str] = {}  # Docker does not look at flags of HEALTHCHECK NONE
        else:
            flags = _parse_flags(keyword, raw_flags, self.buildkit)
        if keyword in ("RUN", "COPY", "ADD") and not heredocs:
            _refuse_heredoc(keyword, rest)
        instruction = parse_kind(rest, flags, base)
        return dataclasses.replace(instruction, heredocs=heredocs) if heredocs else instruction

    # each returns the Instruction for its keyword

    def _maybe_json(self, rest: str) -> tuple[tuple[str, ...], bool]:
        if not rest:
            return (), False
        try:
            array = _json_array(rest)
        except _NotStrings:
            raise ValueError(_NOT_STRINGS) from None
        return (tuple(array), True) if array is not None else ((rest,), False)

    def _maybe_json_list(self, rest: str) -> tuple[tuple[str, ...], bool]:
        try:
            array = _json_array(rest)
        except _NotStrings:
            raise ValueError(_NOT_STRINGS) from None
        if array is not None:
            return tuple(array), True
        return tuple(w for w in _WHITESPACE.split(rest) if w) if rest else (), False

    def _command(self, rest, flags, base):
        args, json_form = self._maybe_json(rest)
        return Instruction(args=args, flags=flags, json_form=json_form, **base)

    _run = _cmd = _entrypoint = _command

    def _shell(self, rest, flags, base):
        args, json_form = self._maybe_json(rest)
        if not args:
            raise ValueError("SHELL requires at least one argument")
        if not json_form:
            raise ValueError("SHELL requires the arguments to be in JSON form")
        return Instruction(args=args, flags=flags, json_form=True, **base)

    def _copy(self, rest, flags, base):
        args, json_form = self._maybe_json_list(rest)
        if len(args) < 2:
            raise ValueError(f"{base['keyword']} requires at least two arguments, but only one was "
                             "provided. Destination could not be determined")
        return Instruction(args=args, flags=flags, json_form=json_form, **base)

    _add = _copy

    def _volume(self, rest, flags, base):
        args, json_form = self._maybe_json_list(rest)
        if not args:
            raise ValueError("VOLUME requires at least one argument")
        volumes = tuple(a.strip() for a in args)
        if not all(volumes):
            raise ValueError("VOLUME specified can not be an empty string")
        return Instruction(args=volumes, flags=flags, json_form=json_form, **base)

    def _single(self, rest, flags, base):
        if not rest:
            raise ValueError(f"{base['keyword']} requires exactly one argument")
        return Instruction(args=(rest,), flags=flags, **base)

    _workdir = _user = _stopsignal = _maintainer = _single

    def _expose(self, rest, flags, base):
        ports = tuple(w for w in _WHITESPACE.split(rest) if w)
        if not ports:
            raise ValueError("EXPOSE requires at least one argument")
        return Instruction(args=ports, flags=flags, **base)

    def _from(self, rest, flags, base):
        args = tuple(w for w in _WHITESPACE.split(rest) if w)
        if len(args) == 3 and args[1].lower() == "as":
            if not _STAGE_NAME.match(args[2].lower()):
                raise ValueError(f'invalid name for build stage: "{args[2]}", name can\'t start with a '
                                 "number or contain symbols")
        elif len(args) != 1:
            raise ValueError("FROM requires either one or three arguments")
        return Instruction(args=args, flags=flags, **base)

    def _pairs(self, rest, flags, base):
        keyword = base["keyword"]
        words = _words(rest, self.escape)
        if not words:
            raise ValueError(f"{keyword} requires at least one argument")
        if "=" not in words[0]:
            # the old `ENV name value` form: the value is the rest of the line
            old = _WHITESPACE.split(rest, maxsplit=1)
            if len(old) < 2:
                raise ValueError(f"{keyword} must have two arguments")
            pairs = [(old[0], old[1])]
        else:
            pairs = []
            for word in words:
                if "=" not in word:
                    raise ValueError(f'Syntax error - can\'t find = in "{word}". '
                                     "Must be of the form: name=value")
                key, value = word.split("=", 1)
                pairs.append((key, value))
        if any(not key for key, _ in pairs):
            raise ValueError(f"{keyword} names can not be blank")
        args = tuple(item for pair in pairs for item in pair)
        return Instruction(args=args, flags=flags, pairs=tuple(pairs), **base)

    _env = _label = _pairs

    def _arg(self, rest, flags, base):
        words = _words(rest, self.escape)
        if not words:
            raise ValueError("ARG requires at least one argument")
        pairs: list[tuple[str, str | None]] = []
        for word in words:
            key, equals, value = word.partition("=")
            if equals and not key:
                raise ValueError("ARG names can not be blank")
            pairs.append((key, value if equals else None))
        return Instruction(args=tuple(words), flags=flags, pairs=tuple(pairs), **base)

    def _healthcheck(self, rest, flags, base):
        kind = re.split(r"\s", rest, maxsplit=1)[0]
        command = rest[len(kind):].lstrip()
        if not kind:
            raise ValueError("HEALTHCHECK requires at least one argument")
        args, json_form = self._maybe_json(command)
        kind = kind.upper()
        if kind == "NONE":
            if args:
                raise ValueError("HEALTHCHECK NONE takes no arguments")
            return Instruction(args=("NONE",), flags=flags, healthcheck=Healthcheck(("NONE",)), **base)
        if kind != "CMD":
            raise ValueError(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
        if not args:
            raise ValueError("Missing command after HEALTHCHECK CMD")
        test = ("CMD", *args) if json_form else ("CMD-SHELL", " ".join(args))
        retries = 0
        if "retries" in flags:
            try:
                retries = int(flags["retries"], 10)
            except ValueError:
                raise ValueError(f'strconv.ParseInt: parsing "{flags["retries"]}": invalid syntax') from None
            if retries < 0:
                raise ValueError(f"--retries cannot be negative ({retries})")
        check = Healthcheck(
            test=test,
            interval=_interval(flags, "interval"),
            timeout=_interval(flags, "timeout"),
            start_period=_interval(flags, "start-period"),
            start_interval=_interval(flags, "start-interval"),
            retries=retries,
        )
        return Instruction(args=(kind, *args), flags=flags, json_form=json_form, healthcheck=check, **base)

    def _onbuild(self, rest, flags, base):
        if not rest:
            raise ValueError("ONBUILD requires at least one argument")
        trigger_text = _ONBUILD_PREFIX.sub("", base["original"], count=1).strip()
        trigger = self.trigger(trigger_text, base["line"], base["end_line"])
        return Instruction(args=(trigger.keyword, *trigger.args), flags=flags, trigger=trigger, **base)

    def trigger(self, text: str, start: int, end: int) -> Instruction:
        keyword = _WHITESPACE.split(text.strip(), maxsplit=1)[0].upper()
        if keyword == "ONBUILD":
            raise ValueError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if keyword in ("MAINTAINER", "FROM"):
            raise ValueError(f"{keyword} isn't allowed as an ONBUILD trigger")
        return self.instruction(text, start, end)


def _unknown_instruction(keyword: str) -> str:
    message = f"unknown instruction: {keyword}"
    close = difflib.get_close_matches(keyword.upper(), KEYWORDS, n=1, cutoff=0.75)
    return f"{message} (did you mean {close[0].lower()}?)" if close else message


def _parse_flags(keyword: str, raw_flags: list[str], buildkit: bool = False) -> dict[str, str]:
    """Flags by name; a repeated one (`--mount`, `--exclude`) holds its values joined by newlines."""
    allowed = _FLAGS.get(keyword, {})
    flags: dict[str, str] = {}
    for raw in raw_flags:
        if not raw.startswith("--"):
            raise ValueError(f"arg should start with -- : {raw}")
        name, has_value, value = raw[2:].partition("=")
        kind = allowed.get(name)
        if kind is None:
            raise ValueError(f"unknown flag: --{name}")
        if name in flags and kind != _STRINGS:
            raise ValueError(f"duplicate flag specified: --{name}")
        if kind == _BOOL:
            if has_value and not value:
                raise ValueError(f"missing a value on flag: --{name}")
            if value.lower() not in ("true", "false", ""):
                raise ValueError(f"expecting boolean value for flag --{name}, not: {value}")
            value = "false" if value.lower() == "false" else "true"
        elif not has_value:
            raise ValueError(f"missing a value on flag: --{name}")
        if name in _BUILDKIT_ONLY_FLAGS and not (kind == _BOOL and value == "false"):
            if not buildkit:
                raise ValueError(f"the --{name} option requires BuildKit. Refer to {BUILDKIT_URL} to learn "
                                 "how to build images with BuildKit enabled")
            if name not in _BUILDKIT_FLAGS_BUILT:
                raise ValueError(f"the --{name} option is not supported by dockyard's BuildKit frontend yet")
        if keyword == "RUN" and name == "network" and value not in _NETWORK_MODES:
            raise ValueError(f'invalid network mode "{value}"')
        flags[name] = f"{flags[name]}\n{value}" if name in flags else value
    return flags


def _refuse_heredoc(keyword: str, rest: str) -> None:
    if "<<" not in rest or rest.lstrip().startswith("["):
        return
    words = _WHITESPACE.split(rest)
    for index, word in enumerate(words):
        separate = _HEREDOC_OPERATOR.match(word) and index + 1 < len(words) and words[index + 1]
        if _HEREDOC_WORD.match(word) or separate:
            raise ValueError(f"{keyword} with a heredoc ({word}...) requires BuildKit: the classic builder "
                             "does not support heredocs (put the content in a file in the build context)")


_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
                   "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> int:
    """Go's time.ParseDuration ("1m30s", "1.5h", "300ms"), in nanoseconds."""
    body = text
    sign = 1
    if body[:1] in "+-" and body:
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return 0
    if not body:
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0.0
    position = 0
    while position < len(body):
        match = _DURATION_PART.match(body, position)
        if not match:
            if re.match(r"(\d+\.?\d*|\.\d+)", body[position:]):
                raise ValueError(f'time: missing unit in duration "{text}"')
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    return sign * round(total)


def _interval(flags: Mapping[str, str], name: str) -> int:
    text = flags.get(name, "")
    if not text:
        return 0
    nanoseconds = parse_go_duration(text)
    if 0 < nanoseconds < 1_000_000 or nanoseconds < 0:
        raise ValueError(f'Interval "{name}" cannot be less than 1ms')
    return nanoseconds


# -- the whole file ---------------------------------------------------------------------


def parse(text: str, buildkit: bool = False) -> Dockerfile:
    """Parses a whole Dockerfile. Raises DockerfileError naming the first bad line.
    `buildkit`: for a build through BuildKit's API, which takes flags the classic builder
    refuses (those in _BUILDKIT_FLAGS_BUILT)."""
    directives = _Directives()
    warnings: list[str] = []
    instructions: list[Instruction] = []
    last_line = 0
    for start, end, line, heredocs in _logical_lines(text, directives, warnings, heredocs=buildkit):
        last_line = end
        builder = _Builder(directives.escape, buildkit)
        try:
            instruction = builder.instruction(line, start, end, heredocs)
            instructions.append(instruction)
        except ValueError as exc:
            raise DockerfileError(str(exc), start) from None
    if not instructions:
        raise DockerfileError("file with no instructions", max(last_line, text.count("\n")))

    meta_args: list[Instruction] = []
    stages: list[Stage] = []
    current: tuple[Instruction, list[Instruction]] | None = None

    def close_stage() -> None:
        if current is None:
            return
        head, body = current
        name = head.args[2].lower() if len(head.args) == 3 else None
        if name is not None and any(s.name == name for s in stages):
            raise DockerfileError(f'duplicate stage name "{name}"', head.line)
        stages.append(Stage(index=len(stages), name=name, base=head.args[0],
                            platform=head.flags.get("platform"), line=head.line,
                            instructions=tuple(body), from_instruction=head))

    for instruction in instructions:
        if instruction.keyword == "FROM":
            close_stage()
            current = (instruction, [])
        elif current is None:
            if instruction.keyword != "ARG":
                raise DockerfileError(f"no build stage in current context: {instruction.keyword} must come "
                                      "after a FROM (only ARG may come before the first FROM)",
                                      instruction.line)
            meta_args.append(instruction)
        else:
            current[1].append(instruction)
    close_stage()
    if not stages:
        raise DockerfileError("No image was generated. Is your Dockerfile empty? (it has no FROM)",
                              last_line)
    return Dockerfile(directives=dict(directives.values), meta_args=tuple(meta_args),
                      stages=tuple(stages), warnings=tuple(warnings))


def parse_trigger(text: str, escape: str = "\\") -> Instruction:
    """Parses one ONBUILD trigger as stored in an image config ("RUN make"), for the
    build that uses that image as its base. Raises DockerfileError."""
    try:
        return _Builder(escape).trigger(text, 1, 1)
    except ValueError as exc:
        raise DockerfileError(f"ONBUILD trigger {text!r}: {exc}") from None
