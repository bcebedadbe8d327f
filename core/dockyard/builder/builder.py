"""The classic builder: a Dockerfile and its context in, an image out, one step at a time.

Each instruction commits an image whose parent is the previous step's (Docker's
classic builder does the same), so every step is a cache entry: a step whose parent
and whose expanded instruction (plus, for COPY/ADD, the checksum of the files it
copies) match an earlier build reuses that build's image and runs nothing. RUN runs
in a container through the container manager (the runtime, the network and the
storage driver all as for `docker run`); COPY and ADD write into a created, never
started, container's root filesystem; both commit the container's changes as a
layer and remove the container. Metadata instructions (ENV, CMD, ...) commit a new
config over the same layers.

The output is Docker's: `Step N/M : ...`, ` ---> Using cache`, ` ---> <id>`, the
`{"aux": {"ID": ...}}` message, `Successfully built`, `Successfully tagged`. Tags are
set only after the last step: a failed build tags nothing and removes its containers.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.builder import files
from dockyard.builder.cache import BuildCache, step_key
from dockyard.builder.context import (
    ContextSource,
    checksum,
    dockerfile_from_context,
    is_url,
    resolve_in_context,
    resolve_sources,
)
from dockyard.builder.dockerfile import Dockerfile, DockerfileError, Instruction, Stage, parse, parse_trigger
from dockyard.builder.run_mounts import CacheMounts, RunMount, parse_mounts
from dockyard.builder.shell_words import ExpansionError, expand, expand_words
from dockyard.daemon import hostinfo
from dockyard.errors import EngineError, InvalidParameter, NotFound
from dockyard.formats import dockerignore
from dockyard.formats.reference import InvalidReference, parse_normalized
from dockyard.images.content import check_digest
from dockyard.images.manager import ImageManager, now_rfc3339

DEFAULT_SHELL = ["/bin/sh", "-c"]
# Docker passes these to RUN without an ARG declaring them, and keeps them out of history.
# Marks the containers a build makes, so that those a crash left behind are removed at
# the next start (Docker leaves them in `docker ps -a`).
INTERMEDIATE_LABEL = "io.dockyard.build.intermediate"
PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
              "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")


class BuildFailed(EngineError):
    """A step failed; the message is what Docker prints for it, `code` the exit code of
    a failed RUN."""

    status = 400

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class BuildOptions:
    tags: list[str] = field(default_factory=list)
    dockerfile: str = ""
    target: str = ""
    build_args: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    pull: bool = False
    quiet: bool = False
    remove: bool = True
    force_remove: bool = False
    network_mode: str = ""
    cache_from: list[str] = field(default_factory=list)
    platform: str = ""
    credentials: dict = field(default_factory=dict)  # registry host -> Credentials
    extra_hosts: list[str] = field(default_factory=list)  # --add-host host:address, for RUN steps
    dockerfile_text: str | None = None  # the Dockerfile itself, when it does not come in the context
    buildkit: bool = False  # through BuildKit's API: RUN --mount and COPY --link are allowed
    secrets: Callable[[str], bytes | None] | None = None  # RUN --mount=type=secret: id -> bytes or None


@dataclass
class _Stage:
    """What a stage has built so far: an image (None until the first commit after FROM
    scratch) and its config, plus the ARGs in scope."""

    image_id: str | None
    config: dict
    layers: list[dict]
    args: dict[str, str | None] = field(default_factory=dict)
    cmd_set: bool = False

    @property
    def container_config(self) -> dict:
        return self.config.setdefault("config", {})

    def env(self) -> dict[str, str]:
        return dict(entry.partition("=")[::2] for entry in self.container_config.get("Env") or [])

    def expansion_env(self) -> dict[str, str]:
        """What `$VAR` means in an instruction: ARG values, overridden by ENV."""
        values = {name: value for name, value in self.args.items() if value is not None}
        values.update(self.env())
        return values


def _short(image_id: str) -> str:
    return check_digest(image_id)[:12]


def _stream(text: str) -> dict:
    return {"stream": text}


# `# syntax=` values that name the Dockerfile frontend itself (any tag or digest)
_DOCKERFILE_FRONTEND = re.compile(r"^(docker\.io/)?(docker/dockerfile(-upstream)?)([:@].*)?$")
SECRET_DIR = "/dev/shm"  # memory: a build secret never touches a disk
_VARIABLE = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})")


class Builder:
    def __init__(self, images: ImageManager, containers, pull: Callable | None, cache: BuildCache,
                 scratch_dir: Path) -> None:
        self.images = images
        self.containers = containers
        self.pull = pull  # (name, platform, credentials) -> progress messages; None: no registry
        self.cache = cache
        self.scratch_dir = scratch_dir
        self.cache_mounts = CacheMounts(Path(images.root) / "cache-mounts")  # RUN --mount=type=cache

    def sweep(self) -> int:
        """At start-up: remove the containers of builds that a crash interrupted."""
        leftovers = [c for c in self.containers.all()
                     if (c.config.get("Labels") or {}).get(INTERMEDIATE_LABEL) == "true"]
        for container in leftovers:
            with contextlib.suppress(EngineError):
                self.containers.remove(container.id, force=True)
        return len(leftovers)

    # -- the build ---------------------------------------------------------------------

    def build(self, context: Path, options: BuildOptions) -> Iterator[dict]:
        """Build messages. The Dockerfile is read and parsed before the first message,
        so a missing or unparsable one is the HTTP error Docker answers with."""
        if options.dockerfile_text is not None:  # BuildKit's clients send it apart from the context
            text = options.dockerfile_text
        else:
            _name, text = dockerfile_from_context(context, options.dockerfile)
        try:
            dockerfile = parse(text, buildkit=options.buildkit)
        except DockerfileError as exc:
            raise InvalidParameter(str(exc)) from None
        if options.buildkit and dockerfile.syntax and not _DOCKERFILE_FRONTEND.match(dockerfile.syntax):
            raise InvalidParameter(
                f"the Dockerfile asks for the frontend {dockerfile.syntax} (# syntax=): dockyard runs its "
                "own Dockerfile frontend only, and cannot run a frontend image; remove the line, or name "
                "docker/dockerfile")
        stages = list(dockerfile.stages)
        if not stages:
            raise InvalidParameter("the Dockerfile has no FROM instruction: a build starts from an image "
                                   "or from scratch")
        if options.target:
            chosen = dockerfile.stage(options.target)
            if chosen is None or options.target.isdigit():
                raise InvalidParameter(f"failed to reach build target {options.target} in Dockerfile")
            stages = stages[:chosen.index + 1]
        for tag in options.tags:
            try:
                parse_normalized(tag)
            except InvalidReference as exc:
                raise InvalidParameter(f"invalid tag {tag!r}: {exc}") from None
        return self._run(context, dockerfile, stages, options)

    def _run(self, context: Path, dockerfile: Dockerfile, stages: list[Stage],
             options: BuildOptions) -> Iterator[dict]:
        run = _Run(self, context, dockerfile, options)
        try:
            yield from run.all(stages)
        except BaseException:
            self.images.collect()  # layers of a step that failed before its commit
            raise
        finally:
            run.cleanup()


class _Run:
    """One build in progress."""

    def __init__(self, builder: Builder, context: Path, dockerfile: Dockerfile,
                 options: BuildOptions) -> None:
        self.builder = builder
        self.images = builder.images
        self.containers = builder.containers
        self.context = context
        self.dockerfile = dockerfile
        self.options = options
        self.escape = dockerfile.escape
        self.ignore = dockerignore.load(context)
        self.meta_args: dict[str, str | None] = {}
        self.consumed: set[str] = set()
        self.stage_images: dict[int, str] = {}
        self.step = 0
        self.total = 0
        self.live_containers: set[str] = set()
        self.cache_allowed = self._cache_from_ancestry()
        self.scratch = Path(tempfile.mkdtemp(prefix="build-", dir=builder.scratch_dir))

    def cleanup(self) -> None:
        for container_id in list(self.live_containers):
            self._remove_container(container_id)
        shutil.rmtree(self.scratch, ignore_errors=True)

    # -- stages -------------------------------------------------------------------------

    def all(self, stages: list[Stage]) -> Iterator[dict]:
        self.total = len(self.dockerfile.meta_args) + sum(1 + len(s.instructions) for s in stages)
        for instruction in self.dockerfile.meta_args:
            yield from self._announce(instruction)
            for name, default in instruction.pairs:
                value = self._arg_value(name, default, self.meta_args)
                self.meta_args[name] = value
        state = None
        for stage in stages:
            state = yield from self._stage(stage)
        assert state is not None
        if self.options.labels:
            labels = {**(state.container_config.get("Labels") or {}), **self.options.labels}
            state.container_config["Labels"] = labels
            yield from self._commit_metadata(state, "LABEL " + " ".join(
                f"{k}={v}" for k, v in sorted(self.options.labels.items())), announce=False)
        image_id = state.image_id or self._commit(state, "", None, None)
        unused = sorted(set(self.options.build_args) - self.consumed - set(PROXY_ARGS))
        if unused and not self.options.quiet:
            yield _stream(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
        yield {"aux": {"ID": image_id}}
        names = [self.images.tag(image_id, tag, None) for tag in self.options.tags]
        if self.options.quiet:
            # `docker build -q` prints the stream as it comes: the image id is all it may say
            yield _stream(f"{image_id}\n")
            return
        yield _stream(f"Successfully built {_short(image_id)}\n")
        for name in names:
            yield _stream(f"Successfully tagged {name}\n")

    def _announce(self, instruction: Instruction) -> Iterator[dict]:
        self.step += 1
        if not self.options.quiet:
            yield _stream(f"Step {self.step}/{self.total} : {instruction.original}\n")

    def _arg_value(self, name: str, default: str | None, env: dict[str, str]) -> str | None:
        if name in self.options.build_args and self.options.build_args[name] is not None:
            self.consumed.add(name)
            return self.options.build_args[name]
        self.consumed.add(name)
        if default is None:
            return None
        return self._expand(default, {k: v for k, v in env.items() if v is not None})

    def _expand(self, word: str, env: dict[str, str]) -> str:
        try:
            return expand(word, env, self.escape)
        except ExpansionError as exc:
            raise InvalidParameter(str(exc)) from None

    def _stage(self, stage: Stage) -> Iterator[dict]:
        yield from self._announce(stage.from_instruction)
        meta = {k: v for k, v in self.meta_args.items() if v is not None}
        base = self._expand(stage.base, meta)
        state = yield from self._base_state(base, stage)
        if state.image_id and not self.options.quiet:
            yield _stream(f" ---> {_short(state.image_id)}\n")
        triggers = state.container_config.get("OnBuild") or []
        if triggers:
            state.container_config["OnBuild"] = None
            if not self.options.quiet:
                noun = "trigger" if len(triggers) == 1 else "triggers"
                yield _stream(f"# Executing {len(triggers)} build {noun}\n")
            for text in triggers:
                try:
                    trigger = parse_trigger(text, self.escape)
                except DockerfileError as exc:
                    raise InvalidParameter(str(exc)) from None
                yield from self._instruction(state, trigger, stage, announce=False)
        for instruction in stage.instructions:
            yield from self._announce(instruction)
            yield from self._instruction(state, instruction, stage)
        if state.image_id is None:
            state.image_id = self._commit(state, "", None, None)
        self.stage_images[stage.index] = state.image_id
        return state

    def _base_state(self, base: str, stage: Stage) -> Iterator[dict]:
        if base.lower() == "scratch":
            return _Stage(None, {"architecture": hostinfo.architecture(), "os": "linux", "config": {},
                                 "rootfs": {"type": "layers", "diff_ids": []}, "history": []}, [])
        earlier = self.dockerfile.stage(base, before=stage.index)
        if earlier is not None and not base.isdigit():
            image_id = self.stage_images[earlier.index]
        else:
            image_id = yield from self._image(base, stage.platform, always_pull=self.options.pull)
        record = self.images.resolve(image_id)
        config = self.images.config(record)
        config.pop("container", None)
        return _Stage(image_id, config, list(self.images.manifest(record).get("layers") or []))

    def _image(self, name: str, platform: str | None, always_pull: bool = False) -> Iterator[dict]:
        """The id of image `name`, pulled when missing (or always with --pull)."""
        if not always_pull:
            with contextlib.suppress(NotFound):
                return self.images.resolve(name).id
        if self.builder.pull is None:
            raise NotFound(f"No such image: {name} (and no registry client is installed to pull it)")
        try:
            reference = parse_normalized(name).with_default_tag()
        except InvalidReference as exc:
            raise InvalidParameter(f"invalid reference format: {name}: {exc}") from None
        credentials = self.options.credentials.get(reference.domain)
        for message in self.builder.pull(str(reference), platform or self.options.platform or None,
                                         credentials):
            if not self.options.quiet:
                yield message
        return self.images.resolve(str(reference)).id

    # -- instructions ---------------------------------------------------------------------

    def _instruction(self, state: _Stage, instruction: Instruction, stage: Stage,
                     announce: bool = True) -> Iterator[dict]:
        keyword = instruction.keyword
        if keyword == "ARG":
            for name, default in instruction.pairs:
                inherited = self.meta_args.get(name) if default is None else default
                state.args[name] = self._arg_value(name, inherited, state.expansion_env())
            # ARG changes no config; Docker still commits a step for it
            yield from self._commit_metadata(state, instruction.original)
            return
        if keyword == "RUN":
            yield from self._run_step(state, instruction)
            return
        if keyword in ("COPY", "ADD"):
            yield from self._copy_step(state, instruction, stage)
            return
        description = self._apply_metadata(state, instruction)
        yield from self._commit_metadata(state, description)

    def _apply_metadata(self, state: _Stage, instruction: Instruction) -> str:
        """Change the stage's config for a metadata instruction; return how history
        describes it (values expanded)."""
        keyword, config = instruction.keyword, state.container_config
        env = state.expansion_env()
        if keyword == "ENV":
            pairs = [(self._expand(k, env), self._expand(v or "", env)) for k, v in instruction.pairs]
            entries = [e for e in config.get("Env") or []]
            for key, value in pairs:
                entries = [e for e in entries if e.partition("=")[0] != key] + [f"{key}={value}"]
            config["Env"] = entries
            return "ENV " + " ".join(f"{k}={v}" for k, v in pairs)
        if keyword == "LABEL":
            pairs = [(self._expand(k, env), self._expand(v or "", env)) for k, v in instruction.pairs]
            config["Labels"] = {**(config.get("Labels") or {}), **dict(pairs)}
            return "LABEL " + " ".join(f"{k}={v}" for k, v in pairs)
        if keyword in ("CMD", "ENTRYPOINT"):
            command = list(instruction.command)
            if not instruction.json_form:
                command = list(config.get("Shell") or DEFAULT_SHELL) + command
            if keyword == "CMD":
                config["Cmd"] = command
                state.cmd_set = True
            else:
                config["Entrypoint"] = command
                if not state.cmd_set:
                    config["Cmd"] = None  # an inherited CMD does not survive a new ENTRYPOINT
            return f"{keyword} {json.dumps(command)}"
        if keyword == "WORKDIR":
            path = self._expand(instruction.args[0], env)
            config["WorkingDir"] = posixpath.normpath(posixpath.join(config.get("WorkingDir") or "/", path))
            return f"WORKDIR {config['WorkingDir']}"
        if keyword == "USER":
            config["User"] = self._expand(instruction.args[0], env)
            return f"USER {config['User']}"
        if keyword == "EXPOSE":
            ports = config.get("ExposedPorts") or {}
            for word in instruction.args:
                for port in expand_words(word, env, self.escape):
                    ports.update({p: {} for p in _port_specs(port)})
            config["ExposedPorts"] = ports
            return "EXPOSE " + " ".join(sorted(ports))
        if keyword == "VOLUME":
            volumes = config.get("Volumes") or {}
            for path in instruction.args:
                path = self._expand(path, env)
                if not path.strip():
                    raise InvalidParameter("VOLUME specified can not be an empty string")
                volumes[path] = {}
            config["Volumes"] = volumes
            return f"VOLUME {json.dumps(sorted(volumes))}"
        if keyword == "STOPSIGNAL":
            config["StopSignal"] = self._expand(instruction.args[0], env)
            return f"STOPSIGNAL {config['StopSignal']}"
        if keyword == "SHELL":
            config["Shell"] = list(instruction.command)
            return f"SHELL {json.dumps(config['Shell'])}"
        if keyword == "HEALTHCHECK":
            check = instruction.healthcheck
            if check is None or check.test == ("NONE",):
                config["Healthcheck"] = {"Test": ["NONE"]}
            else:
                test = list(check.test)
                health = {"Test": test}
                for key, value in (("Interval", check.interval), ("Timeout", check.timeout),
                                   ("StartPeriod", check.start_period),
                                   ("StartInterval", check.start_interval), ("Retries", check.retries)):
                    if value:
                        health[key] = value
                config["Healthcheck"] = health
            return f"HEALTHCHECK {json.dumps(config['Healthcheck'])}"
        if keyword == "ONBUILD":
            assert instruction.trigger is not None
            config["OnBuild"] = [*(config.get("OnBuild") or []), instruction.trigger.original]
            return f"ONBUILD {instruction.trigger.original}"
        if keyword == "MAINTAINER":
            state.config["author"] = " ".join(instruction.args)
            return f"MAINTAINER {state.config['author']}"
        raise InvalidParameter(f"unknown instruction: {keyword}")

    # -- committing -------------------------------------------------------------------------

    def _cached(self, key: str) -> str | None:
        if self.options.no_cache:
            return None
        return self.builder.cache.get(key, self.cache_allowed)

    def _from_cache(self, state: _Stage, key: str) -> Iterator[dict]:
        """Take the step's image from the cache if it is there; returns whether it was."""
        cached = self._cached(key)
        if not cached:
            return False
        self._adopt(state, cached)
        if not self.options.quiet:
            yield _stream(" ---> Using cache\n")
            yield _stream(f" ---> {_short(cached)}\n")
        return True

    def _cache_from_ancestry(self) -> set[str] | None:
        """With --cache-from, only steps of those images' ancestry count as cached."""
        if not self.options.cache_from:
            return None
        allowed: set[str] = set()
        for name in self.options.cache_from:
            try:
                record = self.images.resolve(name)
            except NotFound:
                continue
            while record is not None and record.id not in allowed:
                allowed.add(record.id)
                parent = record.extra.get("parent")
                record = self.images.images.get(parent) if parent else None
        return allowed

    def _adopt(self, state: _Stage, image_id: str) -> None:
        record = self.images.resolve(image_id)
        state.image_id = image_id
        cmd_set, args = state.cmd_set, state.args
        state.config = self.images.config(record)
        state.layers = list(self.images.manifest(record).get("layers") or [])
        state.cmd_set, state.args = cmd_set, args

    def _commit_metadata(self, state: _Stage, description: str, announce: bool = True) -> Iterator[dict]:
        created_by = f"/bin/sh -c #(nop)  {description}"
        key = step_key(state.image_id, created_by, json.dumps(state.config.get("config"), sort_keys=True))
        cached = self._cached(key)
        if cached:
            self._adopt(state, cached)
            if announce and not self.options.quiet:
                yield _stream(" ---> Using cache\n")
        else:
            image_id = self._commit(state, created_by, None, None)
            self.builder.cache.put(key, image_id)
        if announce and not self.options.quiet:
            yield _stream(f" ---> {_short(state.image_id)}\n")

    def _commit(self, state: _Stage, created_by: str, layer_source, diff_parent) -> str:
        """A new image for the stage: its config, its layers plus the container's changes
        when `layer_source` (a container) is given; the history entry says `created_by`."""
        created = now_rfc3339()
        config = json.loads(json.dumps(state.config))
        config["created"] = created
        history = list(config.get("history") or [])
        descriptors = list(state.layers)
        with self.images.lease() as lease:
            if layer_source is not None:
                from dockyard.containers.filesystem import ChunkReader

                storage = self.containers.context.storage
                diff = storage.diff(layer_source.layer_id, diff_parent)
                layer, descriptor = self.images.add_layer(layer_source.image_chain_id,
                                                          ChunkReader(iter(diff)), lease)
                config["rootfs"] = {"type": "layers",
                                    "diff_ids": [*config.get("rootfs", {}).get("diff_ids", []),
                                                 layer.diff_id]}
                descriptors.append(descriptor)
                if created_by:
                    history.append({"created": created, "created_by": created_by})
            elif created_by:
                history.append({"created": created, "created_by": created_by, "empty_layer": True})
            config["history"] = history
            record = self.images.commit_image(config, descriptors, lease)
            if state.image_id and state.image_id != record.id:
                record.extra["parent"] = state.image_id
                self.images.images.add(record)
        self._adopt(state, record.id)
        return record.id

    # -- containers -------------------------------------------------------------------------

    def _ensure_image(self, state: _Stage) -> str:
        if state.image_id is None:
            state.image_id = self._commit(state, "", None, None)
        return state.image_id

    def _create_container(self, state: _Stage, command: list[str], env: list[str],
                          network_mode: str, mounts: list[dict] | None = None) -> object:
        config = state.container_config
        container = self.containers.create(None, {
            "Image": self._ensure_image(state),
            "Cmd": command,
            "Entrypoint": [],
            "Env": env,
            "WorkingDir": config.get("WorkingDir") or "",
            "User": config.get("User") or "",
            "Healthcheck": {"Test": ["NONE"]},
            "AttachStdout": True,
            "AttachStderr": True,
            "Labels": {INTERMEDIATE_LABEL: "true"},
        }, {"NetworkMode": network_mode or "default", "ExtraHosts": list(self.options.extra_hosts) or None,
            "Mounts": mounts or None})
        self.live_containers.add(container.id)
        return container

    def _remove_container(self, container_id: str) -> None:
        with contextlib.suppress(EngineError):
            self.containers.remove(container_id, force=True)
        self.live_containers.discard(container_id)

    def _run_step(self, state: _Stage, instruction: Instruction) -> Iterator[dict]:
        config = state.container_config
        command = list(instruction.command)
        heredoc_mounts: list[dict] = []
        if instruction.heredocs and not instruction.json_form:
            shell = list(config.get("Shell") or DEFAULT_SHELL)
            command, heredoc_mounts = self._heredoc_command(instruction, shell)
        elif not instruction.json_form:
            command = list(config.get("Shell") or DEFAULT_SHELL) + command
        image_env = state.env()
        build_args = {name: value for name, value in state.args.items()
                      if value is not None and name not in image_env}
        proxies = {name: value for name, value in self.options.build_args.items()
                   if name in PROXY_ARGS and value is not None and name not in state.args}
        created_by = " ".join(command)
        if build_args:
            created_by = f"|{len(build_args)} " + " ".join(
                f"{k}={v}" for k, v in sorted(build_args.items())) + " " + created_by
        run_mounts = parse_mounts(instruction.flags.get("mount"))
        key = step_key(state.image_id, created_by + self._mounts_key(run_mounts),
                       json.dumps(config, sort_keys=True))
        if (yield from self._from_cache(state, key)):
            return
        env = list(config.get("Env") or []) + [f"{k}={v}" for k, v in {**proxies, **build_args}.items()]
        network = instruction.flags.get("network") or self.options.network_mode
        with contextlib.ExitStack() as held:
            mounts = self._container_mounts(run_mounts, held) + heredoc_mounts
            container = self._create_container(state, command, env, network, mounts)
            stubs = self._missing_paths(container, [mount["Target"] for mount in mounts])
            yield from self._run_container(state, container, command, created_by, key,
                                           lambda: self._remove_stubs(container, stubs))

    def _heredoc_command(self, instruction: Instruction, shell: list[str]) -> tuple[list[str], list[dict]]:
        """BuildKit's RUN heredocs. `RUN <<EOF` alone runs the body as the shell's script, or
        as an executable file at /dev/pipes/EOF when it starts with `#!`; otherwise the
        shell gets the line and the bodies, as a shell script with heredocs would be."""
        text = instruction.command[0] if instruction.command else ""
        only = instruction.heredocs[0] if len(instruction.heredocs) == 1 else None
        if only is not None and text.strip() == only.marker:
            if not only.content.startswith("#!"):
                return shell + [only.content], []
            pipes = Path(tempfile.mkdtemp(prefix="pipes-", dir=self.scratch))
            script = pipes / only.name
            script.write_text(only.content)
            script.chmod(0o755)
            return [f"/dev/pipes/{only.name}"], [{"Type": "bind", "Source": str(pipes),
                                                  "Target": "/dev/pipes", "ReadOnly": True}]
        script = text + "\n" + "".join(f"{doc.content}{doc.name}\n" for doc in instruction.heredocs)
        return shell + [script], []

    def _heredoc_files(self, instruction: Instruction, env: dict) -> Path:
        """`COPY <<NAME dest`: each body as a file NAME in a directory of its own; an
        unquoted delimiter expands $VAR and ${VAR} in the body (nothing else: quotes stay)."""
        markers = {doc.marker for doc in instruction.heredocs}
        if any(source not in markers for source in instruction.sources):
            raise InvalidParameter(f"{instruction.keyword} mixes heredocs with other sources: dockyard "
                                   "copies either heredocs or files, not both in one instruction")
        directory = Path(tempfile.mkdtemp(prefix="heredocs-", dir=self.scratch))
        for doc in instruction.heredocs:
            content = doc.content
            if doc.expand:
                content = _VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2)) or "", content)
            (directory / doc.name).write_text(content)
        return directory

    def _secret_file(self, mount: RunMount, held: contextlib.ExitStack) -> Path | None:
        """The secret in a file in memory for this step, or None (not required, not given)."""
        data = self.options.secrets(mount.id) if self.options.secrets is not None else None
        if data is None:
            if mount.required:
                raise BuildFailed(f"secret {mount.id} not found: give it to the build "
                                  f"(--secret id={mount.id},src=... or a compose build secret)", 1)
            return None
        directory = Path(tempfile.mkdtemp(prefix="dockyard-secret-", dir=SECRET_DIR))
        held.callback(shutil.rmtree, directory, True)
        path = directory / "secret"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mount.mode & 0o777)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chown(path, mount.uid, mount.gid)
        return path

    def _mounts_key(self, run_mounts: list[RunMount]) -> str:
        """RUN --mount in the step's cache key; a bind of the context adds its content's checksum."""
        parts = []
        for mount in run_mounts:
            part = mount.key()
            if mount.type == "bind":
                sources = resolve_sources(self.context, [mount.source or "."], self.ignore, "COPY")
                part += ":" + checksum(sources, self.context, self.ignore)
            parts.append(part)
        return "".join(f" --mount={part}" for part in parts)

    def _container_mounts(self, run_mounts: list[RunMount], held: contextlib.ExitStack) -> list[dict]:
        mounts = []
        for mount in run_mounts:
            if mount.type == "cache":
                path, lock = self.builder.cache_mounts.acquire(mount, self.scratch)
                if lock is not None:
                    held.callback(lock.release)
                mounts.append({"Type": "bind", "Source": str(path), "Target": mount.target,
                               "ReadOnly": mount.read_only})
            elif mount.type == "secret":
                found = self._secret_file(mount, held)
                if found is not None:
                    mounts.append({"Type": "bind", "Source": str(found), "Target": mount.target,
                                   "ReadOnly": True})
            elif mount.type == "tmpfs":
                mounts.append({"Type": "tmpfs", "Target": mount.target,
                               "TmpfsOptions": {"SizeBytes": mount.size} if mount.size else {}})
            else:  # bind: a path of the (private copy of the) context
                source = resolve_in_context(self.context, mount.source or ".")
                mounts.append({"Type": "bind", "Source": str(source), "Target": mount.target,
                               "ReadOnly": mount.read_only})
        return mounts

    def _missing_paths(self, container, targets: list[str]) -> list[str]:
        """The mount targets (and their parents) the image lacks: the runtime creates them as
        mount points, and BuildKit leaves them out of the step's layer."""
        if not targets:
            return []
        from dockyard.containers.filesystem import mounted

        missing = []
        with mounted(self.containers, container) as rootfs:
            for target in targets:
                path = posixpath.normpath(target)
                while path not in ("/", "") and not os.path.lexists(Path(rootfs) / path.lstrip("/")):
                    missing.append(path)
                    path = posixpath.dirname(path)
        return sorted(set(missing), key=lambda p: -p.count("/"))  # deepest first

    def _remove_stubs(self, container, stubs: list[str]) -> None:
        if not stubs:
            return
        from dockyard.containers.filesystem import mounted

        with mounted(self.containers, container) as rootfs:
            for stub in stubs:
                path = Path(rootfs) / stub.lstrip("/")
                with contextlib.suppress(OSError):  # not empty: the step wrote there, so it stays
                    if path.is_dir() and not path.is_symlink():
                        path.rmdir()
                    elif path.is_file() and path.stat().st_size == 0:
                        path.unlink()

    def _run_container(self, state: _Stage, container, command: list[str], created_by: str,
                       key: str, before_commit: Callable[[], None] | None = None) -> Iterator[dict]:
        if not self.options.quiet:
            yield _stream(f" ---> Running in {container.id[:12]}\n")
        try:
            wait = self.containers.waiter(container.id, "next-exit")
            connected = self.containers.attach(container.id, False, True, True)
            self.containers.start(container.id)
            for text in _output(connected()):
                if not self.options.quiet:
                    yield _stream(text)
            result = wait()
            code = result.get("StatusCode", 0)
            if code != 0:
                raise BuildFailed(f"The command '{' '.join(command)}' returned a non-zero code: {code}",
                                  code)
            if before_commit is not None:
                before_commit()
            image_id = self._commit(state, created_by, container, container.diff_parent)
        finally:
            self._remove_container(container.id)  # no yield here: the client may be gone
        self.builder.cache.put(key, image_id)
        if not self.options.quiet:
            yield _stream(f" ---> Removed intermediate container {container.id[:12]}\n")
            yield _stream(f" ---> {_short(image_id)}\n")

    def _copy_step(self, state: _Stage, instruction: Instruction, stage: Stage) -> Iterator[dict]:
        keyword = instruction.keyword
        env = state.expansion_env()
        sources = [self._expand(source, env) for source in instruction.sources]
        destination = self._expand(instruction.destination, env)
        chown = self._expand(instruction.flags["chown"], env) if instruction.flags.get("chown") else None
        chmod = instruction.flags.get("chmod")
        mode = files.parse_chmod(self._expand(chmod, env) if chmod else None)
        source_from = instruction.flags.get("from")
        with contextlib.ExitStack() as cleanup:
            if source_from:
                source_from = self._expand(source_from, env)
                source_root, from_id = yield from self._source_image(source_from, stage, cleanup)
                ignore = None
            elif instruction.heredocs:
                source_root, from_id, ignore = self._heredoc_files(instruction, env), "", None
                sources = [doc.name for doc in instruction.heredocs]
            else:
                source_root, from_id, ignore = self.context, "", self.ignore
            urls = [s for s in sources if keyword == "ADD" and is_url(s) and not source_from]
            local = [s for s in sources if s not in urls]
            resolved: list[ContextSource] = []
            if local:
                resolved = resolve_sources(source_root, local, ignore, keyword)
            downloads = []
            for url in urls:
                path, name = files.download(url, self.scratch)
                downloads.append(ContextSource(name, path))
            digest = checksum(resolved, source_root, ignore) if resolved else ""
            for download in downloads:
                digest += checksum([download], download.path.parent, None)
            kind = "dir" if any(s.is_dir for s in resolved) else "file"
            flags = "".join(f"--{k}={v} " for k, v in (("from", from_id), ("chown", chown),
                                                         ("chmod", chmod)) if v)
            created_by = (f"/bin/sh -c #(nop) {keyword} {flags}{kind}:{digest.replace('sha256:', '')} "
                          f"in {destination} ")
            key = step_key(state.image_id, created_by, json.dumps(state.container_config, sort_keys=True))
            if (yield from self._from_cache(state, key)):
                return
            container = self._create_container(state, ["/bin/sh"], [], "none")
            try:
                from dockyard.containers.filesystem import mounted

                with mounted(self.containers, container) as rootfs:
                    owner = files.owner_of(rootfs, chown)
                    workdir = state.container_config.get("WorkingDir") or "/"
                    if resolved:
                        files.place(rootfs, resolved, source_root, destination, workdir, owner, mode,
                                    ignore, keyword, unpack_archives=keyword == "ADD")
                    for download in downloads:
                        files.place(rootfs, [download], download.path.parent,
                                    destination, workdir, owner, mode if mode is not None else 0o600,
                                    None, keyword)
                image_id = self._commit(state, created_by, container, container.diff_parent)
            finally:
                self._remove_container(container.id)
        self.builder.cache.put(key, image_id)
        if not self.options.quiet:
            yield _stream(f" ---> {_short(image_id)}\n")

    def _source_image(self, name: str, stage: Stage, cleanup: contextlib.ExitStack):
        """COPY --from: the root filesystem of an earlier stage or of an image, mounted
        through a created container for as long as the step runs; (rootfs, image id)."""
        earlier = self.dockerfile.stage(name, before=stage.index)
        if earlier is not None:
            image_id = self.stage_images[earlier.index]
        elif name.isdigit():
            raise InvalidParameter(f"invalid from flag value {name}: refers to the current or a later "
                                   "stage")
        else:
            image_id = yield from self._image(name, None)
        if not self.images.view(self.images.resolve(image_id)).layers:
            empty = self.scratch / f"empty-{uuid.uuid4().hex[:8]}"
            empty.mkdir()
            return empty, image_id
        container = self.containers.create(None, {"Image": image_id, "Cmd": ["/bin/sh"], "Entrypoint": [],
                                                  "Labels": {INTERMEDIATE_LABEL: "true"}},
                                           {"NetworkMode": "none"})
        self.live_containers.add(container.id)
        cleanup.callback(self._remove_container, container.id)
        from dockyard.containers.filesystem import mounted

        rootfs = cleanup.enter_context(mounted(self.containers, container))
        return rootfs, image_id


def _port_specs(spec: str) -> list[str]:
    """EXPOSE's `80`, `80/udp`, `8000-8002/tcp` as ExposedPorts keys."""
    port, _, protocol = spec.partition("/")
    protocol = (protocol or "tcp").lower()
    start, _, end = port.partition("-")
    try:
        first, last = int(start), int(end or start)
    except ValueError:
        raise InvalidParameter(f"invalid containerPort: {port}") from None
    if not 0 < first <= last <= 65535:
        raise InvalidParameter(f"invalid port range: {port}")
    return [f"{number}/{protocol}" for number in range(first, last + 1)]


def _output(sock: socket.socket) -> Iterator[str]:
    """The text a container writes to stdout and stderr, from its monitor's frames; stderr
    in bright red (`\x1b[91m` ... `\x1b[0m`), as Docker's classic builder streams it."""
    from dockyard.monitor.client import read_frames

    with contextlib.closing(sock):
        for stream, payload in read_frames(sock):
            if stream == 1:
                yield payload.decode(errors="replace")
            elif stream == 2:
                yield "\x1b[91m" + payload.decode(errors="replace") + "\x1b[0m"
