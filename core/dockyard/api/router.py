"""Routing: API version prefixes, path patterns, and the 404 for everything else.

Patterns use `{name}` for one path segment and `{name:.+}` for a greedy match, which
image routes need because image names carry `/` and `:` (`/images/host:5000/a/b:1/json`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from dockyard import API_VERSION, MIN_API_VERSION
from dockyard.api.server import Reply, Request, error_response
from dockyard.api.validation import RouteTypes, route_types
from dockyard.errors import InvalidParameter

Handler = Callable[[Request], Reply]

_VERSION_PREFIX = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")
_PARAM = re.compile(r"\{(\w+)(?::([^}]+))?\}")


def _as_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def split_version(path: str) -> tuple[str, str]:
    """`/v1.43/info` -> ("1.43", "/info"); unprefixed paths get the current version."""
    match = _VERSION_PREFIX.match(path)
    if not match:
        return API_VERSION, path
    version = f"{int(match.group(1))}.{int(match.group(2))}"
    if _as_tuple(version) > _as_tuple(API_VERSION):
        raise InvalidParameter(
            f"client version {version} is too new. Maximum supported API version is {API_VERSION}"
        )
    if _as_tuple(version) < _as_tuple(MIN_API_VERSION):
        raise InvalidParameter(
            f"client version {version} is too old. Minimum supported API version is "
            f"{MIN_API_VERSION}, please upgrade your client to a newer version"
        )
    return version, match.group(3)


def _compile(pattern: str) -> re.Pattern[str]:
    regex, position = [], 0
    for match in _PARAM.finditer(pattern):
        regex.append(re.escape(pattern[position:match.start()]))
        regex.append(f"(?P<{match.group(1)}>{match.group(2) or '[^/]+'})")
        position = match.end()
    regex.append(re.escape(pattern[position:]))
    return re.compile("^" + "".join(regex) + "/?$")


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler, RouteTypes | None]] = []
        self.patterns: list[tuple[str, str, RouteTypes | None]] = []  # as added, for tests and docs

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        types = route_types(method, pattern)
        self._routes.append((method, _compile(pattern), handler, types))
        self.patterns.append((method, pattern, types))

    def get(self, pattern: str) -> Callable[[Handler], Handler]:
        return self._decorator("GET", pattern)

    def post(self, pattern: str) -> Callable[[Handler], Handler]:
        return self._decorator("POST", pattern)

    def put(self, pattern: str) -> Callable[[Handler], Handler]:
        return self._decorator("PUT", pattern)

    def delete(self, pattern: str) -> Callable[[Handler], Handler]:
        return self._decorator("DELETE", pattern)

    def _decorator(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(method, pattern, handler)
            return handler
        return register

    def dispatch(self, request: Request) -> Reply:
        method = "GET" if request.method == "HEAD" else request.method
        for route_method, pattern, handler, types in self._routes:
            if route_method != method:
                continue
            match = pattern.match(request.path)
            if match:
                request.params = match.groupdict()
                if types is not None:
                    types.check_query(request.query)
                    request.types = types
                return handler(request)
        return error_response(404, "page not found")
