"""SQL cells and transactions: run statements in one transaction, timed, last result as a frame.

``run_sql`` runs a batch of statements (split per dialect, raw text kept where
sqlglot cannot parse) in one transaction. ``run_transaction`` runs a body of SQL
or Python (with ``conn`` inside the transaction) at a requested isolation level
and reports the level the database really applied.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import sys
import time
import traceback
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, exc

from ..errors import ConductorError, DatabaseError, UnsupportedByDialect, option
from .connection import driver_reason, first_line, scrub, statement_error
from .schema import split_statements
from .timeouts import statement_timeout

#: isolation levels a user may ask for (normalised spelling → SQLAlchemy's name)
ISOLATION_LEVELS = {
    "read uncommitted": "READ UNCOMMITTED",
    "read committed": "READ COMMITTED",
    "repeatable read": "REPEATABLE READ",
    "serializable": "SERIALIZABLE",
}

#: rows shown by ``to_text``
TEXT_ROWS = 50


# --------------------------------------------------------------------------- results


def json_value(value: Any) -> Any:
    """A JSON-safe form of one cell value."""
    if value is None:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral() and abs(value) < 2**53 else float(value)
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta | pd.Timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item"):  # numpy scalars
        return json_value(value.item())
    return str(value)


def frame_json(frame: pd.DataFrame | None) -> dict | None:
    """``{"columns": [...], "rows": [[...], ...]}`` with JSON-safe values."""
    if frame is None:
        return None
    return {"columns": [str(c) for c in frame.columns],
            "rows": [[json_value(v) for v in row] for row in frame.itertuples(index=False, name=None)]}


def frame_text(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(no rows)" if len(frame.columns) else "(no columns)"
    return frame.to_string(index=False, max_rows=TEXT_ROWS)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass
class SqlResult:
    """What a SQL cell did: statements run, the last statement's rows, time taken."""

    statements: int
    frame: pd.DataFrame | None
    rowcount: int | None
    seconds: float

    def summary(self) -> str:
        parts = [f"{_count(self.statements, 'statement')} committed"]
        if self.frame is not None:
            parts.append(f"{_count(len(self.frame), 'row')} returned")
        elif self.rowcount is not None:
            parts.append(f"{_count(self.rowcount, 'row')} affected")
        parts.append(f"{self.seconds:.3f} s")
        return ", ".join(parts)

    def to_json(self) -> dict:
        return {"statements": self.statements, "rowcount": self.rowcount,
                "seconds": round(self.seconds, 6), "result": frame_json(self.frame)}

    def to_text(self) -> str:
        text = self.summary()
        if self.frame is not None:
            text += "\n" + frame_text(self.frame)
        return text


@dataclass
class TxnResult:
    """One transaction: the isolation level the database reported, commit, time, rows."""

    isolation: str | None
    committed: bool
    seconds: float
    frame: pd.DataFrame | None
    statements: int | None = None  # SQL bodies only

    def summary(self) -> str:
        state = "committed" if self.committed else "rolled back"
        parts = [f"transaction {state}",
                 f"isolation {self.isolation}" if self.isolation else "isolation level not reported"]
        if self.statements is not None:
            parts.append(_count(self.statements, "statement"))
        if self.frame is not None:
            parts.append(f"{_count(len(self.frame), 'row')} returned")
        parts.append(f"{self.seconds:.3f} s")
        return ", ".join(parts)

    def to_json(self) -> dict:
        return {"isolation": self.isolation, "committed": self.committed,
                "statements": self.statements, "seconds": round(self.seconds, 6),
                "result": frame_json(self.frame)}

    def to_text(self) -> str:
        text = self.summary()
        if self.frame is not None:
            text += "\n" + frame_text(self.frame)
        return text


# --------------------------------------------------------------------------- running statements


def _statements(sql: str, dialect: str) -> list[str]:
    statements = split_statements(sql, dialect)
    if not statements:
        raise ConductorError("no SQL statement to run", hint="write one or more statements in the cell or file")
    return statements


def _run_statements(conn: Connection, statements: list[str]) -> tuple[pd.DataFrame | None, int | None]:
    """Run each statement; the last one's rows (if any) and row count. Raises
    DatabaseError naming the failing statement; the caller rolls back."""
    frame: pd.DataFrame | None = None
    rowcount: int | None = None
    raw = conn.execution_options(no_parameters=True)  # '%' and '?' in the SQL stay literal
    for number, statement in enumerate(statements, start=1):
        try:
            result = raw.exec_driver_sql(statement)
            if result.returns_rows:
                rows = result.fetchall()
                frame = pd.DataFrame([tuple(r) for r in rows], columns=list(result.keys()))
                rowcount = len(rows)
            else:
                frame = None
                rowcount = result.rowcount if result.rowcount is not None and result.rowcount >= 0 else None
                result.close()
        except exc.DBAPIError as error:
            raise statement_error(conn, number, len(statements), statement, error.orig) from None
        except exc.SQLAlchemyError as error:
            raise statement_error(conn, number, len(statements), statement, error) from None
    return frame, rowcount


def run_sql(engine: Engine, sql: str, *, timeout: float | None = None) -> SqlResult:
    """Run the statements of ``sql`` in one transaction (commit at the end, roll back on the
    first error); the last statement's rows come back as a DataFrame with the elapsed time.
    Each statement may run ``timeout`` seconds (None: the default, 0: no limit; see
    :func:`~.timeouts.statement_timeout`)."""
    statements = _statements(sql, engine.dialect.name)
    started = time.perf_counter()
    try:
        with statement_timeout(engine, timeout), engine.connect() as conn, conn.begin():
            frame, rowcount = _run_statements(conn, statements)
    except exc.DBAPIError as error:  # connecting or committing failed
        raise DatabaseError(f"the SQL batch failed: {driver_reason(error, engine.url)}",
                            hint="nothing was committed") from None
    return SqlResult(len(statements), frame, rowcount, time.perf_counter() - started)


# --------------------------------------------------------------------------- transactions


def normalize_isolation(level: str) -> str:
    """``"Repeatable_Read"`` → ``"REPEATABLE READ"`` (SQLAlchemy's spelling)."""
    key = re.sub(r"[\s_-]+", " ", level.strip().lower())
    if key not in ISOLATION_LEVELS:
        raise ConductorError(f"unknown isolation level '{level}'",
                             hint="use one of: " + ", ".join(ISOLATION_LEVELS))
    return ISOLATION_LEVELS[key]


def reported_isolation(conn: Connection) -> str | None:
    """The isolation level the database says the current transaction runs at, lower case."""
    dialect = conn.dialect.name
    try:
        if dialect == "postgresql":
            return str(conn.exec_driver_sql("SHOW transaction_isolation").scalar()).lower()
        if dialect == "sqlite":
            flag = conn.exec_driver_sql("PRAGMA read_uncommitted").scalar()
            return "read uncommitted" if flag else "serializable"
        if dialect in ("mysql", "mariadb"):
            value = conn.exec_driver_sql("SELECT @@transaction_isolation").scalar()
            return str(value).replace("-", " ").lower()
        if dialect == "duckdb":
            return None  # one level only (snapshot isolation), nothing to ask
        return str(conn.get_isolation_level()).replace("_", " ").lower()
    except (exc.SQLAlchemyError, NotImplementedError):
        return None


def _set_isolation(conn: Connection, level: str) -> Connection:
    dialect = conn.dialect.name
    if dialect == "duckdb":
        raise UnsupportedByDialect(f"isolation level {level.lower()} is not supported on duckdb: DuckDB "
                                   "has one isolation level (snapshot isolation) and no way to choose one",
                                   hint=f"run the transaction without {option('isolation')}")
    try:
        allowed = conn.dialect.get_isolation_level_values(conn.connection.dbapi_connection)
    except (NotImplementedError, exc.SQLAlchemyError):
        allowed = None
    if allowed is not None and level not in allowed:
        offered = ", ".join(v.lower() for v in allowed if v != "AUTOCOMMIT")
        raise UnsupportedByDialect(f"isolation level {level.lower()} is not supported on {dialect}",
                                   hint=f"{dialect} offers: {offered}" if offered else None)
    try:
        return conn.execution_options(isolation_level=level)
    except (exc.ArgumentError, exc.DBAPIError) as error:
        text = str(getattr(error, "orig", None) or error)
        raise UnsupportedByDialect(f"isolation level {level.lower()} is not supported on {dialect}: "
                                   f"{first_line(scrub(text, conn.engine.url))}") from None


def run_transaction(engine: Engine, body: str, *, isolation: str | None = None, python: bool = False,
                    namespace: dict | None = None, timeout: float | None = None) -> TxnResult:
    """Run ``body`` in one transaction: commit on success, roll back on any error.

    SQL bodies run statement by statement; Python bodies run with ``conn`` (the
    Connection inside the transaction), ``pd`` and ``namespace``; a DataFrame left in
    ``result`` comes back as the frame, and names the body assigns are copied back into
    ``namespace`` after a commit. ``isolation`` is verified against what the database
    reports inside the transaction (PostgreSQL: ``SHOW transaction_isolation``). Each
    statement may run ``timeout`` seconds (None: the default, 0: no limit).
    """
    level = normalize_isolation(isolation) if isolation else None
    statements = None if python else _statements(body, engine.dialect.name)
    code = _compile(body) if python else None
    started = time.perf_counter()
    with statement_timeout(engine, timeout), engine.connect() as base:
        conn = _set_isolation(base, level) if level else base
        try:
            trans = conn.begin()
        except exc.DBAPIError as error:
            raise DatabaseError(f"cannot begin a transaction: {driver_reason(error, engine.url)}") \
                from None
        try:
            reported = reported_isolation(conn)
            if level and reported is not None and reported != level.lower():
                raise UnsupportedByDialect(
                    f"asked for isolation level {level.lower()} but {engine.dialect.name} runs the "
                    f"transaction at {reported}", hint="nothing was run")
            if python:
                frame, count = _run_python(conn, code, namespace), None
            else:
                frame, _ = _run_statements(conn, statements)
                count = len(statements)
            if not trans.is_active or not conn.in_transaction():
                raise ConductorError("the transaction body ended the transaction itself (commit or rollback)",
                                     hint="leave commit and rollback to txn: it commits when the body succeeds")
            trans.commit()
        except BaseException as error:
            if trans.is_active:
                trans.rollback()
            if isinstance(error, ConductorError | KeyboardInterrupt | SystemExit | GeneratorExit):
                raise
            if isinstance(error, exc.DBAPIError):
                raise DatabaseError(f"the transaction failed and was rolled back: "
                                    f"{driver_reason(error, engine.url)}") from None
            raise
    return TxnResult(reported, True, time.perf_counter() - started, frame, count)


def _compile(body: str):
    try:
        return compile(body, "<txn>", "exec")
    except SyntaxError as error:
        raise ConductorError(f"the transaction body is not valid Python (line {error.lineno}): {error.msg}",
                             hint="nothing was run") from None


def _run_python(conn: Connection, code, namespace: dict | None) -> pd.DataFrame | None:
    scope: dict[str, Any] = dict(namespace or {})
    scope.update(conn=conn, pd=pd)
    before = {k: id(v) for k, v in scope.items()}
    try:
        exec(code, scope)  # noqa: S102 - running the user's own cell is the point
    except Exception as error:
        line = _body_line(error)
        where = f" at line {line}" if line else ""
        message = driver_reason(error, conn.engine.url)
        kind = type(error).__name__
        text = f"the transaction body raised {kind}{where}: {message}"
        hint = "the transaction was rolled back: nothing was applied"
        if isinstance(error, exc.SQLAlchemyError):
            raise DatabaseError(text, hint=hint) from None
        raise ConductorError(text, hint=hint) from None
    if namespace is not None:
        for name, value in scope.items():
            if name in ("conn", "pd", "__builtins__") and name not in namespace:
                continue
            if name == "conn":
                continue  # the connection is closed once the transaction ends
            if before.get(name) != id(value):
                namespace[name] = value
    result = scope.get("result")
    return result if isinstance(result, pd.DataFrame) else None


def _body_line(error: BaseException) -> int | None:
    line = None
    for frame, lineno in traceback.walk_tb(error.__traceback__ or sys.exc_info()[2]):
        if frame.f_code.co_filename == "<txn>":
            line = lineno
    return line
