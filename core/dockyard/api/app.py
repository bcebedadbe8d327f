"""Assembles the API: every route module registered on one router for one engine."""

from __future__ import annotations

from dockyard.api import build, containers, images, networks, swarm, system, validation, volumes
from dockyard.api.router import Router
from dockyard.api.server import Dispatcher
from dockyard.daemon.engine import Engine


def make_router(engine: Engine) -> Router:
    router = Router()
    for routes in (system, images, containers, networks, volumes, build, swarm):
        routes.register(router, engine)
    return router


def make_dispatcher(engine: Engine) -> Dispatcher:
    validation.warm_up()
    return make_router(engine).dispatch
