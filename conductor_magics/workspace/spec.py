"""The parts of a component's spec.md that the tools read: its Query Patterns, and its
Entities and Relationships tables (for drift).

A spec may list the queries the application depends on under a heading
"Query Patterns" (any level), each under its own sub-heading with a fenced
```` ```sql ```` block. Those become the component's workload when no
``workload.sql`` has been recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markdown_it import MarkdownIt

_SECTION = re.compile(r"^\s*query\s+patterns?\s*$", re.IGNORECASE)
_DDL = re.compile(r"^\s*(create|alter|drop)\b", re.IGNORECASE)
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class SpecQuery:
    """A SQL block of the spec's Query Patterns section."""

    name: str
    sql: str
    line: int  # 1-based line of the opening fence


def query_patterns(text: str) -> list[SpecQuery]:
    """Named SQL blocks of the "Query Patterns" section (empty when there is none).

    A block is named after the nearest heading above it inside the section
    (``### customer_orders_by_status`` → ``customer_orders_by_status``); a second
    block under the same heading gets ``_2``; blocks whose info string is not
    ``sql`` (or empty) are ignored.
    """
    tokens = MarkdownIt("commonmark").parse(text)
    found: list[SpecQuery] = []
    section_level: int | None = None
    heading: str | None = None
    counts: dict[str, int] = {}
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            level = int(token.tag[1:])
            title = tokens[i + 1].content if i + 1 < len(tokens) else ""
            if section_level is not None and level <= section_level:
                section_level = None  # the section ended
            if section_level is None:
                if _SECTION.match(title):
                    section_level, heading = level, None
                continue
            heading = title
        elif token.type == "fence" and section_level is not None:
            info = token.info.strip().split()[0].lower() if token.info.strip() else ""
            if info not in ("sql", "") or not token.content.strip():
                continue
            if _DDL.match(token.content):
                continue  # an index or table definition shown in the section, not a query
            base = _name(heading) or "query"
            counts[base] = counts.get(base, 0) + 1
            name = base if counts[base] == 1 else f"{base}_{counts[base]}"
            line = (token.map[0] + 1) if token.map else 0
            found.append(SpecQuery(name, token.content.strip().rstrip(";").strip(), line))
    return found


def _name(heading: str | None) -> str:
    if not heading:
        return ""
    text = heading.strip().strip("`").strip()
    return _NAME_CHARS.sub("_", text).strip("_")[:60]


# --------------------------------------------------------------------------- entities

_ENTITIES = re.compile(r"^\s*(entities|entity|tables|data\s+model)\s*$", re.IGNORECASE)
_RELATIONSHIPS = re.compile(r"^\s*relationships?\s*$", re.IGNORECASE)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: a named constraint as the storage standards spell them: pk_/uq_/ck_/fk_ and the like
_CONSTRAINT = re.compile(r"`((?:pk|uq|uk|ux|ck|chk|fk)_[A-Za-z0-9_]+)`", re.IGNORECASE)
_REFERENCES = re.compile(r"references\s+`?\s*([A-Za-z_]\w*)\s*\(\s*([A-Za-z_]\w*)\s*\)", re.IGNORECASE)
_DOTTED = re.compile(r"^`?([A-Za-z_]\w*)\.([A-Za-z_]\w*)`?")
#: an index or key named as serving a query: ix_/idx_/uq_/pk_ …
_INDEX_NAME = re.compile(r"`((?:ix|idx|ux|uq|uk|pk)_[A-Za-z0-9_]+)`", re.IGNORECASE)
_SERVED = re.compile(r"served\s+by|uses\s+(?:the\s+)?(?:index|key)", re.IGNORECASE)
_NULL_WORDS = {"yes": True, "y": True, "true": True, "null": True, "nullable": True,
               "no": False, "n": False, "false": False, "not null": False}


@dataclass(frozen=True)
class SpecColumn:
    """A row of an entity's Markdown table."""

    table: str
    name: str
    line: int
    nullable: bool | None  # None: the table has no Null column, or the cell says neither
    references: tuple[str, str] | None = None  # (table, column)


@dataclass(frozen=True)
class SpecConstraint:
    """A named constraint the spec gives an entity (in its table or a "Table constraint" line)."""

    table: str
    name: str
    line: int
    references: tuple[str, str] | None = None  # a foreign key's (table, column), when stated


@dataclass
class SpecTable:
    name: str
    line: int
    columns: list[SpecColumn]
    constraints: list[SpecConstraint]


@dataclass(frozen=True)
class SpecRelationship:
    """A row of the Relationships table: ``from_table.from_column`` → ``to_table.to_column``."""

    from_table: str
    from_column: str
    to_table: str
    to_column: str
    line: int


@dataclass
class SpecEntities:
    """What the spec's Entities (and Relationships) sections state, with line numbers.

    ``readable`` is False when the spec has no section a machine can read (``reason`` says
    why): the caller says so instead of guessing.
    """

    tables: list[SpecTable]
    relationships: list[SpecRelationship]
    readable: bool
    reason: str = ""


def _cells(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|"):
        body = body[:-1]
    return [c.strip() for c in body.split("|")]


def _is_rule(line: str) -> bool:
    return bool(re.match(r"^\s*\|?\s*:?-{2,}", line))


def _plain(cell: str) -> str:
    """A cell's first word without Markdown: ```id``` → ``id``."""
    text = cell.replace("`", " ").replace("*", " ").strip()
    return text.split()[0] if text.split() else ""


def _sections(lines: list[str]) -> list[tuple[int, int, str, int]]:
    """(line index, level, title, end index) of every heading outside code fences."""
    found: list[tuple[int, int, str]] = []
    fenced = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            found.append((i, len(match.group(1)), match.group(2).strip()))
    out = []
    for n, (i, level, title) in enumerate(found):
        end = next((j for j, lv, _ in found[n + 1:] if lv <= level), len(lines))
        out.append((i, level, title, end))
    return out


def _tables_in(lines: list[str], start: int, end: int) -> list[tuple[int, list[str], list[tuple[int, list[str]]]]]:
    """Markdown tables between two line indexes: (header line index, header, [(line index, cells)])."""
    found = []
    i = start
    fenced = False
    while i < end:
        line = lines[i]
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and "|" in line and i + 1 < end and _is_rule(lines[i + 1]):
            header = [c.strip().lower() for c in _cells(line)]
            rows = []
            j = i + 2
            while j < end and "|" in lines[j] and lines[j].strip():
                rows.append((j, _cells(lines[j])))
                j += 1
            found.append((i, header, rows))
            i = j
            continue
        i += 1
    return found


def _column_index(header: list[str], *words: str) -> int | None:
    for n, cell in enumerate(header):
        if any(w in cell for w in words):
            return n
    return None


def entities(text: str) -> SpecEntities:
    """The tables, columns, nullability, named constraints and relationships of the spec's
    Entities section (one sub-heading per table, each with a Markdown table whose header
    has a Column/Name/Field column, optionally Null and Constraints columns) and of its
    Relationships table (From / To as ``table.column``). Read leniently: rows without a
    plain column name are skipped; line numbers are 1-based."""
    lines = text.splitlines()
    sections = _sections(lines)
    section = next((s for s in sections if _ENTITIES.match(s[2])), None)
    if section is None:
        return SpecEntities([], [], False, "spec.md has no '## Entities' section")
    start, level, _, end = section
    tables: list[SpecTable] = []
    subs = [s for s in sections if start < s[0] < end and s[1] == level + 1]
    for sub_start, _, title, sub_end in subs:
        name = _plain(title)
        if not _IDENT.match(name):
            continue
        table = SpecTable(name, sub_start + 1, [], [])
        for _, header, rows in _tables_in(lines, sub_start + 1, sub_end):
            col = _column_index(header, "column", "name", "field", "attribute")
            if col is None:
                continue
            null = _column_index(header, "null")
            rest = [n for n in range(len(header)) if n not in (col, null)]
            for at, cells in rows:
                if col >= len(cells):
                    continue
                column = _plain(cells[col])
                if not _IDENT.match(column):
                    continue
                nullable = None
                if null is not None and null < len(cells):
                    nullable = _NULL_WORDS.get(cells[null].replace("`", "").strip().lower())
                other = " ".join(cells[n] for n in rest if n < len(cells))
                ref = _REFERENCES.search(other)
                references = (ref.group(1), ref.group(2)) if ref else None
                table.columns.append(SpecColumn(name, column, at + 1, nullable, references))
                for match in _CONSTRAINT.finditer(other):
                    is_fk = match.group(1).lower().startswith("fk_")
                    table.constraints.append(SpecConstraint(
                        name, match.group(1), at + 1, references if is_fk else None))
        for i in range(sub_start + 1, sub_end):
            if re.match(r"^\s*(table\s+constraints?|constraints?)\s*:", lines[i], re.IGNORECASE):
                for match in _CONSTRAINT.finditer(lines[i]):
                    table.constraints.append(SpecConstraint(name, match.group(1), i + 1))
        if table.columns:
            tables.append(table)
    relationships: list[SpecRelationship] = []
    rel = next((s for s in sections if _RELATIONSHIPS.match(s[2])), None)
    if rel is not None:
        for _, header, rows in _tables_in(lines, rel[0] + 1, rel[3]):
            src, dst = _column_index(header, "from", "child"), _column_index(header, "to", "parent", "reference")
            if src is None or dst is None:
                continue
            for at, cells in rows:
                a = _DOTTED.match(cells[src]) if src < len(cells) else None
                b = _DOTTED.match(cells[dst]) if dst < len(cells) else None
                if a and b:
                    relationships.append(SpecRelationship(a.group(1), a.group(2), b.group(1),
                                                          b.group(2), at + 1))
    if not tables:
        return SpecEntities([], relationships, False,
                            "spec.md's Entities section has no Markdown table with a Column column "
                            "under a heading per table")
    return SpecEntities(tables, relationships, True)


@dataclass(frozen=True)
class ServedBy:
    """An index (or key) the spec says serves a named query."""

    query: str
    index: str
    line: int


def served_indexes(text: str) -> list[ServedBy]:
    """The indexes the Query Patterns section says serve its queries: names in backticks
    (``ix_…``, ``uq_…``, ``pk_…``) in a "Served by …" paragraph under a query's heading, and
    the rows of an index table (Index | … | Serves) naming a query in their Serves cell."""
    lines = text.splitlines()
    sections = _sections(lines)
    section = next((s for s in sections if _SECTION.match(s[2])), None)
    if section is None:
        return []
    start, level, _, end = section
    queries = {_name(q.name) or q.name for q in query_patterns(text)}
    found: list[ServedBy] = []
    for sub_start, _, title, sub_end in (s for s in sections if start < s[0] < end):
        query = _name(title)
        if query in queries:
            paragraph: list[int] = []
            for i in range(sub_start + 1, sub_end):
                if _FENCE.match(lines[i]):
                    break
                paragraph.append(i)
            joined = " ".join(lines[i] for i in paragraph)
            served = _SERVED.search(joined)
            if served:
                tail = joined[served.start():]
                names = {m.group(1) for m in _INDEX_NAME.finditer(tail)}
                for name in sorted(names):
                    at = next((i for i in paragraph if f"`{name}`" in lines[i]), sub_start)
                    found.append(ServedBy(query, name, at + 1))
        for _, header, rows in _tables_in(lines, sub_start + 1, sub_end):
            idx, serves = _column_index(header, "index"), _column_index(header, "serve")
            if idx is None or serves is None:
                continue
            for at, cells in rows:
                name = _plain(cells[idx]) if idx < len(cells) else ""
                cell = cells[serves] if serves < len(cells) else ""
                for query in sorted(queries):
                    if re.search(rf"(?<![\w`]){re.escape(query)}(?![\w])", cell) and _IDENT.match(name):
                        found.append(ServedBy(query, name, at + 1))
    unique = {(f.query, f.index.lower()): f for f in found}
    return sorted(unique.values(), key=lambda f: (f.line, f.query))
