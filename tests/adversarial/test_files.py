"""Hostile inputs to the workspace files: unwritable files, a planted lock file, bytes
that are not UTF-8. Each is refused with its exit code and one line, nothing changed."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers.hostile import conductor, env

ORDERS = Path("storage-conductor") / "storages" / "orders_db"


def _make_unwritable(path: Path) -> None:
    """Immutable as root (chattr +i), else read-only: either way a write is refused."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    else:
        path.chmod(0o444)
        path.parent.chmod(0o555)


def _make_writable(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.parent.chmod(0o755)
        path.chmod(0o644)


@pytest.mark.parametrize("name", ["plan.md", "metadata.json", "../../tracks.md"])
def test_unwritable_file_refuses_tick_and_changes_nothing(unlocked_project: Path, name: str) -> None:
    from helpers.hostile import refused, tree

    project = unlocked_project
    path = (project / ORDERS / name).resolve()
    before = tree(project)
    _make_unwritable(path)
    try:
        proc = conductor(project, "task", "done", "orders_db", "1.1")
    finally:
        _make_writable(path)
    refused(proc, 2, rf"cannot write {Path(name).name}: (permission denied|operation not permitted)",
            before, project)


def test_lock_file_planted_as_symlink_in_private_folder_is_not_followed(unlocked_project: Path,
                                                                      tmp_path: Path) -> None:
    from conductor_magics.workspace.files import lock_path_for

    project = unlocked_project
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    old = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmpdir)
    tempfile.tempdir = None
    try:
        path = lock_path_for(project / "storage-conductor")
    finally:
        os.environ.pop("TMPDIR") if old is None else os.environ.__setitem__("TMPDIR", old)
        tempfile.tempdir = None
    path.symlink_to(victim)
    proc = conductor(project, "task", "done", "orders_db", "1.1", extra_env={"TMPDIR": str(tmpdir)})
    from helpers.hostile import one_line_error

    one_line_error(proc, 2, r"lock file .* is a symbolic link")
    assert victim.read_text() == "precious\n"


def test_invalid_utf8_in_sql_files_is_one_line(project: Path, tmp_path: Path) -> None:
    from helpers.hostile import refused, tree

    folder = project / ORDERS
    body = tmp_path / "body.sql"
    body.write_bytes(b"SELECT 1;\nSELECT '\xff\xfe';\n")
    before = tree(project)
    proc = conductor(project, "sql", "--id", "orders_db", "--file", str(body))
    refused(proc, 2, r"body\.sql:2: not valid UTF-8 \(byte 18\)", before, project)

    (folder / "schema.sql").write_bytes(b"CREATE TABLE t (id int);\n-- caf\xe9\n")
    before = tree(project)
    proc = conductor(project, "schema", "show", "--id", "orders_db")
    refused(proc, 2, r"schema\.sql:2: not valid UTF-8 \(byte 31\)", before, project)
    (folder / "schema.sql").unlink()

    (folder / "workload.sql").write_bytes(b"-- name: q1\nSELECT '\x80';\n")
    before = tree(project)
    for args in (["query", "--id", "orders_db"], ["advise", "--id", "orders_db"],
                 ["query", "q2", "--id", "orders_db", "--file", str(tmp_path / "q2.sql")]):
        (tmp_path / "q2.sql").write_text("SELECT 2\n")
        proc = conductor(project, *args)
        refused(proc, 2, r"workload\.sql:2: not valid UTF-8 \(byte 20\)", before, project)


def test_invalid_utf8_on_stdin_body_is_one_line(project: Path) -> None:
    from helpers.hostile import CONDUCTOR, one_line_error

    proc = subprocess.run([str(CONDUCTOR), "--root", str(project), "sql", "--id", "orders_db", "--file", "-"],
                          input=b"SELECT '\xff';\n", capture_output=True, env=env(), timeout=60,
                          check=False)
    proc.stdout, proc.stderr = proc.stdout.decode(), proc.stderr.decode()
    one_line_error(proc, 2, r"<stdin>:1: not valid UTF-8 \(byte 8\)")


