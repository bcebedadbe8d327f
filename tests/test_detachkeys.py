"""Detach key parsing and the input filter shared by the daemon's streams and the CLI."""

from __future__ import annotations

import pytest
from dockyard.formats.detachkeys import DetachKeysError, EscapeFilter, parse_detach_keys


def test_docker_notation():
    assert parse_detach_keys("") == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,x") == b"\x01x"
    assert parse_detach_keys("ctrl-@,ctrl-[,ctrl-\\,ctrl-_") == b"\x00\x1b\x1c\x1f"


@pytest.mark.parametrize("bad", ["ctrl-", "ctrl-ab", "ctrl-1", "shift-a", "ab"])
def test_bad_keys_say_how_to_write_them(bad):
    with pytest.raises(DetachKeysError, match=r"Invalid detach keys .* ctrl-p,ctrl-q"):
        parse_detach_keys(bad)


def test_a_partial_sequence_is_held_back_until_it_is_decided():
    escape = EscapeFilter(b"\x10\x11")
    assert escape.feed(b"ls\x10") == (b"ls", False)
    assert escape.feed(b"x") == (b"\x10x", False)  # not the sequence after all: passed on whole
    assert escape.feed(b"\x10") == (b"", False)
    assert escape.feed(b"\x11typed after") == (b"", True)
    assert escape.feed(b"more") == (b"", True)


def test_input_ending_mid_sequence_keeps_its_bytes():
    escape = EscapeFilter(b"abc")
    assert escape.feed(b"xab") == (b"x", False)
    assert escape.flush() == b"ab"
