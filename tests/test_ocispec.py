"""dockyard.containers.ocispec: Docker's container configuration as an OCI runtime spec.

Most tests build specs against a small rootfs in a temporary directory; the last ones
hand the spec to the real runc and run a busybox container with it.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import pytest
from dockyard.containers.ocispec import (
    DEFAULT_CAPABILITIES,
    DEFAULT_DEVICE_CGROUP_RULES,
    DEFAULT_MASKED_PATHS,
    DEFAULT_PATH_ENV,
    DEFAULT_READONLY_PATHS,
    KNOWN_CAPABILITIES,
    SpecInputs,
    available_capabilities,
    build_spec,
    merge_image_config,
    parse_signal,
    spec_for_container,
    validate_config,
    validate_host_config,
)
from dockyard.errors import InvalidParameter, Unavailable

CONTAINER_ID = "0123456789ab" + "c" * 52
MiB = 1024 * 1024

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:app:/home/app:/bin/sh
# a comment line
svc:x:1001:1001::/srv:/bin/false
"""
GROUP = """\
root:x:0:root
daemon:x:1:
wheel:x:10:root,app
audio:x:29:
staff:x:50:app,svc
app:x:1000:
svc:x:1001:
"""


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    return root


def spec_for(rootfs: Path, config: dict | None = None, host_config: dict | None = None,
             image_config: dict | None = None, **inputs) -> dict:
    inputs.setdefault("cgroup_v2", False)
    inputs.setdefault("max_nofile", 20000)
    return build_spec(SpecInputs(
        container_id=CONTAINER_ID, config={"Cmd": ["/bin/true"], **(config or {})}, rootfs=rootfs,
        host_config=host_config or {}, image_config=image_config or {}, **inputs))


def invalid(host_config: dict) -> str:
    with pytest.raises(InvalidParameter) as caught:
        validate_host_config(host_config)
    return str(caught.value)


def mount_at(spec: dict, destination: str) -> dict:
    [mount] = [m for m in spec["mounts"] if m["destination"] == destination]
    return mount


def namespace_types(spec: dict) -> list[str]:
    return [ns["type"] for ns in spec["linux"]["namespaces"]]


# -- defaults -------------------------------------------------------------------------------

def test_constants_are_dockers_lists():
    assert DEFAULT_CAPABILITIES == (
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")
    assert DEFAULT_MASKED_PATHS == (
        "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
        "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap")
    assert DEFAULT_READONLY_PATHS == (
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
    # Bit numbers of the kernel's capabilities: the list is read as a bitmap.
    assert len(KNOWN_CAPABILITIES) == 41
    assert KNOWN_CAPABILITIES.index("CAP_SYS_ADMIN") == 21
    assert KNOWN_CAPABILITIES.index("CAP_SYS_RESOURCE") == 24
    assert KNOWN_CAPABILITIES.index("CAP_CHECKPOINT_RESTORE") == 40


def test_default_spec(rootfs):
    spec = spec_for(rootfs)
    json.dumps(spec)  # all plain JSON
    assert spec["ociVersion"] == "1.0.2"
    process = spec["process"]
    assert process["args"] == ["/bin/true"]
    assert process["terminal"] is False
    assert process["cwd"] == "/"
    assert process["env"] == [f"PATH={DEFAULT_PATH_ENV}", "HOSTNAME=0123456789ab"]
    assert process["user"] == {"uid": 0, "gid": 0, "additionalGids": [0, 10]}  # root is in wheel
    assert process["capabilities"] == {key: list(DEFAULT_CAPABILITIES)
                                       for key in ("bounding", "effective", "permitted")}
    assert process["oomScoreAdj"] == 0
    assert "noNewPrivileges" not in process and "rlimits" not in process
    assert "apparmorProfile" not in process and "selinuxLabel" not in process
    assert spec["root"] == {"path": str(rootfs), "readonly": False}
    assert spec["hostname"] == "0123456789ab"

    assert [m["destination"] for m in spec["mounts"]] == [
        "/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"]
    assert mount_at(spec, "/dev") == {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                                      "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}
    assert mount_at(spec, "/dev/pts")["options"] == [
        "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
    assert mount_at(spec, "/sys")["options"] == ["nosuid", "noexec", "nodev", "ro"]
    assert mount_at(spec, "/sys/fs/cgroup")["options"] == ["ro", "nosuid", "noexec", "nodev"]
    assert mount_at(spec, "/dev/shm") == {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                                          "options": ["nosuid", "noexec", "nodev", "mode=1777",
                                                      "size=67108864"]}

    linux = spec["linux"]
    assert namespace_types(spec) == ["mount", "network", "uts", "pid", "ipc"]
    assert all("path" not in ns for ns in linux["namespaces"])
    assert linux["maskedPaths"][:12] == list(DEFAULT_MASKED_PATHS)
    for extra in linux["maskedPaths"][12:]:  # this host's CPUs' thermal_throttle, if any
        assert extra.endswith("/thermal_throttle") and os.path.exists(extra)
    assert linux["readonlyPaths"] == list(DEFAULT_READONLY_PATHS)
    assert linux["devices"] == []
    assert linux["resources"]["devices"] == [dict(rule) for rule in DEFAULT_DEVICE_CGROUP_RULES]
    assert linux["resources"]["devices"][0] == {"allow": False, "access": "rwm"}
    assert linux["resources"]["memory"] == {"disableOOMKiller": False}
    assert "cpu" not in linux["resources"] and "pids" not in linux["resources"]
    assert linux["cgroupsPath"] == f"/dockyard/{CONTAINER_ID}"
    assert "seccomp" not in linux and "rootfsPropagation" not in linux
    expected_sysctls = {name: value for name, value in (("net.ipv4.ping_group_range", "0 2147483647"),
                                                        ("net.ipv4.ip_unprivileged_port_start", "0"))
                        if os.path.exists("/proc/sys/" + name.replace(".", "/"))}
    assert linux["sysctl"] == expected_sysctls


def test_cgroup_namespace_follows_docker_defaults(rootfs):
    assert "cgroup" not in namespace_types(spec_for(rootfs, cgroup_v2=False))
    assert namespace_types(spec_for(rootfs, cgroup_v2=True))[-1] == "cgroup"
    assert "cgroup" in namespace_types(spec_for(rootfs, host_config={"CgroupnsMode": "private"}))
    assert "cgroup" not in namespace_types(
        spec_for(rootfs, host_config={"CgroupnsMode": "host"}, cgroup_v2=True))
    # Privileged on a v1 host shares the host's; on v2 it still gets its own.
    assert "cgroup" not in namespace_types(spec_for(rootfs, host_config={"Privileged": True}))
    assert "cgroup" in namespace_types(spec_for(rootfs, host_config={"Privileged": True}, cgroup_v2=True))


def test_cgroups_path_parent(rootfs):
    spec = spec_for(rootfs, cgroup_parent="/elsewhere")
    assert spec["linux"]["cgroupsPath"] == f"/elsewhere/{CONTAINER_ID}"
    spec = spec_for(rootfs, host_config={"CgroupParent": "/tenant-a"})
    assert spec["linux"]["cgroupsPath"] == f"/tenant-a/{CONTAINER_ID}"


# -- command line -----------------------------------------------------------------------------

IMAGE = {"Entrypoint": ["/entry"], "Cmd": ["image-cmd"]}


@pytest.mark.parametrize(("config", "argv"), [
    ({}, ["/entry", "image-cmd"]),
    ({"Cmd": ["mine"]}, ["/entry", "mine"]),
    ({"Entrypoint": ["/other"]}, ["/other"]),  # a new entrypoint drops the image's Cmd
    ({"Entrypoint": ["/other"], "Cmd": ["x"]}, ["/other", "x"]),
    ({"Entrypoint": []}, ["image-cmd"]),  # docker run --entrypoint "" keeps the image Cmd
    ({"Entrypoint": [], "Cmd": ["sh"]}, ["sh"]),
    ({"Entrypoint": [""], "Cmd": ["sh"]}, ["sh"]),  # [""] resets the entrypoint
    ({"Entrypoint": "/bin/sh", "Cmd": "-c"}, ["/bin/sh", "-c"]),  # the API also takes strings
])
def test_entrypoint_and_cmd_precedence(rootfs, config, argv):
    spec = build_spec(SpecInputs(CONTAINER_ID, config, rootfs, image_config=IMAGE, cgroup_v2=False))
    assert spec["process"]["args"] == argv


@pytest.mark.parametrize(("config", "image"), [
    ({}, {}),
    ({"Entrypoint": [""]}, {"Cmd": ["image-cmd"]}),  # [""] given: the image Cmd is not used
])
def test_no_command(rootfs, config, image):
    with pytest.raises(InvalidParameter, match="^no command specified$"):
        build_spec(SpecInputs(CONTAINER_ID, config, rootfs, image_config=image))


def test_merge_image_config_is_dockers():
    merged = merge_image_config(
        {"Env": ["B=3", "C=4", "A"], "Labels": {"l": "mine"}, "ExposedPorts": {"80/tcp": {}}},
        {"Env": ["PATH=/img", "A=1", "B=2"], "Labels": {"l": "image", "m": "image"},
         "ExposedPorts": {"443/tcp": {}}, "User": "app", "WorkingDir": "/srv", "StopSignal": "SIGQUIT",
         "Volumes": {"/data": {}}, "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5},
         "Cmd": ["run"]})
    assert merged["Env"] == ["B=3", "C=4", "A", "PATH=/img"]
    assert merged["Labels"] == {"l": "mine", "m": "image"}
    assert merged["ExposedPorts"] == {"80/tcp": {}, "443/tcp": {}}
    assert (merged["User"], merged["WorkingDir"], merged["StopSignal"]) == ("app", "/srv", "SIGQUIT")
    assert merged["Volumes"] == {"/data": {}}
    assert merged["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 5}
    assert merged["Cmd"] == ["run"]
    assert merge_image_config({"User": "root", "WorkingDir": "/w"}, {"User": "app", "WorkingDir": "/srv"}) \
        == {"User": "root", "WorkingDir": "/w"}


# -- environment ------------------------------------------------------------------------------

def test_env_merging(rootfs):
    spec = spec_for(rootfs, config={"Env": ["B=3", "C=4", "A"]},
                    image_config={"Env": ["PATH=/img", "A=1", "B=2"]})
    # PATH replaced in place, the image's A dropped by the container's bare "A".
    assert spec["process"]["env"] == ["PATH=/img", "HOSTNAME=0123456789ab", "B=3", "C=4"]


def test_env_tty_hostname_and_unset(rootfs):
    spec = spec_for(rootfs, config={"Tty": True, "Hostname": "web", "Env": ["X=1"]})
    assert spec["process"]["terminal"] is True
    assert spec["process"]["env"] == [f"PATH={DEFAULT_PATH_ENV}", "HOSTNAME=web", "TERM=xterm", "X=1"]
    assert spec["hostname"] == "web"
    spec = spec_for(rootfs, config={"Tty": True, "Env": ["TERM=vt100", "HOSTNAME"]})
    assert spec["process"]["env"] == [f"PATH={DEFAULT_PATH_ENV}", "TERM=vt100"]


def test_working_dir_and_domainname(rootfs):
    spec = spec_for(rootfs, config={"WorkingDir": "/srv/app/"}, image_config={"WorkingDir": "/img"})
    assert spec["process"]["cwd"] == "/srv/app"
    assert spec_for(rootfs, image_config={"WorkingDir": "/img"})["process"]["cwd"] == "/img"
    spec = spec_for(rootfs, config={"Domainname": "example.org"})
    assert spec["linux"]["sysctl"]["kernel.domainname"] == "example.org"


# -- users --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("user", "expected"), [
    ("", {"uid": 0, "gid": 0, "additionalGids": [0, 10]}),  # root is listed in root and wheel
    ("root", {"uid": 0, "gid": 0, "additionalGids": [0, 10]}),
    ("app", {"uid": 1000, "gid": 1000, "additionalGids": [1000, 10, 50]}),
    ("1000", {"uid": 1000, "gid": 1000, "additionalGids": [1000, 10, 50]}),  # a known uid is that user
    ("4321", {"uid": 4321, "gid": 0, "additionalGids": [0]}),  # an unknown uid is fine
    ("app:audio", {"uid": 1000, "gid": 29, "additionalGids": [29]}),  # explicit group: no others
    ("app:7", {"uid": 1000, "gid": 7, "additionalGids": [7]}),
    ("1001:1000", {"uid": 1001, "gid": 1000, "additionalGids": [1000]}),
    ("svc", {"uid": 1001, "gid": 1001, "additionalGids": [1001, 50]}),
])
def test_user_resolution(rootfs, user, expected):
    image_user = spec_for(rootfs, image_config={"User": user})["process"]["user"]
    assert spec_for(rootfs, config={"User": user})["process"]["user"] == expected == image_user


def test_container_user_overrides_image_user(rootfs):
    spec = spec_for(rootfs, config={"User": "svc"}, image_config={"User": "app"})
    assert spec["process"]["user"]["uid"] == 1001


def test_missing_user_and_group(rootfs):
    with pytest.raises(InvalidParameter) as caught:
        spec_for(rootfs, config={"User": "nobody"})
    assert str(caught.value) == "unable to find user nobody: no matching entries in passwd file"
    with pytest.raises(InvalidParameter) as caught:
        spec_for(rootfs, config={"User": "app:nogroup"})
    assert str(caught.value) == "unable to find group nogroup: no matching entries in group file"
    with pytest.raises(InvalidParameter, match="^uids and gids must be in range 0-2147483647$"):
        spec_for(rootfs, config={"User": "2147483648"})


def test_group_add(rootfs):
    spec = spec_for(rootfs, config={"User": "app"},
                    host_config={"GroupAdd": ["audio", "4242", "wheel", "29"]})
    assert spec["process"]["user"]["additionalGids"] == [1000, 10, 50, 29, 4242]
    with pytest.raises(InvalidParameter) as caught:
        spec_for(rootfs, host_config={"GroupAdd": ["ghosts"]})
    assert str(caught.value) == "Unable to find group ghosts: no matching entries in group file"


def test_user_lookup_without_passwd_file(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert spec_for(empty, config={"User": "1000:1000"})["process"]["user"] == \
        {"uid": 1000, "gid": 1000, "additionalGids": [1000]}
    assert spec_for(empty)["process"]["user"] == {"uid": 0, "gid": 0, "additionalGids": [0]}
    with pytest.raises(InvalidParameter, match="unable to find user app: no matching entries"):
        spec_for(empty, config={"User": "app"})


def test_passwd_symlinks_stay_inside_the_rootfs(tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd.real").write_text("app:x:777:778::/:/bin/sh\n")
    # An absolute link means the container's /etc/passwd.real, never the host's file.
    (root / "etc/passwd").symlink_to("/etc/passwd.real")
    (root / "etc/group.real").write_text("staff:x:50:app\n")
    (root / "etc/group").symlink_to("../../../../../../etc/group.real")  # climbs no higher than /
    assert spec_for(root, config={"User": "app"})["process"]["user"] == \
        {"uid": 777, "gid": 778, "additionalGids": [778, 50]}


# -- privileges -----------------------------------------------------------------------------

def daemon_effective_capabilities() -> list[str]:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            bits = int(line.split()[1], 16)
            return [name for bit, name in enumerate(KNOWN_CAPABILITIES) if bits & (1 << bit)]
    raise AssertionError("no CapEff in /proc/self/status")


def test_privileged(rootfs):
    spec = spec_for(rootfs, host_config={"Privileged": True})
    caps = spec["process"]["capabilities"]
    assert caps["bounding"] == caps["effective"] == caps["permitted"] == daemon_effective_capabilities()
    assert "CAP_SYS_ADMIN" in caps["bounding"]
    assert mount_at(spec, "/sys")["options"] == ["nosuid", "noexec", "nodev"]
    assert mount_at(spec, "/sys/fs/cgroup")["options"] == ["nosuid", "noexec", "nodev"]
    assert spec["linux"]["maskedPaths"] == [] and spec["linux"]["readonlyPaths"] == []
    assert spec["linux"]["resources"]["devices"][-1] == {"allow": True, "access": "rwm"}
    devices = {d["path"]: d for d in spec["linux"]["devices"]}
    assert devices["/dev/null"] | {"fileMode": 0, "uid": 0, "gid": 0} == \
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0, "uid": 0, "gid": 0}
    assert "/dev/console" not in devices
    assert not [path for path in devices if path.startswith(("/dev/pts/", "/dev/shm/", "/dev/mqueue/"))]


def test_privileged_keeps_explicit_masked_paths(rootfs):
    spec = spec_for(rootfs, host_config={"Privileged": True, "MaskedPaths": ["/proc/kcore"],
                                         "ReadonlyPaths": ["/proc/sys"]})
    assert spec["linux"]["maskedPaths"] == ["/proc/kcore"]
    assert spec["linux"]["readonlyPaths"] == ["/proc/sys"]
    spec = spec_for(rootfs, host_config={"MaskedPaths": [], "ReadonlyPaths": []})
    assert spec["linux"]["maskedPaths"] == [] and spec["linux"]["readonlyPaths"] == []


def capabilities(rootfs, **host_config) -> list[str]:
    caps = spec_for(rootfs, host_config=host_config)["process"]["capabilities"]
    assert caps["bounding"] == caps["effective"] == caps["permitted"]
    return caps["bounding"]


def test_cap_add_and_drop(rootfs):
    assert capabilities(rootfs, CapAdd=["NET_ADMIN"]) == [*DEFAULT_CAPABILITIES, "CAP_NET_ADMIN"]
    assert capabilities(rootfs, CapAdd=["cap_sys_ptrace"])[-1] == "CAP_SYS_PTRACE"
    assert capabilities(rootfs, CapAdd=["chown"]) == list(DEFAULT_CAPABILITIES)  # no duplicate
    assert capabilities(rootfs, CapDrop=["mknod", "CAP_NET_RAW"]) == \
        [c for c in DEFAULT_CAPABILITIES if c not in ("CAP_MKNOD", "CAP_NET_RAW")]
    assert capabilities(rootfs, CapDrop=["ALL"], CapAdd=["chown", "Kill"]) == ["CAP_CHOWN", "CAP_KILL"]
    assert capabilities(rootfs, CapDrop=["all"]) == []
    assert capabilities(rootfs, CapAdd=["ALL"], CapDrop=["net_raw"]) == \
        [c for c in daemon_effective_capabilities() if c != "CAP_NET_RAW"]


def test_unknown_capability(rootfs):
    assert invalid({"CapAdd": ["FOO"]}) == 'invalid CapAdd: unknown capability: "CAP_FOO"'
    assert invalid({"CapDrop": ["cap_bar"]}) == 'invalid CapDrop: unknown capability: "CAP_BAR"'
    with pytest.raises(InvalidParameter, match='^invalid CapAdd: unknown capability: "CAP_FOO"$'):
        spec_for(rootfs, host_config={"CapAdd": ["foo"]})


@pytest.mark.skipif("CAP_SYS_RESOURCE" in available_capabilities(), reason="this daemon has CAP_SYS_RESOURCE")
def test_capability_the_daemon_lacks():
    assert invalid({"CapAdd": ["SYS_RESOURCE"]}) == (
        "invalid CapAdd: capability not supported by your kernel or not available in the current "
        'environment: "CAP_SYS_RESOURCE"')


def test_no_new_privileges(rootfs):
    for option in ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true",
                   "no-new-privileges=1"):
        assert spec_for(rootfs, host_config={"SecurityOpt": [option]})["process"]["noNewPrivileges"] is True
    spec = spec_for(rootfs, host_config={"SecurityOpt": ["no-new-privileges=false", "seccomp=unconfined",
                                                         "apparmor=unconfined", "label=disable"]})
    assert "noNewPrivileges" not in spec["process"]
    assert invalid({"SecurityOpt": ["no-new-privileges=maybe"]}) == \
        'invalid --security-opt 2: "no-new-privileges=maybe"'
    assert invalid({"SecurityOpt": ["bogus"]}) == 'invalid --security-opt 1: "bogus"'
    assert invalid({"SecurityOpt": ["colour=blue"]}) == 'invalid --security-opt 2: "colour=blue"'


def test_writable_cgroups(rootfs):
    spec = spec_for(rootfs, host_config={"SecurityOpt": ["writable-cgroups=true"]})
    assert "ro" not in mount_at(spec, "/sys/fs/cgroup")["options"]
    spec = spec_for(rootfs, host_config={"Privileged": True, "SecurityOpt": ["writable-cgroups=false"]})
    assert "ro" in mount_at(spec, "/sys/fs/cgroup")["options"]


def test_oom_score_adj_and_annotations(rootfs):
    spec = spec_for(rootfs, host_config={"OomScoreAdj": -500, "Annotations": {"a": "b"},
                                         "ConsoleSize": [40, 120]})
    assert spec["process"]["oomScoreAdj"] == -500
    assert spec["annotations"] == {"a": "b"}
    assert spec["process"]["consoleSize"] == {"height": 40, "width": 120}


# -- ulimits --------------------------------------------------------------------------------

def rlimits(rootfs, *ulimits, max_nofile=20000) -> dict[str, tuple[int, int]]:
    spec = spec_for(rootfs, host_config={"Ulimits": list(ulimits)}, max_nofile=max_nofile)
    return {r["type"]: (r["soft"], r["hard"]) for r in spec["process"]["rlimits"]}


def test_nofile_is_clamped_to_the_daemons_limit(rootfs, caplog):
    with caplog.at_level(logging.WARNING, logger="dockyard.containers.ocispec"):
        got = rlimits(rootfs, {"Name": "nofile", "Soft": 1048576, "Hard": 1048576})
    assert got == {"RLIMIT_NOFILE": (20000, 20000)}
    assert "nofile=1048576:1048576 is above the daemon's own hard limit 20000" in caplog.text
    assert rlimits(rootfs, {"Name": "nofile", "Soft": 1024, "Hard": -1}) == {"RLIMIT_NOFILE": (1024, 20000)}
    assert rlimits(rootfs, {"Name": "nofile", "Soft": 1024, "Hard": 4096}, max_nofile=2048) == \
        {"RLIMIT_NOFILE": (1024, 2048)}
    assert rlimits(rootfs, {"Name": "nofile", "Soft": 512, "Hard": 1024}) == {"RLIMIT_NOFILE": (512, 1024)}


def test_ulimits_map_to_rlimits(rootfs):
    got = rlimits(rootfs, {"Name": "core", "Soft": 0, "Hard": 0}, {"Name": "nice", "Soft": 0, "Hard": 0})
    assert got == {"RLIMIT_CORE": (0, 0), "RLIMIT_NICE": (0, 0)}
    # Unlimited is RLIM_INFINITY when the daemon may set it.
    if resource.getrlimit(resource.RLIMIT_CORE)[1] == resource.RLIM_INFINITY:
        assert rlimits(rootfs, {"Name": "core", "Soft": -1, "Hard": -1}) == \
            {"RLIMIT_CORE": (2**64 - 1, 2**64 - 1)}


@pytest.mark.skipif("CAP_SYS_RESOURCE" in available_capabilities()
                    or resource.getrlimit(resource.RLIMIT_MEMLOCK)[1] == resource.RLIM_INFINITY,
                    reason="the daemon may raise its memlock limit here")
def test_other_ulimits_are_clamped_without_cap_sys_resource(rootfs):
    hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
    assert rlimits(rootfs, {"Name": "memlock", "Soft": -1, "Hard": -1}) == {"RLIMIT_MEMLOCK": (hard, hard)}


def test_ulimit_validation(rootfs):
    assert invalid({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]}) == "invalid ulimit type: bogus"
    assert invalid({"Ulimits": [{"Name": "as", "Soft": 1, "Hard": 1}]}) == "invalid ulimit type: as"
    assert invalid({"Ulimits": [{"Name": "nofile", "Soft": 2048, "Hard": 1024}]}) == \
        "ulimit soft limit must be less than or equal to hard limit: 2048 > 1024"
    assert invalid({"Ulimits": [{"Name": "nofile", "Soft": -1, "Hard": 1024}]}) == \
        "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: 1024"
    validate_host_config({"Ulimits": [{"Name": "nproc", "Soft": 10, "Hard": -1}]})
    with pytest.raises(InvalidParameter, match="^invalid ulimit type: bogus$"):
        spec_for(rootfs, host_config={"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]})


# -- resources ------------------------------------------------------------------------------

def resources(rootfs, **host_config) -> dict:
    return spec_for(rootfs, host_config=host_config)["linux"]["resources"]


def test_memory_and_swap(rootfs):
    assert resources(rootfs, Memory=64 * MiB)["memory"] == \
        {"limit": 64 * MiB, "swap": 128 * MiB, "disableOOMKiller": False}  # swap defaults to 2x
    assert resources(rootfs, Memory=64 * MiB, MemorySwap=-1)["memory"] == \
        {"limit": 64 * MiB, "disableOOMKiller": False}  # unlimited swap: nothing to set
    assert resources(rootfs, Memory=64 * MiB, MemorySwap=100 * MiB, MemoryReservation=32 * MiB,
                     MemorySwappiness=10, OomKillDisable=True)["memory"] == \
        {"limit": 64 * MiB, "swap": 100 * MiB, "reservation": 32 * MiB, "swappiness": 10,
         "disableOOMKiller": True}
    assert "swappiness" not in resources(rootfs, MemorySwappiness=-1)["memory"]


def test_cpu(rootfs):
    assert resources(rootfs, NanoCpus=1_500_000_000)["cpu"] == {"period": 100000, "quota": 150000}
    assert resources(rootfs, NanoCpus=10_000_000)["cpu"] == {"period": 100000, "quota": 1000}
    assert resources(rootfs, CpuQuota=50000, CpuPeriod=200000, CpuShares=512, CpusetCpus="0",
                     CpusetMems="0")["cpu"] == \
        {"quota": 50000, "period": 200000, "shares": 512, "cpus": "0", "mems": "0"}
    assert resources(rootfs, CpuQuota=-1)["cpu"] == {"quota": -1}


def test_pids_and_blkio(rootfs):
    assert resources(rootfs, PidsLimit=100)["pids"] == {"limit": 100}
    assert resources(rootfs, PidsLimit=0)["pids"] == {"limit": -1}
    assert resources(rootfs, PidsLimit=-1)["pids"] == {"limit": -1}
    assert "pids" not in resources(rootfs, PidsLimit=None)
    assert resources(rootfs, BlkioWeight=300)["blockIO"] == {"weight": 300}
    null = os.stat("/dev/null").st_rdev
    got = resources(rootfs, BlkioDeviceReadBps=[{"Path": "/dev/null", "Rate": 1024}])["blockIO"]
    assert got == {"throttleReadBpsDevice": [
        {"major": os.major(null), "minor": os.minor(null), "rate": 1024}]}


# -- namespaces -----------------------------------------------------------------------------

def test_host_modes_drop_namespaces(rootfs):
    spec = spec_for(rootfs, host_config={"PidMode": "host", "IpcMode": "host", "UTSMode": "host"})
    assert namespace_types(spec) == ["mount", "network"]
    assert "hostname" not in spec
    # The host's /dev/shm, as Docker binds it for --ipc=host.
    assert mount_at(spec, "/dev/shm") == {"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                                          "options": ["rbind", "rprivate"]}


def test_host_network(rootfs):
    spec = spec_for(rootfs, host_config={"NetworkMode": "host"})
    assert namespace_types(spec) == ["mount", "uts", "pid", "ipc"]
    assert spec["hostname"] == socket.gethostname()
    assert not any(key.startswith("net.") for key in spec["linux"]["sysctl"])
    assert namespace_types(spec_for(rootfs, netns="host")) == ["mount", "uts", "pid", "ipc"]


def test_joined_namespaces(rootfs):
    spec = spec_for(rootfs, netns="/run/netns/x")
    assert spec["linux"]["namespaces"][1] == {"type": "network", "path": "/run/netns/x"}
    spec = spec_for(rootfs, host_config={"NetworkMode": "container:abc", "PidMode": "container:abc",
                                         "IpcMode": "container:abc"},
                    netns="/proc/42/ns/net", pid_ns="/proc/42/ns/pid", ipc_ns="/proc/42/ns/ipc")
    assert spec["linux"]["namespaces"] == [
        {"type": "mount"}, {"type": "network", "path": "/proc/42/ns/net"}, {"type": "uts"},
        {"type": "pid", "path": "/proc/42/ns/pid"}, {"type": "ipc", "path": "/proc/42/ns/ipc"}]
    assert not any(key.startswith("net.") for key in spec["linux"]["sysctl"])  # not ours to set
    with pytest.raises(ValueError, match="pid mode 'container:abc' needs the path"):
        spec_for(rootfs, host_config={"PidMode": "container:abc"})


def test_ipc_none_has_no_shm(rootfs):
    spec = spec_for(rootfs, host_config={"IpcMode": "none"})
    assert "/dev/shm" not in [m["destination"] for m in spec["mounts"]]
    assert "ipc" in namespace_types(spec)
    spec = spec_for(rootfs, host_config={"ShmSize": 1 * MiB})
    assert mount_at(spec, "/dev/shm")["options"][-1] == "size=1048576"


# -- mounts ---------------------------------------------------------------------------------

def bind(destination: str, source: str = "/tmp", *options: str) -> dict:
    return {"destination": destination, "type": "bind", "source": source, "options": ["rbind", *options]}


def test_user_mounts_sorted_parents_first(rootfs):
    spec = spec_for(rootfs, mounts=[bind("/a/b/c"), bind("/a"), bind("/etc/hosts"), bind("/a/b"),
                                    bind("/etc/hostname")])
    # By depth; equal depths keep the caller's order.
    assert [m["destination"] for m in spec["mounts"]][7:] == [
        "/a", "/etc/hosts", "/a/b", "/etc/hostname", "/a/b/c"]


def test_user_mount_replaces_default(rootfs):
    shm = bind("/dev/shm", "/var/lib/dockyard/shm")
    spec = spec_for(rootfs, mounts=[shm])
    assert mount_at(spec, "/dev/shm") == shm
    spec = spec_for(rootfs, mounts=[bind("/dev", "/dev")])
    assert [m["destination"] for m in spec["mounts"]] == ["/proc", "/sys", "/sys/fs/cgroup", "/dev"]


def test_readonly_rootfs(rootfs):
    spec = spec_for(rootfs, host_config={"ReadonlyRootfs": True}, mounts=[bind("/data")])
    assert spec["root"] == {"path": str(rootfs), "readonly": True}
    assert "ro" not in mount_at(spec, "/dev/shm")["options"]
    assert "ro" not in mount_at(spec, "/data")["options"]  # user mounts keep their own mode


def test_tmpfs_from_host_config(rootfs):
    spec = spec_for(rootfs, host_config={"Tmpfs": {"/run": "rw,exec,size=65536k", "/tmp": ""}})
    assert mount_at(spec, "/run") == {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                                      "options": ["nosuid", "nodev", "rprivate", "rw", "exec", "size=65536k"]}
    assert mount_at(spec, "/tmp")["options"] == ["noexec", "nosuid", "nodev", "rprivate"]
    assert invalid({"Tmpfs": {"/run": "bogus"}}) == 'invalid tmpfs option ["bogus"]'
    assert invalid({"Tmpfs": {"/": ""}}) == "invalid specification: destination can't be '/'"
    assert invalid({"Tmpfs": {"run": ""}}) == "invalid mount path: 'run' mount path must be absolute"


def test_shared_bind_sets_root_propagation(rootfs):
    assert spec_for(rootfs, mounts=[bind("/a", "/tmp", "rshared")])["linux"]["rootfsPropagation"] == "shared"
    assert spec_for(rootfs, mounts=[bind("/a", "/tmp", "rslave")])["linux"]["rootfsPropagation"] == "rslave"


def test_init(rootfs):
    spec = spec_for(rootfs, config={"Cmd": ["sleep", "1"]}, host_config={"Init": True},
                    init_path="/usr/bin/tini")
    assert spec["process"]["args"] == ["/sbin/docker-init", "--", "sleep", "1"]
    assert mount_at(spec, "/sbin/docker-init") == {"destination": "/sbin/docker-init", "type": "bind",
                                                   "source": "/usr/bin/tini", "options": ["bind", "ro"]}
    # Sharing the host's pid namespace, the container has an init already.
    spec = spec_for(rootfs, host_config={"Init": True, "PidMode": "host"}, init_path="/usr/bin/tini")
    assert spec["process"]["args"] == ["/bin/true"]
    with pytest.raises(Unavailable, match="install tini"):
        spec_for(rootfs, host_config={"Init": True})


# -- devices --------------------------------------------------------------------------------

def test_device_mapping(rootfs):
    spec = spec_for(rootfs, host_config={"Devices": [
        {"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "r"}],
        "DeviceCgroupRules": ["c 10:200 rwm", "b *:* m"]})
    [device] = spec["linux"]["devices"]
    assert (device["path"], device["type"], device["major"], device["minor"]) == ("/dev/mynull", "c", 1, 3)
    assert spec["linux"]["resources"]["devices"][-3:] == [
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"},
        {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
        {"allow": True, "type": "b", "major": -1, "minor": -1, "access": "m"}]


def test_device_errors(rootfs):
    with pytest.raises(InvalidParameter) as caught:
        spec_for(rootfs, host_config={"Devices": [{"PathOnHost": "/dev/nope",
                                                   "PathInContainer": "/dev/nope"}]})
    assert str(caught.value) == ('error gathering device information while adding custom device "/dev/nope": '
                                 "lstat /dev/nope: no such file or directory")
    with pytest.raises(InvalidParameter, match="not a device node"):
        spec_for(rootfs, host_config={"Devices": [{"PathOnHost": str(rootfs / "etc/passwd")}]})
    assert invalid({"DeviceCgroupRules": ["c 1:x rwm"]}) == "invalid device cgroup rule format: 'c 1:x rwm'"
    assert invalid({"Devices": [{"PathOnHost": "/dev/null", "CgroupPermissions": "rwx"}]}).startswith(
        "invalid device mode 'rwx' for /dev/null")


# -- sysctls --------------------------------------------------------------------------------

def test_sysctls_pass_through_and_override(rootfs):
    spec = spec_for(rootfs, host_config={"Sysctls": {"net.ipv4.ip_unprivileged_port_start": "1024",
                                                     "kernel.shmmax": "1000", "fs.mqueue.msg_max": "20"}})
    sysctl = spec["linux"]["sysctl"]
    assert sysctl["net.ipv4.ip_unprivileged_port_start"] == "1024"
    assert (sysctl["kernel.shmmax"], sysctl["fs.mqueue.msg_max"]) == ("1000", "20")


@pytest.mark.parametrize(("host_config", "message"), [
    ({"NetworkMode": "host", "Sysctls": {"net.ipv4.ip_forward": "1"}},
     'sysctl "net.ipv4.ip_forward" not allowed in host network namespace'),
    ({"IpcMode": "host", "Sysctls": {"kernel.shmmax": "1"}},
     'sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace'),
    ({"Sysctls": {"vm.swappiness": "1"}}, 'sysctl "vm.swappiness" is not in a separate kernel namespace'),
    ({"Sysctls": {"kernel.hostname": "x"}},
     'sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field'),
    ({"UTSMode": "host", "Sysctls": {"kernel.domainname": "x"}},
     'sysctl "kernel.domainname" is not in a separate kernel namespace'),
])
def test_sysctl_validation(rootfs, host_config, message):
    assert invalid(host_config) == message
    with pytest.raises(InvalidParameter) as caught:
        spec_for(rootfs, host_config=host_config)
    assert str(caught.value) == message


def test_net_sysctl_refused_when_joining_the_hosts_netns_by_path(rootfs):
    with pytest.raises(InvalidParameter, match="not allowed in host network namespace"):
        spec_for(rootfs, host_config={"Sysctls": {"net.ipv4.ip_forward": "1"}}, netns="/proc/self/ns/net")


# -- validation -----------------------------------------------------------------------------

def test_valid_host_configs_pass():
    validate_host_config(None)
    validate_host_config({})
    validate_host_config({"Memory": 6 * MiB, "MemorySwap": -1, "NanoCpus": 10_000_000, "CpuShares": 512,
                          "BlkioWeight": 10, "ShmSize": 0, "IpcMode": "shareable", "PidMode": "container:x",
                          "UTSMode": "host", "CgroupnsMode": "private", "OomScoreAdj": 1000,
                          "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}, "CpusetCpus": "0"})


@pytest.mark.parametrize(("host_config", "message"), [
    ({"Memory": -1}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 4 * MiB}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 64 * MiB, "MemorySwap": 32 * MiB},
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    ({"MemorySwap": 64 * MiB},
     "You should always set the Memory limit when using Memoryswap limit, see usage"),
    ({"MemorySwappiness": 101}, "Invalid value: 101, valid memory swappiness range is 0-100"),
    ({"MemoryReservation": 1 * MiB}, "Minimum memory reservation allowed is 6MB"),
    ({"Memory": 16 * MiB, "MemoryReservation": 32 * MiB},
     "Minimum memory limit can not be less than memory reservation limit, see usage"),
    ({"NanoCpus": 1_000_000_000, "CpuPeriod": 100000},
     "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ({"NanoCpus": 1_000_000_000, "CpuQuota": 50000},
     "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    ({"CpuPeriod": 999},
     "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"),
    ({"CpuQuota": 999}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    ({"CpuShares": -2}, "invalid CPU shares (-2): value must be a positive integer"),
    ({"CpusetCpus": "0-"}, "Invalid value 0- for cpuset cpus: invalid format: 0-"),
    ({"CpusetCpus": "3-1"}, "Invalid value 3-1 for cpuset cpus: invalid format: 3-1"),
    ({"CpusetCpus": "99999"}, "Invalid value 99999 for cpuset cpus: value of out range, maximum is 8192"),
    ({"CpusetMems": "a"}, "Invalid value a for cpuset mems: invalid format: a"),
    ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
    ({"BlkioWeight": 1001}, "Range of blkio weight is from 10 to 1000"),
    ({"IpcMode": "bogus"}, "invalid IPC mode: bogus"),
    ({"PidMode": "container:"}, "invalid PID mode: container:"),
    ({"UTSMode": "private"}, "invalid UTS mode: private"),
    ({"CgroupnsMode": "shared"}, "invalid cgroup namespace mode: shared"),
    ({"ShmSize": -1}, "SHM size can not be less than 0"),
    ({"OomScoreAdj": 1001}, "Invalid value 1001, range for oom score adj is [-1000, 1000]"),
    ({"AutoRemove": True, "RestartPolicy": {"Name": "always"}},
     "can't create 'AutoRemove' container with restart policy"),
    ({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 2}},
     "invalid restart policy: maximum retry count can only be used with 'on-failure'"),
    ({"RestartPolicy": {"Name": "sometimes"}},
     "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', "
     "or 'unless-stopped'"),
])
def test_host_config_errors(host_config, message):
    assert invalid(host_config) == message


def test_cpu_range_names_this_hosts_cpus():
    cpus = len(os.sched_getaffinity(0))
    message = f"Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
    assert invalid({"NanoCpus": (cpus + 1) * 10**9}) == message
    assert invalid({"NanoCpus": -1}) == message
    validate_host_config({"NanoCpus": cpus * 10**9})


def test_cpuset_must_exist_on_this_host():
    assert invalid({"CpusetCpus": "4000"}).startswith(
        "Requested CPUs are not available - requested 4000, available: ")
    assert invalid({"CpusetMems": "0,4000"}).startswith(
        "Requested memory nodes are not available - requested 0,4000, available: ")


def test_config_errors():
    validate_config({"WorkingDir": "/srv", "StopSignal": "SIGUSR1", "Env": ["A=1", "B"]})
    with pytest.raises(InvalidParameter) as caught:
        validate_config({"WorkingDir": "srv"})
    assert str(caught.value) == "the working directory 'srv' is invalid, it needs to be an absolute path"
    with pytest.raises(InvalidParameter, match="^invalid signal: SIGBOGUS$"):
        validate_config({"StopSignal": "SIGBOGUS"})
    with pytest.raises(InvalidParameter, match="^invalid environment variable: =x$"):
        validate_config({"Env": ["=x"]})


# -- signals --------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "number"), [
    ("SIGTERM", 15), ("TERM", 15), ("term", 15), ("SigKill", 9), ("9", 9), (9, 9), ("SIGUSR1", 10),
    ("HUP", 1), ("SIGRTMIN", 34), ("RTMIN+3", 37), ("SIGRTMAX-1", 63), ("RTMAX", 64), ("64", 64),
    ("CHLD", 17), ("SIGWINCH", 28),
])
def test_parse_signal(value, number):
    assert parse_signal(value) == number


@pytest.mark.parametrize("value", ["", "0", 0, "65", 65, -1, "-9", "SIGSIGTERM", "BOGUS", "SIG",
                                   "RTMIN+16", True])
def test_parse_signal_rejects(value):
    with pytest.raises(InvalidParameter) as caught:
        parse_signal(value)
    assert str(caught.value) == f"invalid signal: {value}"


# -- the real runtime ---------------------------------------------------------------------

needs_runc = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runc") or not os.path.exists("/bin/busybox"),
    reason="needs root, runc and a static /bin/busybox")


def busybox_bundle(directory: Path, passwd: str = "", group: str = "") -> Path:
    rootfs = directory / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", rootfs / "bin/busybox")
    for applet in ("sh", "echo", "id", "hostname", "cat", "wc", "touch"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc").mkdir()
    if passwd:
        (rootfs / "etc/passwd").write_text(passwd)
        (rootfs / "etc/group").write_text(group)
    return rootfs


def run_with_runc(tmp_path: Path, inputs: SpecInputs) -> subprocess.CompletedProcess:
    """Write the spec into the bundle, `runc run` it, and check runc and the kernel keep
    nothing of it afterwards."""
    spec = build_spec(inputs)
    bundle = inputs.rootfs.parent
    (bundle / "config.json").write_text(json.dumps(spec))
    state = tmp_path / "runc-state"
    state.mkdir()
    cgroup = spec["linux"]["cgroupsPath"].lstrip("/")
    parent = cgroup.split("/")[0]
    try:
        result = subprocess.run(
            ["runc", "--root", str(state), "run", "--bundle", str(bundle), inputs.container_id],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        subprocess.run(["runc", "--root", str(state), "delete", "--force", inputs.container_id],
                       capture_output=True, timeout=30)
        listed = subprocess.run(["runc", "--root", str(state), "list", "-q"], capture_output=True, text=True,
                                timeout=30)
        assert listed.stdout.split() == []
        leftovers = [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{cgroup}")]
        assert leftovers == []
        return result
    finally:
        for directory in Path("/sys/fs/cgroup").glob(f"*/{parent}"):
            directory.rmdir()  # the parent runc made for us; empty now


@pytest.mark.root
@needs_runc
def test_runc_runs_the_spec(tmp_path):
    rootfs = busybox_bundle(tmp_path / "bundle")
    container_id = "ocispec-" + uuid.uuid4().hex[:12]
    result = run_with_runc(tmp_path, SpecInputs(
        container_id=container_id, config={"Cmd": ["/bin/echo", "ok"]}, rootfs=rootfs,
        cgroup_parent="/dockyard-test-" + uuid.uuid4().hex[:8]))
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")


@pytest.mark.root
@needs_runc
def test_runc_applies_user_limits_and_readonly_root(tmp_path):
    rootfs = busybox_bundle(tmp_path / "bundle", passwd="root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
                            group="root:x:0:\napp:x:1000:\nextra:x:2000:app\n")
    (rootfs / "work").mkdir()
    (rootfs / "work").chmod(0o777)  # writable by the user but for the read-only rootfs
    script = ('echo "$(id -u) $(id -g) $(id -G) $(hostname) $(ulimit -n) $GREETING $PWD"; '
              "touch /work/written 2>/dev/null && echo rw || echo ro; "
              "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; "
              "wc -c < /proc/interrupts")  # masked: /dev/null over it
    result = run_with_runc(tmp_path, SpecInputs(
        container_id="ocispec-" + uuid.uuid4().hex[:12],
        config={"Entrypoint": ["/bin/sh", "-c"], "Cmd": [script], "User": "app", "Hostname": "web",
                "WorkingDir": "/work", "Env": ["GREETING=hello"]},
        host_config={"ReadonlyRootfs": True, "Memory": 64 * MiB,
                     "Ulimits": [{"Name": "nofile", "Soft": 1048576, "Hard": 1048576}]},
        rootfs=rootfs, cgroup_parent="/dockyard-test-" + uuid.uuid4().hex[:8], max_nofile=4096))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "1000 1000 1000 2000 web 4096 hello /work", "ro", str(64 * MiB), "0"]


def test_spec_for_container_takes_the_managers_record(rootfs):
    class Record:  # the fields of dockyard.containers.model.Container it reads
        id = CONTAINER_ID
        config = {"Entrypoint": None, "Cmd": ["sh"], "User": "app", "Env": ["A=1"]}
        host_config = {"NetworkMode": "host", "Memory": 64 * MiB}

    spec = spec_for_container(container=Record(), rootfs=rootfs, mounts=[bind("/data")], netns="host",
                              max_nofile=1024)
    assert spec["process"]["args"] == ["sh"]
    assert spec["process"]["user"]["uid"] == 1000
    assert spec["process"]["env"][-1] == "A=1"
    assert "network" not in namespace_types(spec)
    assert spec["mounts"][-1]["destination"] == "/data"
    assert spec["linux"]["resources"]["memory"]["limit"] == 64 * MiB
