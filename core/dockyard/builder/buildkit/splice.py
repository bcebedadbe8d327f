"""An upgraded HTTP connection joined to a socket of grpcio's, as one byte stream each way."""

from __future__ import annotations

import socket
import threading
from typing import BinaryIO


def _into(reader: BinaryIO, sink: socket.socket) -> None:
    """From the client: through the HTTP server's buffered reader, which may hold bytes
    it read past the upgrade request."""
    try:
        while data := reader.read1(262144):
            sink.sendall(data)
    except (OSError, ValueError):
        pass
    finally:
        _shut(sink)


def _out_of(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(262144):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _shut(sink)


def _shut(end: socket.socket) -> None:
    try:
        end.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def splice(client: socket.socket, client_reader: BinaryIO, inside: socket.socket) -> None:
    """Copy both ways until both directions have ended, then close `inside`. The caller
    owns `client` (the HTTP server closes it when its hijack session returns)."""
    back = threading.Thread(target=_out_of, args=(inside, client), daemon=True, name="buildkit splice")
    back.start()
    try:
        _into(client_reader, inside)
        back.join()
    finally:
        inside.close()
