"""`docker wait`: a wait registered at once, which blocks later until the container
stops, exits next, or is removed."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dockyard.errors import InvalidParameter

if TYPE_CHECKING:
    from dockyard.containers.manager import ContainerManager


def waiter(manager: ContainerManager, name_or_id: str, condition: str = "not-running") -> Callable[[], dict]:
    """Register a wait now; the returned function blocks until the condition holds.
    Registration happens before the API answers, so `docker run`, which starts the
    container once the wait's headers arrive, can never miss the exit."""
    if condition not in ("not-running", "next-exit", "removed", ""):
        raise InvalidParameter(f"invalid condition: {condition!r}")
    container = manager.get(name_or_id)
    live = manager.live[container.id]
    exits_seen = live.exits

    def satisfied() -> bool:
        if condition == "removed":
            return live.destroyed
        if condition == "next-exit":
            return live.exits > exits_seen
        return live.removed or (not container.running and not container.state.Restarting)

    def wait() -> dict:
        with live.changed:
            while not satisfied():
                live.changed.wait(1.0)
        result = {"StatusCode": container.state.ExitCode}
        if container.state.Error and container.has_been_started:
            result["Error"] = {"Message": container.state.Error}
        return result

    return wait

