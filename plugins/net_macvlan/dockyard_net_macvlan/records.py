"""What the macvlan driver remembers about its networks, one small JSON file per network.

    <home>/networks/<network_id>.json   {"network_id", "parent", "mode", "created_parent"}

`created_parent` is the kind of link ("vlan" or "dummy") when the driver created the
parent itself, so that deleting the network deletes it; null when the parent was there
before, which the driver then never deletes. Files are replaced atomically, so a crash
leaves the old record or the new one, never half of one.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from dockyard.plugin import NetworkDriverError

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class NetworkRecord:
    network_id: str
    parent: str
    mode: str
    created_parent: str | None = None  # "vlan" or "dummy": ours to delete with the network


class NetworkRecords:
    def __init__(self, home: Path, log: logging.Logger) -> None:
        self.directory = Path(home) / "networks"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log = log

    def _path(self, network_id: str) -> Path:
        if not _SAFE_ID.match(network_id):
            raise NetworkDriverError(f"network id {network_id!r} cannot name a file; "
                                     "ids are letters, digits, '_', '.' and '-'")
        return self.directory / f"{network_id}.json"

    def get(self, network_id: str) -> NetworkRecord | None:
        return self._read(self._path(network_id))

    def all(self) -> list[NetworkRecord]:
        found = (self._read(path) for path in sorted(self.directory.glob("*.json")))
        return [record for record in found if record is not None]

    def save(self, record: NetworkRecord) -> None:
        path = self._path(record.network_id)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps(asdict(record), sort_keys=True) + "\n")
        os.replace(temporary, path)

    def forget(self, network_id: str) -> None:
        self._path(network_id).unlink(missing_ok=True)

    def _read(self, path: Path) -> NetworkRecord | None:
        try:
            return NetworkRecord(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            # An unreadable record must not stop the daemon: the network then behaves as
            # one whose parent the driver did not create (the safe side: nothing deleted).
            self.log.warning("macvlan: ignoring unreadable network record %s: %s", path, exc)
            return None
