"""Sample rows that respect the schema: types, NOT NULL, UNIQUE, foreign keys, simple CHECKs.

Rows are generated from the reflected schema, tables are filled in foreign-key
order, and a seed makes the data reproducible. Used to seed a database for
``migrate check``, to build violating rows for integrity probes, and for CRUD
smoke tests. (The sample-data issue makes distributions and bulk paths richer.)
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlglot
from sqlalchemy import Connection, Engine, MetaData, Table, func, select, types
from sqlalchemy.exc import IntegrityError
from sqlglot import exp

from .fingerprint import TOOL_TABLES

_EPOCH = dt.datetime(2024, 1, 1, 9, 0, 0)


@dataclass
class Bounds:
    """What the simple CHECK constraints allow for one column."""

    low: float | None = None  # inclusive
    high: float | None = None  # inclusive
    choices: list[Any] | None = None
    not_equal: set[Any] = field(default_factory=set)
    min_length: int = 0
    #: ``col IS NULL OR …``: NULL always satisfies the check, whatever the other columns are
    null_satisfies: bool = False

    def merge_low(self, value: float) -> None:
        self.low = value if self.low is None else max(self.low, value)

    def merge_high(self, value: float) -> None:
        self.high = value if self.high is None else min(self.high, value)


def _literal(node: exp.Expression) -> Any:
    if isinstance(node, exp.Neg):
        inner = _literal(node.this)
        return -inner if isinstance(inner, int | float) else None
    if isinstance(node, exp.Paren):
        return _literal(node.this)
    if isinstance(node, exp.Cast):
        return _literal(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = node.this
        return float(text) if any(c in text for c in ".eE") else int(text)
    return None


def _column_of(node: exp.Expression) -> str | None:
    while isinstance(node, exp.Paren | exp.Cast):
        node = node.this
    return node.name.lower() if isinstance(node, exp.Column) else None


def check_bounds(sqltexts: list[str], dialect: str) -> dict[str, Bounds]:
    """Per-column bounds from CHECK expressions that are simple comparisons, BETWEEN,
    IN-lists or ``length(col) > n``, joined by AND. Anything else is ignored."""
    bounds: dict[str, Bounds] = {}
    read = {"postgresql": "postgres"}.get(dialect, dialect if dialect in ("sqlite", "duckdb", "mysql") else None)
    for text in sqltexts:
        try:
            tree = sqlglot.parse_one(text, read=read)
        except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
            continue
        parts = list(tree.flatten()) if isinstance(tree, exp.And) else [tree]
        for part in parts:
            _apply_condition(part, bounds)
    return bounds


def _apply_condition(node: exp.Expression, bounds: dict[str, Bounds]) -> None:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Or):
        # `paid_at IS NULL OR status IN (…)`: leaving the column NULL always passes.
        for side in node.flatten():
            while isinstance(side, exp.Paren):
                side = side.this
            if isinstance(side, exp.Is) and isinstance(side.expression, exp.Null):
                col = _column_of(side.this)
                if col:
                    bounds.setdefault(col, Bounds()).null_satisfies = True
        return
    if isinstance(node, exp.In):
        col = _column_of(node.this)
        values = [_literal(v) for v in node.expressions]
        if col and values and all(v is not None for v in values):
            bounds.setdefault(col, Bounds()).choices = values
        return
    if isinstance(node, exp.Between):
        col = _column_of(node.this)
        low, high = _literal(node.args["low"]), _literal(node.args["high"])
        if col and isinstance(low, int | float) and isinstance(high, int | float):
            b = bounds.setdefault(col, Bounds())
            b.merge_low(low)
            b.merge_high(high)
        return
    comparisons = {exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<=", exp.EQ: "=", exp.NEQ: "<>"}
    op = comparisons.get(type(node))
    if op is None:
        return
    left, right = node.this, node.expression
    # length(col) > n keeps strings non-empty
    if isinstance(left, exp.Length) and _literal(right) is not None:
        col = _column_of(left.this)
        if col and op in (">", ">="):
            bounds.setdefault(col, Bounds()).min_length = int(_literal(right)) + (1 if op == ">" else 0)
        return
    if op == "=" and isinstance(right, exp.Any):
        # PostgreSQL stores `col IN ('a', 'b')` as `col = ANY (ARRAY['a', 'b'])`.
        array = right.this
        while isinstance(array, exp.Paren | exp.Cast):
            array = array.this
        col = _column_of(left)
        values = [_literal(v) for v in getattr(array, "expressions", [])]
        if col and values and all(v is not None for v in values):
            bounds.setdefault(col, Bounds()).choices = values
        return
    col, value = _column_of(left), _literal(right)
    if col is None:  # written as `0 < col`
        col, value = _column_of(right), _literal(left)
        op = {">": "<", ">=": "<=", "<": ">", "<=": ">="}.get(op, op)
    if col is None or value is None:
        return
    b = bounds.setdefault(col, Bounds())
    if op == "=":
        b.choices = [value]
    elif op == "<>":
        b.not_equal.add(value)
    elif isinstance(value, int | float):
        step = 1 if isinstance(value, int) else 0.01
        if op == ">":
            b.merge_low(value + step)
        elif op == ">=":
            b.merge_low(value)
        elif op == "<":
            b.merge_high(value - step)
        elif op == "<=":
            b.merge_high(value)


class RowGenerator:
    """Generates rows for one reflected table; ``parents`` holds referenced key values."""

    def __init__(self, table: Table, dialect: str, rng: random.Random):
        self.table = table
        self.dialect = dialect
        self.rng = rng
        checks = [str(c.sqltext) for c in table.constraints if c.__class__.__name__ == "CheckConstraint"]
        self.bounds = check_bounds(checks, dialect)
        self.unique_cols = {c.name for c in table.columns if c.unique}
        for constraint in table.constraints:
            if constraint.__class__.__name__ in ("UniqueConstraint", "PrimaryKeyConstraint"):
                self.unique_cols.update(c.name for c in constraint.columns)
        for index in table.indexes:
            if index.unique:
                self.unique_cols.update(c.name for c in index.columns)
        self.fk_columns = {fk.parent.name: fk for fk in table.foreign_keys}
        # Multi-column keys that include a foreign key, e.g. PRIMARY KEY (order_id, line):
        # the tuple must be unique, not each column, so those rows are laid out on a grid.
        self.grid_keys: list[set[str]] = []
        for constraint in table.constraints:
            if constraint.__class__.__name__ in ("UniqueConstraint", "PrimaryKeyConstraint"):
                cols = {c.name for c in constraint.columns}
                if len(cols) > 1 and cols & set(self.fk_columns):
                    self.grid_keys.append(cols)
        self.grid_columns = set().union(*self.grid_keys) if self.grid_keys else set()

    def auto_key(self) -> str | None:
        """The single integer primary key the database assigns itself, if any."""
        pk = list(self.table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, types.Integer) or pk[0].foreign_keys:
            return None
        column = pk[0]
        # SQLite's INTEGER PRIMARY KEY is the rowid; elsewhere only identity/serial columns
        # (a reflected identity or nextval() default) are filled in by the database.
        if self.dialect == "sqlite" or column.identity is not None or column.server_default is not None:
            return column.name
        return None

    def row(self, index: int, parents: dict[str, list[Any]], prefer_null: bool = False) -> dict[str, Any]:
        """A row for position ``index``; ``prefer_null`` leaves every nullable non-key column
        NULL (the fallback when a CHECK the generator cannot read rejected a batch)."""
        values = self._row(index, parents)
        for column in self.table.columns:
            name = column.name
            nullable = column.nullable and name not in self.unique_cols and name not in self.fk_columns
            if nullable and (prefer_null or self.bounds.get(name.lower(), Bounds()).null_satisfies):
                values[name] = None
        return values

    def _row(self, index: int, parents: dict[str, list[Any]]) -> dict[str, Any]:
        auto = self.auto_key()
        values: dict[str, Any] = {}
        grid_fks = [c for c in self.fk_columns if c in self.grid_columns and parents.get(c)]
        width = len(parents[grid_fks[0]]) if grid_fks else 1
        for column in self.table.columns:
            name = column.name
            if name == auto:
                continue
            if name in grid_fks:
                # Walk every parent before reusing one, and move the other key columns
                # on by one each time round: (parent, line) pairs never repeat.
                choices = parents[name]
                values[name] = choices[(index - 1) % len(choices)]
                continue
            if name in self.grid_columns and name not in self.fk_columns:
                values[name] = self.value(column, (index - 1) // width + 1)
                continue
            if name in self.fk_columns:
                choices = parents.get(name)
                if choices:
                    values[name] = self.rng.choice(choices)
                elif column.nullable:
                    values[name] = None
                continue
            if column.server_default is not None and name not in self.unique_cols:
                continue
            if column.nullable and name not in self.unique_cols and self.rng.random() < 0.1:
                values[name] = None
                continue
            values[name] = self.value(column, index)
        return values

    def value(self, column, index: int) -> Any:
        """A value for ``column`` in row ``index`` (unique per index where it must be)."""
        name = column.name
        bounds = self.bounds.get(name.lower(), Bounds())
        unique = name in self.unique_cols
        if bounds.choices:
            return bounds.choices[index % len(bounds.choices)] if unique else self.rng.choice(bounds.choices)
        kind = column.type
        try:
            python_type = kind.python_type
        except NotImplementedError:
            python_type = str
        if isinstance(kind, types.Boolean) or python_type is bool:
            return bool(index % 2) if unique else self.rng.random() < 0.5
        if isinstance(kind, types.Integer) or python_type is int:
            low = int(bounds.low) if bounds.low is not None else 1
            high = int(bounds.high) if bounds.high is not None else max(low, 1) + 1_000_000
            if unique or name in self.grid_columns:
                value = low + (index - 1) % (high - low + 1)
            else:
                value = self.rng.randint(low, high)
            while value in bounds.not_equal and value < high:
                value += 1
            return value
        if isinstance(kind, types.Numeric | types.Float) or python_type in (float, Decimal):
            low = float(bounds.low) if bounds.low is not None else 0.0
            high = float(bounds.high) if bounds.high is not None else low + 10_000.0
            number = low + index * 0.01 if unique else self.rng.uniform(low, high)
            number = round(min(max(number, low), high), 2)
            scale = getattr(kind, "scale", None)
            return Decimal(str(number)) if python_type is Decimal or scale else number
        if python_type is dt.datetime:
            return _EPOCH + dt.timedelta(minutes=index if unique else self.rng.randint(0, 500_000))
        if python_type is dt.date:
            return (_EPOCH + dt.timedelta(days=index if unique else self.rng.randint(0, 900))).date()
        if python_type is dt.time:
            return dt.time(self.rng.randint(0, 23), self.rng.randint(0, 59))
        if python_type is uuid.UUID:
            return uuid.UUID(int=self.rng.getrandbits(128))
        if python_type is bytes:
            return index.to_bytes(8, "big")
        if python_type in (dict, list) or isinstance(kind, types.JSON):
            return {"n": index}
        return self._text(column, index, bounds)

    def _text(self, column, index: int, bounds: Bounds) -> str:
        name = column.name.lower()
        if "email" in name:
            text = f"user{index}@example.com"
        elif "json" in name or "payload" in name:
            text = f'{{"n": {index}}}'
        else:
            text = f"{name}-{index}"
        text = text.ljust(bounds.min_length, "x")
        length = getattr(column.type, "length", None)
        if length:
            text = text[-length:] if name in self.unique_cols else text[:length]
        return text


def reflect_user_tables(bind: Connection) -> MetaData:
    metadata = MetaData()
    metadata.reflect(bind)
    for name in list(metadata.tables):
        if name in TOOL_TABLES:
            metadata.remove(metadata.tables[name])
    return metadata


def seed(bind: Engine | Connection, rows: int = 20, tables: list[str] | None = None,
         seed: int = 0) -> dict[str, int]:
    """Insert ``rows`` generated rows into every user table (or the named ones), parents
    first. Returns rows inserted per table. Runs in one transaction on an Engine."""
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            return seed_connection(conn, rows, tables, seed)
    return seed_connection(bind, rows, tables, seed)


def seed_connection(conn: Connection, rows: int, tables: list[str] | None, seed_value: int) -> dict[str, int]:
    rng = random.Random(seed_value)
    metadata = reflect_user_tables(conn)
    dialect = conn.dialect.name
    inserted: dict[str, int] = {}
    for table in metadata.sorted_tables:
        if tables is not None and table.name not in tables:
            continue
        generator = RowGenerator(table, dialect, rng)
        parents = parent_values(conn, table)
        offset = conn.execute(select(func.count()).select_from(table)).scalar_one()
        batch = [generator.row(offset + i + 1, parents) for i in range(rows)]
        if batch:
            try:
                with conn.begin_nested():
                    conn.execute(table.insert(), batch)
            except IntegrityError:
                # A CHECK spanning several columns that the generator cannot read: NULL in
                # the optional columns satisfies most of them. A second failure is raised.
                batch = [generator.row(offset + i + 1, parents, prefer_null=True) for i in range(rows)]
                conn.execute(table.insert(), batch)
        inserted[table.name] = len(batch)
    return inserted


def parent_values(conn: Connection, table: Table, limit: int = 1000) -> dict[str, list[Any]]:
    """For each foreign-key column, values that exist in the referenced column."""
    found: dict[str, list[Any]] = {}
    for fk in table.foreign_keys:
        target = fk.column
        if target.table is table:
            continue  # self-reference: leave NULL/absent
        values = conn.execute(select(target).order_by(target).limit(limit)).scalars().all()
        found[fk.parent.name] = [v for v in values if v is not None]
    return found
