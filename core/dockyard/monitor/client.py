"""The daemon's side of the container monitors: starting them, and talking to them.

The zygote that forks monitors is started on first use and left running when the
daemon stops (monitors of running containers must not depend on the daemon); a daemon
that comes back reuses it, or starts a new one if it is gone.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from dockyard.monitor import protocol

STDOUT, STDERR, EXIT = protocol.STDOUT, protocol.STDERR, protocol.EXIT


class MonitorError(Exception):
    pass


def spawn(zygote_socket: str, state_dir: str, timeout: float = 10) -> None:
    """Ask the zygote for a monitor on `state_dir`; returns once it has been forked."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(zygote_socket)
        sock.sendall(json.dumps({"state_dir": state_dir}).encode() + b"\n")
        reply = json.loads(sock.makefile("rb").readline() or b"{}")
    if not reply.get("ok"):
        raise OSError(reply.get("error") or "the monitor zygote did not answer")


class Zygote:
    def __init__(self, exec_root: Path) -> None:
        self.socket_path = exec_root / "monitor-zygote.sock"
        # parallel starts must not each launch a zygote: all but the last would be left
        # listening on an unlinked socket, forever
        self._starting = threading.Lock()

    def _alive(self) -> bool:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(self.socket_path))
            return True
        except OSError:
            return False
        finally:
            probe.close()

    def ensure(self) -> None:
        if self._alive():
            return
        with self._starting:
            if not self._alive():
                self._launch()

    def _launch(self) -> None:
        subprocess.Popen(
            [sys.executable, "-I", "-m", "dockyard.monitor", "--zygote", str(self.socket_path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True)
        deadline = time.monotonic() + 10
        while not self._alive():
            if time.monotonic() > deadline:
                raise MonitorError("the monitor zygote did not start")
            time.sleep(0.01)

    def spawn(self, state_dir: Path) -> None:
        self.ensure()
        try:
            spawn(str(self.socket_path), str(state_dir))
        except OSError as exc:
            raise MonitorError(f"cannot start a container monitor: {exc}") from None

    def stop(self) -> None:
        """For full teardown (tests): running monitors are separate processes and stay."""
        try:
            pid = int(Path(str(self.socket_path) + ".pid").read_text())
            os.kill(pid, 15)
        except (OSError, ValueError):
            pass


class MonitorHandle:
    """Connections to one container's monitor through its control socket."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.control = state_dir / "control.sock"

    def connect(self, request: dict, timeout: float | None = 10) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(self.control))
            sock.sendall(json.dumps(request).encode() + b"\n")
        except OSError as exc:
            sock.close()
            raise MonitorError(f"the container's monitor is not answering: {exc}") from None
        return sock

    def alive(self) -> bool:
        try:
            with self.connect({"op": "state"}, timeout=2) as sock:
                return bool(sock.recv(4096))
        except (MonitorError, OSError):
            return False

    def wait_exit(self) -> dict | None:
        """Block until the container exits; None when the monitor vanished without a word."""
        try:
            sock = self.connect({"op": "wait"}, timeout=None)
        except MonitorError:
            return self.recorded_exit()
        data = b""
        with sock:
            try:
                while b"\n" not in data:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                # the monitor finished before it took this connection: exit.json has it all
                data = b""
        if data.strip():
            return json.loads(data.split(b"\n", 1)[0])["exit"]
        return self.recorded_exit()

    def recorded_exit(self) -> dict | None:
        try:
            return json.loads((self.state_dir / "exit.json").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def attach(self, stdin: bool, stdout: bool, stderr: bool) -> socket.socket:
        """An attach session, registered (acknowledged) before this returns."""
        sock = self.connect({"op": "attach", "stdin": stdin, "stdout": stdout, "stderr": stderr})
        ack = b""
        while not ack.endswith(b"\n"):
            chunk = sock.recv(1)
            if not chunk:
                sock.close()
                raise MonitorError("the container's monitor closed the attach session")
            ack += chunk
        sock.settimeout(None)
        return sock

    def resize(self, height: int, width: int, exec_id: str | None = None) -> None:
        request = {"op": "resize", "height": height, "width": width}
        if exec_id:
            request["exec"] = exec_id
        with self.connect(request) as sock:
            sock.recv(4096)


def read_frames(sock: socket.socket) -> Iterator[tuple[int, bytes]]:
    """Frames sent by a monitor: (stream, payload) until the monitor closes."""
    buffer = b""
    while True:
        while len(buffer) >= 5:
            stream, length = struct.unpack(">BI", buffer[:5])
            if len(buffer) < 5 + length:
                break
            yield stream, buffer[5:5 + length]
            buffer = buffer[5 + length:]
        try:
            chunk = sock.recv(65536)
        except OSError:
            return
        if not chunk:
            return
        buffer += chunk
