"""Docker's JSON progress stream (pull, push) as the docker CLI shows it.

On a terminal every layer id keeps one line, redrawn in place with ANSI cursor movement
(`<id>: Downloading [=====>    ]  1.2MB/5MB`); a line without an id starts a new block,
as in the docker CLI's jsonmessage. Anywhere else (a pipe, a log file) each layer's
status is printed once per change, without bars or byte counts. An error in the stream
ends the display: it is printed to stderr and the caller exits 1.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable
from typing import TextIO

from dockyard.formats.units import human_size


class StreamError(Exception):
    """The daemon reported an error inside the progress stream."""


def bar(current: int, total: int, width: int) -> str:
    """`[=====>     ]  1.2MB/5MB` fitted to `width` columns (just the counts when narrow)."""
    counts = f"{human_size(current)}/{human_size(total)}" if total > 0 else human_size(current)
    inner = min(50, width - len(counts) - 4)
    if total <= 0 or inner < 10:
        return counts
    filled = min(inner, inner * current // total)
    arrow = ">" if filled < inner else ""
    return f"[{'=' * filled}{arrow}{' ' * (inner - filled - len(arrow))}] {counts:>12}"


class ProgressDisplay:
    """Feed it the stream's messages; it draws them on `out`."""

    def __init__(self, out: TextIO | None = None, terminal: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.terminal = self.out.isatty() if terminal is None else terminal
        self._rows: dict[str, int] = {}   # terminal: layer id -> its line in the current block
        self._shown: dict[str, str] = {}  # elsewhere: layer id -> last status printed

    def show(self, messages: Iterable[dict]) -> None:
        """Draw every message; raise StreamError at the first error in the stream."""
        for message in messages:
            self.feed(message)

    def feed(self, message: dict) -> None:
        if message.get("error") or message.get("errorDetail"):
            detail = message.get("errorDetail") or {}
            raise StreamError(message.get("error") or detail.get("message") or "unknown error")
        if "aux" in message:
            return
        if "stream" in message:
            self._rows.clear()
            self._write(str(message["stream"]))
            return
        if self.terminal:
            self._draw(message)
        else:
            self._print(message)

    def _text(self, message: dict, with_bar: bool) -> str:
        text = str(message.get("status", ""))
        if message.get("id"):
            text = f"{message['id']}: {text}"
        if with_bar:
            detail = message.get("progressDetail") or {}
            if detail.get("current") is not None:
                width = shutil.get_terminal_size((80, 24)).columns - len(text) - 1
                text += " " + bar(int(detail["current"]), int(detail.get("total") or 0), width)
            elif message.get("progress"):
                text += " " + str(message["progress"])
        return text

    def _draw(self, message: dict) -> None:
        layer = message.get("id")
        text = "\x1b[2K\r" + self._text(message, with_bar=True)
        if not layer:
            # Anything that is not a layer's line closes the block: later messages about
            # the same ids (pull -a, the next tag) get lines of their own below.
            self._rows.clear()
            self._write(text + "\n")
            return
        if layer not in self._rows:
            self._rows[layer] = len(self._rows)
            self._write(text + "\n")
            return
        up = len(self._rows) - self._rows[layer]
        self._write(f"\x1b[{up}A{text}\x1b[{up}B\r")

    def _print(self, message: dict) -> None:
        layer = message.get("id")
        status = str(message.get("status", ""))
        if layer:
            if self._shown.get(layer) == status:
                return
            self._shown[layer] = status
        self._write(self._text(message, with_bar=False) + "\n")

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()


def display(messages: Iterable[dict], out: TextIO | None = None, quiet: bool = False) -> None:
    """Show a progress stream (or just consume it when quiet); on an error in the stream,
    print it to stderr and exit 1, as the docker CLI does."""
    drawer = ProgressDisplay(out)
    try:
        for message in messages:
            if quiet:
                if message.get("error") or message.get("errorDetail"):
                    drawer.feed(message)
            else:
                drawer.feed(message)
    except StreamError as exc:
        sys.stderr.write(f"{exc}\n")
        sys.exit(1)
