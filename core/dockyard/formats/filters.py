"""The `filters` query parameter of list and events endpoints.

The docker CLI sends `{"key": {"value": true}}`, docker-py and older clients send
`{"key": ["value"]}`; both arrive here and leave as `{key: [values]}`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable

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


def label_filters_match(filters: dict[str, list[str]], labels: dict[str, str]) -> bool:
    """`label=` filters must all match and `label!=` filters must all miss."""
    if "label" in filters and not match_labels(filters["label"], labels):
        return False
    return not any(match_labels([item], labels) for item in filters.get("label!", []))


def until_timestamp(value: str, parse_time: Callable[[str], float]) -> float:
    """An `until=` filter as unix seconds: a duration ago (10m), unix seconds, or a time
    `parse_time` understands (0 when it does not)."""
    value = value.strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|h)", value)
    if match:
        return time.time() - float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]
    try:
        return float(value)
    except ValueError:
        moment = parse_time(value)
        if moment:
            return moment
    raise InvalidParameter(f"invalid filter 'until={value}'")
