"""OciRuntime: one OCI runtime binary (runc or crun) driven through its command line.

Owns the runtime's state directory (`<exec_root>/runtime/<name>`, passed as `--root` on
every call so nothing lands in the host's `/run/runc`) and the runtime's logs beside it
(`<exec_root>/runtime/<name>-logs`). runc and crun take the same global flags and verbs,
so one class serves both; only the binary differs.

Errors are the runtime's own words: every call runs with `--log FILE --log-format json`
and a failure is reported with the last error the runtime logged (its stderr when it
logged none), prefixed with the verb and container id.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dockyard.plugin import ContainerNotFound, RuntimeFailure, RuntimeState

# A runtime that does not answer in this time is stuck (a frozen cgroup, a hung mount).
CALL_TIMEOUT = 60.0

# What runc and crun accept as a container id; checked before an id becomes a path.
_CONTAINER_ID = re.compile(r"^[A-Za-z0-9_+\-.]+$")

_ERROR_LEVELS = {"error", "fatal", "panic"}

# Advice for messages whose fix is not obvious from the runtime's words alone.
_HINTS = (
    ("that is not stopped", "stop it first, or delete it with force"),
    ("drop all controllers from cgroupv2", "this host has hybrid cgroups: use the runc runtime"),
    ("container not running", "it has already stopped"),
    ("executable file not found", "check the image's entrypoint and cmd, and PATH"),
    # The kernel keeps a dying init until every process of its pid namespace is reaped,
    # exec'd ones included: their parent (the monitor) has not waited for them.
    ("container init still running", "its processes' parent must reap them, exec'd ones included"),
)


def read_error_log(path: Path) -> str | None:
    """The last error in a runtime's JSON log (`--log-format json`), or None.

    runc and crun both write one JSON object per line with `level` and `msg`; a line
    that is not JSON (a runtime crashing mid-write) is kept as it is."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return None
    last = None
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            last = line
            continue
        if isinstance(entry, dict) and str(entry.get("level", "")).lower() in _ERROR_LEVELS:
            last = str(entry.get("msg", "")).strip() or last
    return last


class OciRuntime:
    """An OCI runtime CLI (runc, crun) with its state under `state_root`.

    `binary` is the executable (an absolute path, resolved once by the factory);
    `state_root` is passed as `--root`, `log_dir` holds one JSON log per container (the
    runtime's words about a failed create or exec) and the short-lived logs of the
    other calls.
    """

    def __init__(self, name: str, binary: str, state_root: Path, log_dir: Path) -> None:
        self.name = name
        self.binary = binary
        self.state_root = Path(state_root)
        self.log_dir = Path(log_dir)
        # runc and crun both fail `list` when the root does not exist yet; 0700 because
        # the state holds every container's config.
        self.state_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"OciRuntime({self.name!r}, binary={self.binary!r}, state_root={str(self.state_root)!r})"

    # -- commands the monitor runs -------------------------------------------------

    def create_command(self, container_id: str, bundle: Path, pid_file: Path,
                       console_socket: Path | None = None) -> list[str]:
        """`create` with the container's log as `--log`; a stale log of an earlier
        container with this id is removed so `failure_message` speaks of this one."""
        log = self.log_file(container_id)
        log.unlink(missing_ok=True)
        argv = [*self._global_flags(log), "create", "--bundle", str(bundle),
                "--pid-file", str(pid_file)]
        if console_socket is not None:
            argv += ["--console-socket", str(console_socket)]
        return [*argv, container_id]

    def exec_command(self, container_id: str, process_file: Path, pid_file: Path,
                     console_socket: Path | None = None) -> list[str]:
        """`exec --detach --process FILE`; errors append to the container's log."""
        argv = [*self._global_flags(self.log_file(container_id)), "exec", "--detach",
                "--process", str(process_file), "--pid-file", str(pid_file)]
        if console_socket is not None:
            argv += ["--console-socket", str(console_socket)]
        return [*argv, self._checked_id(container_id)]

    def log_file(self, container_id: str) -> Path:
        """The JSON log that `create_command` and `exec_command` point the runtime at."""
        return self.log_dir / f"{self._checked_id(container_id)}.json"

    def failure_message(self, container_id: str) -> str | None:
        """The runtime's own words for the last failed create or exec of this container
        (for the monitor to report when the command it ran exits non-zero), or None."""
        return read_error_log(self.log_file(container_id))

    # -- verbs the daemon calls ----------------------------------------------------

    def version(self) -> str:
        """The version from the first line of `--version` ("runc version 1.1.5" -> "1.1.5")."""
        try:
            # With --root: crun creates its default root (/run/crun) even to print its version.
            result = subprocess.run([self.binary, "--root", str(self.state_root), "--version"],
                                    stdin=subprocess.DEVNULL,
                                    capture_output=True, text=True, timeout=CALL_TIMEOUT)
        except OSError as exc:
            raise RuntimeFailure(f"cannot run {self.binary}: {exc.strerror}") from exc
        lines = result.stdout.strip().splitlines()
        if result.returncode != 0 or not lines:
            raise RuntimeFailure(f"{self.binary} --version failed: "
                                 f"{result.stderr.strip() or f'exit status {result.returncode}'}")
        match = re.match(r"^\S+\s+version\s+(\S+)", lines[0])
        return match.group(1) if match else lines[0].strip()

    def start(self, container_id: str) -> None:
        self._run("start", container_id)

    def state(self, container_id: str) -> RuntimeState:
        output = self._run("state", container_id)
        try:
            return self._parse_state(json.loads(output))
        except (ValueError, KeyError, TypeError) as exc:
            raise RuntimeFailure(f"{self.name} state {container_id}: cannot parse its output "
                                 f"({exc}): {output[:200]!r}") from exc

    def kill(self, container_id: str, signal: int, all_processes: bool = False) -> None:
        # A number, not a name: both runtimes accept one, and names differ between them
        # ("TERM" vs "SIGTERM") for signals Python may not even name (real-time ones).
        args = ["--all"] if all_processes else []
        self._run("kill", container_id, *args, positional=[str(int(signal))])

    def delete(self, container_id: str, force: bool = False) -> None:
        args = ["--force"] if force else []
        try:
            self._run("delete", container_id, *args)
        except ContainerNotFound:
            pass
        self.log_file(container_id).unlink(missing_ok=True)

    def pause(self, container_id: str) -> None:
        self._run("pause", container_id)

    def resume(self, container_id: str) -> None:
        self._run("resume", container_id)

    def update(self, container_id: str, resources: Mapping[str, Any]) -> None:
        fd, name = tempfile.mkstemp(prefix="resources-", suffix=".json", dir=self.log_dir)
        try:
            with os.fdopen(fd, "w") as file:
                json.dump(dict(resources), file)
            self._run("update", container_id, "--resources", name)
        finally:
            os.unlink(name)

    def list(self) -> Sequence[RuntimeState]:
        output = self._run("list", None, "--format", "json").strip()
        # runc prints `null`, not `[]`, when it has no container.
        entries = json.loads(output) if output else None
        return [self._parse_state(entry) for entry in entries or ()]

    # -- plumbing ------------------------------------------------------------------

    def _global_flags(self, log: Path) -> list[str]:
        return [self.binary, "--root", str(self.state_root), "--log", str(log), "--log-format", "json"]

    def _checked_id(self, container_id: str) -> str:
        if not _CONTAINER_ID.match(container_id or ""):
            raise RuntimeFailure(f"invalid container id {container_id!r}: use letters, digits, "
                                 "'_', '+', '-' and '.'")
        return container_id

    @staticmethod
    def _parse_state(entry: Mapping[str, Any]) -> RuntimeState:
        return RuntimeState(container_id=str(entry["id"]), status=str(entry["status"]),
                            pid=int(entry.get("pid") or 0), bundle=str(entry.get("bundle", "")))

    def _run(self, verb: str, container_id: str | None, *options: str,
             positional: Sequence[str] = ()) -> str:
        """Run `verb [options] [id] [positional]`; return its stdout or raise with the
        runtime's own message."""
        argv_tail = [verb, *options]
        if container_id is not None:
            argv_tail.append(self._checked_id(container_id))
        argv_tail += positional
        fd, log_name = tempfile.mkstemp(prefix=f"{verb}-", suffix=".json", dir=self.log_dir)
        os.close(fd)
        log = Path(log_name)
        try:
            try:
                result = subprocess.run([*self._global_flags(log), *argv_tail],
                                        stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                        timeout=CALL_TIMEOUT)
            except subprocess.TimeoutExpired as exc:
                raise RuntimeFailure(f"{self.name} {verb} {container_id or ''} did not finish within "
                                     f"{CALL_TIMEOUT:.0f}s (is the container's cgroup frozen?)") from exc
            except OSError as exc:
                raise RuntimeFailure(f"cannot run {self.binary}: {exc.strerror} "
                                     f"(apt-get install {self.name})") from exc
            if result.returncode == 0:
                return result.stdout
            message = (read_error_log(log) or result.stderr.strip()
                       or f"exit status {result.returncode}")
        finally:
            log.unlink(missing_ok=True)
        raise self._failure(verb, container_id, message)

    def _failure(self, verb: str, container_id: str | None, message: str) -> RuntimeFailure:
        subject = f"{self.name} {verb}" + (f" {container_id}" if container_id else "")
        # Both runtimes keep one directory per container in their root: its absence is the
        # one reliable sign of an unknown id (their messages for it differ).
        if container_id is not None and not (self.state_root / container_id).exists():
            return ContainerNotFound(f"{subject}: no such container under {self.state_root} "
                                     f"({self.name} says: {message})")
        hint = next((advice for needle, advice in _HINTS if needle in message), None)
        return RuntimeFailure(f"{subject}: {message}" + (f" ({hint})" if hint else ""))
