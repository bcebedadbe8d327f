"""Request checking at the API edge: bodies and query strings against the Engine API's types.

The types are moby's published definitions for API 1.44, kept in engine-api-1.44.json
(made by tools/extract-api-schema; do not edit it by hand). A request that does not fit
gets a 400 naming the field and what it must hold, before any handler or manager reads
it. A body that fits reaches them as moby's Go decoder would see it (see
`as_go_decodes`). Unknown fields pass, as in moby.
"""

from __future__ import annotations

import json
import threading
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema

from dockyard.errors import InvalidParameter

_TYPE_WORDS = {"string": "a string", "integer": "an integer", "boolean": "true or false",
               "array": "a list", "object": "an object", "number": "a number", "null": "null"}


class ExactFloat(float):
    """A JSON number written with a fraction or exponent. Go's decoder refuses `1.0` for an
    integer field; the schema library would take it, so these floats never count as whole."""

    def is_integer(self) -> bool:
        return False


def parse_json(data: bytes | str) -> Any:
    """json.loads that keeps `1.0` from passing for an integer."""
    return json.loads(data, parse_float=ExactFloat)


def _describe_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {json.dumps(shown)}"
    if isinstance(value, list):
        return "a list"
    return "an object"


_STRING_OR_LIST = ["string", "array"]  # how the extractor writes Go's strslice.StrSlice
_PLURALS = {"string": "strings", "integer": "integers", "boolean": "booleans", "array": "lists",
            "object": "objects", "number": "numbers"}


def _describe_schema(schema: dict[str, Any]) -> str:
    kinds = schema.get("type", "object")
    words = []
    for kind in kinds if isinstance(kinds, list) else [kinds]:
        word = _TYPE_WORDS.get(kind, kind)
        members = schema.get("items") if kind == "array" else schema.get("additionalProperties")
        member_kind = members.get("type", "object") if isinstance(members, dict) else None
        if kind in ("array", "object") and isinstance(member_kind, str):
            word = f"{word} of {_PLURALS[member_kind]}"
        words.append(word)
    return " or ".join(words)


def _field_name(path: list[str], data: Any, schema: dict[str, Any]) -> str:
    """['data', 'HostConfig', 'PortBindings', '80/tcp', '0'] -> HostConfig.PortBindings["80/tcp"][0].

    The library joins the path with dots, so a key with dots in it (an option name such as
    com.docker.network.driver.mtu) comes back in pieces: they are joined again while the
    data has no member of the shorter name."""
    name, parts = "", path[1:]
    while parts:
        part = parts.pop(0)
        if isinstance(data, list):
            name += f"[{part}]"
            data = data[int(part)] if part.isdigit() and int(part) < len(data) else None
            schema = schema.get("items", {})
            continue
        while isinstance(data, dict) and part not in data and parts:
            part += "." + parts.pop(0)
        if part in schema.get("properties", {}):
            name += f".{part}" if name else part
            schema = schema["properties"][part]
        else:
            name += f"[{json.dumps(part)}]"
            extra = schema.get("additionalProperties")
            schema = extra if isinstance(extra, dict) else {}
        data = data.get(part) if isinstance(data, dict) else None
    return name or "the request body"


def _message(error: fastjsonschema.JsonSchemaValueException, body: Any, schema: dict[str, Any]) -> str:
    field = _field_name(list(error.path), body, schema)
    rule = error.definition or {}
    if error.rule == "minimum":
        expected = f"at least {rule['minimum']}"
    elif error.rule == "maximum":
        expected = f"at most {rule['maximum']}"
    else:
        expected = _describe_schema(rule)
    return f"invalid request body: {field} must be {expected}, not {_describe_value(error.value)}"


def as_go_decodes(value: Any, schema: dict[str, Any]) -> Any:
    """The body as moby's decoder sees it: object members sent as null are absent (null
    inside a list stays, and is refused), and a string where Go's StrSlice is (`"Cmd":
    "echo hi"`) is a one-element list."""
    if isinstance(value, dict):
        members = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {key: as_go_decodes(item, members.get(key, extra if isinstance(extra, dict) else {}))
                for key, item in value.items() if item is not None}
    if isinstance(value, list):
        items = schema.get("items", {})
        return [as_go_decodes(item, items) for item in value]
    if isinstance(value, str) and schema.get("type") == _STRING_OR_LIST:
        return [value]
    return value


class RouteTypes:
    """What one route's requests must look like: a body schema and query parameter types."""

    def __init__(self, route: str, body: dict[str, Any] | None, query: dict[str, str]) -> None:
        self.route = route
        self.body_schema = body
        self.query = query
        self._validator: Any = None
        self._lock = threading.Lock()

    def _compiled(self) -> Any:
        # compiled on first use: the create route's validator takes ~50 ms to generate,
        # which daemon start should not pay for every route
        with self._lock:
            if self._validator is None:
                self._validator = fastjsonschema.compile(self.body_schema)
            return self._validator

    def check_body(self, body: Any) -> Any:
        """The body with nulls dropped, or InvalidParameter naming the first bad field."""
        if self.body_schema is None:
            return body
        body = as_go_decodes(body, self.body_schema)
        try:
            self._compiled()(body)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise InvalidParameter(_message(exc, body, self.body_schema)) from None
        return body

    def check_query(self, query: dict[str, list[str]]) -> None:
        for name, values in query.items():
            if self.query.get(name) != "integer":
                continue  # moby reads booleans loosely (anything but "", 0, false, no is true)
            for value in values:
                try:
                    if value.strip():
                        int(value)
                except ValueError:
                    raise InvalidParameter(
                        f"invalid query parameter {name}={value[:40]!r}: it must be an integer"
                    ) from None


def _route_key(method: str, pattern: str) -> str:
    """Our `{name:.+}` and the swagger's `{name}` both become `{}`: names differ between them."""
    out, depth = [], 0
    for char in pattern:
        if char == "{":
            depth += 1
            if depth == 1:
                out.append("{}")
        elif char == "}":
            depth -= 1
        elif depth == 0:
            out.append(char)
    return f"{method} {''.join(out).rstrip('/')}"


@cache
def _all_routes() -> dict[str, RouteTypes]:
    text = resources.files("dockyard.api").joinpath("engine-api-1.44.json").read_text()
    routes = {}
    for route, types in json.loads(text)["routes"].items():
        method, path = route.split(" ", 1)
        routes[_route_key(method, path)] = RouteTypes(route, types["body"], types["query"])
    return routes


def warm_up() -> None:
    """Compile the create route's validator on a background thread: the first
    `docker run` after a daemon start need not pay its ~70 ms."""
    types = route_types("POST", "/containers/create")
    if types is not None:
        threading.Thread(target=types._compiled, daemon=True, name="validator warm-up").start()


def route_types(method: str, pattern: str) -> RouteTypes | None:
    """The published types of the route our router serves as `pattern`, if the API has it."""
    return _all_routes().get(_route_key(method, pattern))
