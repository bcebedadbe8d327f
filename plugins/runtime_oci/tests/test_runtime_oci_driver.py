"""What OciRuntime promises beyond the Runtime contract: the exact command lines, the
runtime's own words in errors (with advice), and `failure_message` for the monitor."""

import json
import re
import subprocess
from pathlib import Path

import pytest
from dockyard.plugin import ContainerNotFound, RuntimeFailure
from dockyard.plugin.testing.runtime import RuntimeSuite
from dockyard_runtime_oci.driver import OciRuntime, read_error_log


def test_read_error_log_takes_the_last_error_and_skips_warnings(tmp_path):
    log = tmp_path / "runtime.json"
    log.write_text("\n".join([
        json.dumps({"level": "error", "msg": "first failure", "time": "t"}),
        json.dumps({"level": "warning", "msg": "just a warning", "time": "t"}),
        json.dumps({"level": "error", "msg": "the failure", "time": "t"}),
        json.dumps({"level": "info", "msg": "cleanup done", "time": "t"}),
        "",
    ]))
    assert read_error_log(log) == "the failure"
    assert read_error_log(tmp_path / "absent.json") is None


def test_a_missing_binary_says_what_to_install(tmp_path):
    runtime = OciRuntime("runc", str(tmp_path / "no-runc-here"), tmp_path / "root", tmp_path / "logs")
    with pytest.raises(RuntimeFailure, match="apt-get install runc"):
        runtime.state("some-container")
    with pytest.raises(RuntimeFailure, match="cannot run"):
        runtime.version()


def test_ids_are_checked_before_they_become_paths(tmp_path):
    runtime = OciRuntime("runc", "/bin/false", tmp_path / "root", tmp_path / "logs")
    for bad in ("../escape", "a/b", ""):
        with pytest.raises(RuntimeFailure, match="invalid container id"):
            runtime.state(bad)
        with pytest.raises(RuntimeFailure, match="invalid container id"):
            runtime.create_command(bad, tmp_path, tmp_path / "pid")


class TestRuncDriver:
    """Real runc, with the conformance suite's fixtures (they skip where runc cannot run)."""

    runtime_name = "runc"
    runtime = RuntimeSuite.runtime
    harness = RuntimeSuite.harness

    def test_command_lines_use_the_private_root_and_a_json_log(self, harness, tmp_path):
        runtime = harness.runtime
        root = str(harness.exec_root / "runtime" / "runc")
        create = runtime.create_command("c1", tmp_path / "bundle", tmp_path / "pid",
                                        console_socket=tmp_path / "console.sock")
        assert create[1:7] == ["--root", root, "--log", str(runtime.log_file("c1")),
                               "--log-format", "json"]
        assert create[7:] == ["create", "--bundle", str(tmp_path / "bundle"),
                              "--pid-file", str(tmp_path / "pid"),
                              "--console-socket", str(tmp_path / "console.sock"), "c1"]
        exec_argv = runtime.exec_command("c1", tmp_path / "process.json", tmp_path / "exec.pid")
        assert exec_argv[1:3] == ["--root", root]
        assert exec_argv[7:] == ["exec", "--detach", "--process", str(tmp_path / "process.json"),
                                 "--pid-file", str(tmp_path / "exec.pid"), "c1"]

    def test_version_is_the_number_on_the_first_line(self, harness):
        first_line = subprocess.run(["runc", "--version"], capture_output=True, text=True,
                                    check=True).stdout.splitlines()[0]
        version = harness.runtime.version()
        assert re.fullmatch(r"\d+\.\d+\.\d+\S*", version), version
        assert first_line.endswith(version)

    def test_a_failed_create_is_explained_by_failure_message(self, harness):
        container = harness.bundle("/bin/no-such-program")
        assert harness.create(container, expect_success=False).returncode != 0
        message = harness.runtime.failure_message(container.container_id)
        assert message and "/bin/no-such-program" in message and "no such file" in message
        harness.runtime.delete(container.container_id)
        assert harness.runtime.failure_message(container.container_id) is None

    def test_errors_carry_runcs_words_and_advice(self, harness):
        container = harness.running("sleep", "1000")
        with pytest.raises(RuntimeFailure) as refused:
            harness.runtime.delete(container.container_id)
        assert str(refused.value) == (
            f"runc delete {container.container_id}: cannot delete container "
            f"{container.container_id} that is not stopped: running "
            "(stop it first, or delete it with force)")
        with pytest.raises(RuntimeFailure, match="container not paused"):
            harness.runtime.resume(container.container_id)

    def test_unknown_ids_name_the_root_they_were_looked_for_in(self, harness):
        with pytest.raises(ContainerNotFound) as raised:
            harness.runtime.kill("never-created", 15)
        assert str(harness.exec_root / "runtime" / "runc") in str(raised.value)
        assert "runc says: container does not exist" in str(raised.value)

    def test_no_temporary_files_stay_in_the_log_dir(self, harness):
        container = harness.running("sleep", "1000")
        harness.runtime.update(container.container_id, {"memory": {"limit": 64 * 1024 * 1024}})
        harness.runtime.state(container.container_id)
        with pytest.raises(ContainerNotFound):
            harness.runtime.state("never-created")
        left = sorted(path.name for path in Path(harness.runtime.log_dir).iterdir())
        assert left == [f"{container.container_id}.json"], left
