"""RuntimeSuite: the conformance suite every container runtime passes (moby's graphtest,
for `dockyard.plugin.contracts.runtime.Runtime`).

    from dockyard.plugin.testing.runtime import RuntimeSuite

    class TestRunc(RuntimeSuite):
        runtime_name = "runc"

The suite loads the runtime like the daemon does (strict PluginManager, the spec's
probe, then its factory with a temporary DriverContext) and drives real containers on
the real kernel: a minimal OCI bundle around a copy of the host's static /bin/busybox,
run the way the container monitor runs them (the test process is the containers'
subreaper and waits for their exit status). A runtime whose probe fails on this host is
skipped with the probe's reason. Needs root and a static /bin/busybox.

After every test the `harness` fixture removes what the test left and fails the test if
anything was left: a container in the runtime's state, a cgroup under /dockyard-test in
any hierarchy, or a process started for the test (they carry a marker in their
environment). This module also owns the helpers for that: `HostCgroups`,
`minimal_oci_config`, `set_child_subreaper`, `ChildReaper`. A driver's own tests can
borrow the fixtures: `runtime = RuntimeSuite.runtime; harness = RuntimeSuite.harness`
in a class that sets `runtime_name`.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dockyard.daemon.pluginmanager import PluginManager
from dockyard.plugin import DriverContext
from dockyard.plugin.contracts.runtime import ContainerNotFound, Runtime, RuntimeFailure

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "sleep", "cat", "echo", "true", "false", "id")
# Every test container's cgroup lives below this, so leftovers are easy to count.
CGROUP_PARENT = "/dockyard-test"
# Set in the environment of every process a test starts (runtime commands and container
# processes alike), so leftover processes can be found whatever their pid or parent.
MARKER_VARIABLE = "DOCKYARD_RUNTIME_SUITE"
TIMEOUT = 20.0

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
_PT_INTERP = 3


# -- host helpers ------------------------------------------------------------------


def set_child_subreaper(enabled: bool) -> bool:
    """Make this process the subreaper of its descendants (or stop); returns the old
    setting. The runtime's `create` exits and leaves the container's init behind: a
    subreaper inherits it and can wait for its exit status, as the monitor does."""
    libc = ctypes.CDLL(None, use_errno=True)
    previous = ctypes.c_int(0)
    if libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(previous), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_GET_CHILD_SUBREAPER) failed")
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, int(enabled), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
    return bool(previous.value)


def is_static_executable(path: Path) -> bool:
    """An ELF file without a PT_INTERP header runs without the host's dynamic loader,
    so a copy of it works inside a rootfs that holds nothing else."""
    try:
        with path.open("rb") as file:
            header = file.read(64)
            if header[:4] != b"\x7fELF":
                return False
            if header[4] == 2:  # ELFCLASS64
                phoff, phentsize, phnum = struct.unpack_from("<Q14xHH", header, 0x20)
            else:
                phoff, phentsize, phnum = struct.unpack_from("<I10xHH", header, 0x1C)
            for index in range(phnum):
                file.seek(phoff + index * phentsize)
                if struct.unpack("<I", file.read(4))[0] == _PT_INTERP:
                    return False
            return True
    except (OSError, struct.error):
        return False


@dataclass(frozen=True)
class HostCgroups:
    """Where this host mounts its cgroup hierarchies: v1 controllers by name (and
    named hierarchies such as `name=systemd`), and the v2 hierarchy. Hybrid hosts have
    both; pure v2 hosts have no v1 entry."""

    v1: Mapping[str, Path]
    v2: Path | None

    @classmethod
    def of_this_host(cls) -> HostCgroups:
        known = {line.split()[0] for line in Path("/proc/cgroups").read_text().splitlines()
                 if line and not line.startswith("#")}
        v1: dict[str, Path] = {}
        v2: Path | None = None
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            tail = fields[fields.index("-") + 1:]
            fstype, super_options = tail[0], tail[2] if len(tail) > 2 else ""
            mount_point = Path(fields[4])
            if fstype == "cgroup2" and v2 is None:
                v2 = mount_point
            elif fstype == "cgroup":
                for option in super_options.split(","):
                    if option in known or option.startswith("name="):
                        v1.setdefault(option, mount_point)
        return cls(v1, v2)

    @property
    def hierarchies(self) -> list[Path]:
        mounts = list(dict.fromkeys(self.v1.values()))
        return mounts + ([self.v2] if self.v2 is not None else [])

    def dirs(self, cgroups_path: str) -> list[Path]:
        """The directories of one cgroup, in every hierarchy where it exists."""
        relative = cgroups_path.lstrip("/")
        return [mount / relative for mount in self.hierarchies if (mount / relative).is_dir()]

    def memory_limit(self, cgroups_path: str) -> int | None:
        """The memory limit in bytes, None when unlimited."""
        relative = cgroups_path.lstrip("/")
        if "memory" in self.v1:
            value = int((self.v1["memory"] / relative / "memory.limit_in_bytes").read_text())
            return None if value >= 2**62 else value  # v1 spells "unlimited" as ~2**63
        assert self.v2 is not None, "this host mounts no memory controller"
        text = (self.v2 / relative / "memory.max").read_text().strip()
        return None if text == "max" else int(text)

    def frozen(self, cgroups_path: str) -> bool:
        relative = cgroups_path.lstrip("/")
        if "freezer" in self.v1:
            return (self.v1["freezer"] / relative / "freezer.state").read_text().strip() == "FROZEN"
        assert self.v2 is not None, "this host mounts no freezer"
        events = (self.v2 / relative / "cgroup.events").read_text().split("\n")
        return "frozen 1" in events

    def thaw_and_kill(self, cgroups_path: str) -> None:
        """Last-resort cleanup when the runtime could not delete: every process in the
        cgroup gets SIGKILL (a frozen one only dies once thawed)."""
        for directory in self.dirs(cgroups_path):
            for name, thawed in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
                try:
                    (directory / name).write_text(thawed)
                except OSError:
                    pass
            try:
                pids = (directory / "cgroup.procs").read_text().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def remove(self, cgroups_path: str) -> list[Path]:
        """rmdir the cgroup everywhere; returns the directories that would not go."""
        stuck = []
        for directory in self.dirs(cgroups_path):
            try:
                directory.rmdir()
            except OSError:
                stuck.append(directory)
        return stuck


def minimal_oci_config(args: Sequence[str], cgroups_path: str, *, env: Sequence[str] = (),
                       terminal: bool = False) -> dict:
    """`runc spec`'s defaults, trimmed: root user, five namespaces, the usual /proc,
    /dev and /sys mounts, a writable rootfs at `rootfs`."""
    # Never ask for more open files than this process may have: the runtime would fail
    # to set the limit (the hard limit of these hosts is 20000).
    nofile = min(1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    capabilities = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": ["PATH=/bin", "TERM=xterm", *env],
            "cwd": "/",
            "capabilities": {kind: capabilities
                             for kind in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "dockyard-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": kind} for kind in ("pid", "ipc", "uts", "mount", "network")],
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/sched_debug", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }


class ChildReaper:
    """Reaps the container processes this test process inherits as their subreaper, from
    a thread, as the container monitor does.

    Reaping must not wait until the test looks: the kernel keeps a dying container init
    alive until every process of its pid namespace is reaped, exec'd ones included
    (their parent is the subreaper, outside the namespace), and runc's `delete --force`
    gives up on an init that does not die ("container init still running")."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: set[int] = set()
        self._statuses: dict[int, int] = {}
        self._not_ours: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="container-reaper", daemon=True)

    def start(self) -> ChildReaper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def watch(self, pid: int) -> None:
        with self._lock:
            self._watched.add(pid)

    @property
    def unreaped(self) -> set[int]:
        with self._lock:
            return self._watched - set(self._statuses) - self._not_ours

    def wait(self, pid: int, timeout: float = TIMEOUT) -> int:
        """The wait status of a watched process, once it has exited."""
        self.watch(pid)
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if pid in self._statuses:
                    return self._statuses[pid]
                if pid in self._not_ours:
                    raise AssertionError(
                        f"pid {pid} is not a child of the test process: the runtime did not leave "
                        "the container's process to the subreaper that started it")
            if time.monotonic() > deadline:
                raise AssertionError(f"pid {pid} did not exit within {timeout}s")
            time.sleep(0.01)

    def wait_for_all(self, timeout: float) -> set[int]:
        """Wait until every watched process is reaped; returns those that were not."""
        deadline = time.monotonic() + timeout
        while (left := self.unreaped) and time.monotonic() < deadline:
            time.sleep(0.01)
        return left

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            for pid in self.unreaped:
                try:
                    reaped, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    with self._lock:
                        self._not_ours.add(pid)
                    continue
                if reaped == pid:
                    with self._lock:
                        self._statuses[pid] = status


# -- the harness ---------------------------------------------------------------------


@dataclass
class TestContainer:
    """One container of a test: its bundle and the files the monitor would hold."""

    __test__ = False  # not a test class, whatever its name

    container_id: str
    bundle: Path
    cgroups_path: str
    pid_file: Path
    stdout: Path
    stderr: Path

    @property
    def pid(self) -> int:
        return int(self.pid_file.read_text().strip())


@dataclass
class ContainerHarness:
    """Makes bundles, runs the monitor's side of the runtime's commands, and after the
    test proves nothing was left behind (`clean_up_and_report`)."""

    runtime: Runtime
    workdir: Path
    exec_root: Path
    cgroups: HostCgroups = field(default_factory=HostCgroups.of_this_host)
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    containers: list[TestContainer] = field(default_factory=list)
    reaper: ChildReaper = field(default_factory=ChildReaper)
    fds: list[int] = field(default_factory=list)
    short_dirs: list[Path] = field(default_factory=list)
    default_root_existed: bool = False

    def __post_init__(self) -> None:
        self.default_root_existed = self.default_root.exists()

    @property
    def default_root(self) -> Path:
        """The runtime's system-wide state directory, which it must never use."""
        return Path("/run", self.runtime.name)

    @property
    def marker(self) -> str:
        return f"{MARKER_VARIABLE}={self.token}"

    def environment(self) -> dict[str, str]:
        return {**os.environ, MARKER_VARIABLE: self.token}

    def new_id(self, suffix: str = "") -> str:
        return f"dyt-{self.token}-{len(self.containers)}{suffix}"

    # -- bundles and commands ----------------------------------------------------

    def bundle(self, *args: str, terminal: bool = False) -> TestContainer:
        container_id = self.new_id()
        directory = self.workdir / container_id
        bin_dir = directory / "rootfs" / "bin"
        bin_dir.mkdir(parents=True)
        for mount_point in ("proc", "dev", "sys", "tmp"):
            (directory / "rootfs" / mount_point).mkdir()
        shutil.copy2(BUSYBOX, bin_dir / "busybox")
        for applet in APPLETS:
            (bin_dir / applet).symlink_to("busybox")
        cgroups_path = f"{CGROUP_PARENT}/{container_id}"
        config = minimal_oci_config(args, cgroups_path, env=[self.marker], terminal=terminal)
        (directory / "config.json").write_text(json.dumps(config, indent=2))
        container = TestContainer(container_id, directory, cgroups_path, directory / "init.pid",
                                  directory / "stdout", directory / "stderr")
        self.containers.append(container)
        return container

    def create(self, container: TestContainer, console_socket: Path | None = None,
               expect_success: bool = True) -> subprocess.CompletedProcess:
        """Run the runtime's create command as the monitor does: our child, its stdio
        the container's log files."""
        argv = self.runtime.create_command(container.container_id, container.bundle,
                                           container.pid_file, console_socket)
        with container.stdout.open("ab") as stdout, container.stderr.open("ab") as stderr:
            result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                    env=self.environment(), timeout=TIMEOUT)
        if result.returncode == 0 and container.pid_file.exists():
            self.reaper.watch(container.pid)
        if expect_success:
            assert result.returncode == 0, (
                f"{argv} exited with {result.returncode}: {container.stderr.read_text()}")
            assert container.pid_file.exists(), f"{argv} wrote no pid file"
        return result

    def created(self, *args: str) -> TestContainer:
        container = self.bundle(*args)
        self.create(container)
        return container

    def running(self, *args: str) -> TestContainer:
        container = self.created(*args)
        self.runtime.start(container.container_id)
        return container

    def exec(self, container: TestContainer, *args: str) -> tuple[int, Path]:
        """Start `args` in the container through `exec_command`; returns its pid and the
        file that receives its output."""
        name = f"exec-{len(list(container.bundle.glob('exec-*.json')))}"
        process_file = container.bundle / f"{name}.json"
        process = {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": list(args),
                   "env": ["PATH=/bin", self.marker], "cwd": "/"}
        process_file.write_text(json.dumps(process))
        pid_file = container.bundle / f"{name}.pid"
        output = container.bundle / f"{name}.out"
        argv = self.runtime.exec_command(container.container_id, process_file, pid_file)
        with output.open("ab") as out:
            result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    env=self.environment(), timeout=TIMEOUT)
        assert result.returncode == 0, f"{argv} exited with {result.returncode}: {output.read_text()}"
        pid = int(pid_file.read_text().strip())
        self.reaper.watch(pid)
        return pid, output

    def console_listener(self) -> tuple[socket.socket, Path]:
        """A listening UNIX socket for `--console-socket`, at a path short enough for
        sun_path (108 bytes), which pytest's tmp_path is not always."""
        directory = Path(tempfile.mkdtemp(prefix="dyrt-"))
        self.short_dirs.append(directory)
        path = directory / "console.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(1)
        listener.settimeout(TIMEOUT)
        return listener, path

    def adopt_fd(self, fd: int) -> int:
        """Close `fd` at teardown."""
        self.fds.append(fd)
        return fd

    # -- waiting -----------------------------------------------------------------

    def wait_for_exit(self, pid: int, timeout: float = TIMEOUT) -> int:
        """Wait for a container process (our child, since we are the subreaper) and
        return its wait status."""
        return self.reaper.wait(pid, timeout)

    @staticmethod
    def wait_for_text(path: Path, text: str, timeout: float = TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            content = path.read_text(errors="replace") if path.exists() else ""
            if text in content:
                return content
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} did not appear in {path} within {timeout}s: {content!r}")
            time.sleep(0.02)

    # -- leftovers ---------------------------------------------------------------

    def marked_processes(self) -> list[int]:
        """Live processes (zombies have no environment) started for this test."""
        marker = self.marker.encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:  # gone meanwhile, or a kernel thread
                continue
            if marker in environ.split(b"\0"):
                found.append(int(entry.name))
        return found

    def wait_for_marked_processes_to_end(self, timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        while (alive := self.marked_processes()) and time.monotonic() < deadline:
            time.sleep(0.02)
        return alive

    def clean_up_and_report(self) -> list[str]:
        """Delete every container of the test with the runtime (force), then check the
        runtime's state, the cgroups and the processes; clean by hand what the runtime
        left, and return what had been left (empty when all is well)."""
        problems: list[str] = []
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        for container in self.containers:
            try:
                self.runtime.delete(container.container_id, force=True)
            except Exception as exc:  # whatever the driver raises, the cleanup goes on
                problems.append(f"delete(force=True) of {container.container_id} failed: {exc}")
        alive = self.wait_for_marked_processes_to_end(5.0)
        if alive:
            problems.append(f"processes left running: {self._describe(alive)}")
            for container in self.containers:
                self.cgroups.thaw_and_kill(container.cgroups_path)
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.wait_for_marked_processes_to_end(5.0)
        unreaped = self.reaper.wait_for_all(5.0)
        if unreaped:
            problems.append(f"container processes never exited: {sorted(unreaped)}")
        try:
            listed = [state.container_id for state in self.runtime.list()]
        except Exception as exc:
            problems.append(f"list() failed after the test: {exc}")
        else:
            if listed:
                problems.append(f"containers left in the runtime's state: {listed}")
        ids = [container.container_id for container in self.containers]
        state_left = [str(path) for path in self.exec_root.rglob("*")
                      if any(container_id in path.name for container_id in ids)]
        if state_left:
            problems.append(f"files left under the exec root: {state_left}")
        for container in self.containers:
            left = self.cgroups.dirs(container.cgroups_path)
            if left:
                problems.append(f"cgroups left: {[str(path) for path in left]}")
                self.cgroups.thaw_and_kill(container.cgroups_path)
                self.wait_for_marked_processes_to_end(5.0)
                stuck = self.cgroups.remove(container.cgroups_path)
                if stuck:
                    problems.append(f"cgroups that could not be removed: {[str(p) for p in stuck]}")
        for hierarchy in self.cgroups.hierarchies:
            try:
                (hierarchy / CGROUP_PARENT.lstrip("/")).rmdir()
            except OSError as exc:  # absent, or in use by a concurrent test: both fine
                if exc.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EBUSY):
                    raise
        for directory in self.short_dirs:
            shutil.rmtree(directory, ignore_errors=True)
        if not self.marked_processes():
            # The rootfs copies are the bulk of a test's files; config.json, the pid files
            # and the output stay in tmp_path for whoever debugs a failure.
            for container in self.containers:
                shutil.rmtree(container.bundle / "rootfs", ignore_errors=True)
        if not self.default_root_existed and self.default_root.exists():
            problems.append(f"{self.default_root} was created: some call went without --root")
            try:
                self.default_root.rmdir()  # only if empty: never someone else's state
            except OSError:
                pass
        return problems

    @staticmethod
    def _describe(pids: Sequence[int]) -> str:
        described = []
        for pid in pids:
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                command = "?"
            described.append(f"{pid} ({command.strip()})")
        return ", ".join(described)


def read_until(fd: int, pattern: re.Pattern[bytes], timeout: float = TIMEOUT) -> bytes:
    """Read from `fd` (a pty master) until `pattern` matches what arrived."""
    received = b""
    deadline = time.monotonic() + timeout
    while not pattern.search(received):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{pattern.pattern!r} did not arrive within {timeout}s: {received!r}")
        readable, _, _ = select.select([fd], [], [], remaining)
        if readable:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise AssertionError(f"the terminal closed before {pattern.pattern!r}: {received!r}")
            received += chunk
    return received


# -- the suite -----------------------------------------------------------------------


class RuntimeSuite:
    """Subclass with `runtime_name` set to run the whole contract against one runtime."""

    runtime_name: str = ""

    @pytest.fixture
    def runtime(self, tmp_path: Path) -> Runtime:
        manager = PluginManager(strict=True).load_all()
        spec = manager.find("runtime", self.runtime_name)
        reason = manager.why_unsupported(spec)
        if reason:
            pytest.skip(f"runtime {spec.name} cannot run here: {reason}")
        if not is_static_executable(BUSYBOX):
            pytest.skip(f"the test bundles need a static {BUSYBOX} (apt-get install busybox-static)")
        home, exec_root = tmp_path / "home", tmp_path / "exec"
        home.mkdir()
        exec_root.mkdir()
        runtime = spec.factory(DriverContext(kind="runtime", name=spec.name, home=home,
                                             exec_root=exec_root))
        assert isinstance(runtime, Runtime), f"{spec.name}'s factory returned {runtime!r}"
        return runtime

    @pytest.fixture
    def harness(self, runtime: Runtime, tmp_path: Path) -> Iterator[ContainerHarness]:
        workdir = tmp_path / "bundles"
        workdir.mkdir()
        harness = ContainerHarness(runtime, workdir, tmp_path / "exec")
        previous = set_child_subreaper(True)
        harness.reaper.start()
        try:
            yield harness
        finally:
            try:
                problems = harness.clean_up_and_report()
            finally:
                harness.reaper.stop()
                set_child_subreaper(previous)
        if problems:
            pytest.fail("the test left things behind:\n- " + "\n- ".join(problems))

    # -- identity ----------------------------------------------------------------

    def test_name_and_version(self, harness) -> None:
        assert harness.runtime.name == self.runtime_name
        version = harness.runtime.version()
        assert version and "\n" not in version and re.search(r"\d", version), version

    # -- lifecycle ---------------------------------------------------------------

    def test_create_leaves_a_created_container_with_its_init_pid(self, harness) -> None:
        container = harness.created("sleep", "1000")
        state = harness.runtime.state(container.container_id)
        assert state.status == "created"
        assert state.container_id == container.container_id
        assert Path(state.bundle) == container.bundle
        assert state.pid > 0 and state.pid == container.pid
        assert Path(f"/proc/{state.pid}").exists()
        assert harness.cgroups.dirs(container.cgroups_path), "create made no cgroup"

    def test_state_lives_under_the_exec_root_only(self, harness) -> None:
        container = harness.created("sleep", "1000")
        found = [path for path in harness.exec_root.rglob(container.container_id)]
        assert found, f"no state named {container.container_id} under {harness.exec_root}"
        assert not (harness.default_root / container.container_id).exists()

    def test_start_runs_the_process(self, harness) -> None:
        container = harness.created("sh", "-c", "echo started; exec sleep 1000")
        harness.runtime.start(container.container_id)
        harness.wait_for_text(container.stdout, "started\n")
        state = harness.runtime.state(container.container_id)
        assert state.status == "running" and state.pid == container.pid

    def test_stdio_goes_to_the_monitors_files_and_the_exit_status_to_the_subreaper(
            self, harness) -> None:
        container = harness.running("sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3")
        status = harness.wait_for_exit(container.pid)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3, status
        assert container.stdout.read_text() == "to-stdout\n"
        assert container.stderr.read_text() == "to-stderr\n"
        assert harness.runtime.state(container.container_id).status == "stopped"

    def test_kill_delivers_the_signal_number(self, harness) -> None:
        # pid 1 of a namespace ignores signals it has no handler for: trap SIGTERM.
        container = harness.running(
            "sh", "-c", "trap 'echo got-TERM; exit 42' TERM; echo ready; while :; do sleep 0.1; done")
        harness.wait_for_text(container.stdout, "ready\n")
        harness.runtime.kill(container.container_id, int(signal.SIGTERM))
        status = harness.wait_for_exit(container.pid)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 42, status
        assert "got-TERM" in container.stdout.read_text()
        assert harness.runtime.state(container.container_id).status == "stopped"

    def test_kill_all_processes_with_sigkill(self, harness) -> None:
        container = harness.running("sh", "-c", "sleep 1000 & echo ready; wait")
        harness.wait_for_text(container.stdout, "ready\n")
        harness.runtime.kill(container.container_id, int(signal.SIGKILL), all_processes=True)
        status = harness.wait_for_exit(container.pid)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
        assert harness.wait_for_marked_processes_to_end(5.0) == []

    def test_pause_freezes_the_cgroup_and_resume_thaws_it(self, harness) -> None:
        container = harness.running("sleep", "1000")
        harness.runtime.pause(container.container_id)
        assert harness.runtime.state(container.container_id).status == "paused"
        assert harness.cgroups.frozen(container.cgroups_path)
        harness.runtime.resume(container.container_id)
        assert harness.runtime.state(container.container_id).status == "running"
        assert not harness.cgroups.frozen(container.cgroups_path)

    def test_update_sets_the_memory_limit_in_the_cgroup(self, harness) -> None:
        container = harness.running("sleep", "1000")
        limit = 96 * 1024 * 1024
        assert harness.cgroups.memory_limit(container.cgroups_path) != limit
        harness.runtime.update(container.container_id, {"memory": {"limit": limit}})
        assert harness.cgroups.memory_limit(container.cgroups_path) == limit

    def test_exec_runs_a_process_inside_and_its_output_arrives(self, harness) -> None:
        container = harness.running("sh", "-c", "echo $$ > /tmp/init-pid; exec sleep 1000")
        pid, output = harness.exec(container, "sh", "-c", "echo exec-$(cat /tmp/init-pid)")
        status = harness.wait_for_exit(pid)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        # The init is pid 1 of the container's pid namespace, and exec joined it.
        assert output.read_text() == "exec-1\n"
        assert harness.runtime.state(container.container_id).status == "running"

    def test_console_socket_hands_over_a_working_terminal(self, harness) -> None:
        container = harness.bundle("sh", terminal=True)
        listener, path = harness.console_listener()
        with listener:
            # The runtime connects while `create` runs; the backlog holds the connection.
            harness.create(container, console_socket=path)
            connection, _ = listener.accept()
        with connection:
            _, fds, _, _ = socket.recv_fds(connection, 4096, 1)
        assert len(fds) == 1, "no file descriptor arrived on the console socket"
        master = harness.adopt_fd(fds[0])
        harness.runtime.start(container.container_id)
        os.write(master, b"echo hi\n")
        # The terminal echoes the typed line; the output is a line of its own after it.
        read_until(master, re.compile(rb"\nhi\r?\n"))

    def test_a_failed_create_says_why_and_leaves_nothing_running(self, harness) -> None:
        container = harness.bundle("/bin/no-such-program")
        result = harness.create(container, expect_success=False)
        assert result.returncode != 0
        words = container.stderr.read_text()
        failure_message = getattr(harness.runtime, "failure_message", None)
        if failure_message is not None:  # a runtime may log instead of printing
            words += failure_message(container.container_id) or ""
        assert "no-such-program" in words, words
        try:
            status = harness.runtime.state(container.container_id).status
        except ContainerNotFound:
            status = "absent"
        assert status in ("absent", "stopped"), status

    # -- removal and listing -----------------------------------------------------

    def test_delete_removes_the_state_and_the_cgroups(self, harness) -> None:
        container = harness.running("sleep", "1000")
        assert harness.cgroups.dirs(container.cgroups_path)
        harness.runtime.kill(container.container_id, int(signal.SIGKILL))
        harness.wait_for_exit(container.pid)
        harness.runtime.delete(container.container_id)
        with pytest.raises(ContainerNotFound):
            harness.runtime.state(container.container_id)
        assert harness.cgroups.dirs(container.cgroups_path) == []
        assert harness.runtime.list() == []

    def test_delete_refuses_a_running_container_unless_forced(self, harness) -> None:
        container = harness.running("sleep", "1000")
        with pytest.raises(RuntimeFailure) as refused:
            harness.runtime.delete(container.container_id)
        assert not isinstance(refused.value, ContainerNotFound)
        assert harness.runtime.state(container.container_id).status == "running"
        harness.runtime.delete(container.container_id, force=True)
        status = harness.wait_for_exit(container.pid)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
        with pytest.raises(ContainerNotFound):
            harness.runtime.state(container.container_id)
        assert harness.cgroups.dirs(container.cgroups_path) == []

    def test_force_delete_ends_exec_processes_too(self, harness) -> None:
        container = harness.running("sleep", "1000")
        exec_pid, _ = harness.exec(container, "sleep", "1000")
        harness.runtime.delete(container.container_id, force=True)
        for pid in (container.pid, exec_pid):
            status = harness.wait_for_exit(pid)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (pid, status)
        with pytest.raises(ContainerNotFound):
            harness.runtime.state(container.container_id)
        assert harness.cgroups.dirs(container.cgroups_path) == []

    def test_delete_of_an_unknown_id_is_fine(self, harness) -> None:
        harness.runtime.delete(harness.new_id("-never-created"))
        harness.runtime.delete(harness.new_id("-never-created"), force=True)

    def test_state_of_an_unknown_id_raises_container_not_found(self, harness) -> None:
        unknown = harness.new_id("-never-created")
        with pytest.raises(ContainerNotFound) as raised:
            harness.runtime.state(unknown)
        assert unknown in str(raised.value)

    def test_list_shows_every_container_with_its_state(self, harness) -> None:
        assert harness.runtime.list() == []
        created = harness.created("sleep", "1000")
        running = harness.running("sleep", "1000")
        listed = {state.container_id: state for state in harness.runtime.list()}
        assert set(listed) == {created.container_id, running.container_id}
        assert listed[created.container_id].status == "created"
        assert listed[running.container_id].status == "running"
        assert listed[running.container_id].pid == running.pid
        assert Path(listed[created.container_id].bundle) == created.bundle
