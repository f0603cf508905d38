"""The one EXPLAIN reader: a plan of either dialect read into one :class:`Plan`.

``bench``, the index advisor and the indexing gate all read plans here, so they agree on
what a *full scan* is and which indexes a plan uses:

- SQLite (``EXPLAIN QUERY PLAN`` rows): ``SCAN t`` / ``SCAN TABLE t AS x`` with nothing
  after it reads the whole table; ``SEARCH``/``SCAN … USING [COVERING] INDEX ix`` names an
  index; ``USING [INTEGER] PRIMARY KEY`` is a primary-key (rowid) lookup. Automatic
  indexes, subqueries (``SCAN (subquery-1)``) and constant rows are none of these.
- PostgreSQL (``EXPLAIN (FORMAT JSON)``): a ``Seq Scan`` node reads its relation whole;
  ``Index Name`` names an index (``Index Only Scan``: covering); the root's
  ``Total Cost`` and ``Plan Rows`` are the planner's estimates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: how a SQLite rowid / WITHOUT ROWID primary-key lookup shows in :attr:`Plan.indexes`
PRIMARY_KEY_LOOKUP = "(primary key)"

# SQLite prints the index name as it is, spaces and all ("USING INDEX ix cust (a=?)"): the
# name ends where the constraint " (…)", " LEFT-JOIN" or the line does.
_SQLITE_USING = re.compile(r"\bUSING (?:COVERING )?INDEX ")
_SQLITE_NAME_END = re.compile(r"(?= \(| LEFT-JOIN|$)")
_SQLITE_NAME = re.compile(r'"((?:[^"]|"")+)"(?= \(| LEFT-JOIN|$)|(.+?)(?= \(| LEFT-JOIN|$)')
#: "SCAN t", "SCAN t AS x", older "SCAN TABLE t AS x": the whole table, no index
_SQLITE_FULL_SCAN = re.compile(r"^SCAN (?:TABLE )?(?!CONSTANT ROW)([^\s(]\S*)(?: AS (\S+))?$")
_SQLITE_ACCESS = re.compile(r"^(SCAN|SEARCH) (?:TABLE )?([^\s(]\S*)(?: AS (\S+))?(?: USING (.*))?$")
_SQLITE_KEY = re.compile(r"USING (?:INTEGER )?PRIMARY KEY")
_SQLITE_CONSTRAINT = re.compile(r"\(([^()]*)\)\s*(?:LEFT-JOIN)?$")


@dataclass
class Step:
    """One table access of a SQLite plan (the advisor's row estimates are built on these)."""

    node: int
    parent: int
    op: str  # SCAN | SEARCH | SORT (a temporary b-tree) | OTHER
    name: str | None = None  # the table or alias as the plan prints it
    index: str | None = None
    covering: bool = False
    primary_key: bool = False
    #: the constraint columns: [(column, operator)] from "(a=? AND b>?)"
    constraint: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Plan:
    """A plan, read: ``indexes`` every index it names (in order, repeats kept),
    ``full_scans`` the tables it reads whole (aliases resolved where known), ``covering``
    the indexes it reads without touching the table, ``cost``/``rows`` the planner's
    estimates where the engine gives them (PostgreSQL), ``text`` one line per node."""

    text: str
    indexes: list[str]
    full_scans: list[str]
    covering: list[str] = field(default_factory=list)
    primary_key: bool = False
    cost: float | None = None
    rows: float | None = None
    raw: Any = None
    steps: list[Step] = field(default_factory=list)

    @property
    def full_scan(self) -> bool:
        """The plan reads at least one table whole."""
        return bool(self.full_scans)

    def uses(self, name: str, fold: bool = False) -> bool:
        """The plan names index ``name`` (``fold``: ignoring case, as SQLite does)."""
        if fold:
            return name.lower() in {i.lower() for i in self.indexes}
        return name in self.indexes


def sqlite_plan_indexes(detail: str, known: Sequence[str] = ()) -> list[str]:
    """The index names one SQLite plan line names. ``known`` (the database's index
    names) are matched exactly first, longest first, as written or double-quoted, so a
    name with spaces or one that starts another (``ix_a``, ``ix_a_b``) is read whole;
    other names are read up to the constraint."""
    found = []
    ordered = sorted(known, key=len, reverse=True)
    for match in _SQLITE_USING.finditer(detail):
        rest = detail[match.end():]
        name = None
        for candidate in ordered:
            for form in (candidate, '"' + candidate.replace('"', '""') + '"'):
                if rest[:len(form)].lower() == form.lower() and \
                        _SQLITE_NAME_END.match(rest, len(form)):
                    name = candidate
                    break
            if name is not None:
                break
        if name is None:
            parsed = _SQLITE_NAME.match(rest)
            if parsed is None:
                continue
            name = parsed.group(1).replace('""', '"') if parsed.group(1) else parsed.group(2)
        found.append(name)
    return found


def sqlite_full_scan(detail: str) -> str | None:
    """The table (or alias) one SQLite plan line reads whole, else None."""
    match = _SQLITE_FULL_SCAN.match(detail)
    return (match.group(2) or match.group(1)) if match else None


def _constraint(detail: str) -> list[tuple[str, str]]:
    match = _SQLITE_CONSTRAINT.search(detail)
    if not match:
        return []
    found = []
    for part in match.group(1).split(" AND "):
        term = re.match(r"^\s*(.+?)\s*(=|>=|<=|>|<)\?", part)
        if term:
            found.append((term.group(1).strip('"'), term.group(2)))
    return found


def read_sqlite(rows: Sequence[Sequence[Any]], known: Sequence[str] = (),
                aliases: Mapping[str, str] | None = None) -> Plan:
    """Read ``EXPLAIN QUERY PLAN`` rows ``(id, parent, notused, detail)``. ``known``: the
    database's index names (see :func:`sqlite_plan_indexes`); ``aliases`` (lower-cased
    alias → table) names full scans by their table rather than the query's alias."""
    depth: dict[int, int] = {}
    raw, lines, used, scans, covering, steps = [], [], [], [], [], []
    primary = False
    for row in rows:
        node_id, parent, detail = row[0], row[1], str(row[-1])
        depth[node_id] = depth.get(parent, -1) + 1
        raw.append({"id": node_id, "parent": parent, "detail": detail})
        lines.append("  " * depth[node_id] + detail)
        names = sqlite_plan_indexes(detail, known)
        used.extend(names)
        if "USING COVERING INDEX" in detail and names and "AUTOMATIC" not in detail:
            covering.extend(names)
        key = bool(_SQLITE_KEY.search(detail))
        primary = primary or key
        whole = sqlite_full_scan(detail)
        if whole is not None:
            scans.append((aliases or {}).get(whole.lower(), whole))
        access = _SQLITE_ACCESS.match(detail)
        if access:
            name = access.group(3) or access.group(2)
            steps.append(Step(node_id, parent, access.group(1), name, names[0] if names else None,
                              "COVERING" in (access.group(4) or ""), key, _constraint(detail)))
        elif detail.startswith("USE TEMP B-TREE"):
            steps.append(Step(node_id, parent, "SORT"))
        else:
            steps.append(Step(node_id, parent, "OTHER"))
    return Plan("\n".join(lines), used, list(dict.fromkeys(scans)), covering, primary,
                raw=raw, steps=steps)


def _pg_nodes(node: dict, depth: int = 0) -> Iterator[tuple[int, dict]]:
    yield depth, node
    for child in node.get("Plans", []):
        yield from _pg_nodes(child, depth + 1)


def read_postgres(document: Any) -> Plan:
    """Read an ``EXPLAIN (FORMAT JSON)`` document (with or without ANALYZE)."""
    if isinstance(document, str):
        document = json.loads(document)
    lines, used, scans, covering = [], [], [], []
    cost = rows = None
    for entry in document:
        root = entry["Plan"]
        if cost is None:
            cost, rows = root.get("Total Cost"), root.get("Plan Rows")
        for depth, node in _pg_nodes(root):
            line = node["Node Type"]
            if "Index Name" in node:
                used.append(node["Index Name"])
                if node["Node Type"] == "Index Only Scan":
                    covering.append(node["Index Name"])
                line += f" using {node['Index Name']}"
            if "Relation Name" in node:
                line += f" on {node['Relation Name']}"
                if node["Node Type"] == "Seq Scan":
                    scans.append(node["Relation Name"])
            if "Actual Total Time" in node:
                line += (f" (actual {node['Actual Total Time']:.3f} ms, "
                         f"rows={node.get('Actual Rows')}, loops={node.get('Actual Loops')})")
            else:
                line += f" (cost={node.get('Total Cost')} rows={node.get('Plan Rows')})"
            lines.append("  " * depth + line)
    return Plan("\n".join(lines), used, list(dict.fromkeys(scans)), covering, False,
                float(cost) if cost is not None else None,
                float(rows) if rows is not None else None, raw=document)


def one_line(plan: Plan) -> str:
    """The plan's nodes on one line (the advisor's reports): ``a; b; c``."""
    return "; ".join(line.strip() for line in plan.text.splitlines())


__all__ = ["PRIMARY_KEY_LOOKUP", "Plan", "Step", "one_line", "read_postgres", "read_sqlite",
           "sqlite_full_scan", "sqlite_plan_indexes"]
