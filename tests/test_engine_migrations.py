"""Alembic migrations on SQLite (a file) and a real PostgreSQL 15: new, up, down, history,
current, sql, check and lint, and the failed-migration guarantee (schema and rows as before)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from helpers.support import hand_written
from sqlalchemy import inspect, text

from conductor_magics.engine.connection import make_engine
from conductor_magics.engine.fingerprint import fingerprint, schema_snapshot
from conductor_magics.engine.migrations import (
    CheckReport,
    LintReport,
    MigrationRun,
    Migrations,
    RevisionInfo,
)
from conductor_magics.engine.sample import seed
from conductor_magics.errors import ConductorError, DatabaseError

V1 = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    email VARCHAR(120) NOT NULL,
    name VARCHAR(80) NOT NULL,
    CONSTRAINT uq_customers_email UNIQUE (email)
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    status VARCHAR(20) NOT NULL,
    total NUMERIC(10, 2) NOT NULL,
    CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id),
    CONSTRAINT ck_orders_total CHECK (total >= 0)
);
CREATE INDEX ix_orders_customer_id ON orders (customer_id);
CREATE TABLE order_items (
    order_id INTEGER NOT NULL,
    line INTEGER NOT NULL,
    sku VARCHAR(40) NOT NULL,
    qty INTEGER NOT NULL,
    PRIMARY KEY (order_id, line),
    CONSTRAINT fk_order_items_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE,
    CONSTRAINT ck_order_items_qty CHECK (qty > 0)
);
"""

# v2: a new column, a new index and a new CHECK (on data the seeded rows satisfy)
V2 = V1.replace(
    "    total NUMERIC(10, 2) NOT NULL,\n",
    "    total NUMERIC(10, 2) NOT NULL,\n    note VARCHAR(200),\n",
).replace(
    "    CONSTRAINT ck_orders_total CHECK (total >= 0)\n",
    "    CONSTRAINT ck_orders_total CHECK (total >= 0),\n"
    "    CONSTRAINT ck_orders_total_max CHECK (total <= 1000000)\n",
) + "CREATE INDEX ix_orders_status ON orders (status);\n"
assert "note VARCHAR(200)" in V2 and "ck_orders_total_max" in V2


@pytest.fixture
def db(db_engine, tmp_path: Path):
    """(engine, migrations folder, password or None) on a file SQLite or a fresh PostgreSQL db."""
    return db_engine, tmp_path / "storages" / "orders" / "migrations", db_engine.url.password


def state(engine):
    """Everything that must survive a failed migration: schema, rows, revision."""
    with engine.connect() as conn:
        version = (conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
                   if inspect(conn).has_table("alembic_version") else None)
    return schema_snapshot(engine), fingerprint(engine), version


def applied_v1(engine, folder, rows=20) -> tuple[Migrations, RevisionInfo]:
    migrations = Migrations(folder, engine)
    r1 = migrations.new("create customers orders items", V1)
    migrations.up()
    seed(engine, rows=rows)
    return migrations, r1


# --------------------------------------------------------------------------- acceptance


def test_acceptance_declare_new_up_seed_v2_check_down_up(db):
    engine, folder, password = db
    migrations = Migrations(folder, engine)
    assert migrations.init() is True and migrations.init() is False
    assert (folder / "env.py").is_file() and (folder / "versions").is_dir()

    r1 = migrations.new("create customers orders items", V1)
    assert {"create_table customers", "create_table orders", "create_table order_items"} <= set(r1.operations)
    assert re.fullmatch(rf"\d{{8}}_\d{{6}}_{r1.revision}_create_customers_orders_items\.py", r1.path.name)
    run = migrations.up()
    assert isinstance(run, MigrationRun)
    assert run.applied == [r1.revision] and run.from_revision is None and run.to_revision == r1.revision
    assert run.safety == "transaction"  # SQLite too: undone by rollback, never by a file copy
    assert migrations.current() == r1.revision

    seeded = seed(engine, rows=20)
    assert seeded == {"customers": 20, "orders": 20, "order_items": 20}

    r2 = migrations.new("orders note, status index, total cap", V2)
    ops = set(r2.operations)
    assert "add_column orders.note" in ops
    assert any(o.startswith("create_index ix_orders_status on orders(status)") for o in ops), ops
    assert any(o.startswith("create_check_constraint ck_orders_total_max") for o in ops), ops
    assert not any(o.startswith(("drop_", "create_table")) for o in ops), ops
    assert r1.notes == [] and r2.notes == []  # the revisions reach the declared schema
    assert migrations.up().applied == [r2.revision]
    assert migrations.current() == r2.revision
    columns = {c["name"] for c in inspect(engine).get_columns("orders")}
    assert "note" in columns

    report = migrations.check(V2, rows=10)
    assert isinstance(report, CheckReport)
    assert report.passed, report.to_text()
    frame = report.frame()
    assert list(frame.columns) == ["check", "status", "detail", "seconds"]
    assert set(frame["status"]) == {"pass"}, report.to_text()
    names = list(frame["check"])
    assert names[:3] == ["one head", "empty → head", "head matches declared schema"]
    assert sum(n.startswith("upgrade → downgrade → upgrade keeps data") for n in names) == 2
    assert names[-2:] == ["live database at head", "revision files unchanged since applied"]
    assert report.to_json()["passed"] is True

    before = fingerprint(engine)
    down = migrations.down("-1")
    assert down.applied == [r2.revision] and down.to_revision == r1.revision
    assert migrations.current() == r1.revision
    after = fingerprint(engine)
    # the tables the downgrade does not touch are identical; orders keeps every row
    assert after["customers"] == before["customers"]
    assert after["order_items"] == before["order_items"]
    assert after["orders"].rows == before["orders"].rows == 20
    assert "note" not in {c["name"] for c in inspect(engine).get_columns("orders")}
    assert "ix_orders_status" not in {i["name"] for i in inspect(engine).get_indexes("orders")}

    again = migrations.up()
    assert again.applied == [r2.revision] and migrations.current() == r2.revision
    final = fingerprint(engine)
    assert {t: p.rows for t, p in final.items()} == {t: p.rows for t, p in before.items()}
    assert final["customers"] == before["customers"]
    assert final["order_items"] == before["order_items"]
    with engine.connect() as conn:
        violations = conn.execute(text(
            "SELECT count(*) FROM order_items i LEFT JOIN orders o ON o.id = i.order_id "
            "WHERE o.id IS NULL")).scalar_one()
    assert violations == 0
    assert migrations.check(V2, rows=5).passed

    if password:  # nothing the tool wrote holds the database password
        for path in folder.rglob("*"):
            if path.is_file():
                assert password.encode() not in path.read_bytes(), path


# --------------------------------------------------------------------------- failure safety


def test_failed_migration_leaves_schema_and_rows_as_before(db):
    engine, folder, password = db
    migrations, r1 = applied_v1(engine, folder)
    before = state(engine)
    assert before[1]["orders"].rows == 20
    good = hand_written(migrations, "add customers vip",
                        'op.add_column("customers", sa.Column("vip", sa.Boolean(), nullable=True))',
                        'op.drop_column("customers", "vip")')
    bad = hand_written(migrations, "audit table and a bad row", """
op.create_table("audit", sa.Column("id", sa.Integer, primary_key=True), sa.Column("what", sa.Text))
op.execute("INSERT INTO audit (id, what) VALUES (1, 'started')")
op.execute("INSERT INTO orders (id, customer_id, status, total) VALUES (900001, 1, 'x', -5)")
""")
    with pytest.raises(DatabaseError) as caught:
        migrations.up()
    message = str(caught.value)
    assert bad.revision in message and "audit table and a bad row" in message
    assert bad.path.name in message
    assert "ck_orders_total" in message.lower() or "check" in message.lower()
    assert good.revision in message  # says the earlier revision of the run was undone too
    assert caught.value.exit_code == 1
    if password:
        assert password not in message
    assert caught.value.run.rolled_back is True and caught.value.run.safety == "transaction"
    assert state(engine) == before
    assert migrations.current() == r1.revision
    assert "audit" not in inspect(engine).get_table_names()


def test_failed_migration_on_a_foreign_key_is_undone(db):
    # SQLite runs migrations with foreign keys off (for batch rebuilds); the check after
    # each revision still catches a dangling reference, and PostgreSQL rejects it at once.
    engine, folder, _ = db
    migrations, r1 = applied_v1(engine, folder, rows=5)
    before = state(engine)
    bad = hand_written(migrations, "orphan item", """
op.execute("DELETE FROM order_items WHERE line = 1")
op.execute("INSERT INTO order_items (order_id, line, sku, qty) VALUES (777777, 1, 'x', 1)")
""")
    with pytest.raises(DatabaseError) as caught:
        migrations.up()
    assert bad.revision in str(caught.value)
    assert "foreign key" in str(caught.value).lower()
    assert state(engine) == before
    assert migrations.current() == r1.revision


def test_failed_downgrade_is_undone_too(db):
    engine, folder, _ = db
    migrations, r1 = applied_v1(engine, folder, rows=5)
    r2 = hand_written(migrations, "downgrade breaks",
                      'op.create_table("tags", sa.Column("id", sa.Integer, primary_key=True))',
                      'op.drop_table("tags")\nop.execute("SELECT no_such_function()")')
    migrations.up()
    before = state(engine)
    with pytest.raises(DatabaseError) as caught:
        migrations.down()
    assert r2.revision in str(caught.value) and "downgrade failed" in str(caught.value)
    assert state(engine) == before
    assert migrations.current() == r2.revision


def test_failed_batch_rebuild_is_rolled_back_whole(db):
    # SQLite batch mode creates a copy, copies the rows, drops and renames tables; all of it
    # is inside the run's transaction, so a failure afterwards (here a dangling foreign key:
    # PRAGMA foreign_key_check on SQLite, the constraint itself on PostgreSQL) undoes it all.
    engine, folder, _ = db
    migrations, r1 = applied_v1(engine, folder, rows=8)
    before = state(engine)
    bad = hand_written(migrations, "rebuild orders, rename items, then an orphan", """
sqlite = op.get_bind().dialect.name == "sqlite"
with op.batch_alter_table("orders", recreate="always" if sqlite else "auto") as batch:
    batch.alter_column("status", type_=sa.String(40))
    batch.add_column(sa.Column("note", sa.Text()))
op.rename_table("order_items", "order_lines")
op.execute("INSERT INTO order_lines (order_id, line, sku, qty) VALUES (424242, 1, 'x', 1)")
""")
    with pytest.raises(DatabaseError) as caught:
        migrations.up()
    assert bad.revision in str(caught.value) and "rolled back" in str(caught.value)
    assert "foreign key" in str(caught.value).lower()
    assert state(engine) == before
    assert set(inspect(engine).get_table_names()) >= {"orders", "order_items"}
    assert not any(n.startswith("_alembic_tmp") or n == "order_lines"
                   for n in inspect(engine).get_table_names())
    assert migrations.current() == r1.revision
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:  # foreign keys back on for the tool's connections
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_migrate_up_waits_for_a_writer_then_gives_up_unchanged(db, monkeypatch):
    # Another connection holds the write lock (SQLite) / the migration lock (PostgreSQL)
    # longer than the lock timeout: the run fails cleanly before it changes anything.
    engine, folder, _ = db
    migrations, r1 = applied_v1(engine, folder, rows=3)
    hand_written(migrations, "vip flag",
                 'op.add_column("customers", sa.Column("vip", sa.Integer(), nullable=True))')
    before = state(engine)
    monkeypatch.setattr("conductor_magics.engine.migrations.LOCK_TIMEOUT_SECONDS", 1)
    other = make_engine(engine.url)
    try:
        with other.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("UPDATE customers SET name = name")  # holds the write lock
            else:
                from conductor_magics.engine.migrations import _PG_LOCK_KEY

                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
            started = time.monotonic()
            with pytest.raises(DatabaseError) as caught:
                migrations.up()
            assert time.monotonic() - started >= 0.9  # it did wait
            conn.rollback()
    finally:
        other.dispose()
    message = str(caught.value)
    assert "could not start" in message and "nothing changed" in message, message
    assert state(engine) == before and migrations.current() == r1.revision
    assert migrations.up().applied  # once the other one is done, it runs


# --------------------------------------------------------------------------- new / sql / history


def test_new_refuses_when_nothing_changed_and_writes_no_file(db):
    engine, folder, _ = db
    migrations = Migrations(folder, engine)
    migrations.new("v1", V1)
    files = sorted((folder / "versions").glob("*.py"))
    with pytest.raises(ConductorError) as caught:
        migrations.new("again", V1)
    assert "the database at head already matches the declared schema" in str(caught.value)
    assert caught.value.exit_code == 2
    assert sorted((folder / "versions").glob("*.py")) == files
    with pytest.raises(ConductorError, match="no declared schema"):
        migrations.new("nothing", None)


def test_clear_errors_before_anything_exists(db):
    engine, folder, _ = db
    migrations = Migrations(folder, engine)
    for call in (migrations.up, migrations.down, migrations.history, migrations.sql):
        with pytest.raises(ConductorError) as caught:
            call()
        assert "conductor migrate new" in str(caught.value)
    migrations.init()
    with pytest.raises(ConductorError, match="no revisions yet"):
        migrations.up()
    assert migrations.current() is None
    migrations.new("v1", V1)
    with pytest.raises(ConductorError, match="nothing to downgrade"):
        migrations.down()
    with pytest.raises(ConductorError, match="cannot upgrade to 'nope'"):
        migrations.up("nope")
    report = migrations.check(None, rows=3)
    assert not report.passed  # the live database is not at head yet
    rows = {r.check: r for r in report.results}
    assert rows["head matches declared schema"].status == "skip"
    assert rows["live database at head"].status == "fail"


def test_sql_renders_create_table_offline(db):
    engine, folder, _ = db
    migrations = Migrations(folder, engine)
    r1 = migrations.new("v1", V1)
    rendered = migrations.sql()
    for table in ("customers", "orders", "order_items"):
        assert re.search(rf"CREATE TABLE {table} \(", rendered), rendered
    assert "alembic_version" in rendered and r1.revision in rendered
    assert migrations.current() is None  # offline: the database was not touched
    assert inspect(engine).get_table_names() == []
    migrations.up()
    r2 = migrations.new("v2", V2)
    step = migrations.sql(f"{r1.revision}:{r2.revision}")
    assert "note" in step and "ck_orders_total_max" in step and "CREATE TABLE customers" not in step
    back = migrations.sql(f"{r2.revision}:{r1.revision}")
    assert r1.revision in back and "CREATE INDEX ix_orders_status" not in back
    assert ("DROP INDEX ix_orders_status" if engine.dialect.name == "postgresql"
            else "DROP TABLE orders") in back  # SQLite rebuilds the table (batch mode)
    assert migrations.current() == r1.revision


def test_history_frame(db):
    engine, folder, _ = db
    migrations = Migrations(folder, engine)
    migrations.init()
    assert list(migrations.history().columns) == ["revision", "down_revision", "message", "file",
                                                  "created", "applied", "is_head"]
    r1 = migrations.new("v1", V1)
    migrations.up()
    r2 = migrations.new("v2", V2)
    frame = migrations.history()
    assert list(frame.columns) == ["revision", "down_revision", "message", "file", "created",
                                   "applied", "is_head"]
    assert list(frame["revision"]) == [r1.revision, r2.revision]
    assert list(frame["down_revision"]) == [None, r1.revision]
    assert list(frame["message"]) == ["v1", "v2"]
    assert list(frame["applied"]) == [True, False]
    assert list(frame["is_head"]) == [False, True]
    assert list(frame["file"]) == [r1.path.name, r2.path.name]
    assert frame["created"].notna().all()


# --------------------------------------------------------------------------- lint / check


def test_lint_flags_drop_column_not_null_without_default_and_unique_with_duplicates(db):
    engine, folder, _ = db
    migrations, _ = applied_v1(engine, folder)
    assert migrations.lint().to_json() == {"flagged": False, "revisions": [], "findings": []}
    with engine.begin() as conn:
        conn.execute(text("UPDATE orders SET status = 'new'"))
    risky = hand_written(migrations, "risky", """
recreate = "always" if op.get_bind().dialect.name == "sqlite" else "auto"
with op.batch_alter_table("orders") as batch:
    batch.drop_column("status")
with op.batch_alter_table("order_items", recreate=recreate) as batch:
    batch.add_column(sa.Column("warehouse", sa.String(10), nullable=False))
op.create_index("ux_orders_total", "orders", ["total"], unique=True)
with op.batch_alter_table("customers") as batch:
    batch.create_unique_constraint("uq_customers_name", ["name"])
""")
    safe = hand_written(migrations, "safe", """
op.add_column("customers", sa.Column("nickname", sa.String(20), nullable=True))
op.add_column("customers", sa.Column("score", sa.Integer, nullable=False, server_default="0"))
""")
    report = migrations.lint()
    assert isinstance(report, LintReport)
    assert report.revisions == [risky.revision, safe.revision]
    assert report.flagged
    by_code = {f.code: f for f in report.findings}
    assert set(by_code) == {"drop_column", "not_null_without_default", "new_unique"}, report.to_text()
    assert all(f.revision == risky.revision for f in report.findings)
    assert "orders.status" in by_code["drop_column"].message
    assert "order_items.warehouse" in by_code["not_null_without_default"].message
    assert "20 row(s)" in by_code["not_null_without_default"].message
    uniques = [f for f in report.findings if f.code == "new_unique"]
    assert len(uniques) == 2
    # seeded names are all different; totals after this update all the same
    with engine.begin() as conn:
        conn.execute(text("UPDATE orders SET total = 5"))
    uniques = [f for f in migrations.lint().findings if f.code == "new_unique"]
    by_table = {("orders" if "on orders" in f.message else "customers"): f for f in uniques}
    assert "duplicate group" in by_table["orders"].message and by_table["orders"].severity == "error"
    assert "no duplicates" in by_table["customers"].message
    assert by_table["customers"].severity == "warning"
    frame = report.frame()
    assert list(frame.columns) == ["revision", "severity", "code", "message"]
    # a single revision can be linted on its own; the safe one flags nothing
    assert not migrations.lint(safe.revision).flagged
    assert migrations.lint(safe.revision).revisions == [safe.revision]


def test_lint_ignores_not_null_on_an_empty_table(db):
    engine, folder, _ = db
    migrations = Migrations(folder, engine)
    migrations.new("v1", V1)
    migrations.up()  # no rows
    hand_written(migrations, "not null", """
recreate = "always" if op.get_bind().dialect.name == "sqlite" else "auto"
with op.batch_alter_table("order_items", recreate=recreate) as batch:
    batch.add_column(sa.Column("warehouse", sa.String(10), nullable=False))
""")
    assert not migrations.lint().flagged


def test_check_catches_an_applied_revision_edited_afterwards(db):
    engine, folder, _ = db
    migrations, r1 = applied_v1(engine, folder, rows=5)
    assert migrations.check(V1, rows=5).passed
    with r1.path.open("a", encoding="utf-8") as handle:
        handle.write("\n# edited after it ran\n")
    report = migrations.check(V1, rows=5)
    assert not report.passed
    row = next(r for r in report.results if r.check == "revision files unchanged since applied")
    assert row.status == "fail" and r1.path.name in row.detail and "edited" in row.detail
    # the other checks still pass
    assert all(r.status == "pass" for r in report.results if r is not row), report.to_text()
    # down removes the recorded hash; up records the new one (dropping the seeded rows
    # needs confirm)
    migrations.down(confirm=True)
    migrations.up()
    assert migrations.check(V1, rows=5).passed


def test_check_fails_when_declared_schema_differs_and_when_a_round_trip_loses_rows(db):
    engine, folder, _ = db
    migrations = Migrations(folder, engine)
    migrations.new("v1", V1)
    migrations.up()
    rows = {r.check: r for r in migrations.check(V2, rows=3).results}
    assert rows["head matches declared schema"].status == "fail"
    assert "add_column orders.note" in rows["head matches declared schema"].detail
    # a downgrade that deletes data is caught by the round trip
    lossy = hand_written(migrations, "lossy downgrade",
                         'op.add_column("customers", sa.Column("vip", sa.Boolean(), nullable=True))',
                         'op.execute("DELETE FROM order_items")\n'
                         'op.drop_column("customers", "vip")')
    report = migrations.check(None, rows=3)
    trip = next(r for r in report.results if lossy.revision in r.check)
    assert trip.status == "fail" and "order_items" in trip.detail, report.to_text()
    assert not report.passed


def test_sqlite_refuses_a_revision_that_commits_itself_and_undoes_the_run(tmp_path: Path):
    # A data migration that commits as it goes (batches) would be past any rollback: the
    # run is one transaction, so the COMMIT is refused, the revision fails, and the
    # rollback brings back the exact database (no snapshot file is ever written).
    engine = make_engine(f"sqlite:///{tmp_path / 'dev.sqlite'}")
    try:
        migrations, r1 = applied_v1(engine, tmp_path / "migrations", rows=10)
        before = state(engine)
        bad = hand_written(migrations, "batched cleanup", """
op.create_table("audit", sa.Column("id", sa.Integer, primary_key=True))
op.execute("DELETE FROM order_items")
op.get_bind().connection.driver_connection.commit()  # one batch done
op.execute("INSERT INTO orders (id, customer_id, status, total) VALUES (900001, 1, 'x', -5)")
""")
        with pytest.raises(DatabaseError) as caught:
            migrations.up()
        assert bad.revision in str(caught.value) and caught.value.run.rolled_back
        assert "ran COMMIT itself" in str(caught.value) and "rolled back" in str(caught.value)
        after = state(engine)
        assert after == before and after[1]["order_items"].rows == 10
        assert "audit" not in inspect(engine).get_table_names()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.sqlite", "migrations"]
        with engine.connect() as conn:  # the tool's connections keep foreign keys on
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
