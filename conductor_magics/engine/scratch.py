"""Scratch databases of the same dialect: somewhere to try DDL and migrations safely.

SQLite and DuckDB: in memory. PostgreSQL: a temporary database on the same
server (dropped afterwards), or a temporary schema when the role may not
create databases.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text
from sqlalchemy.pool import StaticPool

from ..errors import DatabaseError, UnsupportedByDialect, option
from .connection import driver_reason, make_engine

#: dialects whose scratch database is in memory (one connection, kept by StaticPool)
_IN_MEMORY = {"sqlite": "sqlite://", "duckdb": "duckdb:///:memory:"}


@contextmanager
def scratch_engine(like: Engine) -> Iterator[Engine]:
    """An empty database of ``like``'s dialect, removed when the block ends."""
    dialect = like.dialect.name
    if dialect in _IN_MEMORY:
        engine = make_engine(_IN_MEMORY[dialect], poolclass=StaticPool)
        try:
            yield engine
        finally:
            engine.dispose()
    elif dialect == "postgresql":
        with _postgres_scratch(like) as engine:
            yield engine
    else:
        raise UnsupportedByDialect(
            f"scratch databases are not supported on {dialect}",
            hint=f"validate against SQLite or PostgreSQL, or point {option('url')} at a throw-away database")


@contextmanager
def _postgres_scratch(like: Engine) -> Iterator[Engine]:
    name = f"conductor_scratch_{secrets.token_hex(6)}"
    admin = make_engine(like.url, isolation_level="AUTOCOMMIT")
    try:
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            created = "database"
        except Exception:  # no CREATEDB privilege: fall back to a schema in the same database
            with admin.connect() as conn:
                conn.execute(text(f'CREATE SCHEMA "{name}"'))
            created = "schema"
    except Exception as exc:
        admin.dispose()
        raise DatabaseError(f"cannot create a scratch database or schema: "
                            f"{driver_reason(exc, like.url)}",
                            hint="the role needs CREATEDB, or CREATE on the database") from None
    if created == "database":
        engine = make_engine(like.url.set(database=name))
    else:
        engine = make_engine(like.url, connect_args={"options": f"-c search_path={name}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            if created == "database":
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            else:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()
