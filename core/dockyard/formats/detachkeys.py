"""Detach keys: the key sequence that ends an attachment and leaves the container running.

Docker's notation is a comma-separated list of keys, each a single character or `ctrl-X`
(X a letter or one of @ [ \\ ] ^ _), for example the default "ctrl-p,ctrl-q". Both the
daemon (attach and exec streams) and the CLI filter their input through `EscapeFilter`,
which holds back a partial match instead of passing it on, so the container never sees
the first half of a detach sequence.
"""

from __future__ import annotations

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"

_CONTROL_SYMBOLS = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


class DetachKeysError(ValueError):
    pass


def parse_detach_keys(text: str | None) -> bytes:
    """The bytes of a detach sequence; empty text means Docker's default."""
    text = text or DEFAULT_DETACH_KEYS
    sequence = bytearray()
    for key in text.split(","):
        if len(key) == 1:
            sequence += key.encode()
            continue
        name = key[5:].lower() if key.lower().startswith("ctrl-") else ""
        if len(name) == 1 and "a" <= name <= "z":
            sequence.append(ord(name) - ord("a") + 1)
        elif len(name) == 1 and name in _CONTROL_SYMBOLS:
            sequence.append(_CONTROL_SYMBOLS[name])
        else:
            raise DetachKeysError(
                f"Invalid detach keys ({text}) provided: {key!r} is neither one character nor "
                "ctrl-<letter or @[\\]^_>; write them like ctrl-p,ctrl-q")
    return bytes(sequence)


class EscapeFilter:
    """Passes input through, holding back bytes that may start the detach sequence.

    `feed(data)` returns (bytes to forward, detached). Once detached, the rest of the
    input is dropped: it was typed after the user asked to leave.
    """

    def __init__(self, sequence: bytes) -> None:
        self.sequence = sequence
        self.held = b""
        self.detached = False

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        if self.detached or not self.sequence:
            return (b"" if self.detached else data), self.detached
        window = self.held + data
        found = window.find(self.sequence)
        if found >= 0:
            self.detached = True
            self.held = b""
            return window[:found], True
        keep = self._partial_match_length(window)
        self.held = window[len(window) - keep:] if keep else b""
        return window[:len(window) - keep], False

    def flush(self) -> bytes:
        """What was held back when the input ends without completing the sequence."""
        held, self.held = self.held, b""
        return held

    def _partial_match_length(self, window: bytes) -> int:
        for length in range(min(len(self.sequence) - 1, len(window)), 0, -1):
            if window.endswith(self.sequence[:length]):
                return length
        return 0
