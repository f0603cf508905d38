"""Integrity: which constraints exist, whether the database really enforces them, and
whether the data already breaks what the declared schema intends.

- :func:`inventory` lists every PRIMARY KEY, FOREIGN KEY, UNIQUE, CHECK and NOT NULL.
  A SQLite UNIQUE that SQLAlchemy's reflection does not return (a key with ``COLLATE``
  or ``DESC``, a quoted column's inline ``UNIQUE``, a unique index on an expression) is
  found in SQLite's own index list and listed as *not inventoried*, with why; probes and
  data checks skip it and say so, rather than leaving it out silently.
- :func:`probe` tries to violate each one with a generated row, each attempt in its own
  SAVEPOINT inside a transaction that is always rolled back: a violating insert the
  database accepts is reported ``NOT ENFORCED`` (e.g. SQLite with ``PRAGMA
  foreign_keys`` off — the tool's own engines turn it on).
- :func:`data_checks` counts orphans per foreign key, duplicates on intended-unique
  columns and NULLs in intended NOT NULL columns, and lists constraints the declared
  schema has but the live database lacks (or, on PostgreSQL, has ``NOT VALID``). A
  declared constraint is matched by what it is (table, kind, columns, normalised
  expression: :func:`normalize_check`), never by name: the scratch database names an
  inline CHECK ``orders_status_check`` where a migration's convention says
  ``ck_orders_status``. A name the declared schema gave itself is noted when it differs.
- :func:`sqlite_checks` runs ``PRAGMA integrity_check`` and ``foreign_key_check``.
- :func:`crud` inserts, reads, updates and deletes generated rows per table, timed,
  in a transaction that is always rolled back.

PostgreSQL note: sequences (serial/identity columns) are not transactional, so probes
and CRUD advance them although every row they write is rolled back.
"""

from __future__ import annotations

import random
import re
import time
import warnings
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import (
    Connection,
    Engine,
    MetaData,
    Table,
    and_,
    bindparam,
    delete,
    exc,
    func,
    literal_column,
    not_,
    or_,
    select,
    text,
    types,
    update,
)

from ..errors import ConductorError, UnsupportedByDialect, option
from .connection import (
    connection_of,
    database_error,
    driver_reason,
    failure_kind,
    require_reflection,
)
from .sample import RowGenerator, check_bounds, parent_values, reflect_user_tables
from .sqlrun import json_value

PRIMARY_KEY, FOREIGN_KEY, UNIQUE, CHECK, NOT_NULL = "PRIMARY KEY", "FOREIGN KEY", "UNIQUE", "CHECK", "NOT NULL"
ENFORCED, NOT_ENFORCED, SKIPPED = "enforced", "NOT ENFORCED", "skipped"
OK, PROBLEM = "ok", "problem"

INVENTORY_COLUMNS = ["table", "constraint", "kind", "columns", "definition"]
PROBE_COLUMNS = ["table", "constraint", "kind", "columns", "status", "detail", "seconds"]
DATA_COLUMNS = ["check", "table", "columns", "status", "count", "detail"]
STRUCTURAL_COLUMNS = ["check", "table", "status", "count", "detail"]
CRUD_COLUMNS = ["table", "rows", "insert_ms", "read_ms", "update_ms", "delete_ms", "status", "detail"]

#: rows each empty table gets inside the probe transaction, so foreign keys have parents
SCAFFOLD_ROWS = 2


# --------------------------------------------------------------------------- constraints


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """A DataFrame whose text columns keep ``None`` (pandas would infer ``str`` with NaN)."""
    data = {}
    for column in columns:
        values = [row.get(column) for row in rows]
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if values and len(numbers) == len(values):
            dtype = "int64" if all(isinstance(v, int) for v in numbers) else "float64"
        else:
            dtype = object
        data[column] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(data, columns=columns)


@dataclass
class Constraint:
    """One constraint of a reflected table."""

    table: str
    name: str | None
    kind: str
    columns: tuple[str, ...]
    definition: str
    referred_table: str | None = None
    referred_columns: tuple[str, ...] = ()
    sqltext: str | None = None
    validated: bool = True
    partial: str | None = None  # a unique index's WHERE clause, or "expression"
    deferred: bool = False
    #: why the database has this constraint but SQLAlchemy's reflection did not return it,
    #: so it is neither probed nor checked (None: inventoried)
    not_inventoried: str | None = None
    #: how the same unique key is recognised in another database whatever its name, when
    #: its columns do not say it all (a not-inventoried SQLite key, an expression index)
    signature: tuple = ()

    def label(self) -> str:
        return self.name or f"{self.kind} ({', '.join(self.columns)})"

    def row(self) -> dict[str, Any]:
        definition = self.definition
        if self.not_inventoried:
            definition += f" -- not inventoried: {self.not_inventoried}"
        return {"table": self.table, "constraint": self.name, "kind": self.kind,
                "columns": ", ".join(self.columns), "definition": definition}


def _engine(bind: Engine | Connection) -> Engine:
    return bind if isinstance(bind, Engine) else bind.engine


def _quote_list(conn: Connection, names: tuple[str, ...]) -> str:
    quote = conn.dialect.identifier_preparer.quote
    return ", ".join(quote(n) for n in names)


def _pg_definitions(conn: Connection) -> dict[tuple[str, str], tuple[str, bool]]:
    """PostgreSQL: (table, constraint name) → (pg_get_constraintdef, validated)."""
    if conn.dialect.name != "postgresql":
        return {}
    rows = conn.execute(text(
        "SELECT c.relname, con.conname, pg_get_constraintdef(con.oid), con.convalidated "
        "FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
        "WHERE c.relnamespace = current_schema()::regnamespace"))
    return {(r[0], r[1]): (r[2], bool(r[3])) for r in rows}


def _sqlite_deferred(conn: Connection) -> set[str]:
    """SQLite tables whose CREATE TABLE has ``INITIALLY DEFERRED`` foreign keys (the
    reflection does not report deferral)."""
    if conn.dialect.name != "sqlite":
        return set()
    rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
    return {name for name, sql in rows if sql and re.search(r"initially\s+deferred", sql, re.I)}


def _reflect(conn: Connection) -> MetaData:
    """The user's tables; SQLAlchemy's warning about a skipped expression index is dropped,
    since the inventory lists that index itself (as not inventoried, saying why)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        return reflect_user_tables(conn)


def _collect(conn: Connection, metadata: MetaData) -> list[Constraint]:
    """Every constraint of every reflected table, tables in dependency order."""
    pg = _pg_definitions(conn)
    deferred_tables = _sqlite_deferred(conn)
    quote = conn.dialect.identifier_preparer.quote
    found: list[Constraint] = []
    for table in metadata.sorted_tables:
        name = table.name

        def pg_def(cname: str | None, fallback: str, table_name: str = name) -> tuple[str, bool]:
            return pg.get((table_name, cname), (fallback, True)) if cname else (fallback, True)

        pk = tuple(c.name for c in table.primary_key.columns)
        if pk:
            cname = table.primary_key.name
            definition, valid = pg_def(cname, f"PRIMARY KEY ({_quote_list(conn, pk)})")
            found.append(Constraint(name, cname, PRIMARY_KEY, pk, definition, validated=valid))
        for fk in sorted(table.foreign_key_constraints, key=lambda f: (f.name or "", f.column_keys)):
            cols = tuple(fk.column_keys)
            refs = tuple(e.column.name if e.column is not None else e.target_fullname.split(".")[-1]
                         for e in fk.elements)
            referred = fk.referred_table.name
            fallback = (f"FOREIGN KEY ({_quote_list(conn, cols)}) REFERENCES {quote(referred)} "
                        f"({_quote_list(conn, refs)})")
            if fk.ondelete:
                fallback += f" ON DELETE {fk.ondelete}"
            definition, valid = pg_def(fk.name, fallback)
            deferred = (str(fk.initially or "").upper() == "DEFERRED") or name in deferred_tables
            found.append(Constraint(name, fk.name, FOREIGN_KEY, cols, definition, referred, refs,
                                    validated=valid, deferred=deferred))
        unique_sets = {frozenset(pk)} if pk else set()
        for constraint in sorted((c for c in table.constraints if type(c).__name__ == "UniqueConstraint"),
                                 key=lambda c: (c.name or "", [col.name for col in c.columns])):
            cols = tuple(c.name for c in constraint.columns)
            unique_sets.add(frozenset(cols))
            definition, valid = pg_def(constraint.name, f"UNIQUE ({_quote_list(conn, cols)})")
            found.append(Constraint(name, constraint.name, UNIQUE, cols, definition, validated=valid))
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            if not index.unique:
                continue
            cols = tuple(c.name for c in index.columns)
            expressions = [e for e in index.expressions if not hasattr(e, "table")]
            where = (index.dialect_options.get(conn.dialect.name, {}).get("where")
                     if conn.dialect.name in ("postgresql", "sqlite") else None)
            if frozenset(cols) in unique_sets and not expressions and where is None:
                continue  # the index behind a UNIQUE constraint or the primary key
            partial = "expression" if expressions or not cols else (str(where) if where is not None else None)
            definition = f"UNIQUE INDEX {quote(index.name)} ({_quote_list(conn, cols) or 'expression'})"
            if where is not None:
                definition += f" WHERE {where}"
            signature = ()
            if partial == "expression":  # what it makes unique is the expressions' text
                keys = tuple(normalize_check(str(e.compile(dialect=conn.dialect)), conn.dialect.name)
                             for e in index.expressions)
                signature = ("expression", keys, normalize_check(str(where), conn.dialect.name)
                             if where is not None else None)
            found.append(Constraint(name, index.name, UNIQUE, cols, definition, partial=partial,
                                    signature=signature))
        for check in sorted((c for c in table.constraints if type(c).__name__ == "CheckConstraint"),
                            key=lambda c: (c.name or "", str(c.sqltext))):
            sqltext = str(check.sqltext)
            definition, valid = pg_def(check.name, f"CHECK ({sqltext})")
            found.append(Constraint(name, check.name, CHECK, _check_columns(table, sqltext), definition,
                                    sqltext=sqltext, validated=valid))
        for column in table.columns:
            if not column.nullable:
                found.append(Constraint(name, None, NOT_NULL, (column.name,),
                                        f"{quote(column.name)} NOT NULL"))
    for item in found:
        if not item.validated and not item.definition.endswith("NOT VALID"):
            item.definition += " NOT VALID"
    return found + _sqlite_unreflected(conn, metadata, found)


def _sqlite_unreflected(conn: Connection, metadata: MetaData, found: list[Constraint]) -> list[Constraint]:
    """SQLite unique indexes (behind UNIQUE constraints or CREATE UNIQUE INDEX) that no
    reflected constraint accounts for, as not-inventoried constraints saying why."""
    if conn.dialect.name != "sqlite":
        return []
    quote = conn.dialect.identifier_preparer.quote
    missed: list[Constraint] = []
    for table in metadata.sorted_tables:
        mine = [c for c in found if c.table == table.name and c.kind in (UNIQUE, PRIMARY_KEY)]
        names = {c.name for c in mine if c.name}
        column_sets = {frozenset(c.columns) for c in mine if not c.partial}
        indexes = conn.exec_driver_sql(
            'SELECT name, "unique", origin, partial FROM pragma_index_list(?)', (table.name,)).all()
        for index, unique, origin, partial in indexes:
            if not unique or origin == "pk" or index in names:
                continue
            keys = conn.exec_driver_sql(
                'SELECT cid, name, "desc", coll FROM pragma_index_xinfo(?) WHERE key ORDER BY seqno',
                (index,)).all()
            columns = tuple(name for cid, name, _desc, _coll in keys if cid >= 0)
            expression = any(cid == -2 for cid, *_ in keys)
            collated = any((coll or "BINARY").upper() != "BINARY" for *_, coll in keys)
            if not (expression or collated or partial) and frozenset(columns) in column_sets:
                continue  # reflected (DESC does not change what is unique)
            if expression:
                why = "its key is an expression, which SQLAlchemy's SQLite reflection skips"
            elif collated or any(desc for _cid, _name, desc, _coll in keys):
                why = "its key has COLLATE or DESC, which SQLAlchemy's SQLite reflection does not read"
            else:
                why = "SQLAlchemy's SQLite reflection does not return it"
            why += "; it is not probed and its duplicates are not counted"
            if origin == "u":
                parts = tuple(f"{quote(name)}" + (f" COLLATE {coll}" if (coll or "BINARY").upper() != "BINARY"
                                                  else "") + (" DESC" if desc else "")
                              for _cid, name, desc, coll in keys)
                definition = f"UNIQUE ({', '.join(parts)})"
                name = _sqlite_constraint_name(conn, table.name, columns)
                signature = ("u", parts)
            else:
                definition = conn.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (index,)
                ).scalar() or f"UNIQUE INDEX {quote(index)}"
                name = index
                # the CREATE statement without the index's own name
                ident = r'"(?:[^"]|"")+"|\[[^\]]+\]|`[^`]+`|[A-Za-z_][\w$]*'
                body = re.sub(rf"^\s*create\s+unique\s+index\s+(if\s+not\s+exists\s+)?({ident})\s+on\s+",
                              "", definition, flags=re.IGNORECASE)
                signature = ("c", re.sub(r"\s+", "", body.lower()))
            missed.append(Constraint(table.name, name, UNIQUE, columns, definition,
                                     not_inventoried=why, signature=signature))
    return missed


def _sqlite_constraint_name(conn: Connection, table: str, columns: tuple[str, ...]) -> str | None:
    """The name a table-level ``CONSTRAINT name UNIQUE (…)`` over ``columns`` gives, if any."""
    sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (table,)).scalar() or ""
    ident = r'"(?:[^"]|"")+"|\[[^\]]+\]|`[^`]+`|[A-Za-z_][\w$]*'
    wanted = [c.lower() for c in columns]
    for match in re.finditer(rf"constraint\s+({ident})\s+unique\s*\(([^)]*)\)", sql, re.IGNORECASE):
        keys = [re.match(ident, part.strip()) for part in match.group(2).split(",")]
        if [_unquote(k.group(0)).lower() if k else None for k in keys] == wanted:
            return _unquote(match.group(1))
    return None


def _unquote(name: str) -> str:
    if name[:1] in "\"[`" and len(name) > 1:
        return name[1:-1].replace('""', '"') if name[0] == '"' else name[1:-1]
    return name


def _check_columns(table: Table, sqltext: str) -> tuple[str, ...]:
    words = {w.lower() for w in re.findall(r'[A-Za-z_][A-Za-z0-9_$]*|"[^"]+"', sqltext)}
    words |= {w.strip('"').lower() for w in words}
    return tuple(c.name for c in table.columns if c.name.lower() in words)


def inventory(bind: Engine | Connection) -> pd.DataFrame:
    """One row per constraint: table, constraint (name or None), kind, columns, definition."""
    require_reflection(bind, "the constraint inventory")
    with connection_of(bind) as conn:
        constraints = _collect(conn, _reflect(conn))
    return _frame([c.row() for c in constraints], INVENTORY_COLUMNS)


# --------------------------------------------------------------------------- probes


def _error_text(conn: Connection, error: BaseException, step: str = "integrity checks") -> str:
    """The one-line reason of a statement that failed. A database that could not be used
    just now (locked, a lock wait timed out, connection lost) ends ``step`` instead: such a
    failure says nothing about the data (a probe's insert stopped by a lock timeout must
    not read as "rejected", a CRUD smoke test as "failed")."""
    if failure_kind(error) is not None:
        raise database_error(step, error, conn.engine.url) from None
    return driver_reason(error, conn.engine.url)


def _try_insert(conn: Connection, table: Table, row: dict, keep: bool = False) -> BaseException | None:
    """Insert ``row`` in a savepoint; roll it back unless ``keep``. The error, if any (a
    database that could not be used raises, see :func:`_error_text`)."""
    savepoint = conn.begin_nested()
    try:
        _insert(conn, table, row)
    except exc.DBAPIError as error:
        savepoint.rollback()
        if failure_kind(error) is not None:
            _error_text(conn, error, "integrity probes")
        return error
    if keep:
        savepoint.commit()
    else:
        savepoint.rollback()
    return None


def _insert(conn: Connection, table: Table, row: dict) -> None:
    """Insert one row. On PostgreSQL a
    value for a ``GENERATED ALWAYS`` identity column goes in with OVERRIDING SYSTEM VALUE
    (which SQLAlchemy has no construct for), so probes test the key, not the identity rule."""
    always = [c for c in table.columns if c.identity is not None and c.identity.always and c.name in row]
    if conn.dialect.name != "postgresql" or not always:
        conn.execute(table.insert(), [row])
        return
    preparer = conn.dialect.identifier_preparer
    names = list(row)
    sql = (f"INSERT INTO {preparer.format_table(table)} ({', '.join(preparer.quote(n) for n in names)}) "
           f"OVERRIDING SYSTEM VALUE VALUES ({', '.join(f':p{i}' for i in range(len(names)))})")
    statement = text(sql).bindparams(*[bindparam(f"p{i}", row[n], type_=table.c[n].type)
                                       for i, n in enumerate(names)])
    conn.execute(statement)


class _TableProbe:
    """Valid rows for one table, built once and reused by that table's probes."""

    def __init__(self, conn: Connection, table: Table, rng: random.Random):
        self.conn = conn
        self.table = table
        self.generator = RowGenerator(table, conn.dialect.name, rng)
        self.parents = parent_values(conn, table)
        self.count = conn.execute(select(func.count()).select_from(table)).scalar_one()
        self.rows: list[dict] = []
        self.failure: str | None = None
        self._build()

    def _build(self) -> None:
        # two rows that are valid together (and with the existing rows)
        index, last = self.count + 1, None
        for _attempt in range(6):
            first, second = (self.generator.row(index, self.parents),
                             self.generator.row(index + 1, self.parents))
            savepoint = self.conn.begin_nested()
            try:
                last = _try_insert(self.conn, self.table, first, keep=True)
                if last is None:
                    last = _try_insert(self.conn, self.table, second)
            finally:
                savepoint.rollback()
            if last is None:
                self.rows = [first, second]
                return
            index += 1000
        self.failure = f"could not insert a valid generated row: {_error_text(self.conn, last)}"


def _scaffold(conn: Connection, metadata: MetaData, rng: random.Random) -> None:
    """Give every empty table a few rows (inside the caller's transaction) so that
    foreign-key columns of the tables that follow have parents to point at."""
    for table in metadata.sorted_tables:
        if conn.execute(select(func.count()).select_from(table)).scalar_one():
            continue
        generator = RowGenerator(table, conn.dialect.name, rng)
        parents = parent_values(conn, table)
        for index in range(1, SCAFFOLD_ROWS + 1):
            _try_insert(conn, table, generator.row(index, parents), keep=True)


def _sqlite_pragma(conn: Connection, name: str) -> int | None:
    if conn.dialect.name != "sqlite":
        return None
    return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


def _violating_value(column, bounds) -> tuple[Any, str] | None:
    """A value for ``column`` outside ``bounds``, with how it violates them."""
    kind = column.type
    try:
        python_type = kind.python_type
    except NotImplementedError:
        python_type = str
    numeric = isinstance(kind, types.Integer | types.Numeric | types.Float) or python_type in (int, float, Decimal)
    integer = isinstance(kind, types.Integer) or python_type is int

    def number(value: float) -> Any:
        if integer:
            return int(value)
        return Decimal(str(value)) if python_type is Decimal else float(value)

    if bounds.choices:
        choices = bounds.choices
        if all(isinstance(c, int | float) for c in choices):
            return number(max(choices) + 1), f"{number(max(choices) + 1)} is not in the allowed list"
        candidate = "zz-not-allowed"
        length = getattr(kind, "length", None)
        if length:
            candidate = candidate[:length]
        while candidate in choices:
            candidate = candidate[:-1] + "q" if len(candidate) > 1 else "?"
        return candidate, f"'{candidate}' is not in the allowed list"
    if numeric and bounds.low is not None:
        value = number(bounds.low - 1)
        return value, f"{value} is below the lower bound {bounds.low}"
    if numeric and bounds.high is not None:
        value = number(bounds.high + 1)
        return value, f"{value} is above the upper bound {bounds.high}"
    if bounds.min_length > 0 and not numeric:
        return "", f"'' is shorter than {bounds.min_length} character(s)"
    if bounds.not_equal:
        value = sorted(bounds.not_equal, key=str)[0]
        return value, f"{value!r} is excluded"
    return None


def _attempt(conn: Connection, table: Table, row: dict) -> tuple[bool, str]:
    """Insert a violating row in a savepoint (always rolled back): (accepted, detail)."""
    error = _try_insert(conn, table, row)
    if error is None:
        return True, ""
    return False, _error_text(conn, error)


def _probe_not_null(conn: Connection, ctx: _TableProbe, constraint: Constraint) -> tuple[str, str]:
    column = constraint.columns[0]
    row = dict(ctx.rows[0], **{column: None})
    savepoint = conn.begin_nested()
    try:
        error = _try_insert(conn, ctx.table, row, keep=True)
        if error is not None:
            return ENFORCED, f"NULL rejected: {_error_text(conn, error)}"
        stored = conn.execute(select(func.count()).select_from(ctx.table)
                              .where(ctx.table.c[column].is_(None))).scalar_one()
    finally:
        savepoint.rollback()
    if not stored:
        return ENFORCED, "NULL accepted but replaced by a database-assigned value (rowid/identity)"
    return NOT_ENFORCED, f"a row with {column} NULL was accepted"


def _key_of(conn: Connection, table: Table, columns: tuple[str, ...]) -> dict | None:
    cols = [table.c[c] for c in columns]
    found = conn.execute(select(*cols).where(*[c.isnot(None) for c in cols]).limit(1)).first()
    return dict(zip(columns, found, strict=True)) if found is not None else None


def _probe_unique(conn: Connection, ctx: _TableProbe, constraint: Constraint) -> tuple[str, str]:
    if constraint.partial:
        return SKIPPED, f"partial or expression unique index ({constraint.partial}): not probed"
    table, columns = ctx.table, constraint.columns
    savepoint = conn.begin_nested()
    try:
        key = _key_of(conn, table, columns)
        if key is None:  # no row with this key yet: insert one and duplicate it
            error = _try_insert(conn, table, ctx.rows[0], keep=True)
            if error is not None:
                return SKIPPED, f"could not insert a row to duplicate: {_error_text(conn, error)}"
            key = _key_of(conn, table, columns)
            if key is None:
                return SKIPPED, f"the generated rows leave {', '.join(columns)} NULL"
        accepted, detail = _attempt(conn, table, dict(ctx.rows[1], **key))
    finally:
        savepoint.rollback()
    shown = ", ".join(f"{k}={v!r}" for k, v in key.items())
    if accepted:
        return NOT_ENFORCED, f"a second row with {shown} was accepted"
    return ENFORCED, f"duplicate ({shown}) rejected: {detail}"


def _missing_parent(conn: Connection, metadata: MetaData, constraint: Constraint,
                    rng: random.Random) -> dict | None:
    parent = metadata.tables.get(constraint.referred_table)
    if parent is None:
        return None
    generator = RowGenerator(parent, conn.dialect.name, rng)
    count = conn.execute(select(func.count()).select_from(parent)).scalar_one()
    for index in (count + 500_000, count + 700_001, count + 900_007, 999_983):
        values = {ref: generator.value(parent.c[ref], index) for ref in constraint.referred_columns}
        exists = conn.execute(select(func.count()).select_from(parent).where(
            *[parent.c[ref] == value for ref, value in values.items()])).scalar_one()
        if not exists:
            return dict(zip(constraint.columns, values.values(), strict=True))
    return None


def _probe_foreign_key(conn: Connection, ctx: _TableProbe, constraint: Constraint, metadata: MetaData,
                       rng: random.Random) -> tuple[str, str]:
    values = _missing_parent(conn, metadata, constraint, rng)
    if values is None:
        return SKIPPED, f"could not build a key missing from {constraint.referred_table}"
    accepted, detail = _attempt(conn, ctx.table, dict(ctx.rows[0], **values))
    shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
    if not accepted:
        return ENFORCED, f"reference to a missing {constraint.referred_table} ({shown}) rejected: {detail}"
    if conn.dialect.name == "sqlite":
        if not _sqlite_pragma(conn, "foreign_keys"):
            return NOT_ENFORCED, ("PRAGMA foreign_keys is OFF on this connection, so SQLite does not check "
                                  f"foreign keys: a row with {shown} was accepted (the tool's own "
                                  "connections turn it on)")
        if constraint.deferred:
            return ENFORCED, f"deferred: a row with {shown} was accepted now and SQLite rejects it at COMMIT"
    return NOT_ENFORCED, f"a row with {shown} (no such {constraint.referred_table} row) was accepted"


def _probe_check(conn: Connection, ctx: _TableProbe, constraint: Constraint) -> tuple[str, str]:
    bounds = check_bounds([constraint.sqltext or ""], conn.dialect.name)
    by_name = {c.name.lower(): c for c in ctx.table.columns}
    for column_name, column_bounds in bounds.items():
        column = by_name.get(column_name)
        if column is None:
            continue
        violating = _violating_value(column, column_bounds)
        if violating is None:
            continue
        value, why = violating
        accepted, detail = _attempt(conn, ctx.table, dict(ctx.rows[0], **{column.name: value}))
        if not accepted:
            return ENFORCED, f"{column.name}={value!r} rejected ({why}): {detail}"
        reason = ""
        if conn.dialect.name == "sqlite" and _sqlite_pragma(conn, "ignore_check_constraints"):
            reason = " (PRAGMA ignore_check_constraints is ON)"
        return NOT_ENFORCED, f"{column.name}={value!r} was accepted although {why}{reason}"
    return SKIPPED, f"not a simple bound (comparison, BETWEEN, IN-list, length): {constraint.sqltext}"


def probe(engine: Engine) -> pd.DataFrame:
    """Try to violate every constraint with a generated row; one row per probe with
    status ``enforced``, ``NOT ENFORCED`` or ``skipped``. Everything runs in one
    transaction that is always rolled back, each probe in its own SAVEPOINT."""
    require_reflection(engine, "integrity probes")
    rng = random.Random(0)
    results: list[dict] = []
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET CONSTRAINTS ALL IMMEDIATE")  # deferred ones too
            metadata = _reflect(conn)
            constraints = _collect(conn, metadata)
            _scaffold(conn, metadata, rng)
            contexts: dict[str, _TableProbe] = {}
            for constraint in constraints:
                started = time.perf_counter()
                status, detail = _probe_one(conn, constraint, metadata, contexts, rng)
                results.append({**constraint.row(), "status": status, "detail": detail,
                                "seconds": round(time.perf_counter() - started, 6)})
        finally:
            trans.rollback()
    return _frame(results, PROBE_COLUMNS)


def _probe_one(conn: Connection, constraint: Constraint, metadata: MetaData,
               contexts: dict[str, _TableProbe], rng: random.Random) -> tuple[str, str]:
    if constraint.not_inventoried:
        return SKIPPED, f"not inventoried: {constraint.not_inventoried}"
    table = metadata.tables[constraint.table]
    savepoint = conn.begin_nested()
    try:
        ctx = contexts.get(table.name)
        if ctx is None:
            ctx = contexts[table.name] = _TableProbe(conn, table, rng)
        if ctx.failure:
            return SKIPPED, ctx.failure
        if constraint.kind == NOT_NULL:
            return _probe_not_null(conn, ctx, constraint)
        if constraint.kind in (PRIMARY_KEY, UNIQUE):
            return _probe_unique(conn, ctx, constraint)
        if constraint.kind == FOREIGN_KEY:
            return _probe_foreign_key(conn, ctx, constraint, metadata, rng)
        return _probe_check(conn, ctx, constraint)
    except exc.DBAPIError as error:
        return SKIPPED, f"the probe itself failed: {_error_text(conn, error, 'integrity probes')}"
    finally:
        if savepoint.is_active:
            savepoint.rollback()


# --------------------------------------------------------------------------- data checks


#: sqlglot's name for each SQLAlchemy dialect whose CHECK texts we parse
_SQLGLOT_DIALECTS = {"postgresql": "postgres", "sqlite": "sqlite", "duckdb": "duckdb", "mysql": "mysql"}


def normalize_check(sqltext: str | None, dialect: str | None = None) -> str:
    """A canonical form of a CHECK (or partial-index WHERE) expression, so the same rule
    compares equal however the database spells it back: casts, parentheses, whitespace,
    identifier case and quoting are dropped, ``x = ANY (ARRAY[…])`` is ``x IN (…)``,
    ``x <> ALL (ARRAY[…])`` is ``x NOT IN (…)``, ``BETWEEN`` is two bounds, and the
    operands of AND/OR and the items of an IN list are sorted. ``dialect`` is a
    SQLAlchemy dialect name; text sqlglot cannot parse falls back to a textual form."""
    import sqlglot

    text_ = (sqltext or "").strip()
    try:
        tree = sqlglot.parse_one(text_, read=_SQLGLOT_DIALECTS.get(dialect or "", "postgres"))
    except Exception:  # noqa: BLE001 - sqlglot raises several error types; any means "no parse"
        tree = None
    if tree is None:
        # no parse: drop casts, then quoting, parentheses and whitespace
        text_ = re.sub(r"::\s*[a-z_]+(\s+(varying|precision|with(out)?\s+time\s+zone))?(\[\])?", "",
                       text_.lower())
        return re.sub(r"[\s()\"`\[\]]", "", text_)
    return _canonical(tree)


def _bare(node):
    """``node`` without the parentheses and casts around it."""
    from sqlglot import exp

    while isinstance(node, exp.Paren | exp.Cast):
        node = node.this
    return node


def _canonical(node) -> str:
    from sqlglot import exp

    node = _bare(node)
    if isinstance(node, exp.EQ | exp.NEQ):
        right = _bare(node.expression)
        quantifier = None
        if isinstance(right, exp.Any):
            quantifier, inner = "any", right.this
        elif isinstance(right, exp.All):
            quantifier, inner = "all", right.this
        elif isinstance(right, exp.Anonymous) and str(right.this).lower() in ("all", "any") \
                and len(right.expressions) == 1:
            quantifier, inner = str(right.this).lower(), right.expressions[0]
        inner = _bare(inner) if quantifier else None
        if isinstance(inner, exp.Array):
            listed = _in_list(node.this, inner.expressions)
            if isinstance(node, exp.EQ) and quantifier == "any":
                return listed
            if isinstance(node, exp.NEQ) and quantifier == "all":
                return f"not({listed})"
    if isinstance(node, exp.In) and node.expressions and not node.args.get("query"):
        return _in_list(node.this, node.expressions)
    if isinstance(node, exp.Between):
        value = node.this
        return _canonical(exp.and_(exp.GTE(this=value.copy(), expression=node.args["low"]),
                                   exp.LTE(this=value.copy(), expression=node.args["high"])))
    if isinstance(node, exp.Is) and node.args.get("negate"):
        return f"not(is({_canonical(node.this)};{_canonical(node.expression)}))"
    if isinstance(node, exp.And | exp.Or):
        kind = type(node)
        operands, stack = [], [node]
        while stack:  # flatten a AND (b AND c) into one sorted list
            item = _bare(stack.pop())
            if isinstance(item, kind):
                stack += [item.this, item.expression]
            else:
                operands.append(_canonical(item))
        return f"{kind.__name__.lower()}({';'.join(sorted(operands))})"
    if isinstance(node, exp.Column):
        return _canonical(node.this)
    if isinstance(node, exp.Identifier):
        return str(node.this).lower()
    if isinstance(node, exp.Literal):
        if node.is_string:
            return "'" + str(node.this).replace("'", "''") + "'"
        try:
            return str(Decimal(str(node.this)).normalize())
        except ArithmeticError:
            return str(node.this)
    parts = []
    plain = ("this", "expression", "expressions")  # operands, in order; other args by name
    for key in [k for k in plain if k in node.args] + sorted(k for k in node.args if k not in plain):
        value = node.args[key]
        if value is None or value is False or key.startswith("_") or value == []:
            continue
        values = value if isinstance(value, list) else [value]
        rendered = ",".join(_canonical(v) if isinstance(v, exp.Expression) else str(v).lower() for v in values)
        parts.append(rendered if key in plain else f"{key}={rendered}")
    return f"{type(node).__name__.lower()}({';'.join(parts)})"


def _in_list(value, items) -> str:
    return f"in({_canonical(value)};{','.join(sorted(_canonical(i) for i in items))})"


def _declared(engine: Engine, declared_sql: str) -> tuple[MetaData, list[Constraint]]:
    """The declared schema applied to a scratch database of the same dialect, reflected."""
    from .schema import apply_sql
    from .scratch import scratch_engine

    with scratch_engine(engine) as scratch:
        apply_sql(scratch, declared_sql)
        with scratch.connect() as conn:
            metadata = _reflect(conn)
            return metadata, _collect(conn, metadata)


def _unique_key(constraint: Constraint, dialect: str) -> tuple:
    """What a PRIMARY KEY / UNIQUE makes unique, whatever its name or spelling: its column
    set (and partial WHERE), or for keys with COLLATE or an expression, their normalised text."""
    if constraint.signature and constraint.signature[0] == "u":  # SQLite, not reflected
        parts = tuple(re.sub(r"\s+desc$", "", part.lower()) for part in constraint.signature[1])
        if any(" collate " in part for part in parts):
            return ("collated", parts)
    elif constraint.signature:
        return constraint.signature
    where = constraint.partial
    return ("columns", frozenset(constraint.columns), normalize_check(where, dialect) if where else None)


def _same(declared: Constraint, live: Constraint, dialect: str) -> bool:
    """Whether ``live`` is ``declared``: same kind and what it constrains; names do not count."""
    if declared.kind == UNIQUE:
        return live.kind in (UNIQUE, PRIMARY_KEY) and _unique_key(live, dialect) == _unique_key(declared, dialect)
    if declared.kind != live.kind:
        return False
    if declared.kind in (NOT_NULL, PRIMARY_KEY):
        return set(live.columns) == set(declared.columns)
    if declared.kind == FOREIGN_KEY:
        return (live.referred_table == declared.referred_table
                and set(zip(live.columns, live.referred_columns, strict=False))
                == set(zip(declared.columns, declared.referred_columns, strict=False)))
    return normalize_check(live.sqltext, dialect) == normalize_check(declared.sqltext, dialect)


def _live_match(declared: Constraint, live: list[Constraint], dialect: str) -> Constraint | None:
    """The live constraint that is ``declared`` (same table, kind, columns, normalised
    expression), or None. A declared one that reflection did not return is matched too."""
    return next((c for c in live if c.table == declared.table and _same(declared, c, dialect)), None)


def _default_name(constraint: Constraint) -> bool:
    """Whether a constraint's name is one the database made up (PostgreSQL's
    ``<table>_<columns>_check`` and the like, SQLite's none), not one the schema gave."""
    name = constraint.name
    return not name or re.fullmatch(rf"{re.escape(constraint.table)}(_.*)?_(pkey|key|fkey|check)\d*",
                                    name) is not None


def _count(conn: Connection, statement) -> tuple[int | None, str]:
    """Run a counting query in a savepoint: (count, "") or (None, error)."""
    savepoint = conn.begin_nested()
    try:
        value = conn.execute(statement).scalar()
    except exc.DBAPIError as error:
        savepoint.rollback()
        return None, _error_text(conn, error)
    savepoint.rollback()
    return int(value or 0), ""


def _has_columns(table: Table, columns: tuple[str, ...]) -> bool:
    return all(c in table.c for c in columns)


def _orphans(conn: Connection, child: Table, parent: Table, fk: Constraint) -> tuple[int | None, str]:
    alias = parent.alias("parent_rows")
    joined = child.outerjoin(alias, and_(*[child.c[a] == alias.c[b]
                                           for a, b in zip(fk.columns, fk.referred_columns, strict=True)]))
    statement = (select(func.count()).select_from(joined)
                 .where(alias.c[fk.referred_columns[0]].is_(None), *[child.c[a].isnot(None) for a in fk.columns]))
    return _count(conn, statement)


def _duplicates(conn: Connection, table: Table, columns: tuple[str, ...]) -> tuple[int | None, str]:
    cols = [table.c[c] for c in columns]
    groups = (select(func.count().label("n")).where(*[c.isnot(None) for c in cols])
              .group_by(*cols).having(func.count() > 1).subquery())
    return _count(conn, select(func.coalesce(func.sum(groups.c.n), 0)))


def data_checks(bind: Engine | Connection, declared_sql: str | None = None) -> pd.DataFrame:
    """Orphans per foreign key, duplicates on intended-unique columns, NULLs in intended
    NOT NULL columns, and (given the declared schema) constraints declared but missing
    live; on PostgreSQL also ``NOT VALID`` constraints. One row per check with status
    ``ok``, ``problem`` or ``skipped``."""
    require_reflection(bind, "data checks")
    declared_meta, declared = (None, [])
    if declared_sql and declared_sql.strip():
        declared_meta, declared = _declared(_engine(bind), declared_sql)
    rows: list[dict] = []

    def add(check: str, table: str, columns: tuple[str, ...] | str, status: str, count: int | None,
            detail: str) -> None:
        rows.append({"check": check, "table": table,
                     "columns": columns if isinstance(columns, str) else ", ".join(columns),
                     "status": status, "count": count, "detail": detail})

    with connection_of(bind) as conn:
        metadata = _reflect(conn)
        live = _collect(conn, metadata)
        tables = metadata.tables

        # declared but missing live
        missing: list[Constraint] = []
        if declared_meta is not None:
            for name in sorted(set(declared_meta.tables) - set(tables)):
                add("declared but missing", name, "", PROBLEM, None, "table declared but missing live")
            for constraint in declared:
                table = tables.get(constraint.table)
                if table is None:
                    continue
                if not _has_columns(table, constraint.columns):
                    absent = [c for c in constraint.columns if c not in table.c]
                    add("declared but missing", constraint.table, constraint.columns, PROBLEM, None,
                        f"{constraint.kind} {constraint.label()}: column {', '.join(absent)} missing live")
                    continue
                match = _live_match(constraint, live, conn.dialect.name)
                if match is not None:
                    if match.name != constraint.name and not _default_name(constraint):
                        add("named differently", constraint.table, constraint.columns, OK, None,
                            f"{constraint.kind} declared as {constraint.name} is {match.name or 'unnamed'} live")
                    continue
                detail = f"{constraint.kind} {constraint.label()} declared but missing live: {constraint.definition}"
                namesake = next((c for c in live if c.table == constraint.table and c.kind == constraint.kind
                                 and constraint.name and c.name == constraint.name), None)
                if namesake is not None:
                    detail += f" (live {namesake.name} differs: {namesake.definition})"
                if constraint.not_inventoried:  # found in SQLite's index list, not reflected
                    add("declared but missing", constraint.table, constraint.columns, PROBLEM, None, detail)
                    continue
                missing.append(constraint)
                count = None
                if constraint.kind == CHECK and constraint.sqltext:
                    count, error = _count(conn, select(func.count()).select_from(table)
                                          .where(not_(literal_column(f"({constraint.sqltext})"))))
                    detail += (f"; {count} row(s) violate it" if count is not None
                               else f"; could not count violating rows: {error}")
                add("declared but missing", constraint.table, constraint.columns, PROBLEM, count, detail)

        # constraints the database has but reflection did not return: say so, never nothing
        for constraint in live:
            if constraint.not_inventoried:
                add("not inventoried", constraint.table, constraint.columns, SKIPPED, None,
                    f"{constraint.kind} {constraint.label()} ({constraint.definition}): "
                    f"{constraint.not_inventoried}")

        # PostgreSQL NOT VALID constraints: rows older than the constraint were never checked
        for constraint in live:
            if constraint.validated:
                continue
            detail = (f"{constraint.kind} {constraint.label()} is NOT VALID: rows written before it was added "
                      f"were never checked (ALTER TABLE … VALIDATE CONSTRAINT checks them)")
            count = None
            if constraint.kind == CHECK and constraint.sqltext:
                count, _ = _count(conn, select(func.count()).select_from(tables[constraint.table])
                                  .where(not_(literal_column(f"({constraint.sqltext})"))))
                if count is not None:
                    detail += f"; {count} row(s) violate it"
            add("not validated", constraint.table, constraint.columns, PROBLEM, count, detail)

        # orphans per foreign key (live ones and declared ones missing live)
        for fk in [c for c in live if c.kind == FOREIGN_KEY] + [c for c in missing if c.kind == FOREIGN_KEY]:
            child, parent = tables[fk.table], tables.get(fk.referred_table)
            label = f"{', '.join(fk.columns)} → {fk.referred_table} ({', '.join(fk.referred_columns)})"
            if parent is None or not _has_columns(parent, fk.referred_columns):
                add("orphans", fk.table, fk.columns, SKIPPED, None, f"{label}: the referenced table or column is missing")
                continue
            count, error = _orphans(conn, child, parent, fk)
            if count is None:
                add("orphans", fk.table, fk.columns, SKIPPED, None, f"{label}: {error}")
            elif count:
                add("orphans", fk.table, fk.columns, PROBLEM, count,
                    f"{count} row(s) reference a missing {fk.referred_table} row ({label})")
            else:
                add("orphans", fk.table, fk.columns, OK, 0, label)

        # duplicates on intended-unique columns
        seen: set[tuple[str, frozenset]] = set()
        for constraint in [c for c in live + missing if c.kind in (PRIMARY_KEY, UNIQUE)]:
            key = (constraint.table, frozenset(constraint.columns))
            if key in seen or constraint.partial or constraint.not_inventoried:
                continue
            seen.add(key)
            count, error = _duplicates(conn, tables[constraint.table], constraint.columns)
            if count is None:
                add("duplicates", constraint.table, constraint.columns, SKIPPED, None, error)
            elif count:
                add("duplicates", constraint.table, constraint.columns, PROBLEM, count,
                    f"{count} row(s) share a value of {constraint.kind} {constraint.label()}")
            else:
                add("duplicates", constraint.table, constraint.columns, OK, 0, f"{constraint.kind} {constraint.label()}")

        # NULLs in columns meant to be NOT NULL: declared NOT NULL but nullable live, and
        # nullable primary-key columns (SQLite lets non-INTEGER keys hold NULL)
        null_columns = {(c.table, c.columns[0]) for c in missing if c.kind == NOT_NULL}
        for table in metadata.sorted_tables:
            for column in table.primary_key.columns:
                if column.nullable and not (conn.dialect.name == "sqlite" and _is_rowid(table)):
                    null_columns.add((table.name, column.name))
        for table_name, column_name in sorted(null_columns):
            table = tables[table_name]
            count, error = _count(conn, select(func.count()).select_from(table)
                                  .where(table.c[column_name].is_(None)))
            if count is None:
                add("nulls", table_name, (column_name,), SKIPPED, None, error)
            elif count:
                add("nulls", table_name, (column_name,), PROBLEM, count,
                    f"{count} row(s) hold NULL in {column_name}, which is meant to be NOT NULL")
            else:
                add("nulls", table_name, (column_name,), OK, 0, "meant to be NOT NULL; no NULLs")
    return _frame(rows, DATA_COLUMNS)


def _is_rowid(table: Table) -> bool:
    pk = list(table.primary_key.columns)
    return len(pk) == 1 and isinstance(pk[0].type, types.Integer)


# --------------------------------------------------------------------------- SQLite structure


def sqlite_checks(bind: Engine | Connection) -> pd.DataFrame:
    """``PRAGMA integrity_check`` and ``PRAGMA foreign_key_check`` (the latter finds
    orphans even when foreign keys were off while they were written)."""
    if bind.dialect.name != "sqlite":
        raise UnsupportedByDialect(f"integrity_check and foreign_key_check are SQLite pragmas, "
                                   f"not available on {bind.dialect.name}",
                                   hint="on other databases use the probes and data checks")
    rows: list[dict] = []
    with connection_of(bind) as conn:
        messages = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
        if messages == ["ok"]:
            rows.append({"check": "integrity_check", "table": None, "status": OK, "count": 0, "detail": "ok"})
        else:
            for message in messages:
                rows.append({"check": "integrity_check", "table": None, "status": PROBLEM, "count": 1,
                             "detail": message})
        violations: dict[tuple[str, str], int] = {}
        for table, _rowid, parent, _fkid in conn.exec_driver_sql("PRAGMA foreign_key_check"):
            violations[(table, parent)] = violations.get((table, parent), 0) + 1
        if not violations:
            rows.append({"check": "foreign_key_check", "table": None, "status": OK, "count": 0,
                         "detail": "no row references a missing parent"})
        for (table, parent), count in sorted(violations.items()):
            rows.append({"check": "foreign_key_check", "table": table, "status": PROBLEM, "count": count,
                         "detail": f"{count} row(s) reference a missing {parent} row"})
    return _frame(rows, STRUCTURAL_COLUMNS)


# --------------------------------------------------------------------------- CRUD smoke test


@dataclass
class _Crud:
    table: Table
    rows: int
    timings: dict[str, float] = field(default_factory=dict)
    keys: list[dict] = field(default_factory=list)
    status: str = OK
    detail: str = ""

    def fail(self, step: str, why: str) -> None:
        if self.status == OK:
            self.status, self.detail = "failed", f"{step}: {why}"

    def row(self) -> dict:
        ms = {f"{step}_ms": round(self.timings[step] * 1000, 3) if step in self.timings else None
              for step in ("insert", "read", "update", "delete")}
        return {"table": self.table.name, "rows": self.rows, **ms, "status": self.status,
                "detail": self.detail or f"{self.rows} row(s) inserted, read, updated and deleted"}


def _match(table: Table, key: dict):
    return and_(*[table.c[k] == v if v is not None else table.c[k].is_(None) for k, v in key.items()])


def _ancestors(table: Table) -> set[str]:
    found: set[str] = set()
    stack = [table]
    while stack:
        current = stack.pop()
        for fk in current.foreign_keys:
            parent = fk.column.table
            if parent.name not in found and parent is not table:
                found.add(parent.name)
                stack.append(parent)
    return found


def _crud_write(conn: Connection, item: _Crud, rng: random.Random) -> None:
    table = item.table
    generator = RowGenerator(table, conn.dialect.name, rng)
    parents = parent_values(conn, table)
    offset = conn.execute(select(func.count()).select_from(table)).scalar_one()
    batch = [generator.row(offset + i + 1, parents) for i in range(item.rows)]
    pk = list(table.primary_key.columns)
    returning = bool(pk) and conn.dialect.insert_returning and any(c.name not in batch[0] for c in pk)
    # insert
    started = time.perf_counter()
    if returning:
        result = conn.execute(table.insert().returning(*pk), batch)
        item.keys = [dict(r._mapping) for r in result]
    else:
        conn.execute(table.insert(), batch)
        names = [c.name for c in pk]
        item.keys = [{n: row.get(n) for n in names} if names else dict(row) for row in batch]
    item.timings["insert"] = time.perf_counter() - started
    if len(item.keys) != item.rows:
        item.fail("insert", f"{len(item.keys)} of {item.rows} rows came back")
        return
    # read
    started = time.perf_counter()
    found = conn.execute(select(table).where(or_(*[_match(table, k) for k in item.keys]))).all()
    item.timings["read"] = time.perf_counter() - started
    if len(found) != item.rows:
        item.fail("read", f"{len(found)} of {item.rows} inserted rows read back")
        return
    # update one ordinary column (else a key column to itself)
    key_names = {c.name for c in pk} | {fk.parent.name for fk in table.foreign_keys}
    candidates = [c for c in table.columns if c.name not in key_names and c.name not in generator.unique_cols
                  and c.computed is None and c.identity is None]
    column = candidates[0] if candidates else next(iter(table.columns))
    started = time.perf_counter()
    changed = 0
    for index, key in enumerate(item.keys):
        value = (generator.value(column, offset + item.rows + index + 1) if candidates
                 else table.c[column.name])
        changed += conn.execute(update(table).where(_match(table, key)).values({column.name: value})).rowcount
        if not pk and candidates:
            key[column.name] = value
    item.timings["update"] = time.perf_counter() - started
    if changed != item.rows:
        item.fail("update", f"{changed} of {item.rows} rows updated")


def _crud_delete(conn: Connection, item: _Crud) -> None:
    table = item.table
    started = time.perf_counter()
    deleted = conn.execute(delete(table).where(or_(*[_match(table, k) for k in item.keys]))).rowcount
    item.timings["delete"] = time.perf_counter() - started
    left = conn.execute(select(func.count()).select_from(table)
                        .where(or_(*[_match(table, k) for k in item.keys]))).scalar_one()
    if deleted != item.rows or left:
        item.fail("delete", f"{deleted} of {item.rows} rows deleted, {left} left")


def crud(engine: Engine, table: str | None = None, rows: int = 5) -> pd.DataFrame:
    """Insert, read, update and delete ``rows`` generated rows per table (or one table,
    whose parent tables then get rows too), timed in ms, in a transaction that is always
    rolled back. One row per table: timings, ``ok`` or ``failed`` and the detail."""
    require_reflection(engine, "the CRUD smoke test")
    if rows < 1:
        raise ConductorError(f"{option('rows')} must be at least 1")
    rng = random.Random(0)
    items: list[_Crud] = []
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET CONSTRAINTS ALL IMMEDIATE")
            metadata = _reflect(conn)
            if table is not None and table not in metadata.tables:
                raise ConductorError(f"no table '{table}' in the database",
                                     hint="tables: " + (", ".join(sorted(metadata.tables)) or "none"))
            wanted = set(metadata.tables) if table is None else {table} | _ancestors(metadata.tables[table])
            items = [_Crud(t, rows) for t in metadata.sorted_tables if t.name in wanted]
            for item in items:
                savepoint = conn.begin_nested()
                try:
                    _crud_write(conn, item, rng)
                except exc.DBAPIError as error:
                    item.fail(next((s for s in ("insert", "read", "update") if s not in item.timings), "update"),
                              _error_text(conn, error, "crud"))
                if item.status == OK:
                    savepoint.commit()
                elif savepoint.is_active:
                    savepoint.rollback()
            for item in reversed(items):
                if item.status != OK:
                    continue
                savepoint = conn.begin_nested()
                try:
                    _crud_delete(conn, item)
                    savepoint.commit()
                except exc.DBAPIError as error:
                    savepoint.rollback()
                    item.fail("delete", _error_text(conn, error, "crud"))
        finally:
            trans.rollback()
    shown = [i for i in items if table is None or i.table.name == table]
    return _frame([i.row() for i in shown], CRUD_COLUMNS)


# --------------------------------------------------------------------------- report


def _records(frame: pd.DataFrame | None) -> list[dict] | None:
    if frame is None:
        return None
    return [{str(k): json_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


@dataclass
class IntegrityReport:
    inventory: pd.DataFrame | None
    probes: pd.DataFrame | None
    data: pd.DataFrame | None
    structural: pd.DataFrame | None

    @property
    def problems(self) -> list[str]:
        found: list[str] = []
        if self.probes is not None:
            for _, r in self.probes[self.probes["status"] == NOT_ENFORCED].iterrows():
                found.append(f"{r['table']}: {r['kind']} {r['constraint'] or '(' + r['columns'] + ')'} "
                             f"NOT ENFORCED: {r['detail']}")
        if self.data is not None:
            for _, r in self.data[self.data["status"] == PROBLEM].iterrows():
                found.append(f"{r['check']} {r['table']}: {r['detail']}")
        if self.structural is not None:
            for _, r in self.structural[self.structural["status"] == PROBLEM].iterrows():
                found.append(f"{r['check']}: {r['detail']}")
        return found

    def to_json(self) -> dict:
        return {"inventory": _records(self.inventory), "probes": _records(self.probes),
                "data": _records(self.data), "structural": _records(self.structural),
                "problems": self.problems}

    def to_text(self) -> str:
        problems = self.problems
        lines = [f"integrity: {len(problems)} problem(s)" if problems else "integrity: clean"]
        lines += [f"  - {p}" for p in problems]
        for title, frame in (("constraints", self.inventory), ("probes (rolled back)", self.probes),
                             ("data checks", self.data), ("SQLite structural checks", self.structural)):
            if frame is None:
                continue
            lines += ["", f"{title}:", frame.to_string(index=False) if not frame.empty else "(none)"]
        return "\n".join(lines)


def check_integrity(engine: Engine, declared_sql: str | None = None) -> IntegrityReport:
    """Inventory, probes, data checks and (SQLite) structural checks in one report."""
    require_reflection(engine, "integrity checks")
    structural = sqlite_checks(engine) if engine.dialect.name == "sqlite" else None
    return IntegrityReport(inventory(engine), probe(engine), data_checks(engine, declared_sql), structural)
