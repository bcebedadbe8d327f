"""Exec sessions: processes the runtime's `exec` starts in the running container, children
of the monitor like the container; their output goes to the session's client, and each
one's state and exit code go to an `exec-ID.json` file."""

from __future__ import annotations

import json
import os
import select

from dockyard.monitor.protocol import EXIT, STDOUT, frame
from dockyard.monitor.sessions import Client
from dockyard.monitor.stdin import forward_leftover
from dockyard.monitor.unix import (
    READ_SIZE,
    exit_code_of,
    listen_unix,
    pipes,
    receive_fd,
    write_json_atomically,
)

TYPE_CHECKING = False  # not typing's: a monitor does not import typing
if TYPE_CHECKING:
    from dockyard.monitor.process import Monitor


class ExecSession:
    def __init__(self, exec_id: str, client: Client | None, pid: int, output_fds: dict[int, int],
                 stdin_fd: int | None, pty: int | None) -> None:
        self.exec_id = exec_id
        self.client = client
        self.pid = pid
        self.output_fds = output_fds  # fd -> stream
        self.stdin_fd = stdin_fd
        self.pty = pty
        self.exit_code: int | None = None


def exec_outputs(monitor: Monitor) -> list[int]:
    return [fd for session in monitor.execs.values() for fd in session.output_fds]


def start_exec(monitor: Monitor, client: Client) -> None:
    request = client.request
    exec_id = str(request["id"])
    client.exec_id = exec_id
    try:
        session = spawn_exec(monitor, exec_id, request)
    except Exception as exc:
        client.send(frame(EXIT, json.dumps({"ExitCode": -1, "Error": str(exc)}).encode()))
        client.closing = True
        return
    session.client = client if not request.get("detach") else None
    if request.get("detach"):
        client.send(frame(EXIT, json.dumps({"Pid": session.pid}).encode()))
        client.closing = True
    if session.stdin_fd is not None and request.get("stdin") and not request.get("detach"):
        client.stdin_target = session.stdin_fd
        forward_leftover(monitor, client)
    monitor.execs[exec_id] = session
    write_json_atomically(monitor.path(f"exec-{exec_id}.json"), {"Pid": session.pid, "Running": True})


def spawn_exec(monitor: Monitor, exec_id: str, request: dict) -> ExecSession:
    argv = request["argv"]
    runtime_log = open(monitor.path(f"exec-{exec_id}.err"), "w+b")  # noqa: SIM115
    pty = None
    if request.get("tty"):
        console = listen_unix(request["console_socket"])
        devnull = os.open(os.devnull, os.O_RDWR)
        stdio = [devnull, devnull, runtime_log.fileno()]
        close_after = [devnull]
        stdin_w = None
        outputs: dict[int, int] = {}
    else:
        console = None
        stdio, outputs, stdin_w = pipes(bool(request.get("stdin")))
        close_after = stdio
    process = os.posix_spawnp(argv[0], argv, dict(os.environ),
                              file_actions=[(os.POSIX_SPAWN_DUP2, fd, index)
                                            for index, fd in enumerate(stdio)])
    try:
        if console is not None:
            pty = receive_fd(console, 30)
            outputs = {pty: STDOUT}
            stdin_w = pty
    finally:
        if console is not None:
            console.close()
            os.unlink(request["console_socket"])
    _, status = os.waitpid(process, 0)  # `exec --detach` returns once the process runs
    for fd in set(close_after):
        os.close(fd)
    if exit_code_of(status) != 0:
        for fd in outputs:
            os.close(fd)
        runtime_log.seek(0)
        message = monitor.runtime_message(runtime_log.read().decode(errors="replace"))
        runtime_log.close()
        raise OSError(message or "the runtime could not start the process")
    runtime_log.close()
    with open(request["pid_file"]) as handle:
        pid = int(handle.read().strip())
    return ExecSession(exec_id, None, pid, outputs, stdin_w, pty)


def exec_output(monitor: Monitor, fd: int, data: bytes) -> bool:
    """Output read from `fd` if it is an exec's (False if not): to the session's client,
    or at its end, the end of that output, which may finish the exec."""
    session = next((s for s in monitor.execs.values() if fd in s.output_fds), None)
    if session is None:
        return False
    stream = session.output_fds[fd]
    if not data:
        del session.output_fds[fd]
        if fd != session.pty:  # the pty is also the exec's stdin: it is closed once, at the end
            os.close(fd)
        maybe_finish_exec(monitor, session)
    elif session.client is not None:
        session.client.send(frame(stream, data))
    return True


def exec_reaped(monitor: Monitor, pid: int, status: int) -> None:
    for session in list(monitor.execs.values()):
        if session.pid == pid:
            session.exit_code = exit_code_of(status)
            if session.pty is not None:  # a pty never reports EOF while held open
                for fd in list(session.output_fds):
                    drain(fd, session)
            maybe_finish_exec(monitor, session)


def drain(fd: int, session: ExecSession) -> None:
    while True:
        try:
            readable, _, _ = select.select([fd], [], [], 0)
            data = os.read(fd, READ_SIZE) if readable else b""
        except OSError:
            data = b""
        if not data:
            del session.output_fds[fd]
            return
        if session.client is not None:
            session.client.send(frame(session.output_fds[fd], data))


def maybe_finish_exec(monitor: Monitor, session: ExecSession) -> None:
    if session.exit_code is None or session.output_fds:
        return
    result = {"Pid": session.pid, "Running": False, "ExitCode": session.exit_code}
    write_json_atomically(monitor.path(f"exec-{session.exec_id}.json"), result)
    if session.client is not None:
        session.client.send(frame(EXIT, json.dumps(result).encode()))
        session.client.closing = True
    if session.stdin_fd is not None and session.pty is None:
        monitor.stdin_pending.pop(session.stdin_fd, None)
        os.close(session.stdin_fd)
    if session.pty is not None:
        monitor.stdin_pending.pop(session.pty, None)
        os.close(session.pty)
    del monitor.execs[session.exec_id]
