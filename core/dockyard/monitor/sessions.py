"""Connections on a monitor's control socket: the request line each starts with, the
output queued for each and sent as the socket takes it, and dropping the closed ones (a
client too slow to keep up is dropped rather than waited for)."""

from __future__ import annotations

import json
import socket

from dockyard.monitor.protocol import STDERR, STDOUT, frame

CLIENT_BUFFER_LIMIT = 4 << 20  # an attached client this far behind is dropped


class Client:
    """One connection on the control socket after its request line."""

    def __init__(self, sock: socket.socket, request: dict, leftover: bytes) -> None:
        self.sock = sock
        self.request = request
        self.outbox = bytearray()
        self.leftover = leftover
        self.stdin_target: int | None = None  # fd this client's bytes go to
        self.wants = {STDOUT: request.get("stdout", True), STDERR: request.get("stderr", True)}
        self.exec_id: str | None = None
        self.closing = False
        self.reading = True  # false once the client has half-closed

    def send(self, data: bytes) -> None:
        if len(self.outbox) > CLIENT_BUFFER_LIMIT:
            self.closing = True  # too slow to keep up: drop it rather than stall the container
            return
        self.outbox += data


def accept(control: socket.socket) -> Client | None:
    """The next connection with its request line read; None if it sent no valid one."""
    try:
        sock, _ = control.accept()
    except OSError:
        return None
    sock.settimeout(5)
    buffer = b""
    try:
        while b"\n" not in buffer:
            chunk = sock.recv(4096)
            if not chunk:
                sock.close()
                return None
            buffer += chunk
        line, leftover = buffer.split(b"\n", 1)
        request = json.loads(line)
    except (OSError, ValueError):
        sock.close()
        return None
    sock.setblocking(False)
    return Client(sock, request, leftover)


def broadcast(clients: list[Client], stream: int, data: bytes) -> None:
    """The container's output to every attached client that asked for its stream."""
    for client in clients:
        if client.request.get("op") == "attach" and client.wants.get(stream):
            client.send(frame(stream, data))


def flush(clients: list[Client], sock: socket.socket) -> None:
    client = next((c for c in clients if c.sock is sock), None)
    if client is None:
        return
    try:
        sent = sock.send(client.outbox)
        del client.outbox[:sent]
    except BlockingIOError:
        pass
    except OSError:
        client.closing = True
        client.outbox.clear()


def drop_closed(clients: list[Client], waiters: list[Client]) -> None:
    for client in list(clients):
        if client.closing and not client.outbox:
            clients.remove(client)
            if client in waiters:
                waiters.remove(client)
            try:
                client.sock.close()
            except OSError:
                pass
