"""HTTP routes of swarm mode (/swarm, /nodes, /services, /tasks, /secrets, /configs): this
daemon is never part of a swarm, and says so the way dockerd outside a swarm does.

dockerd answers 503 "This node is not part of a swarm" on all of them, and clients rely
on it: docker-py's and test suites' clean-ups call `swarm.leave(force=True)` and treat
that answer as "nothing to leave". A 404 would read as a broken daemon instead.
"""

from __future__ import annotations

from dockyard.api.router import Router
from dockyard.api.server import Request, Response, error_response
from dockyard.daemon.engine import Engine

NOT_IN_A_SWARM = "This node is not part of a swarm"
UNSUPPORTED = ("dockyard does not run swarm mode: multi-host networks come from a cluster store "
               "instead (dockyardd --cluster-store etcd://HOST:2379, then docker network create -d overlay)")
AREAS = ("nodes", "services", "tasks", "secrets", "configs")


def register(router: Router, engine: Engine) -> None:
    def not_in_a_swarm(request: Request) -> Response:
        return error_response(503, NOT_IN_A_SWARM)

    def unsupported(request: Request) -> Response:
        return error_response(503, f"{NOT_IN_A_SWARM}: {UNSUPPORTED}")

    # creating or joining one is what a user would try first: say what to do instead
    router.add("POST", "/swarm/init", unsupported)
    router.add("POST", "/swarm/join", unsupported)
    for method in ("GET", "POST", "PUT", "DELETE"):
        router.add(method, "/swarm", not_in_a_swarm)
        router.add(method, "/swarm/{what:.+}", not_in_a_swarm)
        for area in AREAS:
            router.add(method, f"/{area}", not_in_a_swarm)
            router.add(method, f"/{area}/{{what:.+}}", not_in_a_swarm)
