"""The event log: history, live delivery, filters, since/until, and shutdown."""

from __future__ import annotations

import threading
import time

from dockyard.daemon.events import EventsManager


def test_since_replays_history_and_filters_apply():
    events = EventsManager()
    start = time.time_ns()
    events.publish("container", "create", "c1", {"name": "web", "image": "busybox"})
    events.publish("image", "tag", "sha256:1", {"name": "busybox:latest"})
    stream = events.subscribe(since_nano=start, until_nano=time.time_ns(),
                              filters={"type": ["container"]})
    replayed = [event.to_api() for event in stream]
    assert [(e["Type"], e["Action"], e["id"], e["from"]) for e in replayed] == [
        ("container", "create", "c1", "busybox")
    ]


def test_name_filter_matches_attribute_name():
    events = EventsManager()
    start = time.time_ns()
    events.publish("container", "start", "abcdef", {"name": "web"})
    events.publish("container", "start", "123456", {"name": "db"})
    found = [e.actor_id for e in events.subscribe(start, time.time_ns(), {"container": ["web"]})]
    assert found == ["abcdef"]


def test_live_events_arrive_and_until_ends_the_stream():
    events = EventsManager()
    received = []
    until = time.time_ns() + 400_000_000

    def listen():
        received.extend(e.action for e in events.subscribe(until_nano=until) if e)

    listener = threading.Thread(target=listen)
    listener.start()
    while events.listener_count == 0:
        time.sleep(0.01)
    events.publish("daemon", "reload", "d1")
    listener.join(timeout=5)
    assert not listener.is_alive()
    assert received == ["reload"]
    assert events.listener_count == 0


def test_close_ends_open_streams_and_heartbeats_tick():
    events = EventsManager()
    items = []

    def listen():
        for item in events.subscribe(heartbeat=0.05):
            items.append(item)

    listener = threading.Thread(target=listen)
    listener.start()
    time.sleep(0.3)
    events.close()
    listener.join(timeout=5)
    assert not listener.is_alive()
    assert items and all(item is None for item in items)
