"""Index advisor: which indexes would make the workload faster, measured without
disturbing the live database.

1. **Candidates** come from each workload query's shape (parsed with sqlglot, per
   dialect): per table it reads, equality columns first (``col = …``, ``IN``, ``IS
   NULL``, join columns), then at most one range column, then its ORDER BY / GROUP BY
   columns; shorter variants of that composite, single-column join keys, and a covering
   variant that adds the few other columns the query reads (``INCLUDE`` on PostgreSQL,
   trailing key columns elsewhere). Candidates whose columns are a prefix of an existing
   index (the primary key included) are dropped, and so are covering variants of an
   index that already exists: the advisor never proposes to widen an index you have.
2. **Evaluation** happens where it cannot hurt:

   - PostgreSQL with HypoPG (installed, or creatable: then ``CREATE EXTENSION`` runs in
     the advisor's transaction and is rolled back): hypothetical indexes, ``EXPLAIN
     (FORMAT JSON)`` total cost, ``hypopg_reset()`` at the end.
   - PostgreSQL without HypoPG: real ``CREATE INDEX`` statements inside one transaction
     that is rolled back at the end (they hold a SHARE lock on their table meanwhile, so
     writers wait; ``lock_timeout`` keeps the advisor from queueing behind them forever).
   - SQLite: an online backup of the live database into memory (a temporary file when it
     is larger than :data:`SQLITE_IN_MEMORY_LIMIT`), ``ANALYZE`` there, and measured time
     (median of calibrated loops) per query.

3. **Selection** is greedy: each round tries every remaining candidate, keeps the one
   that lowers the workload cost most, and starts again until nothing pays. A candidate
   *pays* when the plan of at least one query uses it, the workload cost goes down, and
   either the workload cost drops by ``min_gain`` (a fraction of the current workload
   cost) or one query it is used by gets ``min_gain`` cheaper. The per-query rule is
   there because a workload mixes request-path lookups that cost microseconds with
   reports that cost seconds: a 100× faster lookup is worth an index even though it
   saves no visible share of the total. Costs within :data:`TIE` of the best drop count
   as a tie, won by the candidate that serves more of its query (the full composite
   before its shorter variants), then by fewer columns. A covering variant must also pay
   on top of its key-only version. At the end, a chosen index whose columns are a prefix
   of another chosen index is dropped, and so is one whose removal no longer fails the
   *pays* rule (fewer indexes when they do the same job).

The live database is left exactly as it was found: nothing is created there, and
PostgreSQL work happens in a transaction that is rolled back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pandas as pd
from sqlalchemy import Column, Connection, Engine, Index, MetaData, Table, inspect, text
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.reflection import Inspector
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateIndex
from sqlglot import exp

from ..errors import ConductorError, DatabaseError, UnsupportedByDialect
from ..fsio import json_safe
from .bench import sqlite_plan_indexes
from .connection import first_line, scrub
from .sqlitecopy import online_copy
from .stats import calibrate_loops
from .timeouts import StatementTimeout, bounded, statement_timeout
from .workload import Query, parse_query, sample_parameters, source_of, table_name, table_sources

#: the default for ``min_gain``: a candidate must save this fraction of the workload cost,
#: or of one query's cost
MIN_GAIN = 0.10
#: drops within this fraction of the best one are a tie (decided by shape, then width)
TIE = 0.10
#: a covering variant adds at most this many columns the query reads besides the key
COVERING_MAX_EXTRA = 3
#: identifier length limit (PostgreSQL's NAMEDATALEN - 1); longer names get a short hash
NAME_LIMIT = 63
#: SQLite databases larger than this are copied to a temporary file instead of memory
SQLITE_IN_MEMORY_LIMIT = 512 * 1024 * 1024
#: SQLite timing: each sample lasts at least this long; the cost is the median of SAMPLES
#: samples (fewer for queries slower than a quarter of a second)
SAMPLE_SECONDS = 0.02
SAMPLES = 5
#: PostgreSQL fallback: give up on a lock for a real CREATE INDEX after this long
LOCK_TIMEOUT = "5s"

HYPOPG, ROLLED_BACK, SQLITE_COPY = "hypopg", "rolled-back indexes", "sqlite scratch copy"
PARTIAL = "partial index"
_EVAL_PREFIX = "conductor_advise_"


# --------------------------------------------------------------------------- candidates


@dataclass
class Candidate:
    """A possible index: key ``columns`` in order, ``include`` columns stored in the leaf
    only (PostgreSQL ``INCLUDE``; other dialects get covering columns as trailing key
    columns instead), and the workload queries it came from."""

    table: str
    columns: tuple[str, ...]
    include: tuple[str, ...] = ()
    unique: bool = False
    origin: tuple[str, ...] = ()
    #: for a covering variant: the key columns it widens (it must pay on top of those)
    base: tuple[str, ...] | None = None
    #: how much of its query the candidate serves: 0 = the full composite, higher = shorter
    rank: int = 0

    @property
    def key(self) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        return (self.table, self.columns, self.include)

    @property
    def all_columns(self) -> tuple[str, ...]:
        return self.columns + self.include

    @property
    def name(self) -> str:
        """``ix_<table>_<col1>_<col2>…`` (the naming convention), at most 63 characters:
        longer names are cut and end in a short hash of the full name."""
        name = "_".join(["ix", self.table, *self.all_columns])
        if len(name) <= NAME_LIMIT:
            return name
        digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
        return f"{name[:NAME_LIMIT - len(digest) - 1]}_{digest}"

    def ddl(self, dialect: str | Dialect, name: str | None = None) -> str:
        """The ``CREATE INDEX`` statement for ``dialect`` (a name such as ``sqlite`` or
        ``postgresql``, or a SQLAlchemy Dialect), identifiers quoted where needed."""
        dialect_obj = _dialect(dialect)
        include_supported = dialect_obj.name in ("postgresql", "mssql")
        keys = self.columns if include_supported else self.all_columns
        table = Table(self.table, MetaData(), *[Column(c) for c in dict.fromkeys(self.all_columns)])
        options: dict[str, Any] = {}
        if include_supported and self.include:
            options[f"{dialect_obj.name}_include"] = list(self.include)
        index = Index(name or self.name, *[table.c[c] for c in keys], unique=self.unique, **options)
        return str(CreateIndex(index).compile(dialect=dialect_obj)).strip()


def _dialect(dialect: str | Dialect) -> Dialect:
    if isinstance(dialect, Dialect):
        return dialect
    from sqlalchemy.engine import make_url

    try:
        return make_url(f"{dialect}://").get_dialect()()
    except Exception:  # an unknown name: standard SQL is as good a guess as any
        from sqlalchemy.engine.default import DefaultDialect

        return DefaultDialect()


@dataclass
class ExistingIndex:
    """An index the database already has (primary keys and UNIQUE constraints too)."""

    table: str
    name: str | None
    columns: tuple[str, ...]
    unique: bool
    kind: str  # primary key | unique | index | partial index (serves only its WHERE's rows)

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "name": self.name, "columns": list(self.columns),
                "unique": self.unique, "kind": self.kind}


class _Schema:
    """What the advisor needs to know about the tables: columns, keys, indexes."""

    def __init__(self, dialect: str):
        self.dialect = dialect
        self.columns: dict[str, list[str]] = {}
        self.indexes: dict[str, list[ExistingIndex]] = {}
        self.rowid: dict[str, str] = {}  # SQLite INTEGER PRIMARY KEY: the rowid's alias

    def columns_of(self, table: str) -> set[str]:
        return {c.lower() for c in self.columns.get(table, [])}

    def existing(self) -> list[ExistingIndex]:
        return [i for table in sorted(self.indexes) for i in self.indexes[table]]

    def serving(self, table: str) -> list[ExistingIndex]:
        """The indexes of ``table`` that serve any row (partial indexes do not)."""
        return [i for i in self.indexes.get(table, []) if i.kind != PARTIAL]

    def _add_index(self, index: ExistingIndex) -> None:
        known = self.indexes.setdefault(index.table, [])
        if all((i.name, i.columns) != (index.name, index.columns) for i in known):
            known.append(index)

    def _primary_key(self, table: str, columns: list[str], name: str | None,
                     column_types: dict[str, Any]) -> None:
        if not columns:
            return
        self._add_index(ExistingIndex(table, name, tuple(columns), True, "primary key"))
        kind = column_types.get(columns[0])
        # SQLite: a single INTEGER PRIMARY KEY column is the rowid, which every index holds
        if (self.dialect == "sqlite" and len(columns) == 1 and kind is not None
                and str(kind).upper() == "INTEGER"):
            self.rowid[table] = columns[0]

    @classmethod
    def from_inspector(cls, insp: Inspector) -> _Schema:
        schema = cls(insp.dialect.name)
        for table in insp.get_table_names():
            cols = insp.get_columns(table)
            schema.columns[table] = [c["name"] for c in cols]
            pk = insp.get_pk_constraint(table) or {}
            schema._primary_key(table, list(pk.get("constrained_columns") or []), pk.get("name"),
                                {c["name"]: c["type"] for c in cols})
            for uq in insp.get_unique_constraints(table):
                schema._add_index(ExistingIndex(table, uq.get("name"), tuple(uq["column_names"]),
                                                True, "unique"))
            # SQLite: a column's UNIQUE is only visible as its automatic index
            options = {"include_auto_indexes": True} if schema.dialect == "sqlite" else {}
            for ix in insp.get_indexes(table, **options):
                names = list(ix.get("column_names") or [])
                keys = tuple(names[:names.index(None)] if None in names else names)
                partial = any(k.endswith("_where") and v is not None
                              for k, v in (ix.get("dialect_options") or {}).items())
                kind = PARTIAL if partial else "unique" if ix.get("unique") else "index"
                if keys:  # an expression index serves no plain-column candidate beyond its prefix
                    schema._add_index(ExistingIndex(table, ix.get("name"), keys, bool(ix.get("unique")), kind))
        return schema

    @classmethod
    def from_metadata(cls, metadata: MetaData, dialect: str) -> _Schema:
        schema = cls(dialect)
        for table in metadata.tables.values():
            schema.columns[table.name] = [c.name for c in table.columns]
            pk = table.primary_key
            schema._primary_key(table.name, [c.name for c in pk.columns], pk.name,
                                {c.name: c.type for c in table.columns})
            for constraint in table.constraints:
                if constraint.__class__.__name__ == "UniqueConstraint":
                    schema._add_index(ExistingIndex(table.name, constraint.name,
                                                    tuple(c.name for c in constraint.columns), True, "unique"))
            for column in table.columns:
                if column.unique:
                    schema._add_index(ExistingIndex(table.name, None, (column.name,), True, "unique"))
            for index in table.indexes:
                keys = tuple(c.name for c in index.columns)
                partial = any(k.endswith("_where") and v is not None
                              for k, v in index.dialect_kwargs.items())
                kind = PARTIAL if partial else "unique" if index.unique else "index"
                if keys:
                    schema._add_index(ExistingIndex(table.name, index.name, keys, bool(index.unique), kind))
        return schema

    @classmethod
    def of(cls, source: Any, dialect: str) -> _Schema:
        if source is None:
            return cls(dialect)
        if isinstance(source, MetaData):
            return cls.from_metadata(source, dialect)
        if isinstance(source, Inspector):
            return cls.from_inspector(source)
        if isinstance(source, Engine | Connection):
            return cls.from_inspector(inspect(source))
        raise ConductorError(f"candidates() needs a MetaData, an Inspector, an Engine or a "
                             f"Connection, not {type(source).__name__}")


@dataclass
class _TableUse:
    """How one SELECT uses one table (by its alias): the raw material of candidates."""

    table: str
    equality: list[str] = field(default_factory=list)
    ranges: list[str] = field(default_factory=list)
    sort: list[str] = field(default_factory=list)
    joins: list[str] = field(default_factory=list)
    read: list[str] = field(default_factory=list)
    star: bool = False


@dataclass
class _Shape:
    """A parsed workload query: the tables it reads and how."""

    tables: set[str]
    aliases: dict[str, str]  # alias (lower-cased) → table, over every SELECT
    uses: list[_TableUse]


def _column_name(column: exp.Column) -> str:
    identifier = column.this
    if isinstance(identifier, exp.Identifier) and identifier.quoted:
        return identifier.this
    return column.name.lower()


def _plain_column(node: exp.Expression | None) -> exp.Column | None:
    while isinstance(node, exp.Paren):
        node = node.this
    return node if isinstance(node, exp.Column) else None


def _conjuncts(node: exp.Expression | None) -> list[exp.Expression]:
    if node is None:
        return []
    while isinstance(node, exp.Paren):
        node = node.this
    return list(node.flatten()) if isinstance(node, exp.And) else [node]


_RANGE = (exp.GT, exp.GTE, exp.LT, exp.LTE)


def _shape(sql: str, dialect: str, schema: _Schema) -> _Shape:
    tree = parse_query(sql, dialect)
    columns_of = schema.columns_of if schema.columns else None
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    tables = {table_name(t) for t in tree.find_all(exp.Table)
              if isinstance(t.this, exp.Identifier) and t.name.lower() not in ctes}
    aliases: dict[str, str] = {}
    uses: list[_TableUse] = []
    for select in tree.find_all(exp.Select):
        sources = table_sources(select)
        by_alias = {alias: _TableUse(table_name(t)) for alias, t in sources.items()}
        aliases.update({alias: use.table for alias, use in by_alias.items()})

        def owner(column: exp.Column | None, select=select) -> str | None:
            if column is None:
                return None
            found = source_of(column, columns_of)
            return found[1] if found is not None and found[0] is select else None

        conditions = _conjuncts(select.args["where"].this if select.args.get("where") else None)
        for join in select.args.get("joins") or []:
            conditions += _conjuncts(join.args.get("on"))
        for condition in conditions:
            _classify(condition, owner, by_alias)
        group = select.args.get("group")
        order = select.args.get("order")
        keys = (list(group.expressions) if group else
                [o.this for o in order.expressions] if order else [])
        if keys:
            first = owner(_plain_column(keys[0]))
            if first is not None:
                for key in keys:
                    column = _plain_column(key)
                    if column is None or owner(column) != first:
                        break
                    by_alias[first].sort.append(_column_name(column))
        for star in select.expressions:
            if isinstance(star, exp.Star) or (isinstance(star, exp.Column) and isinstance(star.this, exp.Star)):
                qualifier = star.table.lower() if isinstance(star, exp.Column) and star.table else None
                for alias, use in by_alias.items():
                    if qualifier in (None, alias):
                        use.star = True
        for column in select.find_all(exp.Column):
            alias = owner(column)
            if alias is not None and not isinstance(column.this, exp.Star):
                by_alias[alias].read.append(_column_name(column))
        uses.extend(by_alias.values())
    return _Shape(tables, aliases, uses)


def _classify(condition: exp.Expression, owner: Callable, by_alias: dict[str, _TableUse]) -> None:
    """Adds one WHERE / ON conjunct's column to its table's equality or range columns."""
    while isinstance(condition, exp.Paren):
        condition = condition.this
    if isinstance(condition, exp.EQ | exp.NullSafeEQ):
        left, right = _plain_column(condition.this), _plain_column(condition.expression)
        left_alias, right_alias = owner(left), owner(right)
        if left_alias and right_alias and left_alias != right_alias:  # a join
            for alias, column in ((left_alias, left), (right_alias, right)):
                by_alias[alias].equality.append(_column_name(column))
                by_alias[alias].joins.append(_column_name(column))
            return
        for alias, column, other in ((left_alias, left, condition.expression),
                                     (right_alias, right, condition.this)):
            if alias and not _reads_alias(other, alias, owner):
                by_alias[alias].equality.append(_column_name(column))
                return
        return
    if isinstance(condition, exp.In | exp.Is | exp.Between):
        column = _plain_column(condition.this)
        alias = owner(column)
        if alias:
            kind = by_alias[alias].ranges if isinstance(condition, exp.Between) else by_alias[alias].equality
            kind.append(_column_name(column))
        return
    if isinstance(condition, exp.Like):
        column = _plain_column(condition.this)
        alias = owner(column)
        pattern = condition.expression
        prefix = not (isinstance(pattern, exp.Literal) and str(pattern.this).startswith(("%", "_")))
        if alias and prefix:
            by_alias[alias].ranges.append(_column_name(column))
        return
    if isinstance(condition, _RANGE):
        for side, other in ((condition.this, condition.expression), (condition.expression, condition.this)):
            column = _plain_column(side)
            alias = owner(column)
            if alias and not _reads_alias(other, alias, owner):
                by_alias[alias].ranges.append(_column_name(column))
                return


def _reads_alias(node: exp.Expression, alias: str, owner: Callable) -> bool:
    return any(owner(c) == alias for c in node.find_all(exp.Column))


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


#: (key columns, include columns, base: the key a covering variant widens)
_Variant = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...] | None]


def _variants(use: _TableUse, schema: _Schema, dialect: str) -> list[_Variant]:
    """The candidate indexes for one table use, best first."""
    equality = _unique(use.equality)
    constants = {c.lower() for c in equality if c not in use.joins}
    unique_keys = [{c.lower() for c in i.columns} for i in schema.serving(use.table) if i.unique]
    if any(key and key <= constants for key in unique_keys):
        return []  # a primary key or unique lookup by constants: at most one row, nothing to add
    ranges = [c for c in _unique(use.ranges) if c not in equality][:2]
    sort = [c for c in _unique(use.sort) if c not in equality]
    rowid = schema.rowid.get(use.table)
    shapes: list[list[str]] = []
    for low in ranges or [None]:
        shapes.append(equality + ([low] if low else []) + sort)
    shapes.append(equality + sort)
    shapes += [equality + [low] for low in ranges]
    shapes.append(equality)
    shapes += [[low] + sort for low in ranges]
    shapes += [[low] for low in ranges]
    shapes += [[j] for j in _unique(use.joins)]
    keys: list[tuple[str, ...]] = []
    full_keys: dict[tuple[str, ...], tuple[str, ...]] = {}  # key → the same with its rowid tail
    for shape in shapes:
        columns = _unique(shape)
        full = tuple(columns)
        while columns and columns[-1] == rowid:
            columns.pop()  # every SQLite index ends in the rowid already
        if columns and tuple(columns) not in keys:
            keys.append(tuple(columns))
            full_keys[tuple(columns)] = full
    variants: list[_Variant] = []
    for i, key in enumerate(keys):
        variants.append((key, (), None))
        if i == 0 and not use.star:
            extra = tuple(c for c in _unique(use.read) if c not in full_keys[key] and c != rowid)
            if 0 < len(extra) <= COVERING_MAX_EXTRA:
                if dialect == "postgresql":
                    variants.append((key, extra, key))
                else:
                    # trailing columns go after the rowid when the sort needs it
                    # (ORDER BY created_at, id): the index stays in the query's order
                    variants.append((full_keys[key] + extra, (), key))
    known = schema.columns_of(use.table)
    if known:  # a name the table does not have (a SELECT alias in ORDER BY, say) is no column
        variants = [v for v in variants if all(c.lower() in known for c in v[0] + v[1])]
    return variants


def candidates(sql: str, dialect: str, metadata_or_inspector: Any = None) -> list[Candidate]:
    """Candidate indexes for one query, best first: per table it reads (aliases
    resolved), equality columns, then one range column, then ORDER BY / GROUP BY
    columns; shorter variants; single-column join keys; a covering variant of the full
    composite when the query reads at most :data:`COVERING_MAX_EXTRA` more columns.

    ``metadata_or_inspector`` (a MetaData, an Inspector, an Engine or a Connection)
    tells which table an unqualified column belongs to, skips primary-key and unique
    lookups, and, on SQLite, leaves the rowid out; without it only the query is read."""
    schema = _Schema.of(metadata_or_inspector, dialect)
    return _candidates_of(_shape(sql, dialect, schema), schema, dialect, ())


def _candidates_of(shape: _Shape, schema: _Schema, dialect: str, origin: tuple[str, ...]) -> list[Candidate]:
    found: dict[tuple, Candidate] = {}
    for use in shape.uses:
        for rank, (key, include, base) in enumerate(_variants(use, schema, dialect)):
            candidate = Candidate(use.table, key, include, origin=origin, base=base, rank=rank)
            found.setdefault(candidate.key, candidate)
    return list(found.values())


def _is_prefix(columns: tuple[str, ...], of: tuple[str, ...]) -> bool:
    return len(columns) <= len(of) and tuple(c.lower() for c in of[:len(columns)]) == tuple(
        c.lower() for c in columns)


def _redundant(candidate: Candidate, indexes: Iterable[tuple[str, tuple[str, ...]]]) -> bool:
    """True when an index in ``indexes`` ((table, columns) pairs) already does the job:
    the candidate's columns are a prefix of its columns, or the candidate is a covering
    variant of it (the advisor does not propose to widen an existing index)."""
    for table, columns in indexes:
        if table != candidate.table:
            continue
        if _is_prefix(candidate.all_columns, columns):
            return True
        if candidate.base is not None and _is_prefix(candidate.base, columns):
            return True
    return False


# --------------------------------------------------------------------------- plans


@dataclass
class _Plan:
    text: str
    indexes: set[str]
    full_scans: list[str]
    cost: float | None = None  # the planner's estimate (PostgreSQL)


def _pg_plan(document: Any) -> _Plan:
    if isinstance(document, str):
        document = json.loads(document)
    root = document[0]["Plan"]
    steps, indexes, scans = [], set(), []

    def walk(node: dict) -> None:
        step = node["Node Type"]
        if node.get("Index Name"):
            indexes.add(node["Index Name"])
            step += f" using {node['Index Name']}"
        if node.get("Relation Name"):
            step += f" on {node['Relation Name']}"
            if node["Node Type"] == "Seq Scan":
                scans.append(node["Relation Name"])
        steps.append(step)
        for child in node.get("Plans", []):
            walk(child)

    walk(root)
    return _Plan(" → ".join(steps), indexes, _unique(scans), float(root["Total Cost"]))


_SQLITE_SCAN = re.compile(r"^SCAN (\S+)")
_SQLITE_KEY = re.compile(r"USING (INTEGER )?PRIMARY KEY")
#: how a SQLite plan's rowid / WITHOUT ROWID primary-key lookup shows in ``_Plan.indexes``
PRIMARY_KEY_LOOKUP = "(primary key)"


def _sqlite_plan(rows: list[tuple], shape: _Shape) -> _Plan:
    details = [str(r[-1]) for r in rows]
    indexes = {name for d in details for name in sqlite_plan_indexes(d)}
    if any(_SQLITE_KEY.search(d) for d in details):
        indexes.add(PRIMARY_KEY_LOOKUP)
    scans = []
    for detail in details:
        match = _SQLITE_SCAN.match(detail)
        if match and "USING" not in detail:
            table = shape.aliases.get(match.group(1).lower())
            if table:
                scans.append(table)
    return _Plan("; ".join(details), indexes, _unique(scans))


# --------------------------------------------------------------------------- evaluators


@dataclass
class _Bound:
    """A workload query ready to run: parameters bound, shape parsed."""

    name: str
    sql: str
    params: dict[str, Any]
    shape: _Shape


class _Evaluator:
    """Where candidates are tried. ``add`` creates an index (hypothetical, real in a
    transaction, or in a scratch copy) under an evaluation name; ``remove`` takes it
    away; ``plan`` and ``cost`` look at one query with the indexes present."""

    method = ""
    cost_unit = ""

    def __init__(self) -> None:
        self.names: dict[tuple, str] = {}  # candidate key → evaluation name
        self.unbuildable: dict[str, str] = {}  # candidate name → why it could not be built
        self._counter = 0

    def next_name(self) -> str:
        self._counter += 1
        return f"{_EVAL_PREFIX}{self._counter}"

    def plan(self, query: _Bound) -> _Plan:
        raise NotImplementedError

    def cost(self, query: _Bound, plan: _Plan) -> float:
        raise NotImplementedError

    def add(self, candidate: Candidate) -> str | None:
        """The evaluation name, or None when the index cannot be built (too wide, say)."""
        raise NotImplementedError

    def remove(self, candidate: Candidate) -> None:
        raise NotImplementedError

    def size(self, candidate: Candidate) -> int | None:
        raise NotImplementedError

    def display(self, text_: str) -> str:
        """``text_`` (a plan) with evaluation names replaced by the candidates' names."""
        for key, name in self.names.items():
            table, columns, include = key
            text_ = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)",
                           Candidate(table, columns, include).name, text_)
        return text_


class _SQLiteEvaluator(_Evaluator):
    method = SQLITE_COPY
    cost_unit = "ms"

    def __init__(self, engine: Engine):
        super().__init__()
        self._tempfile: str | None = None
        raw = engine.raw_connection()
        try:
            source = raw.driver_connection
            page_size, pages = (source.execute(f"PRAGMA {p}").fetchone()[0]
                                for p in ("page_size", "page_count"))
            target = ":memory:"
            if page_size * pages > SQLITE_IN_MEMORY_LIMIT:
                handle, self._tempfile = tempfile.mkstemp(prefix="conductor-advise-", suffix=".sqlite")
                os.close(handle)
                target = self._tempfile
            self.db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
            online_copy(source, self.db)
        except sqlite3.Error as exc:
            self.close()
            raise DatabaseError(f"cannot copy the SQLite database for the advisor: {exc}",
                                hint="check the database file is readable") from None
        finally:
            raw.close()
        self.db.execute("ANALYZE")

    def close(self) -> None:
        with suppress(Exception):
            self.db.close()
        if self._tempfile:
            with suppress(OSError):
                os.remove(self._tempfile)

    def plan(self, query: _Bound) -> _Plan:
        # EXPLAIN QUERY PLAN reports the plan made when the statement was prepared and never
        # checks the schema again, so a statement cached before an index was added or
        # dropped tells the old plan: the schema version in a comment makes it a new one.
        version = self.db.execute("PRAGMA schema_version").fetchone()[0]
        rows = self.db.execute(f"/* schema {version} */ EXPLAIN QUERY PLAN {query.sql}",
                               query.params).fetchall()
        return _sqlite_plan(rows, query.shape)

    def cost(self, query: _Bound, plan: _Plan) -> float:
        cursor = self.db.cursor()

        def run(loops: int) -> float:
            with statement_timeout(self.db, what=f"query {query.name}"):  # bounded per run
                started = time.perf_counter()
                for _ in range(loops):
                    cursor.execute(query.sql, query.params).fetchall()
                return time.perf_counter() - started

        first = run(1)  # also warms the page cache and the statement cache
        loops = 1 if first >= SAMPLE_SECONDS else calibrate_loops(run, SAMPLE_SECONDS, max_loops=100_000)
        # slow queries (big tables, no index yet) get fewer samples: their noise is relatively small
        samples = SAMPLES if first < 0.25 else 3 if first < 2.5 else 1
        return statistics.median(run(loops) / loops for _ in range(samples)) * 1000

    def add(self, candidate: Candidate) -> str | None:
        name = self.next_name()
        try:
            self.db.execute(candidate.ddl("sqlite", name))
            self.db.execute(f'ANALYZE "{name}"')
        except sqlite3.Error as exc:
            self.db.execute(f'DROP INDEX IF EXISTS "{name}"')
            self.unbuildable[candidate.name] = str(exc)
            return None
        self.names[candidate.key] = name
        return name

    def remove(self, candidate: Candidate) -> None:
        name = self.names.pop(candidate.key)
        self.db.execute(f'DROP INDEX "{name}"')

    def size(self, candidate: Candidate) -> int | None:
        name = self.names.get(candidate.key)
        if name is None:
            return None
        try:
            found = self.db.execute("SELECT sum(pgsize) FROM dbstat WHERE name = ?", (name,)).fetchone()
            return int(found[0]) if found and found[0] is not None else None
        except sqlite3.Error:  # built without SQLITE_ENABLE_DBSTAT_VTAB
            return None


class _PostgresEvaluator(_Evaluator):
    """One connection, one transaction, rolled back at the end."""

    cost_unit = "estimated cost"

    def __init__(self, engine: Engine, use_hypopg: bool | None):
        super().__init__()
        self.engine = engine
        # an explicit isolation level: an engine set to AUTOCOMMIT would commit the indexes
        self.conn = engine.connect().execution_options(isolation_level="READ COMMITTED")
        self.failed = False
        self.hypo_oids: dict[tuple, int] = {}
        try:
            self.txn = self.conn.begin()
            self.hypopg = self._start_hypopg(use_hypopg)
            if not self.hypopg:
                self.conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        except Exception:
            self.failed = True
            self.close()
            raise
        self.method = HYPOPG if self.hypopg else ROLLED_BACK

    def _start_hypopg(self, use_hypopg: bool | None) -> bool:
        if use_hypopg is False:
            return False
        installed = self.conn.exec_driver_sql(
            "SELECT count(*) FROM pg_extension WHERE extname = 'hypopg'").scalar()
        if not installed:
            available = self.conn.exec_driver_sql(
                "SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg'").scalar()
            error = "the hypopg extension is not available on the server"
            if available:
                try:
                    with self.conn.begin_nested():  # rolled back with the advisor's transaction
                        self.conn.exec_driver_sql("CREATE EXTENSION hypopg")
                    installed = True
                except Exception as exc:  # no privilege to create it
                    error = f"cannot create the hypopg extension: {first_line(scrub(str(exc), self.engine.url))}"
            if not installed:
                if use_hypopg:
                    raise UnsupportedByDialect(error, hint="install HypoPG (postgresql-15-hypopg) and "
                                                           "CREATE EXTENSION hypopg, or advise without it")
                return False
        self.conn.exec_driver_sql("SELECT hypopg_reset()")
        return True

    def close(self) -> None:
        try:
            if self.hypopg_ready():
                self.conn.exec_driver_sql("SELECT hypopg_reset()")
            if getattr(self, "txn", None) is not None and self.txn.is_active:
                self.txn.rollback()
        except Exception:
            self.failed = True
        if self.failed:
            # hypothetical indexes live in the backend's memory: never hand it back to the pool
            with suppress(Exception):
                self.conn.invalidate()
        with suppress(Exception):
            self.conn.close()

    def hypopg_ready(self) -> bool:
        return bool(getattr(self, "hypopg", False)) and not self.failed

    def plan(self, query: _Bound) -> _Plan:
        try:
            with self.conn.begin_nested():
                document = self.conn.execute(text("EXPLAIN (FORMAT JSON) " + query.sql),
                                             query.params).scalar()
        except Exception as exc:
            raise _query_failed(query, exc, self.engine) from None
        return _pg_plan(document)

    def cost(self, query: _Bound, plan: _Plan) -> float:
        return float(plan.cost or 0.0)

    def add(self, candidate: Candidate) -> str | None:
        try:
            with self.conn.begin_nested():
                if self.hypopg:
                    row = self.conn.execute(text("SELECT indexrelid, indexname FROM hypopg_create_index(:ddl)"),
                                            {"ddl": candidate.ddl("postgresql")}).one()
                    self.hypo_oids[candidate.key] = int(row[0])
                    name = str(row[1])
                else:
                    name = self.next_name()
                    self.conn.exec_driver_sql(candidate.ddl("postgresql", name))
        except Exception as exc:  # a key too wide for a btree, not the table's owner, a lock
            self.unbuildable[candidate.name] = first_line(scrub(str(getattr(exc, "orig", None) or exc),
                                                                self.engine.url))
            return None
        self.names[candidate.key] = name
        return name

    def remove(self, candidate: Candidate) -> None:
        name = self.names.pop(candidate.key)
        if self.hypopg:
            self.conn.execute(text("SELECT hypopg_drop_index(:oid)"), {"oid": self.hypo_oids.pop(candidate.key)})
        else:
            self.conn.exec_driver_sql(f'DROP INDEX "{name}"')

    def size(self, candidate: Candidate) -> int | None:
        if candidate.key not in self.names:
            return None
        if self.hypopg:
            return int(self.conn.execute(text("SELECT hypopg_relation_size(:oid)"),
                                         {"oid": self.hypo_oids[candidate.key]}).scalar())
        return int(self.conn.execute(text("SELECT pg_relation_size(CAST(:name AS regclass))"),
                                     {"name": f'"{self.names[candidate.key]}"'}).scalar())


def _query_failed(query: _Bound, exc: BaseException, url: Any) -> DatabaseError:
    reason = first_line(scrub(str(getattr(exc, "orig", None) or exc), getattr(url, "url", url)))
    return DatabaseError(f"workload query {query.name} failed: {reason}",
                         hint="fix the query (or the schema it expects) and advise again")


@contextmanager
def _evaluator(engine: Engine, use_hypopg: bool | None) -> Iterator[_Evaluator]:
    dialect = engine.dialect.name
    if dialect == "sqlite":
        if use_hypopg:
            raise UnsupportedByDialect("HypoPG is a PostgreSQL extension; SQLite is advised on a "
                                       "scratch copy", hint="leave use_hypopg unset for SQLite")
        evaluator: _Evaluator = _SQLiteEvaluator(engine)
    elif dialect == "postgresql":
        evaluator = _PostgresEvaluator(engine, use_hypopg)
    else:
        raise UnsupportedByDialect(f"the index advisor does not support {dialect}",
                                   hint="advise on SQLite or PostgreSQL (a scratch copy of the schema "
                                        "and data works)")
    try:
        yield evaluator
    except BaseException:
        if isinstance(evaluator, _PostgresEvaluator):
            evaluator.failed = True
        raise
    finally:
        evaluator.close()


# --------------------------------------------------------------------------- report


@dataclass
class Recommendation:
    """One index to add. ``gain`` is the fraction of the workload cost it saved when it
    was added (after the recommendations above it); ``cost_before``/``cost_after`` are
    the workload costs around that step, in ``cost_unit``; ``query_gains`` is the
    fraction saved per query it helps."""

    name: str
    table: str
    columns: list[str]
    include: list[str]
    ddl: str
    queries_helped: list[str]
    gain: float
    cost_before: float
    cost_after: float
    cost_unit: str
    size_bytes: int | None
    query_gains: dict[str, float] = field(default_factory=dict)

    @property
    def best_query_gain(self) -> float:
        return max(self.query_gains.values(), default=0.0)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("gain", "cost_before", "cost_after"):
            data[key] = round(data[key], 6)
        data["query_gains"] = {k: round(v, 6) for k, v in self.query_gains.items()}
        return data


@dataclass
class QueryAdvice:
    """One workload query before and after the recommendations."""

    query: str
    sql: str
    params: dict[str, Any]
    plan_before: str
    plan_after: str
    uses_index: bool  # the plan after uses some index (existing or recommended)
    indexes_after: list[str]
    recommended: list[str]  # recommended indexes the plan after uses
    cost_before: float
    cost_after: float
    full_scan_before: list[str]  # tables read by a full scan
    full_scan_after: list[str]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["params"] = {k: json_safe(v) for k, v in self.params.items()}
        data["cost_before"] = round(self.cost_before, 6)
        data["cost_after"] = round(self.cost_after, 6)
        return data


@dataclass
class AdviceReport:
    """What :func:`advise` found. ``exit_code`` is 0: whether an open recommendation
    blocks anything is the caller's decision (see :meth:`open_recommendations`)."""

    recommendations: list[Recommendation]
    queries: list[QueryAdvice]
    method: str
    dialect: str
    cost_unit: str
    existing: list[ExistingIndex]
    min_gain: float
    candidates_considered: int = 0
    seconds: float = 0.0
    #: candidates that could not be built (name → the database's reason)
    unbuildable: dict[str, str] = field(default_factory=dict)
    #: workload queries that do not run on this database (name → why), left out
    skipped: dict[str, str] = field(default_factory=dict)

    exit_code = 0

    @property
    def cost_before(self) -> float:
        return sum(q.cost_before for q in self.queries)

    @property
    def cost_after(self) -> float:
        return sum(q.cost_after for q in self.queries)

    @property
    def gain(self) -> float:
        """Fraction of the workload cost all recommendations together save."""
        before = self.cost_before
        return (before - self.cost_after) / before if before > 0 else 0.0

    @property
    def summary(self) -> str:
        count = len(self.recommendations)
        if not count:
            text_ = (f"advisor ({self.method}): no index to add for {len(self.queries)} workload "
                     f"quer{'y' if len(self.queries) == 1 else 'ies'} "
                     f"({self.candidates_considered} candidates tried)")
        else:
            text_ = (f"advisor ({self.method}): {count} index{'es' if count > 1 else ''} "
                     f"({', '.join(r.name for r in self.recommendations)}) save {self.gain:.0%} of "
                     f"the workload cost ({_amount(self.cost_before, self.cost_unit)} → "
                     f"{_amount(self.cost_after, self.cost_unit)})")
        if self.unbuildable:
            text_ += f"; {len(self.unbuildable)} candidate(s) could not be built"
        if self.skipped:
            text_ += (f"; {len(self.skipped)} workload quer{'y' if len(self.skipped) == 1 else 'ies'} "
                      f"skipped (does not run here: {', '.join(self.skipped)})")
        return text_

    def open_recommendations(self, threshold: float) -> list[Recommendation]:
        """Recommendations that save at least ``threshold`` of the workload cost, or of one
        query's cost (the same rule that selected them, at another threshold)."""
        return [r for r in self.recommendations if r.gain >= threshold or r.best_query_gain >= threshold]

    def frame(self) -> pd.DataFrame:
        columns = ["name", "table", "columns", "ddl", "queries_helped", "gain", "cost_before",
                   "cost_after", "cost_unit", "size_bytes"]
        return pd.DataFrame([{k: r.to_json()[k] for k in columns} for r in self.recommendations],
                            columns=columns)

    def queries_frame(self) -> pd.DataFrame:
        columns = ["query", "plan_before", "plan_after", "uses_index", "recommended", "cost_before",
                   "cost_after", "full_scan_before", "full_scan_after"]
        return pd.DataFrame([{k: q.to_json()[k] for k in columns} for q in self.queries], columns=columns)

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary, "method": self.method, "dialect": self.dialect,
                "cost_unit": self.cost_unit, "min_gain": self.min_gain,
                "cost_before": round(self.cost_before, 6), "cost_after": round(self.cost_after, 6),
                "gain": round(self.gain, 6), "candidates_considered": self.candidates_considered,
                "seconds": round(self.seconds, 3), "unbuildable": dict(self.unbuildable),
                "skipped": dict(self.skipped),
                "recommendations": [r.to_json() for r in self.recommendations],
                "queries": [q.to_json() for q in self.queries],
                "existing": [i.to_json() for i in self.existing]}

    def to_text(self) -> str:
        lines = [self.summary]
        for r in self.recommendations:
            size = f", {r.size_bytes / 1024:.0f} KiB" if r.size_bytes is not None else ""
            lines.append(f"  {r.ddl};  -- helps {', '.join(r.queries_helped)}: saves {r.gain:.0%} "
                         f"({_amount(r.cost_before, r.cost_unit)} → {_amount(r.cost_after, r.cost_unit)}{size})")
        for q in self.queries:
            scans = f"; full scan of {', '.join(q.full_scan_after)}" if q.full_scan_after else ""
            lines.append(f"  {q.query}: {_amount(q.cost_before, self.cost_unit)} → "
                         f"{_amount(q.cost_after, self.cost_unit)}{scans}")
        for name, reason in self.unbuildable.items():
            lines.append(f"  could not try {name}: {reason}")
        for name, reason in self.skipped.items():
            lines.append(f"  skipped {name}: {reason}")
        return "\n".join(lines)


def _amount(value: float, unit: str) -> str:
    return f"{value:.3g} ms" if unit == "ms" else f"{value:,.1f}"


# --------------------------------------------------------------------------- selection


@dataclass
class _Trial:
    """A candidate tried on top of the current indexes."""

    candidate: Candidate
    used: list[str]  # queries whose plan uses it
    costs: dict[str, float]  # their costs with it


@dataclass
class _Marginal:
    """What one chosen index is worth with all the others present."""

    candidate: Candidate
    used: list[str]
    without: float  # workload cost without it
    with_: float  # workload cost with it
    query_gains: dict[str, float]
    pays: bool
    drop: float
    size: int | None


def _pays(costs: dict[str, float], current: dict[str, float], min_gain: float) -> tuple[bool, float]:
    """(whether ``costs`` (of some queries) pay against ``current``, the workload cost they drop)."""
    drop = sum(current[q] - c for q, c in costs.items())
    total = sum(current.values())
    if drop <= 0 or total <= 0:
        return False, drop
    per_query = max(((current[q] - c) / current[q] for q, c in costs.items() if current[q] > 0), default=0.0)
    return drop / total >= min_gain or per_query >= min_gain, drop


class _Selection:
    """The greedy search over candidates on one evaluator."""

    def __init__(self, evaluator: _Evaluator, queries: list[_Bound], min_gain: float,
                 progress: Callable | None):
        self.ev = evaluator
        self.queries = {q.name: q for q in queries}
        self.min_gain = min_gain
        self.progress = progress
        self.plans = {q.name: evaluator.plan(q) for q in queries}
        self.current = {q.name: evaluator.cost(q, self.plans[q.name]) for q in queries}
        self.chosen: list[Candidate] = []

    def touching(self, table: str) -> list[_Bound]:
        return [q for q in self.queries.values() if table in q.shape.tables]

    def users(self, candidate: Candidate) -> list[str]:
        """The queries whose current plan uses ``candidate`` (present)."""
        name = self.ev.names[candidate.key]
        return [q for q in self.queries if name in self.plans[q].indexes]

    def trial(self, candidate: Candidate) -> _Trial | None:
        name = self.ev.add(candidate)
        if name is None:
            return None
        try:
            used = []
            for query in self.touching(candidate.table):
                plan = self.ev.plan(query)
                if name in plan.indexes:
                    used.append((query, plan))
            costs = {q.name: self.ev.cost(q, plan) for q, plan in used}
        finally:
            self.ev.remove(candidate)
        return _Trial(candidate, [q.name for q, _ in used], costs)

    def refresh(self, table: str) -> None:
        """Re-plans the queries on ``table`` after its indexes changed; re-costs those
        whose plan changed."""
        for query in self.touching(table):
            plan = self.ev.plan(query)
            old = self.plans[query.name]
            if plan.text != old.text or plan.indexes != old.indexes:
                self.current[query.name] = self.ev.cost(query, plan)
            self.plans[query.name] = plan

    def add(self, candidate: Candidate) -> None:
        if self.ev.add(candidate) is None:  # it was built for its trial: only a server error gets here
            raise DatabaseError(f"the advisor could not build {candidate.name} again")
        self.refresh(candidate.table)

    def remove(self, candidate: Candidate) -> None:
        self.ev.remove(candidate)
        self.refresh(candidate.table)

    def run(self, pool: list[Candidate], existing: list[ExistingIndex]) -> None:
        """Greedy rounds until no candidate pays (see the module docstring)."""
        present = [(i.table, i.columns) for i in existing if i.kind != PARTIAL]
        cache: dict[tuple, _Trial | None] = {}
        dead: set[tuple] = set()
        while True:
            have = present + [(c.table, c.all_columns) for c in self.chosen]
            live = [c for c in pool if c.key not in dead and not _redundant(c, have)]
            todo = [c for c in live if c.key not in cache]
            bar = self.progress(total=len(todo), desc=f"advise: round {len(self.chosen) + 1}",
                                unit="candidate") if self.progress and todo else None
            try:
                for candidate in todo:
                    cache[candidate.key] = self.trial(candidate)
                    if bar is not None:
                        bar.update(1)
            finally:
                if bar is not None:
                    bar.close()
            trials = []
            for candidate in live:
                trial = cache[candidate.key]
                if trial is None or not trial.used:
                    dead.add(candidate.key)  # unusable or unused now: more indexes will not change that
                    continue
                trials.append(trial)
            best = self.best(trials)
            if best is None:
                return
            self.add(best.candidate)
            self.chosen.append(best.candidate)
            # trials that may have changed: the same table, or a query the new index serves
            touched = set(self.users(best.candidate))
            cache = {k: t for k, t in cache.items() if t is not None
                     and not set(t.used) & touched and t.candidate.table != best.candidate.table}

    def best(self, trials: list[_Trial]) -> _Trial | None:
        by_key = {t.candidate.key: t for t in trials}
        paying: list[tuple[float, _Trial]] = []
        for trial in trials:
            ok, drop = _pays(trial.costs, self.current, self.min_gain)
            base = trial.candidate.base
            plain = by_key.get((trial.candidate.table, base, ())) if base is not None else None
            if ok and plain is not None:
                # a covering variant must pay on top of its key-only version
                ok, _ = _pays(trial.costs, {**self.current, **plain.costs}, self.min_gain)
            if ok:
                paying.append((drop, trial))
        if not paying:
            return None
        top = max(drop for drop, _ in paying)
        ties = [t for drop, t in paying if drop >= (1 - TIE) * top]
        return min(ties, key=lambda t: (t.candidate.rank, len(t.candidate.all_columns)))

    def marginal(self, candidate: Candidate) -> _Marginal:
        """``candidate``'s worth with every other chosen index present: its cost is
        taken away and put back."""
        self.remove(candidate)
        without = dict(self.current)
        self.add(candidate)
        used = self.users(candidate)
        costs = {q: self.current[q] for q in used}
        pays, drop = _pays(costs, without, self.min_gain) if used else (False, 0.0)
        gains = {q: (without[q] - self.current[q]) / without[q] for q in used if without[q] > 0}
        return _Marginal(candidate, used, sum(without.values()), sum(self.current.values()), gains,
                         pays, drop, self.ev.size(candidate))

    def finish(self) -> list[_Marginal]:
        """Drops chosen indexes that a wider chosen one makes redundant, then, one at a
        time, the least useful one that no longer pays with the others present; returns
        what each remaining one is worth."""
        for candidate in list(self.chosen):
            if any(other is not candidate and other.table == candidate.table
                   and _is_prefix(candidate.all_columns, other.all_columns) for other in self.chosen):
                self.remove(candidate)
                self.chosen.remove(candidate)
        while True:
            marginals = [self.marginal(c) for c in self.chosen]
            failing = [m for m in marginals if not m.pays]
            if not failing:
                return marginals
            worst = min(failing, key=lambda m: m.drop)
            self.remove(worst.candidate)
            self.chosen.remove(worst.candidate)


def _bind(engine: Engine, query: Query, seed: int) -> tuple[str, dict[str, Any]]:
    """The query's SQL and a value for each parameter: its own, else drawn from the data."""
    sql = query.sql.strip().rstrip(";").strip()
    try:
        return sql, sample_parameters(engine, sql, seed=seed, given=query.params)
    except DatabaseError:
        raise
    except ConductorError as exc:
        raise ConductorError(f"workload query {query.name}: {exc.message}", hint=exc.hint) from None


@bounded()
def advise(engine: Engine, queries: list[Query], *, min_gain: float = MIN_GAIN,
           use_hypopg: bool | None = None, seed: int = 0,
           progress: Callable | None = None) -> AdviceReport:
    """Indexes that make ``queries`` cheaper on ``engine``'s database, which is left as
    it was found (see the module docstring for how candidates are found, evaluated and
    selected).

    ``min_gain``: the fraction of the workload cost, or of one query's cost, an index
    must save. ``use_hypopg`` (PostgreSQL): None uses HypoPG when it is installed or can
    be created (inside the rolled-back transaction), True requires it, False builds real
    indexes inside a transaction that is rolled back. Parameters a query's ``params`` do
    not bind get values drawn from the data (``seed``). ``progress`` is a tqdm-compatible
    factory. ``timeout`` (keyword, seconds; None: the default, 0: no limit) bounds each
    statement, the scratch copy's timed runs included (see :func:`.timeouts.bounded`)."""
    if not 0 <= min_gain < 1:
        raise ConductorError(f"min_gain is a fraction between 0 and 1, got {min_gain}")
    started = time.perf_counter()
    dialect = engine.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise UnsupportedByDialect(f"the index advisor does not support {dialect}",
                                   hint="advise on SQLite or PostgreSQL")
    with engine.connect() as conn:
        schema = _Schema.from_inspector(inspect(conn))
    bound: list[_Bound] = []
    pool: dict[tuple, Candidate] = {}
    skipped: dict[str, str] = {}
    for query in queries:
        try:
            sql, params = _bind(engine, query, seed)
            _explain_once(engine, sql, params)
        except StatementTimeout:
            raise  # the whole step stops: the user asked for the bound
        except ConductorError as exc:
            # A workload query that does not run here (a column the schema does not have yet,
            # a parameter that cannot be drawn) is reported, and the rest are still advised on.
            skipped[query.name] = exc.message
            continue
        shape = _shape(sql, dialect, schema)
        bound.append(_Bound(query.name, sql, params, shape))
        for candidate in _candidates_of(shape, schema, dialect, (query.name,)):
            known = pool.get(candidate.key)
            if known is None:
                pool[candidate.key] = candidate
            else:
                pool[candidate.key] = replace(known, origin=known.origin + (query.name,),
                                              rank=min(known.rank, candidate.rank))
    if not bound:
        raise ConductorError(
            "no workload query runs on this database: "
            + "; ".join(f"{name}: {reason}" for name, reason in skipped.items()),
            hint="fix the queries (or the schema they expect) and advise again")
    existing = schema.existing()
    present = [(i.table, i.columns) for i in existing if i.kind != PARTIAL]
    candidates_ = [c for c in pool.values() if not _redundant(c, present)]
    with _evaluator(engine, use_hypopg) as evaluator:
        if isinstance(evaluator, _SQLiteEvaluator):
            for query in bound:  # fail on a broken query with its name, before any timing
                try:
                    evaluator.plan(query)
                except sqlite3.Error as exc:
                    raise _query_failed(query, exc, engine) from None
        selection = _Selection(evaluator, bound, min_gain, progress)
        plans_before, costs_before = dict(selection.plans), dict(selection.current)
        selection.run(candidates_, existing)
        marginals = selection.finish()
        taken = {i.name.lower() for i in existing if i.name}
        recommendations = [_recommendation(m, evaluator.cost_unit, dialect, taken) for m in marginals]
        names = {evaluator.names[m.candidate.key]: r.name for m, r in zip(marginals, recommendations,
                                                                           strict=True)}
        rows = []
        for query in bound:
            before, after = plans_before[query.name], selection.plans[query.name]
            rows.append(QueryAdvice(
                query.name, query.sql, query.params, evaluator.display(before.text),
                evaluator.display(after.text), bool(after.indexes),
                sorted(evaluator.display(i) for i in after.indexes),
                sorted(names[i] for i in after.indexes if i in names),
                costs_before[query.name], selection.current[query.name],
                before.full_scans, after.full_scans))
        method, unit, unbuildable = evaluator.method, evaluator.cost_unit, dict(evaluator.unbuildable)
    return AdviceReport(recommendations, rows, method, dialect, unit, existing, min_gain,
                        len(candidates_), time.perf_counter() - started, unbuildable, skipped)


def _explain_once(engine: Engine, sql: str, params: dict[str, Any]) -> None:
    """Plan the bound query once in a rolled-back transaction; ConductorError naming the
    database's reason when it does not run (the live database is not changed)."""
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as conn, conn.begin() as txn:
        try:
            conn.execute(text(explain + sql), params).fetchall()
        except DBAPIError as exc:
            reason = first_line(scrub(str(exc.orig or exc), engine.url))
            raise ConductorError(f"does not run: {reason}") from None
        finally:
            txn.rollback()


def _recommendation(marginal: _Marginal, unit: str, dialect: str, taken: set[str]) -> Recommendation:
    candidate = marginal.candidate
    name = candidate.name
    if name.lower() in taken:  # an index of that name with other columns exists already
        digest = hashlib.sha1(repr(candidate.key).encode("utf-8")).hexdigest()[:8]
        name = f"{name[:NAME_LIMIT - len(digest) - 1]}_{digest}"
    taken.add(name.lower())
    gain = (marginal.without - marginal.with_) / marginal.without if marginal.without > 0 else 0.0
    helped = [q for q in marginal.used if marginal.query_gains.get(q, 0.0) > 0]
    return Recommendation(
        name, candidate.table, list(candidate.columns), list(candidate.include),
        candidate.ddl(dialect, name), helped, max(gain, 0.0), marginal.without, marginal.with_,
        unit, marginal.size, {q: marginal.query_gains[q] for q in helped})
