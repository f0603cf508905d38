"""Where things are written down, for drift: lines in schema.sql and in revision files,
and the evidence a phase verdict records (content hashes of the files it rested on).

Plain text search: no SQL parser and no database here. A line is a 1-based number, or
None when the text does not state the object.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

from .layout import BACKUPS_FOLDER, MIGRATION_VERSIONS, SCHEMA_FILE

_CREATE_TABLE = r"create\s+(?:temp(?:orary)?\s+)?table\s+(?:if\s+not\s+exists\s+)?[\"`\[]?{name}[\"`\]]?\s*\("
_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)


def _word(name: str) -> str:
    return rf"(?<![\w]){re.escape(name)}(?![\w])"


def sql_line(text: str | None, table: str, name: str | None = None) -> int | None:
    """The line of ``table``'s CREATE TABLE in DDL text, or with ``name`` the first line
    inside that statement (or anywhere after it, for an index) that names it."""
    if not text:
        return None
    lines = text.splitlines()
    pattern = re.compile(_CREATE_TABLE.format(name=re.escape(table)), re.IGNORECASE)
    start = next((i for i, line in enumerate(lines) if pattern.search(line)), None)
    if name is None:
        return None if start is None else start + 1
    word = re.compile(_word(name), re.IGNORECASE)
    for i in range(start + 1 if start is not None else 0, len(lines)):
        if word.search(lines[i]):
            return i + 1
    return None


def revision_files(component_dir: Path) -> list[Path]:
    """The component's revision files, in file-name order (which is creation order)."""
    folder = Path(component_dir) / MIGRATION_VERSIONS
    return sorted(folder.glob("*.py")) if folder.is_dir() else []


def revision_id(path: Path) -> str | None:
    """The ``revision = '…'`` of a revision file."""
    try:
        match = _REVISION.search(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    return match.group(1) if match else None


def revision_mention(component_dir: Path, name: str) -> tuple[Path, int] | None:
    """The newest revision file, and line, that names ``name`` in quotes ('ix_x', "col")."""
    quoted = re.compile(rf"['\"]{re.escape(name)}['\"]")
    for path in reversed(revision_files(component_dir)):
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for i, line in enumerate(lines):
            if quoted.search(line) and "def downgrade" not in line:
                return path, i + 1
    return None


def sha256(path: Path) -> str | None:
    """The file's content hash, or None when it does not exist."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def modified(path: Path) -> datetime | None:
    """The file's modification time (UTC), or None when it does not exist."""
    try:
        return datetime.fromtimestamp(Path(path).stat().st_mtime, UTC)
    except FileNotFoundError:
        return None


def file_evidence(component_dir: Path) -> dict:
    """What a verdict records about the component's files, so that drift can tell later
    whether they changed: the declared schema's hash and the revision ids."""
    component_dir = Path(component_dir)
    return {
        "schema_sha256": sha256(component_dir / SCHEMA_FILE),
        "revisions": sorted(r for r in (revision_id(p) for p in revision_files(component_dir)) if r),
    }


def backups_folder(component_dir: Path) -> Path:
    return Path(component_dir) / BACKUPS_FOLDER
