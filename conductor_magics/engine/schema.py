"""The declared schema: split and apply DDL, reflect a live database, flag storage-standards findings.

``validate(sql, like)`` tries a component's declared DDL on a scratch database of the
live engine's dialect and reflects it there; ``reflect(bind)`` describes any live
database. Both return a :class:`SchemaReport` (tables, columns, keys, constraints,
indexes, findings) that renders as pandas frames, a Mermaid ER diagram or JSON.
``declared_metadata`` turns the declared DDL into a ``MetaData`` for Alembic
autogenerate.

Dialect notes (what reflection can tell):

- SQLite keeps the DDL text, so an unnamed constraint reflects with name ``None``.
- PostgreSQL generates a name for every unnamed constraint (``orders_pkey``,
  ``orders_customer_id_fkey``, ``customers_email_key``, ``orders_status_check``);
  such default-generated names count as unnamed.
- DuckDB does not store constraint names at all, and duckdb-engine's SQLAlchemy
  inspector fails on DuckDB's catalog, so DuckDB is read from its own catalog
  functions (``duckdb_columns()``, ``duckdb_constraints()``, ``duckdb_indexes()``);
  constraint names come from the declared SQL when there is one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd
import sqlglot
from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    Engine,
    ForeignKeyConstraint,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    UniqueConstraint,
    inspect,
    text,
)
from sqlalchemy import types as sqltypes
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.sql.elements import conv
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

from ..errors import DatabaseError, UnsupportedByDialect
from .connection import driver_reason, statement_error
from .fingerprint import TOOL_TABLES, user_tables
from .scratch import scratch_engine

#: constraint names Alembic renders and the declared MetaData uses for unnamed constraints
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: SQLAlchemy dialect name → sqlglot dialect name
_SQLGLOT_DIALECTS = {"postgresql": "postgres", "sqlite": "sqlite", "duckdb": "duckdb",
                     "mysql": "mysql", "mariadb": "mysql", "mssql": "tsql", "oracle": "oracle",
                     "cockroachdb": "postgres", "snowflake": "snowflake", "bigquery": "bigquery"}

Severity = Literal["error", "warning"]


# --------------------------------------------------------------------------- data


@dataclass
class ColumnInfo:
    name: str
    type: str
    nullable: bool
    default: str | None = None


@dataclass
class PrimaryKeyInfo:
    columns: list[str]
    name: str | None = None
    #: declared with an explicit name (None: cannot tell on this dialect)
    explicit: bool | None = None


@dataclass
class ForeignKeyInfo:
    columns: list[str]
    referred_table: str
    referred_columns: list[str]
    name: str | None = None
    explicit: bool | None = None


@dataclass
class UniqueInfo:
    columns: list[str]
    name: str | None = None
    explicit: bool | None = None


@dataclass
class CheckInfo:
    sqltext: str
    #: columns the expression refers to (empty when it cannot be parsed)
    columns: list[str] = field(default_factory=list)
    name: str | None = None
    explicit: bool | None = None


@dataclass
class IndexInfo:
    name: str | None
    #: column names, or the expression text for expression indexes
    columns: list[str]
    unique: bool = False


@dataclass
class TableInfo:
    name: str
    columns: list[ColumnInfo] = field(default_factory=list)
    primary_key: PrimaryKeyInfo | None = None
    foreign_keys: list[ForeignKeyInfo] = field(default_factory=list)
    unique_constraints: list[UniqueInfo] = field(default_factory=list)
    check_constraints: list[CheckInfo] = field(default_factory=list)
    indexes: list[IndexInfo] = field(default_factory=list)

    def constraints(self) -> list[tuple[str, Any]]:
        """(kind, info) for every constraint: ``primary key``, ``foreign key``, ``unique``, ``check``."""
        found: list[tuple[str, Any]] = []
        if self.primary_key is not None:
            found.append(("primary key", self.primary_key))
        found += [("foreign key", fk) for fk in self.foreign_keys]
        found += [("unique", uq) for uq in self.unique_constraints]
        found += [("check", ck) for ck in self.check_constraints]
        return found


@dataclass
class Finding:
    severity: Severity
    table: str
    code: str
    message: str


@dataclass
class SchemaReport:
    tables: list[TableInfo]
    findings: list[Finding] = field(default_factory=list)
    dialect: str = ""
    #: what this dialect could not tell (e.g. DuckDB keeps no constraint names)
    notes: list[str] = field(default_factory=list)

    def table(self, name: str) -> TableInfo:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def summary_frame(self) -> pd.DataFrame:
        """One row per column: table, column, type, nullable, pk, fk, unique, checks, indexes."""
        rows = []
        for table in self.tables:
            pk = set(table.primary_key.columns) if table.primary_key else set()
            for column in table.columns:
                fks = [f"{fk.referred_table}.{fk.referred_columns[fk.columns.index(column.name)]}"
                       for fk in table.foreign_keys
                       if column.name in fk.columns and len(fk.referred_columns) == len(fk.columns)]
                unique = any(column.name in uq.columns for uq in table.unique_constraints) or any(
                    ix.unique and column.name in ix.columns for ix in table.indexes)
                checks = [ck.sqltext for ck in table.check_constraints if column.name in ck.columns]
                indexes = [ix.name or "(unnamed)" for ix in table.indexes if column.name in ix.columns]
                rows.append({"table": table.name, "column": column.name, "type": column.type,
                             # SQLite reflects INTEGER PRIMARY KEY as nullable; a key never is.
                             "nullable": column.nullable and column.name not in pk,
                             "pk": column.name in pk,
                             "fk": ", ".join(fks), "unique": unique, "checks": "; ".join(checks),
                             "indexes": ", ".join(indexes)})
        return pd.DataFrame(rows, columns=["table", "column", "type", "nullable", "pk", "fk",
                                           "unique", "checks", "indexes"])

    def tables_frame(self) -> pd.DataFrame:
        """One row per table: primary key and counts of columns, constraints, indexes, findings."""
        rows = []
        for table in self.tables:
            rows.append({
                "table": table.name,
                "columns": len(table.columns),
                "primary_key": ", ".join(table.primary_key.columns) if table.primary_key else "",
                "foreign_keys": len(table.foreign_keys),
                "unique": len(table.unique_constraints),
                "checks": len(table.check_constraints),
                "indexes": len(table.indexes),
                "errors": sum(1 for f in self.errors if f.table == table.name),
                "warnings": sum(1 for f in self.warnings if f.table == table.name),
            })
        return pd.DataFrame(rows, columns=["table", "columns", "primary_key", "foreign_keys",
                                           "unique", "checks", "indexes", "errors", "warnings"])

    def findings_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(f) for f in self.findings],
                            columns=["severity", "table", "code", "message"])

    def mermaid(self) -> str:
        """A Mermaid ``erDiagram``: typed attributes marked PK/FK/UK, relationships with
        cardinality from the foreign key's nullability and uniqueness."""
        names = {t.name: _mermaid_name(t.name) for t in self.tables}
        lines = ["erDiagram"]
        for table in self.tables:
            pk = set(table.primary_key.columns) if table.primary_key else set()
            fk_cols = {c for fk in table.foreign_keys for c in fk.columns}
            uk_cols = {uq.columns[0] for uq in table.unique_constraints if len(uq.columns) == 1}
            uk_cols |= {ix.columns[0] for ix in table.indexes if ix.unique and len(ix.columns) == 1}
            lines.append(f"    {names[table.name]} {{")
            for column in table.columns:
                keys = [k for k, present in (("PK", column.name in pk), ("FK", column.name in fk_cols),
                                             ("UK", column.name in uk_cols)) if present]
                line = f"        {_mermaid_type(column.type)} {_mermaid_name(column.name)}"
                if keys:
                    line += " " + ", ".join(keys)
                lines.append(line)
            lines.append("    }")
        for table in self.tables:
            columns = {c.name: c for c in table.columns}
            for fk in table.foreign_keys:
                parent = names.get(fk.referred_table, _mermaid_name(fk.referred_table))
                optional = any(columns[c].nullable for c in fk.columns if c in columns)
                left = "|o" if optional else "||"
                right = "o|" if _is_unique(table, fk.columns) else "o{"
                label = ", ".join(fk.columns).replace('"', "'")
                lines.append(f'    {parent} {left}--{right} {names[table.name]} : "{label}"')
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict:
        return {"dialect": self.dialect,
                "tables": [asdict(t) for t in self.tables],
                "findings": [asdict(f) for f in self.findings],
                "notes": list(self.notes)}


def _mermaid_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name) or "_"
    return "_" + cleaned if cleaned[0].isdigit() else cleaned


def _mermaid_type(type_: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]+", "_", type_).strip("_") or "unknown"
    return "_" + cleaned if cleaned[0].isdigit() else cleaned


def _is_unique(table: TableInfo, columns: list[str]) -> bool:
    wanted = set(columns)
    keys = [uq.columns for uq in table.unique_constraints]
    keys += [ix.columns for ix in table.indexes if ix.unique]
    if table.primary_key:
        keys.append(table.primary_key.columns)
    return any(set(key) and set(key) <= wanted for key in keys)


# --------------------------------------------------------------------------- splitting and applying


def sqlglot_dialect(dialect: str | None) -> str | None:
    """The sqlglot dialect name for a SQLAlchemy dialect name (None: sqlglot's generic SQL)."""
    if not dialect:
        return None
    return _SQLGLOT_DIALECTS.get(dialect, dialect if dialect in _known_sqlglot() else None)


def _known_sqlglot() -> set[str]:
    from sqlglot.dialects.dialect import Dialects
    return {d.value for d in Dialects}


def _tokenize(sql: str, dialect: str | None) -> list | None:
    try:
        return list(sqlglot.Dialect.get_or_raise(sqlglot_dialect(dialect)).tokenize(sql))
    except (SqlglotError, ValueError):
        return None


def split_statements(sql: str, dialect: str) -> list[str]:
    """The statements of ``sql``, each as its raw text without the closing ``;``.

    Splits on the semicolons sqlglot's tokenizer sees, so semicolons inside strings,
    comments, ``$$`` bodies and trigger bodies (``BEGIN … END``) do not split. A
    statement sqlglot cannot parse is kept as written; text it cannot even tokenize
    falls back to a quote- and comment-aware scanner. Comment-only pieces are dropped.
    """
    tokens = _tokenize(sql, dialect)
    if tokens is None:
        return _split_plain(sql)
    statements: list[str] = []
    start = 0  # character offset where the current statement's text begins
    head: list[Any] = []  # tokens of the current statement
    depth = 0  # BEGIN/CASE … END nesting inside a trigger body
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON and depth == 0:
            if head:
                statements.append(sql[start:token.start].strip())
            start, head = token.end + 1, []
            continue
        head.append(token)
        if _is_trigger(head):
            if token.token_type in (TokenType.BEGIN, TokenType.CASE):
                depth += 1
            elif token.token_type == TokenType.END and depth:
                depth -= 1
    if head:
        statements.append(sql[start:].strip())
    return [s for s in statements if s]


def _is_trigger(tokens: list) -> bool:
    if not tokens or tokens[0].token_type != TokenType.CREATE:
        return False
    return any(t.token_type == TokenType.TRIGGER for t in tokens[1:5])


def _split_plain(sql: str) -> list[str]:
    """Split on ``;`` outside quotes, comments and dollar-quoted bodies."""
    statements, current, i, n = [], [], 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"`":
            end = i + 1
            while end < n and not (sql[end] == ch and not (end + 1 < n and sql[end + 1] == ch)):
                end += 2 if sql[end] == ch else 1
            current.append(sql[i:end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            current.append(sql[i:end])
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            current.append(sql[i:end])
            i = end
        elif ch == "$" and (m := re.match(r"\$[A-Za-z_]*\$", sql[i:])):
            tag = m.group(0)
            end = sql.find(tag, i + len(tag))
            end = n if end < 0 else end + len(tag)
            current.append(sql[i:end])
            i = end
        elif ch == ";":
            statements.append("".join(current))
            current, i = [], i + 1
        else:
            current.append(ch)
            i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    stripped = re.sub(r"--[^\n]*|/\*.*?\*/", "", statement, flags=re.S)
    return bool(stripped.strip())


def apply_sql(bind: Engine | Connection, sql: str) -> None:
    """Run every statement of ``sql`` in one transaction; on the first failure roll back
    and raise DatabaseError naming the statement (number and first line) and the driver's
    first error line. Given a Connection already in a transaction, the statements run in
    that transaction and the caller decides to commit or roll back."""
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            _apply(conn, sql)
        return
    if bind.in_transaction():
        _apply(bind, sql)
    else:
        with bind.begin():
            _apply(bind, sql)


def _apply(conn: Connection, sql: str) -> None:
    statements = split_statements(sql, conn.dialect.name)
    for number, statement in enumerate(statements, start=1):
        try:
            conn.exec_driver_sql(statement)
        except DBAPIError as exc:
            raise statement_error(conn, number, len(statements), statement, exc.orig) from None
        except SQLAlchemyError as exc:
            raise statement_error(conn, number, len(statements), statement, exc) from None


# --------------------------------------------------------------------------- declared constraints


@dataclass(frozen=True)
class _Declared:
    table: str
    kind: str  # "primary key", "foreign key", "unique", "check"
    columns: tuple[str, ...]
    name: str | None


def _ident(node: Any) -> str:
    return node.name if isinstance(node, exp.Expression) else str(node)


def _declared_constraints(sql: str, dialect: str) -> list[_Declared] | None:
    """Every PK/FK/UNIQUE/CHECK constraint of ``sql`` with its explicit name or None;
    None when a CREATE TABLE / ALTER TABLE statement cannot be parsed."""
    read = sqlglot_dialect(dialect)
    found: list[_Declared] = []
    for statement in split_statements(sql, dialect):
        try:
            tree = sqlglot.parse_one(statement, read=read)
        except SqlglotError:
            if re.match(r"\s*(create|alter)\s+(\w+\s+)*table\b", statement, re.I):
                return None
            continue
        if isinstance(tree, exp.Create) and (tree.kind or "").upper() == "TABLE" and isinstance(
                tree.this, exp.Schema):
            table = tree.this.this.name.lower()
            for item in tree.this.expressions:
                found += _from_schema_item(table, item)
        elif isinstance(tree, exp.Alter) and isinstance(tree.this, exp.Table):
            table = tree.this.name.lower()
            for action in tree.args.get("actions") or []:
                if isinstance(action, exp.AddConstraint):
                    for item in action.expressions:
                        found += _from_schema_item(table, item)
    return found


def _from_schema_item(table: str, item: exp.Expression, name: str | None = None) -> list[_Declared]:
    if isinstance(item, exp.ColumnDef):
        found = []
        column = item.name.lower()
        for constraint in item.args.get("constraints") or []:
            cname = _ident(constraint.this) if constraint.args.get("this") else None
            kind = constraint.args.get("kind")
            if isinstance(kind, exp.PrimaryKeyColumnConstraint):
                found.append(_Declared(table, "primary key", (column,), cname))
            elif isinstance(kind, exp.UniqueColumnConstraint):
                found.append(_Declared(table, "unique", (column,), cname))
            elif isinstance(kind, exp.Reference):
                found.append(_Declared(table, "foreign key", (column,), cname))
            elif isinstance(kind, exp.CheckColumnConstraint):
                found.append(_Declared(table, "check", _check_columns(kind), cname))
        return found
    if isinstance(item, exp.Constraint):
        cname = _ident(item.this)
        return [d for sub in item.expressions for d in _from_schema_item(table, sub, cname)]
    if isinstance(item, exp.PrimaryKey):
        return [_Declared(table, "primary key", _names(item.expressions), name)]
    if isinstance(item, exp.ForeignKey):
        return [_Declared(table, "foreign key", _names(item.expressions), name)]
    if isinstance(item, exp.UniqueColumnConstraint):
        schema = item.this
        columns = _names(schema.expressions) if isinstance(schema, exp.Schema) else ()
        return [_Declared(table, "unique", columns, name)]
    if isinstance(item, exp.CheckColumnConstraint):
        return [_Declared(table, "check", _check_columns(item), name)]
    return []


def _names(nodes: Iterable[Any]) -> tuple[str, ...]:
    return tuple(_ident(n).lower() for n in nodes)


def _check_columns(node: exp.Expression) -> tuple[str, ...]:
    return tuple(sorted({c.name.lower() for c in node.find_all(exp.Column)}))


def _columns_of_expression(sqltext: str, dialect: str) -> list[str]:
    try:
        tree = sqlglot.parse_one(sqltext, read=sqlglot_dialect(dialect))
    except SqlglotError:
        return []
    return sorted({c.name for c in tree.find_all(exp.Column)})


def _mark_explicit(tables: list[TableInfo], declared: list[_Declared] | None, dialect: str) -> None:
    """Decide for every constraint whether it was named explicitly: from the declared
    SQL when there is one, otherwise from what the dialect's reflection shows."""
    pool = list(declared) if declared is not None else None
    for table in tables:
        for kind, info in table.constraints():
            match = _take_match(pool, table.name, kind, info) if pool is not None else None
            if match is not None:
                info.explicit = match.name is not None
                if dialect == "duckdb":
                    info.name = match.name  # DuckDB keeps no names; show the declared one
            elif dialect == "duckdb":
                info.name, info.explicit = None, None
            elif dialect == "postgresql":
                info.explicit = info.name is not None and not _pg_default_name(table.name, kind, info)
            else:
                info.explicit = info.name is not None


def _take_match(pool: list[_Declared], table: str, kind: str, info: Any) -> _Declared | None:
    columns = tuple(c.lower() for c in info.columns)
    if kind == "check":
        columns = tuple(sorted(columns))
    candidates = [d for d in pool if d.table == table.lower() and d.kind == kind]
    exact = [d for d in candidates if d.columns == columns or kind == "primary key"]
    if not exact and kind == "check" and len(candidates) == 1:
        exact = candidates
    if exact:
        pool.remove(exact[0])
        return exact[0]
    return None


def _pg_object_name(name1: str, name2: str | None, label: str) -> str:
    # PostgreSQL's makeObjectName: fit name1_name2_label into 63 bytes, trimming the longer part
    overhead = len(label) + 1 + (1 if name2 else 0)
    n1, n2 = len(name1), len(name2 or "")
    while n1 + n2 > 63 - overhead:
        if n1 > n2:
            n1 -= 1
        else:
            n2 -= 1
    parts = [name1[:n1]] + ([name2[:n2]] if name2 else [])
    return "_".join(parts + [label])


def _pg_default_name(table: str, kind: str, info: Any) -> bool:
    """Whether ``info.name`` is the name PostgreSQL generates for an unnamed constraint."""
    name = info.name or ""
    if kind == "primary key":
        bases = [_pg_object_name(table, None, "pkey")]
    elif kind == "foreign key":
        bases = [_pg_object_name(table, "_".join(info.columns), "fkey")]
    elif kind == "unique":
        bases = [_pg_object_name(table, "_".join(info.columns), "key")]
    else:
        bases = [_pg_object_name(table, None, "check")]
        bases += [_pg_object_name(table, c, "check") for c in info.columns]
        if not info.columns and re.fullmatch(re.escape(table[:30]) + r".*_check\d*", name):
            return True
    return any(name == base or re.fullmatch(re.escape(base) + r"\d+", name) for base in bases)


# --------------------------------------------------------------------------- reflection


def reflect(bind: Engine | Connection, *, declared_sql: str | None = None) -> SchemaReport:
    """Describe the live database (without the tool's own tables) with storage-standards
    findings. ``declared_sql``, when given, tells which constraints were named explicitly."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return reflect(conn, declared_sql=declared_sql)
    dialect = bind.dialect.name
    notes: list[str] = []
    try:
        if dialect == "duckdb":
            tables = _reflect_duckdb(bind)
            if declared_sql is None:
                notes.append("DuckDB does not store constraint names: unnamed constraints can "
                             "only be told from the declared SQL")
        else:
            tables = _reflect_inspector(bind, notes)
    except (UnsupportedByDialect, DatabaseError):
        raise
    except NotImplementedError as exc:
        raise UnsupportedByDialect(f"{dialect}: SQLAlchemy cannot reflect this database ({exc})",
                                   hint="validate the schema on SQLite or PostgreSQL") from None
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot reflect the {dialect} schema: "
                            f"{driver_reason(exc, bind.engine.url)}",
                            hint="check the connection and the role's catalog privileges") from None
    declared = _declared_constraints(declared_sql, dialect) if declared_sql is not None else None
    if declared_sql is not None and declared is None:
        notes.append("the declared SQL could not be parsed completely: unnamed constraints were "
                     "judged from reflected names")
    _mark_explicit(tables, declared, dialect)
    return SchemaReport(tables=tables, findings=_findings(tables), dialect=dialect, notes=notes)


def _reflect_inspector(conn: Connection, notes: list[str]) -> list[TableInfo]:
    insp = inspect(conn)
    dialect = conn.dialect.name
    tables = []
    for name in user_tables(conn):
        info = TableInfo(name)
        for col in insp.get_columns(name):
            default = col.get("default")
            info.columns.append(ColumnInfo(col["name"], _type_text(col["type"], conn),
                                           bool(col["nullable"]),
                                           None if default is None else str(default)))
        pk = insp.get_pk_constraint(name) or {}
        if pk.get("constrained_columns"):
            info.primary_key = PrimaryKeyInfo(list(pk["constrained_columns"]), pk.get("name"))
        for fk in insp.get_foreign_keys(name):
            info.foreign_keys.append(ForeignKeyInfo(list(fk["constrained_columns"]),
                                                    fk["referred_table"], list(fk["referred_columns"]),
                                                    fk.get("name")))
        try:
            uniques = insp.get_unique_constraints(name)
        except NotImplementedError:
            uniques = []
            _note(notes, f"{dialect}: unique constraints cannot be reflected")
        backing = set()
        for uq in uniques:
            info.unique_constraints.append(UniqueInfo(list(uq["column_names"]), uq.get("name")))
            backing.add(uq.get("name"))
        try:
            checks = insp.get_check_constraints(name)
        except NotImplementedError:
            checks = []
            _note(notes, f"{dialect}: check constraints cannot be reflected")
        for ck in checks:
            sqltext = str(ck.get("sqltext") or "")
            info.check_constraints.append(CheckInfo(sqltext, _columns_of_expression(sqltext, dialect),
                                                    ck.get("name")))
        for ix in insp.get_indexes(name):
            if ix.get("duplicates_constraint") or (ix.get("name") in backing and ix.get("unique")):
                continue  # the index PostgreSQL builds for a UNIQUE constraint
            expressions = ix.get("expressions") or []
            columns = [c if c is not None else (expressions[i] if i < len(expressions) else "?")
                       for i, c in enumerate(ix.get("column_names") or [])]
            info.indexes.append(IndexInfo(ix.get("name"), columns, bool(ix.get("unique"))))
        tables.append(info)
    return tables


def _note(notes: list[str], note: str) -> None:
    if note not in notes:
        notes.append(note)


def _type_text(type_: Any, conn: Connection) -> str:
    try:
        return type_.compile(dialect=conn.dialect)
    except Exception:  # types a dialect cannot render (NullType) — show their Python repr
        return str(type_) if not isinstance(type_, sqltypes.NullType) else "NULL"


def _reflect_duckdb(conn: Connection) -> list[TableInfo]:
    def rows(query: str) -> list:
        return list(conn.exec_driver_sql(query).mappings())

    schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
    database = conn.exec_driver_sql("SELECT current_database()").scalar()
    where = (f"database_name = '{str(database).replace(chr(39), chr(39) * 2)}' "
             f"AND schema_name = '{str(schema).replace(chr(39), chr(39) * 2)}'")
    names = [r["table_name"] for r in rows(
        f"SELECT table_name FROM duckdb_tables() WHERE {where} AND NOT temporary "
        "ORDER BY table_name")]
    tables = {n: TableInfo(n) for n in names if n not in TOOL_TABLES}
    for r in rows(f"SELECT table_name, column_name, data_type, is_nullable, column_default "
                  f"FROM duckdb_columns() WHERE {where} ORDER BY table_name, column_index"):
        if r["table_name"] in tables:
            tables[r["table_name"]].columns.append(ColumnInfo(
                r["column_name"], r["data_type"], bool(r["is_nullable"]), r["column_default"]))
    for r in rows(f"SELECT table_name, constraint_type, constraint_column_names AS cols, "
                  f"expression, referenced_table, referenced_column_names AS refcols "
                  f"FROM duckdb_constraints() WHERE {where} ORDER BY constraint_index"):
        table = tables.get(r["table_name"])
        if table is None:
            continue
        kind, cols = r["constraint_type"], list(r["cols"] or [])
        if kind == "PRIMARY KEY":
            table.primary_key = PrimaryKeyInfo(cols)
            for column in table.columns:
                if column.name in cols:
                    column.nullable = False
        elif kind == "FOREIGN KEY":
            table.foreign_keys.append(ForeignKeyInfo(cols, r["referenced_table"], list(r["refcols"] or [])))
        elif kind == "UNIQUE":
            table.unique_constraints.append(UniqueInfo(cols))
        elif kind == "CHECK":
            sqltext = _strip_parens(r["expression"] or "")
            table.check_constraints.append(CheckInfo(sqltext, sorted(cols)))
    for r in rows(f"SELECT table_name, index_name, is_unique, expressions FROM duckdb_indexes() "
                  f"WHERE {where} ORDER BY index_name"):
        table = tables.get(r["table_name"])
        if table is not None:
            columns = [c.strip().strip('"') for c in (r["expressions"] or "").strip("[]").split(",")
                       if c.strip()]
            table.indexes.append(IndexInfo(r["index_name"], columns, bool(r["is_unique"])))
    return [tables[n] for n in sorted(tables)]


def _strip_parens(text_: str) -> str:
    text_ = text_.strip()
    while text_.startswith("(") and text_.endswith(")") and _balanced(text_[1:-1]):
        text_ = text_[1:-1].strip()
    return text_


def _balanced(text_: str) -> bool:
    depth = 0
    for ch in text_:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


# --------------------------------------------------------------------------- findings


def _findings(tables: list[TableInfo]) -> list[Finding]:
    findings: list[Finding] = []
    for table in tables:
        if table.primary_key is None:
            findings.append(Finding("error", table.name, "no-primary-key",
                                    f"{table.name} has no primary key"))
        for fk in table.foreign_keys:
            if not _leads_some_key(table, fk.columns):
                cols = ", ".join(fk.columns)
                findings.append(Finding(
                    "warning", table.name, "fk-without-index",
                    f"{table.name}({cols}) → {fk.referred_table} has no index on the referencing "
                    f"columns: add CREATE INDEX ix_{table.name}_{'_'.join(fk.columns)} "
                    f"ON {table.name} ({cols})"))
        for kind, info in table.constraints():
            if info.explicit is False:
                what = _describe(kind, info)
                shown = f" (the database calls it {info.name})" if info.name else ""
                findings.append(Finding("warning", table.name, "unnamed-constraint",
                                        f"{table.name}: {what} has no explicit name{shown}; "
                                        "name it with CONSTRAINT <name>"))
    return findings


def _describe(kind: str, info: Any) -> str:
    if kind == "check":
        return f"CHECK ({info.sqltext})"
    if kind == "foreign key":
        return f"FOREIGN KEY ({', '.join(info.columns)}) → {info.referred_table}"
    return f"{kind.upper()} ({', '.join(info.columns)})"


def _leads_some_key(table: TableInfo, columns: list[str]) -> bool:
    wanted = set(columns)
    keys = [ix.columns for ix in table.indexes] + [uq.columns for uq in table.unique_constraints]
    if table.primary_key:
        keys.append(table.primary_key.columns)
    return any(len(key) >= len(columns) and set(key[:len(columns)]) == wanted for key in keys)


# --------------------------------------------------------------------------- declared schema


def validate(sql: str, like: Engine) -> SchemaReport:
    """Apply ``sql`` to an empty scratch database of ``like``'s dialect and reflect it there.

    A DDL error raises DatabaseError; the live database behind ``like`` is never touched."""
    if not split_statements(sql, like.dialect.name):
        raise DatabaseError("the declared schema is empty",
                            hint="write CREATE TABLE statements in the cell or file")
    with scratch_engine(like) as scratch:
        apply_sql(scratch, sql)
        return reflect(scratch, declared_sql=sql)


def declared_metadata(sql: str, like: Engine) -> MetaData:
    """The declared schema as MetaData (reflected from a scratch database, tool tables left
    out) with :data:`NAMING_CONVENTION`; constraints declared without a name get the
    convention's name, so Alembic renders and compares stable names on every dialect."""
    with scratch_engine(like) as scratch:
        apply_sql(scratch, sql)
        with scratch.connect() as conn:
            report = reflect(conn, declared_sql=sql)
            # reflect without the convention (its %(constraint_name)s refuses unnamed CHECKs),
            # name every constraint, then set the convention for what Alembic adds later
            metadata = MetaData()
            if conn.dialect.name == "duckdb":
                _metadata_from_report(metadata, report, conn)
            else:
                try:
                    metadata.reflect(bind=conn, only=user_tables(conn))
                except SQLAlchemyError as exc:
                    raise DatabaseError(
                        f"cannot reflect the declared schema: "
                        f"{driver_reason(exc, like.url)}") from None
    _name_constraints(metadata, report)
    metadata.naming_convention = dict(NAMING_CONVENTION)
    return metadata


def _metadata_from_report(metadata: MetaData, report: SchemaReport, conn: Connection) -> None:
    # duckdb-engine's inspector cannot read DuckDB's catalog, so build the tables from our own reflection
    for info in report.tables:
        items: list[Any] = [
            Column(c.name, _duckdb_type(c.type, conn), nullable=c.nullable, autoincrement=False,
                   server_default=text(c.default) if c.default is not None else None)
            for c in info.columns]
        if info.primary_key:
            items.append(PrimaryKeyConstraint(*info.primary_key.columns, name=info.primary_key.name))
        for fk in info.foreign_keys:
            items.append(ForeignKeyConstraint(fk.columns, [f"{fk.referred_table}.{c}" for c in
                                                           fk.referred_columns], name=fk.name))
        for uq in info.unique_constraints:
            items.append(UniqueConstraint(*uq.columns, name=uq.name))
        for ck in info.check_constraints:
            items.append(CheckConstraint(ck.sqltext, name=ck.name or _check_name(ck)))
        table = Table(info.name, metadata, *items)
        for ix in info.indexes:
            Index(ix.name, *[table.c[c] if c in table.c else text(c) for c in ix.columns],
                  unique=ix.unique)


def _duckdb_type(type_text: str, conn: Connection) -> Any:
    match = re.fullmatch(r"\s*([A-Za-z ]+?)\s*(?:\(([\d,\s]+)\))?\s*", type_text)
    if not match:
        return sqltypes.NullType()
    base = match.group(1).lower()
    base = {"decimal": "numeric", "double": "double precision", "blob": "bytea",
            "timestamp with time zone": "timestamptz"}.get(base, base)
    cls = conn.dialect.ischema_names.get(base)
    if cls is None:
        return sqltypes.NullType()
    args = [int(a) for a in (match.group(2) or "").split(",") if a.strip()]
    try:
        return cls(*args)
    except TypeError:
        return cls()


def _check_name(check: CheckInfo) -> str:
    return "_".join(check.columns) or "check"


def _name_constraints(metadata: MetaData, report: SchemaReport) -> None:
    """Keep explicit names as they are (``conv`` stops the convention re-prefixing them);
    give implicit ones the convention's name."""
    for info in report.tables:
        table = metadata.tables.get(info.name)
        if table is None:
            continue
        used: set[str] = set()

        def unique_name(base: str, used: set[str] = used) -> conv:
            name, n = base, 1
            while name in used:
                n += 1
                name = f"{base}_{n}"
            used.add(name)
            return conv(name)

        pk = table.primary_key
        if pk is not None and len(pk.columns):
            explicit = info.primary_key.explicit if info.primary_key else None
            pk.name = unique_name(pk.name if explicit and pk.name else f"pk_{table.name}")
        for fk in sorted(table.foreign_key_constraints, key=lambda c: c.column_keys):
            match = _find(info.foreign_keys, fk.column_keys)
            if match is not None and match.explicit and fk.name:
                fk.name = unique_name(str(fk.name))
            else:
                referred = fk.elements[0].target_fullname.split(".")[-2] if fk.elements else "x"
                fk.name = unique_name(f"fk_{table.name}_{fk.column_keys[0]}_{referred}")
        for constraint in list(table.constraints):
            if isinstance(constraint, UniqueConstraint) and not isinstance(
                    constraint, PrimaryKeyConstraint):
                cols = [c.name for c in constraint.columns]
                match = _find(info.unique_constraints, cols)
                if match is not None and match.explicit and constraint.name:
                    constraint.name = unique_name(str(constraint.name))
                else:
                    constraint.name = unique_name(f"uq_{table.name}_{cols[0]}")
        checks = [c for c in table.constraints if isinstance(c, CheckConstraint)]
        pending = list(info.check_constraints)
        for constraint in sorted(checks, key=lambda c: str(c.sqltext)):
            match = next((ck for ck in pending if ck.name and ck.name == constraint.name), None)
            match = match or next((ck for ck in pending if ck.sqltext == str(constraint.sqltext)),
                                  None)
            if match is not None:
                pending.remove(match)
            if match is not None and match.explicit and constraint.name:
                constraint.name = unique_name(str(constraint.name))
            else:
                hint = _check_name(match) if match is not None else "check"
                constraint.name = unique_name(f"ck_{table.name}_{hint}")


def _find(infos: Iterable[Any], columns: Iterable[str]) -> Any:
    wanted = list(columns)
    return next((i for i in infos if list(i.columns) == wanted), None)
