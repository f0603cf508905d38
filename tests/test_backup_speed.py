"""The faster SQLite backup path (issue 16) keeps the manifest's meaning byte for byte.

The row hashes are now read from the sqlite3 cursor directly, the artifact's sha256 is taken
beside them, and verify runs integrity_check beside the comparison. These tests pin that the
hashes are exactly :func:`fingerprint`'s (so manifests written before verify unchanged), and
that the parallel parts still report every check.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from pathlib import Path

import pytest
from helpers.backups import seeded, set_manifest

from conductor_magics.engine.backup import Backups, _same_bytes, _sqlite_table_map
from conductor_magics.engine.connection import make_engine
from conductor_magics.engine.fingerprint import fingerprint
from conductor_magics.engine.results import FAIL, PASS
from conductor_magics.errors import ConductorError


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
@pytest.mark.parametrize("size", ["small", "big"])
def test_a_truncated_artifact_fails_with_a_full_report(tmp_path, keep, size):
    # a truncated artifact whose manifest is forged to match it: the restore or the checks
    # run beside each other fail, and verify still returns a report and records it; a big
    # backup has no row hashes to compare: the restore, quick_check and the counts notice
    engine = seeded(f"sqlite:///{tmp_path / 'live.sqlite'}")
    try:
        backups = Backups(tmp_path / "backups", engine)
        if size == "big":
            backups.row_hash_max_bytes = 0
        manifest = backups.create("cut")
        data = manifest.artifact_path.read_bytes()
        cut = data[: len(data) // 2] if keep == "half" else data[: len(data) - 4096]
        manifest.artifact_path.write_bytes(cut)
        set_manifest(manifest, sha256=hashlib.sha256(cut).hexdigest(), size_bytes=len(cut))
        report = backups.verify("cut")
        assert report.exit_code == 1 and len(report.checks) >= 5, report.to_text()
        assert backups.resolve("cut").verified is False
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- manifest version 2

#: a backup made by the code before manifest version 2 (main at ec098b1), kept byte for byte
V1_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "backup_v1"
V1_ID = "20261201T132025Z-5eaa"
CHECKS_FULL = ["artifact present", "artifact sha256 matches the manifest",
               "restores completely into a scratch database", "SQLite integrity_check",
               "SQLite foreign_key_check", "table row counts and hashes match the manifest",
               "migration head matches the manifest"]
CHECKS_QUICK = [c.replace("integrity_check", "quick_check") for c in CHECKS_FULL]


def _v1_backups(tmp_path: Path) -> tuple[Backups, object]:
    folder = tmp_path / "backups"
    folder.mkdir()
    for source in V1_FIXTURE.iterdir():
        (folder / source.name).write_bytes(source.read_bytes())
    engine = make_engine(f"sqlite:///{tmp_path / 'live.sqlite'}")
    return Backups(folder, engine), engine


def test_a_version_1_manifest_verifies_and_restores_as_before(tmp_path):
    backups, engine = _v1_backups(tmp_path)
    try:
        manifest = backups.resolve("v1-fixture")
        assert manifest.version == 1 and manifest.row_hashes
        report = backups.verify("v1-fixture")
        assert report.passed, report.to_text()
        checks = report.frame().set_index("check")
        assert list(checks.index) == CHECKS_FULL
        # the version-1 path: integrity_check and the row hashes, no byte comparison
        assert checks.loc["restores completely into a scratch database", "detail"] == \
            "into a temporary sqlite database"
        assert checks.loc["table row counts and hashes match the manifest", "detail"] == \
            "2 tables, 320 rows identical"
        # recording the verification keeps the manifest a version-1 manifest
        stored = json.loads(manifest.manifest_path.read_text())
        assert "version" not in stored and stored["verification"]["passed"] is True

        # its row hashes are still compared: a manifest describing other rows fails
        tables = dict(stored["tables"])
        tables["events"] = {"rows": 300, "sha256": "0" * 64}
        set_manifest(manifest, tables=tables)
        failed = backups.verify("v1-fixture").frame().query("status == 'fail'")["check"]
        assert list(failed) == ["table row counts and hashes match the manifest"]
        set_manifest(manifest, tables=stored["tables"])

        # and it restores, compared row by row with the manifest
        restored = backups.restore("v1-fixture", f"sqlite:///{tmp_path / 'target.sqlite'}")
        assert restored.passed and restored.restored, restored.to_text()
        target = make_engine(f"sqlite:///{tmp_path / 'target.sqlite'}")
        try:
            assert _fingerprint_map(target) == stored["tables"]
        finally:
            target.dispose()
    finally:
        engine.dispose()


def test_small_databases_get_row_hashes_and_integrity_check_in_version_2(tmp_path):
    engine = seeded(f"sqlite:///{tmp_path / 'live.sqlite'}")
    try:
        backups = Backups(tmp_path / "backups", engine)
        manifest = backups.create("small")
        assert manifest.version == 2 and json.loads(manifest.manifest_path.read_text())["version"] == 2
        assert manifest.tables == _fingerprint_map(engine)
        report = backups.verify("small")
        checks = report.frame().set_index("check")
        assert list(checks.index) == CHECKS_FULL and report.passed
        assert checks.loc["restores completely into a scratch database", "detail"].endswith(
            "byte for byte the artifact")
    finally:
        engine.dispose()


def test_big_databases_record_counts_and_verify_by_sha256_bytes_and_quick_check(tmp_path):
    engine = seeded(f"sqlite:///{tmp_path / 'live.sqlite'}")
    try:
        backups = Backups(tmp_path / "backups", engine)
        backups.row_hash_max_bytes = 0  # every database is "big"
        manifest = backups.create("big")
        assert manifest.version == 2 and not manifest.row_hashes
        assert manifest.tables == {name: {"rows": t["rows"]} for name, t in _fingerprint_map(engine).items()}
        assert manifest.sha256 == hashlib.sha256(manifest.artifact_path.read_bytes()).hexdigest()
        assert list(manifest.frame()["sha256"]) == [None, None, None]
        report = backups.verify("big")
        checks = report.frame().set_index("check")
        assert list(checks.index) == CHECKS_QUICK and report.passed, report.to_text()
        assert checks.loc["restores completely into a scratch database", "detail"].endswith(
            "byte for byte the artifact")
        assert "600 rows: the counts match" in checks.loc["table row counts and hashes match the manifest", "detail"]
        assert "SQLite integrity_check" not in set(checks.index)
        # --full: the index-against-table cross check on a big backup too
        full = backups.verify("big", full=True).frame().set_index("check")
        assert "SQLite integrity_check" in set(full.index) and "SQLite quick_check" not in set(full.index)
        assert (full["status"] == "pass").all(), full

        # the counts are compared: a manifest with other counts fails, naming the table
        tables = json.loads(manifest.manifest_path.read_text())["tables"]
        set_manifest(manifest, tables={**tables, "orders": {"rows": 199}})
        failed = backups.verify("big").frame().query("status == 'fail'")
        assert list(failed["check"]) == ["table row counts and hashes match the manifest"]
        assert "orders: 200 rows, the manifest says 199" in failed["detail"].iloc[0]
        set_manifest(manifest, tables=tables)

        # restore into an empty target: counts and head compared, integrity_check run
        restored = backups.restore("big", f"sqlite:///{tmp_path / 'target.sqlite'}")
        assert restored.passed and restored.restored, restored.to_text()
        assert "SQLite integrity_check" in set(restored.frame()["check"])
        target = make_engine(f"sqlite:///{tmp_path / 'target.sqlite'}")
        try:
            assert _fingerprint_map(target) == _fingerprint_map(engine)
        finally:
            target.dispose()
    finally:
        engine.dispose()


def test_the_byte_comparison_skips_only_the_header(tmp_path):
    original = tmp_path / "a.sqlite"
    original.write_bytes(bytes(range(256)) * 40_000)  # ~10 MB: more than one read chunk
    copy = tmp_path / "b.sqlite"
    data = bytearray(original.read_bytes())
    data[24] ^= 0xFF  # the change counter: the backup API rewrites it in every copy
    copy.write_bytes(data)
    assert _same_bytes(original, copy) is None
    for position in (100, 4096, len(data) - 1, 5 * 2**20 + 7):
        flipped = bytearray(data)
        flipped[position] ^= 1
        copy.write_bytes(flipped)
        assert _same_bytes(original, copy) == f"the restored copy differs from the artifact at byte {position}"
    copy.write_bytes(data[:-1])
    assert "bytes, the artifact" in _same_bytes(original, copy)


@pytest.mark.parametrize("version", [3, "2", True, 0])
def test_a_manifest_of_another_format_is_not_trusted(tmp_path, version):
    engine = seeded(f"sqlite:///{tmp_path / 'live.sqlite'}")
    try:
        backups = Backups(tmp_path / "backups", engine)
        manifest = backups.create("odd")
        set_manifest(manifest, version=version)
        with pytest.raises(ConductorError, match="not trusted"):
            backups.verify("odd")
        report = backups.prune(keep_last=0, keep_daily=0)
        assert report.deleted == [] and manifest.artifact_path.exists()
        left = {item["path"]: item["reason"] for item in report.left}
        assert "version" in left[str(manifest.manifest_path)] and str(manifest.artifact_path) in left
    finally:
        engine.dispose()


def test_the_quick_checks_still_find_orphans_and_report_every_check(tmp_path):
    engine = seeded(f"sqlite:///{tmp_path / 'live.sqlite'}")
    try:
        with sqlite3.connect(tmp_path / "live.sqlite") as conn:
            conn.execute("PRAGMA foreign_keys = OFF")
            conn.execute("DELETE FROM customers WHERE id IN (SELECT customer_id FROM orders LIMIT 3)")
        conn.close()
        backups = Backups(tmp_path / "backups", engine)
        backups.row_hash_max_bytes = 0
        backups.create("orphaned")
        report = backups.verify("orphaned")
        checks = report.frame().set_index("check")
        assert list(checks.index) == CHECKS_QUICK
        assert set(checks.query("status == 'fail'").index) == {"SQLite foreign_key_check"}
        assert "orders: " in checks.loc["SQLite foreign_key_check", "detail"]
        assert "reference a missing customers row" in checks.loc["SQLite foreign_key_check", "detail"]
    finally:
        engine.dispose()
