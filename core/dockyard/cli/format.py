"""How the CLI shows sizes, ages and tables: the docker CLI's conventions."""

from __future__ import annotations

import time

from dockyard.formats.units import human_duration, human_size

__all__ = ["ago", "human_duration", "human_size", "table"]


def ago(timestamp: float) -> str:
    return human_duration(time.time() - timestamp) + " ago"


def table(rows: list[tuple[str, ...]]) -> str:
    """Columns padded to their widest cell and three spaces apart, like the docker CLI."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)
