"""Files the tool creates get the user's umask mode (0o666 & ~umask), like any file the user
makes; files that exist keep their mode. Run through the CLI (in process) under umask 022 and 027."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from helpers.cli import conductor
from helpers.sample_ddl import V1

ORDERS = Path("storage-conductor/storages/orders_db")


def _cli(project: Path, umask: int, *args: str) -> subprocess.CompletedProcess:
    proc = conductor(*args, root=project, cwd=Path.cwd(), umask=umask)
    assert proc.returncode == 0, (args, proc.stdout[-1500:], proc.stderr[-1500:])
    return proc


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_new_files_get_the_umask_mode(project: Path, tmp_path: Path, umask: int):
    component = project / ORDERS
    ddl = tmp_path / "v1.sql"
    ddl.write_text(V1)
    query = tmp_path / "q.sql"
    query.write_text("SELECT id FROM orders WHERE customer_id = 1")
    _cli(project, umask, "implement", "orders_db")
    _cli(project, umask, "schema", "declare", "orders_db", "--file", str(ddl))
    _cli(project, umask, "migrate", "new", "-m", "v1", "--id", "orders_db")
    _cli(project, umask, "migrate", "up", "--id", "orders_db")
    _cli(project, umask, "query", "orders_of_customer", "--id", "orders_db", "--file", str(query))
    _cli(project, umask, "test", "smoke", "--id", "orders_db", "--passed")
    _cli(project, umask, "backup", "--id", "orders_db", "--label", "modes")
    for number in ("1.1", "1.2", "1.3", "1.4"):
        _cli(project, umask, "task", "done", "orders_db", number)
    _cli(project, umask, "verify", "orders_db", "--phase", "1", "--confirm", "ok", "--force")

    wanted = 0o666 & ~umask
    created = [component / name for name in ("schema.sql", "workload.sql", "test_runs.json",
                                               "verification.json", ".gitignore")]
    created += sorted((component / "migrations" / "versions").glob("*.py"))
    created += sorted((component / "backups").glob("*.json"))
    assert len(created) == 7, created  # five files, one revision, one manifest
    wrong = {str(p.relative_to(project)): oct(_mode(p)) for p in created if _mode(p) != wanted}
    assert not wrong, f"wanted {oct(wanted)}: {wrong}"


def test_existing_files_keep_their_mode(project: Path):
    component = project / ORDERS
    plan, metadata = component / "plan.md", component / "metadata.json"
    plan.chmod(0o600)
    metadata.chmod(0o640)
    _cli(project, 0o022, "implement", "orders_db")
    _cli(project, 0o022, "task", "done", "orders_db", "1.1")
    assert _mode(plan) == 0o600
    assert _mode(metadata) == 0o640
