"""Assembles the API: every route module registered on one router for one engine."""

from __future__ import annotations

from dockyard.api import build, containers, images, networks, swarm, system, volumes
from dockyard.api.router import Router
from dockyard.api.server import Dispatcher
from dockyard.daemon.engine import Engine


def make_dispatcher(engine: Engine) -> Dispatcher:
    router = Router()
    system.register(router, engine)
    images.register(router, engine)
    containers.register(router, engine)
    networks.register(router, engine)
    volumes.register(router, engine)
    build.register(router, engine)
    swarm.register(router, engine)
    return router.dispatch
