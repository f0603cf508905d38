"""The verification gate's automated checks per phase kind, against a live database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from helpers.sample_ddl import V1, V2

from conductor_magics.engine.sample import seed
from conductor_magics.session import Session
from conductor_magics.workspace import Workspace


@pytest.fixture
def db(dialect: str, request, project: Path, monkeypatch):
    monkeypatch.delenv("CONDUCTOR_DATABASE_URL", raising=False)
    url = request.getfixturevalue("pg_url") if dialect == "postgresql" else None
    session = Session(Workspace(project / "storage-conductor"), user="tester")
    live = session.database("orders_db", url=url)
    live.schema_declare(V1)
    live.migrate("new", message="v1")
    live.migrate("up")
    seed(live.engine, rows=25)
    yield live
    live.engine.dispose()


def statuses(results) -> dict[str, str]:
    return {r.name: r.status for r in results}


def test_migration_checks_pass_then_catch_a_database_behind_head(db):
    results = db.run_checks("migration")
    assert results and all(r.status in ("pass", "skip") for r in results), [r.to_json() for r in results]
    db.schema_declare(V2)
    db.migrate("new", message="v2")  # a new head the live database has not reached
    behind = statuses(db.run_checks("migration"))
    assert "fail" in behind.values()
    assert any("head" in name and status == "fail" for name, status in behind.items()), behind


def test_core_and_integrity_checks_pass_on_a_sound_database(db):
    core = db.run_checks("core")
    assert core and all(r.status == "pass" for r in core), [r.to_json() for r in core]
    integrity = db.run_checks("integrity")
    assert integrity and all(r.status == "pass" for r in integrity), [r.to_json() for r in integrity]


def test_schema_checks_save_the_er_diagram(db):
    results = db.run_checks("schema")
    assert all(r.status == "pass" for r in results)
    assert "erDiagram" in (db.component.dir / "schema.md").read_text()


def test_integrity_checks_find_orphans_written_with_foreign_keys_off(project: Path, monkeypatch):
    monkeypatch.delenv("CONDUCTOR_DATABASE_URL", raising=False)
    session = Session(Workspace(project / "storage-conductor"), user="tester")
    live = session.database("orders_db")
    live.schema_declare(V1)
    live.migrate("new", message="v1")
    live.migrate("up")
    # Another program that never turned PRAGMA foreign_keys on writes an orphan.
    with sqlite3.connect(live.component.dir / "dev.sqlite") as raw:
        raw.execute("INSERT INTO orders (id, customer_id, status, total_cents) VALUES (1, 999, 'paid', 10)")
    results = live.run_checks("integrity")
    failed = [r for r in results if r.status == "fail"]
    assert failed and "orders" in failed[0].detail
    live.engine.dispose()


def test_phases_without_automated_checks_are_manual(db):
    assert db.run_checks("manual") == []
    assert db.run_checks("documentation") == []
