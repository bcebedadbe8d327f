"""What attached clients send, to a container's (or an exec's) stdin: a backlog per target
written only as fast as the process reads it, and the end of input, Docker's way."""

from __future__ import annotations

import fcntl
import os
import socket

from dockyard.monitor.sessions import CLIENT_BUFFER_LIMIT, Client
from dockyard.monitor.unix import READ_SIZE

TYPE_CHECKING = False  # not typing's: a monitor does not import typing
if TYPE_CHECKING:
    from dockyard.monitor.process import Monitor


def forward_leftover(monitor: Monitor, client: Client) -> None:
    if client.leftover and client.stdin_target is not None:
        write_stdin(monitor, client, client.leftover)
    client.leftover = b""


def client_input(monitor: Monitor, sock: socket.socket) -> None:
    client = next((c for c in monitor.clients if c.sock is sock), None)
    if client is None:
        return
    try:
        data = sock.recv(READ_SIZE)
    except BlockingIOError:
        return
    except OSError:
        data = b""
    if not data:
        client.reading = False
        if client.request.get("op") in ("wait", "state", "resize"):
            client.closing = True
        else:
            stdin_eof(monitor, client)
        return
    write_stdin(monitor, client, data)


def stdin_backlogged(monitor: Monitor, client: Client) -> bool:
    target = client.stdin_target
    return target is not None and len(monitor.stdin_pending.get(target, b"")) > CLIENT_BUFFER_LIMIT


def write_stdin(monitor: Monitor, client: Client, data: bytes) -> None:
    target = client.stdin_target
    if target is None:
        return
    if target not in monitor.stdin_pending:
        fcntl.fcntl(target, fcntl.F_SETFL, fcntl.fcntl(target, fcntl.F_GETFL) | os.O_NONBLOCK)
        monitor.stdin_pending[target] = bytearray()
    monitor.stdin_pending[target] += data
    feed_stdin(monitor, target)


def feed_stdin(monitor: Monitor, fd: int) -> None:
    pending = monitor.stdin_pending.get(fd)
    if not pending:
        return
    try:
        written = os.write(fd, pending)
        del pending[:written]
    except BlockingIOError:
        pass
    except OSError:  # the process closed its stdin or exited
        monitor.stdin_pending.pop(fd, None)


def stdin_eof(monitor: Monitor, client: Client) -> None:
    """Docker closes the container's stdin when an attached client ends its input
    only for StdinOnce containers; exec sessions always get their EOF."""
    target = client.stdin_target
    client.stdin_target = None
    if client.exec_id is not None:
        session = monitor.execs.get(client.exec_id)
        if session is not None and session.stdin_fd is not None and session.pty is None:
            close_stdin(monitor, session.stdin_fd)
            session.stdin_fd = None
        return
    if target is not None and monitor.config.get("stdin_once") and target != monitor.pty:
        close_stdin(monitor, target)
        monitor.stdin_fd = None
        for other in monitor.clients:
            if other.stdin_target == target:
                other.stdin_target = None
    if not client.outbox and client.request.get("op") == "attach" and not any(client.wants.values()):
        client.closing = True


def close_stdin(monitor: Monitor, fd: int) -> None:
    """Close once what is pending has been written (best effort, without blocking)."""
    pending = monitor.stdin_pending.pop(fd, b"")
    if pending:
        try:
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
            os.write(fd, pending)
        except OSError:
            pass
    os.close(fd)
