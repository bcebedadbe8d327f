"""What the distribution client raises: the contract's errors, re-exported.

The classes live in `dockyard.plugin.contracts.registry` so the engine can catch them without
importing a plugin; this module stays so that `from dockyard_registry_distribution.errors
import NotFound` keeps working. Every message names the registry it concerns.
"""

from __future__ import annotations

from dockyard.plugin.contracts.registry import (
    DigestMismatch,
    NotFound,
    RegistryError,
    Unauthorized,
    Unreachable,
    Unsupported,
)

__all__ = ["DigestMismatch", "NotFound", "RegistryError", "Unauthorized", "Unreachable", "Unsupported"]
