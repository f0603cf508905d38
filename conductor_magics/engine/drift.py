"""Schema comparisons for drift: a database against a schema, and queries against a schema.

Plain data in, plain data out: :func:`compare` runs Alembic's ``compare_metadata`` between
a database connection and a MetaData (the declared schema, or a reflected database) and
returns :class:`Difference` rows; :func:`resolve_query` qualifies a query against a
schema with sqlglot and names the tables and columns it cannot find. Which layer each
side is, and where it is written down, is the caller's business (``steps/drift.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, MetaData

from .fingerprint import TOOL_TABLES, user_tables


@dataclass(frozen=True)
class Difference:
    """One difference between a database (``actual``) and a schema (``expected``).

    ``change`` is ``missing`` (the schema has it, the database does not), ``extra`` (the
    database has it, the schema does not) or ``changed`` (both have it, differently).
    """

    change: str
    object_type: str  # table, column, index, unique constraint, foreign key, nullability, type
    table: str
    name: str  # the column, index or constraint name ('' for a table)
    detail: str = ""

    @property
    def object(self) -> str:
        if self.object_type == "table" or not self.name:
            return self.table
        if self.object_type in ("column", "nullability", "type"):
            return f"{self.table}.{self.name}"
        return self.name


def _include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "table":
        return name not in TOOL_TABLES
    table = getattr(obj, "table", None)
    return getattr(table, "name", None) not in TOOL_TABLES


def reflected_metadata(bind: Engine | Connection) -> MetaData:
    """The user's tables of a database as MetaData (the tool's own tables left out)."""
    metadata = MetaData()
    metadata.reflect(bind=bind, only=user_tables(bind))
    return metadata


def compare(conn: Connection, expected: MetaData) -> list[Difference]:
    """What ``conn``'s database lacks, has in excess, or has differently from ``expected``
    (tables, columns, nullability, types, indexes, unique constraints, foreign keys)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                     "include_object": _include})
    found: list[Difference] = []
    for entry in compare_metadata(context, expected):
        for item in (entry if isinstance(entry, list) else [entry]):
            difference = _difference(item)
            if difference is not None:
                found.append(difference)
    return sorted(set(found), key=lambda d: (d.table, d.object_type, d.name, d.change))


def _difference(item: tuple) -> Difference | None:
    op = item[0]
    verb, _, what = op.partition("_")
    change = {"add": "missing", "remove": "extra"}.get(verb, "changed")
    if what == "table":
        return Difference(change, "table", item[1].name, "")
    if what == "column":
        column = item[3]
        return Difference(change, "column", item[2], column.name,
                          f"{column.type}{'' if column.nullable else ' NOT NULL'}")
    if what == "index":
        index = item[1]
        columns = ", ".join(c.name for c in index.columns) or str(index.expressions)
        return Difference(change, "index", index.table.name, index.name or "",
                          f"({columns})" + (" UNIQUE" if index.unique else ""))
    if what in ("constraint", "fk"):
        constraint = item[1]
        kind = "foreign key" if what == "fk" else "unique constraint"
        columns = ", ".join(c.name for c in constraint.columns)
        detail = f"({columns})"
        if what == "fk":
            detail += f" → {constraint.referred_table.name}"
        return Difference(change, kind, constraint.table.name, constraint.name or "", detail)
    if op in ("modify_nullable", "modify_type"):
        _, _, table, column, _, old, new = item
        if op == "modify_nullable":
            words = {True: "NULL", False: "NOT NULL"}
            return Difference("changed", "nullability", table, column,
                              f"{words[bool(old)]} in the database, {words[bool(new)]} expected")
        return Difference("changed", "type", table, column, f"{old} in the database, {new} expected")
    return None  # defaults and comments: not drift this tool reports


def index_names(bind: Engine | Connection) -> set[str]:
    """Names of every index, unique constraint and primary key of the user's tables
    (lower case): what a query can be "served by"."""
    from sqlalchemy import inspect

    names: set[str] = set()
    inspector = inspect(bind)
    for table in user_tables(bind):
        for index in inspector.get_indexes(table):
            if index.get("name"):
                names.add(index["name"].lower())
        for unique in inspector.get_unique_constraints(table):
            if unique.get("name"):
                names.add(unique["name"].lower())
        primary = inspector.get_pk_constraint(table)
        if primary.get("name"):
            names.add(primary["name"].lower())
    return names


def schema_columns(metadata: MetaData) -> dict[str, dict[str, str]]:
    """{table: {column: type}} of a MetaData, for :func:`resolve_query`."""
    return {table.name: {c.name: str(c.type) for c in table.columns}
            for table in metadata.tables.values()}


def resolve_query(sql: str, schema: dict[str, dict[str, str]], dialect: str | None) -> list[str]:
    """The tables and columns ``sql`` names that ``schema`` lacks ("unknown table x",
    "unknown column t.c"); empty when every name resolves. A query sqlglot cannot parse
    is one problem saying so."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import OptimizeError, ParseError
    from sqlglot.optimizer.qualify import qualify

    from .schema import sqlglot_dialect

    read = sqlglot_dialect(dialect)
    try:
        tree = sqlglot.parse_one(sql, read=read)
    except ParseError as exc:
        return [f"cannot parse the query: {str(exc).splitlines()[0]}"]
    known = {t.lower(): t for t in schema}
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    problems = []
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        if name and name not in known and name not in ctes:
            problems.append(f"unknown table {table.name}")
    if problems:
        return sorted(set(problems))
    lowered = {t.lower(): {c.lower(): ty for c, ty in cols.items()} for t, cols in schema.items()}
    try:
        qualify(tree, schema=lowered, dialect=read, validate_qualify_columns=True,
                identify=False, quote_identifiers=False)
    except OptimizeError as exc:
        return [_column_problem(str(exc), tree, lowered)]
    return []


def _column_problem(message: str, tree: Any, schema: dict[str, dict[str, str]]) -> str:
    """sqlglot's message, said with the table the column was looked for in."""
    from sqlglot import exp

    aliases = {}
    for table in tree.find_all(exp.Table):
        aliases[(table.alias or table.name).lower()] = table.name.lower()
    only = next(iter(aliases.values())) if len(set(aliases.values())) == 1 else None
    missing = []
    for column in tree.find_all(exp.Column):
        table = aliases.get(column.table.lower()) if column.table else only
        if table in schema and column.name.lower() not in schema[table]:
            missing.append(f"{table}.{column.name}")
    if missing:
        return "unknown column " + ", ".join(sorted(set(missing)))
    quoted = re.search(r"Column '([^']+)'", message)
    return f"unknown column {quoted.group(1)}" if quoted else message.splitlines()[0]


__all__ = ["Difference", "compare", "index_names", "reflected_metadata", "resolve_query",
           "schema_columns"]
