"""Container commands: run, create, start, stop, restart, kill, pause, unpause, rm, wait,
attach, logs, exec, ps, top, rename, inspect, and the `container` group.

Flags, output and exit codes follow the docker CLI: `run` exits with the container's
code, 125 when the daemon refuses, 126 when the command cannot be executed and 127
when it is not found.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import sys
import threading

import click

from dockyard.cli.common import api_errors, client, each_or_exit, filters_json, key_values, show_objects
from dockyard.cli.format import ago, human_size, table
from dockyard.client import APIError, DaemonUnreachable

# -- building the create request -------------------------------------------------------

def _size(value: str, flag: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([bkmg]?)b?", value.strip().lower())
    if not match:
        raise click.BadParameter(f"invalid size: {value!r}", param_hint=flag)
    return int(float(match.group(1)) * {"": 1, "b": 1, "k": 1024, "m": 1 << 20, "g": 1 << 30}[match.group(2)])


def _env(env: tuple[str, ...], env_files: tuple[str, ...]) -> list[str]:
    entries = []
    for path in env_files:
        try:
            lines = open(path).read().splitlines()
        except OSError as exc:
            raise click.BadParameter(f"{path}: {exc.strerror}", param_hint="--env-file") from None
        entries += [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    entries += list(env)
    result = []
    for entry in entries:
        if "=" in entry:
            result.append(entry)
        elif entry in os.environ:  # `-e NAME` passes the client's value, as docker does
            result.append(f"{entry}={os.environ[entry]}")
    return result


def _ulimits(values) -> list[dict]:
    result = []
    for value in values:
        name, sep, limits = value.partition("=")
        soft, _, hard = limits.partition(":")
        try:
            result.append({"Name": name, "Soft": int(soft), "Hard": int(hard or soft)})
        except ValueError:
            raise click.BadParameter(f"invalid ulimit {value!r}: use name=soft[:hard]",
                                     param_hint="--ulimit") from None
        if not sep:
            raise click.BadParameter(f"invalid ulimit {value!r}", param_hint="--ulimit")
    return result


def _duration_ns(value: str | None, flag: str) -> int:
    if not value:
        return 0
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", value)
    if not match:
        raise click.BadParameter(f"invalid duration {value!r} (e.g. 30s, 1m)", param_hint=flag)
    scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}[match.group(2)]
    return int(float(match.group(1)) * scale)


def _swap(value: str | None) -> int:
    if not value:
        return 0
    return -1 if value == "-1" else _size(value, "--memory-swap")


def _restart_policy(value: str) -> dict:
    name, _, count = value.partition(":")
    policy = {"Name": name or "no", "MaximumRetryCount": 0}
    if count:
        try:
            policy["MaximumRetryCount"] = int(count)
        except ValueError:
            raise click.BadParameter(f"invalid restart policy {value!r}", param_hint="--restart") from None
    return policy


def create_body(options: dict, image: str, command: tuple[str, ...]) -> tuple[dict, dict]:
    config = {
        "Image": image,
        "Cmd": list(command) or None,
        "Env": _env(options["env"], options["env_file"]),
        "Tty": options["tty"],
        "OpenStdin": options["interactive"],
        "StdinOnce": options["interactive"] and not options.get("detach", False),
        "AttachStdin": options["interactive"],
        "AttachStdout": not options.get("detach", False),
        "AttachStderr": not options.get("detach", False),
        "WorkingDir": options["workdir"] or "",
        "User": options["user"] or "",
        "Hostname": options["hostname"] or "",
        "Labels": key_values(options["label"], "--label"),
    }
    if options["entrypoint"] is not None:
        config["Entrypoint"] = [options["entrypoint"]] if options["entrypoint"] else [""]
    if options["stop_signal"]:
        config["StopSignal"] = options["stop_signal"]
    if options["stop_timeout"] is not None:
        config["StopTimeout"] = options["stop_timeout"]
    if options["no_healthcheck"]:
        config["Healthcheck"] = {"Test": ["NONE"]}
    elif options["health_cmd"]:
        config["Healthcheck"] = {
            "Test": ["CMD-SHELL", options["health_cmd"]],
            "Interval": _duration_ns(options["health_interval"], "--health-interval"),
            "Timeout": _duration_ns(options["health_timeout"], "--health-timeout"),
            "StartPeriod": _duration_ns(options["health_start_period"], "--health-start-period"),
            "Retries": options["health_retries"] or 0,
        }
    host_config = {
        "AutoRemove": options.get("rm", False),
        "NetworkMode": options["network"] or "default",
        "RestartPolicy": _restart_policy(options["restart"] or "no"),
        "Privileged": options["privileged"],
        "CapAdd": list(options["cap_add"]) or None,
        "CapDrop": list(options["cap_drop"]) or None,
        "SecurityOpt": list(options["security_opt"]) or None,
        "ReadonlyRootfs": options["read_only"],
        "Init": True if options["init"] else None,
        "Sysctls": key_values(options["sysctl"], "--sysctl") or None,
        "Ulimits": _ulimits(options["ulimit"]) or None,
        "Memory": _size(options["memory"], "--memory") if options["memory"] else 0,
        "MemorySwap": _swap(options["memory_swap"]),
        "NanoCpus": int(float(options["cpus"]) * 1e9) if options["cpus"] else 0,
        "CpuShares": options["cpu_shares"] or 0,
        "CpusetCpus": options["cpuset_cpus"] or "",
        "PidsLimit": options["pids_limit"],
        "BlkioWeight": options["blkio_weight"] or 0,
        "ShmSize": _size(options["shm_size"], "--shm-size") if options["shm_size"] else 0,
        "Runtime": options["runtime"] or "",
        "ExtraHosts": list(options["add_host"]) or None,
        "Dns": list(options["dns"]) or None,
        "DnsSearch": list(options["dns_search"]) or None,
        "LogConfig": {"Type": options["log_driver"] or "json-file",
                      "Config": key_values(options["log_opt"], "--log-opt")},
    }
    exposed, bindings = _published_ports(options["publish"], options["expose"])
    if exposed:
        config["ExposedPorts"] = exposed
    host_config["PortBindings"] = bindings or None
    host_config["PublishAllPorts"] = options["publish_all"]
    if options["mac_address"]:
        config["MacAddress"] = options["mac_address"]
    endpoint = {}
    if options["ip"]:
        endpoint["IPAMConfig"] = {"IPv4Address": options["ip"]}
    if options["network_alias"]:
        endpoint["Aliases"] = list(options["network_alias"])
    if options["mac_address"]:
        endpoint["MacAddress"] = options["mac_address"]
    if endpoint:
        network = options["network"] or "bridge"
        config["NetworkingConfig"] = {"EndpointsConfig": {network: endpoint}}
    _mount_flags(options, config, host_config)
    return config, host_config


def _mount_flags(options: dict, config: dict, host_config: dict) -> None:
    """-v, --mount, --tmpfs and --volumes-from as the docker CLI sends them: -v with a source
    goes to Binds ("./x" made absolute), `-v /path` alone to Config.Volumes, --mount as
    structured HostConfig.Mounts objects; the daemon checks the rest."""
    from dockyard.formats.mountspec import MountSpecError, parse_mount_flag, split_volume_flags

    try:
        binds, volumes = split_volume_flags(options.get("volume") or ())
    except MountSpecError as exc:
        raise click.BadParameter(str(exc), param_hint="--volume") from None
    mounts = []
    for value in options.get("mount") or ():
        try:
            mounts.append(parse_mount_flag(value))
        except MountSpecError as exc:
            raise click.BadParameter(str(exc), param_hint="--mount") from None
    tmpfs = {}
    for value in options.get("tmpfs") or ():
        destination, _, tmpfs_options = value.partition(":")
        tmpfs[destination] = tmpfs_options
    if volumes:  # the docker CLI sends {} when empty; Docker's merge with the image makes it null
        config["Volumes"] = volumes
    host_config["Binds"] = binds or None
    if mounts:  # Go leaves out an empty Mounts and Tmpfs (omitempty)
        host_config["Mounts"] = mounts
    if tmpfs:
        host_config["Tmpfs"] = tmpfs
    host_config["VolumesFrom"] = list(options.get("volumes_from") or ()) or None


def _port_range(text: str, what: str) -> list[int]:
    low, _, high = text.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        raise click.BadParameter(f"invalid {what}: {text}", param_hint="--publish") from None
    if not (0 < first <= last < 65536):
        raise click.BadParameter(f"invalid {what}: {text}", param_hint="--publish")
    return list(range(first, last + 1))


def _published_ports(publish: tuple[str, ...], expose: tuple[str, ...]) -> tuple[dict, dict]:
    """Docker's -p forms: [ip:][hostPort:]containerPort[/proto], each port may be a range."""
    exposed: dict[str, dict] = {}
    bindings: dict[str, list[dict]] = {}
    for value in expose:
        ports, _, protocol = value.partition("/")
        for port in _port_range(ports, "port"):
            exposed[f"{port}/{protocol or 'tcp'}"] = {}
    for value in publish:
        spec, _, protocol = value.partition("/")
        protocol = protocol or "tcp"
        parts = spec.rsplit(":", 2)
        host_ip, host_ports, container_ports = "", "", parts[-1]
        if len(parts) == 2:
            host_ports = parts[0]
        elif len(parts) == 3:
            host_ip, host_ports = parts[0], parts[1]
        targets = _port_range(container_ports, "containerPort")
        hosts = _port_range(host_ports, "hostPort") if host_ports else []
        if hosts and len(hosts) != len(targets) and len(targets) != 1:
            raise click.BadParameter(f"invalid ranges in {value!r}: the host and container ranges must be "
                                     "of equal size", param_hint="--publish")
        for index, port in enumerate(targets):
            key = f"{port}/{protocol}"
            exposed[key] = {}
            if not hosts:
                host_port = ""
            elif len(targets) == 1 and len(hosts) > 1:
                host_port = f"{hosts[0]}-{hosts[-1]}"
            else:
                host_port = str(hosts[index])
            bindings.setdefault(key, []).append({"HostIp": host_ip, "HostPort": host_port})
    return exposed, bindings


def container_options(function):
    """The flags `docker create` and `docker run` share."""
    decorators = [
        click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open."),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY."),
        click.option("--name", help="Assign a name to the container."),
        click.option("-e", "--env", multiple=True, help="Set environment variables."),
        click.option("--env-file", multiple=True, help="Read in a file of environment variables."),
        click.option("-w", "--workdir", help="Working directory inside the container."),
        click.option("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])."),
        click.option("--entrypoint", default=None, help="Overwrite the default ENTRYPOINT."),
        click.option("-h", "--hostname", help="Container host name."),
        click.option("-l", "--label", multiple=True, help="Set meta data on a container."),
        click.option("--stop-signal", help="Signal to stop the container."),
        click.option("--stop-timeout", type=int, default=None, help="Timeout (in seconds) to stop."),
        click.option("--restart", help="Restart policy: no, always, on-failure[:max], unless-stopped."),
        click.option("--network", "--net", "network", help="Connect a container to a network."),
        click.option("--ip", help="IPv4 address (e.g., 172.30.100.104)."),
        click.option("--network-alias", multiple=True, help="Add network-scoped alias for the container."),
        click.option("--mac-address", help="Container MAC address (e.g., 92:d0:c6:0a:29:33)."),
        click.option("-p", "--publish", multiple=True, help="Publish a container's port(s) to the host."),
        click.option("-P", "--publish-all", is_flag=True, help="Publish all exposed ports to random ports."),
        click.option("--expose", multiple=True, help="Expose a port or a range of ports."),
        click.option("-m", "--memory", help="Memory limit."),
        click.option("--memory-swap", help="Swap limit equal to memory plus swap: -1 for unlimited."),
        click.option("--cpus", help="Number of CPUs."),
        click.option("-c", "--cpu-shares", type=int, help="CPU shares (relative weight)."),
        click.option("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)."),
        click.option("--pids-limit", type=int, default=None, help="Tune container pids limit."),
        click.option("--blkio-weight", type=int, help="Block IO weight (10-1000)."),
        click.option("--privileged", is_flag=True, help="Give extended privileges."),
        click.option("--cap-add", multiple=True, help="Add Linux capabilities."),
        click.option("--cap-drop", multiple=True, help="Drop Linux capabilities."),
        click.option("--security-opt", multiple=True, help="Security options."),
        click.option("--read-only", is_flag=True, help="Mount the root filesystem read only."),
        click.option("--init", is_flag=True, help="Run an init inside the container."),
        click.option("--shm-size", help="Size of /dev/shm."),
        click.option("--sysctl", multiple=True, help="Sysctl options."),
        click.option("--ulimit", multiple=True, help="Ulimit options (name=soft[:hard])."),
        click.option("--runtime", help="Runtime to use for this container."),
        click.option("--health-cmd", help="Command to run to check health."),
        click.option("--health-interval", help="Time between running the check (e.g. 30s)."),
        click.option("--health-timeout", help="Maximum time to allow one check to run."),
        click.option("--health-retries", type=int, help="Consecutive failures needed to report unhealthy."),
        click.option("--health-start-period", help="Start period for the container to initialize."),
        click.option("--no-healthcheck", is_flag=True, help="Disable any container-specified HEALTHCHECK."),
        click.option("--log-driver", help="Logging driver (json-file)."),
        click.option("--log-opt", multiple=True, help="Log driver options (max-size=10m, max-file=3)."),
        click.option("--add-host", multiple=True, help="Add a custom host-to-IP mapping (host:ip)."),
        click.option("--dns", multiple=True, help="Set custom DNS servers."),
        click.option("--dns-search", multiple=True, help="Set custom DNS search domains."),
        click.option("-v", "--volume", multiple=True, help="Bind mount a volume."),
        click.option("--mount", multiple=True, help="Attach a filesystem mount to the container."),
        click.option("--tmpfs", multiple=True, help="Mount a tmpfs directory."),
        click.option("--volumes-from", multiple=True, help="Mount volumes from the specified container(s)."),
        click.option("--pull", "pull_policy", type=click.Choice(["always", "missing", "never"]),
                     default="missing", show_default=True, help="Pull image before creating."),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


# -- streams ---------------------------------------------------------------------------

def _check_detach_keys(text: str | None) -> None:
    from dockyard.formats.detachkeys import DetachKeysError, parse_detach_keys

    try:
        parse_detach_keys(text)
    except DetachKeysError as exc:
        raise click.UsageError(str(exc)) from None

class _RawTerminal:
    """The local terminal in raw mode while attached to a container's TTY."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stdin.isatty()
        self._saved = None

    def __enter__(self) -> _RawTerminal:
        if self.enabled:
            import termios
            import tty

            self._saved = termios.tcgetattr(sys.stdin.fileno())
            tty.setraw(sys.stdin.fileno())
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved)


def pump(sock: socket.socket, tty: bool, send_stdin: bool, detach_keys: str | None = None) -> bool:
    """Copy the stream to stdout/stderr (demultiplexed unless TTY) and stdin to the
    stream. Returns False when the user detached with the detach keys."""
    from dockyard.formats.detachkeys import EscapeFilter, parse_detach_keys

    detached = threading.Event()
    stdout, stderr = sys.stdout.buffer, sys.stderr.buffer
    escape = EscapeFilter(parse_detach_keys(detach_keys))

    def forward_stdin() -> None:
        try:
            while True:
                data = os.read(sys.stdin.fileno(), 65536)
                if not data:
                    sock.sendall(escape.flush())
                    break
                forward, leaving = escape.feed(data)
                if forward:
                    sock.sendall(forward)
                if leaving:
                    detached.set()
                    sock.shutdown(socket.SHUT_RDWR)
                    return
        except OSError:
            return
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    if send_stdin:
        threading.Thread(target=forward_stdin, daemon=True).start()
    buffer = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            if tty:
                stdout.write(data)
                stdout.flush()
                continue
            buffer += data
            while len(buffer) >= 8:
                stream, length = struct.unpack(">BxxxI", buffer[:8])
                if len(buffer) < 8 + length:
                    break
                target = stderr if stream == 2 else stdout
                target.write(buffer[8:8 + length])
                target.flush()
                buffer = buffer[8 + length:]
    except OSError:
        pass
    finally:
        sock.close()
    return not detached.is_set()


def _resize(ctx, path: str) -> None:
    if not sys.stdout.isatty():
        return
    size = os.get_terminal_size()
    try:
        client(ctx).request("POST", path, {"h": size.lines, "w": size.columns}).read()
    except (APIError, DaemonUnreachable):
        pass


def _run_exit_code(message: str) -> int:
    """The docker CLI's rule for `run` when the container could not start."""
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 125


def _create_container(api, image: str, options: dict, body: dict) -> dict:
    """POST /containers/create under Docker's --pull policy: `always` pulls first,
    `missing` pulls when the daemon has no such image and then creates again, `never`
    does neither. Pull progress goes to stderr; daemon errors raise APIError."""
    from dockyard.cli.registries import pull_image
    from dockyard.formats.reference import InvalidReference, parse_normalized

    try:
        tagged = parse_normalized(image).with_default_tag().familiar()
    except InvalidReference:
        tagged = image  # the daemon says what is wrong with it
    policy = options.get("pull_policy") or "missing"
    if policy == "always":
        pull_image(api, tagged, out=sys.stderr)
    try:
        return api.request("POST", "/containers/create", {"name": options["name"]}, body=body).json()
    except APIError as exc:
        if policy != "missing" or exc.status != 404 or "No such image" not in exc.message:
            raise
    click.echo(f"Unable to find image '{tagged}' locally", err=True)
    pull_image(api, tagged, out=sys.stderr)
    return api.request("POST", "/containers/create", {"name": options["name"]}, body=body).json()


# -- commands --------------------------------------------------------------------------

@click.command("create", context_settings={"ignore_unknown_options": False})
@container_options
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def create(ctx, image, command, **options):
    """Create a new container."""
    config, host_config = create_body(options, image, command)
    with api_errors():
        created = _create_container(client(ctx), image, options, {**config, "HostConfig": host_config})
    click.echo(created["Id"])


@click.command("run", context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run container in background and print container ID.")
@click.option("--rm", is_flag=True, help="Automatically remove the container when it exits.")
@click.option("--detach-keys", help="Override the key sequence for detaching a container.")
@container_options
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run(ctx, image, command, detach, rm, detach_keys, **options):
    """Create and run a new container from an image."""
    _check_detach_keys(detach_keys)
    options.update(detach=detach, rm=rm)
    if detach and rm and options.get("restart"):
        raise click.UsageError("conflicting options: --restart and --rm")
    config, host_config = create_body(options, image, command)
    api = client(ctx)
    try:
        created = _create_container(api, image, options, {**config, "HostConfig": host_config})
    except APIError as exc:
        click.echo(f"dockyard: Error response from daemon: {exc.message}", err=True)
        sys.exit(125)
    except DaemonUnreachable as exc:
        click.echo(str(exc), err=True)
        sys.exit(125)
    container_id = created["Id"]
    if detach:
        try:
            api.request("POST", f"/containers/{container_id}/start").read()
        except APIError as exc:
            click.echo(f"dockyard: Error response from daemon: {exc.message}", err=True)
            sys.exit(_run_exit_code(exc.message))
        click.echo(container_id)
        return
    tty, interactive = options["tty"], options["interactive"]
    sock, _ = api.hijack("POST", f"/containers/{container_id}/attach",
                         {"stream": 1, "stdin": int(interactive), "stdout": 1, "stderr": 1,
                          "detachKeys": detach_keys or ""})
    waiter = api.request("POST", f"/containers/{container_id}/wait",
                         {"condition": "removed" if rm else "next-exit"}, stream=True)
    result: dict = {}
    waiting = threading.Thread(target=lambda: result.update(waiter.json() or {}), daemon=True)
    waiting.start()
    try:
        api.request("POST", f"/containers/{container_id}/start").read()
    except APIError as exc:
        sock.close()
        click.echo(f"dockyard: Error response from daemon: {exc.message}", err=True)
        waiting.join(30)
        sys.exit(_run_exit_code(exc.message))
    if tty:
        _resize(ctx, f"/containers/{container_id}/resize")
    with _RawTerminal(tty and interactive):
        attached = pump(sock, tty, interactive, detach_keys)
    if not attached:
        click.echo("\r\nread escape sequence", err=True)
        return
    waiting.join()
    error = (result.get("Error") or {}).get("Message")
    if error:
        click.echo(error, err=True)
    sys.exit(int(result.get("StatusCode", 125)))


@click.command("start")
@click.option("-a", "--attach", is_flag=True, help="Attach STDOUT/STDERR and forward signals.")
@click.option("-i", "--interactive", is_flag=True, help="Attach container's STDIN.")
@click.option("--detach-keys", help="Override the key sequence for detaching a container.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def start(ctx, attach, interactive, detach_keys, names):
    """Start one or more stopped containers."""
    _check_detach_keys(detach_keys)
    api = client(ctx)
    if not attach and not interactive:
        each_or_exit(names, lambda n: api.request("POST", f"/containers/{n}/start").read())
        return
    name = names[0]
    with api_errors():
        info = api.get_json(f"/containers/{name}/json")
        tty = bool(info["Config"]["Tty"])
        sock, _ = api.hijack("POST", f"/containers/{name}/attach",
                             {"stream": 1, "stdin": int(interactive), "stdout": 1, "stderr": 1,
                              "detachKeys": detach_keys or ""})
        waiter = api.request("POST", f"/containers/{name}/wait", {"condition": "next-exit"}, stream=True)
        api.request("POST", f"/containers/{name}/start").read()
    with _RawTerminal(tty and interactive):
        if not pump(sock, tty, interactive, detach_keys):
            click.echo("\r\nread escape sequence", err=True)
            return
    sys.exit(int((waiter.json() or {}).get("StatusCode", 0)))


@click.command("stop")
@click.option("-t", "--time", "timeout", type=int, default=None, help="Seconds to wait before killing.")
@click.option("-s", "--signal", "signal_name", help="Signal to send to the container.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def stop(ctx, timeout, signal_name, names):
    """Stop one or more running containers."""
    api = client(ctx)
    each_or_exit(names, lambda n: api.request("POST", f"/containers/{n}/stop",
                                            {"t": timeout, "signal": signal_name}).read())


@click.command("restart")
@click.option("-t", "--time", "timeout", type=int, default=None)
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def restart(ctx, timeout, names):
    """Restart one or more containers."""
    api = client(ctx)
    each_or_exit(names, lambda n: api.request("POST", f"/containers/{n}/restart", {"t": timeout}).read())


@click.command("kill")
@click.option("-s", "--signal", "signal_name", default="KILL", help="Signal to send to the container.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def kill(ctx, signal_name, names):
    """Kill one or more running containers."""
    api = client(ctx)
    each_or_exit(names, lambda n: api.request("POST", f"/containers/{n}/kill",
                                              {"signal": signal_name}).read())


@click.command("pause")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def pause(ctx, names):
    """Pause all processes within one or more containers."""
    api = client(ctx)
    each_or_exit(names, lambda n: api.request("POST", f"/containers/{n}/pause").read())


@click.command("unpause")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def unpause(ctx, names):
    """Unpause all processes within one or more containers."""
    api = client(ctx)
    each_or_exit(names, lambda n: api.request("POST", f"/containers/{n}/unpause").read())


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Force the removal of a running container.")
@click.option("-v", "--volumes", is_flag=True, help="Remove anonymous volumes associated with the container.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm(ctx, force, volumes, names):
    """Remove one or more containers."""
    api = client(ctx)
    each_or_exit(names, lambda n: api.request("DELETE", f"/containers/{n}",
                                            {"force": int(force), "v": int(volumes)}).read())


@click.command("wait")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def wait(ctx, names):
    """Block until one or more containers stop, then print their exit codes."""
    api = client(ctx)
    each_or_exit(names, lambda n: click.echo(
        api.request("POST", f"/containers/{n}/wait", stream=True).json()["StatusCode"]),
        success=lambda name: None)


@click.command("rename")
@click.argument("container")
@click.argument("new_name")
@click.pass_context
def rename(ctx, container, new_name):
    """Rename a container."""
    with api_errors():
        client(ctx).request("POST", f"/containers/{container}/rename", {"name": new_name}).read()


@click.command("attach")
@click.option("--no-stdin", is_flag=True, help="Do not attach STDIN.")
@click.option("--detach-keys", help="Override the key sequence for detaching a container.")
@click.argument("container")
@click.pass_context
def attach(ctx, no_stdin, detach_keys, container):
    """Attach local standard input, output, and error streams to a running container."""
    _check_detach_keys(detach_keys)
    api = client(ctx)
    with api_errors():
        info = api.get_json(f"/containers/{container}/json")
        if not info["State"]["Running"]:
            raise APIError(409, "You cannot attach to a stopped container, start it first")
        tty = bool(info["Config"]["Tty"])
        stdin = bool(info["Config"]["OpenStdin"]) and not no_stdin
        sock, _ = api.hijack("POST", f"/containers/{container}/attach",
                             {"stream": 1, "stdin": int(stdin), "stdout": 1, "stderr": 1,
                              "detachKeys": detach_keys or ""})
    if tty:
        _resize(ctx, f"/containers/{container}/resize")
    with _RawTerminal(tty and stdin):
        if not pump(sock, tty, stdin, detach_keys):
            click.echo("\r\nread escape sequence", err=True)
            return
    with api_errors():
        state = api.get_json(f"/containers/{container}/json")["State"]
    sys.exit(0 if state["Running"] else state["ExitCode"])


@click.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Follow log output.")
@click.option("--since", help="Show logs since timestamp or relative (e.g. 42m).")
@click.option("--until", help="Show logs before a timestamp or relative (e.g. 42m).")
@click.option("-n", "--tail", default="all", help="Number of lines to show from the end of the logs.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.argument("container")
@click.pass_context
def logs(ctx, follow, since, until, tail, timestamps, container):
    """Fetch the logs of a container."""
    from dockyard.cli.system import to_api_timestamp

    api = client(ctx)
    with api_errors():
        info = api.get_json(f"/containers/{container}/json")
        response = api.request("GET", f"/containers/{container}/logs", {
            "stdout": 1, "stderr": 1, "follow": int(follow), "tail": tail,
            "timestamps": int(timestamps),
            "since": to_api_timestamp(since) if since else None,
            "until": to_api_timestamp(until) if until else None}, stream=True)
    tty = bool(info["Config"]["Tty"])
    buffer = b""
    try:
        for chunk in response.iter_chunks():
            if tty:
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
                continue
            buffer += chunk
            while len(buffer) >= 8:
                stream, length = struct.unpack(">BxxxI", buffer[:8])
                if len(buffer) < 8 + length:
                    break
                target = sys.stderr.buffer if stream == 2 else sys.stdout.buffer
                target.write(buffer[8:8 + length])
                target.flush()
                buffer = buffer[8 + length:]
    except KeyboardInterrupt:
        pass


@click.command("exec", context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Detached mode: run command in the background.")
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY.")
@click.option("-e", "--env", multiple=True, help="Set environment variables.")
@click.option("-w", "--workdir", help="Working directory inside the container.")
@click.option("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>]).")
@click.option("--privileged", is_flag=True, help="Give extended privileges to the command.")
@click.option("--detach-keys", help="Override the key sequence for detaching a container.")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def exec_command(ctx, detach, interactive, tty, env, workdir, user, privileged, detach_keys, container,
                 command):
    """Execute a command in a running container."""
    _check_detach_keys(detach_keys)
    api = client(ctx)
    body = {"AttachStdin": interactive and not detach, "AttachStdout": not detach,
            "AttachStderr": not detach, "Tty": tty, "Cmd": list(command), "Env": _env(env, ()),
            "WorkingDir": workdir or "", "User": user or "", "Privileged": privileged,
            "DetachKeys": detach_keys or ""}
    with api_errors():
        exec_id = api.request("POST", f"/containers/{container}/exec", body=body).json()["Id"]
        if detach:
            api.request("POST", f"/exec/{exec_id}/start", body={"Detach": True, "Tty": tty}).read()
            return
        sock, _ = api.hijack("POST", f"/exec/{exec_id}/start", body={"Detach": False, "Tty": tty})
    if tty:
        _resize(ctx, f"/exec/{exec_id}/resize")
    with _RawTerminal(tty and interactive):
        if not pump(sock, tty, interactive, detach_keys):
            click.echo("\r\nread escape sequence", err=True)
            return
    with api_errors():
        result = api.get_json(f"/exec/{exec_id}/json")
    code = result.get("ExitCode")
    sys.exit(code if code is not None else 126)


def _ports_text(ports: list[dict]) -> str:
    """docker ps's PORTS column: 0.0.0.0:8080->80/tcp, or 80/tcp when only exposed."""
    shown = []
    for entry in sorted(ports, key=lambda e: (e.get("PrivatePort", 0), e.get("Type", ""))):
        target = f"{entry['PrivatePort']}/{entry['Type']}"
        shown.append(f"{entry['IP']}:{entry['PublicPort']}->{target}" if entry.get("PublicPort") else target)
    return ", ".join(shown)


@click.command("ps")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers (default: running).")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs.")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes.")
@click.option("-n", "--last", type=int, default=-1, help="Show n last created containers.")
@click.option("-l", "--latest", is_flag=True, help="Show the latest created container.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions.")
@click.option("--format", "output_format", help="json, or a Python format string with {ID}, {Names}...")
@click.pass_context
def ps(ctx, show_all, quiet, size, last, latest, no_trunc, filters, output_format):
    """List containers."""
    limit = 1 if latest else last
    with api_errors():
        listed = client(ctx).get_json("/containers/json", {
            "all": int(show_all or limit > 0), "size": int(size), "limit": limit if limit > 0 else None,
            "filters": filters_json(filters)})
    if quiet:
        if listed:
            click.echo("\n".join(c["Id"] if no_trunc else c["Id"][:12] for c in listed))
        return
    if output_format == "json":
        for container in listed:
            click.echo(json.dumps(container))
        return
    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")
            + (("SIZE",) if size else ())]
    for container in listed:
        command = container["Command"]
        if not no_trunc and len(command) > 20:
            command = command[:19] + "…"
        fields = {"ID": container["Id"] if no_trunc else container["Id"][:12],
                  "Image": container["Image"], "Command": f'"{command}"',
                  "CreatedAt": ago(container["Created"]), "Status": container["Status"],
                  "Ports": _ports_text(container.get("Ports") or []),
                  "Names": ",".join(n.lstrip("/") for n in container["Names"])}
        if output_format:
            click.echo(output_format.format(**fields))
            continue
        row = (fields["ID"], fields["Image"], fields["Command"], fields["CreatedAt"], fields["Status"],
               fields["Ports"], fields["Names"])
        if size:
            row += (human_size(container.get("SizeRw", 0)),)
        rows.append(row)
    if not output_format:
        click.echo(table(rows))


@click.command("top")
@click.argument("container")
@click.argument("ps_args", nargs=-1)
@click.pass_context
def top(ctx, container, ps_args):
    """Display the running processes of a container."""
    with api_errors():
        result = client(ctx).get_json(f"/containers/{container}/top",
                                      {"ps_args": " ".join(ps_args) or None})
    click.echo(table([tuple(result["Titles"])] + [tuple(row) for row in result["Processes"]]))


@click.command("inspect")
@click.option("-f", "--format", "output_format", help="A Python format string over the object's fields.")
@click.option("--type", "kind", type=click.Choice(["container", "image"]), default=None)
@click.option("-s", "--size", is_flag=True, help="Display total file sizes if the type is container.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect(ctx, output_format, kind, size, names):
    """Return low-level information on containers or images."""
    api = client(ctx)
    found, failed = [], False
    for name in names:
        for candidate in ([kind] if kind else ["container", "image"]):
            path = f"/containers/{name}/json" if candidate == "container" else f"/images/{name}/json"
            try:
                found.append(api.get_json(path, {"size": int(size)} if candidate == "container" else None))
                break
            except APIError as exc:
                if exc.status != 404:
                    click.echo(f"Error response from daemon: {exc.message}", err=True)
                    failed = True
                    break
            except DaemonUnreachable as exc:
                click.echo(str(exc), err=True)
                sys.exit(1)
        else:
            click.echo(f"Error: No such object: {name}", err=True)
            failed = True
    show_objects(found, output_format)
    if failed:
        sys.exit(1)


@click.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (e.g. until=<timestamp>).")
@click.pass_context
def prune(ctx, force, filters):
    """Remove all stopped containers."""
    if not force and not click.confirm("WARNING! This will remove all stopped containers.\n"
                                       "Are you sure you want to continue?", default=False):
        return
    with api_errors():
        report = client(ctx).request("POST", "/containers/prune", {"filters": filters_json(filters)}).json()
    deleted = report.get("ContainersDeleted") or []
    if deleted:
        click.echo("Deleted Containers:")
        click.echo("\n".join(deleted))
        click.echo()
    click.echo(f"Total reclaimed space: {human_size(report.get('SpaceReclaimed', 0))}")


container = click.Group("container", help="Manage containers.")
for _command, _name in ((create, "create"), (run, "run"), (start, "start"), (stop, "stop"),
                        (restart, "restart"), (kill, "kill"), (pause, "pause"), (unpause, "unpause"),
                        (rm, "rm"), (wait, "wait"), (rename, "rename"), (attach, "attach"),
                        (logs, "logs"), (exec_command, "exec"), (ps, "ls"), (top, "top"),
                        (inspect, "inspect"), (prune, "prune")):
    container.add_command(_command, _name)
