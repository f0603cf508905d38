"""Sample rows that respect the schema: types, NOT NULL, UNIQUE, foreign keys, simple CHECKs.

Rows are generated from the reflected schema, tables are filled in foreign-key order,
and a seed makes the data reproducible. Used by ``seed TABLE --rows N``, to seed a
database for ``migrate check``, to build violating rows for integrity probes, and for
CRUD smoke tests.

Generation is column-wise: a batch of rows is a handful of numpy operations per column
(index arithmetic for unique values, ``integers``/``searchsorted`` draws for foreign keys,
IN-lists and integers), so one code path serves a single row for a probe and a million
rows for an index benchmark. Every column (and every foreign key, and every column's
NULLs) draws from its own random stream, seeded from the seed, the table and the
position, so the same seed gives the same rows whatever the batch size.

Loading uses each driver's bulk path inside one transaction: on SQLite multi-row
``INSERT … VALUES (…), (…)`` statements through the sqlite3 cursor's ``executemany``;
on PostgreSQL (psycopg 3) ``COPY … FROM STDIN``; elsewhere SQLAlchemy's executemany.
Large loads build plain indexes (and on PostgreSQL validate foreign keys) once at the
end rather than row by row (see :func:`_bulk_window`). ``benchmarks/bench_seed.py``
measures it against ``pandas.DataFrame.to_sql``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import sqlglot
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    UniqueConstraint,
    and_,
    func,
    select,
    text,
    types,
)
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlglot import exp

from ..errors import ConductorError, DatabaseError, UnsupportedByDialect, command, option
from .connection import driver_reason, require_reflection
from .fingerprint import TOOL_TABLES
from .timeouts import statement_timeout

_EPOCH = dt.datetime(2024, 1, 1, 9, 0, 0)
_EPOCH64 = np.datetime64(_EPOCH, "us")
#: share of NULLs in nullable columns that are not keys
NULL_SHARE = 0.1
#: parent keys read per foreign key when seeding (integrity probes read 1,000)
PARENT_LIMIT = 1_000_000
#: skewed draws rank at most this many distinct values (the tail beyond is never drawn)
SKEW_DOMAIN = 1_000_000
#: loads of at least this many rows rebuild plain indexes (and on PostgreSQL check foreign
#: keys) once afterwards instead of row by row
BULK_MIN_ROWS = 20_000
#: load paths: sqlite3 executemany, psycopg COPY, SQLAlchemy executemany (any dialect)
PATHS = ("executemany", "COPY", "sqlalchemy")
#: what the values of each path are encoded for
_TARGETS = {"executemany": "sqlite", "COPY": "copy", "sqlalchemy": "python"}
_INTEGER_MAX = ((types.SmallInteger, 2**15 - 1), (types.BigInteger, 2**63 - 1),
                (types.Integer, 2**31 - 1))
#: value kinds that reach the driver as Python objects (SQLAlchemy's bind processors apply)
_OBJECT_KINDS = frozenset({"choice", "time", "uuid", "bytes", "json", "fk"})


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
    for sqltext in sqltexts:
        try:
            tree = sqlglot.parse_one(sqltext, read=read)
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



# -- generation -----------------------------------------------------------------------------

def _kind_of(column: Column, bounds: Bounds) -> str:
    """Which generator a column gets, from its CHECK-derived choices and its type."""
    kind = column.type
    if bounds.choices:
        return "choice"
    try:
        python_type = kind.python_type
    except NotImplementedError:
        python_type = str
    if isinstance(kind, types.Boolean) or python_type is bool:
        return "bool"
    if isinstance(kind, types.Integer) or python_type is int:
        return "int"
    if isinstance(kind, types.Numeric | types.Float) or python_type in (float, Decimal):
        return "float"
    named = {dt.datetime: "datetime", dt.date: "date", dt.time: "time", uuid.UUID: "uuid",
             bytes: "bytes", dict: "json", list: "json"}
    if python_type in named:
        return named[python_type]
    return "json" if isinstance(kind, types.JSON) else "text"


@dataclass
class _ColumnSpec:
    """How one column's values are made; ``values``/``nulls`` are its random streams."""

    column: Column
    kind: str
    bounds: Bounds
    values: np.random.Generator
    nulls: np.random.Generator
    choices: np.ndarray | None = None
    low: int | float = 0
    high: int | float = 0  # random values
    unique_high: int | float = 0  # index-derived (unique) values
    decimals: int = 2
    as_decimal: bool = False
    excluded: list[int] = field(default_factory=list)  # `col <> n` values inside the range


@dataclass
class _ForeignKey:
    """One foreign-key constraint of the table: its local columns share one draw of parents."""

    columns: list[str]
    stream: np.random.Generator
    walk: bool  # part of a composite key (grid) or one-to-one: step through the parents


def _zipf_cdf(size: int, skew: float) -> np.ndarray:
    """Cumulative weights of ranks 1..size with weight ``rank ** -skew``."""
    weights = np.arange(1, size + 1, dtype=np.float64) ** -skew
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def _as_array(values: list[Any]) -> np.ndarray:
    """A list of parent keys as an array: int64 when they are all ints, else objects."""
    if all(type(v) is int for v in values):
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            pass
    return np.fromiter(values, dtype=object, count=len(values))


class RowGenerator:
    """Generates rows for one reflected table; ``parents`` holds referenced key values
    (as :func:`parent_values` returns them).

    ``skew`` > 0 draws foreign keys, IN-list values and non-unique integers from a
    Zipf-like distribution with that exponent (rank *k* has weight ``k ** -skew``), so a
    few values are common; 0 draws them uniformly. ``rng`` seeds every stream.
    """

    def __init__(self, table: Table, dialect: str, rng: random.Random, *, skew: float = 0.0):
        self.table = table
        self.dialect = dialect
        self.rng = rng
        self.skew = skew
        checks = [str(c.sqltext) for c in table.constraints if c.__class__.__name__ == "CheckConstraint"]
        self.bounds = check_bounds(checks, dialect)
        keys = [c for c in table.constraints
                if c.__class__.__name__ in ("UniqueConstraint", "PrimaryKeyConstraint")]
        key_columns = [[c.name for c in k.columns] for k in keys]
        key_columns += [[c.name for c in i.columns] for i in table.indexes if i.unique]
        #: every column of a UNIQUE/PRIMARY KEY constraint or unique index
        self.unique_cols = {c.name for c in table.columns if c.unique}
        self.unique_cols.update(name for cols in key_columns for name in cols)
        single = {c.name for c in table.columns if c.unique}
        single.update(cols[0] for cols in key_columns if len(cols) == 1)
        self.fk_columns = {fk.parent.name: fk for fk in table.foreign_keys}
        # Multi-column keys that include a foreign key, e.g. PRIMARY KEY (order_id, line):
        # the tuple must be unique, not each column, so those rows are laid out on a grid.
        self.grid_keys: list[set[str]] = [set(cols) for cols in key_columns
                                          if len(cols) > 1 and set(cols) & set(self.fk_columns)]
        self.grid_columns = (set().union(*self.grid_keys) if self.grid_keys else set()) - single
        seed_words = [rng.getrandbits(32) for _ in range(4)]

        def stream(*where: int) -> np.random.Generator:
            return np.random.default_rng([*seed_words, *where])

        #: columns unique on their own (not only as part of a composite key)
        self.single_unique = single
        self.specs = {column.name: self._spec(column, stream(position, 0), stream(position, 1))
                      for position, column in enumerate(table.columns)}
        self.foreign_keys: list[_ForeignKey] = []
        constraints = sorted(table.foreign_key_constraints, key=lambda c: [col.name for col in c.columns])
        for number, constraint in enumerate(constraints):
            if constraint.referred_table is table:
                continue  # self-reference: left NULL/absent
            names = [c.name for c in constraint.columns]
            walk = bool(set(names) & self.grid_columns) or bool(set(names) & single)
            self.foreign_keys.append(_ForeignKey(names, stream(10_000 + number), walk))
        #: value offset per unique integer column, to continue after existing rows
        self.shift: dict[str, int] = {}
        self._cdfs: dict[int, np.ndarray] = {}
        self._parent_arrays: dict[str, tuple[list[Any], np.ndarray]] = {}

    def _spec(self, column: Column, values: np.random.Generator,
              nulls: np.random.Generator) -> _ColumnSpec:
        bounds = self.bounds.get(column.name.lower(), Bounds())
        if not bounds.choices and isinstance(column.type, types.Enum) and column.type.enums:
            bounds = Bounds(choices=list(column.type.enums), null_satisfies=bounds.null_satisfies)
        spec = _ColumnSpec(column, _kind_of(column, bounds), bounds, values, nulls)
        if spec.kind == "choice":
            spec.choices = np.fromiter(bounds.choices, dtype=object, count=len(bounds.choices))
        elif spec.kind == "int":
            top = next((limit for kind, limit in _INTEGER_MAX if isinstance(column.type, kind)), 2**63 - 1)
            spec.low = math.ceil(bounds.low) if bounds.low is not None else 1
            ceiling = math.floor(bounds.high) if bounds.high is not None else top
            spec.high = min(ceiling, max(spec.low, 1) + 1_000_000)
            spec.unique_high = ceiling
            spec.excluded = sorted(v for v in bounds.not_equal
                                   if isinstance(v, int) and spec.low <= v <= ceiling)
        elif spec.kind == "float":
            scale = getattr(column.type, "scale", None)
            precision = getattr(column.type, "precision", None)
            spec.decimals = min(scale, 2) if isinstance(scale, int) else 2
            try:
                python_type = column.type.python_type
            except NotImplementedError:
                python_type = float
            spec.as_decimal = python_type is Decimal or bool(scale)
            spec.low = float(bounds.low) if bounds.low is not None else 0.0
            high = float(bounds.high) if bounds.high is not None else spec.low + 10_000.0
            if isinstance(precision, int) and isinstance(scale, int) and precision > scale:
                # NUMERIC(5,2) holds at most 999.99
                high = min(high, 10.0 ** (precision - scale) - 10.0 ** -scale)
            spec.high = spec.unique_high = high
        return spec

    # -- which columns an INSERT names ---------------------------------------------------

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

    def insert_columns(self, parents: dict[str, list[Any]]) -> list[str]:
        """The columns rows carry values for (the database fills in the others): not the
        automatic key, computed or identity columns, nor non-key columns with a server
        default, nor a NOT NULL foreign key without parents."""
        auto = self.auto_key()
        names = []
        for column in self.table.columns:
            name = column.name
            if name == auto or column.computed is not None:
                continue
            if name in self.fk_columns:
                if parents.get(name) or column.nullable:
                    names.append(name)
                continue
            if column.identity is not None:
                continue
            if name in self.unique_cols or column.server_default is None:
                names.append(name)
        return names

    def _free(self, name: str) -> bool:
        """May this column be NULL without breaking a key?"""
        return (self.table.c[name].nullable and name not in self.unique_cols
                and name not in self.fk_columns)

    # -- rows -------------------------------------------------------------------------------

    def row(self, index: int, parents: dict[str, list[Any]], prefer_null: bool = False) -> dict[str, Any]:
        """A row for position ``index``; ``prefer_null`` leaves every nullable non-key column
        NULL (the fallback when a CHECK the generator cannot read rejected a batch)."""
        return self.rows(index, 1, parents, prefer_null)[0]

    def rows(self, start: int, count: int, parents: dict[str, list[Any]],
             prefer_null: bool = False) -> list[dict[str, Any]]:
        """``count`` rows for positions ``start``, ``start + 1``, … as dicts of Python values
        ready for a SQLAlchemy ``insert()``."""
        data = self.columns(start, count, parents, prefer_null)
        names = list(data)
        return [dict(zip(names, values, strict=True)) for values in zip(*data.values(), strict=True)] \
            if names else [{} for _ in range(count)]

    def columns(self, start: int, count: int, parents: dict[str, list[Any]],
                prefer_null: bool = False, target: str = "python") -> dict[str, list[Any]]:
        """Column-wise values for positions ``start`` … ``start + count - 1``, one list per
        column of :meth:`insert_columns`. ``target`` says who reads them: ``"python"``
        (SQLAlchemy), ``"sqlite"`` (the sqlite3 driver) or ``"copy"`` (psycopg's COPY)."""
        index = np.arange(start, start + count, dtype=np.int64)
        keys, block = self._foreign_key_values(index, parents)
        out: dict[str, list[Any]] = {}
        for name in self.insert_columns(parents):
            spec = self.specs[name]
            if name in self.fk_columns:
                out[name] = self._encode(spec, keys.get(name), None, target, count, True)
                continue
            grid = name in self.grid_columns
            values = self._generate(spec, block if grid else index, grid or name in self.unique_cols)
            nulls = None
            if self._free(name) and not grid:
                if prefer_null or spec.bounds.null_satisfies:
                    values = None
                else:
                    nulls = spec.nulls.random(count) < NULL_SHARE
            out[name] = self._encode(spec, values, nulls, target, count, False)
        return out

    def value(self, column, index: int) -> Any:
        """A value for ``column`` in row ``index`` (unique per index where it must be)."""
        spec = self.specs.get(column.name)
        if spec is None or spec.column is not column:
            spec = self._spec(column, np.random.default_rng(self.rng.getrandbits(64)),
                              np.random.default_rng(0))
        unique = column.name in self.unique_cols or column.name in self.grid_columns
        values = self._generate(spec, np.array([index], dtype=np.int64), unique)
        return self._encode(spec, values, None, "python", 1, False)[0]

    def _positions(self, stream: np.random.Generator, size: int, count: int) -> np.ndarray:
        """``count`` draws from ``range(size)``: uniform, or Zipf-like when skewed."""
        if self.skew <= 0 or size <= 1:
            return stream.integers(0, max(size, 1), count)
        ranks = min(size, SKEW_DOMAIN)
        cdf = self._cdfs.get(ranks)
        if cdf is None:
            cdf = self._cdfs[ranks] = _zipf_cdf(ranks, self.skew)
        return np.minimum(np.searchsorted(cdf, stream.random(count), side="right"), ranks - 1)

    def _parent_array(self, name: str, values: list[Any]) -> np.ndarray:
        cached = self._parent_arrays.get(name)
        if cached is None or cached[0] is not values:
            cached = self._parent_arrays[name] = (values, _as_array(values))
        return cached[1]

    def _foreign_key_values(self, index: np.ndarray, parents: dict[str, list[Any]]
                            ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Parent keys per foreign-key column, and the block number of each row for the
        other columns of a composite key. Composite keys walk their parents like digits of
        a counter (the first foreign key fastest), so key tuples repeat only after every
        combination was used; the other key columns move on by one each time round."""
        found: dict[str, np.ndarray] = {}
        radix = 1
        for key in self.foreign_keys:
            if not all(parents.get(name) for name in key.columns):
                continue
            arrays = [self._parent_array(name, parents[name]) for name in key.columns]
            width = min(len(a) for a in arrays)
            if key.walk:
                grid = bool(set(key.columns) & self.grid_columns)
                positions = ((index - 1) // (radix if grid else 1)) % width
                if grid:
                    radix = min(radix * width, 2**62)
            else:
                positions = self._positions(key.stream, width, len(index))
            for name, array in zip(key.columns, arrays, strict=True):
                found[name] = array[positions]
        return found, (index - 1) // radix + 1

    def _generate(self, spec: _ColumnSpec, index: np.ndarray, unique: bool) -> np.ndarray | list:
        """Values for ``index`` from the column's type and CHECK bounds: a function of the
        index where they must be unique, random draws otherwise."""
        count, stream, kind = len(index), spec.values, spec.kind
        if kind == "choice":
            positions = index % len(spec.choices) if unique else \
                self._positions(stream, len(spec.choices), count)
            return spec.choices[positions]
        if kind == "bool":
            return index % 2 == 1 if unique else stream.random(count) < 0.5
        if kind == "int":
            high = spec.unique_high if unique else spec.high
            size = max(1, min(high - spec.low + 1 - len(spec.excluded), 2**62))
            if unique:
                offsets = (index - 1 + self.shift.get(spec.column.name, 0)) % size
            else:
                offsets = self._positions(stream, size, count)
            values = offsets + spec.low
            for excluded in spec.excluded:  # skip `col <> n` values
                values += values >= excluded
            return values
        if kind == "float":
            step = 10.0 ** -spec.decimals
            values = spec.low + index * step if unique else stream.uniform(spec.low, spec.high, count)
            return np.round(np.clip(values, spec.low, spec.high), spec.decimals)
        if kind == "datetime":
            minutes = index if unique else stream.integers(0, 500_001, count)
            return _EPOCH64 + minutes.astype("m8[m]")
        if kind == "date":
            days = index if unique else stream.integers(0, 901, count)
            return _EPOCH64.astype("M8[D]") + days.astype("m8[D]")
        if kind == "time":
            return [dt.time(m // 60, m % 60) for m in stream.integers(0, 1440, count).tolist()]
        if kind == "uuid":
            raw = stream.bytes(16 * count)
            return [uuid.UUID(bytes=raw[i:i + 16]) for i in range(0, 16 * count, 16)]
        if kind == "bytes":
            return [i.to_bytes(8, "big") for i in index.tolist()]
        if kind == "json":
            return [{"n": i} for i in index.tolist()]
        return self._texts(spec, index)

    def _texts(self, spec: _ColumnSpec, index: np.ndarray) -> list[str]:
        name = spec.column.name.lower()
        if "email" in name:
            prefix, suffix = "user", "@example.com"
        elif "json" in name or "payload" in name:
            prefix, suffix = '{"n": ', "}"
        else:
            prefix, suffix = f"{name}-", ""
        texts = [f"{prefix}{i}{suffix}" for i in index.tolist()]
        if spec.bounds.min_length:
            texts = [t.ljust(spec.bounds.min_length, "x") for t in texts]
        length = getattr(spec.column.type, "length", None)
        if length and texts and max(len(texts[0]), len(texts[-1])) > length:
            unique = spec.column.name in self.unique_cols
            texts = [t[-length:] if unique else t[:length] for t in texts]
        return texts

    def _encode(self, spec: _ColumnSpec, values: np.ndarray | list | None, nulls: np.ndarray | None,
                target: str, count: int, foreign_key: bool) -> list[Any]:
        """Python values for ``target`` (see :meth:`columns`); ``None`` values mean all NULL."""
        if values is None:
            return [None] * count
        if isinstance(values, np.ndarray) and values.dtype.kind == "M":
            out = values.tolist() if target == "python" else _datetime_texts(values)
        else:
            out = values.tolist() if isinstance(values, np.ndarray) else values
        kind = "fk" if foreign_key else spec.kind
        if target == "python" and kind == "float" and spec.as_decimal:
            out = [Decimal(repr(v)) for v in out]
        elif target == "sqlite" and kind in _OBJECT_KINDS:
            process = spec.column.type.dialect_impl(_SQLITE).bind_processor(_SQLITE)
            if process is not None:
                out = [None if v is None else process(v) for v in out]
        elif target == "copy" and kind in ("json", "fk", "choice"):
            out = [json.dumps(v) if isinstance(v, dict | list) else v for v in out]
        if nulls is not None:
            for i in np.flatnonzero(nulls).tolist():
                out[i] = None
        return out


def _datetime_texts(values: np.ndarray) -> list[str]:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` (``YYYY-MM-DD`` for dates): SQLAlchemy's storage format
    on SQLite, and input PostgreSQL's COPY reads. Built digit by digit in numpy, about ten
    times faster than ``numpy.datetime_as_string``; years 1000-9999."""
    days = values.astype("M8[D]")
    months = days.astype("M8[M]")
    parts: list[str | tuple[np.ndarray, int]] = [
        (days.astype("M8[Y]").astype(np.int64) + 1970, 4), "-",
        (months.astype(np.int64) % 12 + 1, 2), "-",
        ((days - months.astype("M8[D]")).astype(np.int64) + 1, 2)]
    if values.dtype != days.dtype:
        seconds, micros = np.divmod((values.astype("M8[us]") - days).astype(np.int64), 1_000_000)
        parts += [" ", (seconds // 3600, 2), ":", (seconds // 60 % 60, 2), ":", (seconds % 60, 2),
                  ".", (micros, 6)]
    width = sum(len(p) if isinstance(p, str) else p[1] for p in parts)
    chars = np.empty((len(values), width), dtype=np.uint32)
    position = 0
    for part in parts:
        if isinstance(part, str):
            chars[:, position] = ord(part)
            position += 1
            continue
        number, digits = part
        for place in range(digits - 1, -1, -1):
            chars[:, position + place] = 48 + number % 10
            number = number // 10
        position += digits
    return chars.view(f"<U{width}").ravel().tolist()


_SQLITE = sqlite_dialect()


# -- reading the database ---------------------------------------------------------------------

def reflect_user_tables(bind: Connection, *, sqlite_inline_unique: bool = False) -> MetaData:
    """The user's tables (the tool's own tables left out), with constraints.

    SQLAlchemy's SQLite reflection does not report a column's inline ``UNIQUE`` (``email
    TEXT UNIQUE``); ``sqlite_inline_unique`` adds those as UniqueConstraints, read from
    the indexes SQLite keeps for them."""
    metadata = MetaData()
    metadata.reflect(bind)
    for name in list(metadata.tables):
        if name in TOOL_TABLES:
            metadata.remove(metadata.tables[name])
    if sqlite_inline_unique and bind.dialect.name == "sqlite":
        for table in metadata.tables.values():
            _add_sqlite_inline_unique(bind, table)
    return metadata


def _add_sqlite_inline_unique(conn: Connection, table: Table) -> None:
    found: dict[str, list[str]] = {}
    for index, column in conn.exec_driver_sql(
            "SELECT il.name, ii.name FROM pragma_index_list(?) AS il, pragma_index_info(il.name) AS ii "
            "WHERE il.origin = 'u' ORDER BY il.name, ii.seqno", (table.name,)):
        found.setdefault(index, []).append(column)
    known = {frozenset(c.name for c in k.columns) for k in table.constraints
             if isinstance(k, UniqueConstraint | PrimaryKeyConstraint)}
    for columns in found.values():
        if frozenset(columns) not in known and all(c in table.c for c in columns):
            table.append_constraint(UniqueConstraint(*[table.c[c] for c in columns]))
            known.add(frozenset(columns))


def parent_values(conn: Connection, table: Table, limit: int | None = 1000) -> dict[str, list[Any]]:
    """For each foreign-key column, values that exist in the referenced column (at most
    ``limit``, smallest first; ``None`` for all). The lists of a multi-column foreign key
    are aligned: position *i* of each list is one existing parent key."""
    found: dict[str, list[Any]] = {}
    for constraint in sorted(table.foreign_key_constraints, key=lambda c: [col.name for col in c.columns]):
        if constraint.referred_table is table:
            continue  # self-reference: leave NULL/absent
        targets = [element.column for element in constraint.elements]
        query = select(*targets).where(and_(*[t.is_not(None) for t in targets])).order_by(*targets)
        keys = conn.execute(query.limit(limit) if limit is not None else query).all()
        for position, column in enumerate(constraint.columns):
            found[column.name] = [key[position] for key in keys]
    return found


def check_parents(conn: Connection, selected: list[Table], rows: int) -> None:
    """Raise when a table to seed needs parent rows that will not be there: a NOT NULL
    foreign key to a table that is empty and is not seeded in the same run."""
    seeded = {table.name for table in selected} if rows > 0 else set()
    for table in selected:
        for constraint in sorted(table.foreign_key_constraints, key=lambda c: c.referred_table.name):
            parent = constraint.referred_table
            if parent is table or parent.name in seeded or all(c.nullable for c in constraint.columns):
                continue
            if conn.execute(select(func.count()).select_from(parent)).scalar_one() == 0:
                columns = ", ".join(f"{table.name}.{c.name}" for c in constraint.columns)
                raise ConductorError(
                    f"cannot seed {table.name}: {columns} references {parent.name}, which has no rows",
                    hint=f"seed {parent.name} first ({command('seed', parent.name, option('rows', 'N'))}), or seed both "
                         "in one run (name both tables, or seed every table)")


def _select_tables(metadata: MetaData, names: list[str] | None) -> list[Table]:
    ordered = list(metadata.sorted_tables)
    if names is None:
        return ordered
    by_name = {t.name: t for t in ordered}
    folded = {t.name.lower(): t for t in ordered}
    chosen: set[str] = set()
    for name in names:
        table = by_name.get(name, folded.get(name.lower()))
        if table is None:
            listed = ", ".join(sorted(by_name)) or "none"
            raise ConductorError(f"no table {name!r} to seed; the database has: {listed}",
                                 hint="check the name, or seed every table (no table named)")
        chosen.add(table.name)
    return [t for t in ordered if t.name in chosen]


def _continue_unique(conn: Connection, table: Table, generator: RowGenerator, offset: int) -> None:
    """Unique integer columns continue after the largest existing value, not only after
    the row count (rows inserted by other means may already use the next numbers)."""
    names = set(generator.insert_columns({})) - set(generator.fk_columns) - generator.grid_columns
    for name in sorted(names & generator.single_unique):
        spec = generator.specs[name]
        if spec.kind != "int":
            continue
        top = conn.execute(select(func.max(table.c[name]))).scalar()
        if top is not None and int(top) >= spec.low + offset:
            generator.shift[name] = int(top) + 1 - (spec.low + offset)


# -- loading ------------------------------------------------------------------------------------

Writer = Callable[[list[list[Any]], int], None]


def _bulk_path(conn: Connection, method: str | None) -> str:
    """The load path for this connection: the driver's bulk path unless told otherwise."""
    dialect, driver = conn.dialect.name, conn.dialect.driver
    native = {("sqlite", "pysqlite"): "executemany", ("postgresql", "psycopg"): "COPY"}.get(
        (dialect, driver), "sqlalchemy")
    if method in (None, "auto"):
        return native
    if method not in PATHS:
        raise ConductorError(f"unknown seeding method {method!r}",
                             hint=f"use one of: auto, {', '.join(PATHS)}")
    if method not in (native, "sqlalchemy"):
        raise UnsupportedByDialect(f"the {method} path is not available on {dialect}+{driver}",
                                   hint=f"use {native!r} (this connection's bulk path) or 'sqlalchemy'")
    return method


@contextmanager
def _writer(conn: Connection, table: Table, names: list[str], path: str) -> Iterator[Writer]:
    """A function that inserts one batch (column-wise values, row count) by ``path``."""
    if not names:  # only database-filled columns: INSERT … DEFAULT VALUES
        yield lambda columns, count: conn.execute(table.insert(), [{} for _ in range(count)])
        return
    preparer = conn.dialect.identifier_preparer
    target = preparer.format_table(table)
    listed = ", ".join(preparer.quote(name) for name in names)
    if path == "COPY":
        with conn.connection.driver_connection.cursor() as cursor, \
                cursor.copy(f"COPY {target} ({listed}) FROM STDIN") as copy:
            def write_copy(columns: list[list[Any]], count: int) -> None:
                for row in zip(*columns, strict=True):
                    copy.write_row(row)
            yield write_copy
        return
    if path == "executemany":
        yield _sqlite_writer(conn, target, listed, len(names))
        return
    for name in names:  # a NULL in a JSON column is SQL NULL, as on the bulk paths
        if isinstance(table.c[name].type, types.JSON):
            table.c[name].type.none_as_null = True

    def write_sqlalchemy(columns: list[list[Any]], count: int) -> None:
        conn.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)])
    yield write_sqlalchemy


def _sqlite_writer(conn: Connection, target: str, listed: str, width: int) -> Writer:
    # Multi-row VALUES: one statement per few hundred rows runs the per-statement work
    # (opening the table, building an IN-list CHECK's lookup table) once for all of them,
    # about twice as fast as one statement per row on a table with CHECKs.
    cursor = conn.connection.driver_connection.cursor()
    limit = 32_766 if conn.dialect.dbapi.sqlite_version_info >= (3, 32) else 999
    per_statement = max(1, min(500, limit // width))
    statements: dict[int, str] = {}

    def statement(rows: int) -> str:
        if rows not in statements:
            values = ", ".join(["(" + ", ".join(["?"] * width) + ")"] * rows)
            statements[rows] = f"INSERT INTO {target} ({listed}) VALUES {values}"
        return statements[rows]

    def write(columns: list[list[Any]], count: int) -> None:
        flat: list[Any] = [None] * (count * width)
        for position, values in enumerate(columns):
            flat[position::width] = values  # row-major: row 1's values, then row 2's, …
        step = per_statement * width
        whole = count // per_statement * step
        if whole:
            cursor.executemany(statement(per_statement), (flat[i:i + step] for i in range(0, whole, step)))
        if whole < len(flat):
            cursor.execute(statement(count - count // per_statement * per_statement), flat[whole:])

    return write


@contextmanager
def _bulk_window(conn: Connection, table: Table, rows: int, existing: int, path: str,
                 report: TableSeed) -> Iterator[None]:
    """For a large load, drop what makes every inserted row expensive and restore it after.

    Each row updates every secondary index where it lands, and on PostgreSQL each row
    runs a foreign-key trigger; building an index once from all rows and validating a
    foreign key in one join is several times cheaper. Both databases' documentation
    recommend it for bulk loads (PostgreSQL: "Populating a Database"). Done only when the
    load is at least :data:`BULK_MIN_ROWS` rows and not smaller than the table already is,
    for non-unique plain indexes and (PostgreSQL) foreign keys, inside the seed's
    transaction, re-created from the database's own definitions, so a failure restores
    them. The table is locked against other writers (and on PostgreSQL readers) until
    the transaction ends. The report names what was rebuilt."""
    if path not in ("executemany", "COPY") or rows < BULK_MIN_ROWS or rows < existing:
        yield
        return
    preparer = conn.dialect.identifier_preparer
    target = preparer.format_table(table)
    prefix = f"{preparer.quote_schema(table.schema)}." if table.schema else ""
    if path == "executemany":
        indexes = conn.exec_driver_sql(
            "SELECT il.name, m.sql FROM pragma_index_list(?) AS il JOIN sqlite_master AS m "
            "ON m.name = il.name WHERE il.origin = 'c' AND il.\"unique\" = 0 AND m.sql IS NOT NULL "
            "ORDER BY il.name", (table.name,)).all()
        foreign_keys = []
    else:
        plain = conn.execute(text(
            "SELECT relkind = 'r' AND NOT relispartition FROM pg_class "
            "WHERE oid = CAST(:target AS regclass)"), {"target": target}).scalar()
        if not plain:  # partitioned tables and partitions keep their per-row upkeep
            yield
            return
        indexes = conn.execute(text(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index AS i "
            "JOIN pg_class AS c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = CAST(:target AS regclass) AND NOT i.indisunique AND i.indisvalid "
            "AND NOT i.indisclustered AND NOT i.indisreplident AND c.reltablespace = 0 "
            "AND obj_description(c.oid, 'pg_class') IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k WHERE k.conindid = i.indexrelid) "
            "ORDER BY c.relname"), {"target": target}).all()
        foreign_keys = conn.execute(text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:target AS regclass) AND contype = 'f' ORDER BY conname"),
            {"target": target}).all()
    try:
        with conn.begin_nested():
            for name, _definition in foreign_keys:
                _run_sql(conn, f"ALTER TABLE {target} DROP CONSTRAINT {preparer.quote(name)}")
            for name, _definition in indexes:
                _run_sql(conn, f"DROP INDEX {prefix}{preparer.quote(name)}")
    except _driver_errors(conn):
        indexes, foreign_keys = [], []  # not the table's owner: keep the per-row work
    yield
    for name, definition in indexes:
        _run_sql(conn, definition)
        report.indexes_rebuilt_after.append(name)
    for name, definition in foreign_keys:
        _run_sql(conn, f"ALTER TABLE {target} ADD CONSTRAINT {preparer.quote(name)} {definition}")
        report.foreign_keys_checked_after.append(name)


def _run_sql(conn: Connection, sql: str) -> None:
    """Run a statement the database wrote itself, on the driver's cursor without
    parameters, so a ``%`` or ``:name`` in it is not taken for a placeholder."""
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def _driver_errors(conn: Connection) -> tuple[type[BaseException], ...]:
    dbapi = conn.dialect.dbapi
    return (DBAPIError, dbapi.Error) if dbapi is not None else (DBAPIError,)


def _integrity_errors(conn: Connection) -> tuple[type[BaseException], ...]:
    dbapi = conn.dialect.dbapi
    return (SAIntegrityError, dbapi.IntegrityError) if dbapi is not None else (SAIntegrityError,)


def _load_table(conn: Connection, table: Table, generator: RowGenerator, rows: int, offset: int,
                batch_size: int, path: str, advance: Callable[[int], None]) -> TableSeed:
    """Insert ``rows`` generated rows into ``table`` after its ``offset`` existing ones."""
    started = time.perf_counter()
    parents = parent_values(conn, table, limit=PARENT_LIMIT)
    names = generator.insert_columns(parents)
    target = _TARGETS[path]

    def batch(start: int, count: int, prefer_null: bool) -> list[list[Any]]:
        data = generator.columns(offset + start + 1, count, parents, prefer_null, target)
        return [data[name] for name in names]

    report = TableSeed(table.name, rows, 0.0, path)
    first = min(rows, batch_size)
    with _bulk_window(conn, table, rows, offset, path, report):
        if first:
            try:
                with conn.begin_nested(), _writer(conn, table, names, path) as write:
                    write(batch(0, first, False), first)
            except _integrity_errors(conn):
                # A CHECK spanning several columns that the generator cannot read: NULL in
                # the optional columns satisfies most of them. A second failure is raised.
                report.null_fallback = True
                with _writer(conn, table, names, path) as write:
                    write(batch(0, first, True), first)
            advance(first)
        if rows > first:
            with _writer(conn, table, names, path) as write:
                for start in range(first, rows, batch_size):
                    count = min(batch_size, rows - start)
                    write(batch(start, count, report.null_fallback), count)
                    advance(count)
    report.seconds = time.perf_counter() - started
    return report


# -- the report -------------------------------------------------------------------------------

@dataclass
class TableSeed:
    """Rows inserted into one table, how long it took and how they were loaded."""

    table: str
    rows: int
    seconds: float
    path: str  # "executemany" (SQLite), "COPY" (PostgreSQL) or "sqlalchemy"
    #: a CHECK the generator cannot read rejected the first batch; optional columns are NULL
    null_fallback: bool = False
    #: plain indexes dropped for the load and built once afterwards
    indexes_rebuilt_after: list[str] = field(default_factory=list)
    #: foreign keys dropped for the load and added back (validated in one pass) afterwards
    foreign_keys_checked_after: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict:
        return {"table": self.table, "rows": self.rows, "seconds": round(self.seconds, 4),
                "rows_per_second": round(self.rows_per_second, 1), "path": self.path,
                "null_fallback": self.null_fallback,
                "indexes_rebuilt_after": list(self.indexes_rebuilt_after),
                "foreign_keys_checked_after": list(self.foreign_keys_checked_after)}


@dataclass
class SeedReport:
    """What :func:`seed_report` inserted: per table in the order seeded (parents first)."""

    dialect: str
    path: str
    seed: int
    skew: float
    batch_size: int
    tables: list[TableSeed] = field(default_factory=list)
    seconds: float = 0.0
    exit_code: int = 0  # a failed seed raises instead of reporting

    @property
    def inserted(self) -> dict[str, int]:
        """Rows inserted per table (what :func:`seed` returns)."""
        return {t.table: t.rows for t in self.tables}

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def summary(self) -> str:
        skew = f", skew {self.skew:g}" if self.skew else ""
        return (f"seeded {self.rows:,} rows into {len(self.tables)} table(s) in {self.seconds:.2f} s "
                f"({self.rows_per_second:,.0f} rows/s, {self.path}, seed {self.seed}{skew})")

    def to_json(self) -> dict:
        return {"dialect": self.dialect, "path": self.path, "seed": self.seed, "skew": self.skew,
                "batch_size": self.batch_size, "rows": self.rows, "seconds": round(self.seconds, 4),
                "rows_per_second": round(self.rows_per_second, 1), "inserted": self.inserted,
                "tables": [t.to_json() for t in self.tables], "summary": self.summary}

    def frame(self) -> pd.DataFrame:
        columns = ["table", "rows", "seconds", "rows_per_second", "path", "null_fallback",
                   "indexes_rebuilt_after", "foreign_keys_checked_after"]
        return pd.DataFrame([t.to_json() for t in self.tables], columns=columns)

    def to_text(self) -> str:
        lines = [self.summary]
        for t in self.tables:
            notes = []
            if t.null_fallback:
                notes.append("optional columns NULL (a CHECK the generator cannot read)")
            if t.indexes_rebuilt_after:
                notes.append("indexes built after the load: " + ", ".join(t.indexes_rebuilt_after))
            if t.foreign_keys_checked_after:
                notes.append("foreign keys checked after the load: " + ", ".join(t.foreign_keys_checked_after))
            extra = f"  [{'; '.join(notes)}]" if notes else ""
            lines.append(f"  {t.table}: {t.rows:,} rows in {t.seconds:.2f} s "
                         f"({t.rows_per_second:,.0f} rows/s){extra}")
        return "\n".join(lines)


# -- seeding ----------------------------------------------------------------------------------

def seed(bind: Engine | Connection, rows: int = 20, tables: list[str] | None = None,
         seed: int = 0, *, skew: float = 0.0, batch_size: int = 10_000,
         progress: Callable[..., Any] | None = None) -> dict[str, int]:
    """Insert ``rows`` generated rows into every user table (or the named ones), parents
    first. Returns rows inserted per table. See :func:`seed_report`."""
    return seed_report(bind, rows, tables, seed, skew=skew, batch_size=batch_size,
                       progress=progress).inserted


def seed_report(bind: Engine | Connection, rows: int = 20, tables: list[str] | None = None,
                seed: int = 0, *, skew: float = 0.0, batch_size: int = 10_000,
                progress: Callable[..., Any] | None = None, method: str = "auto",
                timeout: float | None = None) -> SeedReport:
    """Insert ``rows`` generated rows into every user table (``tables=None``) or the named
    ones, parents first, and report rows, time and load path per table.

    Values honour the column types, NOT NULL, UNIQUE and primary keys (continuing after
    the rows already there), foreign keys (drawn from the parents' existing keys),
    composite keys, varchar lengths and CHECKs that are simple comparisons, BETWEEN,
    IN-lists or ``length(col) > n``; when another CHECK rejects the first batch, optional
    columns are left NULL. ``seed`` makes the rows reproducible; ``skew`` > 0 makes foreign
    keys, IN-list values and non-unique integers Zipf-like (see :class:`RowGenerator`).

    Everything runs in one transaction: on an Engine it commits at the end and rolls back
    on any failure; on a Connection it runs in the caller's transaction. A named table
    whose NOT NULL foreign key points at an empty table that is not seeded too raises
    :class:`ConductorError` (seed the parent first, or name both). ``batch_size`` rows are
    generated and sent at a time; ``progress`` is a tqdm-compatible factory called once
    with the total row count and updated per batch. ``method`` forces a load path
    ("executemany" on SQLite, "COPY" on PostgreSQL with psycopg 3, "sqlalchemy" anywhere).
    Each statement may run ``timeout`` seconds (None: the default, 0: no limit).
    """
    if rows < 0:
        raise ConductorError(f"rows must be 0 or more, got {rows}")
    if batch_size < 1:
        raise ConductorError(f"batch_size must be at least 1, got {batch_size}")
    if not skew >= 0:
        raise ConductorError(f"skew must be 0 (uniform) or more, got {skew}",
                             hint="1.0-2.0 gives a few very common values")
    with statement_timeout(bind, timeout, "seeding"):
        if isinstance(bind, Engine):
            with bind.begin() as conn:
                return _seed(conn, rows, tables, seed, skew, batch_size, progress, method)
        return _seed(bind, rows, tables, seed, skew, batch_size, progress, method)


def _seed(conn: Connection, rows: int, tables: list[str] | None, seed_value: int, skew: float,
          batch_size: int, progress: Callable[..., Any] | None, method: str) -> SeedReport:
    require_reflection(conn, "seeding sample rows")
    path = _bulk_path(conn, method)
    started = time.perf_counter()
    selected = _select_tables(reflect_user_tables(conn, sqlite_inline_unique=True), tables)
    check_parents(conn, selected, rows)
    report = SeedReport(conn.dialect.name, path, seed_value, skew, batch_size)
    bar = progress(total=rows * len(selected), desc="seeding", unit="rows") if progress else None
    advance = bar.update if bar is not None else (lambda _count: None)
    try:
        for table in selected:
            offset = conn.execute(select(func.count()).select_from(table)).scalar_one()
            # one stream per (seed, table, existing rows): a second seed adds different rows
            rng = random.Random(f"{seed_value}/{table.name}/{offset}")
            generator = RowGenerator(table, conn.dialect.name, rng, skew=skew)
            _continue_unique(conn, table, generator, offset)
            try:
                report.tables.append(_load_table(conn, table, generator, rows, offset, batch_size,
                                                 path, advance))
            except _driver_errors(conn) as exc:
                reason = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
                raise DatabaseError(
                    f"seeding {table.name} failed: {driver_reason(reason, conn.engine.url)}",
                    hint="a constraint the generator cannot read (a CHECK across columns, a "
                         "trigger) rejected the rows; nothing from this seed is kept") from None
    finally:
        if bar is not None:
            bar.close()
    report.seconds = time.perf_counter() - started
    return report
