"""Malformed workspaces and bad command lines, run through the ``conductor`` CLI (in process).

Every case must end with the right exit code (2 bad input, 1 failed check or closed
gate), one clear message on stderr naming the file (and line where there is one), no
Python traceback, and not one byte changed (or added) anywhere in the project folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.cli import clean_env
from helpers.cli import conductor as run_conductor


def conductor(root: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return run_conductor(*args, root=root, cwd=cwd, env=clean_env(PYTHONDONTWRITEBYTECODE="1"),
                         timeout=60)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file (sha256) and folder under ``folder``."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        rel = os.path.relpath(dirpath, folder)
        for name in dirnames:
            found[os.path.join(rel, name) + "/"] = "dir"
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as handle:
                found[os.path.join(rel, name)] = hashlib.sha256(handle.read()).hexdigest()
    return found


# -- mutations ------------------------------------------------------------------------------

def _ws(root: Path) -> Path:
    return (root / "storage-conductor").resolve()


def _orders(root: Path) -> Path:
    return _ws(root) / "storages" / "orders_db"


def _replace(path: Path, old: bytes, new: bytes, count: int = 1) -> None:
    data = path.read_bytes()
    assert data.count(old) >= count, f"{old!r} not in {path}"
    path.write_bytes(data.replace(old, new, count))


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        if needle.encode("utf-8") in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def meta_invalid_json(root: Path) -> None:
    _replace(_orders(root) / "metadata.json", b'"type": "storage",', b'"type": "storage",,')


def meta_list(root: Path) -> None:
    (_orders(root) / "metadata.json").write_text('["orders_db", "Planning"]\n', encoding="utf-8")


def meta_invalid_utf8(root: Path) -> None:
    _replace(_orders(root) / "metadata.json", b"Orders database", b"Orders \xff database")


def meta_unknown_status(root: Path) -> None:
    _replace(_orders(root) / "metadata.json", b'"Planning"', b'"Frobbing"')


def meta_status_disagrees(root: Path) -> None:
    _replace(_orders(root) / "metadata.json", b'"Planning"', b'"Blocked"')


def plan_invalid_utf8(root: Path) -> None:
    _replace(_orders(root) / "plan.md", b"Declare the customers", b"Declare the \xfe\xff customers")


def plan_missing(root: Path) -> None:
    (_orders(root) / "plan.md").unlink()


def tracks_invalid_utf8(root: Path) -> None:
    _replace(_ws(root) / "tracks.md", b"| Orders database |", b"| Orders \xc3\x28database |")


def tracks_no_status_column(root: Path) -> None:
    _replace(_ws(root) / "tracks.md", b"| Status |", b"| Phase |")


def tracks_duplicate_id(root: Path) -> None:
    _replace(_ws(root) / "tracks.md", b"| customer_events |", b"| orders_db |")


def tracks_unsafe_id(root: Path) -> None:
    _replace(_ws(root) / "tracks.md", b"| customer_events |", b"| ../evil |")


def tracks_unknown_status(root: Path) -> None:
    _replace(_ws(root) / "tracks.md", b"| PostgreSQL | Planning |", b"| PostgreSQL | Frobbing |")


def verification_corrupted(root: Path) -> None:
    (_orders(root) / "verification.json").write_text(
        '[\n  {"kind": "verification", "phase": 1,\n   "phase_title": "Phase 1: Schema Design"\n',
        encoding="utf-8")


def verification_not_a_list(root: Path) -> None:
    (_orders(root) / "verification.json").write_text('{"phase": 1}\n', encoding="utf-8")


def phase_one_finished(root: Path) -> None:
    """Every item of orders_db phase 1 ticked: phase 1 waits for verification, phase 2 is locked."""
    plan = _orders(root) / "plan.md"
    lines = plan.read_bytes().split(b"\n")
    start = _line_of(plan, "## Phase 1") - 1
    end = _line_of(plan, "## Phase 2") - 1
    for i in range(start, end):
        lines[i] = lines[i].replace(b"- [ ]", b"- [x]", 1)
    plan.write_bytes(b"\n".join(lines))


def no_workspace(root: Path) -> None:
    (root / "storage-conductor").rename(root / "storage-conductor.bak")


def nothing(root: Path) -> None:
    return None


# -- the corpus -----------------------------------------------------------------------------

Where = Callable[[Path], str]


@dataclass
class Case:
    name: str
    mutate: Callable[[Path], None]
    argv: tuple[str, ...]
    code: int
    #: expected in the one stderr line: the file (":line" included where there is one)
    where: Where | None
    #: also expected in the stderr line
    needle: str | None = None
    #: location ``conductor lint`` must report in stdout (exit 1), or None
    lint_where: Where | None = None


ORDERS_META = lambda line: lambda r: f"{_orders(r) / 'metadata.json'}:{line}"  # noqa: E731
ORDERS_PLAN = lambda line=None: lambda r: (  # noqa: E731
    f"{_orders(r) / 'plan.md'}:{line}" if line else str(_orders(r) / "plan.md"))
TRACKS = lambda line: lambda r: f"{_ws(r) / 'tracks.md'}:{line}"  # noqa: E731


def _task_line(root: Path) -> str:
    plan = _orders(root) / "plan.md"
    return f"{plan}:{_line_of(plan, 'Task: Declare the')}"


def _phase2_task_line(root: Path) -> str:
    plan = _orders(root) / "plan.md"
    return f"{plan}:{_line_of(plan, 'Task: Initialise Alembic in migrations/')}"


CASES = [
    Case("metadata-invalid-json", meta_invalid_json, ("task", "done", "orders_db", "1.1"), 2,
         ORDERS_META(4), "invalid JSON", lint_where=ORDERS_META(4)),
    Case("metadata-json-list", meta_list, ("implement", "orders_db"), 2,
         ORDERS_META(1), "JSON object", lint_where=ORDERS_META(1)),
    Case("metadata-invalid-utf8", meta_invalid_utf8, ("complete", "orders_db"), 2,
         ORDERS_META(3), "UTF-8", lint_where=ORDERS_META(3)),
    Case("metadata-unknown-status", meta_unknown_status, ("implement", "orders_db"), 2,
         ORDERS_META(7), "Frobbing", lint_where=ORDERS_META(7)),
    Case("metadata-status-disagrees-with-tracks", meta_status_disagrees, ("implement", "orders_db"), 2,
         lambda r: str(_orders(r) / "metadata.json"), "Blocked", lint_where=TRACKS(7)),
    Case("plan-invalid-utf8", plan_invalid_utf8, ("task", "done", "orders_db", "1.1"), 2,
         _task_line, "UTF-8", lint_where=_task_line),
    Case("plan-missing", plan_missing, ("task", "done", "orders_db", "1.1"), 2,
         ORDERS_PLAN(), "missing", lint_where=ORDERS_PLAN()),
    Case("plan-missing-implement", plan_missing, ("implement", "orders_db"), 2,
         ORDERS_PLAN(), "missing"),
    Case("tracks-invalid-utf8", tracks_invalid_utf8, ("implement", "orders_db"), 2,
         TRACKS(7), "UTF-8", lint_where=TRACKS(7)),
    Case("tracks-no-status-column", tracks_no_status_column, ("task", "done", "orders_db", "1.1"), 2,
         TRACKS(5), "Status", lint_where=TRACKS(5)),
    Case("tracks-duplicate-id", tracks_duplicate_id, ("implement", "orders_db"), 2,
         TRACKS(7), "orders_db", lint_where=TRACKS(7)),
    Case("tracks-unsafe-id", tracks_unsafe_id, ("implement", "../evil"), 2,
         None, "../evil", lint_where=TRACKS(8)),
    Case("tracks-unknown-status", tracks_unknown_status, ("task", "done", "orders_db", "1.1"), 2,
         TRACKS(7), "Frobbing", lint_where=TRACKS(7)),
    Case("verification-corrupted", verification_corrupted, ("task", "done", "orders_db", "1.1"), 2,
         lambda r: f"{_orders(r) / 'verification.json'}:4", "verification",
         lint_where=lambda r: f"{_orders(r) / 'verification.json'}:4"),
    Case("verification-not-a-list", verification_not_a_list,
         ("verify", "orders_db", "--phase", "1", "--confirm", "ok", "--force", "--by", "t"), 2,
         lambda r: f"{_orders(r) / 'verification.json'}:1", "list",
         lint_where=lambda r: f"{_orders(r) / 'verification.json'}:1"),
    Case("task-matches-nothing", nothing, ("task", "done", "orders_db", "no such task anywhere"), 2,
         ORDERS_PLAN(), "no such task anywhere"),
    Case("task-ambiguous-text", nothing, ("task", "done", "orders_db", "Declare"), 2,
         ORDERS_PLAN(), "matches 4 tasks"),
    Case("task-number-out-of-range", nothing, ("task", "done", "orders_db", "9.1"), 2,
         ORDERS_PLAN(), "9.1"),
    Case("verify-phase-out-of-range", nothing,
         ("verify", "orders_db", "--phase", "9", "--confirm", "ok", "--by", "t"), 2,
         ORDERS_PLAN(), "phase 9"),
    Case("verify-phase-zero", nothing, ("verify", "orders_db", "--phase", "0"), 2,
         ORDERS_PLAN(), "phase 0"),
    Case("verify-empty-note", nothing,
         ("verify", "orders_db", "--phase", "1", "--confirm", "   ", "--by", "t"), 2,
         None, "empty"),
    Case("verify-unfinished-phase", nothing,
         ("verify", "orders_db", "--phase", "1", "--confirm", "looks fine", "--by", "t"), 1,
         ORDERS_PLAN(10), "open task"),
    Case("complete-before-verified", nothing, ("complete", "customer_events"), 1,
         lambda r: str(_ws(r) / "storages" / "customer_events" / "plan.md"), "cannot be completed"),
    Case("complete-finished-but-unverified", phase_one_finished, ("complete", "orders_db"), 1,
         ORDERS_PLAN(), "not verified"),
    Case("task-in-locked-phase", phase_one_finished, ("task", "done", "orders_db", "2.1"), 1,
         _phase2_task_line, "locked"),
    Case("unknown-subcommand", nothing, ("frob",), 2, None, "frob"),
    Case("task-bad-action", nothing, ("task", "frob", "x"), 2, None, "frob"),
    Case("task-without-target", nothing, ("task", "done"), 2, None, "usage"),
    Case("verify-phase-not-a-number", nothing, ("verify", "orders_db", "--phase", "two"), 2,
         None, "two"),
    Case("unknown-component", nothing, ("plan", "no_such_component"), 2, None, "no_such_component"),
    Case("no-storage-conductor-folder", no_workspace, ("status",), 2,
         lambda r: str(r), "storage-conductor"),
]


def _check_one_message(proc: subprocess.CompletedProcess, case: Case, root: Path) -> str:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one message on stderr, got: {proc.stderr!r}"
    message = lines[0]
    assert message.startswith("conductor: "), message
    if case.where is not None:
        assert case.where(root) in message, f"{case.where(root)!r} not in {message!r}"
    if case.needle is not None:
        assert case.needle in message, f"{case.needle!r} not in {message!r}"
    return message


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_cleanly(project: Path, case: Case) -> None:
    case.mutate(project)
    before = snapshot(project.parent)
    proc = conductor(project, *case.argv)
    assert proc.returncode == case.code, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == "", proc.stdout
    _check_one_message(proc, case, project)
    assert snapshot(project.parent) == before, "a file changed or appeared on bad input"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_json_error(project: Path, case: Case) -> None:
    """With --json the same failure is one JSON object on stdout; still nothing changes."""
    case.mutate(project)
    before = snapshot(project.parent)
    proc = conductor(project, *case.argv, "--json")
    assert proc.returncode == case.code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    if proc.stdout.strip():  # argparse usage errors are detected after --json is seen
        data = json.loads(proc.stdout)
        assert set(data) >= {"error", "message", "file", "line"}, data
        if case.where is not None:
            where = case.where(project)
            if data["file"] is None:
                assert where in data["message"], (where, data)
            else:
                loc = f"{data['file']}:{data['line']}" if data["line"] else data["file"]
                assert loc == where, (loc, where)
    assert snapshot(project.parent) == before


LINT_CASES = [c for c in CASES if c.lint_where is not None]


@pytest.mark.parametrize("case", LINT_CASES, ids=[c.name for c in LINT_CASES])
def test_lint_reports_the_finding(project: Path, case: Case) -> None:
    case.mutate(project)
    before = snapshot(project.parent)
    proc = conductor(project, "lint")
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr == ""
    where = case.lint_where(project)
    found = [ln for ln in proc.stdout.splitlines() if ln.startswith(where + ":")
             or ln.startswith(where + " ")]
    assert found, f"{where!r} not reported by lint:\n{proc.stdout}"
    assert any(": error: " in ln for ln in found), found
    assert snapshot(project.parent) == before, "lint without --fix changed a file"


def test_clean_example_lints_clean(project: Path) -> None:
    """The control: the unmodified example has no findings, so every case above is caused
    by its mutation."""
    proc = conductor(project, "lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no problems" in proc.stdout


# -- an id that escapes storages/ ------------------------------------------------------------

SECRET = "SECRET-OUTSIDE-STORAGES-7f3a"


def test_unsafe_id_never_reads_or_creates_outside_storages(project: Path) -> None:
    ws = project / "storage-conductor"
    tracks_unsafe_id(project)
    # Decoys where storages/../evil and ../../evil would resolve to.
    for decoy in (ws / "evil", project / "evil"):
        decoy.mkdir()
        (decoy / "plan.md").write_text(f"# {SECRET}\n\n## Phase 1: {SECRET}\n\n- [ ] {SECRET}\n",
                                       encoding="utf-8")
        (decoy / "metadata.json").write_text(json.dumps({"id": "evil", "title": SECRET,
                                                         "status": "Planning"}) + "\n")
        (decoy / "spec.md").write_text(SECRET + "\n", encoding="utf-8")
    before = snapshot(project.parent)
    runs = {
        ("status", "--json"): 0,
        ("lint",): 1,
        ("implement", "../evil"): 2,
        ("plan", "../evil"): 2,
        ("next", "../evil"): 2,
        ("context", "../evil", "spec"): 2,
        ("verify", "../evil", "--phase", "1", "--confirm", "x", "--by", "t"): 2,
        ("complete", "../evil"): 2,
        ("task", "done", "../evil", "1.1"): 2,
        ("task", "done", "../../evil", "1.1"): 2,
        ("implement", "../../evil"): 2,
    }
    for argv, code in runs.items():
        proc = conductor(project, *argv)
        out = proc.stdout + proc.stderr
        assert proc.returncode == code, (argv, proc.returncode, out)
        assert SECRET not in out, (argv, out)
        assert "Traceback" not in out
        if code == 2:
            assert len(proc.stderr.strip().splitlines()) == 1, (argv, proc.stderr)
    status = json.loads(conductor(project, "status", "--json").stdout)
    # customer_events stays a component through its folder; no id leaves storages/.
    assert [c["id"] for c in status["components"]] == ["orders_db", "customer_events"]
    assert snapshot(project.parent) == before


def test_lint_fix_refuses_nothing_and_writes_nothing_outside(project: Path) -> None:
    """lint --fix on the unsafe-id workspace may only touch files inside the workspace."""
    tracks_unsafe_id(project)
    outside = project / "evil"
    outside.mkdir()
    (outside / "metadata.json").write_text('{"id": "other", "status": "Blocked"}\n')
    before = snapshot(outside)
    proc = conductor(project, "lint", "--fix")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert re.search(r"tracks\.md:8: error: .*\.\./evil", proc.stdout), proc.stdout
    assert snapshot(outside) == before
    assert sorted(p.name for p in project.iterdir()) == ["evil", "storage-conductor"]
