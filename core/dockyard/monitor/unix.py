"""Small helpers over the kernel that the monitor's modules share: listening UNIX sockets,
the pipes or pty master a runtime's process gets, wait statuses, and state files
replaced atomically."""

from __future__ import annotations

import array
import json
import os
import socket

from dockyard.monitor.protocol import STDERR, STDOUT

READ_SIZE = 65536


def write_json_atomically(path: str, value: object) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w") as handle:
        json.dump(value, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def receive_fd(listener: socket.socket, timeout: float) -> int:
    """Accept on a console socket and take the pty master runc sends (SCM_RIGHTS)."""
    listener.settimeout(timeout)
    conn, _ = listener.accept()
    with conn:
        fds = array.array("i")
        _, ancillary, _, _ = conn.recvmsg(4096, socket.CMSG_LEN(fds.itemsize))
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    if not fds:
        raise OSError("the runtime sent no terminal on the console socket")
    return fds[0]


def pipes(with_stdin: bool) -> tuple[list[int], dict[int, int], int | None]:
    """Pipes for a process without a terminal: (its stdin, stdout, stderr ends; our
    output ends by stream; our stdin end, or None when its stdin is /dev/null)."""
    if with_stdin:
        stdin_r, stdin_w = os.pipe()
    else:
        stdin_r, stdin_w = os.open(os.devnull, os.O_RDONLY), None
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    return [stdin_r, out_w, err_w], {out_r: STDOUT, err_r: STDERR}, stdin_w


def listen_unix(path: str) -> socket.socket:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    os.chmod(path, 0o600)
    sock.listen(16)
    return sock


def exit_code_of(status: int) -> int:
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return 255
