"""Client sessions: the `POST /session` connections on which the daemon is the gRPC client.

A build names its session by id (`X-Docker-Expose-Session-Uuid`); the client serves
FileSync (the build context), Auth and Secrets on it. Each session gets a private UNIX
socket that grpcio's channel connects to, spliced to the upgraded connection, so the
channel speaks HTTP/2 to the client as if it had dialled it.
"""

from __future__ import annotations

import logging
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import grpc

from dockyard.builder.buildkit.splice import splice
from dockyard.errors import InvalidParameter

log = logging.getLogger(__name__)

SESSION_WAIT = 10.0  # seconds a build waits for its session's connection to arrive


@dataclass
class Session:
    id: str
    name: str
    shared_key: str
    methods: frozenset[str]
    socket_path: Path
    channel: Any = None  # grpc.Channel, made when the connection arrives

    def offers(self, method: str) -> bool:
        return method in self.methods


class Sessions:
    """The sessions connected now, by id."""

    def __init__(self, socket_dir: Path) -> None:
        self.socket_dir = Path(socket_dir)
        self._sessions: dict[str, Session] = {}
        self._changed = threading.Condition()

    def serve(self, connection: socket.socket, reader: BinaryIO, headers: Any) -> None:
        """The hijacked `/session` connection, for as long as the client keeps it."""
        session_id = headers.get("X-Docker-Expose-Session-Uuid") or ""
        if not session_id:
            raise InvalidParameter("a session needs its X-Docker-Expose-Session-Uuid header")
        directory = Path(tempfile.mkdtemp(prefix="session-", dir=self.socket_dir))
        path = directory / "s.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(1)
        session = Session(session_id, headers.get("X-Docker-Expose-Session-Name") or "",
                          headers.get("X-Docker-Expose-Session-Sharedkey") or "",
                          frozenset(headers.get_all("X-Docker-Expose-Session-Grpc-Method") or ()), path)
        try:
            # the channel connects at once, so the splice (and the end of a session no build
            # used) follows the client's connection, not the first build that asks for it
            session.channel = grpc.insecure_channel(f"unix:{path}")
            ready = grpc.channel_ready_future(session.channel)
            listener.settimeout(SESSION_WAIT)
            try:
                inside, _ = listener.accept()
            except TimeoutError:
                log.warning("session %s: grpcio never connected", session_id)
                return
            finally:
                listener.close()
            with self._changed:
                self._sessions[session_id] = session
                self._changed.notify_all()
            splice(connection, reader, inside)
            ready.cancel()
        finally:
            with self._changed:
                if self._sessions.get(session_id) is session:
                    del self._sessions[session_id]
            if session.channel is not None:
                session.channel.close()
            listener.close()
            path.unlink(missing_ok=True)
            directory.rmdir()

    def get(self, session_id: str, timeout: float = SESSION_WAIT) -> Session:
        deadline = time.monotonic() + timeout
        with self._changed:
            while session_id not in self._sessions:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise InvalidParameter(f"no active session for {session_id}: the client's session "
                                           "connection (POST /session) did not arrive")
                self._changed.wait(left)
            return self._sessions[session_id]

    def close(self) -> None:
        with self._changed:
            sessions = list(self._sessions.values())
        for session in sessions:
            if session.channel is not None:
                session.channel.close()
