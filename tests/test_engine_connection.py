"""Connections: URL resolution, the embedded default, masking, per-dialect set-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from conductor_magics.engine.connection import (
    URL_ENV,
    connect,
    make_engine,
    mask,
    resolve_url,
    scrub,
)
from conductor_magics.errors import DatabaseError, UnsupportedByDialect
from conductor_magics.session import Session
from conductor_magics.workspace import Workspace


def test_mask_hides_the_password():
    masked = mask("postgresql+psycopg://app:s3cr3t-pw@db.example:5432/orders")
    assert masked == "postgresql+psycopg://app:***@db.example:5432/orders"
    assert mask("sqlite:///x.db") == "sqlite:///x.db"


def test_scrub_removes_passwords_from_messages():
    url = "postgresql+psycopg://app:s3cr3t-pw@h/db"
    message = f"could not connect: {url} said no (password s3cr3t-pw)"
    cleaned = scrub(message, url)
    assert "s3cr3t-pw" not in cleaned and "app:***@h" in cleaned


def test_resolution_order(tmp_path, monkeypatch):
    embedded = tmp_path / "dev.sqlite"
    monkeypatch.delenv(URL_ENV, raising=False)
    assert resolve_url(None, embedded) == (f"sqlite:///{embedded}", "embedded")
    monkeypatch.setenv(URL_ENV, "sqlite:///from-env.db")
    assert resolve_url(None, embedded) == ("sqlite:///from-env.db", "environment")
    assert resolve_url("sqlite:///arg.db", embedded) == ("sqlite:///arg.db", "argument")
    monkeypatch.delenv(URL_ENV)
    with pytest.raises(DatabaseError):
        resolve_url(None, None)


def test_sqlite_connections_enforce_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'fk.sqlite'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1


def test_unknown_dialect_and_bad_url_are_plain_errors():
    with pytest.raises(UnsupportedByDialect, match="no SQLAlchemy dialect"):
        make_engine("nosuchdb://u:pw-xyz@h/d")
    with pytest.raises(DatabaseError, match="not a database URL"):
        make_engine("this is not a url")


def test_connect_failure_never_shows_the_password(pg_server):
    url = pg_server.url().replace(pg_server.password, "wrong-pw-123456")
    with pytest.raises(DatabaseError) as info:
        connect(url)
    message = str(info.value)
    assert "wrong-pw-123456" not in message and pg_server.password not in message
    assert "***" in message


def test_connect_postgres_and_duckdb(pg_url, tmp_path):
    pg = connect(pg_url)
    assert pg.dialect == "postgresql" and "***" in pg.masked_url
    assert pg.to_json()["transactional_ddl"] is True
    duck = connect(f"duckdb:///{tmp_path / 'x.duckdb'}")
    assert duck.dialect == "duckdb"


def test_embedded_default_is_git_ignored(project: Path, monkeypatch):
    monkeypatch.delenv(URL_ENV, raising=False)
    session = Session(Workspace(project / "storage-conductor"), user="t")
    result = session.database("orders_db").connect()
    folder = project / "storage-conductor" / "storages" / "orders_db"
    assert result.data["source"] == "embedded"
    assert (folder / "dev.sqlite").exists()
    ignored = (folder / ".gitignore").read_text().splitlines()
    assert "dev.sqlite" in ignored and "dev.sqlite-wal" in ignored
    # a second connect adds nothing twice
    session.database("orders_db").connect()
    assert (folder / ".gitignore").read_text().splitlines() == ignored
