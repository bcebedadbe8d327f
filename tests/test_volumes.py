"""Volumes end to end through the real docker CLI against dockyardd: named and anonymous
volumes shared between containers and outliving them, copy-up, read-only mounts, the
tmpfs driver, binds, --mount, --tmpfs, --volumes-from, Docker's errors, and nothing
left behind by a failed create or a crash."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import docker, out

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    from dockyard.plugin.testing.daemon import DaemonProcess

    root = Path(tmp_path_factory.mktemp("vol", numbered=True))
    process = DaemonProcess(root).start()
    if "local" not in process.client().get_json("/info")["Plugins"]["Volume"]:
        process.teardown()
        pytest.skip("the local volume driver does not run here")
    try:
        subprocess.run([sys.executable, "-m", "dockyard.cli", "-H", process.host, "image", "bootstrap",
                        "busybox"], check=True, capture_output=True)
        yield process
    finally:
        api = process.client()
        for container in api.get_json("/containers/json", {"all": 1}):
            api.request("DELETE", f"/containers/{container['Id']}", {"force": 1}).read()
        for volume in api.get_json("/volumes")["Volumes"]:
            api.request("DELETE", f"/volumes/{volume['Name']}", {"force": 1}).read()
        process.teardown()




def name(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


def volume_names(daemon) -> set[str]:
    return {v["Name"] for v in daemon.client().get_json("/volumes")["Volumes"]}


def mounts_below(path: Path) -> list[str]:
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(str(path))]


def test_a_named_volume_is_shared_and_outlives_its_containers(daemon):
    data = name("shared")
    writer = out(docker(daemon, "run", "-d", "-v", f"{data}:/data", "busybox", "sh", "-c",
                        "echo from-writer > /data/note; sleep 60", check=True))
    reader = out(docker(daemon, "run", "-d", "-v", f"{data}:/data", "busybox", "sleep", "60", check=True))
    deadline = time.monotonic() + 10
    while docker(daemon, "exec", reader, "cat", "/data/note").returncode != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert out(docker(daemon, "exec", reader, "cat", "/data/note", check=True)) == "from-writer"
    docker(daemon, "exec", reader, "sh", "-c", "echo from-reader >> /data/note", check=True)
    docker(daemon, "rm", "-f", writer, reader, check=True)
    assert data in volume_names(daemon)
    later = docker(daemon, "run", "--rm", "-v", f"{data}:/data", "busybox", "cat", "/data/note", check=True)
    assert out(later).splitlines() == ["from-writer", "from-reader"]
    info = json.loads(out(docker(daemon, "volume", "inspect", data, check=True)))[0]
    assert info["Driver"] == "local" and info["Mountpoint"].endswith(f"{data}/_data")
    assert Path(info["Mountpoint"], "note").read_text().splitlines() == ["from-writer", "from-reader"]
    docker(daemon, "volume", "rm", data, check=True)
    assert data not in volume_names(daemon)


def test_anonymous_volumes_go_with_rm_v_and_stay_without(daemon):
    kept = out(docker(daemon, "create", "-v", "/scratch", "busybox", "true", check=True))
    dropped = out(docker(daemon, "create", "-v", "/scratch", "busybox", "true", check=True))
    mounts = {c: json.loads(out(docker(daemon, "inspect", c)))[0]["Mounts"] for c in (kept, dropped)}
    for entries in mounts.values():
        assert len(entries) == 1 and entries[0]["Type"] == "volume"
        assert entries[0]["Destination"] == "/scratch"
    kept_volume, dropped_volume = mounts[kept][0]["Name"], mounts[dropped][0]["Name"]
    busy = docker(daemon, "volume", "rm", kept_volume)
    assert busy.returncode == 1 and f"volume is in use - [{kept}]".encode() in busy.stderr
    docker(daemon, "rm", kept, check=True)
    docker(daemon, "rm", "-v", dropped, check=True)
    names = volume_names(daemon)
    assert kept_volume in names and dropped_volume not in names
    dangling = out(docker(daemon, "volume", "ls", "-q", "--filter", "dangling=true", check=True)).split()
    assert kept_volume in dangling
    pruned = docker(daemon, "volume", "prune", "-f", check=True)
    assert kept_volume in out(pruned) and kept_volume not in volume_names(daemon)
    docker(daemon, "run", "--rm", "-v", "/gone", "busybox", "true", check=True)
    assert volume_names(daemon) == names - {kept_volume}  # --rm takes its anonymous volume along


def test_copy_up_fills_a_new_volume_from_the_image_keeping_modes(daemon):
    etc, home = name("etc"), name("root")
    docker(daemon, "run", "--rm", "-v", f"{etc}:/etc", "-v", f"{home}:/root", "busybox", "true", check=True)
    listed = out(docker(daemon, "run", "--rm", "-v", f"{etc}:/copy", "busybox", "cat", "/copy/passwd",
                        check=True))
    assert listed.startswith("root:x:0:0")
    mode = out(docker(daemon, "run", "--rm", "-v", f"{home}:/copy", "busybox", "stat", "-c", "%a %u",
                      "/copy", check=True))
    assert mode == "700 0"
    empty = name("nocopy")
    docker(daemon, "run", "--rm", "-v", f"{empty}:/usr:nocopy", "busybox", "true", check=True)
    assert out(docker(daemon, "run", "--rm", "-v", f"{empty}:/x", "busybox", "ls", "-A", "/x",
                      check=True)) == ""
    docker(daemon, "volume", "rm", etc, home, empty, check=True)


def test_read_only_mounts_refuse_writes(daemon, tmp_path):
    data = name("ro")
    refused = docker(daemon, "run", "--rm", "-v", f"{data}:/data:ro", "busybox", "touch", "/data/x")
    assert refused.returncode == 1 and b"Read-only file system" in refused.stderr
    (tmp_path / "host.txt").write_text("host\n")
    bind = docker(daemon, "run", "--rm", "--mount", f"type=bind,src={tmp_path},dst=/host,readonly",
                  "busybox", "sh", "-c", "cat /host/host.txt; touch /host/y")
    assert out(bind) == "host" and bind.returncode == 1 and not (tmp_path / "y").exists()
    docker(daemon, "run", "--rm", "-v", f"{tmp_path}:/host", "busybox", "touch", "/host/z", check=True)
    assert (tmp_path / "z").exists()
    docker(daemon, "volume", "rm", data, check=True)


def test_tmpfs_volumes_and_mounts_live_in_memory(daemon):
    if "tmpfs" not in daemon.client().get_json("/info")["Plugins"]["Volume"]:
        pytest.skip("the tmpfs volume driver does not run here")
    memory = name("mem")
    docker(daemon, "volume", "create", "-d", "tmpfs", "-o", "size=8m", "-o", "mode=1777", memory, check=True)
    first = out(docker(daemon, "run", "-d", "-v", f"{memory}:/m", "busybox", "sleep", "60", check=True))
    second = out(docker(daemon, "run", "-d", "-v", f"{memory}:/m", "busybox", "sleep", "60", check=True))
    assert out(docker(daemon, "exec", first, "stat", "-f", "-c", "%T", "/m", check=True)) == "tmpfs"
    docker(daemon, "exec", first, "sh", "-c", "echo shared > /m/f", check=True)
    assert out(docker(daemon, "exec", second, "cat", "/m/f", check=True)) == "shared"
    too_big = docker(daemon, "exec", second, "sh", "-c", "dd if=/dev/zero of=/m/big bs=1M count=16")
    assert too_big.returncode != 0 and b"No space left on device" in too_big.stderr
    docker(daemon, "rm", "-f", first, second, check=True)
    docker(daemon, "volume", "rm", memory, check=True)
    flag = out(docker(daemon, "run", "--rm", "--tmpfs", "/scratch:size=1m,mode=700", "busybox", "sh", "-c",
                      "stat -f -c %T /scratch; stat -c %a /scratch", check=True)).split()
    assert flag == ["tmpfs", "700"]
    mount = out(docker(daemon, "run", "--rm", "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m", "busybox",
                       "stat", "-f", "-c", "%T", "/t", check=True))
    assert mount == "tmpfs"


def test_volumes_from_shares_the_mounts_of_another_container(daemon):
    owner = name("owner")
    docker(daemon, "create", "--name", owner, "-v", "/shared", "busybox", "true", check=True)
    docker(daemon, "run", "--rm", "--volumes-from", owner, "busybox", "sh", "-c", "echo hi > /shared/f",
           check=True)
    assert out(docker(daemon, "run", "--rm", "--volumes-from", f"{owner}:ro", "busybox", "cat", "/shared/f",
                      check=True)) == "hi"
    refused = docker(daemon, "run", "--rm", "--volumes-from", f"{owner}:ro", "busybox", "touch", "/shared/g")
    assert refused.returncode == 1
    docker(daemon, "rm", "-v", owner, check=True)


def test_bad_input_is_refused_and_creates_nothing(daemon, tmp_path):
    before = volume_names(daemon)
    for bad, message in ((["volume", "create", "a/b"], b"includes invalid characters"),
                         (["volume", "create", "-d", "nosuch", name("v")], b"nosuch"),
                         (["volume", "create", "-o", "bogus=1", name("v")], b"bogus"),
                         (["run", "--rm", "--mount", f"type=bind,src={tmp_path}/missing,dst=/x", "busybox",
                           "true"], b"bind source path does not exist"),
                         (["run", "--rm", "-v", f"{name('p')}:/proc", "busybox", "true"], b"/proc"),
                         (["run", "--rm", "-v", f"{name('d')}:/data", "-v", f"{tmp_path}:/data", "busybox",
                           "true"], b"Duplicate mount point")):
        result = docker(daemon, *bad)
        assert result.returncode != 0 and message in result.stderr, (bad, result.stderr)
    from dockyard.client import APIError

    with pytest.raises(APIError, match="use absolute path"):  # the docker CLI makes ./rel absolute itself
        daemon.client().request("POST", "/containers/create", body={
            "Image": "busybox", "Cmd": ["true"], "HostConfig": {"Binds": ["./rel:/x"]}})
    assert volume_names(daemon) == before
    assert docker(daemon, "ps", "-aq").stdout.strip() == b""
    created = tmp_path / "made" / "by" / "v"
    docker(daemon, "run", "--rm", "-v", f"{created}:/x", "busybox", "true", check=True)
    assert created.is_dir()  # -v makes a missing host path, as Docker does


def test_a_crash_leaves_no_half_made_volume_and_mounts_come_back(daemon):
    memory = name("keep")
    docker(daemon, "volume", "create", "--label", "kept=yes", memory, check=True)
    runner = out(docker(daemon, "run", "-d", "-v", f"{memory}:/data", "busybox", "sh", "-c",
                        "while true; do date >> /data/log; sleep 0.2; done", check=True))
    orphan = name("orphan")
    daemon.process.send_signal(signal.SIGKILL)
    daemon.process.wait()
    # a volume the driver made but whose record the daemon never wrote (killed in between)
    from dockyard.daemon.pluginmanager import PluginManager
    from dockyard.plugin import DriverContext

    spec = next(s for s in PluginManager().load_all().supported("volume") if s.name == "local")
    home = daemon.data_root / "volume" / "local"
    driver = spec.factory(DriverContext(kind="volume", name="local", home=home, exec_root=daemon.exec_root))
    driver.create(orphan, {})
    daemon.start()
    names = volume_names(daemon)
    assert orphan not in names and memory in names
    lines = out(docker(daemon, "exec", runner, "wc", "-l", "/data/log", check=True)).split()[0]
    assert int(lines) > 0
    busy = docker(daemon, "volume", "rm", memory)
    assert busy.returncode == 1 and b"volume is in use" in busy.stderr
    docker(daemon, "rm", "-f", runner, check=True)
    docker(daemon, "volume", "rm", memory, check=True)
    assert mounts_below(daemon.data_root / "volume") == []


def test_docker_py_volumes(daemon):
    import docker as docker_py

    client = docker_py.DockerClient(base_url=daemon.host, version="1.44")
    volume = client.volumes.create(name("py"), labels={"made": "py"})
    assert client.volumes.get(volume.name).attrs["Labels"] == {"made": "py"}
    output = client.containers.run("busybox", ["sh", "-c", "echo py > /v/f; cat /v/f"], remove=True,
                                   volumes={volume.name: {"bind": "/v", "mode": "rw"}})
    assert output == b"py\n"
    assert [v.name for v in client.volumes.list(filters={"label": "made=py"})] == [volume.name]
    volume.remove()
