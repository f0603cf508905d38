"""Backups on real databases: round trips with foreign keys on SQLite, PostgreSQL and DuckDB,
restore refusals, retention, references, gate checks, progress, passwords.

Fault injection (100 damaged artifacts per engine) and a backup killed mid-way live in
test_backup_faults.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from helpers.backups import HEAD, seeded, set_manifest
from helpers.support import PgToolWatcher
from sqlalchemy import Engine, insert

from conductor_magics.engine.backup import (
    Backups,
    Manifest,
    PgTools,
    PruneReport,
    RestoreReport,
    VerifyReport,
    last_migration_at,
    migration_head,
    pg_tool_connection,
)
from conductor_magics.engine.checks import GATE_DRILL, GATE_NEWER, CheckContext, gate_checks
from conductor_magics.engine.connection import make_engine
from conductor_magics.engine.fingerprint import fingerprint, schema_snapshot
from conductor_magics.engine.migrations import REVISION_HASHES
from conductor_magics.engine.results import FAIL, PASS
from conductor_magics.engine.schema import apply_sql
from conductor_magics.errors import ConductorError


def table_map(engine: Engine) -> dict[str, dict]:
    return {name: {"rows": fp.rows, "sha256": fp.sha256} for name, fp in fingerprint(engine).items()}


def damage(engine: Engine) -> None:
    """Drop a table, delete rows, rename a column and move the migration head."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE order_items")
        conn.exec_driver_sql("DELETE FROM orders WHERE id > 100")
        conn.exec_driver_sql("ALTER TABLE customers RENAME COLUMN full_name TO display_name")
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'zzz999'")


def comparable(snapshot: dict, dialect: str) -> dict:
    """A schema snapshot to compare across a restore. PostgreSQL re-parses CHECK expressions
    that pg_dump printed, and prints them back spelled differently (``ARRAY[...]::text[]`` becomes
    ``ARRAY[...::text]``): the same constraint, so only their number is compared there."""
    if dialect != "postgresql":
        return snapshot
    return {table: {**shape, "checks": len(shape["checks"])} for table, shape in snapshot.items()}


@pytest.fixture
def sqlite_engine(tmp_path: Path):
    engine = seeded(f"sqlite:///{tmp_path / 'live.sqlite'}")
    yield engine
    engine.dispose()


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_round_trip_restores_every_table_schema_and_head(dialect, url_for, tmp_path):
    engine = seeded(url_for(dialect))
    try:
        snapshot = schema_snapshot(engine)
        backups = Backups(tmp_path / "backups", engine)
        manifest = backups.create("before-changes")
        assert manifest.tables == table_map(engine)
        assert set(manifest.tables) == {"customers", "orders", "order_items"}
        assert all(t["rows"] == 200 for t in manifest.tables.values())
        assert manifest.migration_head == HEAD and manifest.kind == "manual"
        assert manifest.artifact_path.is_file() and manifest.manifest_path.is_file()

        damage(engine)
        assert table_map(engine) != manifest.tables and migration_head(engine) == "zzz999"

        report = backups.restore("before-changes", confirm=True)
        assert isinstance(report, RestoreReport)
        assert report.restored and report.passed and report.exit_code == 0, report.to_text()
        assert report.live and report.safety_backup is not None
        assert table_map(engine) == manifest.tables
        assert comparable(schema_snapshot(engine), dialect) == comparable(snapshot, dialect)
        assert migration_head(engine) == HEAD

        # the safety backup holds the damaged state and is listed with the others
        listed = backups.list()
        assert list(listed["kind"]) == ["safety", "manual"]
        safety = backups.resolve(report.safety_backup.id)
        assert "order_items" not in safety.tables and safety.migration_head == "zzz999"
        assert safety.tables["orders"]["rows"] == 100
    finally:
        engine.dispose()


def test_round_trip_on_duckdb(url_for, tmp_path):
    engine = make_engine(url_for("duckdb"))
    try:
        apply_sql(engine, """
            CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR NOT NULL UNIQUE);
            CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers (id),
                                 total DECIMAL(10, 2), placed DATE);
            CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY);
            INSERT INTO alembic_version VALUES ('abc123');
            INSERT INTO customers SELECT i, 'c' || i || '@example.com' FROM range(1, 201) t(i);
            INSERT INTO orders SELECT i, 1 + i % 200, i * 1.25, DATE '2026-01-01' + i::INTEGER FROM range(1, 501) t(i);
        """)
        backups = Backups(tmp_path / "backups", engine)
        manifest = backups.create("duck")
        assert backups.verify("duck").passed
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM orders WHERE id > 10")
            conn.exec_driver_sql("CREATE TABLE later (id INTEGER)")
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'zzz'")
        report = backups.restore("duck", confirm=True)
        assert report.passed and report.safety_backup is not None, report.to_text()
        assert table_map(engine) == manifest.tables and migration_head(engine) == "abc123"
    finally:
        engine.dispose()


def test_restore_into_an_empty_target_needs_no_confirmation(sqlite_engine, tmp_path):
    backups = Backups(tmp_path / "backups", sqlite_engine)
    manifest = backups.create()
    target_url = f"sqlite:///{tmp_path / 'copy.sqlite'}"
    report = backups.restore(manifest.id, target_url)
    assert report.passed and not report.live and report.safety_backup is None
    target = make_engine(target_url)
    try:
        assert table_map(target) == manifest.tables and migration_head(target) == HEAD
    finally:
        target.dispose()


def test_postgres_restore_into_another_database_of_the_server(pg_server, pg_url, tmp_path):
    import secrets

    engine = seeded(pg_url)
    name = pg_server.create_database(f"t_{secrets.token_hex(5)}")
    try:
        backups = Backups(tmp_path / "backups", engine)
        manifest = backups.create("pg")
        report = backups.restore("pg", pg_server.url(name))
        assert report.passed and not report.live, report.to_text()
        target = make_engine(pg_server.url(name))
        try:
            assert table_map(target) == manifest.tables
        finally:
            target.dispose()
        # a table the backup does not know survives --clean and fails the comparison, by name
        with make_engine(pg_server.url(name)).begin() as conn:
            conn.exec_driver_sql("CREATE TABLE created_later (id INTEGER PRIMARY KEY)")
        again = backups.restore("pg", pg_server.url(name), confirm=True)
        assert again.restored and not again.passed and again.exit_code == 1
        assert "created_later" in again.frame().set_index("check").loc[
            "table row counts and hashes match the manifest", "detail"]
    finally:
        engine.dispose()
        pg_server.drop_database(name)


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_restore_refuses_a_target_with_tables_without_confirm(dialect, url_for, tmp_path):
    engine = seeded(url_for(dialect))
    try:
        backups = Backups(tmp_path / "backups", engine)
        backups.create("kept")
        damage(engine)
        before = table_map(engine)
        listed = backups.list()
        with pytest.raises(ConductorError) as refused:
            backups.restore("kept")
        assert "--confirm" in (refused.value.hint or "")
        assert "nothing was changed" in refused.value.message
        # nothing happened: same data, head, and no safety backup
        assert table_map(engine) == before and migration_head(engine) == "zzz999"
        pd.testing.assert_frame_equal(backups.list(), listed)
    finally:
        engine.dispose()


def test_restore_refuses_another_target_with_tables(sqlite_engine, tmp_path):
    backups = Backups(tmp_path / "backups", sqlite_engine)
    backups.create("kept")
    other_url = f"sqlite:///{tmp_path / 'other.sqlite'}"
    other = make_engine(other_url)
    try:
        apply_sql(other, "CREATE TABLE precious (id INTEGER PRIMARY KEY); INSERT INTO precious VALUES (7);")
        with pytest.raises(ConductorError, match="already has tables.*precious") as refused:
            backups.restore("kept", other_url)
        assert "--confirm" in refused.value.hint
        assert table_map(other)["precious"]["rows"] == 1
        report = backups.restore("kept", other_url, confirm=True)
        # SQLite copies every page: the target becomes exactly the backup, no safety backup
        # (it is not the live database)
        assert report.passed and report.safety_backup is None
        assert "precious" not in table_map(other)
    finally:
        other.dispose()


def test_restore_never_applies_an_artifact_that_does_not_match(sqlite_engine, tmp_path):
    backups = Backups(tmp_path / "backups", sqlite_engine)
    manifest = backups.create("good")
    damage(sqlite_engine)
    before = table_map(sqlite_engine)
    data = bytearray(manifest.artifact_path.read_bytes())
    data[len(data) // 2] ^= 0x40
    manifest.artifact_path.write_bytes(bytes(data))
    report = backups.restore("good", confirm=True)
    assert not report.restored and report.exit_code == 1 and report.safety_backup is None
    assert "NOT restored" in report.summary
    assert table_map(sqlite_engine) == before


def test_restore_refuses_a_backup_of_another_engine(sqlite_engine, tmp_path):
    backups = Backups(tmp_path / "backups", sqlite_engine)
    backups.create("sqlite-one")
    duck = make_engine(f"duckdb:///{tmp_path / 'x.duckdb'}")
    try:
        with pytest.raises(ConductorError, match="sqlite backup"):
            backups.restore("sqlite-one", duck)
        with pytest.raises(ConductorError, match="sqlite backup"):
            Backups(tmp_path / "backups", duck).verify("sqlite-one")
    finally:
        duck.dispose()


# --------------------------------------------------------------------------- verify, list, resolve


def test_verify_reports_every_check_and_records_it(sqlite_engine, tmp_path):
    backups = Backups(tmp_path / "backups", sqlite_engine)
    manifest = backups.create("v")
    assert backups.list().loc[0, "verified"] is None and backups.latest(verified=True) is None
    report = backups.verify()
    assert isinstance(report, VerifyReport) and report.passed and report.exit_code == 0
    checks = list(report.frame()["check"])
    assert checks == ["artifact present", "artifact sha256 matches the manifest",
                      "restores completely into a scratch database", "SQLite integrity_check",
                      "SQLite foreign_key_check", "table row counts and hashes match the manifest",
                      "migration head matches the manifest"]
    assert set(report.frame()["status"]) == {PASS}
    stored = json.loads(manifest.manifest_path.read_text())
    assert stored["verification"]["passed"] is True and len(stored["verification"]["checks"]) == 7
    assert backups.list().loc[0, "verified"] is True
    assert backups.latest(verified=True).id == manifest.id
    assert json.loads(json.dumps(report.to_json()))["passed"] is True
    assert "verified" in report.summary and "[pass] SQLite integrity_check" in report.to_text()

    # the artifact is opened read-only: verifying changes no byte of it
    before = (manifest.artifact_path.read_bytes(), manifest.artifact_path.stat().st_mtime_ns)
    backups.verify(manifest.id)
    assert (manifest.artifact_path.read_bytes(), manifest.artifact_path.stat().st_mtime_ns) == before


def test_verify_catches_rows_the_manifest_does_not_describe(sqlite_engine, tmp_path):
    # A consistent artifact whose content differs from the manifest: only the content
    # comparison can see it.
    backups = Backups(tmp_path / "backups", sqlite_engine)
    manifest = backups.create()
    other = dict(manifest.tables)
    other["orders"] = {"rows": 199, "sha256": "0" * 64}
    set_manifest(manifest, tables=other, migration_head="elsewhere")
    report = backups.verify()
    failed = set(report.frame().query("status == 'fail'")["check"])
    assert failed == {"table row counts and hashes match the manifest", "migration head matches the manifest"}
    assert backups.list().loc[0, "verified"] is False and backups.latest(verified=True) is None


def test_list_resolve_and_latest(sqlite_engine, tmp_path):
    backups = Backups(tmp_path / "backups", sqlite_engine)
    assert backups.list().empty and list(backups.list().columns) == [
        "id", "label", "kind", "created", "size", "head", "verified", "path"]
    assert backups.latest() is None and not (tmp_path / "backups").exists()
    first = backups.create("first")
    second = backups.create(kind="pre-migration")
    listed = backups.list()
    assert list(listed["id"]) == [second.id, first.id]  # newest first
    assert listed.loc[1, "label"] == "first" and listed.loc[0, "kind"] == "pre-migration"
    assert listed.loc[0, "head"] == HEAD and listed.loc[0, "size"] == second.size_bytes
    assert str(listed["created"].dt.tz) == "UTC"
    assert backups.latest().id == second.id

    assert backups.resolve("first").id == first.id
    assert backups.resolve(second.id).id == second.id
    assert backups.resolve(str(first.artifact_path)).id == first.id
    assert backups.resolve(str(first.manifest_path)).id == first.id
    shortest = next(n for n in range(1, len(second.id) + 1) if not first.id.startswith(second.id[:n]))
    assert backups.resolve(second.id[:shortest]).id == second.id
    with pytest.raises(ConductorError, match="no backup 'nope'") as unknown:
        backups.resolve("nope")
    assert "first" in unknown.value.hint and second.id in unknown.value.hint
    with pytest.raises(ConductorError, match="ambiguous"):
        backups.resolve(first.id[:8])

    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{4}", first.id)
    assert first.created_at <= second.created_at
    round_trip = Manifest.from_json(json.dumps(first.to_json()), folder=first.folder)
    assert round_trip.to_json() == first.to_json() and round_trip.artifact_path == first.artifact_path
    assert first.frame()["rows"].sum() == 600
    assert "600 rows" in first.summary


def test_labels_must_be_safe_and_unique(sqlite_engine, tmp_path):
    backups = Backups(tmp_path / "backups", sqlite_engine)
    for bad in ("../escape", "a b", "", ".hidden", "x" * 65, "20261124T111530Z-ab12", "semi;colon"):
        with pytest.raises(ConductorError, match="not a safe name"):
            backups.create(bad)
    with pytest.raises(ConductorError, match="unknown backup kind"):
        backups.create(kind="nightly")
    backups.create("release-1.0_rc")
    with pytest.raises(ConductorError, match="exists already"):
        backups.create("release-1.0_rc")
    assert len(backups.list()) == 1
    assert not list((tmp_path / "backups").glob("*.partial"))


def test_an_artifact_without_its_manifest_is_not_a_backup(sqlite_engine, tmp_path):
    backups = Backups(tmp_path / "backups", sqlite_engine)
    kept = backups.create("kept")
    orphan = backups.create("orphan")
    orphan.manifest_path.unlink()  # as if killed between the rename and the manifest write
    (tmp_path / "backups" / f"{kept.id}x.sqlite.partial").write_bytes(b"half")
    assert list(backups.list()["id"]) == [kept.id]
    assert backups.latest().id == kept.id
    leftovers = backups.incomplete()
    assert sorted(Path(p).name for p in leftovers["path"]) == sorted(
        [orphan.artifact, f"{kept.id}x.sqlite.partial"])
    with pytest.raises(ConductorError, match="not a complete backup"):
        backups.resolve(str(orphan.artifact_path))
    # the label of a backup that never completed is free again
    assert backups.create("orphan").label == "orphan"


# --------------------------------------------------------------------------- prune


def _backups_at(backups: Backups, times: list[datetime]) -> list[Manifest]:
    made = []
    for when in times:
        manifest = backups.create()
        set_manifest(manifest, created_at=when.isoformat())
        made.append(backups.resolve(manifest.id))
    return made


def test_prune_keeps_newest_and_one_per_day(sqlite_engine, tmp_path):
    backups = Backups(tmp_path / "backups", sqlite_engine)
    day = datetime(2026, 11, 20, tzinfo=UTC)
    # two on the 20th, two on the 18th, one each on the 17th, 15th and 10th
    times = [day - timedelta(days=10), day - timedelta(days=5), day - timedelta(days=3),
             day - timedelta(days=2) + timedelta(hours=3), day - timedelta(days=2) + timedelta(hours=5),
             day + timedelta(hours=1), day + timedelta(hours=9)]
    made = _backups_at(backups, times)
    ids = [m.id for m in made]

    report = backups.prune(keep_last=2, keep_daily=3, dry_run=True)
    assert isinstance(report, PruneReport) and report.dry_run
    kept = {k["id"] for k in report.kept}
    # newest two (both on the 20th) + the newest of the 18th and of the 17th
    assert kept == {ids[6], ids[5], ids[4], ids[2]}
    assert {d["id"] for d in report.deleted} == {ids[0], ids[1], ids[3]}
    assert len(backups.list()) == 7  # dry run: nothing deleted
    assert set(report.frame()["action"]) == {"keep", "delete"}

    done = backups.prune(keep_last=2, keep_daily=3)
    assert set(backups.list()["id"]) == kept
    assert done.freed_bytes == sum(m.size_bytes for m in made if m.id not in kept)
    assert not made[0].artifact_path.exists() and not made[0].manifest_path.exists()


def test_prune_never_deletes_the_only_verified_backup(sqlite_engine, tmp_path):
    backups = Backups(tmp_path / "backups", sqlite_engine)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    made = _backups_at(backups, [start + timedelta(days=i) for i in range(4)])
    assert backups.verify(made[0].id).passed  # the oldest is the only verified one
    report = backups.prune(keep_last=1, keep_daily=0)
    assert set(backups.list()["id"]) == {made[0].id, made[3].id}
    assert "newest verified" in next(k for k in report.kept if k["id"] == made[0].id)["reasons"]
    # with nothing else to keep, the verified backup still stays
    backups.prune(keep_last=0, keep_daily=0)
    assert list(backups.list()["id"]) == [made[0].id]
    with pytest.raises(ConductorError, match="keep_last"):
        backups.prune(keep_last=-1, keep_daily=0)


def test_prune_removes_stale_leftovers_only(sqlite_engine, tmp_path):
    backups = Backups(tmp_path / "backups", sqlite_engine)
    backups.create("real")
    stale = tmp_path / "backups" / "20260101T000000Z-dead.sqlite.partial"
    fresh = tmp_path / "backups" / "20260101T000000Z-beef.sqlite.partial"
    stale.write_bytes(b"x" * 10)
    fresh.write_bytes(b"y" * 10)  # may belong to a backup still running
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    report = backups.prune(keep_last=5, keep_daily=0)
    assert report.leftovers == [str(stale)]
    assert not stale.exists() and fresh.exists() and len(backups.list()) == 1


# --------------------------------------------------------------------------- migrations, gate


def test_migration_head_and_last_migration_at(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite'}")
    try:
        assert migration_head(engine) is None and last_migration_at(engine) is None
        apply_sql(engine, "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        assert migration_head(engine) is None
        REVISION_HASHES.create(engine)
        assert last_migration_at(engine) is None
        _record_migration(engine, "r1", datetime(2026, 11, 1, 8, tzinfo=UTC))
        _record_migration(engine, "r2", datetime(2026, 11, 3, 9, tzinfo=UTC))
        assert migration_head(engine) == "r2"
        assert last_migration_at(engine) == datetime(2026, 11, 3, 9, tzinfo=UTC)
    finally:
        engine.dispose()


def _record_migration(engine: Engine, revision: str, when: datetime) -> None:
    """What migrations.up records: the new head and (revision, sha256, file, applied_at)."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM alembic_version")
        conn.exec_driver_sql(f"INSERT INTO alembic_version VALUES ('{revision}')")
        conn.execute(insert(REVISION_HASHES).values(
            revision=revision, sha256="0" * 64, file=f"{revision}.py",
            applied_at=when.isoformat(timespec="seconds")))


def _gate(engine: Engine, component: Path) -> dict[str, tuple[str, str]]:
    ctx = CheckContext(engine=engine, declared_sql=None, migrations_folder=component / "migrations",
                       backups_folder=component / "backups")
    return {r.name: (r.status, r.detail) for r in gate_checks(ctx)}


def test_gate_checks(sqlite_engine, tmp_path):
    component = tmp_path / "component"
    REVISION_HASHES.create(sqlite_engine)
    _record_migration(sqlite_engine, "r1", datetime.now(UTC) - timedelta(minutes=5))

    empty = _gate(sqlite_engine, component)
    assert list(empty) == [GATE_NEWER, GATE_DRILL]
    assert empty[GATE_NEWER][0] == FAIL and empty[GATE_DRILL][0] == FAIL
    assert "no backups" in empty[GATE_DRILL][1]

    backups = Backups(component / "backups", sqlite_engine)
    first = backups.create("after-r1")
    assert backups.latest(verified=True) is None
    gate = _gate(sqlite_engine, component)
    # the drill verifies the newest backup (recorded), which satisfies the first check too
    assert gate[GATE_DRILL][0] == PASS and gate[GATE_NEWER][0] == PASS, gate
    assert backups.latest(verified=True).id == first.id

    _record_migration(sqlite_engine, "r2", datetime.now(UTC))
    gate = _gate(sqlite_engine, component)
    assert gate[GATE_NEWER][0] == FAIL and "predates the last migration" in gate[GATE_NEWER][1]
    assert gate[GATE_DRILL][0] == PASS  # the old backup itself still restores fine

    second = backups.create("after-r2")
    gate = _gate(sqlite_engine, component)
    assert gate[GATE_NEWER][0] == PASS and second.label in gate[GATE_NEWER][1]

    # a damaged newest backup fails the drill (and is recorded as failed)
    with second.artifact_path.open("r+b") as handle:
        handle.truncate(second.size_bytes // 2)
    gate = _gate(sqlite_engine, component)
    assert gate[GATE_DRILL][0] == FAIL and gate[GATE_NEWER][0] == FAIL
    assert backups.resolve("after-r2").verified is False


def test_gate_without_a_component_folder_fails(sqlite_engine, tmp_path):
    ctx = CheckContext(engine=sqlite_engine, declared_sql=None, migrations_folder=tmp_path)
    assert {r.status for r in gate_checks(ctx)} == {FAIL}


# --------------------------------------------------------------------------- progress, consistency


class Recorder:
    """A tqdm-compatible factory that records what each bar saw (and may dawdle per update)."""

    def __init__(self, sleep: float = 0.0):
        self.bars: list[dict] = []
        self.sleep = sleep

    def __call__(self, total=None, desc="", unit=""):
        bar = {"total": total, "desc": desc, "unit": unit, "done": 0.0, "closed": False}
        self.bars.append(bar)
        sleep = self.sleep

        class Bar:
            def update(self, n):
                bar["done"] += n
                time.sleep(sleep)

            def close(self):
                bar["closed"] = True

        return Bar()


def test_progress_bars_only_for_large_databases(sqlite_engine, tmp_path):
    backups = Backups(tmp_path / "backups", sqlite_engine)
    quiet = Recorder()
    backups.create(progress=quiet)
    assert quiet.bars == []  # a 60 KiB database finishes at once
    backups.progress_min_bytes = 0
    loud = Recorder()
    backups.create(progress=loud)
    descs = [b["desc"] for b in loud.bars]
    assert descs == ["backup (copy pages)", "backup (row hashes)", "backup (sha256)"]
    assert all(b["closed"] for b in loud.bars)
    for bar in loud.bars:
        if bar["total"]:
            assert bar["done"] == pytest.approx(bar["total"])
    verify = Recorder()
    assert backups.verify(progress=verify).passed
    assert [b["desc"] for b in verify.bars] == ["verify (sha256)", "restore (copy pages)"]


def test_sqlite_backup_while_another_connection_writes(tmp_path):
    # A write by another connection restarts SQLite's stepwise copy (used when a bar shows).
    # Here a pass over ~20 MB takes longer than the gap between writes, so the copy restarts
    # forever unless it falls back to one step. The manifest must describe the artifact
    # (hashed from the finished file), so it verifies.
    path = tmp_path / "busy.sqlite"
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, payload BLOB)")
    setup.executemany("INSERT INTO events (payload) VALUES (?)", [(os.urandom(4000),) for _ in range(5000)])
    setup.commit()
    setup.close()
    engine = make_engine(f"sqlite:///{path}")
    stop = threading.Event()
    written = []

    def writer():
        conn = sqlite3.connect(path, timeout=30)
        while not stop.is_set():
            conn.execute("INSERT INTO events (payload) VALUES (x'00')")
            conn.commit()
            written.append(1)
            time.sleep(0.001)
        conn.close()

    backups = Backups(tmp_path / "backups", engine)
    backups.progress_min_bytes = 0
    bars = Recorder()
    made: list[Manifest] = []
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.05)
        backing_up = threading.Thread(target=lambda: made.append(backups.create("busy", progress=bars)))
        backing_up.start()
        backing_up.join(timeout=60)
        assert not backing_up.is_alive(), "the backup never finished under concurrent writes"
    finally:
        stop.set()
        thread.join()
    try:
        copy = next(b for b in bars.bars if b["desc"] == "backup (copy pages)")
        assert copy["closed"] and copy["done"] == pytest.approx(copy["total"])
        assert len(written) > 5 and made and made[0].tables["events"]["rows"] >= 5000
        assert backups.verify("busy").passed
    finally:
        engine.dispose()


def test_postgres_backup_is_one_snapshot_while_others_write(pg_url, tmp_path):
    engine = seeded(pg_url)
    stop = threading.Event()
    written = []

    def writer():
        other = make_engine(pg_url)
        with other.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            number = 10_000
            while not stop.is_set():
                conn.exec_driver_sql(
                    f"INSERT INTO customers (id, email, full_name) VALUES ({number}, 'w{number}@x', 'w')")
                written.append(number)
                number += 1
        other.dispose()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.1)
        backups = Backups(tmp_path / "backups", engine)
        manifest = backups.create("snap")
    finally:
        stop.set()
        thread.join()
    try:
        assert len(written) > 5 and manifest.tables["customers"]["rows"] > 200
        report = backups.verify("snap")
        assert report.passed, report.to_text()
        assert {"PostgreSQL amcheck: bt_index_check on every btree index",
                "PostgreSQL amcheck: verify_heapam on every table"} <= set(
            report.frame().query("status == 'pass'")["check"])
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- passwords


def test_pg_tools_get_the_password_only_through_the_environment(pg_server, pg_url):
    conninfo, env = pg_tool_connection(pg_url)
    assert pg_server.password not in conninfo
    assert env == {"PGPASSWORD": pg_server.password}
    assert f"port={pg_server.port}" in conninfo and "user=postgres" in conninfo
    assert pg_tool_connection("postgresql://u@h/db?sslmode=require&password=secret")[0] == (
        "host=h user=u dbname=db sslmode=require")
    assert pg_tool_connection("postgresql://u@h/my db")[0] == "host=h user=u dbname='my db'"
    engine = make_engine(pg_url)
    try:
        tools = PgTools.for_server(engine)
        assert tools.major == pg_server.version and Path(tools.pg_dump).parent == pg_server.bindir
    finally:
        engine.dispose()


def test_password_never_in_files_outputs_errors_or_argv(pg_server, pg_url, tmp_path):
    password = pg_server.password
    engine = seeded(pg_url)
    watcher = PgToolWatcher().__enter__()
    seen = watcher.seen
    outputs: list[str] = []
    try:
        backups = Backups(tmp_path / "backups", engine)
        manifest = backups.create("pw")
        verify = backups.verify("pw")
        damage(engine)
        restore = backups.restore("pw", confirm=True)
        assert verify.passed and restore.passed
        missing_db = pg_server.url("no_such_database")
        for failing in (lambda: backups.restore("pw", missing_db),
                        lambda: Backups(tmp_path / "b2", make_engine(missing_db)).create()):
            with pytest.raises(ConductorError) as error:
                failing()
            outputs += [str(error.value), repr(error.value), json.dumps(error.value.to_json())]
        # a pg_restore that fails (damaged artifact, sha256 forged) also reports scrubbed stderr
        data = manifest.artifact_path.read_bytes()
        manifest.artifact_path.write_bytes(data[: len(data) // 2])
        set_manifest(manifest, sha256=hashlib.sha256(data[: len(data) // 2]).hexdigest(),
                     size_bytes=len(data) // 2)
        broken = backups.verify("pw")
        assert not broken.passed
        for result in (manifest, verify, restore, restore.safety_backup, broken):
            outputs += [repr(result), result.summary, result.to_text(), json.dumps(result.to_json()),
                        result.frame().to_string()]
        outputs.append(backups.list().to_string())
    finally:
        watcher.__exit__()
        engine.dispose()
    assert any("pg_dump" in argv for argv in seen) and any("pg_restore" in argv for argv in seen)
    leaked = [argv for argv in seen if password in argv]
    assert leaked == []
    for text in outputs:
        assert password not in text
    for path in (tmp_path / "backups").rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    assert "***" in manifest.source and password not in manifest.manifest_path.read_text()


def test_the_one_online_copy_copies_every_page_with_and_without_progress(tmp_path):
    from conductor_magics.engine.sqlitecopy import online_copy

    source = sqlite3.connect(tmp_path / "source.sqlite")
    source.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB)")
    source.executemany("INSERT INTO t (payload) VALUES (?)", [(bytes(2000),)] * 3000)
    source.commit()
    pages = source.execute("PRAGMA page_count").fetchone()[0]
    for progress in (None, []):
        dest = sqlite3.connect(":memory:")
        online_copy(source, dest, None if progress is None else
                    lambda done, total, seen=progress: seen.append((done, total)))
        assert dest.execute("SELECT count(*), sum(length(payload)) FROM t").fetchone() == (3000, 6_000_000)
        if progress is not None:
            assert len(progress) > 2 and progress[-1] == (pages, pages)
            assert [d for d, _ in progress] == sorted(d for d, _ in progress)
        dest.close()
    source.close()
