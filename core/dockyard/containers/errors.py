"""The error a container's start or exec raises when the runtime refuses it."""

from __future__ import annotations

from dockyard.errors import EngineError


class StartFailed(EngineError):
    """The runtime could not start the process; the message keeps the runtime's words,
    which the docker CLI reads to choose exit code 126 or 127."""

    status = 400
