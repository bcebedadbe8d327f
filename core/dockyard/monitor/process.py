"""The container monitor: one small process per container that outlives the daemon.

It is the container's parent (a child subreaper), so it alone learns the exit status;
it holds the container's stdio (pipes, or the pty master for a terminal), writes the
json-file log with rotation, serves attach and exec sessions on a UNIX socket, and
records the exit status in a file before it exits. The daemon can die and come back:
the container keeps running, no log line is lost, and the exit status waits on disk.

Monitors are forked from a resident zygote (`serve_zygote`), so each shares the
interpreter's memory copy-on-write and costs well under a megabyte of its own;
`python -m dockyard.monitor STATE_DIR` runs one directly.

Imports stay within the standard library's small modules: every container pays for
what is loaded here.

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
"""

from __future__ import annotations

import array
import ctypes
import errno
import fcntl
import json
import os
import select
import signal
import socket
import struct
import sys
import termios
import time

STDOUT, STDERR, EXIT = 1, 2, 3
PR_SET_CHILD_SUBREAPER = 36
READ_SIZE = 65536
MAX_PARTIAL_LINE = 16 * 1024  # Docker splits longer lines into partial log entries
CLIENT_BUFFER_LIMIT = 4 << 20  # an attached client this far behind is dropped


def rfc3339_nano(now: float | None = None) -> str:
    now = time.time() if now is None else now
    seconds = int(now)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + \
        f".{int((now - seconds) * 1e9):09d}Z"


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BI", stream, len(payload)) + payload


def write_json_atomically(path: str, value: object) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w") as handle:
        json.dump(value, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class JsonFileLog:
    """Docker's json-file log driver: one JSON object per line, rotated by size."""

    def __init__(self, path: str, max_size: int, max_files: int) -> None:
        self.path = path
        self.max_size = max_size
        self.max_files = max(1, max_files)
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 (lives as long as the monitor)
        self._size = self._file.tell()
        self._partial = {STDOUT: b"", STDERR: b""}

    def write(self, stream: int, data: bytes) -> None:
        pending = self._partial[stream] + data
        lines = pending.split(b"\n")
        self._partial[stream] = lines.pop()
        for line in lines:
            self._entry(stream, line + b"\n")
        while len(self._partial[stream]) >= MAX_PARTIAL_LINE:
            self._entry(stream, self._partial[stream][:MAX_PARTIAL_LINE])
            self._partial[stream] = self._partial[stream][MAX_PARTIAL_LINE:]

    def flush_partial(self) -> None:
        for stream, rest in self._partial.items():
            if rest:
                self._entry(stream, rest)
                self._partial[stream] = b""

    def _entry(self, stream: int, text: bytes) -> None:
        record = json.dumps({"log": text.decode("utf-8", "replace"),
                             "stream": "stdout" if stream == STDOUT else "stderr",
                             "time": rfc3339_nano()}).encode() + b"\n"
        if self.max_size and self._size and self._size + len(record) > self.max_size:
            self._rotate()
        self._file.write(record)
        self._size += len(record)

    def _rotate(self) -> None:
        self._file.close()
        if self.max_files == 1:
            os.truncate(self.path, 0)
        else:
            for index in range(self.max_files - 1, 0, -1):
                older = f"{self.path}.{index}"
                newer = self.path if index == 1 else f"{self.path}.{index - 1}"
                if os.path.exists(newer):
                    os.replace(newer, older)
        self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        self.flush_partial()
        self._file.close()


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
            raise OSError(self._runtime_message(message) or f"runtime create exited with {status}")
        runtime_log.close()
        with open(config["pid_file"]) as handle:
            return int(handle.read().strip())

    def _runtime_message(self, text: str) -> str:
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
            if self.exit is not None and not self._exec_outputs() and not self.output_fds:
                break
            readers = [self._wakeup_r, self.control, *self.output_fds, *self._exec_outputs()]
            readers += [c.sock for c in self.clients if c.reading and not self._stdin_backlogged(c)]
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
                    self._client_input(item)
            for item in writable:
                if isinstance(item, int):
                    self._feed_stdin(item)
                else:
                    self._flush(item)
            self._drop_closed()
        self._finish()

    def _exec_outputs(self) -> list[int]:
        return [fd for session in self.execs.values() for fd in session.output_fds]

    def _pump(self, fd: int) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except OSError as exc:
            data = b"" if exc.errno == errno.EIO else b""  # EIO: the pty's last holder left
        session = next((s for s in self.execs.values() if fd in s.output_fds), None)
        if session is not None:
            stream = session.output_fds[fd]
            if not data:
                del session.output_fds[fd]
                os.close(fd)
                self._maybe_finish_exec(session)
            elif session.client is not None:
                session.client.send(frame(stream, data))
            return
        stream = self.output_fds[fd]
        if not data:
            del self.output_fds[fd]
            if fd != self.pty:
                os.close(fd)
            return
        self.log.write(stream, data)
        for client in self.clients:
            if client.request.get("op") == "attach" and client.wants.get(stream):
                client.send(frame(stream, data))

    def _accept(self) -> None:
        try:
            sock, _ = self.control.accept()
        except OSError:
            return
        sock.settimeout(5)
        buffer = b""
        try:
            while b"\n" not in buffer:
                chunk = sock.recv(4096)
                if not chunk:
                    sock.close()
                    return
                buffer += chunk
            line, leftover = buffer.split(b"\n", 1)
            request = json.loads(line)
        except (OSError, ValueError):
            sock.close()
            return
        sock.setblocking(False)
        client = Client(sock, request, leftover)
        self.clients.append(client)
        self._handle(client)

    def _handle(self, client: Client) -> None:
        op = client.request.get("op")
        if op == "attach":
            if client.request.get("stdin") and self.stdin_fd is not None:
                client.stdin_target = self.stdin_fd
            # the ack tells the daemon the client is registered: output from now on reaches it
            client.send(b'{"ok": true}\n')
            self._forward_leftover(client)
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
            self._start_exec(client)
        else:
            client.send(json.dumps({"error": f"unknown op {op!r}"}).encode() + b"\n")
            client.closing = True

    def _forward_leftover(self, client: Client) -> None:
        if client.leftover and client.stdin_target is not None:
            self._write_stdin(client, client.leftover)
        client.leftover = b""

    def _client_input(self, sock: socket.socket) -> None:
        client = next((c for c in self.clients if c.sock is sock), None)
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
                self._stdin_eof(client)
            return
        self._write_stdin(client, data)

    def _stdin_backlogged(self, client: Client) -> bool:
        target = client.stdin_target
        return target is not None and len(self.stdin_pending.get(target, b"")) > CLIENT_BUFFER_LIMIT

    def _write_stdin(self, client: Client, data: bytes) -> None:
        target = client.stdin_target
        if target is None:
            return
        if target not in self.stdin_pending:
            fcntl.fcntl(target, fcntl.F_SETFL, fcntl.fcntl(target, fcntl.F_GETFL) | os.O_NONBLOCK)
            self.stdin_pending[target] = bytearray()
        self.stdin_pending[target] += data
        self._feed_stdin(target)

    def _feed_stdin(self, fd: int) -> None:
        pending = self.stdin_pending.get(fd)
        if not pending:
            return
        try:
            written = os.write(fd, pending)
            del pending[:written]
        except BlockingIOError:
            pass
        except OSError:  # the process closed its stdin or exited
            self.stdin_pending.pop(fd, None)

    def _stdin_eof(self, client: Client) -> None:
        """Docker closes the container's stdin when an attached client ends its input
        only for StdinOnce containers; exec sessions always get their EOF."""
        target = client.stdin_target
        client.stdin_target = None
        if client.exec_id is not None:
            session = self.execs.get(client.exec_id)
            if session is not None and session.stdin_fd is not None and session.pty is None:
                self._close_stdin(session.stdin_fd)
                session.stdin_fd = None
            return
        if target is not None and self.config.get("stdin_once") and target != self.pty:
            self._close_stdin(target)
            self.stdin_fd = None
            for other in self.clients:
                if other.stdin_target == target:
                    other.stdin_target = None
        if not client.outbox and client.request.get("op") == "attach" and not any(client.wants.values()):
            client.closing = True

    def _close_stdin(self, fd: int) -> None:
        """Close once what is pending has been written (best effort, without blocking)."""
        pending = self.stdin_pending.pop(fd, b"")
        if pending:
            try:
                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
                os.write(fd, pending)
            except OSError:
                pass
        os.close(fd)

    def _flush(self, sock: socket.socket) -> None:
        client = next((c for c in self.clients if c.sock is sock), None)
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

    def _drop_closed(self) -> None:
        for client in list(self.clients):
            if client.closing and not client.outbox:
                self.clients.remove(client)
                if client in self.waiters:
                    self.waiters.remove(client)
                try:
                    client.sock.close()
                except OSError:
                    pass

    # -- exec ----------------------------------------------------------------------

    def _start_exec(self, client: Client) -> None:
        request = client.request
        exec_id = str(request["id"])
        client.exec_id = exec_id
        try:
            session = self._spawn_exec(exec_id, request)
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
            self._forward_leftover(client)
        self.execs[exec_id] = session
        write_json_atomically(self.path(f"exec-{exec_id}.json"), {"Pid": session.pid, "Running": True})

    def _spawn_exec(self, exec_id: str, request: dict) -> ExecSession:
        argv = request["argv"]
        runtime_log = open(self.path(f"exec-{exec_id}.err"), "w+b")  # noqa: SIM115
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
            message = self._runtime_message(runtime_log.read().decode(errors="replace"))
            runtime_log.close()
            raise OSError(message or "the runtime could not start the process")
        runtime_log.close()
        with open(request["pid_file"]) as handle:
            pid = int(handle.read().strip())
        return ExecSession(exec_id, None, pid, outputs, stdin_w, pty)

    def _maybe_finish_exec(self, session: ExecSession) -> None:
        if session.exit_code is None or session.output_fds:
            return
        result = {"Pid": session.pid, "Running": False, "ExitCode": session.exit_code}
        write_json_atomically(self.path(f"exec-{session.exec_id}.json"), result)
        if session.client is not None:
            session.client.send(frame(EXIT, json.dumps(result).encode()))
            session.client.closing = True
        if session.stdin_fd is not None and session.pty is None:
            self.stdin_pending.pop(session.stdin_fd, None)
            os.close(session.stdin_fd)
        if session.pty is not None:
            self.stdin_pending.pop(session.pty, None)
            os.close(session.pty)
        del self.execs[session.exec_id]

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
            for session in list(self.execs.values()):
                if session.pid == pid:
                    session.exit_code = exit_code_of(status)
                    if session.pty is not None:  # a pty never reports EOF while held open
                        for fd in list(session.output_fds):
                            self._drain(fd, session)
                    self._maybe_finish_exec(session)

    def _drain(self, fd: int, session: ExecSession) -> None:
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
                for client in self.clients:
                    if client.request.get("op") == "attach" and client.wants.get(STDOUT):
                        client.send(frame(STDOUT, data))

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
                self._flush(sock)
        self._drop_closed()
        self.control.close()
        try:
            os.unlink(self.path("control.sock"))
        except FileNotFoundError:
            pass


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


def spawn(zygote_socket: str, state_dir: str, timeout: float = 10) -> None:
    """Ask the zygote for a monitor on `state_dir`; returns once it has been forked."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(zygote_socket)
        sock.sendall(json.dumps({"state_dir": state_dir}).encode() + b"\n")
        reply = json.loads(sock.makefile("rb").readline() or b"{}")
    if not reply.get("ok"):
        raise OSError(reply.get("error") or "the monitor zygote did not answer")

