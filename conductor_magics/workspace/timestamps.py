"""Timestamps written in the format a file already uses."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def now() -> datetime:
    return datetime.now(UTC)


def format_like(moment: datetime, like: str | None) -> str:
    """``moment`` as text shaped like ``like`` (date only, ``Z`` or offset, fractions)."""
    moment = moment.astimezone(UTC)
    if like and _DATE_RE.match(like.strip()):
        return moment.strftime("%Y-%m-%d")
    with_fraction = bool(like and re.search(r"T\d\d:\d\d:\d\d\.\d+", like))
    text = moment.isoformat(timespec="microseconds" if with_fraction else "seconds")
    if like and (like.endswith("+00:00") or re.search(r"[+-]\d\d:\d\d$", like)):
        return text
    if like and re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d\d:\d\d(:\d\d)?(\.\d+)?$", like.strip()):
        return text.replace("+00:00", "")  # the file uses naive timestamps
    return text.replace("+00:00", "Z")


def parse_timestamp(text: str | None) -> datetime | None:
    """A datetime from ISO-8601 text (date only, ``Z``, offsets); None if unparsable."""
    if not text or not isinstance(text, str):
        return None
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment
