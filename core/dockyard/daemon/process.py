"""`dockyardd`: the daemon process. Flags, the data-root lock, listeners, signals.

Start-up is all or nothing: every step that can fail (configuration, lock, plugins,
drivers, sockets) runs before the first request is served, and a failure undoes the
steps before it, so a daemon that cannot serve leaves no socket, pid file or lock.
"""

from __future__ import annotations

import errno
import fcntl
import grp
import logging
import os
import signal
import socket
import ssl
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import click

from dockyard import __version__
from dockyard.daemon.config import DEFAULT_CONFIG_FILE, ConfigError, DaemonConfig, build_config

log = logging.getLogger("dockyard.daemon")

LOCK_FILE = "dockyard.lock"
_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
               "error": logging.ERROR, "fatal": logging.CRITICAL}


class StartError(Exception):
    """The daemon cannot start; the message tells the operator what to do."""


# -- listeners ---------------------------------------------------------------------

def parse_host(address: str) -> tuple[str, str, int]:
    """`unix:///run/x.sock` -> ("unix", path, 0); `tcp://host:port` -> ("tcp", host, port)."""
    parts = urlsplit(address)
    if parts.scheme == "unix":
        path = parts.path or (parts.netloc and "/" + parts.netloc)
        if not path or not path.startswith("/"):
            raise StartError(f"invalid host {address!r}: use unix:///absolute/path.sock")
        return "unix", path, 0
    if parts.scheme == "tcp":
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None:
            raise StartError(f"invalid host {address!r}: use tcp://ADDRESS:PORT")
        return "tcp", parts.hostname, port
    raise StartError(f"invalid host {address!r}: use unix:///path.sock or tcp://ADDRESS:PORT")


def _tls_context(config: DaemonConfig, address: str) -> ssl.SSLContext:
    missing = [flag for flag, value in (("--tlsverify", config.tlsverify),
                                        ("--tlscacert", config.tlscacert),
                                        ("--tlscert", config.tlscert),
                                        ("--tlskey", config.tlskey)) if not value]
    if missing:
        raise StartError(
            f"refusing to listen on {address} without mutual TLS: anyone who reaches "
            f"that port would be root on this host; add {' '.join(missing)}"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(config.tlscert, config.tlskey)
        context.load_verify_locations(config.tlscacert)
    except (OSError, ssl.SSLError) as exc:
        raise StartError(f"cannot load TLS files for {address}: {exc}") from None
    return context


def _clear_stale_socket(path: str, address: str) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    import stat

    if not stat.S_ISSOCK(mode):
        raise StartError(f"cannot listen on {address}: {path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # left by a daemon that died without cleaning up
        return
    finally:
        probe.close()
    raise StartError(
        f"cannot listen on {address}: another daemon is serving on that socket; "
        f"stop it or choose another -H"
    )


def _socket_gid(group: str) -> int | None:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return None


def open_listeners(config: DaemonConfig, dispatcher, stack: ExitStack) -> list:
    from dockyard.api import server

    listeners = []
    for address in config.hosts:
        scheme, host, port = parse_host(address)
        try:
            if scheme == "unix":
                _clear_stale_socket(host, address)
                Path(host).parent.mkdir(parents=True, exist_ok=True)
                gid = _socket_gid(config.group)
                if gid is None and config.group != "dockyard":
                    raise StartError(f"group {config.group!r} (-G) does not exist on this host")
                listener = server.bind_unix(address, host, dispatcher, gid=gid)
            else:
                context = _tls_context(config, address)
                listener = server.bind_tls(address, host, port, dispatcher, context)
        except OSError as exc:
            hint = " ; choose a writable path with -H" if scheme == "unix" else ""
            if exc.errno == errno.EADDRINUSE:
                hint = "; another process listens there"
            raise StartError(f"cannot listen on {address}: {exc.strerror}{hint}") from None
        stack.callback(listener.close)
        listeners.append(listener)
    return listeners


# -- data root lock and pid file -----------------------------------------------------

def lock_data_root(config: DaemonConfig, stack: ExitStack) -> None:
    root = config.data_root_path
    try:
        root.mkdir(mode=0o711, parents=True, exist_ok=True)
        config.exec_root_path.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StartError(f"cannot use data root {root}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StartError(
            f"data root {root} is in use by another dockyardd (pid {holder}); "
            f"stop that daemon first, or start this one with another --data-root"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    stack.callback(os.close, fd)  # closing the descriptor releases the lock


def write_pidfile(path: str, stack: ExitStack) -> None:
    pidfile = Path(path)
    try:
        other = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        other = None
    if other and other != os.getpid() and Path(f"/proc/{other}").exists():
        raise StartError(
            f"pid file {path} names a running process ({other}): is another dockyardd "
            f"using it? Stop it, or give this daemon its own --pidfile"
        )
    try:
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        pidfile.write_text(f"{os.getpid()}\n")
    except OSError as exc:
        raise StartError(f"cannot write pid file {path}: {exc.strerror}") from None
    stack.callback(pidfile.unlink, missing_ok=True)


# -- the process ---------------------------------------------------------------------

def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=_LOG_LEVELS[level],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # libraries' own debug output (every netlink message) would drown the daemon's
    for noisy in ("pyroute2", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, _LOG_LEVELS[level]))


def run(config: DaemonConfig, reload_config=None) -> None:
    """Start, serve until SIGTERM or SIGINT, then stop. Raises StartError on start-up."""
    from dockyard.api.app import make_dispatcher
    from dockyard.daemon.engine import Engine, EngineStartError
    from dockyard.daemon.pluginmanager import PluginError, PluginManager

    stop = threading.Event()
    reload_wanted = threading.Event()
    with ExitStack() as stack:
        lock_data_root(config, stack)
        strict = config.strict_plugins or os.environ.get("DOCKYARD_STRICT_PLUGINS") == "1"
        try:
            plugins = PluginManager(strict=strict).load_all()
            engine = Engine(config, plugins)
            engine.start()
        except (PluginError, EngineStartError) as exc:
            raise StartError(str(exc)) from None
        stack.callback(engine.shutdown)
        listeners = open_listeners(config, make_dispatcher(engine), stack)
        write_pidfile(config.pidfile, stack)

        def on_stop(signum, frame):
            stop.set()

        def on_hup(signum, frame):
            reload_wanted.set()
            stop.set()  # wake the main loop, which tells the two apart

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)
        for listener in listeners:
            listener.start()
            log.info("API listen on %s", listener.address)
        log.info("dockyardd %s started (storage driver: %s)", __version__,
                 engine.storage_driver_name or "none")
        while True:
            # A signal may be delivered to any thread, and Python runs its handler only
            # when the main thread executes: wake up now and then so it always does.
            while not stop.wait(0.2):
                pass
            if reload_wanted.is_set():
                reload_wanted.clear()
                stop.clear()
                _reload(engine, reload_config)
                continue
            break
        log.info("shutting down")
        engine.events.close()  # end open event streams before their listeners go
    log.info("stopped")


def _reload(engine, reload_config) -> None:
    if reload_config is None:
        return
    try:
        config = reload_config()
    except ConfigError as exc:
        log.error("configuration not reloaded: %s", exc)
        return
    configure_logging(config.log_level)
    engine.reload(config)
    log.info("configuration reloaded")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-H", "--host", "hosts", multiple=True,
              help="Socket to listen on: unix:///path.sock or tcp://ADDR:PORT (needs TLS).")
@click.option("--data-root", help="Where images, containers and volumes live.")
@click.option("--exec-root", help="Where runtime state lives (cleared on reboot).")
@click.option("-p", "--pidfile", help="Path of the pid file.")
@click.option("-G", "--group", help="Group owning the UNIX socket.")
@click.option("-s", "--storage-driver", help="Storage driver (default: auto).")
@click.option("--storage-opt", "storage_opts", multiple=True, help="Storage driver option key=value.")
@click.option("--default-runtime", help="Runtime for containers that do not name one.")
@click.option("-b", "--bridge", help="Linux bridge of the default bridge network (default dockyard0).")
@click.option("--bip", help="Address and prefix of the default bridge, e.g. 172.17.0.1/16.")
@click.option("--registry-opt", "registry_opts", multiple=True,
              help="Registry client option key=value (connect-timeout, read-timeout, ...).")
@click.option("--insecure-registry", "insecure_registries", multiple=True,
              help="Registry (host:port or CIDR) reached over plain HTTP.")
@click.option("--registry-mirror", "registry_mirrors", multiple=True,
              help="Mirror URL tried before Docker Hub.")
@click.option("--max-concurrent-downloads", type=int, default=None,
              help="Layer downloads at once, across all pulls (default 3).")
@click.option("--max-concurrent-uploads", type=int, default=None,
              help="Layer uploads at once per push (default 5).")
@click.option("--cluster-store", help="Store shared by a cluster's daemons: etcd://HOST:PORT[,...][/PREFIX].")
@click.option("--cluster-advertise", help="Address (or interface) other hosts reach this one at.")
@click.option("--cluster-store-opt", "cluster_store_opts", multiple=True,
              help="Cluster store option key=value (kv.cacertfile, kv.certfile, kv.keyfile, discovery.ttl).")
@click.option("--config-file", default=None, help=f"YAML configuration (default {DEFAULT_CONFIG_FILE}).")
@click.option("-l", "--log-level", type=click.Choice(list(_LOG_LEVELS)), default=None)
@click.option("-D", "--debug", is_flag=True, default=None, help="Debug logging.")
@click.option("--tlsverify", is_flag=True, default=None, help="Require client certificates.")
@click.option("--tlscacert", help="CA that signs client certificates.")
@click.option("--tlscert", help="Server certificate.")
@click.option("--tlskey", help="Server key.")
@click.option("--label", "labels", multiple=True, help="Daemon label key=value.")
@click.option("--strict-plugins", is_flag=True, default=None,
              help="Fail instead of skipping a plugin that does not load.")
@click.version_option(__version__, "-v", "--version", prog_name="dockyardd")
def main(config_file: str | None, **flags) -> None:
    """Run the dockyard daemon."""
    if flags.get("debug"):
        flags["log_level"] = flags.get("log_level") or "debug"
    path = config_file or DEFAULT_CONFIG_FILE

    def load() -> DaemonConfig:
        return build_config(path, config_file is not None, flags)

    try:
        config = load()
    except ConfigError as exc:
        click.echo(f"dockyardd: {exc}", err=True)
        sys.exit(1)
    configure_logging(config.log_level)
    try:
        for address in config.hosts:
            parse_host(address)
        run(config, reload_config=load)
    except StartError as exc:
        click.echo(f"dockyardd: failed to start: {exc}", err=True)
        sys.exit(1)

