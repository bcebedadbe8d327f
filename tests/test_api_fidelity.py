"""Engine API fidelity (issue #15): behaviour the docker CLI, docker-py and compose rely on,
checked with those clients against a real daemon."""

from __future__ import annotations

import subprocess
import time

import docker as docker_py
import pytest
from conftest import busybox_daemon, docker, out

pytestmark = [pytest.mark.root, pytest.mark.compat]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    with busybox_daemon(tmp_path_factory, "fid") as process:
        yield process


@pytest.fixture
def client(daemon):
    client = docker_py.DockerClient(base_url=daemon.host, timeout=60)
    yield client
    client.close()


# -- swarm mode: not in a swarm, said as dockerd says it -------------------------------------

@pytest.mark.parametrize("command", [["node", "ls"], ["service", "ls"], ["secret", "ls"], ["config", "ls"],
                                     ["swarm", "leave", "--force"], ["node", "inspect", "self"]])
def test_swarm_commands_say_this_node_is_not_part_of_a_swarm(daemon, command):
    result = docker(daemon, *command)
    assert result.returncode == 1
    assert "This node is not part of a swarm" in result.stderr.decode()


def test_swarm_init_says_what_to_use_instead(daemon):
    result = docker(daemon, "swarm", "init")
    assert result.returncode == 1
    assert "does not run swarm mode" in result.stderr.decode() and "--cluster-store" in result.stderr.decode()


def test_docker_py_clean_ups_of_swarm_state_succeed(client):
    assert client.swarm.leave(force=True) is True  # docker-py reads the 503 as "nothing to leave"
    with pytest.raises(docker_py.errors.APIError) as failure:
        client.api.inspect_swarm()
    assert failure.value.status_code == 503
    assert client.info()["Swarm"]["LocalNodeState"] == "inactive"


def test_unknown_routes_are_still_a_json_404(daemon):
    from dockyard.client import APIError

    with pytest.raises(APIError, match="page not found") as failure:
        daemon.client().request("GET", "/no/such/route")
    assert failure.value.status == 404


# -- paths are percent-decoded -----------------------------------------------------------------

def test_a_name_with_a_space_is_found_through_its_encoded_path(daemon, client):
    created = client.networks.create("test 01")
    assert client.networks.get("test 01").id == created.id  # docker-py sends /networks/test%2001
    removed = docker(daemon, "network", "rm", "test 01")
    assert removed.returncode == 0, removed.stderr
    assert "test 01" not in out(docker(daemon, "network", "ls", "--format", "{{.Name}}"))


# -- images --filter reference lists only the names that match ------------------------------

def test_reference_filter_lists_only_the_matching_tags(daemon, client):
    for tag in ("bb:two", "127.0.0.1:5000/bar/busybox:v1"):
        assert docker(daemon, "tag", "busybox", tag).returncode == 0
    try:
        listed = out(docker(daemon, "images", "--filter", "reference=busybox", "--format",
                            "{{.Repository}}:{{.Tag}}"))
        assert listed.splitlines() == ["busybox:latest"]
        assert out(docker(daemon, "images", "--filter", "reference=bb", "--format",
                          "{{.Repository}}:{{.Tag}}")).splitlines() == ["bb:two"]
        assert [image["RepoTags"] for image in client.api.images(name="busybox")] == [["busybox:latest"]]
        everything = [image.tags for image in client.images.list()]
        assert sorted(everything[0]) == ["127.0.0.1:5000/bar/busybox:v1", "bb:two", "busybox:latest"]
    finally:
        for tag in ("bb:two", "127.0.0.1:5000/bar/busybox:v1"):
            docker(daemon, "rmi", tag)


# -- exec: Docker's exit codes and messages, the terminal decided at create ----------------

@pytest.fixture(scope="module")
def sleeper(daemon):
    result = docker(daemon, "run", "-d", "--name", "fid-sleeper", "busybox", "sh", "-c",
                    "echo from-the-log; sleep 600")
    assert result.returncode == 0, result.stderr
    yield "fid-sleeper"
    docker(daemon, "rm", "-f", "fid-sleeper")


@pytest.mark.parametrize("argv, code, message", [
    (["nosuchbinary"], 127, 'exec: "nosuchbinary": executable file not found in $PATH'),
    (["/etc/passwd"], 126, 'exec: "/etc/passwd": permission denied'),
    (["-u", "nobody2", "true"], 126, "unable to find user nobody2: no matching entries in passwd file"),
])
def test_exec_that_cannot_start_exits_like_docker(daemon, sleeper, argv, code, message):
    options, command = (argv[:2], argv[2:]) if argv[0] == "-u" else ([], argv)
    result = docker(daemon, "exec", *options, sleeper, *command)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert message in result.stdout.decode()  # Docker writes it into the exec's stream


def test_docker_py_sees_the_exit_code_and_the_create_decides_the_terminal(client, sleeper):
    container = client.containers.get(sleeper)
    missing = client.api.exec_create(container.id, ["nosuchbinary"])
    output = client.api.exec_start(missing["Id"])
    assert b"executable file not found" in output
    assert client.api.exec_inspect(missing["Id"])["ExitCode"] == 127
    on_a_pty = client.api.exec_create(container.id, ["echo", "hi"], tty=True)
    assert client.api.exec_start(on_a_pty["Id"], tty=False) == b"hi\r\n"  # a terminal's line end
    plain = client.api.exec_create(container.id, ["echo", "hi"])
    assert client.api.exec_start(plain["Id"]) == b"hi\n"


def test_attach_with_logs_and_no_stream_returns_the_logs(client, sleeper):
    container = client.containers.get(sleeper)
    deadline = time.monotonic() + 10
    while b"from-the-log" not in container.logs() and time.monotonic() < deadline:
        time.sleep(0.1)  # the container writes it just after it starts
    assert client.api.attach(container.id, stream=False, logs=True) == b"from-the-log\n"
    stopped = client.containers.run("busybox", ["echo", "said-before-exiting"], detach=True)
    stopped.wait()
    assert client.api.attach(stopped.id, stream=False, logs=True) == b"said-before-exiting\n"
    stopped.remove()


# -- builds ------------------------------------------------------------------------------

def test_an_exception_under_an_ignored_directory_is_copied_with_its_parents(daemon, tmp_path):
    (tmp_path / "ignored/subdir").mkdir(parents=True)
    (tmp_path / "ignored/subdir/file").write_text("kept\n")
    (tmp_path / "ignored/other").write_text("dropped\n")
    (tmp_path / ".dockerignore").write_text("ignored/\n!ignored/subdir/file\n")
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY ignored /ignored\n")
    import os

    env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_BUILDKIT": "0",
           "DOCKER_CONFIG": str(daemon.root / "cfg")}
    built = subprocess.run(["docker", "build", "-q", "-t", "fid-ignored", str(tmp_path)], capture_output=True,
                           text=True, env=env, timeout=120)
    assert built.returncode == 0, built.stderr
    listing = out(docker(daemon, "run", "--rm", "fid-ignored", "find", "/ignored"))
    assert listing.splitlines() == ["/ignored", "/ignored/subdir", "/ignored/subdir/file"]
    docker(daemon, "rmi", "fid-ignored")


def test_a_run_steps_stderr_streams_in_red(client, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo to-out && echo to-err >&2\n")
    streams = [m.get("stream", "") for m in client.api.build(path=str(tmp_path), rm=True, decode=True)]
    assert "to-out\n" in streams
    assert "\x1b[91mto-err\n\x1b[0m" in streams


# -- what inspect shows --------------------------------------------------------------------

def test_asked_mac_addresses_aliases_runtime_and_options_show_in_inspect(daemon, client):
    import json

    icc = "com.docker.network.bridge.enable_icc"
    created = docker(daemon, "network", "create", "-o", f"{icc}=true", "fid-net")
    assert created.returncode == 0, created.stderr
    try:
        run = docker(daemon, "run", "-d", "--name", "fid-mac", "--network", "fid-net", "--mac-address",
                     "02:42:ac:11:00:99", "busybox", "sleep", "300")
        assert run.returncode == 0, run.stderr
        shown = json.loads(out(docker(daemon, "inspect", "fid-mac")))[0]
        endpoint = shown["NetworkSettings"]["Networks"]["fid-net"]
        assert endpoint["MacAddress"] == "02:42:ac:11:00:99"
        assert shown["HostConfig"]["Runtime"] == "runc"
        short_id = shown["Id"][:12]
        assert endpoint["Aliases"] == [short_id] and endpoint["DNSNames"] == ["fid-mac", short_id]
        docker(daemon, "restart", "-t", "1", "fid-mac")
        again = json.loads(out(docker(daemon, "inspect", "fid-mac")))[0]["NetworkSettings"]["Networks"]
        assert again["fid-net"]["MacAddress"] == "02:42:ac:11:00:99"  # kept across runs
        options = json.loads(out(docker(daemon, "network", "inspect", "fid-net")))[0]["Options"]
        assert options == {icc: "true"}

        api = client.api
        endpoint_config = api.create_endpoint_config(mac_address="02:42:ac:11:00:98", aliases=["x1"])
        networking = api.create_networking_config({"fid-net": endpoint_config})
        container = api.create_container("busybox", "sleep 300", name="fid-mac-py",
                                         networking_config=networking,
                                         host_config=api.create_host_config(network_mode="fid-net"))
        api.start(container["Id"])
        seen = api.inspect_container(container["Id"])["NetworkSettings"]["Networks"]["fid-net"]
        assert seen["MacAddress"] == "02:42:ac:11:00:98"
        assert seen["Aliases"] == ["x1", container["Id"][:12]]
        bad = docker(daemon, "run", "--rm", "--network", "fid-net", "--mac-address", "02:42:zz", "busybox",
                     "true")
        assert bad.returncode != 0 and "not a valid mac address" in bad.stderr.decode()
    finally:
        docker(daemon, "rm", "-f", "fid-mac", "fid-mac-py")
        docker(daemon, "network", "rm", "fid-net")


def test_add_host_reaches_run_steps_and_docker_py_reads_an_outside_dockerfile(daemon, client, tmp_path):
    import os

    context = tmp_path / "context"
    context.mkdir()
    (context / "f").write_text("x\n")
    elsewhere = tmp_path / "Dockerfile.elsewhere"
    elsewhere.write_text("FROM busybox\nCOPY f /f\nRUN grep -c '10.1.2.3.*myhost' /etc/hosts\n")
    # docker-py sends a Dockerfile from outside the context inside it, under a generated name
    image, log = client.images.build(path=str(context), dockerfile=str(elsewhere),
                                     extra_hosts={"myhost": "10.1.2.3"})
    assert "1\n" in [line.get("stream") for line in log]
    client.images.remove(image.id)
    env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_BUILDKIT": "0",
           "DOCKER_CONFIG": str(daemon.root / "cfg")}
    built = subprocess.run(["docker", "build", "--no-cache", "--add-host", "myhost:10.1.2.3",
                            "-f", str(elsewhere), "-t", "fid-hosts", str(context)],
                           capture_output=True, text=True, env=env, timeout=120)
    assert built.returncode == 0, built.stderr
    docker(daemon, "rmi", "fid-hosts")


def test_commit_of_a_container_exiting_meanwhile_never_fails(daemon):
    """Each container ends about when the commit pauses it: the commit must work either way."""
    for n in range(8):
        started = docker(daemon, "run", "-d", "busybox", "sh", "-c", f"usleep {n * 15000}")
        assert started.returncode == 0, started.stderr
        container = out(started)
        committed = docker(daemon, "commit", container, f"fid-commit:{n}")
        assert committed.returncode == 0, committed.stderr
        docker(daemon, "rm", "-f", container)
        docker(daemon, "rmi", f"fid-commit:{n}")


# -- docker cp under volumes and binds ---------------------------------------------------------

def test_cp_reaches_volumes_and_binds_of_created_and_stopped_containers(daemon, tmp_path):
    import os

    hostdir = tmp_path / "bound"
    hostdir.mkdir()
    (tmp_path / "note.txt").write_text("copied in\n")
    created = docker(daemon, "create", "--name", "fid-cp", "-v", "fid-vol:/vol1", "-v", f"{hostdir}:/bind",
                     "-v", "fid-vol-ro:/ro:ro", "busybox", "sh", "-c", "cat /vol1/note.txt")
    assert created.returncode == 0, created.stderr
    try:
        for destination in ("fid-cp:/vol1/", "fid-cp:/bind/"):
            copied = docker(daemon, "cp", str(tmp_path / "note.txt"), destination)
            assert copied.returncode == 0, copied.stderr
        assert (hostdir / "note.txt").read_text() == "copied in\n"
        refused = docker(daemon, "cp", str(tmp_path / "note.txt"), "fid-cp:/ro/")
        assert refused.returncode != 0 and "read-only" in refused.stderr.decode()
        started = docker(daemon, "start", "-a", "fid-cp")
        assert out(started) == "copied in"  # the container sees what went into its volume
        back = tmp_path / "back"
        back.mkdir()
        fetched = docker(daemon, "cp", "fid-cp:/vol1/note.txt", str(back))  # stopped now
        assert fetched.returncode == 0, fetched.stderr
        assert (back / "note.txt").read_text() == "copied in\n"
        whole = docker(daemon, "cp", "fid-cp:/vol1", str(back / "vol"))
        assert whole.returncode == 0 and sorted(os.listdir(back / "vol")) == ["note.txt"]
    finally:
        docker(daemon, "rm", "-f", "-v", "fid-cp")
        docker(daemon, "volume", "rm", "fid-vol", "fid-vol-ro")


def test_many_execs_on_a_terminal_leave_the_container_running(client, sleeper):
    """A pty that reports its end before the exec's exit was closed twice, and the second
    close killed the container's monitor (and with it the container)."""
    container = client.containers.get(sleeper)
    for _ in range(25):
        created = client.api.exec_create(container.id, ["echo", "hi"], tty=True)
        assert client.api.exec_start(created["Id"], tty=False) == b"hi\r\n"
    container.reload()
    assert container.status == "running"
