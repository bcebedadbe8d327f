"""A real dockyardd in a subprocess, on its own socket, data root and exec root."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.client import Client, DaemonUnreachable

START_TIMEOUT = 20.0


class DaemonStartFailed(Exception):
    pass


@dataclass
class DaemonProcess:
    root: Path
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    netns: str | None = None  # a named network namespace to run in (a test "host"), else this one
    process: subprocess.Popen | None = None

    @property
    def socket_path(self) -> Path:
        return self.root / "dockyard.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def data_root(self) -> Path:
        return self.root / "data"

    @property
    def exec_root(self) -> Path:
        return self.root / "exec"

    @property
    def pidfile(self) -> Path:
        return self.root / "dockyardd.pid"

    @property
    def log_path(self) -> Path:
        return self.root / "dockyardd.log"

    @property
    def bridge_name(self) -> str:
        """Each test daemon's default bridge has a name of its own, so daemons side by
        side (and a real dockyard0) never share one."""
        import hashlib

        return "dyb" + hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:8]

    def command(self) -> list[str]:
        config = self.root / "daemon.yaml"
        if not config.exists():
            config.write_text("")  # never pick up the host's /etc/dockyard/daemon.yaml
        bridge = [] if any(a in ("-b", "--bridge") or a.startswith("--bridge=") for a in self.extra_args) \
            else ["--bridge", self.bridge_name]
        inside = ["nsenter", f"--net=/run/netns/{self.netns}", "--"] if self.netns else []
        return [*inside, sys.executable, "-m", "dockyard.daemon", "-H", self.host,
                "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                "--pidfile", str(self.pidfile), "--config-file", str(config),
                *bridge, *self.extra_args]

    def remove_containers(self) -> None:
        """Force-remove every container, starting the daemon again if it is not running
        (a test that failed half-way may have killed it with containers still up)."""
        if not (self.data_root / "containers").is_dir() or not any((self.data_root / "containers").iterdir()):
            return
        started_here = self.process is None or self.process.poll() is not None
        if started_here:
            try:
                self.start()
            except DaemonStartFailed:
                return
        api = self.client()
        for container in api.get_json("/containers/json", {"all": 1}):
            api.request("DELETE", f"/containers/{container['Id']}", {"force": 1}).read()

    def teardown(self) -> None:
        """The end of a test daemon: stopped, its monitor zygote ended, its networks'
        kernel objects deleted. (Containers should be removed before.)"""
        from dockyard.monitor.client import Zygote

        self.stop()
        Zygote(self.exec_root).stop()
        self.scrub_networks()

    def scrub_networks(self) -> None:
        """Delete the kernel objects of every network this (stopped) daemon made, through
        the same drivers it used: a daemon keeps its networks, bridges and firewall
        tables across restarts, as Docker keeps docker0, so only a test's teardown ends them."""
        import json
        import logging

        from dockyard.daemon.pluginmanager import PluginManager
        from dockyard.plugin import DriverContext

        records = sorted((self.data_root / "networks").glob("*.json"))
        if not records or self.netns:  # a host's namespace takes its networks along when deleted
            return
        plugins = PluginManager().load_all()
        drivers = {}
        for spec in plugins.supported("network"):
            home = self.data_root / "network" / spec.name
            if not home.is_dir():
                continue
            try:
                drivers[spec.name] = spec.factory(DriverContext(
                    kind="network", name=spec.name, home=home, exec_root=self.exec_root,
                    logger=logging.getLogger("dockyard.plugin.testing.scrub")))
            except Exception:  # a driver that cannot start made nothing to scrub
                continue
        for record in records:
            network = json.loads(record.read_text())
            driver = drivers.get(network.get("driver"))
            if driver is not None:
                driver.delete_network(network["id"])
            record.unlink()

    def start(self, timeout: float = START_TIMEOUT) -> DaemonProcess:
        self.root.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "DOCKYARD_STRICT_PLUGINS": "1", **self.env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                        env=env, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DaemonStartFailed(
                    f"dockyardd exited with {self.process.returncode}:\n{self.log()}")
            try:
                self.client().request("GET", "/_ping").read()
                return self
            except DaemonUnreachable:
                time.sleep(0.05)
        self.kill()
        raise DaemonStartFailed(f"dockyardd did not answer within {timeout}s:\n{self.log()}")

    def client(self) -> Client:
        return Client(self.host, timeout=30)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not stop in time. Returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
