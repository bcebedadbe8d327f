"""`docker rename`: a new name, checked as create checks one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dockyard.containers.create import NAME
from dockyard.errors import Conflict, InvalidParameter

if TYPE_CHECKING:
    from dockyard.containers.manager import ContainerManager


def rename(manager: ContainerManager, name_or_id: str, new_name: str) -> None:
    container = manager.get(name_or_id)
    if not NAME.match(new_name):
        raise InvalidParameter(
            f"Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    new_name = new_name.lstrip("/")
    with manager.lock:
        if container.name == new_name:
            raise Conflict("Renaming a container with the same name as its current name")
        for other in manager.records.values():
            if other.name == new_name:
                raise Conflict(f'Conflict. The container name "/{new_name}" is already in use by '
                               f'container "{other.id}". You have to remove (or rename) that '
                               f"container to be able to reuse that name.")
        old = container.name
        container.name = new_name
        manager.save(container)
    manager.event(container, "rename", oldName=f"/{old}")

