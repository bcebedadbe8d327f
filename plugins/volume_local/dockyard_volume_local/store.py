"""Where local volumes live on disk: dockyard.plugin.volume_records' directory per volume, with
the data in `<home>/<name>/_data` (mode 0755, root's, like Docker's), made in the staged
directory so a volume appears whole or not at all."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dockyard.plugin.volume_records import VolumeRecords
from dockyard.plugin.volume_records import check_name as _check_name

DATA_DIR = "_data"


def check_name(name: str) -> None:
    _check_name(name, "local", "If you intended to pass a host directory, use absolute path")


class VolumeStore(VolumeRecords):
    def data_dir(self, name: str) -> Path:
        return self.volume_dir(name) / DATA_DIR

    def create(self, name: str, options: Mapping[str, str]) -> None:
        staging = self.stage(name, options)
        try:
            data = staging / DATA_DIR
            data.mkdir()
            os.chmod(data, 0o755)  # not left to the umask: Docker's _data is 0755
            self.commit(staging, name)
        except BaseException:
            self.discard(staging)
            raise
