"""Containers end to end through the real docker CLI, docker-py and runc: lifecycle, exit
codes, streams, logs, exec, limits, restart policies, health, live restore, and nothing
left behind (mounts, cgroups, bundles, monitor processes)."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import docker, out

pytestmark = pytest.mark.root

CGROUP_ROOT = Path("/sys/fs/cgroup")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    from dockyard.plugin.testing.daemon import DaemonProcess

    root = Path(tmp_path_factory.mktemp("ct", numbered=True))
    process = DaemonProcess(root).start()
    env = {**os.environ, "DOCKYARD_HOST": process.host}
    subprocess.run([*_dockyard(), "image", "bootstrap", "busybox"], env=env, check=True,
                   capture_output=True)
    try:
        yield process
    finally:
        for container in process.client().get_json("/containers/json", {"all": 1}):
            process.client().request("DELETE", f"/containers/{container['Id']}", {"force": 1}).read()
        process.teardown()


def _dockyard() -> list[str]:
    import sys

    return [sys.executable, "-m", "dockyard.cli"]




def leftovers(daemon, container_id: str, settle: float = 5.0) -> list[str]:
    """Everything of a removed container that could outlive it. Layer files are deleted
    in the background after `rm` returns, so give that a moment before calling it a leak."""
    deadline = time.monotonic() + settle
    while True:
        found = _leftovers(daemon, container_id)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _leftovers(daemon, container_id: str) -> list[str]:
    found = []
    mounts = Path("/proc/self/mountinfo").read_text()
    if container_id in mounts:
        found.append("mount")
    for controller in ("memory", "pids", "cpu", "freezer", "blkio"):
        if (CGROUP_ROOT / controller / "dockyard" / container_id).exists():
            found.append(f"cgroup {controller}")
    if (CGROUP_ROOT / "dockyard" / container_id).exists():
        found.append("cgroup v2")
    if (daemon.exec_root / "containers" / container_id).exists():
        found.append("run dir")
    if (daemon.exec_root / "m" / container_id[:16]).exists():
        found.append("monitor dir")
    if (daemon.data_root / "containers" / container_id).exists():
        found.append("data dir")
    runtime_state = list((daemon.exec_root / "runtime").glob(f"*/{container_id}"))
    if runtime_state:
        found.append("runtime state")
    for process in Path("/proc").iterdir():  # a monitor or stray process holding its files
        if not process.name.isdigit():
            continue
        try:
            targets = [os.readlink(fd) for fd in (process / "fd").iterdir()]
        except OSError:
            continue
        if any(container_id in target or container_id[:16] in target for target in targets):
            found.append(f"process {process.name}")
    return found


def test_run_rm_echo(daemon):
    result = docker(daemon, "run", "--rm", "busybox", "echo", "hi")
    assert result.returncode == 0, result.stderr.decode()
    assert out(result) == "hi"
    assert out(docker(daemon, "ps", "-aq")) == ""


def test_exit_codes_are_the_containers_own_or_dockers(daemon):
    assert docker(daemon, "run", "--rm", "busybox", "sh", "-c", "exit 3").returncode == 3
    missing = docker(daemon, "run", "--rm", "busybox", "no-such-command")
    assert missing.returncode == 127
    assert "executable file not found" in missing.stderr.decode()
    denied = docker(daemon, "run", "--rm", "busybox", "/etc/passwd")
    assert denied.returncode == 126, denied.stderr.decode()
    # A missing image is pulled first; port 1 on loopback refuses at once (a name
    # without a registry would send the daemon to Docker Hub).
    unknown = docker(daemon, "run", "--rm", "127.0.0.1:1/no-such-image")
    assert unknown.returncode == 125
    assert "Unable to find image" in unknown.stderr.decode()
    assert "127.0.0.1:1" in unknown.stderr.decode()
    assert out(docker(daemon, "ps", "-aq")) == ""  # --rm removed even the failed ones


def test_detached_logs_exec_stop_rm_and_no_leftovers(daemon):
    container_id = out(docker(daemon, "run", "-d", "--name", "ticker", "busybox", "sh", "-c",
                              "trap 'echo bye; exit 0' TERM; while true; do echo tick; sleep 0.2; done",
                              check=True))
    time.sleep(1)
    logs = out(docker(daemon, "logs", "ticker", check=True)).splitlines()
    assert logs[:2] == ["tick", "tick"]
    follower = subprocess.Popen(["docker", "logs", "-f", "--tail", "1", "ticker"], stdout=subprocess.PIPE,
                                env={**os.environ, "DOCKER_HOST": daemon.host})
    assert follower.stdout.readline().strip() == b"tick"
    assert out(docker(daemon, "exec", "ticker", "cat", "/etc/hostname", check=True)) == container_id[:12]
    assert docker(daemon, "exec", "ticker", "sh", "-c", "exit 5").returncode == 5
    listed = out(docker(daemon, "ps", "--format", "{{.Names}} {{.Status}}", check=True))
    assert listed.startswith("ticker Up")
    docker(daemon, "stop", "ticker", check=True)
    follower.wait(10)  # follow ends when the container stops
    assert out(docker(daemon, "logs", "--tail", "1", "ticker")) == "bye"
    inspected = json.loads(out(docker(daemon, "inspect", "ticker", check=True)))[0]
    assert inspected["State"]["Status"] == "exited" and inspected["State"]["ExitCode"] == 0
    docker(daemon, "rm", "ticker", check=True)
    assert leftovers(daemon, container_id) == []


def test_a_process_ignoring_sigterm_is_killed_after_the_timeout(daemon):
    container_id = out(docker(daemon, "run", "-d", "busybox", "sh", "-c",
                              "trap '' TERM; while true; do sleep 1; done", check=True))
    started = time.monotonic()
    docker(daemon, "stop", "-t", "1", container_id, check=True)
    assert time.monotonic() - started < 10
    state = json.loads(out(docker(daemon, "inspect", container_id)))[0]["State"]
    assert state["ExitCode"] == 137
    docker(daemon, "rm", container_id, check=True)
    assert leftovers(daemon, container_id) == []


def test_stop_of_a_stopped_container_and_name_conflicts(daemon):
    container_id = out(docker(daemon, "create", "--name", "twice", "busybox", "true", check=True))
    again = docker(daemon, "create", "--name", "twice", "busybox", "true")
    assert again.returncode != 0
    assert f'is already in use by container "{container_id}"' in again.stderr.decode()
    response = daemon.client().request("POST", f"/containers/{container_id}/stop")
    assert response.status == 304  # Docker's "not modified" for a container already stopped
    docker(daemon, "rm", "twice", check=True)


def test_interactive_tty_run(daemon):
    main, secondary = pty.openpty()
    env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_CONFIG": str(daemon.root / "cfg")}
    process = subprocess.Popen(["docker", "run", "--rm", "-it", "busybox", "sh"], stdin=secondary,
                               stdout=secondary, stderr=secondary, env=env, start_new_session=True)
    os.close(secondary)
    seen = b""

    def read_until(marker: bytes, timeout: float = 20) -> bytes:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while marker not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(main, 4096)
                except OSError:
                    break
        return seen

    read_until(b"# ")
    os.write(main, b"echo $((6*7)); tty\n")
    assert b"42" in read_until(b"/dev/pts/0")
    os.write(main, b"exit 4\n")
    assert process.wait(20) == 4
    os.close(main)


def test_interactive_stdin_without_tty(daemon):
    result = docker(daemon, "run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z", input=b"shout\n")
    assert out(result) == "SHOUT"


def test_exec_with_a_tty(daemon):
    container_id = out(docker(daemon, "run", "-d", "busybox", "sleep", "60", check=True))
    main, secondary = pty.openpty()
    env = {**os.environ, "DOCKER_HOST": daemon.host}
    process = subprocess.Popen(["docker", "exec", "-it", container_id, "sh", "-c", "tty; exit 2"],
                               stdin=secondary, stdout=secondary, stderr=secondary, env=env,
                               start_new_session=True)
    os.close(secondary)
    output = b""
    deadline = time.monotonic() + 20
    while process.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.2)
        if ready:
            try:
                output += os.read(main, 4096)
            except OSError:
                break
    assert process.wait(10) == 2
    assert b"/dev/pts/" in output
    docker(daemon, "rm", "-f", container_id, check=True)


def test_detach_keys_leave_the_container_running(daemon):
    """The daemon itself watches for detach keys: a raw API client, with no CLI to do it."""
    container_id = out(docker(daemon, "run", "-dit", "busybox", "sh", check=True))
    api = daemon.client()
    from dockyard.client import APIError

    with pytest.raises(APIError, match="Invalid detach keys"):
        api.hijack("POST", f"/containers/{container_id}/attach",
                   {"stream": 1, "stdin": 1, "stdout": 1, "detachKeys": "ctrl-foo"})
    since = time.time() - 1
    sock, _ = api.hijack("POST", f"/containers/{container_id}/attach",
                         {"stream": 1, "stdin": 1, "stdout": 1, "detachKeys": "ctrl-x,y"})
    sock.settimeout(20)
    sock.sendall(b"echo $((6*7))\n")
    seen = b""
    while b"42" not in seen:
        seen += sock.recv(4096)
    sock.sendall(b"\x18y")
    while chunk := sock.recv(4096):
        seen += chunk
    sock.close()
    assert b"\x18" not in seen  # the detach sequence never reached the container's terminal
    state = api.get_json(f"/containers/{container_id}/json")["State"]
    assert state["Running"], state
    events = docker(daemon, "events", "--since", str(int(since)), "--until", str(int(time.time()) + 1),
                    "--filter", "event=detach", "--format", "{{.Actor.ID}}", check=True)
    assert out(events).splitlines() == [container_id]
    docker(daemon, "rm", "-f", container_id, check=True)


def test_memory_limit_oom_kills_and_says_so(daemon):
    since = str(int(time.time()))
    result = docker(daemon, "run", "--name", "hog", "--memory", "32m", "--memory-swap", "32m", "busybox",
                    "sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived")
    assert result.returncode == 137, result.stderr.decode()
    state = json.loads(out(docker(daemon, "inspect", "hog")))[0]["State"]
    assert state["OOMKilled"] is True
    events = docker(daemon, "events", "--since", since, "--until", str(int(time.time()) + 1),
                    "--filter", "container=hog", "--format", "{{.Action}}")
    assert "oom" in out(events).splitlines()
    docker(daemon, "rm", "hog", check=True)


def test_pids_limit(daemon):
    # The container's own process must outlive the refused forks (ash exits when a fork
    # fails), so the forks come from an exec while pid 1 just sleeps.
    container_id = out(docker(daemon, "run", "-d", "--pids-limit", "8", "busybox", "sleep", "60",
                              check=True))
    docker(daemon, "exec", container_id, "sh", "-c",
           "for i in " + " ".join(map(str, range(20))) + "; do sleep 30 >/dev/null 2>&1 & done")
    pids = CGROUP_ROOT / "pids" / "dockyard" / container_id
    if not pids.exists():
        pids = CGROUP_ROOT / "dockyard" / container_id  # pure cgroup v2
    assert (pids / "pids.max").read_text().strip() == "8"
    assert int((pids / "pids.current").read_text()) <= 8
    assert int((pids / "pids.events").read_text().split()[-1]) > 0  # forks were refused
    assert json.loads(out(docker(daemon, "inspect", container_id)))[0]["State"]["Running"] is True
    docker(daemon, "rm", "-f", container_id, check=True)


def test_pause_and_unpause_freeze_the_container(daemon):
    container_id = out(docker(daemon, "run", "-d", "busybox", "sleep", "60", check=True))
    docker(daemon, "pause", container_id, check=True)
    freezer = CGROUP_ROOT / "freezer" / "dockyard" / container_id / "freezer.state"
    if freezer.exists():
        assert freezer.read_text().strip() == "FROZEN"
    status = out(docker(daemon, "ps", "--format", "{{.Status}}", "--filter", f"id={container_id}"))
    assert "(Paused)" in status
    docker(daemon, "unpause", container_id, check=True)
    if freezer.exists():
        assert freezer.read_text().strip() == "THAWED"
    docker(daemon, "rm", "-f", container_id, check=True)
    assert leftovers(daemon, container_id) == []


def test_stats_top_and_update(daemon):
    container_id = out(docker(daemon, "run", "-d", "--memory", "64m", "busybox", "sleep", "60", check=True))
    stats = docker(daemon, "stats", "--no-stream", "--format", "{{.MemUsage}}", container_id)
    assert stats.returncode == 0, stats.stderr.decode()
    assert "64MiB" in out(stats)
    top = out(docker(daemon, "top", container_id, check=True))
    assert "sleep 60" in top
    docker(daemon, "update", "--memory", "96m", "--memory-swap", "96m", container_id, check=True)
    limit = CGROUP_ROOT / "memory" / "dockyard" / container_id / "memory.limit_in_bytes"
    if limit.exists():
        assert int(limit.read_text()) == 96 * 1024 * 1024
    docker(daemon, "rm", "-f", container_id, check=True)


def test_restart_policy_on_failure_counts_restarts(daemon):
    container_id = out(docker(daemon, "run", "-d", "--restart", "on-failure:2", "busybox", "sh", "-c",
                              "exit 1", check=True))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = json.loads(out(docker(daemon, "inspect", container_id)))[0]
        if state["RestartCount"] == 2 and not state["State"]["Running"] and not state["State"]["Restarting"]:
            break
        time.sleep(0.2)
    assert state["RestartCount"] == 2 and state["State"]["ExitCode"] == 1
    docker(daemon, "rm", "-f", container_id, check=True)


def test_health_check_reports_healthy_then_unhealthy(daemon):
    container_id = out(docker(daemon, "run", "-d", "--health-cmd", "test -f /tmp/ok", "--health-interval",
                              "300ms", "--health-retries", "2", "busybox", "sh", "-c",
                              "touch /tmp/ok; sleep 2; rm /tmp/ok; sleep 60", check=True))

    def health() -> str:
        return json.loads(out(docker(daemon, "inspect", container_id)))[0]["State"]["Health"]["Status"]

    deadline = time.monotonic() + 20
    while health() != "healthy" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert health() == "healthy"
    while health() != "unhealthy" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert health() == "unhealthy"
    status = out(docker(daemon, "ps", "--format", "{{.Status}}", "--filter", f"id={container_id}"))
    assert "(unhealthy)" in status
    docker(daemon, "rm", "-f", container_id, check=True)


def test_docker_py_run_and_wait(daemon):
    docker_py = pytest.importorskip("docker")
    client = docker_py.DockerClient(base_url=daemon.host)
    try:
        output = client.containers.run("busybox", ["echo", "from docker-py"], remove=True)
        assert output == b"from docker-py\n"
        container = client.containers.run("busybox", ["sh", "-c", "echo out; exit 9"], detach=True)
        assert container.wait()["StatusCode"] == 9
        assert container.logs() == b"out\n"
        container.remove()
    finally:
        client.close()


def test_containers_survive_a_daemon_kill(daemon):
    container_id = out(docker(daemon, "run", "-d", "busybox", "sh", "-c",
                              "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.1; done", check=True))
    done_id = out(docker(daemon, "run", "-d", "busybox", "sh", "-c", "sleep 1; exit 42", check=True))
    time.sleep(0.5)
    daemon.process.send_signal(signal.SIGKILL)
    daemon.process.wait()
    time.sleep(1.5)  # the second container exits while the daemon is away
    daemon.start()
    state = json.loads(out(docker(daemon, "inspect", container_id)))[0]["State"]
    assert state["Running"] is True
    finished = json.loads(out(docker(daemon, "inspect", done_id)))[0]["State"]
    assert finished["Running"] is False and finished["ExitCode"] == 42
    lines = out(docker(daemon, "logs", container_id)).splitlines()
    numbers = [int(line.split()[1]) for line in lines]
    assert numbers == list(range(1, len(numbers) + 1))  # no line lost across the restart
    assert len(numbers) > 15
    docker(daemon, "rm", "-f", container_id, done_id, check=True)
    assert leftovers(daemon, container_id) == [] and leftovers(daemon, done_id) == []


def test_runtime_records_left_by_a_crash_are_swept_at_start(daemon, tmp_path):
    """A removed container's runtime record is deleted in the background; a daemon killed
    before that leaves it behind, and the next start deletes it (and what runs under it)."""
    import shutil

    from dockyard.plugin.testing.runtime import BUSYBOX, minimal_oci_config

    rootfs = tmp_path / "bundle" / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    for mount_point in ("proc", "dev", "sys", "tmp"):
        (rootfs / mount_point).mkdir()
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    (rootfs / "bin" / "sleep").symlink_to("busybox")
    orphan = "orphan" + os.urandom(4).hex()
    (tmp_path / "bundle" / "config.json").write_text(
        json.dumps(minimal_oci_config(["/bin/sleep", "60"], f"/dockyard/{orphan}")))
    runc = ["runc", "--root", str(daemon.exec_root / "runtime" / "runc")]
    daemon.process.send_signal(signal.SIGKILL)
    daemon.process.wait()
    subprocess.run([*runc, "run", "-d", "--bundle", str(tmp_path / "bundle"), orphan], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert orphan in subprocess.run([*runc, "list", "-q"], capture_output=True, text=True).stdout
    daemon.start()
    assert orphan not in subprocess.run([*runc, "list", "-q"], capture_output=True, text=True).stdout
    assert not any(CGROUP_ROOT.glob(f"*/dockyard/{orphan}"))


def test_diff_export_cp_and_commit(daemon, tmp_path):
    docker(daemon, "run", "--name", "worked", "busybox", "sh", "-c",
           "echo data > /tmp/new; rm /etc/group; mkdir -p /srv/x; echo y > /srv/x/y", check=True)
    assert out(docker(daemon, "diff", "worked", check=True)).splitlines() == [
        "C /etc", "D /etc/group", "A /srv", "A /srv/x", "A /srv/x/y", "C /tmp", "A /tmp/new"]
    exported = subprocess.run(["tar", "-t"], input=docker(daemon, "export", "worked", check=True).stdout,
                              capture_output=True, check=True).stdout.decode().split()
    assert "bin/busybox" in exported and "tmp/new" in exported and "etc/group" not in exported

    docker(daemon, "cp", "worked:/srv/x", str(tmp_path / "copied"), check=True)
    assert (tmp_path / "copied" / "y").read_text() == "y\n"
    (tmp_path / "in.txt").write_text("into the container\n")
    docker(daemon, "cp", str(tmp_path / "in.txt"), "worked:/tmp/", check=True)
    committed = out(docker(daemon, "commit", "-c", 'CMD ["cat", "/tmp/in.txt", "/tmp/new"]',
                           "-m", "checkpoint", "worked", "committed:1", check=True))
    assert committed.startswith("sha256:")
    assert out(docker(daemon, "run", "--rm", "committed:1", check=True)) == "into the container\ndata"
    history = out(docker(daemon, "history", "--format", "{{.Comment}}", "committed:1", check=True))
    assert history.splitlines()[0] == "checkpoint"
    docker(daemon, "rm", "worked", check=True)
    docker(daemon, "rmi", "committed:1", check=True)


def test_a_hostile_archive_cannot_escape_the_container(daemon, tmp_path):
    import io
    import tarfile

    container_id = out(docker(daemon, "create", "busybox", "true", check=True))
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w") as tar:
        info = tarfile.TarInfo("../../../../../../tmp/dockyard-escape")
        payload = b"escaped"
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    evil.seek(0)
    from dockyard.client import APIError

    with pytest.raises(APIError) as refused:
        daemon.client().request("PUT", f"/containers/{container_id}/archive", {"path": "/tmp"}, body=evil)
    assert refused.value.status == 400 and "refusing the archive" in refused.value.message
    assert not Path("/tmp/dockyard-escape").exists()
    docker(daemon, "rm", container_id, check=True)
    assert leftovers(daemon, container_id) == []


def test_process_settings_reach_the_container(daemon):
    result = docker(daemon, "run", "--rm", "-e", "COLOUR=blue", "-w", "/tmp/work", "-u", "nobody",
                    "-h", "shorty", "busybox", "sh", "-c", 'echo "$COLOUR $(pwd) $(id -un) $(hostname)"')
    assert out(result) == "blue /tmp/work nobody shorty", result.stderr.decode()
    entry = docker(daemon, "run", "--rm", "--entrypoint", "echo", "busybox", "from", "entrypoint")
    assert out(entry) == "from entrypoint"
    missing_user = docker(daemon, "run", "--rm", "-u", "ghost", "busybox", "true")
    assert missing_user.returncode == 125
    assert "unable to find user ghost: no matching entries in passwd file" in missing_user.stderr.decode()


def test_security_and_limit_flags(daemon):
    def run(*args: str) -> str:
        result = docker(daemon, "run", "--rm", *args)
        assert result.returncode == 0, result.stderr.decode()
        return out(result)

    read_only = docker(daemon, "run", "--rm", "--read-only", "busybox", "sh", "-c", "touch /x 2>&1; true")
    assert "Read-only file system" in out(read_only)
    capabilities = run("busybox", "grep", "CapEff", "/proc/self/status").split()[-1]
    dropped = run("--cap-drop", "ALL", "busybox", "grep", "CapEff", "/proc/self/status").split()[-1]
    privileged = run("--privileged", "busybox", "grep", "CapEff", "/proc/self/status").split()[-1]
    assert int(dropped, 16) == 0 < int(capabilities, 16) < int(privileged, 16)
    assert run("--cap-drop", "CHOWN", "busybox", "sh", "-c", "chown nobody /tmp 2>&1 || echo refused") \
        .endswith("refused")
    assert run("--security-opt", "no-new-privileges", "busybox", "grep", "NoNewPrivs",
               "/proc/self/status").split()[-1] == "1"
    assert run("--ulimit", "nofile=512:1024", "busybox", "sh", "-c", "ulimit -n") == "512"
    assert run("--shm-size", "16m", "busybox", "df", "-k", "/dev/shm").split()[-5] == "16384"
    assert run("--sysctl", "net.ipv4.ip_forward=1", "busybox", "cat", "/proc/sys/net/ipv4/ip_forward") == "1"
    init = run("--init", "busybox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '")
    assert init.startswith("/sbin/docker-init")
    bad = docker(daemon, "run", "--rm", "--memory", "-5m", "busybox", "true")
    assert bad.returncode != 0


def test_rename_prune_and_lifecycle_events(daemon):
    since = str(int(time.time()))
    container_id = out(docker(daemon, "run", "-d", "--name", "before", "busybox", "sleep", "30", check=True))
    docker(daemon, "rename", "before", "after", check=True)
    assert out(docker(daemon, "inspect", "--format", "{{.Name}}", container_id)) == "/after"
    docker(daemon, "pause", "after", check=True)
    docker(daemon, "unpause", "after", check=True)
    exec_result = docker(daemon, "exec", "after", "true")
    assert exec_result.returncode == 0
    docker(daemon, "stop", "-t", "0", "after", check=True)
    pruned = out(docker(daemon, "container", "prune", "-f", check=True))
    assert container_id in pruned
    events = out(docker(daemon, "events", "--since", since, "--until", str(int(time.time()) + 1),
                        "--filter", f"container={container_id}", "--format", "{{.Action}}", check=True))
    actions = [action.split(":")[0] for action in events.splitlines()]
    for expected in ("create", "start", "rename", "pause", "unpause", "exec_create", "exec_start",
                     "exec_die", "kill", "die", "stop", "destroy"):
        assert expected in actions, (expected, actions)
    assert leftovers(daemon, container_id) == []


def test_restart_policy_always_survives_a_daemon_restart(daemon):
    container_id = out(docker(daemon, "run", "-d", "--restart", "always", "busybox", "sleep", "60",
                              check=True))
    stopped = out(docker(daemon, "run", "-d", "--restart", "unless-stopped", "busybox", "sleep", "60",
                         check=True))
    docker(daemon, "stop", "-t", "0", stopped, check=True)
    daemon.stop()
    runc_root = str(daemon.exec_root / "runtime" / "runc")
    docker_state = subprocess.run(["runc", "--root", runc_root, "list", "-q"], capture_output=True,
                                  text=True).stdout.split()
    assert container_id in docker_state  # live restore: the daemon's stop did not stop it
    daemon.start()
    assert json.loads(out(docker(daemon, "inspect", container_id)))[0]["State"]["Running"] is True
    assert json.loads(out(docker(daemon, "inspect", stopped)))[0]["State"]["Running"] is False
    docker(daemon, "rm", "-f", container_id, stopped, check=True)


def test_parallel_first_starts_share_one_monitor_zygote(tmp_path_factory):
    """Twenty containers started at once on a fresh daemon: one zygote, not one each."""
    import threading

    from dockyard.plugin.testing.daemon import DaemonProcess

    fresh = DaemonProcess(Path(tmp_path_factory.mktemp("zy", numbered=True))).start()
    env = {**os.environ, "DOCKYARD_HOST": fresh.host}
    subprocess.run([*_dockyard(), "image", "bootstrap", "busybox"], env=env, check=True, capture_output=True)
    try:
        threads = [threading.Thread(target=docker, args=(fresh, "run", "-d", "busybox", "sleep", "30"))
                   for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        socket_path = str(fresh.exec_root / "monitor-zygote.sock")
        # listening sockets bound to that path (an extra zygote keeps listening even after
        # its path was taken over; monitors share the zygote's command line, not its socket)
        listeners = [line for line in Path("/proc/net/unix").read_text().splitlines()
                     if line.endswith(" " + socket_path) and line.split()[3] == "00010000"]
        assert len(listeners) == 1, listeners
        assert len(fresh.client().get_json("/containers/json")) == 8
    finally:
        for container in fresh.client().get_json("/containers/json", {"all": 1}):
            fresh.client().request("DELETE", f"/containers/{container['Id']}", {"force": 1}).read()
        fresh.teardown()


def test_container_prune_honours_until_and_labels(daemon):
    young = out(docker(daemon, "create", "--label", "keep=yes", "busybox", "true", check=True))
    other = out(docker(daemon, "create", "busybox", "true", check=True))
    docker(daemon, "container", "prune", "-f", "--filter", "until=1h", check=True)
    assert out(docker(daemon, "ps", "-aq", "--no-trunc")).split() != []  # too young for until=1h
    docker(daemon, "container", "prune", "-f", "--filter", "label!=keep=yes", check=True)
    remaining = out(docker(daemon, "ps", "-aq", "--no-trunc")).split()
    assert young in remaining and other not in remaining
    docker(daemon, "rm", young, check=True)
