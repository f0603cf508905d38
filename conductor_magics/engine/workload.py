"""Workload queries: named SQL statements to tune indexes for.

A workload file (``storages/<id>/workload.sql``) holds named queries in the
``-- name: NAME`` form that aiosql and yesql use::

    -- name: customer_orders_by_status
    SELECT id FROM orders WHERE customer_id = :customer_id AND status = :status;

Bind parameters use the ``:name`` form; values are drawn from the data when a
query is benchmarked or advised on (see :func:`sample_parameters`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConductorError

_NAME_LINE = re.compile(r"^\s*--\s*name\s*:\s*(?P<name>[A-Za-z_][\w.-]*)\s*$", re.MULTILINE)
_VALID_NAME = re.compile(r"^[A-Za-z_][\w.-]*$")


@dataclass
class Query:
    """One named workload query. ``params`` holds bound values once they are drawn."""

    name: str
    sql: str
    source: str = ""  # where it came from: workload.sql:LINE, spec.md:LINE, a file, a cell
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "sql": self.sql, "source": self.source}


def check_name(name: str) -> str:
    """A query name usable in ``-- name:`` lines (letters, digits, ``_ . -``)."""
    if not _VALID_NAME.match(name or ""):
        raise ConductorError(f"'{name}' is not a valid query name",
                             hint="use letters, digits, _ . - and start with a letter")
    return name


def parse_workload(text: str, source: str = "workload.sql") -> list[Query]:
    """Named queries from a workload file. Text before the first ``-- name:`` line is
    ignored when it holds no SQL; unnamed SQL gets the names ``query_1``, ``query_2``…"""
    queries: list[Query] = []
    matches = list(_NAME_LINE.finditer(text))
    if not matches:
        statements = [s.strip() for s in text.split(";") if _has_sql(s)]
        return [Query(f"query_{i}", s, f"{source}") for i, s in enumerate(statements, 1)]
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[match.end():end].strip()
        line = text.count("\n", 0, match.start()) + 1
        if _has_sql(body):
            queries.append(Query(match.group("name"), body.rstrip().rstrip(";").rstrip(),
                                 f"{source}:{line}"))
    return queries


def _has_sql(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())


def format_workload(queries: list[Query]) -> str:
    """The workload file for ``queries`` (inverse of :func:`parse_workload`)."""
    return "".join(f"-- name: {q.name}\n{q.sql.strip().rstrip(';')};\n\n" for q in queries).rstrip("\n") + "\n"


def upsert(text: str, query: Query) -> str:
    """The workload file text with ``query`` added, or replacing the query of that name
    (other queries, their order and comments kept)."""
    queries = parse_workload(text) if text.strip() else []
    names = [q.name for q in queries]
    if query.name in names:
        queries[names.index(query.name)] = query
    else:
        queries.append(query)
    return format_workload(queries)
