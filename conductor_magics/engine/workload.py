"""Workload queries: named SQL statements to tune indexes for.

A workload file (``storages/<id>/workload.sql``) holds named queries in the
``-- name: NAME`` form that aiosql and yesql use::

    -- name: customer_orders_by_status
    SELECT id FROM orders WHERE customer_id = :customer_id AND status = :status;

Bind parameters use the ``:name`` form; values are drawn from the data when a
query is benchmarked or advised on (see :func:`sample_parameters`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy
import sqlglot
from sqlalchemy import Connection, Engine
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

from ..errors import ConductorError, option
from .connection import connection_of
from .timeouts import statement_timeout

_NAME_LINE = re.compile(r"^[ \t]*--[ \t]*name[ \t]*:[ \t]*(?P<name>[A-Za-z_][\w.-]*)[ \t]*$", re.MULTILINE)
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


# --------------------------------------------------------------------------- bind parameters

#: rows a ``LIMIT :n`` / ``FETCH FIRST :n ROWS`` parameter asks for (a page, not the table)
SAMPLE_LIMIT = 20
#: quantiles for range bounds. A column bounded on both sides (``BETWEEN :a AND :b``,
#: ``col >= :a AND col < :b``) gets the 45 % and 55 % quantiles: a tenth of the rows,
#: around the median. A lone bound keeps a tenth of the rows on its side: at the median
#: it would select half the table, where no index pays, which real range queries rarely do.
_PAIRED_QUANTILES = {"low": 0.45, "high": 0.55}
_LONE_QUANTILES = {"low": 0.90, "high": 0.10}
#: SQLite tables whose largest rowid is above this get their quantiles from a sample of
#: QUANTILE_SAMPLE random rowids (sorting every row costs seconds on a large table) ...
QUANTILE_SAMPLE_ABOVE = 20_000
QUANTILE_SAMPLE = 4_000
#: ... when at least this many sampled rows qualify; otherwise the exact quantile
QUANTILE_SAMPLE_MIN = 200
_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")


def parameters(sql: str) -> list[str]:
    """The ``:name`` bind parameters of ``sql`` in order of first appearance.

    Uses sqlglot's tokenizer, so text inside string literals and quoted identifiers,
    PostgreSQL ``::type`` casts and array slices (``a[1:n]``) are not parameters."""
    try:
        tokens = sqlglot.tokenize(sql)
    except SqlglotError:
        # unterminated quotes and the like: SQLAlchemy's own reading of text() parameters
        return list(dict.fromkeys(sqlalchemy.text(sql).compile().params))
    names: list[str] = []
    for i, token in enumerate(tokens[:-1]):
        name = tokens[i + 1]
        if token.token_type != TokenType.COLON or name.start != token.end + 1:
            continue
        before = tokens[i - 1] if i else None
        if before is not None and before.end + 1 == token.start and before.token_type in (
                TokenType.NUMBER, TokenType.VAR, TokenType.R_BRACKET):
            continue  # a slice or a key:value pair written without spaces, not a parameter
        if _IDENTIFIER.match(name.text):
            names.append(name.text)
    return list(dict.fromkeys(names))


def parse_query(sql: str, dialect: str) -> exp.Expression:
    """The sqlglot tree of one workload query in ``dialect`` (a SQLAlchemy dialect name)."""
    from .schema import sqlglot_dialect

    try:
        tree = sqlglot.parse_one(sql, read=sqlglot_dialect(dialect))
    except (SqlglotError, ValueError) as exc:
        raise ConductorError(f"cannot parse the query `{_first_words(sql)}` as {dialect} SQL: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                             hint="check the SQL (one statement, :name parameters)") from None
    if tree is None:
        raise ConductorError("the query is empty", hint="give one SELECT statement")
    return tree


def table_sources(select: exp.Expression) -> dict[str, exp.Table]:
    """``alias → Table node`` for the tables in ``select``'s FROM and JOINs (aliases and
    unquoted names lower-cased; derived tables and CTE references are left out)."""
    sources: dict[str, exp.Table] = {}
    items = [select.args.get("from_") or select.args.get("from")]
    items += [join for join in select.args.get("joins") or []]
    for item in items:
        node = getattr(item, "this", None)
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
            sources[node.alias_or_name.lower()] = node
    ctes = {cte.alias_or_name.lower() for cte in select.find_all(exp.CTE)}
    root = select.root()
    if isinstance(root, exp.Expression):
        ctes |= {cte.alias_or_name.lower() for cte in root.find_all(exp.CTE)}
    return {alias: table for alias, table in sources.items() if table.name.lower() not in ctes}


def table_name(table: exp.Table) -> str:
    """The table's name as the database stores it (unquoted names lower-cased)."""
    identifier = table.this
    return identifier.this if identifier.quoted else identifier.this.lower()


def source_of(column: exp.Column, columns_of: Callable[[str], set[str]] | None = None
              ) -> tuple[exp.Select, str, exp.Table] | None:
    """(select, alias, Table) that ``column`` reads from: the nearest enclosing SELECT
    whose FROM has its qualifier (outer SELECTs for correlated references). An unqualified
    column belongs to a SELECT's only table, or to the one table that has a column of
    that name (``columns_of(table)`` gives a table's lower-cased column names)."""
    qualifier = column.table.lower() if column.table else ""
    name = column.name.lower()
    node: exp.Expression | None = column
    while node is not None:
        if isinstance(node, exp.Select):
            sources = table_sources(node)
            if qualifier and qualifier in sources:
                return node, qualifier, sources[qualifier]
            if not qualifier and sources:
                if columns_of is None:
                    if len(sources) == 1:
                        alias, table = next(iter(sources.items()))
                        return node, alias, table
                else:
                    owners = [(a, t) for a, t in sources.items() if name in columns_of(table_name(t))]
                    if len(owners) == 1:
                        return node, owners[0][0], owners[0][1]
        node = node.parent
    return None


@dataclass
class _Role:
    """How one parameter is used: compared with ``expr`` (eq, low or high bound), or a
    LIMIT / OFFSET count."""

    kind: str  # eq | low | high | limit | offset
    expr: exp.Expression | None = None


_LOWER_IF_RIGHT = {exp.GT: "low", exp.GTE: "low", exp.LT: "high", exp.LTE: "high"}
_EQUALITY = (exp.EQ, exp.NEQ, exp.Like, exp.ILike, exp.NullSafeEQ)


def _role_of(placeholder: exp.Placeholder) -> _Role | None:
    node = placeholder
    while isinstance(node.parent, exp.Paren | exp.Cast | exp.TryCast):
        node = node.parent
    parent, key = node.parent, node.arg_key
    if isinstance(parent, exp.Limit | exp.Fetch):
        return _Role("limit")
    if isinstance(parent, exp.Offset):
        return _Role("offset")
    if isinstance(parent, exp.Between):
        return _Role(key, parent.this) if key in ("low", "high") else None
    if isinstance(parent, exp.In) and key == "expressions":
        return _Role("eq", parent.this)
    if isinstance(parent, _EQUALITY):
        other = parent.expression if key == "this" else parent.this
        return _Role("eq", other)
    side = _LOWER_IF_RIGHT.get(type(parent))
    if side is not None:
        if key == "expression":
            return _Role(side, parent.this)
        return _Role("high" if side == "low" else "low", parent.expression)
    return None


def _first_words(sql: str, limit: int = 60) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _cannot_draw(name: str, sql: str, reason: str) -> ConductorError:
    return ConductorError(f"cannot draw a value for :{name} in `{_first_words(sql)}`: {reason}",
                          hint=f"bind :{name} explicitly (e.g. {option('param', name + '=VALUE')})")


def _filters_on(select: exp.Select, alias: str, columns_of) -> list[exp.Expression]:
    """The conjuncts of ``select``'s WHERE that compare only ``alias``'s columns with
    constants (``o.status = 'pending'``): a drawn row should satisfy them too."""
    where = select.args.get("where")
    if where is None:
        return []
    kept = []
    for part in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        columns = list(part.find_all(exp.Column))
        if not columns or part.find(exp.Placeholder, exp.Subquery, exp.Select):
            continue
        sources = [source_of(c, columns_of) for c in columns]
        if all(s is not None and s[0] is select and s[1] == alias for s in sources):
            kept.append(part.copy())
    return kept


class _Sampler:
    """Draws parameter values with SQL on one connection (see :func:`sample_parameters`)."""

    def __init__(self, conn: Connection, sql: str, rng: random.Random):
        from .schema import sqlglot_dialect

        self.conn = conn
        self.sql = sql
        self.rng = rng
        self.dialect = sqlglot_dialect(conn.dialect.name)
        self._columns: dict[str, set[str]] = {}

    def columns_of(self, table: str) -> set[str]:
        if table not in self._columns:
            try:
                found = sqlalchemy.inspect(self.conn).get_columns(table)
            except Exception:  # no such table (or a view the dialect cannot reflect)
                found = []
            self._columns[table] = {c["name"].lower() for c in found}
        return self._columns[table]

    def scalar_rows(self, query: exp.Select) -> list[tuple]:
        # escape colons: the generated SQL has no parameters, only literals (timestamps)
        statement = sqlalchemy.text(query.sql(dialect=self.dialect).replace(":", r"\:"))
        try:
            return [tuple(r) for r in self.conn.execute(statement).fetchall()]
        except sqlalchemy.exc.DBAPIError as exc:  # e.g. the query names a column that is not there
            from .connection import driver_reason

            raise ConductorError(
                f"cannot draw parameter values for '{_first_words(self.sql)}': "
                f"{driver_reason(exc, self.conn.engine.url)}",
                hint="check that the query runs against this database") from None

    def base(self, table: exp.Table, filters: list[exp.Expression], *extra: exp.Expression,
             columns: list[exp.Expression]) -> exp.Select:
        query = exp.select(*columns).from_(table.copy())
        for condition in [*filters, *extra]:
            query = query.where(condition.copy())
        return query

    def count(self, table: exp.Table, filters: list[exp.Expression], *extra: exp.Expression) -> int:
        query = self.base(table, filters, *extra, columns=[exp.Count(this=exp.Star())])
        return int(self.scalar_rows(query)[0][0])

    def row_at(self, table, filters, extra, exprs, offset: int, ordered: bool = True) -> tuple:
        query = self.base(table, filters, *extra, columns=[e.copy() for e in exprs])
        if ordered:  # a quantile needs the sorted values; a random row only its position
            query = query.order_by(*[exp.Ordered(this=exp.Literal.number(i + 1)) for i in range(len(exprs))])
        rows = self.scalar_rows(query.limit(1).offset(offset))
        return rows[0] if rows else (None,) * len(exprs)

    def random_row(self, name: str, table: exp.Table, filters, exprs: list[exp.Expression]) -> tuple:
        """The values of ``exprs`` in a random row (satisfying ``filters`` when any does)."""
        for conditions in (filters, []) if filters else ([],):
            total = self.count(table, conditions)
            if total:
                # the row at a random position in scan order (stable for a given database):
                # sorting every row first costs seconds on a large table
                return self.row_at(table, conditions, [], exprs, self.rng.randrange(total), ordered=False)
        raise _cannot_draw(name, self.sql, f"table {table_name(table)} has no rows")

    def non_null(self, name: str, table: exp.Table, filters, expr: exp.Expression,
                 quantile: float | None = None) -> Any:
        """A non-NULL value of ``expr``: at ``quantile`` of the sorted values, else random."""
        not_null = exp.Not(this=exp.Is(this=expr.copy(), expression=exp.Null()))
        if quantile is not None:
            found = self.sampled_quantile(table, filters, not_null, expr, quantile)
            if found is not None:
                return found
        for conditions in (filters, []) if filters else ([],):
            total = self.count(table, conditions, not_null)
            if total:
                offset = (min(int(quantile * total), total - 1) if quantile is not None
                          else self.rng.randrange(total))
                return self.row_at(table, conditions, [not_null], [expr], offset,
                                   ordered=quantile is not None)[0]
        raise _cannot_draw(name, self.sql, f"{expr.sql(dialect=self.dialect)} is NULL or "
                                           f"table {table_name(table)} has no rows")

    def sampled_quantile(self, table: exp.Table, filters, not_null: exp.Expression,
                         expr: exp.Expression, quantile: float) -> Any:
        """SQLite: ``quantile`` of ``expr`` among the rows at random rowids (seeded), or
        None when the table is small, has no rowid, or too few sampled rows qualify."""
        if self.dialect != "sqlite":
            return None
        name = table.alias_or_name
        rowid = exp.column("rowid", table=name)
        try:
            top = self.scalar_rows(exp.select(exp.Max(this=rowid.copy())).from_(table.copy()))[0][0]
        except ConductorError:  # WITHOUT ROWID
            return None
        if not isinstance(top, int) or top <= QUANTILE_SAMPLE_ABOVE:
            return None
        drawn = sorted(self.rng.sample(range(1, top + 1), QUANTILE_SAMPLE))
        picked = exp.In(this=rowid, expressions=[exp.Literal.number(i) for i in drawn])
        for conditions in (filters, []) if filters else ([],):
            rows = self.scalar_rows(self.base(table, conditions, not_null, picked, columns=[expr.copy()]))
            if len(rows) < QUANTILE_SAMPLE_MIN:
                continue
            try:
                values = sorted(r[0] for r in rows)
            except TypeError:  # mixed types: SQLite orders them its own way
                return None
            return values[min(int(quantile * len(values)), len(values) - 1)]
        return None


def sample_parameters(bind: Engine | Connection, sql: str, *, seed: int = 0,
                      given: Mapping[str, Any] | None = None,
                      timeout: float | None = None) -> dict[str, Any]:
    """Values for the ``:name`` parameters of ``sql``, drawn from the data.

    - ``col = :p``, ``col IN (:p)``, ``col LIKE :p`` (any expression of one table's
      columns, e.g. ``DATE(o.paid_at) = :day``): the value in a random existing row
      (seeded). Equality parameters on the same table come from the same row, so
      ``customer_id = :c AND status = :s`` matches at least that row; the row also
      satisfies the query's constant filters on that table (``status = 'pending'``)
      where some row does.
    - ``col >= :a``, ``col < :b``, ``BETWEEN :a AND :b``: quantiles of the column (a
      tenth of the rows, near the median when both bounds are given); on a large SQLite
      table the quantile of the rows at seeded random rowids, not of a sort of every row.
    - ``LIMIT :n`` → 20, ``OFFSET :n`` → 0.

    Aliases are resolved with sqlglot; a parameter that is compared with nothing
    resolvable, or whose table is empty, raises ConductorError naming it. Parameters in
    ``given`` (bound by the user) are returned as given and not drawn. Each drawing
    statement may run ``timeout`` seconds (None: the default, 0: no limit)."""
    given = dict(given or {})
    names = parameters(sql)
    if all(name in given for name in names):
        return {name: given[name] for name in names}
    with statement_timeout(bind, timeout, f"drawing parameters for `{_first_words(sql, 40)}`"), \
            connection_of(bind) as conn:
        tree = parse_query(sql, conn.dialect.name)
        roles: dict[str, _Role] = {}
        for placeholder in tree.find_all(exp.Placeholder):
            role = _role_of(placeholder)
            if role is not None and placeholder.name not in roles:
                roles[placeholder.name] = role
        sampler = _Sampler(conn, sql, random.Random(seed))
        values: dict[str, Any] = {}
        located: dict[str, tuple[exp.Select, str, exp.Table]] = {}
        for name in names:
            role = roles.get(name)
            if name in given:
                values[name] = given[name]
                continue
            if role is None:
                raise _cannot_draw(name, sql, "it is not compared with a column, nor a LIMIT or OFFSET")
            if role.kind in ("limit", "offset"):
                values[name] = SAMPLE_LIMIT if role.kind == "limit" else 0
                continue
            found = [source_of(c, sampler.columns_of) for c in role.expr.find_all(exp.Column)]
            places = {(id(s[0]), s[1]) for s in found if s is not None}
            if not found or None in found or len(places) != 1:
                raise _cannot_draw(name, sql, f"`{role.expr.sql()}` is not an expression of one "
                                              "table's columns")
            located[name] = found[0]
        # equality parameters: one random row per (SELECT, table alias)
        groups: dict[tuple[int, str], list[str]] = {}
        for name, (select, alias, _table) in located.items():
            if roles[name].kind == "eq":
                groups.setdefault((id(select), alias), []).append(name)
        for group in groups.values():
            select, alias, table = located[group[0]]
            filters = _filters_on(select, alias, sampler.columns_of)
            row = sampler.random_row(group[0], table, filters, [roles[n].expr for n in group])
            for name, value in zip(group, row, strict=True):
                values[name] = value if value is not None else sampler.non_null(
                    name, table, filters, roles[name].expr)
        # range bounds: quantiles of the bounded expression
        bounds: dict[tuple[int, str, str], set[str]] = {}
        for name, (select, alias, _table) in located.items():
            if roles[name].kind in ("low", "high"):
                key = (id(select), alias, roles[name].expr.sql())
                bounds.setdefault(key, set()).add(roles[name].kind)
        for name, (select, alias, table) in located.items():
            role = roles[name]
            if role.kind not in ("low", "high"):
                continue
            sides = bounds[(id(select), alias, role.expr.sql())]
            quantile = (_PAIRED_QUANTILES if len(sides) == 2 else _LONE_QUANTILES)[role.kind]
            filters = _filters_on(select, alias, sampler.columns_of)
            values[name] = sampler.non_null(name, table, filters, role.expr, quantile)
    return {name: values[name] for name in names}
