"""The container monitor: one small process per container that outlives the daemon.

It is the container's parent (a child subreaper), so it alone learns the exit status;
it holds the container's stdio (pipes, or the pty master for a terminal), writes the
json-file log with rotation, serves attach and exec sessions on a UNIX socket, and
records the exit status in a file before it exits. The daemon can die and come back:
the container keeps running, no log line is lost, and the exit status waits on disk.

`Monitor` owns the state, the container's creation, the loop and the exit record; the
package's other modules do the log, the sessions, stdin and exec for it.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import select
import signal
import struct
import termios
import time

from dockyard.monitor.exec import ExecSession, exec_output, exec_outputs, exec_reaped, start_exec
from dockyard.monitor.jsonlog import JsonFileLog, rfc3339_nano
from dockyard.monitor.protocol import STDOUT
from dockyard.monitor.sessions import Client, accept, broadcast, drop_closed, flush
from dockyard.monitor.stdin import client_input, feed_stdin, forward_leftover, stdin_backlogged
from dockyard.monitor.unix import (
    READ_SIZE,
    exit_code_of,
    listen_unix,
    pipes,
    receive_fd,
    write_json_atomically,
)

PR_SET_CHILD_SUBREAPER = 36


class Monitor:
    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        with open(os.path.join(state_dir, "monitor.json")) as handle:
            self.config = json.load(handle)
        self.clients: list[Client] = []
        self.waiters: list[Client] = []
        self.execs: dict[str, ExecSession] = {}
        self.output_fds: dict[int, int] = {}  # container output fd -> stream
        self.stdin_fd: int | None = None
        self.pty: int | None = None
        self.pid = 0
        self.exit: dict | None = None
        self.log: JsonFileLog | None = None
        # bytes for a container's (or exec's) stdin that it has not read yet: the monitor
        # never blocks on a process that does not read its input
        self.stdin_pending: dict[int, bytearray] = {}
        self._wakeup_r, self._wakeup_w = os.pipe()

    def path(self, name: str) -> str:
        return os.path.join(self.state_dir, name)

    # -- start-up ------------------------------------------------------------------

    def run(self) -> int:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        for fd in (self._wakeup_r, self._wakeup_w):
            fcntl.fcntl(fd, fcntl.F_SETFL, os.O_NONBLOCK)
        signal.set_wakeup_fd(self._wakeup_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        config = self.config
        self.log = JsonFileLog(config["log_path"], config.get("log_max_size", 0),
                               config.get("log_max_files", 1))
        self.control = listen_unix(self.path("control.sock"))
        try:
            self.pid = self._create()
        except Exception as exc:  # the runtime refused: say why, the daemon reports it
            self._record_exit({"ExitCode": -1, "Error": str(exc).strip(), "FinishedAt": rfc3339_nano()})
            return 1
        write_json_atomically(self.path("state.json"), {"pid": self.pid, "monitor": os.getpid()})
        self._loop()
        return 0

    def _create(self) -> int:
        config = self.config
        runtime_log = open(self.path("create.err"), "w+b")  # noqa: SIM115
        child_fds = []
        if config.get("tty"):
            console = listen_unix(config["console_socket"])
            stdio = [os.open(os.devnull, os.O_RDWR)] * 3
            child_fds.append(stdio[0])
        else:
            console = None
            stdio, self.output_fds, self.stdin_fd = pipes(bool(config.get("open_stdin")))
            child_fds += stdio
        process = os.posix_spawnp(config["create_argv"][0], config["create_argv"],
                                  dict(os.environ, **config.get("runtime_env", {})),
                                  file_actions=[(os.POSIX_SPAWN_DUP2, stdio[0], 0),
                                                (os.POSIX_SPAWN_DUP2, stdio[1], 1),
                                                (os.POSIX_SPAWN_DUP2, runtime_log.fileno() if console
                                                 else stdio[2], 2)])
        try:
            if console is not None:
                self.pty = receive_fd(console, 30)
                self.output_fds = {self.pty: STDOUT}
                self.stdin_fd = self.pty
        finally:
            if console is not None:
                console.close()
                os.unlink(config["console_socket"])
        _, status = os.waitpid(process, 0)
        for fd in set(child_fds):
            os.close(fd)
        if exit_code_of(status) != 0:
            runtime_log.seek(0)
            message = runtime_log.read().decode(errors="replace")
            runtime_log.close()
            raise OSError(self.runtime_message(message) or f"runtime create exited with {status}")
        runtime_log.close()
        with open(config["pid_file"]) as handle:
            return int(handle.read().strip())

    def runtime_message(self, text: str) -> str:
        """runc's --log-format json lines carry "msg"; plain text is taken as it is."""
        log_file = self.config.get("runtime_log")
        if log_file and os.path.exists(log_file):
            with open(log_file, errors="replace") as handle:
                text = handle.read() + text
        messages = []
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                if line.strip():
                    messages.append(line.strip())
                continue
            if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
                messages.append(entry.get("msg", ""))
        return messages[-1] if messages else ""

    # -- the loop ------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            self._reap()
            if self.exit is not None and not exec_outputs(self) and not self.output_fds:
                break
            readers = [self._wakeup_r, self.control, *self.output_fds, *exec_outputs(self)]
            readers += [c.sock for c in self.clients if c.reading and not stdin_backlogged(self, c)]
            writers = [c.sock for c in self.clients if c.outbox]
            writers += [fd for fd, pending in self.stdin_pending.items() if pending]
            try:
                readable, writable, _ = select.select(readers, writers, [], 1.0)
            except InterruptedError:
                continue
            for item in readable:
                if item == self._wakeup_r:
                    try:
                        os.read(self._wakeup_r, 512)
                    except BlockingIOError:
                        pass
                elif item is self.control:
                    self._accept()
                elif isinstance(item, int):
                    self._pump(item)
                else:
                    client_input(self, item)
            for item in writable:
                if isinstance(item, int):
                    feed_stdin(self, item)
                else:
                    flush(self.clients, item)
            drop_closed(self.clients, self.waiters)
        self._finish()

    def _pump(self, fd: int) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except OSError as exc:
            data = b"" if exc.errno == errno.EIO else b""  # EIO: the pty's last holder left
        if exec_output(self, fd, data):
            return
        stream = self.output_fds[fd]
        if not data:
            del self.output_fds[fd]
            if fd != self.pty:
                os.close(fd)
            return
        self.log.write(stream, data)
        broadcast(self.clients, stream, data)

    def _accept(self) -> None:
        client = accept(self.control)
        if client is None:
            return
        self.clients.append(client)
        self._handle(client)

    def _handle(self, client: Client) -> None:
        op = client.request.get("op")
        if op == "attach":
            if client.request.get("stdin") and self.stdin_fd is not None:
                client.stdin_target = self.stdin_fd
            # the ack tells the daemon the client is registered: output from now on reaches it
            client.send(b'{"ok": true}\n')
            forward_leftover(self, client)
        elif op == "wait":
            self.waiters.append(client)
            if self.exit is not None:
                client.send(json.dumps({"exit": self.exit}).encode() + b"\n")
                client.closing = True
        elif op == "state":
            client.send(json.dumps({"pid": self.pid, "running": self.exit is None}).encode() + b"\n")
            client.closing = True
        elif op == "resize":
            target = self.pty
            if client.request.get("exec"):
                session = self.execs.get(client.request["exec"])
                target = session.pty if session else None
            if target is not None:
                size = struct.pack("HHHH", int(client.request.get("height", 24)),
                                   int(client.request.get("width", 80)), 0, 0)
                fcntl.ioctl(target, termios.TIOCSWINSZ, size)
            client.send(b'{"ok": true}\n')
            client.closing = True
        elif op == "exec":
            start_exec(self, client)
        else:
            client.send(json.dumps({"error": f"unknown op {op!r}"}).encode() + b"\n")
            client.closing = True

    # -- exits ---------------------------------------------------------------------

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.pid and self.exit is None:
                self._container_exited(exit_code_of(status))
                continue
            exec_reaped(self, pid, status)

    def _container_exited(self, code: int) -> None:
        oom = self._oom_killed()
        self.exit = {"ExitCode": code, "OOMKilled": oom, "FinishedAt": rfc3339_nano(), "Error": ""}
        if self.pty is not None:
            # the pty stays open in us; read what is left, then stop watching it
            while self.pty in self.output_fds:
                try:
                    readable, _, _ = select.select([self.pty], [], [], 0)
                    data = os.read(self.pty, READ_SIZE) if readable else b""
                except OSError:
                    data = b""
                if not data:
                    del self.output_fds[self.pty]
                    break
                self.log.write(STDOUT, data)
                broadcast(self.clients, STDOUT, data)

    def _oom_killed(self) -> bool:
        for path in self.config.get("oom_files", []):
            try:
                with open(path) as handle:
                    for line in handle:  # v1 memory.oom_control and v2 memory.events alike
                        key, _, value = line.partition(" ")
                        if key == "oom_kill" and int(value) > 0:
                            return True
            except (OSError, ValueError):
                continue
        return False

    def _record_exit(self, result: dict) -> None:
        self.exit = result
        write_json_atomically(self.path("exit.json"), result)

    def _finish(self) -> None:
        self.log.close()
        write_json_atomically(self.path("exit.json"), self.exit)
        message = json.dumps({"exit": self.exit}).encode() + b"\n"
        for client in self.clients:
            if client in self.waiters:
                client.send(message)
            client.closing = True
        deadline = time.monotonic() + 5
        while any(c.outbox for c in self.clients) and time.monotonic() < deadline:
            _, writable, _ = select.select([], [c.sock for c in self.clients if c.outbox], [], 0.5)
            for sock in writable:
                flush(self.clients, sock)
        drop_closed(self.clients, self.waiters)
        self.control.close()
        try:
            os.unlink(self.path("control.sock"))
        except FileNotFoundError:
            pass
