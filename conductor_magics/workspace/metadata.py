"""metadata.json: read leniently (storage-conductor and Gemini-style keys), edited in place.

An update replaces only the text of the values it changes (and inserts a key
that is missing before the closing brace), so key order, unknown keys, indent
width, spacing and the trailing newline stay exactly as they were.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from json.decoder import scanstring
from pathlib import Path
from typing import Any

from ..errors import WorkspaceFormatError
from .files import edit_file
from .status import parse_status, styled
from .timestamps import format_like, parse_timestamp

#: canonical field → keys accepted for it, first one preferred when adding.
FIELD_KEYS = {
    "id": ("id", "storage_id", "track_id"),
    "title": ("title", "name", "description"),
    "type": ("type",),
    "storage_type": ("storage_type",),
    "backend": ("backend", "engine"),
    "status": ("status",),
    "created": ("created", "created_at", "createdAt"),
    "updated": ("updated", "updated_at", "updatedAt"),
}

_WS = " \t\n\r"


@dataclass
class Metadata:
    path: Path
    text: str
    data: dict[str, Any]
    #: top-level key → (start, end) character span of its value in ``text``
    spans: dict[str, tuple[int, int]]
    close_brace: int

    def key_for(self, field: str) -> str | None:
        """The key this file uses for a canonical field, if present."""
        for key in FIELD_KEYS.get(field, (field,)):
            if key in self.data:
                return key
        return None

    def get(self, field: str) -> Any:
        key = self.key_for(field)
        return self.data.get(key) if key else None

    @property
    def id(self) -> str | None:
        value = self.get("id")
        return str(value) if value is not None else None

    @property
    def status(self) -> str | None:
        return parse_status(self.get("status")) if isinstance(self.get("status"), str) else None

    @property
    def updated(self) -> datetime | None:
        return parse_timestamp(self.get("updated"))

    @property
    def created(self) -> datetime | None:
        return parse_timestamp(self.get("created"))

    def line_of(self, key: str) -> int | None:
        span = self.spans.get(key)
        return self.text.count("\n", 0, span[0]) + 1 if span else None


def parse_metadata(text: str, path: Path) -> Metadata:
    """Parse metadata.json text; the top level must be an object."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkspaceFormatError(f"invalid JSON: {exc.msg} (column {exc.colno})", path=path,
                                   line=exc.lineno, hint="fix the JSON syntax") from exc
    if not isinstance(data, dict):
        raise WorkspaceFormatError(
            f"expected a JSON object at the top level, found {type(data).__name__}",
            path=path, line=1)
    spans, close = _value_spans(text)
    return Metadata(path=path, text=text, data=data, spans=spans, close_brace=close)


def read_metadata(path: Path) -> Metadata:
    """Read and parse metadata.json."""
    path = Path(path)
    return metadata_from_bytes(path.read_bytes(), path)


def metadata_from_bytes(raw: bytes, path: Path) -> Metadata:
    """Parse metadata.json's bytes (a UTF-8 BOM is allowed)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise WorkspaceFormatError("not valid UTF-8", path=path, line=line,
                                   hint="save the file as UTF-8") from exc
    return parse_metadata(text, path)


def edited_metadata_bytes(raw: bytes, path: Path, changes: dict[str, Any]) -> bytes:
    """metadata.json's bytes with canonical fields changed in place (BOM kept)."""
    meta = metadata_from_bytes(raw, path)
    text = edited_text(meta, changes)
    if text == meta.text:
        return raw
    bom = b"\xef\xbb\xbf" if raw.startswith(b"\xef\xbb\xbf") else b""
    return bom + text.encode("utf-8")


def _value_spans(text: str) -> tuple[dict[str, tuple[int, int]], int]:
    decoder = json.JSONDecoder()
    i = _skip(text, 0)
    if text.startswith("\ufeff"):
        i = _skip(text, 1)
    assert text[i] == "{"
    i = _skip(text, i + 1)
    spans: dict[str, tuple[int, int]] = {}
    while text[i] != "}":
        key, i = scanstring(text, i + 1)
        i = _skip(text, i)
        i = _skip(text, i + 1)  # past ':'
        _value, end = decoder.raw_decode(text, i)
        spans[key] = (i, end)
        i = _skip(text, end)
        if text[i] == ",":
            i = _skip(text, i + 1)
    return spans, i


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _dump_like(value: Any, meta: Metadata) -> str:
    ascii_only = all(ord(c) < 128 for c in meta.text)
    return json.dumps(value, ensure_ascii=ascii_only)


def edited_text(meta: Metadata, changes: dict[str, Any]) -> str:
    """The file's text with canonical fields changed (status styled like the old value,
    timestamps formatted like the old ones); missing keys are appended."""
    replacements: list[tuple[int, int, str]] = []
    additions: list[tuple[str, Any]] = []
    for field, value in changes.items():
        key = meta.key_for(field)
        old = meta.data.get(key) if key else None
        if field == "status":
            value = styled(value, old if isinstance(old, str) else None, lower_joiner="_")
        elif isinstance(value, datetime):
            like = old if isinstance(old, str) else _sibling_timestamp(meta)
            value = format_like(value, like)
        if key is None:
            additions.append((FIELD_KEYS.get(field, (field,))[0], value))
        elif old != value:
            start, end = meta.spans[key]
            replacements.append((start, end, _dump_like(value, meta)))
    text = meta.text
    for start, end, new in sorted(replacements, reverse=True):
        text = text[:start] + new + text[end:]
    if additions:
        text = _append_keys(text, meta, additions)
    return text


def _sibling_timestamp(meta: Metadata) -> str | None:
    for field in ("updated", "created"):
        value = meta.get(field)
        if isinstance(value, str):
            return value
    return None


def _append_keys(text: str, meta: Metadata, additions: list[tuple[str, Any]]) -> str:
    # Recompute the closing brace on the possibly edited text.
    _spans, close = _value_spans(text)
    before = text[:close].rstrip(_WS)
    indent = _indent_of(meta.text)
    newline = "\r\n" if "\r\n" in meta.text else "\n"
    pieces = [f"{json.dumps(k)}: {_dump_like(v, meta)}" for k, v in additions]
    if indent is None:  # a one-line object
        sep = "" if before.endswith("{") else ", "
        return before + sep + ", ".join(pieces) + text[close:]
    sep = "" if before.endswith("{") else ","
    body = sep + "".join(f"{newline}{indent}{p}" + ("," if n < len(pieces) - 1 else "")
                         for n, p in enumerate(pieces))
    return before + body + newline + text[close:]


def _indent_of(text: str) -> str | None:
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" \t")
        if stripped.startswith('"'):
            return line[: len(line) - len(stripped)]
    return None


def update_metadata(path: Path, changes: dict[str, Any]) -> Metadata:
    """Re-read metadata.json, change canonical fields in place and write it atomically
    (again on the new bytes when another writer replaced it meanwhile).

    The caller holds the workspace lock. Returns the metadata as written.
    """
    path = Path(path)

    def edit(raw: bytes | None) -> bytes | None:
        if raw is None:
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return edited_metadata_bytes(raw, path, changes)

    written = edit_file(path, edit)
    return read_metadata(path) if written is None else metadata_from_bytes(written, path)
