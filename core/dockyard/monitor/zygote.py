"""The zygote: one resident process per host that forks a monitor for each container.

It has imported all a monitor runs before its first fork, so each monitor shares the
interpreter's memory copy-on-write and costs well under a megabyte of its own.
"""

from __future__ import annotations

import json
import os
import signal
import sys

# importing the Monitor imports every module a forked monitor runs: they must all be
# loaded here, before serve_zygote freezes the heap and forks
from dockyard.monitor.process import Monitor
from dockyard.monitor.unix import listen_unix


def run_detached(state_dir: str) -> None:
    """Fork twice so the monitor belongs to no one who would have to reap it, start a
    new session, and run it; the caller returns at once."""
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        errors = os.open(os.path.join(state_dir, "monitor.err"),
                         os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.dup2(errors, 2)
        # nothing of the parent's (listening sockets, lock files) may stay open in here
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        code = Monitor(state_dir).run()
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    os._exit(code)


def serve_zygote(socket_path: str) -> None:
    """Fork a monitor for every state directory sent here, one JSON line per request.

    Everything a monitor needs is imported before the first fork and frozen out of the
    garbage collector's reach, so the monitors share these pages instead of copying
    them (a collection would write to every object header)."""
    import gc

    listener = listen_unix(socket_path)
    with open(socket_path + ".pid", "w") as pid_file:
        pid_file.write(f"{os.getpid()}\n")
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    gc.collect()
    gc.freeze()
    while True:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(10)
            try:
                request = json.loads(conn.makefile("rb").readline())
                run_detached(request["state_dir"])
                reply = {"ok": True}
            except Exception as exc:  # a bad request must not end the zygote
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            try:
                conn.sendall(json.dumps(reply).encode() + b"\n")
            except OSError:
                pass
