"""`dockyard build`: the client side of Docker's classic builder API (POST /build).

This module owns what the docker CLI does around a classic build, and nothing of the
build itself (that is the daemon's):

- the context: a directory packed into a tar by a thread writing into a pipe, so that it
  streams and is never held whole in memory; .dockerignore applies (through
  dockyard.formats.dockerignore), the Dockerfile and .dockerignore stay in even when
  ignored, modes, mtimes (whole seconds) and symlinks are kept and owners reset to root,
  as the docker CLI does. `PATH -` reads a tar (plain or compressed) from stdin, or a
  bare Dockerfile, sniffed from its first 512 bytes.
- the Dockerfile: `-f` is relative to the current directory; one inside the context is
  named by its context-relative path, one outside it (or `-f -`, stdin) travels in the
  tar as `.dockerfile.<random hex>`, added to the context's .dockerignore so COPY never
  sees it.
- the request: the query (`t`, `dockerfile`, `buildargs`, `labels`, ...), the
  X-Registry-Config header with the credentials of every registry in config.json.
- the answer: the JSON message stream shown as it comes (dockyard.cli.progress draws pull
  progress), the image ID taken from the `aux` message for `-q` and `--iidfile`; an error
  in the stream is printed to stderr and exits with its code (1 when it has none).
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TextIO

import click

from dockyard.cli.common import api_errors, client, key_values
from dockyard.cli.progress import ProgressDisplay
from dockyard.cli.registries import load_config, stored_credentials
from dockyard.client import DaemonUnreachable
from dockyard.formats.dockerignore import DOCKERIGNORE, BadPattern, IgnoreMatcher, load, walk

DEFAULT_DOCKERFILE = "Dockerfile"
CLIENT_DOCKERFILE_PREFIX = ".dockerfile."  # the docker CLI's name for a Dockerfile it adds
_ARCHIVE_HEADER_SIZE = 512
# gzip, bzip2, xz, zstd: what the docker CLI's archive sniffing recognises
_COMPRESSED_MAGIC = (b"\x1f\x8b\x08", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")
_PROXY_ARGS = {"httpProxy": "HTTP_PROXY", "httpsProxy": "HTTPS_PROXY", "noProxy": "NO_PROXY",
               "ftpProxy": "FTP_PROXY", "allProxy": "ALL_PROXY"}


def _prepare_error(message: str) -> click.ClickException:
    return click.ClickException(f"unable to prepare context: {message}")


def _size(count: int) -> str:
    """go-units HumanSize (four significant digits), as the upload progress shows it."""
    size, units = float(count), ("B", "kB", "MB", "GB", "TB", "PB")
    index = 0
    while size >= 1000 and index < len(units) - 1:
        size /= 1000
        index += 1
    return f"{size:.4g}{units[index]}"


# -- finding the context and the Dockerfile ------------------------------------------------

def local_context(path: str, dockerfile: str | None) -> tuple[Path, str | None]:
    """The context directory (symlinks resolved) and the Dockerfile's path relative to it
    (`../...` when it lies outside; None for `-f -`). Errors are the docker CLI's."""
    if not os.path.exists(path):
        raise _prepare_error(f'path "{path}" not found')
    root = os.path.realpath(path)
    if not os.path.isdir(root):
        raise _prepare_error(f"context must be a directory: {root}")
    if dockerfile == "-":
        return Path(root), None
    if dockerfile:
        candidate = os.path.abspath(dockerfile)  # relative to where the user is, not the context
    else:
        candidate = os.path.join(root, DEFAULT_DOCKERFILE)
        lower = os.path.join(root, DEFAULT_DOCKERFILE.lower())
        if not os.path.lexists(candidate) and os.path.lexists(lower):
            candidate = lower
    try:
        resolved = os.path.realpath(candidate, strict=True)
    except OSError as exc:
        raise _prepare_error(f"unable to evaluate symlinks in Dockerfile path: lstat {candidate}: "
                             f"{(exc.strerror or str(exc)).lower()}") from None
    if not os.path.isfile(resolved):
        raise _prepare_error(f"the Dockerfile {candidate} is not a regular file")
    return Path(root), os.path.relpath(resolved, root)


def _is_outside(relative: str) -> bool:
    return relative == ".." or relative.startswith("../")


def is_archive(head: bytes) -> bool:
    """Whether the first bytes of stdin start a tar (plain or compressed), not a Dockerfile."""
    import tarfile

    if head.startswith(_COMPRESSED_MAGIC):
        return True
    if len(head) < _ARCHIVE_HEADER_SIZE:
        return False
    try:
        tarfile.TarInfo.frombuf(head[:_ARCHIVE_HEADER_SIZE], tarfile.ENCODING, "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def _read_up_to(stream: BinaryIO, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


class _Prefixed:
    """`head` then the rest of `stream`: stdin after sniffing its first bytes."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if self._head:
            data, self._head = self._head, b""
            return data
        return self._stream.read(size)

    def close(self) -> None:
        pass


def stdin_context(stdin: BinaryIO, dockerfile: str | None) -> tuple[object, str | None]:
    """The body and `dockerfile` parameter for `PATH -`: a tar passes through as it is
    (`-f` names a file inside it); anything else is a Dockerfile with an empty context."""
    import io

    head = _read_up_to(stdin, _ARCHIVE_HEADER_SIZE)
    if is_archive(head):
        return _Prefixed(head, stdin), dockerfile
    if dockerfile:
        raise _prepare_error("ambiguous Dockerfile source: both stdin and flag correspond to Dockerfiles")
    return io.BytesIO(_single_file_tar(DEFAULT_DOCKERFILE, head + stdin.read(), 0o644)), DEFAULT_DOCKERFILE


def _single_file_tar(name: str, content: bytes, mode: int) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add_bytes(tar, name, content, mode)
    return buffer.getvalue()


# -- packing a directory -------------------------------------------------------------------

def _add_bytes(tar, name: str, content: bytes, mode: int, mtime: int | None = None) -> None:
    import io
    import tarfile
    import time

    info = tarfile.TarInfo(name)
    info.size = len(content)
    info.mode = mode
    info.mtime = int(time.time()) if mtime is None else mtime
    tar.addfile(info, io.BytesIO(content))


def write_context(out: BinaryIO, root: Path, matcher: IgnoreMatcher, keep: tuple[str, ...],
                  dockerfile: tuple[str, bytes] | None = None) -> None:
    """Write the context tar of the directory `root` to `out`: the paths `walk` keeps, each
    with its mode, mtime (in whole seconds) and symlink target, owned by 0:0. An added
    `dockerfile` (name, content) goes in too, and its name into .dockerignore."""
    import tarfile

    ignore_written = False
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for relative in walk(root, matcher, keep=keep):
            path = root / relative
            if dockerfile and relative == DOCKERIGNORE and not path.is_dir():
                status = path.stat()
                content = path.read_bytes().rstrip(b"\n") + b"\n" + dockerfile[0].encode() + b"\n"
                _add_bytes(tar, DOCKERIGNORE, content, status.st_mode & 0o7777, int(status.st_mtime))
                ignore_written = True
                continue
            info = tar.gettarinfo(str(path), arcname=relative)
            if info is None:  # a socket: nothing a tar can hold
                continue
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = int(info.mtime)
            if info.isreg():
                with open(path, "rb") as content:
                    tar.addfile(info, content)
            else:
                tar.addfile(info)
        if dockerfile:
            name, content = dockerfile
            if not ignore_written:
                _add_bytes(tar, DOCKERIGNORE, f"{DOCKERIGNORE}\n{name}\n".encode(), 0o600)
            _add_bytes(tar, name, content, 0o600)


class ContextFailed(OSError):
    """Packing the context failed: an OSError, so that Client.request closes the connection
    (and reports DaemonUnreachable, which the command replaces by the real cause)."""


class ContextPipe:
    """A tar written by a thread into a pipe; `read` it as a request body. A failure while
    writing (an unreadable file) raises ContextFailed from `read` at the end of the data:
    the client drops the connection without finishing the chunked body, so the daemon
    cannot build from a truncated context, and `error` says what went wrong."""

    def __init__(self, produce: Callable[[BinaryIO], None]) -> None:
        import threading

        read_fd, write_fd = os.pipe()
        self._reader = os.fdopen(read_fd, "rb")
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(os.fdopen(write_fd, "wb"), produce),
                                        name="build-context", daemon=True)
        self._thread.start()

    def _run(self, out: BinaryIO, produce: Callable[[BinaryIO], None]) -> None:
        try:
            with out:
                produce(out)
        except BrokenPipeError:
            pass  # the reader is gone: the daemon answered before taking it all
        except BaseException as exc:  # noqa: BLE001 - reported by `read` in the main thread
            self.error = exc

    def read(self, size: int = -1) -> bytes:
        data = self._reader.read(size)
        if not data:
            self._thread.join()
            if self.error is not None:
                raise ContextFailed(str(self.error))
        return data

    def close(self) -> None:
        self._reader.close()  # a writer still blocked on the pipe gets EPIPE and ends
        self._thread.join()


def _context_error(exc: BaseException) -> click.ClickException:
    if isinstance(exc, PermissionError):
        return click.ClickException(f"error checking context: no permission to read from '{exc.filename}'")
    return click.ClickException(f"error checking context: {exc}")


class Upload:
    """The request body: `source` read through, counted, and shown as the docker CLI does
    ("Sending build context to Docker daemon  2.048kB", redrawn on a terminal)."""

    def __init__(self, source, out: TextIO | None) -> None:
        self._source = source
        self._out = out
        self._terminal = bool(out and out.isatty())
        self._done = False
        self.sent = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.sent += len(data)
        if not data and not self._done:
            self._done = True
            self._show("\n")
        elif self._terminal:
            self._show("")
        return data

    def _show(self, end: str) -> None:
        if self._out is None or not (self._terminal or end):
            return
        prefix = "\r\x1b[2K" if self._terminal else ""
        self._out.write(f"{prefix}Sending build context to Docker daemon {_size(self.sent):>8}{end}")
        self._out.flush()


# -- the request ---------------------------------------------------------------------------

def build_args(items, config: dict, host: str, environ=os.environ) -> dict[str, str | None]:
    """`--build-arg` flags as the API's buildargs: KEY=VALUE, or KEY alone taking the value
    from our environment (null when unset: the Dockerfile's default applies). The proxies
    of config.json (for this daemon, else "default") come as HTTP_PROXY and friends unless
    given, as the docker CLI does."""
    result: dict[str, str | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise click.UsageError(f'invalid argument "{item}" for "--build-arg" flag: '
                                   f"invalid environment variable: {item}")
        result[key] = value if sep else environ.get(key)
    proxies = config.get("proxies") if isinstance(config.get("proxies"), dict) else {}
    proxy = proxies.get(host) if isinstance(proxies.get(host), dict) else proxies.get("default")
    for field, name in _PROXY_ARGS.items():
        value = proxy.get(field) if isinstance(proxy, dict) else None
        if value:
            result.setdefault(name, value)
            result.setdefault(name.lower(), value)
    return result


def registry_config(config: dict) -> str:
    """X-Registry-Config: base64url JSON of {registry: AuthConfig} for every registry with
    credentials in config.json, so that FROM can pull from any of them."""
    auths = config.get("auths") if isinstance(config.get("auths"), dict) else {}
    credentials = {}
    for key in auths:
        auth = stored_credentials(config, key)
        if auth:
            credentials[key] = auth
    return base64.urlsafe_b64encode(json.dumps(credentials).encode()).decode()


def validate_tags(tags) -> None:
    from dockyard.formats.reference import InvalidReference, parse_normalized

    for tag in tags:
        try:
            parse_normalized(tag)
        except InvalidReference as exc:
            raise click.UsageError(f'invalid argument "{tag}" for "-t, --tag" flag: {exc}') from None


# -- the answer ----------------------------------------------------------------------------

class BuildFailed(Exception):
    """An error in the build stream: its message, exit code, and (quiet) the output held."""

    def __init__(self, message: str, code: int, held: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.held = held


def show_build(messages, quiet: bool, out: TextIO | None = None) -> tuple[str | None, str]:
    """Show the build's messages on `out` as they come (nothing when quiet); returns the
    image ID of the `aux` message and, when quiet, the text the stream held. Raises
    BuildFailed at an error in the stream."""
    drawer = ProgressDisplay(out or sys.stdout)
    image_id = None
    held: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        if message.get("error") or message.get("errorDetail"):
            detail = message.get("errorDetail") or {}
            text = message.get("error") or detail.get("message") or "unknown error"
            code = detail.get("code") if isinstance(detail.get("code"), int) else 0
            raise BuildFailed(text, code or 1, "".join(held))
        if "aux" in message:
            aux = message["aux"]
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = str(aux["ID"])
            continue
        if quiet:
            if "stream" in message:
                held.append(str(message["stream"]))
            continue
        drawer.feed(message)
    return image_id, "".join(held)


# -- the command ---------------------------------------------------------------------------

@click.command("build")
@click.argument("path")
@click.option("-t", "--tag", "tags", multiple=True, help="Name and optionally a tag (name:tag).")
@click.option("-f", "--file", "dockerfile",
              help="Name of the Dockerfile (default: PATH/Dockerfile; - for stdin).")
@click.option("--build-arg", "build_arg", multiple=True, help="Set a build-time variable (KEY=VALUE or KEY).")
@click.option("--label", "labels", multiple=True, help="Set metadata for the image (key=value).")
@click.option("--target", help="Set the target build stage to build.")
@click.option("--no-cache", is_flag=True, help="Do not use cache when building the image.")
@click.option("--pull", is_flag=True, help="Always attempt to pull a newer version of the image.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the build output and print image ID on success.")
@click.option("--iidfile", type=click.Path(dir_okay=False), help="Write the image ID to the file.")
@click.option("--rm/--no-rm", "remove", default=True, show_default=True,
              help="Remove intermediate containers after a successful build.")
@click.option("--force-rm", is_flag=True, help="Always remove intermediate containers.")
@click.option("--network", help="Networking mode for the RUN instructions during build.")
@click.option("--cache-from", "cache_from", multiple=True, help="Images to consider as cache sources.")
@click.option("--platform", help="Set platform if server is multi-platform capable (os/arch[/variant]).")
@click.pass_context
def build(ctx, path, tags, dockerfile, build_arg, labels, target, no_cache, pull, quiet, iidfile,
          remove, force_rm, network, cache_from, platform):
    """Build an image from a Dockerfile (PATH is the context directory, or - for a tar or a
    Dockerfile on stdin)."""
    validate_tags(tags)
    if path == "-" and dockerfile == "-":
        raise click.UsageError("invalid argument: can't use stdin for both build context and dockerfile")
    label_map = key_values(labels, "--label")
    api = client(ctx)
    config = load_config()
    args = build_args(build_arg, config, api.host)
    stdin = sys.stdin.buffer
    if iidfile:
        try:  # never leave a stale ID behind if this build fails
            os.remove(iidfile)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise click.ClickException(f"Removing image ID file: {exc}") from None

    if path == "-":
        source, dockerfile_name = stdin_context(stdin, dockerfile)
    else:
        root, relative = local_context(path, dockerfile)
        try:
            matcher = load(root)
        except (BadPattern, OSError, UnicodeError) as exc:
            raise _prepare_error(f"{DOCKERIGNORE}: {exc}") from None
        added = None
        if relative is None:  # -f -
            added = stdin.read()
        elif _is_outside(relative):
            try:
                added = Path(dockerfile).read_bytes()
            except OSError as exc:
                raise click.ClickException(f"unable to open Dockerfile: {exc}") from None
        if added is not None:
            dockerfile_name = CLIENT_DOCKERFILE_PREFIX + os.urandom(10).hex()
            keep: tuple[str, ...] = (DOCKERIGNORE,)
            extra = (dockerfile_name, added)
        else:
            dockerfile_name, keep, extra = relative, (relative, DOCKERIGNORE), None
        source = ContextPipe(lambda out: write_context(out, root, matcher, keep, extra))

    params = {
        "t": list(tags) or None, "dockerfile": dockerfile_name, "target": target,
        "buildargs": json.dumps(args) if args else None,
        "labels": json.dumps(label_map) if label_map else None,
        "nocache": 1 if no_cache else None, "pull": 1 if pull else None, "q": 1 if quiet else None,
        "rm": 1 if remove else 0, "forcerm": 1 if force_rm else None, "networkmode": network,
        "cachefrom": json.dumps(list(cache_from)) if cache_from else None, "platform": platform,
    }
    upload = Upload(source, None if quiet else sys.stdout)
    with api_errors():
        try:
            response = api.request("POST", "/build", params, body=upload, stream=True,
                                   headers={"X-Registry-Config": registry_config(config)})
        except DaemonUnreachable:
            if getattr(source, "error", None) is not None:
                raise _context_error(source.error) from None
            raise
        finally:
            source.close()
        try:
            image_id, held = show_build(response.iter_json(), quiet)
        except BuildFailed as exc:
            if exc.held:  # quiet: what the build said, as the docker CLI shows it on failure
                click.echo(exc.held, err=True, nl=False)
            click.echo(str(exc), err=True)
            sys.exit(exc.code)
    if quiet:
        click.echo(image_id if image_id else held, nl=bool(image_id))
    if iidfile:
        if not image_id:
            raise click.ClickException(f"Server did not provide an image ID. Cannot write {iidfile}")
        Path(iidfile).write_text(image_id)
