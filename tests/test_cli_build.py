"""`dockyard build`, the client side of POST /build (no root, no daemon).

A fake daemon (a UNIX-socket HTTP server thread) records the request our CLI sends (the
query, the headers, the context tar of the chunked body) and answers a canned JSON
message stream, so the tests check the context we pack, the parameters, the
X-Registry-Config header and how the answer is shown.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import socketserver
import stat
import tarfile
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from dockyard.cli import build as build_module
from dockyard.cli.app import cli

IMAGE_ID = "sha256:" + "2ebb607a198e" + "0" * 52
SUCCESS = [
    {"stream": "Step 1/2 : FROM busybox\n"},
    {"stream": " ---> 2ebb607a198e\n"},
    {"status": "Pulling from library/busybox", "id": "latest"},
    {"stream": "Step 2/2 : RUN true\n"},
    {"aux": {"ID": IMAGE_ID}},
    {"stream": "Successfully built 2ebb607a198e\n"},
    {"stream": "Successfully tagged x:latest\n"},
]


class FakeDaemon:
    """Answers every request with `status` and the JSON `messages`; keeps what it got."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.requests: list[dict] = []
        self.status = 200
        self.messages: list[dict] = SUCCESS
        self.handled = threading.Semaphore(0)  # released once per request fully handled
        daemon = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                try:
                    daemon._handle(self.rfile, self.wfile)
                finally:
                    daemon.handled.release()

        self._server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def _handle(self, rfile, wfile) -> None:
        method, target, _ = rfile.readline().decode("latin-1").split(" ", 2)
        headers = {}
        while (line := rfile.readline().decode("latin-1")) not in ("\r\n", "\n", ""):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        url = urlsplit(target)
        request = {"method": method, "path": url.path, "query": parse_qs(url.query),
                   "headers": headers, "body": b"", "complete": False}
        self.requests.append(request)
        body = []
        while True:
            size_line = rfile.readline()
            if not size_line.strip():
                return  # the client gave up mid-body: nothing is built
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                rfile.readline()
                break
            body.append(rfile.read(size))
            rfile.readline()
        request["body"] = b"".join(body)
        request["complete"] = True
        if self.status >= 400:
            payload = json.dumps({"message": "the daemon says no"}).encode()
            wfile.write(b"HTTP/1.1 %d Error\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (self.status, len(payload), payload))
            return
        wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
        for message in self.messages:
            wfile.write(json.dumps(message).encode() + b"\r\n")

    @property
    def last(self) -> dict:
        return self.requests[-1]

    def members(self) -> dict[str, tarfile.TarInfo]:
        with tarfile.open(fileobj=io.BytesIO(self.last["body"])) as tar:
            return {member.name: member for member in tar.getmembers()}

    def content(self, name: str) -> bytes:
        with tarfile.open(fileobj=io.BytesIO(self.last["body"])) as tar:
            return tar.extractfile(name).read()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def daemon(short_tmp):
    fake = FakeDaemon(short_tmp / "d.sock")
    yield fake
    fake.close()


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    directory = tmp_path / "docker-config"
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    return directory / "config.json"


@pytest.fixture
def run(daemon, docker_config):
    def invoke(*args: str, stdin: bytes | None = None):
        return CliRunner().invoke(cli, ["-H", f"unix://{daemon.path}", "build", *args], input=stdin)
    return invoke


@pytest.fixture
def context(tmp_path) -> Path:
    root = tmp_path / "ctx"
    root.mkdir()
    (root / "Dockerfile").write_text("FROM busybox\nRUN true\n")
    return root


# -- the context tar ----------------------------------------------------------------------

def test_the_context_tar_honours_dockerignore_and_keeps_modes_links_and_root_owners(run, daemon, context):
    (context / ".dockerignore").write_text("Dockerfile\n*.log\nbuild\n!build/keep\n")
    (context / "run.sh").write_text("#!/bin/sh\n")
    (context / "run.sh").chmod(0o751)
    (context / "secret.log").write_text("no")
    (context / "sub").mkdir()
    (context / "sub" / "data").write_text("data")
    (context / "link").symlink_to("sub/data")
    (context / "build").mkdir()
    (context / "build" / "junk").write_text("junk")
    (context / "build" / "keep").write_text("keep")

    result = run(str(context))

    assert result.exit_code == 0, result.output
    members = daemon.members()
    assert sorted(members) == [".dockerignore", "Dockerfile", "build", "build/keep", "link",
                               "run.sh", "sub", "sub/data"]
    assert daemon.content("Dockerfile") == b"FROM busybox\nRUN true\n"
    assert members["link"].issym() and members["link"].linkname == "sub/data"
    assert members["sub"].isdir()
    assert stat.S_IMODE(members["run.sh"].mode) == 0o751
    assert all(m.uid == 0 and m.gid == 0 and m.uname == "" and m.gname == "" for m in members.values())
    assert daemon.last["query"]["dockerfile"] == ["Dockerfile"]
    assert daemon.last["headers"]["content-type"] == "application/x-tar"


def test_a_large_context_streams_through_in_chunks(run, daemon, context):
    payload = os.urandom(3 << 20)
    (context / "big").write_bytes(payload)
    result = run(str(context))
    assert result.exit_code == 0, result.output
    assert daemon.content("big") == payload
    assert re.match(r"Sending build context to Docker daemon  3\.1\d\dMB\n", result.stdout)


def test_a_dockerfile_outside_the_context_travels_under_a_random_name(run, daemon, context, tmp_path):
    (context / "Dockerfile").unlink()
    (context / ".dockerignore").write_text("*.tmp\n")
    (context / "a.tmp").write_text("x")
    elsewhere = tmp_path / "elsewhere" / "Dockerfile.prod"
    elsewhere.parent.mkdir()
    elsewhere.write_text("FROM scratch\n")

    result = run("-f", str(elsewhere), str(context))

    assert result.exit_code == 0, result.output
    name = daemon.last["query"]["dockerfile"][0]
    assert name.startswith(".dockerfile.") and len(name) == len(".dockerfile.") + 20
    members = daemon.members()
    assert sorted(members) == sorted([".dockerignore", name])
    assert daemon.content(name) == b"FROM scratch\n"
    assert stat.S_IMODE(members[name].mode) == 0o600 and members[name].uid == 0
    assert daemon.content(".dockerignore") == f"*.tmp\n{name}\n".encode()


def test_a_dockerfile_from_stdin_gets_a_dockerignore_naming_it(run, daemon, context):
    (context / "Dockerfile").unlink()
    (context / "file").write_text("f")
    result = run("-f", "-", str(context), stdin=b"FROM scratch\nCOPY file /\n")
    assert result.exit_code == 0, result.output
    name = daemon.last["query"]["dockerfile"][0]
    assert name.startswith(".dockerfile.")
    assert daemon.content(name) == b"FROM scratch\nCOPY file /\n"
    assert daemon.content(".dockerignore") == f".dockerignore\n{name}\n".encode()
    assert "file" in daemon.members()


def test_dash_f_is_relative_to_the_current_directory_and_named_inside_the_context(
        run, daemon, context, monkeypatch):
    (context / "docker").mkdir()
    (context / "docker" / "Dockerfile.dev").write_text("FROM scratch\n")
    (context / ".dockerignore").write_text("docker\n")
    monkeypatch.chdir(context / "docker")
    result = run("-f", "Dockerfile.dev", "..")
    assert result.exit_code == 0, result.output
    assert daemon.last["query"]["dockerfile"] == ["docker/Dockerfile.dev"]
    assert sorted(daemon.members()) == [".dockerignore", "Dockerfile", "docker",
                                        "docker/Dockerfile.dev"]  # kept although ignored


def test_a_lowercase_dockerfile_is_found(run, daemon, context):
    (context / "Dockerfile").rename(context / "dockerfile")
    result = run(str(context))
    assert result.exit_code == 0, result.output
    assert daemon.last["query"]["dockerfile"] == ["dockerfile"]


def test_a_tar_on_stdin_is_sent_as_it_is(run, daemon):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("build/Dockerfile.x")
        info.size = 13
        tar.addfile(info, io.BytesIO(b"FROM scratch\n"))
    result = run("-f", "build/Dockerfile.x", "-", stdin=buffer.getvalue())
    assert result.exit_code == 0, result.output
    assert daemon.last["body"] == buffer.getvalue()
    assert daemon.last["query"]["dockerfile"] == ["build/Dockerfile.x"]


def test_a_compressed_tar_on_stdin_is_sent_as_it_is(run, daemon):
    import gzip

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = 13
        tar.addfile(info, io.BytesIO(b"FROM scratch\n"))
    compressed = gzip.compress(buffer.getvalue())
    result = run("-", stdin=compressed)
    assert result.exit_code == 0, result.output
    assert daemon.last["body"] == compressed
    assert "dockerfile" not in daemon.last["query"]


def test_a_dockerfile_on_stdin_is_a_build_with_an_empty_context(run, daemon):
    result = run("-", stdin=b"FROM busybox\nRUN echo hi\n")
    assert result.exit_code == 0, result.output
    assert list(daemon.members()) == ["Dockerfile"]
    assert daemon.content("Dockerfile") == b"FROM busybox\nRUN echo hi\n"
    assert daemon.last["query"]["dockerfile"] == ["Dockerfile"]


def test_stdin_cannot_be_both_context_and_dockerfile(run, daemon):
    result = run("-f", "-", "-", stdin=b"FROM scratch\n")
    assert result.exit_code == 2
    assert "can't use stdin for both build context and dockerfile" in result.output
    assert daemon.requests == []


def test_a_dockerfile_on_stdin_with_dash_f_is_ambiguous(run, daemon):
    result = run("-f", "Dockerfile", "-", stdin=b"FROM scratch\n")
    assert result.exit_code == 1
    assert "ambiguous Dockerfile source" in result.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_aborts_the_upload(run, daemon, context):
    (context / "private").write_text("x")
    (context / "private").chmod(0)
    result = run(str(context))
    assert result.exit_code == 1
    assert "error checking context: no permission to read from" in result.output
    assert daemon.handled.acquire(timeout=10)
    assert not daemon.last["complete"]  # the daemon never got a finished body


def test_a_failure_while_packing_never_finishes_the_body(run, daemon, context, monkeypatch):
    def failing(out, *args):
        out.write(b"\0" * 4096)
        raise OSError("disk on fire")

    monkeypatch.setattr(build_module, "write_context", failing)
    result = run(str(context))
    assert result.exit_code == 1
    assert "error checking context: disk on fire" in result.output
    assert daemon.handled.acquire(timeout=10)
    assert not daemon.last["complete"]


# -- errors before sending anything -------------------------------------------------------

def test_a_missing_context_directory(run, daemon, tmp_path):
    result = run(str(tmp_path / "nowhere"))
    assert result.exit_code == 1
    assert f'unable to prepare context: path "{tmp_path / "nowhere"}" not found' in result.output
    assert daemon.requests == []


def test_a_context_that_is_a_file(run, daemon, context):
    result = run(str(context / "Dockerfile"))
    assert result.exit_code == 1
    assert "unable to prepare context: context must be a directory" in result.output


def test_a_missing_dockerfile(run, daemon, context):
    (context / "Dockerfile").unlink()
    result = run(str(context))
    assert result.exit_code == 1
    assert (f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
            f"lstat {context / 'Dockerfile'}: no such file or directory") in result.output
    result = run("-f", "nope", str(context))
    assert "unable to prepare context" in result.output and "nope" in result.output
    assert daemon.requests == []


def test_a_bad_tag_is_refused(run, daemon, context):
    result = run("-t", "Bad:tag", str(context))
    assert result.exit_code == 2
    assert 'invalid argument "Bad:tag" for "-t, --tag" flag: invalid reference format' in result.output
    assert daemon.requests == []


# -- the request --------------------------------------------------------------------------

def test_the_query_carries_every_option(run, daemon, context, monkeypatch):
    monkeypatch.setenv("FROM_ENV", "env-value")
    monkeypatch.delenv("NOT_SET", raising=False)
    result = run("-t", "x:latest", "-t", "registry.example.com/team/x:1", "--build-arg", "A=1",
                 "--build-arg", "FROM_ENV", "--build-arg", "NOT_SET", "--label", "a=b", "--label", "flag",
                 "--target", "final", "--no-cache", "--pull", "--no-rm", "--force-rm", "--network", "host",
                 "--cache-from", "x:old", "--cache-from", "y", "--platform", "linux/amd64", str(context))
    assert result.exit_code == 0, result.output
    request = daemon.last
    assert request["method"] == "POST" and request["path"].endswith("/build")
    query = request["query"]
    assert query["t"] == ["x:latest", "registry.example.com/team/x:1"]
    assert json.loads(query["buildargs"][0]) == {"A": "1", "FROM_ENV": "env-value", "NOT_SET": None}
    assert json.loads(query["labels"][0]) == {"a": "b", "flag": ""}
    assert query["target"] == ["final"]
    assert query["nocache"] == ["1"] and query["pull"] == ["1"]
    assert query["rm"] == ["0"] and query["forcerm"] == ["1"]
    assert query["networkmode"] == ["host"]
    assert json.loads(query["cachefrom"][0]) == ["x:old", "y"]
    assert query["platform"] == ["linux/amd64"]
    assert "q" not in query


def test_the_defaults_send_only_rm(run, daemon, context):
    result = run(str(context))
    assert result.exit_code == 0, result.output
    assert daemon.last["query"] == {"rm": ["1"], "dockerfile": ["Dockerfile"]}


def test_config_proxies_become_build_args(run, daemon, context, docker_config):
    docker_config.parent.mkdir()
    docker_config.write_text(json.dumps({"proxies": {"default": {"httpProxy": "http://proxy:3128"}}}))
    result = run("--build-arg", "http_proxy=mine", str(context))
    assert result.exit_code == 0, result.output
    assert json.loads(daemon.last["query"]["buildargs"][0]) == {
        "http_proxy": "mine", "HTTP_PROXY": "http://proxy:3128"}


def test_x_registry_config_carries_every_stored_registry(run, daemon, context, docker_config):
    docker_config.parent.mkdir()
    docker_config.write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hubuser:hubpass").decode()},
        "registry.example.com": {"auth": base64.b64encode(b"me:secret").decode(),
                                 "identitytoken": "tok"},
        "empty.example.com": {},
    }}))
    result = run(str(context))
    assert result.exit_code == 0, result.output
    header = daemon.last["headers"]["x-registry-config"]
    assert json.loads(base64.urlsafe_b64decode(header)) == {
        "https://index.docker.io/v1/": {"username": "hubuser", "password": "hubpass",
                                        "serveraddress": "https://index.docker.io/v1/"},
        "registry.example.com": {"username": "me", "identitytoken": "tok",
                                 "serveraddress": "registry.example.com"},
    }


def test_x_registry_config_is_an_empty_object_without_credentials(run, daemon, context):
    assert run(str(context)).exit_code == 0
    assert base64.urlsafe_b64decode(daemon.last["headers"]["x-registry-config"]) == b"{}"


# -- the answer ---------------------------------------------------------------------------

def test_the_stream_is_printed_as_it_comes(run, daemon, context):
    result = run("-t", "x", str(context))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Sending build context to Docker daemon ")
    assert result.stdout.split("\n", 1)[1] == (
        "Step 1/2 : FROM busybox\n ---> 2ebb607a198e\nlatest: Pulling from library/busybox\n"
        "Step 2/2 : RUN true\nSuccessfully built 2ebb607a198e\nSuccessfully tagged x:latest\n")


def test_quiet_prints_only_the_image_id_and_iidfile_gets_it(run, daemon, context, tmp_path):
    iidfile = tmp_path / "iid"
    result = run("-q", "--iidfile", str(iidfile), str(context))
    assert result.exit_code == 0, result.output
    assert result.stdout == IMAGE_ID + "\n"
    assert daemon.last["query"]["q"] == ["1"]
    assert iidfile.read_text() == IMAGE_ID


def test_an_error_in_the_stream_exits_1_and_leaves_no_iidfile(run, daemon, context, tmp_path):
    daemon.messages = [{"stream": "Step 1/1 : FROM nothing\n"},
                       {"error": "pull access denied for nothing",
                        "errorDetail": {"message": "pull access denied for nothing"}}]
    iidfile = tmp_path / "iid"
    iidfile.write_text("stale")
    result = run("--iidfile", str(iidfile), str(context))
    assert result.exit_code == 1
    assert "Step 1/1 : FROM nothing\n" in result.stdout
    assert result.stderr == "pull access denied for nothing\n"
    assert not iidfile.exists()


def test_a_failed_run_exits_with_its_code_and_quiet_shows_the_output_on_stderr(run, daemon, context):
    failure = "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    daemon.messages = [{"stream": "Step 1/1 : RUN exit 3\n"},
                       {"error": failure, "errorDetail": {"code": 3, "message": failure}}]
    result = run("-q", str(context))
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == ("Step 1/1 : RUN exit 3\n"
                             "The command '/bin/sh -c exit 3' returned a non-zero code: 3\n")


def test_iidfile_without_an_image_id_is_an_error(run, daemon, context, tmp_path):
    daemon.messages = [{"stream": "Successfully built 2ebb607a198e\n"}]
    result = run("--iidfile", str(tmp_path / "iid"), str(context))
    assert result.exit_code == 1
    assert "Server did not provide an image ID" in result.output


def test_a_daemon_http_error(run, daemon, context):
    daemon.status = 400
    result = run(str(context))
    assert result.exit_code == 1
    assert "Error response from daemon: the daemon says no" in result.stderr


def test_the_build_commands_are_registered():
    assert CliRunner().invoke(cli, ["image", "build", "--help"]).exit_code == 0
    assert "build" in CliRunner().invoke(cli, ["--help"]).output
    assert build_module.build.name == "build"
