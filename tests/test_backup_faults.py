"""Fault injection: damaged artifacts always fail verification, and a backup killed mid-way
never looks valid.

- 100 artifacts per engine (SQLite, PostgreSQL), each truncated at a random length or with
  one byte flipped at a random position (seeded): every verify must fail.
- The same kind of damage with the manifest's sha256 and size forged to match, so only the
  content checks (restore, structural checks, row hashes) can notice: the test prints how
  many they catch. Some damage is undetectable by content checks by nature (a flipped byte
  in a SQLite page's free space, or in a pg_dump header string such as the dump's creation
  time); the sha256 check catches all of it.
- A backup process SIGKILLed while copying, hashing rows or hashing the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.backups import seeded, set_manifest

from conductor_magics.engine.backup import CHECK_PRESENT, CHECK_SHA256, Backups
from conductor_magics.engine.connection import make_engine
from conductor_magics.fsio import TEMP_GLOB, is_tool_temp, temp_final_name

REPO = Path(__file__).resolve().parent.parent
DAMAGED = 100
FORGED = 40


def damage_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str, str]:
    """(damaged bytes, kind, description): truncated at a random length, or one byte at a
    random position XORed with a random non-zero mask."""
    if rng.random() < 0.5:
        cut = rng.randrange(0, len(data))
        return data[:cut], "truncate", f"truncated to {cut} of {len(data)} bytes"
    position = rng.randrange(len(data))
    mask = rng.randrange(1, 256)
    flipped = bytearray(data)
    flipped[position] ^= mask
    return bytes(flipped), "flip", f"byte {position} of {len(data)} XOR 0x{mask:02x}"


@pytest.fixture(params=["sqlite", "postgresql"])
def backed_up(request, url_for, tmp_path):
    """(Backups, manifest of a backup of three seeded tables, its original artifact bytes)."""
    engine = seeded(url_for(request.param))
    backups = Backups(tmp_path / "backups", engine)
    manifest = backups.create("original")
    yield backups, manifest, manifest.artifact_path.read_bytes()
    engine.dispose()


@pytest.mark.slow
def test_every_damaged_artifact_fails_verification(backed_up):
    backups, manifest, original = backed_up
    rng = random.Random(f"damage-{manifest.engine}")
    missed = []
    for _ in range(DAMAGED):
        damaged, _kind, what = damage_bytes(original, rng)
        manifest.artifact_path.write_bytes(damaged)
        report = backups.verify("original")  # never raises: every problem is a failed check
        failed = set(report.frame().query("status == 'fail'")["check"])
        if report.exit_code != 1 or not failed & {CHECK_PRESENT, CHECK_SHA256}:
            missed.append(what)
        assert backups.resolve("original").verified is False
    assert missed == []
    # control: the intact artifact passes again, so the failures above were the damage
    manifest.artifact_path.write_bytes(original)
    assert backups.verify("original").passed


@pytest.mark.slow
def test_content_checks_alone_on_forged_manifests(backed_up, capsys):
    backups, manifest, original = backed_up
    rng = random.Random(f"forged-{manifest.engine}")
    caught = {"truncate": 0, "flip": 0}
    tried = {"truncate": 0, "flip": 0}
    undetected = []
    for _ in range(FORGED):
        damaged, kind, what = damage_bytes(original, rng)
        manifest.artifact_path.write_bytes(damaged)
        set_manifest(manifest, sha256=hashlib.sha256(damaged).hexdigest(), size_bytes=len(damaged))
        report = backups.verify("original")
        checks = report.frame().set_index("check")["status"]
        assert checks[CHECK_SHA256] == "pass" and checks[CHECK_PRESENT] == "pass"
        tried[kind] += 1
        if report.exit_code == 1:
            caught[kind] += 1
        else:
            undetected.append(what)
    with capsys.disabled():
        print(f"\n{manifest.engine}: content checks alone caught {caught['truncate']}/{tried['truncate']} "
              f"truncations and {caught['flip']}/{tried['flip']} byte flips "
              f"(artifact {len(original)} bytes); undetected: {undetected}")
    # A shorter file always loses pages / archive members that the restore needs.
    assert caught["truncate"] == tried["truncate"] > 0
    if manifest.engine == "sqlite":
        # Exactly the flips in bytes that hold nothing go unnoticed: SQLite has no page
        # checksums, and unallocated space is never read.
        roles = {what: sqlite_byte_role(original, int(what.split()[1])) for what in undetected}
        assert all(role in NO_DATA for role in roles.values()), roles
        assert caught["flip"] > 0
    else:
        # Missed flips hit TOC fields this restore never uses (owner names under --no-owner,
        # tablespace and flag fields, descriptive tags, catalog OIDs) or the object name in a
        # DROP ... IF EXISTS, a no-op in the empty scratch database.
        assert caught["flip"] >= tried["flip"] // 2


#: what sqlite_byte_role calls bytes that hold no data
NO_DATA = {"unallocated", "freeblock", "free page", "informational header"}


def sqlite_byte_role(data: bytes, position: int) -> str:
    """What the byte at ``position`` of a SQLite file is (file format: sqlite.org/fileformat2.html)."""
    page_size = int.from_bytes(data[16:18], "big") or 65536
    page, offset = divmod(position, page_size)
    if page == 0 and offset < 100:
        # change counter, freelist/vacuum fields, reserved space, version-valid-for, library version
        return "informational header" if 24 <= offset < 28 or offset >= 60 else "header"
    base = 100 if page == 0 else 0
    content = data[page * page_size:(page + 1) * page_size]
    kind = content[base]
    if kind not in (2, 5, 10, 13):
        return "free page"  # freelist trunk/leaf (or overflow; none here: rows are small)
    header = 8 if kind in (10, 13) else 12
    cells = int.from_bytes(content[base + 3:base + 5], "big")
    cells_start = int.from_bytes(content[base + 5:base + 7], "big") or 65536
    if base + header + 2 * cells <= offset < cells_start:
        return "unallocated"
    block = int.from_bytes(content[base + 1:base + 3], "big")
    while block:
        size = int.from_bytes(content[block + 2:block + 4], "big")
        if block <= offset < block + size:
            return "freeblock"
        block = int.from_bytes(content[block:block + 2], "big")
    return "b-tree content"


def test_damaged_duckdb_artifacts_fail_verification(tmp_path):
    from conductor_magics.engine.schema import apply_sql

    engine = make_engine(f"duckdb:///{tmp_path / 'live.duckdb'}")
    try:
        apply_sql(engine, """
            CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, price DECIMAL(10, 2));
            INSERT INTO items SELECT i, 'item ' || i, i * 0.5 FROM range(1, 2001) t(i);
        """)
        backups = Backups(tmp_path / "backups", engine)
        manifest = backups.create("duck")
        original = manifest.artifact_path.read_bytes()
        rng = random.Random("damage-duckdb")
        for _ in range(20):
            damaged, _kind, what = damage_bytes(original, rng)
            manifest.artifact_path.write_bytes(damaged)
            assert backups.verify("duck").exit_code == 1, what
        manifest.artifact_path.write_bytes(original)
        assert backups.verify("duck").passed
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- killed mid-way

KILLED_BACKUP = """
import sys, time
from pathlib import Path
from conductor_magics.engine.backup import Backups
from conductor_magics.engine.connection import make_engine


class SlowBar:
    # announces each phase, then dawdles so the parent can kill it right there
    def __init__(self, total=None, desc="", unit=""):
        print("phase", desc, flush=True)
        time.sleep(0.3)

    def update(self, n):
        time.sleep(0.05)

    def close(self):
        pass


backups = Backups(Path(sys.argv[2]), make_engine(sys.argv[1]))
backups.progress_min_bytes = 0
backups.create("killed", progress=SlowBar)
print("finished", flush=True)
"""


def _big_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
    rng = random.Random(1)
    conn.executemany("INSERT INTO blobs (payload) VALUES (?)",
                     [(rng.randbytes(4000),) for _ in range(1500)])  # ~6 MB
    conn.commit()
    conn.close()


@pytest.mark.parametrize("phase", ["backup (copy pages)", "backup (row hashes)", "backup (sha256)"])
def test_a_killed_backup_never_looks_valid(phase, tmp_path):
    _big_sqlite(tmp_path / "big.sqlite")
    url = f"sqlite:///{tmp_path / 'big.sqlite'}"
    folder = tmp_path / "backups"
    engine = make_engine(url)
    try:
        backups = Backups(folder, engine)
        before = backups.create("before")
        process = subprocess.Popen([sys.executable, "-c", KILLED_BACKUP, url, str(folder)],
                                   stdout=subprocess.PIPE, text=True, cwd=REPO,
                                   env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            assert process.stdout is not None
            for line in process.stdout:
                assert line.strip() != "finished", f"the backup finished before reaching {phase}"
                if line.strip() == f"phase {phase}":
                    break
            else:
                pytest.fail(f"the backup process ended without reaching {phase}")
            if phase == "backup (copy pages)":
                # kill once the partial file holds written pages
                deadline = time.monotonic() + 30
                while not any(p.stat().st_size > 0 for p in folder.glob(TEMP_GLOB)):
                    assert time.monotonic() < deadline, "no temporary artifact appeared"
                    time.sleep(0.001)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == -signal.SIGKILL

        # exactly the temporary artifact is left over, under the tool's one pattern (the
        # copy keeps its journal in memory: no "-journal" file beside it)
        leftovers = backups.incomplete()
        partials = [Path(p) for p in leftovers["path"]]
        assert len(partials) == 1 and is_tool_temp(partials[0].name), partials
        assert temp_final_name(partials[0].name).endswith(".sqlite")
        assert list(leftovers["prune"]) == ["remove"]
        assert list(backups.list()["id"]) == [before.id]
        assert backups.latest().id == before.id
        with pytest.raises(Exception, match="no backup 'killed'"):
            backups.resolve("killed")

        # the next backup works, may reuse the label, and verifies
        again = backups.create("killed")
        assert backups.verify("killed").passed
        assert list(backups.list()["id"]) == [again.id, before.id]
        # its process is gone, so prune removes the leftover at once; the backups stay
        report = backups.prune(keep_last=10, keep_daily=0)
        assert sorted(report.leftovers) == sorted(map(str, partials))
        assert not any(p.exists() for p in partials)
        assert backups.incomplete().empty and len(backups.list()) == 2
        assert json.loads(before.manifest_path.read_text())["id"] == before.id
    finally:
        engine.dispose()
