"""The event log: what happened to which object, kept briefly and streamed to listeners.

Managers publish; `GET /events` subscribes. A short history (Docker keeps 256 events)
lets `--since` replay the recent past; `--until` ends a stream at a point in time.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from dockyard.formats.filters import match_labels

HISTORY_SIZE = 256
EVENT_FILTERS = ("type", "event", "container", "image", "network", "volume", "daemon",
                 "plugin", "label", "scope", "config", "node", "secret", "service")
_OBJECT_TYPES = ("container", "image", "network", "volume", "daemon", "plugin")


@dataclass(frozen=True)
class Event:
    type: str
    action: str
    actor_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    time_nano: int = 0
    scope: str = "local"

    def to_api(self) -> dict:
        """Docker's events.Message, with the legacy status/id/from fields it still sends."""
        message = {
            "Type": self.type,
            "Action": self.action,
            "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
            "scope": self.scope,
            "time": self.time_nano // 1_000_000_000,
            "timeNano": self.time_nano,
        }
        if self.type in ("container", "image"):
            message["status"] = self.action
            message["id"] = self.actor_id
            if "image" in self.attributes:
                message["from"] = self.attributes["image"]
        return message

    def matches(self, filters: dict[str, list[str]]) -> bool:
        if "type" in filters and self.type not in filters["type"]:
            return False
        if "event" in filters and not any(
            self.action == e or self.action.startswith(e + ":") for e in filters["event"]
        ):
            return False
        if "scope" in filters and self.scope not in filters["scope"]:
            return False
        if "label" in filters and not match_labels(filters["label"], self.attributes):
            return False
        for object_type in _OBJECT_TYPES:
            wanted = filters.get(object_type)
            if wanted is None:
                continue
            if self.type != object_type:
                return False
            name = self.attributes.get("name", "")
            if not any(w in (self.actor_id, name) or self.actor_id.startswith(w) for w in wanted):
                return False
        return True


_CLOSED = object()


class EventsManager:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._history: deque[Event] = deque(maxlen=HISTORY_SIZE)
        self._subscribers: set[queue.SimpleQueue] = set()

    def publish(self, type: str, action: str, actor_id: str,
                attributes: dict[str, str] | None = None, scope: str = "local") -> Event:
        event = Event(type, action, actor_id, dict(attributes or {}), time.time_ns(), scope)
        with self._lock:
            self._history.append(event)
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.put(event)
        return event

    @property
    def listener_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def subscribe(self, since_nano: int | None = None, until_nano: int | None = None,
                  filters: dict[str, list[str]] | None = None,
                  heartbeat: float | None = None) -> Iterator[Event | None]:
        """Events from `since` (history first), then live ones until `until`, or until
        the manager is closed or the consumer stops iterating. With `heartbeat`, None
        is yielded after that many idle seconds, so a consumer can check its client."""
        filters = filters or {}
        inbox: queue.SimpleQueue = queue.SimpleQueue()
        with self._lock:  # publish holds the same lock: no event is both replayed and live
            history = list(self._history) if since_nano is not None else []
            self._subscribers.add(inbox)
        try:
            for event in history:
                if until_nano is not None and event.time_nano > until_nano:
                    return
                if event.time_nano >= since_nano and event.matches(filters):
                    yield event
            if until_nano is not None and until_nano <= time.time_ns():
                return
            while True:
                timeout = heartbeat
                if until_nano is not None:
                    left = max(0.0, (until_nano - time.time_ns()) / 1e9)
                    timeout = left if timeout is None else min(timeout, left)
                try:
                    event = inbox.get(timeout=timeout)
                except queue.Empty:
                    if until_nano is not None and time.time_ns() >= until_nano:
                        return
                    yield None
                    continue
                if event is _CLOSED:
                    return
                if until_nano is not None and event.time_nano > until_nano:
                    return
                if event.matches(filters):
                    yield event
        finally:
            with self._lock:
                self._subscribers.discard(inbox)

    def close(self) -> None:
        """End every open stream (daemon shutdown)."""
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.put(_CLOSED)
