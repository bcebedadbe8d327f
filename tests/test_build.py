"""Dockerfile builds end to end: the real docker CLI (classic builder, DOCKER_BUILDKIT=0)
and docker-py against dockyardd, RUN steps in real containers, the layer cache and
its rules, and what a failed build leaves behind (nothing but its cache)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import docker, dockyard_cli, out
from dockyard.plugin.testing.daemon import DaemonProcess

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    root = tmp_path_factory.mktemp("build")
    root.mkdir(exist_ok=True)
    daemon = DaemonProcess(root, ("--storage-driver", "overlay")).start()
    dockyard_cli("image", "bootstrap", "busybox", "--tag", "busybox:latest", host=daemon.host)
    yield daemon
    daemon.teardown()


def build(daemon, context: Path, *args: str, stdin: bytes | None = None, check: bool = True):
    env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_CONFIG": str(daemon.root / "cfg"),
           "DOCKER_BUILDKIT": "0"}
    result = subprocess.run(["docker", "build", *args, str(context)], capture_output=True, env=env,
                            input=stdin, timeout=300)
    if check:
        assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    return result


def write(directory: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return directory


def inspect(daemon, name: str, template: str):
    return json.loads(out(docker(daemon, "image", "inspect", name, "--format", "{{json " + template + "}}")))


def leftovers(daemon) -> dict[str, int]:
    return {
        "containers": len(out(docker(daemon, "ps", "-aq")).split()),
        "mounts": sum(str(daemon.root) in line for line in Path("/proc/mounts").read_text().splitlines()
                      if "/containers/" in line or "/merged" in line),
        # a finished build's context is renamed .gone-* at once and deleted on a thread
        "build dirs": len([p for p in (daemon.data_root / "image" / "tmp").iterdir()
                           if not p.name.startswith(".gone-")]),
    }


NOTHING_LEFT = {"containers": 0, "mounts": 0, "build dirs": 0}


def test_multi_stage_build_of_a_static_app_into_scratch(daemon, tmp_path):
    context = write(tmp_path, {
        "Dockerfile": (
            "# syntax=docker/dockerfile:1\n"
            "FROM busybox AS builder\n"
            "WORKDIR /src\n"
            "COPY greet.sh .\n"
            "RUN mkdir -p /out/bin && cp /bin/busybox /out/bin/ \\\n"
            "    && sed 's/NAME/static app/' greet.sh > /out/greet.sh && chmod 755 /out/greet.sh\n"
            "FROM scratch\n"
            "COPY --from=builder /out/ /\n"
            'ENTRYPOINT ["/bin/busybox", "sh", "/greet.sh"]\n'
        ),
        "greet.sh": "echo hello from NAME\n",
    })
    result = build(daemon, context, "-t", "static-app:1")
    output = result.stdout.decode()
    assert "Step 1/7 : FROM busybox AS builder" in output
    assert "Successfully tagged static-app:1" in output
    image_id = inspect(daemon, "static-app:1", ".Id")
    assert f"Successfully built {image_id[7:19]}" in output
    assert len(inspect(daemon, "static-app:1", ".RootFS.Layers")) == 1  # scratch + one COPY
    assert out(docker(daemon, "run", "--rm", "static-app:1")) == "hello from static app"
    assert leftovers(daemon) == NOTHING_LEFT


def test_every_instruction_lands_in_the_image(daemon, tmp_path):
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("unpacked/inside.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"inside"))
    served = {"/remote.txt": b"from a loopback server\n"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = served.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/remote.txt"
    context = write(tmp_path, {
        "Dockerfile": (
            "ARG BASE=busybox\n"
            "FROM ${BASE}\n"
            "ARG FLAVOUR=plain\n"
            "ENV APP_HOME=/srv/app \\\n"
            "    GREETING=\"hi there\"\n"
            "LABEL org.example.flavour=$FLAVOUR maintainer=\"test suite\"\n"
            "EXPOSE 8080 53/udp\n"
            "WORKDIR $APP_HOME\n"
            "COPY --chown=1000:1000 --chmod=640 conf/*.conf ./conf/\n"
            "ADD bundle.tar.gz /opt/\n"
            f"ADD {url} /opt/remote.txt\n"
            "RUN echo \"$FLAVOUR $GREETING\" > built-with && echo app:x:1000:1000::/:/bin/sh >> /etc/passwd\n"
            "USER app\n"
            "VOLUME /data\n"
            "STOPSIGNAL SIGUSR1\n"
            "HEALTHCHECK --interval=5s --retries=2 CMD true\n"
            "SHELL [\"/bin/sh\", \"-ec\"]\n"
            "ONBUILD RUN echo child was built > /tmp/onbuild\n"
            "ENTRYPOINT [\"sh\", \"-c\"]\n"
            "CMD [\"cat built-with\"]\n"
        ),
        "conf/a.conf": "a=1\n",
        "conf/b.conf": "b=2\n",
        "conf/skip.txt": "not copied\n",
        "bundle.tar.gz": archive.getvalue(),
    })
    try:
        build(daemon, context, "-t", "every:1", "--build-arg", "FLAVOUR=spicy")
    finally:
        server.shutdown()
    config = inspect(daemon, "every:1", ".Config")
    assert "APP_HOME=/srv/app" in config["Env"] and "GREETING=hi there" in config["Env"]
    assert config["Labels"] == {"org.example.flavour": "spicy", "maintainer": "test suite"}
    assert set(config["ExposedPorts"]) == {"8080/tcp", "53/udp"}
    assert config["WorkingDir"] == "/srv/app" and config["User"] == "app"
    assert config["Volumes"] == {"/data": {}} and config["StopSignal"] == "SIGUSR1"
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000,
                                     "Retries": 2}
    assert config["OnBuild"] == ["RUN echo child was built > /tmp/onbuild"]
    assert config["Entrypoint"] == ["sh", "-c"] and config["Cmd"] == ["cat built-with"]
    assert "FLAVOUR" not in " ".join(config["Env"])  # build args are not kept
    assert out(docker(daemon, "run", "--rm", "every:1")) == "spicy hi there"
    listing = out(docker(daemon, "run", "--rm", "-u", "0", "every:1",
                         "stat -c '%n %u:%g %a' conf/* /opt/remote.txt; cat /opt/unpacked/inside.txt; "
                         "echo; cat /opt/remote.txt"))
    assert listing.splitlines() == ["conf/a.conf 1000:1000 640", "conf/b.conf 1000:1000 640",
                                    "/opt/remote.txt 0:0 600", "inside", "from a loopback server"]
    history = out(docker(daemon, "history", "--no-trunc", "--format", "{{.CreatedBy}}", "every:1"))
    assert "#(nop)  ENV APP_HOME=/srv/app GREETING=hi there" in history
    assert "|1 FLAVOUR=spicy /bin/sh -c echo" in history  # a RUN records the build args it saw

    child = write(tmp_path / "child", {"Dockerfile": "FROM every:1\nRUN test -f /tmp/onbuild\n"})
    built = build(daemon, child, "-t", "child:1").stdout.decode()
    assert "# Executing 1 build trigger" in built
    assert inspect(daemon, "child:1", ".Config.OnBuild") is None


def test_cache_reuses_steps_until_a_copied_file_changes(daemon, tmp_path):
    context = write(tmp_path, {
        "Dockerfile": (
            "FROM busybox\n"
            "RUN echo first > /first\n"
            "COPY stable.txt /stable.txt\n"
            "RUN echo second > /second\n"
            "COPY changing.txt /changing.txt\n"
            "RUN echo third > /third\n"
        ),
        "stable.txt": "stable\n",
        "changing.txt": "version 1\n",
    })
    first = build(daemon, context, "-t", "cached:1").stdout.decode()
    assert first.count("Running in") == 3
    again = build(daemon, context, "-t", "cached:1").stdout.decode()
    assert again.count("Using cache") == 5 and "Running in" not in again
    os.utime(context / "stable.txt", (1, 1))  # mtimes do not count
    assert "Running in" not in build(daemon, context, "-t", "cached:1").stdout.decode()

    (context / "changing.txt").write_text("version 2\n")
    changed = build(daemon, context, "-t", "cached:2").stdout.decode()
    steps = changed.split("Step ")[1:]
    assert ["Using cache" in step for step in steps] == [False, True, True, True, False, False]
    assert changed.count("Running in") == 1
    layers_1, layers_2 = inspect(daemon, "cached:1", ".RootFS.Layers"), inspect(daemon, "cached:2",
                                                                                  ".RootFS.Layers")
    assert layers_1[:4] == layers_2[:4] and layers_1[4:] != layers_2[4:]

    uncached = build(daemon, context, "-t", "cached:3", "--no-cache").stdout.decode()
    assert "Using cache" not in uncached and uncached.count("Running in") == 3

    daemon.stop()
    daemon.start()
    survived = build(daemon, context, "-t", "cached:2").stdout.decode()
    assert "Running in" not in survived  # the cache outlives the daemon


def test_a_failing_run_tags_nothing_and_leaves_nothing(daemon, tmp_path):
    context = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo about to fail && exit 3\n"})
    result = build(daemon, context, "-t", "failed:1", check=False)
    assert result.returncode == 3  # the docker CLI exits with the failed command's code
    assert "about to fail" in result.stdout.decode()
    assert "The command '/bin/sh -c echo about to fail && exit 3' returned a non-zero code: 3" in \
        result.stderr.decode()
    assert docker(daemon, "image", "inspect", "failed:1").returncode == 1
    assert leftovers(daemon) == NOTHING_LEFT


@pytest.mark.parametrize("dockerfile, files, expected", [
    ("FROM busybox\nFOO bar\n", {}, "Dockerfile parse error line 2: unknown instruction: FOO"),
    ("FROM busybox\nCOPY ../outside /x\n", {}, "Forbidden path outside the build context: ../outside"),
    ("FROM busybox\nCOPY missing.txt /x\n", {}, "missing.txt: file does not exist"),
    ("FROM busybox\nCOPY secret.txt /x\n", {"secret.txt": "s", ".dockerignore": "secret.txt\n"},
     "excluded by .dockerignore"),
    ("FROM busybox\nONBUILD ONBUILD RUN true\n", {}, "ONBUILD"),
    ("FROM busybox\n", {}, "failed to reach build target nowhere"),
])
def test_bad_builds_are_refused_clearly(daemon, tmp_path, dockerfile, files, expected):
    context = write(tmp_path, {"Dockerfile": dockerfile, **files})
    args = ["--target", "nowhere"] if "nowhere" in expected else []
    result = build(daemon, context, "-t", "refused:1", *args, check=False)
    assert result.returncode != 0
    assert expected in result.stderr.decode(), result.stderr.decode()
    assert docker(daemon, "image", "inspect", "refused:1").returncode == 1
    assert leftovers(daemon) == NOTHING_LEFT


def test_a_hostile_context_tar_is_refused(daemon):
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM busybox\n"), ("../../escaped", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(Exception) as refused:
        daemon.client().request("POST", "/build", {"t": "hostile:1"}, body=io.BytesIO(context.getvalue()))
    assert "escaped" in str(refused.value)
    assert not any(Path("/").glob("escaped"))
    assert leftovers(daemon) == NOTHING_LEFT


def test_dockerfile_from_outside_the_context_and_from_stdin(daemon, tmp_path):
    context = write(tmp_path / "ctx", {"data.txt": "context data\n"})
    elsewhere = write(tmp_path / "elsewhere", {"Build.docker": "FROM busybox\nCOPY data.txt /\n"})
    build(daemon, context, "-f", str(elsewhere / "Build.docker"), "-t", "outside:1")
    assert out(docker(daemon, "run", "--rm", "outside:1", "cat", "/data.txt")) == "context data"
    build(daemon, context, "-f", "-", "-t", "stdin:1", stdin=b"FROM busybox\nCOPY data.txt /from-stdin\n")
    assert out(docker(daemon, "run", "--rm", "stdin:1", "cat", "/from-stdin")) == "context data"


def test_docker_py_builds_with_args_and_target(daemon, tmp_path):
    import docker as docker_py

    context = write(tmp_path, {"Dockerfile": (
        "FROM busybox AS first\nARG WORD\nRUN echo $WORD > /word\n"
        "FROM first AS second\nRUN echo never > /never\n")})
    client = docker_py.DockerClient(base_url=daemon.host, timeout=300)
    image, logs = client.images.build(path=str(context), tag="py-built:1", buildargs={"WORD": "python"},
                                      target="first", rm=True)
    assert "py-built:1" in image.tags
    assert not any("never" in (entry.get("stream") or "") for entry in logs)
    assert client.containers.run("py-built:1", ["cat", "/word"], remove=True).decode().strip() == "python"
    client.close()


def test_removing_a_built_image_removes_its_intermediate_images(daemon, tmp_path):
    context = write(tmp_path, {"Dockerfile": "FROM busybox\nENV STEP=1\nRUN echo layer > /layer\nCMD sh\n"})
    before = set(out(docker(daemon, "images", "-aq", "--no-trunc")).split())
    build(daemon, context, "-t", "chain:1", "--no-cache")
    made = set(out(docker(daemon, "images", "-aq", "--no-trunc")).split()) - before
    assert len(made) == 3
    assert set(out(docker(daemon, "images", "-q", "--no-trunc")).split()) - before == \
        {inspect(daemon, "chain:1", ".Id")}  # intermediate images are listed with -a only
    removed = out(docker(daemon, "rmi", "chain:1"))
    assert removed.count("Deleted: ") == 3
    assert set(out(docker(daemon, "images", "-aq", "--no-trunc")).split()) == before


def test_our_cli_builds_with_ignore_file_quiet_and_iidfile(daemon, tmp_path):
    context = write(tmp_path / "ctx", {
        "Dockerfile": "FROM busybox\nCOPY . /ctx/\nRUN ls /ctx > /listing\n",
        "kept.txt": "kept", "secret.env": "never", ".dockerignore": "*.env\n",
    })
    iidfile = tmp_path / "iid"
    result = dockyard_cli("build", "-q", "-t", "ours:1", "--iidfile", str(iidfile), str(context),
                          host=daemon.host)
    image_id = inspect(daemon, "ours:1", ".Id")
    assert result.stdout.strip() == image_id and iidfile.read_text() == image_id
    listing = out(docker(daemon, "run", "--rm", "ours:1", "cat", "/listing")).split()
    assert "kept.txt" in listing and "secret.env" not in listing
    bad = write(tmp_path / "bad", {"Dockerfile": "FROM busybox\nRUN exit 3\n"})
    failing = dockyard_cli("build", str(bad), host=daemon.host, check=False)
    assert failing.returncode == 3  # the failed command's own code, as the docker CLI exits
    assert "returned a non-zero code: 3" in failing.stderr


def test_from_pulls_a_missing_base_and_pull_refreshes_it(daemon, tmp_path):
    from dockyard.plugin.testing.registry import RegistryServer, registry_binary

    if registry_binary() is None:
        pytest.skip("docker-registry is not installed (apt install docker-registry)")
    with RegistryServer() as registry:
        base = f"{registry.address}/base/busybox:1"
        docker(daemon, "tag", "busybox", base, check=True)
        docker(daemon, "push", base, check=True)
        docker(daemon, "rmi", base, check=True)
        context = write(tmp_path, {"Dockerfile": f"FROM {base}\nRUN echo pulled > /pulled\n"})
        first = build(daemon, context, "-t", "pulled-base:1").stdout.decode()
        assert "Pulling from base/busybox" in first and "Running in" in first
        again = build(daemon, context, "-t", "pulled-base:1", "--pull").stdout.decode()
        assert "Pulling from base/busybox" in again and "Image is up to date" in again
        assert "Running in" not in again  # the same base: the cache still holds
    docker(daemon, "rmi", "pulled-base:1", base, check=True)


def test_cache_from_limits_the_cache_and_empty_query_values_are_tolerated(daemon, tmp_path):
    context = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo cached-from > /x\n"})
    build(daemon, context, "-t", "source:1")
    limited = build(daemon, context, "-t", "other:1", "--cache-from", "other-image-that-is-not-here")
    assert "Running in" in limited.stdout.decode()  # the cache counts only that image's steps
    allowed = build(daemon, context, "-t", "other:1", "--cache-from", "source:1")
    assert "Running in" not in allowed.stdout.decode()

    body = io.BytesIO()
    with tarfile.open(fileobj=body, mode="w:gz") as tar:  # docker-py may send a gzipped context
        data = b"FROM busybox\nLABEL tolerated=yes\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    response = daemon.client().request("POST", "/build", {
        "t": "tolerant:1", "buildargs": "null", "labels": "{}", "cachefrom": "[]", "networkmode": "",
        "target": "", "platform": ""}, body=io.BytesIO(body.getvalue()), stream=True)
    messages = list(response.iter_json())
    assert not [m for m in messages if "error" in m], messages
    assert any("aux" in m for m in messages)
    assert inspect(daemon, "tolerant:1", ".Config.Labels") == {"tolerated": "yes"}


def test_a_build_killed_mid_run_leaves_nothing_after_restart(daemon, tmp_path):
    import signal
    import time

    context = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo started && sleep 4321\n"})
    env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_CONFIG": str(daemon.root / "cfg"),
           "DOCKER_BUILDKIT": "0"}
    building = subprocess.Popen(["docker", "build", "-t", "killed:1", str(context)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env)
    seen = b""
    deadline = time.monotonic() + 60
    while b"\nstarted\n" not in seen and time.monotonic() < deadline:  # the RUN's output, not its step line
        seen += building.stdout.read1(4096)
    assert b"\nstarted\n" in seen, seen
    daemon.process.send_signal(signal.SIGKILL)
    daemon.process.wait(10)
    building.wait(30)
    daemon.start()
    assert docker(daemon, "image", "inspect", "killed:1").returncode == 1
    assert leftovers(daemon) == NOTHING_LEFT
    sleepers = subprocess.run(["pgrep", "-f", "sleep 4321"], capture_output=True, text=True).stdout.split()
    assert sleepers == []


def test_docker_build_quiet_prints_only_the_image_id(daemon, tmp_path):
    context = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo noisy\nLABEL quiet=yes\n"})
    result = build(daemon, context, "-q", "-t", "quiet:1")
    assert result.stdout.decode().strip() == inspect(daemon, "quiet:1", ".Id")
    assert "noisy" not in result.stdout.decode()
