"""`docker update`: new resource limits and restart policy, applied live when the
container runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dockyard.containers import hostconfig
from dockyard.errors import InvalidParameter

if TYPE_CHECKING:
    from dockyard.containers.manager import ContainerManager


def update(manager: ContainerManager, name_or_id: str, changes: dict) -> list[str]:
    """`docker update`: new limits for a container, applied live when it runs."""
    from dockyard.containers.ocispec import resources_for, validate_host_config

    container = manager.get(name_or_id)
    with manager.live[container.id].lock:
        updated = dict(container.host_config)
        for key, value in changes.items():
            policy = (value or {}).get("Name") if key == "RestartPolicy" else None
            if policy not in (None, "", "no") and container.host_config.get("AutoRemove"):
                raise InvalidParameter("Restart policy cannot be updated because AutoRemove is "
                                       "enabled for the container")
            if value not in (None, "") or key in ("Memory", "MemorySwap"):
                updated[key] = value
        validate_host_config(updated)
        if container.running:
            manager.runtime(container).update(container.id, resources_for(updated))
        container.host_config = hostconfig.normalize_host_config(updated)
        manager.save(container)
    manager.event(container, "update")
    return []

