"""The builder's messages as BuildKit status: one vertex per Dockerfile step, its output
as logs, so `--progress plain|tty` render a dockyard build as they render dockerd's."""

from __future__ import annotations

import hashlib
import queue
import re

from google.protobuf.timestamp_pb2 import Timestamp

from dockyard.builder.buildkit.wire import control_pb2

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$", re.S)
STDOUT, STDERR = 1, 2
_STDERR_START, _STDERR_END = "\x1b[91m", "\x1b[0m"  # how the classic builder marks RUN's stderr


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


class Progress:
    """Status updates of one build, in the order a client must see them; `updates` is
    what Control.Status streams, ended by None."""

    def __init__(self, ref: str) -> None:
        self.ref = ref
        self.updates: queue.Queue = queue.Queue()
        self._vertex: control_pb2.Vertex | None = None
        self._count = 0

    def _send(self, **fields) -> None:
        self.updates.put(control_pb2.StatusResponse(**fields))

    def _digest(self, name: str) -> str:
        self._count += 1
        return "sha256:" + hashlib.sha256(f"{self.ref}/{self._count}/{name}".encode()).hexdigest()

    def start(self, name: str) -> None:
        self.complete()
        self._vertex = control_pb2.Vertex(digest=self._digest(name), name=name, started=_now())
        self._send(vertexes=[self._vertex])

    def log(self, text: str, stream: int = STDOUT) -> None:
        if self._vertex is None:
            self.start("[internal] load build definition from Dockerfile")
        self._send(logs=[control_pb2.VertexLog(vertex=self._vertex.digest, timestamp=_now(), stream=stream,
                                               msg=text.encode())])

    def complete(self, error: str = "", cached: bool = False) -> None:
        if self._vertex is None:
            return
        vertex = control_pb2.Vertex()
        vertex.CopyFrom(self._vertex)
        vertex.completed.CopyFrom(_now())
        vertex.error = error
        vertex.cached = cached or vertex.cached
        self._send(vertexes=[vertex])
        self._vertex = None

    def message(self, message: dict) -> None:
        """One message of the classic builder (`{"stream": ...}`, `{"aux": ...}`)."""
        text = message.get("stream")
        if not isinstance(text, str):
            return
        step = _STEP.match(text.strip())
        if step:
            self.start(f"[{step.group(1)}/{step.group(2)}] {step.group(3).strip()}")
        elif text.strip() == "---> Using cache" and self._vertex is not None:
            self._vertex.cached = True
        elif text.startswith(_STDERR_START):
            self.log(text.removeprefix(_STDERR_START).removesuffix(_STDERR_END), STDERR)
        elif not text.startswith((" ---> ", "Successfully ", "Removing intermediate")):
            self.log(text)

    def end(self) -> None:
        self.complete()
        self.updates.put(None)
