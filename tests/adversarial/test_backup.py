"""Hostile inputs to `backup` and `restore` through the real CLI: a file or an unwritable
folder given as `--to`, a label that does not exist, forged manifests pointing outside the
backups folder, a link planted at the folder's lock. Each: the expected exit code, one line
on stderr, and nothing changed on disk (issue 10, items 4 and 12)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from helpers.hostile import conductor, one_line_error, refused, tree

COMPONENT = ("storage-conductor", "storages", "orders_db")


@pytest.fixture
def backed_up(project: Path) -> Path:
    """The example project whose orders_db has a small live database and one backup
    ("first"), so every file a backup run creates on its way exists already."""
    component = project.joinpath(*COMPONENT)
    with sqlite3.connect(component / "dev.sqlite") as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        conn.executemany("INSERT INTO notes (body) VALUES (?)", [(f"note {i}",) for i in range(50)])
    conn.close()
    proc = conductor(project, "backup", "--id", "orders_db", "--label", "first")
    assert proc.returncode == 0, proc.stderr
    return project


def backups_folder(project: Path) -> Path:
    return project.joinpath(*COMPONENT, "backups")


@contextlib.contextmanager
def unwritable(folder: Path):
    """``folder`` cannot be written, even by root (immutable flag; mode 555 otherwise)."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        mode = folder.stat().st_mode
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(mode)


def test_backup_to_an_existing_file(backed_up: Path, tmp_path: Path):
    target = tmp_path / "not-a-folder"
    target.write_text("keep me\n")
    before, outside = tree(backed_up), target.read_bytes()
    for action in ((), ("list",)):
        proc = conductor(backed_up, "backup", *action, "--id", "orders_db", "--to", str(target))
        refused(proc, 2, r"not-a-folder exists and is not a folder.*--to DIR", before, backed_up)
        assert target.read_bytes() == outside
    proc = conductor(backed_up, "restore", "first", "--id", "orders_db", "--to", str(target))
    refused(proc, 2, r"not-a-folder exists and is not a folder", before, backed_up)
    # a folder under a file cannot be created either
    proc = conductor(backed_up, "backup", "--id", "orders_db", "--to", str(target / "sub"))
    refused(proc, 2, r"cannot create the backups folder .*not-a-folder/sub", before, backed_up)
    assert target.read_bytes() == outside


def test_backup_to_a_folder_that_cannot_be_written(backed_up: Path, tmp_path: Path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "existing.txt").write_text("x\n")
    before, inside = tree(backed_up), tree(locked)
    with unwritable(locked):
        with pytest.raises(OSError):
            (locked / "probe").write_text("")
        proc = conductor(backed_up, "backup", "--id", "orders_db", "--to", str(locked))
        refused(proc, 2, r"cannot write in the backups folder .*locked: .*--to DIR", before, backed_up)
        assert tree(locked) == inside


def test_restore_of_a_missing_label(backed_up: Path):
    before = tree(backed_up)
    proc = conductor(backed_up, "restore", "no-such-label", "--id", "orders_db", "--confirm")
    refused(proc, 2, r"no backup 'no-such-label' in .*backups there \(newest first\): first",
            before, backed_up)


def _forge(folder: Path, victim: Path, kind: str, number: int) -> str:
    """A manifest copied from the honest one, its artifact entry aimed at ``victim``."""
    honest = json.loads(next(folder.glob("*.manifest.json")).read_text())
    forged_id = f"20200101T00000{number}Z-beef"
    data = {**honest, "id": forged_id, "label": f"forged-{kind}", "verification": None,
            "created_at": "2020-01-01T00:00:00+00:00",
            "sha256": hashlib.sha256(victim.read_bytes()).hexdigest(),
            "size_bytes": victim.stat().st_size}
    if kind == "absolute":
        data["artifact"] = str(victim)
    elif kind == "dotdot":
        data["artifact"] = os.path.relpath(victim, folder)
    else:
        data["artifact"] = f"{forged_id}.sqlite"
        (folder / data["artifact"]).symlink_to(victim)
    (folder / f"{forged_id}.manifest.json").write_text(json.dumps(data))
    return forged_id


def test_forged_manifests_are_neither_restored_nor_pruned(backed_up: Path, tmp_path: Path):
    folder = backups_folder(backed_up)
    victims = {}
    for number, kind in enumerate(("absolute", "dotdot", "symlink")):
        victim = tmp_path / "outside" / f"{kind}.sqlite"
        victim.parent.mkdir(exist_ok=True)
        shutil.copyfile(next(folder.glob("*.sqlite")), victim)  # restorable: only trust stops it
        victims[_forge(folder, victim, kind, number)] = victim
    outside_before = tree(tmp_path / "outside")
    before = tree(backed_up)
    for forged_id in victims:
        proc = conductor(backed_up, "restore", forged_id, "--id", "orders_db", "--confirm")
        refused(proc, 2, r"is not trusted: .*(outside the backups folder|symbolic link)",
                before, backed_up)
    proc = conductor(backed_up, "backup", "verify", str(folder / f"{forged_id}.manifest.json"),
                     "--id", "orders_db")
    refused(proc, 2, r"is not trusted: .*symbolic link", before, backed_up)
    for dry in (["--dry-run"], []):
        proc = conductor(backed_up, "backup", "prune", "--keep-last", "0", "--id", "orders_db",
                         "--json", *dry)
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        left = " ".join(item["path"] + " " + item["reason"] for item in report["left"])
        assert all(forged_id in left for forged_id in victims), report
        assert "outside the backups folder" in left and "symbolic link" in left
        assert tree(tmp_path / "outside") == outside_before
        assert all((folder / f"{forged_id}.manifest.json").exists() for forged_id in victims)
        assert "3 file(s) it does not trust" in report["summary"]
    listed = json.loads(conductor(backed_up, "backup", "list", "--id", "orders_db", "--json").stdout)
    assert len(listed["untrusted"]) == 3 and "prune will not touch" in listed["summary"]
    # the honest backup was never verified, so keep-last 0 deleted it
    assert [b["label"] for b in listed["backups"]] == []


def test_a_link_planted_at_the_folder_lock(backed_up: Path, tmp_path: Path):
    folder = backups_folder(backed_up)
    aimed = tmp_path / "elsewhere" / "lock-target"
    aimed.parent.mkdir()
    (folder / ".lock").unlink()
    (folder / ".lock").symlink_to(aimed)
    before = tree(backed_up)
    proc = conductor(backed_up, "backup", "--id", "orders_db", "--label", "second")
    refused(proc, 2, r"cannot lock the backups folder .*\.lock", before, backed_up)
    assert not aimed.exists()
    one_line_error(conductor(backed_up, "backup", "prune", "--keep-last", "1", "--id", "orders_db"),
                   2, r"cannot lock the backups folder")
    assert tree(backed_up) == before and not aimed.exists()
