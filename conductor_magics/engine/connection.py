"""Connections: which URL, the embedded default, password masking, per-dialect set-up."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from ..errors import DatabaseError, UnsupportedByDialect

URL_ENV = "CONDUCTOR_DATABASE_URL"
EMBEDDED_FILE = "dev.sqlite"
#: files next to the embedded database that must stay out of git
EMBEDDED_FILES = ("dev.sqlite", "dev.sqlite-journal", "dev.sqlite-wal", "dev.sqlite-shm")

#: dialects whose DDL runs inside transactions (a failed migration rolls back)
TRANSACTIONAL_DDL = {"postgresql", "duckdb", "mssql"}


@dataclass
class Connected:
    """A live engine with where its URL came from."""

    engine: Engine
    source: str  # "argument", "environment", "embedded" or "jupysql"

    @property
    def url(self) -> URL:
        return self.engine.url

    @property
    def masked_url(self) -> str:
        return mask(self.engine.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def to_json(self) -> dict:
        return {"url": self.masked_url, "dialect": self.dialect, "source": self.source,
                "transactional_ddl": has_transactional_ddl(self.engine)}


def mask(url: str | URL) -> str:
    """The URL with its password shown as ``***``."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", str(url))
    return parsed.render_as_string(hide_password=True)


def scrub(text: str, *urls: str | URL | None) -> str:
    """``text`` with every password of ``urls`` (and any ``user:pw@`` in URLs) replaced."""
    for url in urls:
        if url is None:
            continue
        try:
            password = (make_url(url) if isinstance(url, str) else url).password
        except ArgumentError:
            password = None
        if password:
            text = text.replace(str(password), "***")
    return re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", text)


def resolve_url(url: str | None, embedded: Path | None) -> tuple[str, str]:
    """(url, source): the argument, else ``$CONDUCTOR_DATABASE_URL``, else the embedded
    SQLite file at ``embedded`` (``storages/<id>/dev.sqlite``)."""
    if url:
        return url, "argument"
    env = os.environ.get(URL_ENV)
    if env:
        return env, "environment"
    if embedded is None:
        raise DatabaseError("no database URL and no component for the embedded default",
                            hint=f"pass --url URL, set {URL_ENV}, or name a component")
    return f"sqlite:///{embedded}", "embedded"


def _sqlite_connect(foreign_keys: bool):
    def on_connect(dbapi_connection, _record) -> None:
        # Python's sqlite3 opens transactions only before INSERT/UPDATE/DELETE, so DDL
        # would autocommit and SAVEPOINTs misbehave. Take over: the driver never begins
        # on its own, and _sqlite_begin emits BEGIN when SQLAlchemy starts a transaction
        # (the recipe in SQLAlchemy's pysqlite documentation).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # SQLite ships with foreign keys off; the tool turns them on for its connections.
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.close()
    return on_connect


#: execution option: SQLite transactions of this connection start with BEGIN IMMEDIATE,
#: taking the write lock at once (others wait or fail) instead of at the first write
SQLITE_BEGIN_IMMEDIATE = "conductor_sqlite_begin_immediate"


def _sqlite_begin(conn) -> None:
    immediate = conn.get_execution_options().get(SQLITE_BEGIN_IMMEDIATE)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str | URL, *, sqlite_foreign_keys: bool = True, **kwargs) -> Engine:
    """An Engine for ``url`` with the tool's per-dialect set-up.

    SQLite: foreign keys enforced (``sqlite_foreign_keys=False`` for steps that rebuild
    tables, such as Alembic batch migrations; PRAGMA foreign_keys cannot change inside a
    transaction) and real transactions, so DDL is transactional and SAVEPOINTs work.
    """
    try:
        engine = create_engine(url, **kwargs)
    except NoSuchModuleError as exc:
        raise UnsupportedByDialect(f"no SQLAlchemy dialect for {mask(url)}: {exc}",
                                   hint="install the dialect's package (e.g. pip install "
                                        "'conductor-magics[postgres]' or '[duckdb]')") from None
    except ArgumentError as exc:
        raise DatabaseError(f"not a database URL: {scrub(str(exc), str(url))}",
                            hint="e.g. postgresql+psycopg://user@host/db or sqlite:///file.db") from None
    except ModuleNotFoundError as exc:
        raise UnsupportedByDialect(f"the driver for {mask(url)} is not installed ({exc.name})",
                                   hint="install it, e.g. pip install 'psycopg[binary]'") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect(sqlite_foreign_keys))
        event.listen(engine, "begin", _sqlite_begin)
        database = engine.url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    return engine


def connect(url: str | None = None, embedded: Path | None = None) -> Connected:
    """Resolve the URL, create the engine and check it answers."""
    resolved, source = resolve_url(url, embedded)
    engine = make_engine(resolved)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # the driver's own error types vary by dialect
        engine.dispose()
        raise DatabaseError(f"cannot connect to {mask(resolved)}: {first_line(scrub(str(exc), resolved))}",
                            hint="check the server is running and the URL is right") from None
    return Connected(engine, source)


def has_transactional_ddl(engine: Engine) -> bool:
    return engine.dialect.name in TRANSACTIONAL_DDL


def first_line(text: str) -> str:
    """The first non-empty line of a driver's multi-line error message."""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return str(text).strip()


#: dialects whose SQLAlchemy reflection cannot read constraints (duckdb-engine issues
#: PostgreSQL catalog queries DuckDB does not answer: REGCLASS, pg_collation)
REFLECTION_UNSUPPORTED = {"duckdb"}


def require_reflection(bind, step: str) -> None:
    """Raise a plain UnsupportedByDialect when ``step`` needs schema reflection the
    connected dialect cannot do."""
    name = bind.dialect.name
    if name in REFLECTION_UNSUPPORTED:
        raise UnsupportedByDialect(
            f"{step} is not supported on {name}: its SQLAlchemy dialect cannot reflect "
            "constraints (foreign keys, checks)",
            hint="run this step against SQLite or PostgreSQL; SQL cells, transactions and "
                 "row fingerprints work on DuckDB")


@contextmanager
def connection_of(bind: Engine | Connection) -> Iterator[Connection]:
    """A Connection for ``bind``: a new one from an Engine (closed afterwards), or ``bind`` itself."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            yield conn
    else:
        yield bind


def statement_error(conn: Connection, number: int, total: int, statement: str,
                     error: BaseException) -> DatabaseError:
    """The DatabaseError for statement ``number`` of ``total`` failing: which statement
    (first line), the driver's first error line, scrubbed, and what was rolled back."""
    url = conn.engine.url
    reason = first_line(scrub(str(error), url))
    where = first_line(scrub(statement, url))
    if re.search(r"(within|inside) a transaction", reason, re.I):
        hint = ("this statement cannot run inside a transaction (e.g. VACUUM, CREATE INDEX CONCURRENTLY): "
                "run it with the database's own client; nothing was applied")
    elif has_transactional_ddl(conn.engine) or conn.dialect.name == "sqlite":
        hint = "the statements ran in one transaction, which was rolled back: nothing was applied"
    else:
        hint = (f"the transaction was rolled back, but {conn.dialect.name} commits DDL statement "
                f"by statement: DDL before statement {number} may have been applied")
    return DatabaseError(f"statement {number} of {total} failed ({where}): {reason}", hint=hint)
