"""The wire format the daemon and the monitors share: the requests a monitor's control
socket takes, the frames it sends back, and the zygote's one-line requests.

Protocol on `control.sock` (each connection starts with one JSON line):
  {"op": "attach", "stdin": b, "stdout": b, "stderr": b}  -> {"ok": true} line, then
                                                             framed output, raw stdin
  {"op": "exec", "id": ID, "argv": [...], "pid_file": P, "tty": b, "stdin": b, "console_socket": S}
                                                          -> framed output, raw stdin,
                                                             then an exit frame
  {"op": "resize", "height": H, "width": W, "exec": ID?}  -> {"ok": true}
  {"op": "wait"}                                          -> {"exit": {...}} when it ends
  {"op": "state"}                                         -> {"pid": N, "running": b}
Frames from the monitor: 1 byte stream (1 stdout, 2 stderr, 3 exit), 4 bytes big-endian
length, payload. A client's half-close ends its stdin.

The zygote's socket takes one JSON line, {"state_dir": DIR}, and answers {"ok": true}
once that directory's monitor is forked, or {"error": MESSAGE}.
"""

from __future__ import annotations

import struct

STDOUT, STDERR, EXIT = 1, 2, 3


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BI", stream, len(payload)) + payload
