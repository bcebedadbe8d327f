"""The `filters` query parameter of list and events endpoints.

The docker CLI sends `{"key": {"value": true}}`, docker-py and older clients send
`{"key": ["value"]}`; both arrive here and leave as `{key: [values]}`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from dockyard.errors import InvalidParameter


def parse_filters(raw: str | None, allowed: Iterable[str]) -> dict[str, list[str]]:
    if not raw:
        return {}
    try:
        decoded = json.loads(raw)
    except ValueError as exc:
        raise InvalidParameter(f"invalid filter: filters are not valid JSON: {exc}") from None
    if decoded is None:
        return {}
    if not isinstance(decoded, dict):
        raise InvalidParameter("invalid filter: expected a JSON object of filter names")
    allowed = set(allowed)
    result: dict[str, list[str]] = {}
    for key, values in decoded.items():
        if key not in allowed:
            raise InvalidParameter(f"invalid filter '{key}'")
        if isinstance(values, dict):
            result[key] = [value for value, enabled in values.items() if enabled]
        elif isinstance(values, list) and all(isinstance(v, str) for v in values):
            result[key] = list(values)
        elif isinstance(values, str):
            result[key] = [values]
        else:
            raise InvalidParameter(f"invalid filter '{key}': values must be strings")
    return result


def match_labels(wanted: list[str], labels: dict[str, str]) -> bool:
    """`label=key` needs the key; `label=key=value` needs that value (all must match)."""
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True
