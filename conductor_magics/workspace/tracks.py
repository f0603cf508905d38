"""tracks.md: the registry of storage components.

Two forms are read: the storage-conductor table (columns matched by header
name, not position; blank placeholder rows ignored) and the list form
(``- [~] **Track: title**`` followed by a ``Link:`` line naming the folder).
A table's Status cell holds a status word or a checkbox mark (``[x]``, ``[ ]``,
``[~]``, ``[!]``, ``[-]``), as other conductor tools write it.
Updates edit the status word (or the mark's one character) and the Updated
Date cell in place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .files import edit_file
from .plan import decode_markdown
from .problems import Problem
from .status import (
    MARK_STATUS,
    STATUS_MARK,
    find_status_word,
    parse_checkbox,
    parse_status,
    styled,
)
from .timestamps import format_like, parse_timestamp

#: canonical column → normalised header names that mean it
COLUMNS = {
    "id": ("storageid", "id", "trackid", "storage", "track", "componentid"),
    "title": ("title", "name", "description"),
    "storage_type": ("storagetype",),
    "backend": ("backend", "engine", "database", "db"),
    "type": ("type", "kind"),
    "status": ("status", "state"),
    "created": ("createddate", "created", "createdat", "datecreated"),
    "updated": ("updateddate", "updated", "updatedat", "lastupdated", "dateupdated"),
}
_SEPARATOR_RE = re.compile(r"^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$")
_LIST_ITEM_RE = re.compile(r"^(\s*(?:[-*+]|\d{1,9}[.)]|#{1,6})\s+\[)([ xX~!-])(\]\s+)(.*)$")
_LINK_RE = re.compile(r"(?:storages|tracks)/([^/\s)\]>]+)")
_PLACEHOLDER = {"", "-", "...", "…", "tbd", "—"}
# A checkbox mark inside a Status cell (``[x]``, ``**[~]**``, ``` `[ ]` ```).
_CELL_MARK_RE = re.compile(r"\[([ xX~!-])\]")


@dataclass
class Cell:
    text: str
    start: int  # character span of the cell's content within its line
    end: int


@dataclass
class TrackRow:
    id: str
    line: int
    form: str  # "table" or "list"
    cells: dict[str, Cell] = field(default_factory=dict)
    mark_col: int | None = None  # list form: column of the mark
    title: str | None = None
    status_text: str | None = None

    @property
    def status(self) -> str | None:
        if self.form == "list":
            return self.status_text
        return parse_checkbox(_plain(self.status_text or "")) or parse_status(self.status_text)

    def value(self, column: str) -> str | None:
        cell = self.cells.get(column)
        return _plain(cell.text) if cell else None

    @property
    def updated(self) -> datetime | None:
        return parse_timestamp(self.value("updated"))


@dataclass
class Tracks:
    path: Path
    rows: list[TrackRow]
    problems: list[Problem]
    form: str | None  # "table", "list" or None when the registry is empty

    def row(self, storage_id: str) -> TrackRow | None:
        for row in self.rows:
            if row.id == storage_id:
                return row
        return None


def _norm_header(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", _plain(text).lower())


def _plain(text: str) -> str:
    """Cell text without emphasis, code ticks or link syntax."""
    text = re.sub(r"\[([^\]]*)\]\(([^)]*)\)", lambda m: m.group(1) or m.group(2), text)
    text = re.sub(r"<!--.*?-->", "", text)
    return text.replace("**", "").replace("__", "").replace("`", "").strip().strip("*_").strip()


def split_cells(line: str) -> list[Cell]:
    """Cells of a table row with their spans; ``\\|`` and pipes in code spans do not split."""
    cells: list[Cell] = []
    bounds: list[int] = []
    in_code = False
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "`":
            in_code = not in_code
        elif ch == "|" and not in_code:
            bounds.append(i)
        i += 1
    stripped = line.rstrip("\r\n")
    edges = [-1] + bounds + [len(stripped)]
    for left, right in zip(edges, edges[1:], strict=False):
        raw = line[left + 1:right]
        lead = len(raw) - len(raw.lstrip())
        content = raw.strip()
        start = left + 1 + lead
        cells.append(Cell(content, start, start + len(content)))
    # A leading and a trailing pipe leave empty outer cells.
    if stripped.lstrip().startswith("|") and cells and not cells[0].text:
        cells = cells[1:]
    if stripped.rstrip().endswith("|") and cells and not cells[-1].text:
        cells = cells[:-1]
    return cells


def _opaque_lines(lines: list[str]) -> set[int]:
    """Indexes of lines inside code fences or HTML comments."""
    hidden: set[int] = set()
    fence: str | None = None
    in_comment = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if fence:
            hidden.add(i)
            if stripped.startswith(fence):
                fence = None
            continue
        if in_comment:
            hidden.add(i)
            if "-->" in line:
                in_comment = False
            continue
        match = re.match(r"^\s{0,3}(```+|~~~+)", line)
        if match:
            fence = match.group(1)
            hidden.add(i)
            continue
        if "<!--" in line and "-->" not in line.split("<!--", 1)[1]:
            in_comment = True
            hidden.add(i)
    return hidden


def parse_tracks(data: bytes, path: Path) -> Tracks:
    """Parse tracks.md (either form) into rows; problems carry file:line."""
    text = decode_markdown(data, path)
    lines = text.splitlines(keepends=True)
    hidden = _opaque_lines(lines)
    rows: list[TrackRow] = []
    problems: list[Problem] = []
    form = None

    i = 0
    while i < len(lines):
        if i in hidden:
            i += 1
            continue
        line = lines[i]
        if line.lstrip().startswith("|") and i + 1 < len(lines) and _SEPARATOR_RE.match(lines[i + 1]):
            header = [_norm_header(c.text) for c in split_cells(line)]
            columns = {}
            for name, accepted in COLUMNS.items():
                for idx, head in enumerate(header):
                    if head in accepted and idx not in columns.values():
                        columns[name] = idx
                        break
            j = i + 2
            body = []
            while j < len(lines) and lines[j].strip().startswith("|"):
                body.append(j)
                j += 1
            if "id" in columns or "status" in columns:
                form = "table"
                if "id" not in columns:
                    problems.append(Problem("error", path, i + 1, "tracks-no-id-column",
                                            "table has no Storage ID column"))
                if "status" not in columns:
                    problems.append(Problem("error", path, i + 1, "tracks-no-status-column",
                                            "table has no Status column (expected a 'Status' header)"))
                if "id" in columns:
                    for k in body:
                        row = _table_row(lines[k], k + 1, columns)
                        if row is not None:
                            rows.append(row)
            i = j
            continue
        match = _LIST_ITEM_RE.match(line.rstrip("\r\n"))
        if match and "track" in match.group(4).lower():
            form = form or "list"
            row = _list_row(lines, i, match, hidden)
            if row is None:
                problems.append(Problem("error", path, i + 1, "tracks-no-link",
                                        "track item has no 'Link:' line naming storages/<id>/"))
            else:
                rows.append(row)
        i += 1
    return Tracks(path=path, rows=rows, problems=problems, form=form)


def _table_row(line: str, lineno: int, columns: dict[str, int]) -> TrackRow | None:
    cells = split_cells(line)
    # A template's blank row may still carry an unticked box in its Status cell.
    if all(_plain(c.text).lower() in _PLACEHOLDER or parse_checkbox(_plain(c.text)) for c in cells):
        return None
    by_name = {name: cells[idx] for name, idx in columns.items() if idx < len(cells)}
    id_cell = by_name.get("id")
    if id_cell is None:
        return None
    storage_id = _plain(id_cell.text)
    if not storage_id or "/" in storage_id:
        # ``[](storages/x/)``: _plain falls back to the link target, which names the folder.
        link = _LINK_RE.search(id_cell.text)
        storage_id = link.group(1) if link else storage_id
    status_cell = by_name.get("status")
    return TrackRow(id=storage_id, line=lineno, form="table", cells=by_name,
                    title=_plain(by_name["title"].text) if "title" in by_name else None,
                    status_text=status_cell.text if status_cell else None)


def _list_row(lines: list[str], i: int, match: re.Match, hidden: set[int]) -> TrackRow | None:
    title = _plain(match.group(4))
    title = re.sub(r"^track\s*:\s*", "", title, flags=re.IGNORECASE).strip()
    for j in range(i, min(i + 6, len(lines))):
        if j > i and (j in hidden or _LIST_ITEM_RE.match(lines[j].rstrip("\r\n"))):
            break
        link = _LINK_RE.search(lines[j])
        if link:
            return TrackRow(id=link.group(1), line=i + 1, form="list",
                            mark_col=len(match.group(1)), title=title,
                            status_text=MARK_STATUS[match.group(2)])
    return None


def read_tracks(path: Path) -> Tracks:
    path = Path(path)
    return parse_tracks(path.read_bytes(), path)


def edited_tracks_bytes(data: bytes, path: Path, storage_id: str, *, status: str | None = None,
                        updated: datetime | None = None) -> bytes:
    """tracks.md bytes with one row's status and Updated Date changed in place."""
    tracks = parse_tracks(data, path)
    row = tracks.row(storage_id)
    if row is None:
        return data
    bom = b"\xef\xbb\xbf" if data.startswith(b"\xef\xbb\xbf") else b""
    text = decode_markdown(data, path)
    lines = text.splitlines(keepends=True)
    line = lines[row.line - 1]
    edits: list[tuple[int, int, str]] = []
    if status is not None and row.status != status:
        if row.form == "list":
            mark = STATUS_MARK.get(status, " ")
            edits.append((row.mark_col, row.mark_col + 1, mark))
        elif "status" in row.cells:
            edits.extend(_status_cell_edits(row.cells["status"], status))
    if updated is not None and "updated" in row.cells:
        cell = row.cells["updated"]
        new = format_like(updated, _plain(cell.text) or None)
        if _plain(cell.text) != new:
            edits.append((cell.start, cell.end, new))
    for start, end, new in sorted(edits, reverse=True):
        line = line[:start] + new + line[end:]
    lines[row.line - 1] = line
    return bom + "".join(lines).encode("utf-8")


def _status_cell_edits(cell: Cell, status: str) -> list[tuple[int, int, str]]:
    """Edits that make a table's Status cell say ``status`` in the form it already has: a
    checkbox mark changes its one character, a word is rewritten in its style."""
    edits: list[tuple[int, int, str]] = []
    span = find_status_word(cell.text)
    mark = _CELL_MARK_RE.search(cell.text)
    if mark and (span is None or mark.end() <= span[0]):
        new_mark = STATUS_MARK.get(status)
        if new_mark is not None:
            edits.append((cell.start + mark.start(1), cell.start + mark.end(1), new_mark))
        elif span is None:
            # No mark means Reverted: write the word, so the row reads back as Reverted.
            edits.append((cell.start + mark.start(), cell.start + mark.end(), status))
    if span:
        old = cell.text[span[0]:span[1]]
        edits.append((cell.start + span[0], cell.start + span[1], styled(status, old)))
    elif not edits:
        edits.append((cell.start, cell.end, status))
    return edits


def update_track(path: Path, storage_id: str, *, status: str | None = None,
                 updated: datetime | None = None) -> bool:
    """Re-read tracks.md and update one row in place (caller holds the lock), again on the
    new bytes when another writer replaced it meanwhile.

    Returns whether the file changed; a component without a row changes nothing.
    """
    path = Path(path)
    if not path.exists():
        return False

    def edit(data: bytes | None) -> bytes | None:
        if data is None:
            return None
        return edited_tracks_bytes(data, path, storage_id, status=status, updated=updated)

    return edit_file(path, edit) is not None
