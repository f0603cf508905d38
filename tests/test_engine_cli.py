"""The live-engine commands end to end through the `conductor` CLI, on the embedded SQLite
default and on a real PostgreSQL with a password — which must never show up anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.cli import Runner, live_engine
from helpers.sample_ddl import V1, V2

from conductor_magics.engine.fingerprint import fingerprint
from conductor_magics.engine.sample import seed


@pytest.fixture
def run(dialect: str, request, project: Path) -> Runner:
    """The CLI on the example project: the embedded SQLite file, or a fresh PostgreSQL database."""
    return Runner(project, request.getfixturevalue("pg_url") if dialect == "postgresql" else None)


def test_declare_migrate_check_roundtrip(run: Runner, tmp_path: Path):
    (tmp_path / "v1.sql").write_text(V1)
    (tmp_path / "v2.sql").write_text(V2)
    run("implement", "orders_db", url=False)
    run("schema", "declare", "orders_db", "--file", str(tmp_path / "v1.sql"))
    created = json.loads(run("migrate", "new", "-m", "customers and orders", "--id", "orders_db",
                             "--json").stdout)
    assert created["revision"]
    run("migrate", "up", "--id", "orders_db")
    engine = live_engine(run)
    seed(engine, rows=30)
    before = fingerprint(engine)

    run("schema", "declare", "orders_db", "--file", str(tmp_path / "v2.sql"))
    second = json.loads(run("migrate", "new", "-m", "order notes", "--id", "orders_db", "--json").stdout)
    assert second["revision"] != created["revision"]
    run("migrate", "up", "--id", "orders_db")
    check = json.loads(run("migrate", "check", "--id", "orders_db", "--json").stdout)
    assert all(row["status"] in ("pass", "skip") for row in check["checks"]), check["checks"]
    assert any(row["status"] == "pass" for row in check["checks"])

    run("migrate", "down", "-1", "--id", "orders_db")
    after_down = fingerprint(engine)
    assert {t: p.rows for t, p in after_down.items()} == {t: p.rows for t, p in before.items()}
    assert after_down["customers"] == before["customers"]
    run("migrate", "up", "--id", "orders_db")
    current = json.loads(run("migrate", "current", "--id", "orders_db", "--json").stdout)
    assert current["current"] == second["revision"]

    history = json.loads(run("migrate", "history", "--id", "orders_db", "--json").stdout)
    assert len(history["history"]) == 2
    run("integrity", "orders_db")
    crud = json.loads(run("crud", "--id", "orders_db", "--json").stdout)
    assert {row["table"] for row in crud["crud"]} == {"customers", "orders"}
    assert fingerprint(engine) == fingerprint(engine)  # CRUD smoke rolled back: stable data
    engine.dispose()

    # an error from the database (a failing statement) is one line, scrubbed
    (tmp_path / "bad.sql").write_text("SELECT * FROM no_such_table;")
    run("sql", "--id", "orders_db", "--file", str(tmp_path / "bad.sql"), expect=1)
    assert_no_password(run)


def test_gate_runs_schema_checks_and_records_them(run: Runner, tmp_path: Path):
    (tmp_path / "v1.sql").write_text(V1)
    run("implement", "orders_db", url=False)
    run("schema", "declare", "orders_db", "--file", str(tmp_path / "v1.sql"))
    for ref in ("1.1.1", "1.1.2", "1.1", "1.2.1", "1.2.2", "1.2", "1.3.1", "1.3", "1.4", "1.5"):
        run("task", "done", "orders_db", ref, url=False)
    shown = json.loads(run("verify", "orders_db", "--phase", "1", "--run-checks", "--json").stdout)
    assert {c["status"] for c in shown["checks"]} == {"pass"}, shown["checks"]
    run("verify", "orders_db", "--phase", "1", "--run-checks", "--confirm", "schema reviewed")
    folder = run.project / "storage-conductor/storages/orders_db"
    log = json.loads((folder / "verification.json").read_text())
    assert log[-1]["checks"] and all(c["status"] == "pass" for c in log[-1]["checks"])
    assert "erDiagram" in (folder / "schema.md").read_text()
    assert_no_password(run)


def test_failed_check_blocks_the_gate_unless_waived(run: Runner, tmp_path: Path):
    no_pk = "CREATE TABLE audit_log (happened_at TIMESTAMP NOT NULL, what VARCHAR(100) NOT NULL);\n"
    (tmp_path / "v.sql").write_text(V1 + no_pk)
    run("implement", "orders_db", url=False)
    run("schema", "declare", "orders_db", "--file", str(tmp_path / "v.sql"))
    for ref in ("1.1.1", "1.1.2", "1.1", "1.2.1", "1.2.2", "1.2", "1.3.1", "1.3", "1.4", "1.5"):
        run("task", "done", "orders_db", ref, url=False)
    refused = run("verify", "orders_db", "--phase", "1", "--run-checks", "--confirm", "ok", expect=1)
    assert "every table has a primary key" in refused.stderr and "audit_log" in refused.stderr
    folder = run.project / "storage-conductor/storages/orders_db"
    assert not (folder / "verification.json").exists()
    run("verify", "orders_db", "--phase", "1", "--run-checks", "--confirm", "ok",
        "--waive", "every table has a primary key=append-only log, keyed by time")
    log = json.loads((folder / "verification.json").read_text())
    assert log[-1]["waivers"] == {"every table has a primary key": "append-only log, keyed by time"}


def assert_no_password(run: Runner) -> None:
    if not run.url:
        return
    from sqlalchemy import make_url

    password = make_url(run.url).password
    assert password and len(password) > 8
    for text in run.outputs:
        assert password not in text
    for path in run.project.rglob("*"):
        if path.is_file() and path.suffix not in (".sqlite", ".pyc"):
            assert password.encode() not in path.read_bytes(), path
