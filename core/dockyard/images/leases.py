"""Leases: what an operation in progress has made but not yet recorded, kept safe from
garbage collection. The content store and the layer store each keep one set."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator


class Leases:
    def __init__(self) -> None:
        # Also the store's lock around collection: a hold and a collect never interleave.
        self.lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    @contextlib.contextmanager
    def lease(self) -> Iterator[set[str]]:
        """Keys added (with `hold`) to the yielded set are leased until the block ends."""
        held: set[str] = set()
        try:
            yield held
        finally:
            with self.lock:
                self._counts.subtract(held)
                self._counts += Counter()  # drop counts that reached zero

    def hold(self, lease: set[str], key: str) -> None:
        with self.lock:
            if key not in lease:
                lease.add(key)
                self._counts[key] += 1

    def active(self) -> set[str]:
        """Leased keys; call with `lock` held for a view that stays true meanwhile."""
        return {key for key, count in self._counts.items() if count > 0}
