"""Sizes and durations the way the docker CLI and API words them (go-units' rules)."""

from __future__ import annotations


def human_size(size: float, precision: int = 3) -> str:
    """Decimal units with `precision` significant digits: 4.26MB as `docker images`
    prints sizes, 4.259MB (precision 4, go-units HumanSize) in progress bars."""
    units = ("B", "kB", "MB", "GB", "TB", "PB")
    index = 0
    while size >= 1000 and index < len(units) - 1:
        size /= 1000
        index += 1
    return f"{size:.{precision}g}{units[index]}"


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: "Less than a second", "About a minute", "3 weeks"..."""
    seconds = int(seconds)
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = seconds // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"
