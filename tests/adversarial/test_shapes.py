"""Real-world workspace shapes (issue 10, item 16), through the real CLI.

Shapes seen in public conductor workspaces: a tracks.md whose Status cells are checkbox
marks, plans that start at ``## Phase 0``, and a task line whose SHA is followed by a
parenthesised commit note. Each is read the same way by every command and written back in
the form it already has.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from helpers.hostile import conductor, one_line_error, refused, tree

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_notebooks" / "storage-conductor"

CHECKBOX_TRACKS = """# Tracks Registry

## Status Legend

- `[ ]` Pending
- `[~]` In Progress
- `[x]` Completed

| Status | Track ID        | Title              | Created    | Updated    |
| ------ | --------------- | ------------------ | ---------- | ---------- |
| [ ]    | orders_db       | Orders database    | 2026-11-02 | 2026-11-10 |
| `[ ]`  | customer_events | Customer event log | 2026-11-05 | 2026-11-06 |
| [ ]    |                 |                    |            |            |
"""

PHASE0_PLAN = """# Implementation Plan

## Phase 0: Setup

- [ ] Task: Create the repository layout
- [ ] Task: Pin the toolchain
  - [ ] Write .python-version

## Phase 1: Schema Design

- [ ] Task: Declare the tables
- [ ] Task: Add index (customer_id, created_at)

## Phase 2: Migrations

- [ ] Task: Create the first revision
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project with a copy of the example workspace, without schema-first locks."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(EXAMPLE, project / "storage-conductor")
    workflow = project / "storage-conductor" / "workflow.md"
    workflow.write_text("".join(line for line in workflow.read_text(encoding="utf-8").splitlines(True)
                                if "testing approach" not in line.lower()), encoding="utf-8")
    return project


def ws(root: Path) -> Path:
    return root / "storage-conductor"


def ok(proc) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


def one_byte_changed(before: bytes, after: bytes) -> int:
    """The offset of the single byte that differs (asserting there is exactly one)."""
    assert len(before) == len(after)
    diff = [i for i in range(len(before)) if before[i] != after[i]]
    assert len(diff) == 1, diff
    return diff[0]


def row_of(text: str, storage_id: str) -> str:
    return next(line for line in text.splitlines() if f" {storage_id} " in line)


# -- a) tracks.md Status cells holding checkbox marks ------------------------------------------


def test_checkbox_status_cells_are_statuses_for_every_command(root: Path):
    tracks = ws(root) / "tracks.md"
    tracks.write_text(CHECKBOX_TRACKS, encoding="utf-8")
    plan = ws(root) / "storages" / "orders_db" / "plan.md"

    status = ok(conductor(root, "status"))
    assert re.search(r"orders_db\s+Planning", status), status
    lint = conductor(root, "lint")
    assert "unknown status" not in lint.stdout + lint.stderr
    assert lint.returncode == 0, lint.stdout + lint.stderr  # the blank template row is no row

    plan_before = plan.read_bytes()
    tracks_before = tracks.read_text(encoding="utf-8")
    ok(conductor(root, "task", "done", "orders_db", "1.1.1"))  # was: exit 2 "unknown status '[ ]'"
    # The tick is one byte, and the status change writes the checkbox form, not a word.
    assert plan.read_bytes()[one_byte_changed(plan_before, plan.read_bytes())] == ord("x")
    tracks_after = tracks.read_text(encoding="utf-8")
    old, new = row_of(tracks_before, "orders_db"), row_of(tracks_after, "orders_db")
    assert new.startswith("| [~]    | orders_db       |"), new
    assert len(new) == len(old)  # the mark is one character: the table stays aligned
    assert "Progress" not in new
    assert json.loads((plan.parent / "metadata.json").read_text())["status"] == "In Progress"
    # Only that row changed.
    assert [a == b for a, b in zip(tracks_before.splitlines(), tracks_after.splitlines(), strict=True)
            ].count(False) == 1

    # The row reads back as In Progress everywhere.
    assert re.search(r"orders_db\s+In Progress", ok(conductor(root, "status")))
    assert conductor(root, "lint").returncode == 0


def test_checkbox_in_code_ticks_is_rewritten_inside_them(root: Path):
    tracks = ws(root) / "tracks.md"
    tracks.write_text(CHECKBOX_TRACKS, encoding="utf-8")
    ok(conductor(root, "task", "start", "customer_events", "1.1"))
    row = row_of(tracks.read_text(encoding="utf-8"), "customer_events")
    assert row.startswith("| `[~]`  | customer_events |"), row


def test_lint_fix_writes_a_checkbox_status_as_a_checkbox(root: Path):
    tracks = ws(root) / "tracks.md"
    tracks.write_text(CHECKBOX_TRACKS, encoding="utf-8")
    meta = ws(root) / "storages" / "orders_db" / "metadata.json"
    meta.write_text(meta.read_text().replace('"Planning"', '"In Progress"'))
    lint = conductor(root, "lint")
    assert lint.returncode == 1 and "tracks.md says Planning" in lint.stdout + lint.stderr
    conductor(root, "lint", "--fix")
    row = row_of(tracks.read_text(encoding="utf-8"), "orders_db")
    assert row.startswith("| [~]    | orders_db "), row
    assert conductor(root, "lint").returncode == 0


def test_unknown_checkbox_mark_is_refused_and_changes_nothing(root: Path):
    tracks = ws(root) / "tracks.md"
    tracks.write_text(CHECKBOX_TRACKS.replace("| [ ]    | orders_db", "| [?]    | orders_db"),
                      encoding="utf-8")
    before = tree(ws(root))
    refused(conductor(root, "task", "done", "orders_db", "1.1.1"), 2,
            r"tracks\.md:\d+: unknown status '\[\?\]' for 'orders_db'", before, ws(root))


# -- b) plans numbered from their headings (Phase 0) -------------------------------------------


def phase0(root: Path) -> Path:
    plan = ws(root) / "storages" / "orders_db" / "plan.md"
    plan.write_text(PHASE0_PLAN, encoding="utf-8")
    return plan


def test_phase_zero_tasks_are_numbered_from_the_heading(root: Path):
    plan = phase0(root)
    out = ok(conductor(root, "next", "orders_db"))
    assert "0.1 Task: Create the repository layout" in out
    assert "conductor task done orders_db 0.1" in out

    listing = ok(conductor(root, "plan", "orders_db"))
    for number in ("0.1", "0.2", "0.2.1", "1.1", "1.2", "2.1"):
        assert f" {number} " in listing, listing
    assert "3.1" not in listing

    before = plan.read_bytes()
    done = ok(conductor(root, "task", "done", "orders_db", "0.1"))
    offset = one_byte_changed(before, plan.read_bytes())
    assert plan.read_bytes()[offset] == ord("x")
    assert before.index(b"- [ ] Task: Create the repository layout") + 3 == offset
    assert "0.1 Task: Create the repository layout" in done

    data = json.loads(ok(conductor(root, "plan", "orders_db", "--json")))
    phases = data["plan"]["phases"] if "plan" in data else data["phases"]
    assert [p["number"] for p in phases] == [0, 1, 2]


def test_finishing_phase_zero_points_at_verify_phase_zero(root: Path):
    phase0(root)
    for number in ("0.1", "0.2.1", "0.2"):
        out = ok(conductor(root, "task", "done", "orders_db", number))
    assert "conductor verify orders_db --phase 0 --confirm NOTE" in out, out
    # Phase 1 is locked behind the unverified Phase 0, and says so with the heading's numbers.
    before = tree(ws(root))
    line = refused(conductor(root, "task", "done", "orders_db", "1.1"), 1,
                   r"task 1\.1 is in phase 1, which is locked: Phase 0: Setup is finished",
                   before, ws(root))
    assert "--phase 0" in line


def test_verify_phase_zero_records_a_readable_verdict(root: Path):
    phase0(root)
    for number in ("0.1", "0.2.1", "0.2"):
        ok(conductor(root, "task", "done", "orders_db", number))
    gate = conductor(root, "verify", "orders_db", "--phase", "0")
    assert "Phase 0: Setup" in gate.stdout and "phase 1 'Phase 0" not in gate.stdout
    ok(conductor(root, "verify", "orders_db", "--phase", "0", "--confirm", "layout reviewed"))
    log = json.loads((ws(root) / "storages" / "orders_db" / "verification.json").read_text())
    records = log["records"] if isinstance(log, dict) else log
    # "phase" keeps its meaning (position from 1, as older files and readers have it);
    # "phase_number" is the number the heading gives.
    assert records[-1]["phase"] == 1 and records[-1]["phase_number"] == 0
    assert records[-1]["phase_title"] == "Phase 0: Setup"
    # Phase 1 is open now.
    ok(conductor(root, "task", "done", "orders_db", "1.1"))


def test_old_verification_record_still_matches_by_position(root: Path):
    plan = phase0(root)
    for number in ("0.1", "0.2.1", "0.2"):
        ok(conductor(root, "task", "done", "orders_db", number))
    # A record written before heading numbers, for a phase renamed since: "phase" is the
    # position (1 = the first phase, here Phase 0).
    (plan.parent / "verification.json").write_text(json.dumps([{
        "kind": "verification", "phase": 1, "phase_title": "Phase 0: Bootstrap",
        "verdict": "verified", "note": "ok", "by": "ana", "at": "2026-11-10T10:00:00",
    }]))
    ok(conductor(root, "task", "done", "orders_db", "1.1"))  # Phase 0 counts as verified


def test_messages_never_name_phase_zero_as_phase_one(root: Path):
    phase0(root)
    outputs = [ok(conductor(root, *args)) for args in (
        ("status",), ("next", "orders_db"), ("plan", "orders_db"))]
    outputs.append(conductor(root, "verify", "orders_db").stdout)
    outputs.append(conductor(root, "verify", "orders_db", "--phase", "2").stdout)
    for out in outputs:
        assert "phase 1 'Phase 0" not in out and "phase 3 'Phase 2" not in out, out
    missing = conductor(root, "verify", "orders_db", "--phase", "3")
    one_line_error(missing, 2, r"no phase 3 \(it has 3: 0, 1, 2\)")


def test_inconsistent_headings_fall_back_to_position(root: Path):
    plan = ws(root) / "storages" / "orders_db" / "plan.md"
    plan.write_text("## Phase 0: Setup\n\n- [ ] a\n\n## Phase 0: Again\n\n- [ ] b\n\n"
                    "## Phase Cleanup\n\n- [ ] c\n", encoding="utf-8")
    listing = ok(conductor(root, "plan", "orders_db"))
    for number in ("1.1", "2.1", "3.1"):
        assert f" {number} " in listing, listing
    before = plan.read_bytes()
    ok(conductor(root, "task", "done", "orders_db", "2.1"))
    assert plan.read_bytes()[one_byte_changed(before, plan.read_bytes())] == ord("x")
    assert plan.read_text(encoding="utf-8").count("- [x] b") == 1


def test_headings_numbered_from_one_keep_todays_numbers(root: Path):
    listing = ok(conductor(root, "plan", "orders_db"))
    assert " 1.1 Task: Declare the customers" in listing
    assert " 8.1 Task: Generate the entity-relationship diagram" in listing


# -- c) a trailing parenthesis with several SHAs is a note, not part of the name ---------------


def test_sha_note_is_not_part_of_the_task_name(root: Path):
    plan = ws(root) / "storages" / "orders_db" / "plan.md"
    plan.write_text(
        "## Phase 1: Core\n\n"
        "- [x] Task: Build the thing 01b3180 (original commit, refactored in e9d5635)\n"
        "- [ ] Task: Add index (customer_id, created_at)\n"
        "- [ ] Task: Seed 1000000 rows (see 7c0ffee2 and 1a2b3c4d)\n",
        encoding="utf-8")
    data = json.loads(ok(conductor(root, "plan", "orders_db", "--json")))
    phases = data["plan"]["phases"] if "plan" in data else data["phases"]
    tasks = [(t["number"], t["name"], t["sha"]) for t in phases[0]["tasks"]]
    assert tasks == [
        ("1.1", "Task: Build the thing", "01b3180"),
        ("1.2", "Task: Add index (customer_id, created_at)", None),
        ("1.3", "Task: Seed 1000000 rows", "7c0ffee2"),
    ]
    # Found by its name, and unticked by one byte; the note stays on the line.
    before = plan.read_bytes()
    ok(conductor(root, "task", "undo", "orders_db", "Build the thing"))
    assert plan.read_bytes()[one_byte_changed(before, plan.read_bytes())] == ord(" ")
    assert "01b3180 (original commit, refactored in e9d5635)" in plan.read_text(encoding="utf-8")
