"""What prune, verify and restore may touch, and what interrupted backups leave behind.

- Issue 10, item 4: only files inside the backups folder, recorded by a manifest whose own
  integrity checks out, are ever deleted or read. Forged manifests (an absolute artifact path,
  ``../../outside``, a symbolic link inside the folder to a file outside, an artifact whose
  sha256 does not match) are reported and left; honest old backups still go.
- Issue 10, item 14: a killed backup leaves one file under the tool's temporary pattern;
  ``backup list`` counts such leftovers, ``prune`` removes them at once when their process is
  gone (and keeps those whose writer still runs), old-style ``.partial`` files after an hour.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers.backups import seeded, set_manifest
from helpers.cli import conductor

from conductor_magics.engine.backup import Backups, Manifest
from conductor_magics.engine.connection import make_engine
from conductor_magics.engine.fingerprint import fingerprint
from conductor_magics.errors import ConductorError
from conductor_magics.fsio import is_tool_temp

CONDUCTOR = Path(sys.executable).parent / "conductor"
REPO = Path(__file__).resolve().parent.parent
FORGERIES = {
    "absolute": "outside the backups folder",
    "dotdot": "outside the backups folder",
    "symlink": "symbolic link",
    "hash": "sha256",
}
OLD = datetime(2026, 1, 1, tzinfo=UTC)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def forge(folder: Path, template: Manifest, kind: str, victim: Path, index: int = 0) -> Manifest:
    """Write a forged manifest of ``kind`` next to the honest ones; its artifact entry points
    at ``victim`` (outside the folder) or, for "hash", is a file whose sha256 differs."""
    forged_id = f"20200101T00000{index}Z-f{index:03x}"
    data = template.to_json()
    data.update(id=forged_id, label=f"forged-{kind}", created_at=OLD.isoformat(), verification=None,
                sha256=sha256_of(victim), size_bytes=victim.stat().st_size)
    artifact = folder / f"{forged_id}.sqlite"
    if kind == "absolute":
        data["artifact"] = str(victim)
    elif kind == "dotdot":
        data["artifact"] = os.path.relpath(victim, folder)
        assert data["artifact"].startswith("../../")
    elif kind == "symlink":
        data["artifact"] = artifact.name
        artifact.symlink_to(victim)
    else:
        data["artifact"] = artifact.name
        shutil.copyfile(template.artifact_path, artifact)
        data["sha256"] = hashlib.sha256(b"something else").hexdigest()
        data["size_bytes"] = artifact.stat().st_size
    (folder / f"{forged_id}.manifest.json").write_text(json.dumps(data), encoding="utf-8")
    return Manifest.from_json(data, folder=folder)


@pytest.fixture
def store(tmp_path: Path):
    """(Backups in tmp/project/backups with three honest backups of old dates, a victim file
    outside: a copy of an honest artifact, so its sha256 matches any manifest forged for it)."""
    engine = seeded(f"sqlite:///{tmp_path / 'live.sqlite'}")
    backups = Backups(tmp_path / "project" / "backups", engine)
    made = []
    for day in range(3):
        manifest = backups.create()
        set_manifest(manifest, created_at=(OLD + timedelta(days=10 + day)).isoformat())
        made.append(backups.resolve(manifest.id))
    victim = tmp_path / "outside" / "victim.sqlite"
    victim.parent.mkdir()
    shutil.copyfile(made[0].artifact_path, victim)
    yield backups, made, victim
    engine.dispose()


@pytest.mark.parametrize("kind", sorted(FORGERIES))
def test_prune_leaves_forged_manifests_and_reports_them(store, kind):
    backups, made, victim = store
    victim_bytes = victim.read_bytes()
    forged = forge(backups.folder, made[0], kind, victim)
    forged_files = {p.name: (p.is_symlink(), p.read_bytes() if p.is_file() else None)
                    for p in backups.folder.iterdir() if p.name.startswith(forged.id)}
    assert len(forged_files) == (1 if kind in ("absolute", "dotdot") else 2)

    for dry_run in (True, False):
        report = backups.prune(keep_last=1, keep_daily=0, dry_run=dry_run)
        # the honest old backups go (or would go); the forged one is reported, never deleted
        assert {d["id"] for d in report.deleted} == {made[0].id, made[1].id}, report.to_json()
        left = [item for item in report.to_json()["left"] if forged.id in item["path"]]
        assert len(left) == 1 and re.search(FORGERIES[kind], left[0]["reason"]), report.to_json()
        assert forged.id in report.to_text() and "leave" in report.to_text()
        assert "leave" in set(report.frame()["action"])
        assert victim.read_bytes() == victim_bytes
        assert {p.name: (p.is_symlink(), p.read_bytes() if p.is_file() else None)
                for p in backups.folder.iterdir() if p.name.startswith(forged.id)} == forged_files
    assert list(backups.list()["id"]) == [made[2].id] + ([forged.id] if kind == "hash" else [])
    assert not made[0].artifact_path.exists() and not made[0].manifest_path.exists()
    # a second prune reports the same and still deletes nothing of it
    again = backups.prune(keep_last=0, keep_daily=0)
    assert any(forged.id in item["path"] for item in again.left)
    assert victim.read_bytes() == victim_bytes


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink"])
def test_verify_and_restore_never_read_outside_the_folder(store, tmp_path, kind):
    backups, made, _ = store
    # the victim outside is a perfectly restorable database: only the path check stops it
    secret = tmp_path / "outside" / "secret.sqlite"
    with sqlite3.connect(secret) as conn:
        conn.execute("CREATE TABLE secret (word TEXT)")
        conn.execute("INSERT INTO secret VALUES ('swordfish')")
    conn.close()
    forged = forge(backups.folder, made[0], kind, secret)
    with make_engine(f"sqlite:///{secret}").connect() as conn:
        tables = {n: {"rows": f.rows, "sha256": f.sha256} for n, f in fingerprint(conn).items()}
    set_manifest(forged, tables=tables, migration_head=None)
    target_path = tmp_path / "target.sqlite"
    target = f"sqlite:///{target_path}"
    for ref in (forged.id, "forged-" + kind, str(backups.folder / f"{forged.id}.manifest.json")):
        with pytest.raises(ConductorError, match=FORGERIES[kind]):
            backups.restore(ref, target)
        with pytest.raises(ConductorError, match=FORGERIES[kind]):
            backups.verify(ref)
    assert not target_path.exists() or not fingerprint(make_engine(target))
    assert forged.id not in set(backups.list()["id"])
    assert forged.id in " ".join(backups.incomplete()["path"])


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_prune_removes_dead_writers_temps_at_once_and_keeps_live_ones(store):
    backups, made, _ = store
    folder = backups.folder
    dead = folder / f".{made[2].id}9.sqlite.conductor-tmp-{dead_pid()}-0badf00d"
    live = folder / f".{made[2].id}8.sqlite.conductor-tmp-{os.getpid()}-0badf00d"
    legacy_old = folder / f"{made[2].id}7.sqlite.partial"
    legacy_new = folder / f"{made[2].id}6.sqlite.partial"
    users = [folder / "notes.tmp", folder / ".meeting.20261130.notes.tmp", folder / "README.md"]
    for path in (dead, live, legacy_old, legacy_new, *users):
        path.write_bytes(b"x" * 1000)
    hour_ago = time.time() - 2 * 3600
    os.utime(legacy_old, (hour_ago, hour_ago))

    pending = backups.pending()
    assert pending["backups"] == 2 and pending["bytes"] == 2000
    assert sorted(pending["files"]) == sorted([str(dead), str(legacy_old)])
    assert pending["in_progress"] == 2

    report = backups.prune(keep_last=5, keep_daily=0)
    assert sorted(report.leftovers) == sorted([str(dead), str(legacy_old)])
    assert not dead.exists() and not legacy_old.exists()
    assert live.exists() and legacy_new.exists() and all(p.exists() for p in users)
    assert len(backups.list()) == 3 and backups.pending()["backups"] == 0


# --------------------------------------------------------------------------- SIGKILL mid-copy

KILLS = 20

#: forks one backup process per line read, prints its pid, reaps it and prints how it ended
#: (the imports are paid once, so 20 kills take seconds)
FORKING_BACKUPS = """
import os, sys
from pathlib import Path
from conductor_magics.engine.backup import Backups
from conductor_magics.engine.connection import make_engine

url, folder = sys.argv[1], Path(sys.argv[2])
for _ in sys.stdin:
    pid = os.fork()
    if pid == 0:
        Backups(folder, make_engine(url)).create()
        os._exit(0)
    print(pid, flush=True)
    print(os.waitpid(pid, 0)[1], flush=True)
"""


def _cli(project: Path, *args: str) -> subprocess.CompletedProcess:
    proc = conductor(*args, "--id", "orders_db", root=project, cwd=Path.cwd())
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, (args, proc.stdout, proc.stderr)
    return proc


def test_killed_backups_are_counted_by_list_and_pruned_at_once(project: Path):
    component = project / "storage-conductor" / "storages" / "orders_db"
    database = component / "dev.sqlite"
    with sqlite3.connect(database) as conn:  # ~8 MB: the copy takes a moment
        conn.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
        conn.executemany("INSERT INTO blobs (payload) VALUES (?)",
                         [(os.urandom(4000),) for _ in range(2000)])
    conn.close()
    folder = component / "backups"
    url = f"sqlite:///{database}"
    engine = make_engine(url)
    try:
        Backups(folder, engine).create("before")
    finally:
        engine.dispose()

    forker = subprocess.Popen([sys.executable, "-c", FORKING_BACKUPS, url, str(folder)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert forker.stdin is not None and forker.stdout is not None
    sizes = []
    try:
        for _ in range(KILLS):
            forker.stdin.write("go\n")
            forker.stdin.flush()
            pid = int(forker.stdout.readline())
            deadline = time.monotonic() + 60
            while True:  # kill once the copy has written pages into the temporary artifact
                temps = [p for p in folder.glob(f".*.conductor-tmp-{pid}-*")]
                if temps and temps[0].stat().st_size > 0:
                    os.kill(pid, signal.SIGKILL)
                    break
                assert time.monotonic() < deadline, "no temporary artifact appeared"
                time.sleep(0.0005)
            status = int(forker.stdout.readline())
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, \
                "the backup finished before it was killed"
            sizes.append(temps[0].stat().st_size)
    finally:
        forker.stdin.close()
        forker.wait(timeout=60)

    leftovers = [p for p in folder.iterdir() if is_tool_temp(p.name)]
    assert len(leftovers) == KILLS, sorted(p.name for p in leftovers)
    assert not [p for p in folder.iterdir() if ".partial" in p.name or p.name.endswith("-journal")]
    listed = json.loads(_cli(project, "backup", "list", "--json").stdout)
    assert [b["label"] for b in listed["backups"]] == ["before"]
    assert listed["incomplete"]["backups"] == KILLS
    assert listed["incomplete"]["bytes"] == sum(sizes)
    assert f"{KILLS} incomplete backups" in listed["summary"] and "backup prune" in listed["summary"]

    pruned = json.loads(_cli(project, "backup", "prune", "--keep-last", "5", "--json").stdout)
    assert len(pruned["leftovers"]) == KILLS and pruned["left"] == [] and not pruned["deleted"]
    remaining = sorted(p.name for p in folder.iterdir())
    assert not [n for n in remaining if is_tool_temp(n) or ".partial" in n], remaining

    _cli(project, "backup", "--label", "after")
    listed = json.loads(_cli(project, "backup", "list", "--json").stdout)
    assert [b["label"] for b in listed["backups"]] == ["after", "before"]
    assert listed["incomplete"]["backups"] == 0
