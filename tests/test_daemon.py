"""dockyardd as a process: start-up that is all or nothing, the lock, signals, sockets."""

from __future__ import annotations

import os
import signal
import socket
import stat
import time

from conftest import run_daemon_expecting_failure
from dockyard.client import Client


def leftovers(daemon) -> list[str]:
    return [str(p) for p in (daemon.socket_path, daemon.pidfile) if p.exists()]


def test_daemon_serves_on_a_0660_socket_and_stops_cleanly_on_sigterm(make_daemon):
    daemon = make_daemon().start()
    mode = stat.S_IMODE(os.stat(daemon.socket_path).st_mode)
    assert mode == 0o660
    assert int(daemon.pidfile.read_text()) == daemon.process.pid
    assert daemon.stop() == 0
    assert leftovers(daemon) == []
    assert "stopped" in daemon.log()


def test_a_second_daemon_on_the_same_data_root_is_refused(make_daemon, short_tmp):
    first = make_daemon("first").start()
    second = make_daemon("second")
    second.extra_args = ("--data-root", str(first.data_root))
    message = run_daemon_expecting_failure(second)
    assert f"data root {first.data_root} is in use by another dockyardd (pid {first.process.pid})" \
        in message
    assert "start this one with another --data-root" in message
    assert leftovers(second) == []
    first.client().request("GET", "/_ping").read()  # the first one is untouched


def test_the_lock_is_released_by_a_daemon_that_failed_to_start(make_daemon):
    failing = make_daemon("x", "--storage-driver", "zfs")
    message = run_daemon_expecting_failure(failing)
    assert "storage driver 'zfs' not found; installed:" in message
    assert "pip install dockyard-storage-zfs?" in message
    assert leftovers(failing) == []
    again = make_daemon("y", root=failing.root)
    again.start()  # same data root, now free


def test_a_driver_that_cannot_work_here_is_refused_with_its_reason(make_daemon):
    message = run_daemon_expecting_failure(make_daemon("a", "--storage-driver", "example-unusable"))
    assert ("storage driver 'example-unusable' cannot be used here: needs the example kernel "
            "feature") in message


def test_plain_tcp_is_refused(make_daemon):
    daemon = make_daemon("a", "-H", "tcp://127.0.0.1:23750")
    message = run_daemon_expecting_failure(daemon)
    assert "refusing to listen on tcp://127.0.0.1:23750 without mutual TLS" in message
    assert "--tlsverify --tlscacert --tlscert --tlskey" in message
    assert leftovers(daemon) == []


def test_malformed_config_file_is_reported(make_daemon):
    daemon = make_daemon()
    daemon.root.mkdir(parents=True)
    (daemon.root / "daemon.yaml").write_text("labels: [a\nstorage-driver: vfs\n")
    message = run_daemon_expecting_failure(daemon)
    assert "daemon.yaml is not valid YAML" in message
    assert not daemon.data_root.exists()  # nothing was created before the config was read


def test_unwritable_socket_path_is_reported(make_daemon):
    daemon = make_daemon("a", "-H", "unix:///proc/dockyard-test/api.sock")
    message = run_daemon_expecting_failure(daemon)
    assert "cannot listen on unix:///proc/dockyard-test/api.sock" in message
    assert not daemon.pidfile.exists()


def test_a_stale_socket_is_replaced_but_a_live_one_is_not(make_daemon, short_tmp):
    first = make_daemon("first")
    first.root.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(first.socket_path))
    stale.close()  # the file stays, nobody listens
    first.start()

    second = make_daemon("second")
    second.extra_args = ("-H", first.host)
    message = run_daemon_expecting_failure(second)
    assert "another daemon is serving on that socket" in message
    first.client().request("GET", "/_ping").read()


def test_a_regular_file_in_the_socket_path_is_not_removed(make_daemon):
    daemon = make_daemon()
    daemon.root.mkdir(parents=True)
    daemon.socket_path.write_text("precious")
    message = run_daemon_expecting_failure(daemon)
    assert "exists and is not a socket" in message
    assert daemon.socket_path.read_text() == "precious"


def test_sighup_reloads_labels_and_emits_a_reload_event(make_daemon):
    daemon = make_daemon().start()
    client = daemon.client()
    assert client.get_json("/info")["Labels"] == []
    since = f"{time.time() - 1:.9f}"
    (daemon.root / "daemon.yaml").write_text("labels: [tier=gold]\n")
    daemon.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while client.get_json("/info")["Labels"] != ["tier=gold"]:
        assert time.monotonic() < deadline, daemon.log()
        time.sleep(0.05)
    events = Client(daemon.host).request(
        "GET", "/events", {"since": since, "until": f"{time.time():.9f}"}, stream=True)
    actions = [(e["Type"], e["Action"]) for e in events.iter_json()]
    assert ("daemon", "reload") in actions


def test_a_bad_reload_keeps_the_running_configuration(make_daemon):
    daemon = make_daemon().start()
    (daemon.root / "daemon.yaml").write_text("no-such-setting: 1\n")
    daemon.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "configuration not reloaded" not in daemon.log():
        assert time.monotonic() < deadline, daemon.log()
        time.sleep(0.05)
    assert "no-such-setting" in daemon.log()
    daemon.client().request("GET", "/_ping").read()


def test_storage_driver_choice_is_recorded_and_never_switched(make_daemon):
    daemon = make_daemon()
    daemon.data_root.mkdir(parents=True)
    (daemon.data_root / "storage-driver").write_text("example-unusable\n")
    message = run_daemon_expecting_failure(make_daemon("b", "--storage-driver", "vfs",
                                                       root=daemon.root))
    assert "holds images of storage driver 'example-unusable', not 'vfs'" in message
    assert "start with --storage-driver example-unusable" in message
    message = run_daemon_expecting_failure(make_daemon("c", root=daemon.root))
    assert "was set up with storage driver 'example-unusable', which cannot be used" in message


def test_the_first_start_records_the_storage_driver(make_daemon):
    daemon = make_daemon("first", "--storage-driver", "vfs").start()
    assert (daemon.data_root / "storage-driver").read_text() == "vfs\n"
    daemon.stop()
    again = make_daemon("again", root=daemon.root).start()  # no flag: the record decides
    assert again.client().get_json("/info")["Driver"] == "vfs"
