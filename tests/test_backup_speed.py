"""The faster SQLite backup path (issue 16) keeps the manifest's meaning byte for byte.

The row hashes are now read from the sqlite3 cursor directly, the artifact's sha256 is taken
beside them, and verify runs integrity_check beside the comparison. These tests pin that the
hashes are exactly :func:`fingerprint`'s (so manifests written before verify unchanged), and
that the parallel parts still report every check.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
from pathlib import Path

import pytest
from helpers.backups import seeded, set_manifest

from conductor_magics.engine.backup import Backups, _sqlite_table_map
from conductor_magics.engine.connection import make_engine
from conductor_magics.engine.fingerprint import fingerprint
from conductor_magics.engine.results import FAIL, PASS


def _fingerprint_map(engine) -> dict[str, dict]:
    return {name: {"rows": fp.rows, "sha256": fp.sha256} for name, fp in fingerprint(engine).items()}


def _awkward_database(path: Path) -> None:
    """Every value kind SQLite stores, names that need quoting, keys of every shape, and more
    rows than one hashing batch (10,000)."""
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE "odd ""name"" here" (id INTEGER PRIMARY KEY, v);
        CREATE TABLE no_key (a, b TEXT);
        CREATE TABLE pair (x TEXT, y INTEGER, z REAL, PRIMARY KEY (y, x));
        CREATE TABLE lean (k TEXT PRIMARY KEY, n INTEGER) WITHOUT ROWID;
        CREATE TABLE many (id INTEGER PRIMARY KEY, payload TEXT, amount REAL);
        CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY);
        INSERT INTO alembic_version VALUES ('abc123');
    """)
    values = [None, 0, -1, 2**62, 1.0, 0.1, -0.0, 1e300, math.inf, -math.inf, "", "it's", 'say "hi"',
              "line\nbreak", "tab\tand\\backslash", "ünïcødé ✓", b"", b"\x00\xff\x10", "1", 1.5]
    conn.executemany('INSERT INTO "odd ""name"" here" (v) VALUES (?)', [(v,) for v in values])
    conn.executemany("INSERT INTO no_key VALUES (?, ?)", [(v, str(i)) for i, v in enumerate(values)] * 2)
    conn.executemany("INSERT INTO pair VALUES (?, ?, ?)",
                     [(f"x{i % 7}", i // 7, i / 3) for i in range(100)])
    conn.executemany("INSERT INTO lean VALUES (?, ?)", [(f"k{i:04d}", i) for i in range(50)])
    conn.executemany("INSERT INTO many (payload, amount) VALUES (?, ?)",
                     [(f"row {i} " + "x" * (i % 37), i / 7) for i in range(25_001)])
    conn.commit()
    conn.close()


def test_the_cursor_hash_is_fingerprints_hash_byte_for_byte(tmp_path):
    _awkward_database(tmp_path / "awkward.sqlite")
    engine = make_engine(f"sqlite:///{tmp_path / 'awkward.sqlite'}")
    try:
        fast = _sqlite_table_map(engine)
        assert fast == _fingerprint_map(engine)
        assert set(fast) == {'odd "name" here', "no_key", "pair", "lean", "many"}  # tool tables left out
        assert fast["many"]["rows"] == 25_001 and fast["no_key"]["rows"] == 40
        with engine.connect() as conn:  # a Connection works as well as an Engine
            assert _sqlite_table_map(conn) == fast
    finally:
        engine.dispose()


def test_backup_manifest_is_the_old_manifest_and_old_manifests_verify(tmp_path):
    _awkward_database(tmp_path / "awkward.sqlite")
    engine = make_engine(f"sqlite:///{tmp_path / 'awkward.sqlite'}")
    try:
        backups = Backups(tmp_path / "backups", engine)
        manifest = backups.create("fast")
        # what the tool wrote before (fingerprint over SQLAlchemy rows) is what it writes now
        assert manifest.tables == _fingerprint_map(engine)
        # the sha256 taken beside the row hashes is the artifact's
        assert manifest.sha256 == hashlib.sha256(manifest.artifact_path.read_bytes()).hexdigest()
        assert manifest.size_bytes == manifest.artifact_path.stat().st_size
        # a manifest whose tables were hashed the old way verifies
        set_manifest(manifest, tables=_fingerprint_map(engine))
        assert backups.verify("fast").passed
    finally:
        engine.dispose()


def test_parallel_verify_reports_structural_and_content_failures_together(tmp_path):
    engine = seeded(f"sqlite:///{tmp_path / 'live.sqlite'}")
    try:
        backups = Backups(tmp_path / "backups", engine)
        manifest = backups.create()
        # orphans (foreign_key_check fails) and content the manifest does not describe
        with sqlite3.connect(tmp_path / "live.sqlite") as conn:
            conn.execute("PRAGMA foreign_keys = OFF")
            conn.execute("DELETE FROM customers WHERE id IN (SELECT customer_id FROM orders LIMIT 3)")
        conn.close()
        orphaned = backups.create("orphaned")
        set_manifest(orphaned, tables=manifest.tables)
        report = backups.verify("orphaned")
        status = report.frame().set_index("check")["status"]
        assert list(status.index) == [
            "artifact present", "artifact sha256 matches the manifest",
            "restores completely into a scratch database", "SQLite integrity_check",
            "SQLite foreign_key_check", "table row counts and hashes match the manifest",
            "migration head matches the manifest"]
        assert status["SQLite integrity_check"] == PASS and status["SQLite foreign_key_check"] == FAIL
        assert status["table row counts and hashes match the manifest"] == FAIL
        assert "customers" in report.frame().set_index("check").loc[
            "table row counts and hashes match the manifest", "detail"]
    finally:
        engine.dispose()


@pytest.mark.parametrize("keep", ["half", "all but the last page"])
def test_a_truncated_artifact_fails_with_a_full_report(tmp_path, keep):
    # a truncated artifact whose manifest is forged to match it: the restore or the checks
    # run beside each other fail, and verify still returns a report and records it
    engine = seeded(f"sqlite:///{tmp_path / 'live.sqlite'}")
    try:
        backups = Backups(tmp_path / "backups", engine)
        manifest = backups.create("cut")
        data = manifest.artifact_path.read_bytes()
        cut = data[: len(data) // 2] if keep == "half" else data[: len(data) - 4096]
        manifest.artifact_path.write_bytes(cut)
        set_manifest(manifest, sha256=hashlib.sha256(cut).hexdigest(), size_bytes=len(cut))
        report = backups.verify("cut")
        assert report.exit_code == 1 and len(report.checks) >= 5
        assert backups.resolve("cut").verified is False
    finally:
        engine.dispose()
