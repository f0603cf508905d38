"""The implement loop (conductor_magics.session.Session) over real workspace files."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.workspace import EXAMPLE

from conductor_magics.errors import ComponentNotFound, ConductorError, GateClosed, TaskNotFound
from conductor_magics.session import Session
from conductor_magics.workspace import Workspace
from conductor_magics.workspace.metadata import read_metadata
from conductor_magics.workspace.plan import read_plan
from conductor_magics.workspace.status import COMPLETED, IN_PROGRESS, PLANNING
from conductor_magics.workspace.tracks import read_tracks

NOW = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)


def clock() -> datetime:
    return NOW


@pytest.fixture
def example(tmp_path) -> Path:
    """A private copy of the example workspace."""
    folder = tmp_path / "project" / "storage-conductor"
    shutil.copytree(EXAMPLE, folder)
    return folder


def session_for(folder: Path) -> Session:
    return Session(Workspace(folder), user="tester", clock=clock)


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


SMALL_PLAN = """# Implementation Plan

## Phase 1: Schema Design

- [ ] Declare the tables
  - [ ] Name the constraints
- [ ] Write the models

## Phase 2: Migration Setup

- [ ] Initialise Alembic
- [ ] Create the first revision
"""


def make_workspace(root: Path, components: list[tuple[str, str, str]], *, plan: str = SMALL_PLAN,
                   tracks_status: dict[str, str] | None = None) -> Path:
    """A workspace with (id, status, updated) components, each with the same plan."""
    folder = root / "storage-conductor"
    (folder / "storages").mkdir(parents=True)
    rows = []
    for cid, status, updated in components:
        comp = folder / "storages" / cid
        comp.mkdir()
        meta = {"id": cid, "title": f"{cid} title", "type": "storage", "storage_type": "relational",
                "backend": "sqlite", "status": status, "created": "2026-01-01T00:00:00Z",
                "updated": updated}
        (comp / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
        (comp / "plan.md").write_text(plan)
        (comp / "spec.md").write_text(f"# {cid}\n")
        row_status = (tracks_status or {}).get(cid, status)
        rows.append(f"| {cid} | {cid} title | {row_status} | 2026-01-01 | {updated[:10]} |")
    (folder / "tracks.md").write_text(
        "# Tracks\n\n| Storage ID | Title | Status | Created Date | Updated Date |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    return folder


# -- selection --------------------------------------------------------------------------------


def test_example_selects_most_recently_updated_planning_component(example):
    selection = session_for(example).select()
    assert selection.component.id == "orders_db"
    assert "most recently updated" in selection.reason
    assert "2" in selection.reason and PLANNING in selection.reason
    assert [c.id for c in selection.candidates] == ["customer_events"]


def test_named_component_wins(example):
    selection = session_for(example).select("customer_events")
    assert selection.component.id == "customer_events"
    assert selection.reason == "named"


def test_in_progress_before_planning(tmp_path):
    folder = make_workspace(tmp_path, [
        ("newer_planning", PLANNING, "2026-12-01T00:00:00Z"),
        ("older_active", IN_PROGRESS, "2026-01-05T00:00:00Z"),
        ("done_one", COMPLETED, "2026-12-30T00:00:00Z"),
    ])
    selection = session_for(folder).select()
    assert selection.component.id == "older_active"
    assert selection.reason == f"the only {IN_PROGRESS} component"
    assert [c.id for c in selection.candidates] == ["newer_planning"]


def test_most_recent_within_a_status(tmp_path):
    folder = make_workspace(tmp_path, [
        ("a", IN_PROGRESS, "2026-03-01T00:00:00Z"),
        ("b", IN_PROGRESS, "2026-05-01T12:00:00Z"),
        ("c", IN_PROGRESS, "2026-04-01T00:00:00Z"),
        ("d", PLANNING, "2026-09-01T00:00:00Z"),
    ])
    selection = session_for(folder).select()
    assert selection.component.id == "b"
    assert selection.reason == f"the most recently updated of 3 {IN_PROGRESS} components"
    assert [c.id for c in selection.candidates] == ["c", "a", "d"]


def test_completed_is_not_selectable(tmp_path):
    folder = make_workspace(tmp_path, [("done_one", COMPLETED, "2026-12-30T00:00:00Z")])
    session = session_for(folder)
    with pytest.raises(ComponentNotFound, match="no component is In Progress or Planning"):
        session.select()
    before = tree_bytes(folder)
    with pytest.raises(ConductorError, match="Completed"):
        session.implement("done_one")
    assert tree_bytes(folder) == before


def test_unknown_component(example):
    with pytest.raises(ComponentNotFound, match="no component 'nope'") as info:
        session_for(example).select("nope")
    assert "orders_db" in str(info.value)


# -- implement --------------------------------------------------------------------------------


def test_implement_sets_in_progress_in_both_files(example):
    before = tree_bytes(example)
    result = session_for(example).implement()
    assert result.component.id == "orders_db"
    assert "most recently updated" in result.selection.reason
    assert [c.id for c in result.selection.candidates] == ["customer_events"]
    assert result.previous_status == PLANNING
    assert result.component.status == IN_PROGRESS

    meta_path = example / "storages" / "orders_db" / "metadata.json"
    meta = read_metadata(meta_path)
    assert meta.status == IN_PROGRESS
    assert meta.updated == NOW
    expected_meta = before["storages/orders_db/metadata.json"].replace(
        b'"status": "Planning"', b'"status": "In Progress"').replace(
        b'"updated": "2026-11-10T16:30:00Z"', b'"updated": "2027-01-02T03:04:05Z"')
    assert meta_path.read_bytes() == expected_meta

    row = read_tracks(example / "tracks.md").row("orders_db")
    assert row.status == IN_PROGRESS
    assert row.value("updated") == "2027-01-02"
    expected_tracks = before["tracks.md"].replace(
        b"| orders_db | Orders database | relational | PostgreSQL | Planning | 2026-11-02 | 2026-11-10 |",
        b"| orders_db | Orders database | relational | PostgreSQL | In Progress | 2026-11-02 | 2027-01-02 |")
    assert (example / "tracks.md").read_bytes() == expected_tracks

    # nothing else changed, nothing was added
    after = tree_bytes(example)
    assert sorted(after) == sorted(before)
    assert [k for k in after if after[k] != before[k]] == ["storages/orders_db/metadata.json", "tracks.md"]

    loaded = result.loaded
    assert loaded.id == "orders_db"
    assert "orders" in loaded.spec.lower()
    assert len(loaded.plan.phases) == 8
    assert loaded.workflow.commits == "per-task"
    assert result.next.action == "work"
    assert result.next.task.number == "1.1"


def test_implement_named_and_again_is_stable(example):
    session = session_for(example)
    session.implement("customer_events")
    snapshot = tree_bytes(example)
    result = session.implement("customer_events")
    assert result.previous_status == IN_PROGRESS
    assert tree_bytes(example) == snapshot
    # now the In Progress component is selected before the more recent Planning one
    assert session.select().component.id == "customer_events"


# -- tasks ------------------------------------------------------------------------------------


def plan_states(folder: Path, cid: str) -> dict[str, str]:
    plan = read_plan(folder / "storages" / cid / "plan.md")
    return {t.number: t.state for t in plan.items()}


def test_task_actions_by_number_and_text(example):
    session = session_for(example)
    plan_path = example / "storages" / "customer_events" / "plan.md"
    original = plan_path.read_bytes()

    result = session.task("start", "1.1", "customer_events")
    assert (result.before, result.after, result.changed) == ("todo", "in_progress", True)
    assert result.status_before == PLANNING
    assert read_metadata(plan_path.parent / "metadata.json").status == IN_PROGRESS
    assert read_tracks(example / "tracks.md").row("customer_events").status == IN_PROGRESS

    result = session.task("done", "ck_events_kind", "customer_events")
    assert result.task.number == "1.1.1"
    assert result.after == "done"
    result = session.task("skip", "require valid json", "customer_events")
    assert result.task.number == "1.1.2"
    assert result.after == "skipped"
    result = session.task("block", "Mirror the events table", "customer_events")
    assert result.task.number == "1.2"
    assert result.after == "blocked"
    result = session.task("undo", "1.2", "customer_events")
    assert result.after == "todo"
    result = session.task("done", "1.2", "customer_events")
    again = session.task("done", "1.2", "customer_events")
    assert again.changed is False

    states = plan_states(example, "customer_events")
    assert {k: v for k, v in states.items() if k.startswith("1.")} == {
        "1.1": "in_progress", "1.1.1": "done", "1.1.2": "skipped", "1.2": "done", "1.3": "todo",
    }
    new = plan_path.read_bytes()
    assert len(new) == len(original)
    assert sum(a != b for a, b in zip(original, new, strict=True)) == 4


def test_task_ambiguous_or_unknown_reference(example):
    session = session_for(example)
    with pytest.raises(TaskNotFound, match="matches"):
        session.task("done", "Conductor - User Manual Verification", "customer_events")
    with pytest.raises(TaskNotFound):
        session.task("done", "9.9", "customer_events")
    with pytest.raises(ConductorError, match="unknown task action"):
        session.task("finish", "1.1", "customer_events")
    assert (example / "storages" / "customer_events" / "plan.md").read_bytes() == (
        EXAMPLE / "storages" / "customer_events" / "plan.md").read_bytes()


def finish_phase_1(session: Session) -> None:
    for number in ("1.1.1", "1.1.2", "1.1", "1.2", "1.3"):
        session.task("done", number, "customer_events")


def read_log(folder: Path, cid: str) -> list[dict]:
    path = folder / "storages" / cid / "verification.json"
    return json.loads(path.read_text()) if path.exists() else []


def test_gate_closes_after_phase_1_is_finished(example):
    session = session_for(example)
    finish_phase_1(session)
    plan_before = (example / "storages" / "customer_events" / "plan.md").read_bytes()
    with pytest.raises(GateClosed) as info:
        session.task("done", "2.1", "customer_events")
    error = info.value
    assert error.exit_code == 1
    message = str(error)
    assert "task 2.1 is in phase 2, which is locked" in message
    assert "Phase 1: Schema Design is finished but not verified" in message
    assert "conductor verify customer_events --phase 1" in message
    assert error.line == read_plan(example / "storages" / "customer_events" / "plan.md").find("2.1").line
    assert (example / "storages" / "customer_events" / "plan.md").read_bytes() == plan_before
    assert read_log(example, "customer_events") == []

    nxt = session.next("customer_events")
    assert nxt.action == "verify"
    assert nxt.phase.number == 1

    # unticking in a locked phase is allowed
    assert session.task("undo", "2.1", "customer_events").changed is False


def test_force_overrides_the_gate_and_is_recorded(example):
    session = session_for(example)
    finish_phase_1(session)
    result = session.task("done", "2.1", "customer_events", force=True, reason="hotfix needed")
    assert result.forced is True
    assert result.after == "done"
    records = read_log(example, "customer_events")
    assert len(records) == 1
    record = records[0]
    assert record["kind"] == "override"
    assert record["phase"] == 2
    assert record["task"] == "2.1"
    assert record["action"] == "done"
    assert record["reason"] == "hotfix needed"
    assert record["by"] == "tester"
    assert record["at"] == NOW.isoformat(timespec="seconds")
    # an override is not a verification: phase 1 still waits
    assert session.next("customer_events").action == "verify"


def test_verify_records_a_verdict_and_unlocks_the_next_phase(example):
    session = session_for(example)
    finish_phase_1(session)
    shown = session.verify("customer_events")
    assert shown.recorded is None
    assert shown.state.phase.number == 1

    result = session.verify("customer_events", 1, note="schema reviewed with Ana")
    assert result.recorded is not None
    records = read_log(example, "customer_events")
    assert len(records) == 1
    record = records[0]
    assert record["kind"] == "verification"
    assert record["phase"] == 1
    assert record["phase_title"] == "Phase 1: Schema Design"
    assert record["note"] == "schema reviewed with Ana"
    assert record["by"] == "tester"
    assert record["at"] == NOW.isoformat(timespec="seconds")
    assert record["forced"] is False
    assert result.state.verified

    result = session.task("done", "2.1", "customer_events")
    assert result.after == "done"
    assert result.forced is False

    # verifying again does not add a record
    again = session.verify("customer_events", 1, note="twice")
    assert again.already is True
    assert len(read_log(example, "customer_events")) == 1


def test_verify_by_is_recorded(example):
    session = session_for(example)
    finish_phase_1(session)
    session.verify("customer_events", 1, note="ok", by="Reviewer Name")
    assert read_log(example, "customer_events")[0]["by"] == "Reviewer Name"


def test_verify_unfinished_phase_is_refused_without_force(example):
    session = session_for(example)
    session.task("done", "1.1", "customer_events")
    with pytest.raises(GateClosed, match=r"Phase 1: Schema Design has 4 open task\(s\): 1\.1\.1, 1\.1\.2, 1\.2, 1\.3"):
        session.verify("customer_events", 1, note="looks fine")
    assert read_log(example, "customer_events") == []
    with pytest.raises(ConductorError, match="empty"):
        session.verify("customer_events", 1, note="   ")

    result = session.verify("customer_events", 1, note="verified early", force=True)
    record = read_log(example, "customer_events")[0]
    assert record["forced"] is True
    assert record["open_tasks"] == ["1.1.1", "1.1.2", "1.2", "1.3"]
    assert result.state.verified


def test_verify_bad_phase_number(example):
    with pytest.raises(TaskNotFound, match="no phase 7"):
        session_for(example).verify("customer_events", 7, note="x")


CHECKPOINT_PLAN = """## Phase 1: Schema Design [checkpoint: abc1234]

- [x] Declare the tables

## Phase 2: Migration Setup

- [ ] Initialise Alembic
"""


def test_checkpoint_counts_as_verified(tmp_path):
    folder = make_workspace(tmp_path, [("db", IN_PROGRESS, "2026-01-01T00:00:00Z")], plan=CHECKPOINT_PLAN)
    session = session_for(folder)
    states = session.plan("db").phases
    assert states[0].verified and states[0].verdict is None
    assert not states[1].locked
    result = session.task("done", "Initialise Alembic")
    assert result.after == "done"
    assert result.forced is False
    assert not (folder / "storages" / "db" / "verification.json").exists()


def test_same_plan_without_checkpoint_is_gated(tmp_path):
    plan = CHECKPOINT_PLAN.replace(" [checkpoint: abc1234]", "")
    folder = make_workspace(tmp_path, [("db", IN_PROGRESS, "2026-01-01T00:00:00Z")], plan=plan)
    with pytest.raises(GateClosed):
        session_for(folder).task("done", "Initialise Alembic")


# -- complete --------------------------------------------------------------------------------


def test_complete_only_when_every_phase_is_verified(tmp_path):
    folder = make_workspace(tmp_path, [("db", PLANNING, "2026-01-01T00:00:00Z")])
    session = session_for(folder)
    session.implement("db")
    with pytest.raises(GateClosed, match="cannot be completed") as info:
        session.complete("db")
    assert "not finished" in str(info.value)
    assert info.value.exit_code == 1

    for ref in ("1.1.1", "1.1", "Write the models"):
        session.task("done", ref, "db")
    session.verify("db", 1, note="phase one checked")
    session.task("done", "2.1", "db")
    session.task("skip", "2.2", "db")
    with pytest.raises(GateClosed, match="not verified"):
        session.complete("db")
    assert read_metadata(folder / "storages" / "db" / "metadata.json").status == IN_PROGRESS

    session.verify("db", 2, note="migrations checked")
    result = session.complete("db")
    assert result.previous_status == IN_PROGRESS
    assert result.component.status == COMPLETED
    assert read_metadata(folder / "storages" / "db" / "metadata.json").status == COMPLETED
    assert read_tracks(folder / "tracks.md").row("db").status == COMPLETED
    summary = result.summary()
    assert summary["phases"] == 2
    assert summary["tasks_done"] == 4
    assert summary["tasks_skipped"] == 1
    assert [v["by"] for v in summary["verifications"]] == ["tester", "tester"]
    assert "Completed" in result.to_text()
    # a completed component is no longer selectable
    with pytest.raises(ComponentNotFound):
        session.select()


# -- lint --------------------------------------------------------------------------------------


def codes(problems) -> list[str]:
    return sorted(p.code for p in problems)


def test_example_workspace_lints_clean_of_errors(example):
    result = session_for(example).lint()
    assert [p for p in result.problems if p.severity == "error"] == []


def test_lint_findings(tmp_path):
    folder = make_workspace(tmp_path, [
        ("good", PLANNING, "2026-01-01T00:00:00Z"),
        ("mismatch", IN_PROGRESS, "2026-01-01T00:00:00Z"),
        ("noplan", PLANNING, "2026-01-01T00:00:00Z"),
        ("badutf", PLANNING, "2026-01-01T00:00:00Z"),
    ], tracks_status={"mismatch": PLANNING})
    (folder / "storages" / "noplan" / "plan.md").unlink()
    (folder / "storages" / "badutf" / "plan.md").write_bytes(b"## Phase 1\n\n- [ ] caf\xe9\n")
    tracks_path = folder / "tracks.md"
    tracks_path.write_text(tracks_path.read_text()
                           + "| good | duplicate row | Planning | 2026-01-01 | 2026-01-01 |\n"
                           + "| ../x | escape | Planning | 2026-01-01 | 2026-01-01 |\n"
                           + "| weird | odd | Someday | 2026-01-01 | 2026-01-01 |\n")
    before = tree_bytes(folder)
    problems = session_for(folder).lint().problems
    assert tree_bytes(folder) == before  # lint without --fix writes nothing

    by_code: dict[str, list] = {}
    for problem in problems:
        by_code.setdefault(problem.code, []).append(problem)

    dup = by_code["duplicate-id"]
    assert len(dup) == 1 and "'good' appears 2 times (lines 5, 9)" in dup[0].message
    assert dup[0].line == 5

    unsafe = by_code["unsafe-id"]
    assert len(unsafe) == 1 and unsafe[0].line == 10 and "'../x'" in unsafe[0].message

    unknown = by_code["unknown-status"]
    assert [(p.line, p.path) for p in unknown] == [(11, tracks_path)]
    assert "Someday" in unknown[0].message

    mismatch = by_code["status-mismatch"]
    assert len(mismatch) == 1 and mismatch[0].fixable
    assert mismatch[0].line == 6
    assert "Planning" in mismatch[0].message and "In Progress" in mismatch[0].message

    missing = by_code["plan-missing"]
    assert [p.path for p in missing] == [folder / "storages" / "noplan" / "plan.md"]

    unreadable = by_code["plan-unreadable"]
    assert len(unreadable) == 1
    assert unreadable[0].path == folder / "storages" / "badutf" / "plan.md"
    assert unreadable[0].line == 3
    assert all(p.severity == "error" for code in
               ("duplicate-id", "unsafe-id", "unknown-status", "status-mismatch", "plan-missing",
                "plan-unreadable") for p in by_code[code])


def test_lint_reports_invalid_utf8_in_context_documents(example):
    (example / "product.md").write_bytes(b"# Product\n\nOk line\n\xff bad\n")
    problems = session_for(example).lint().problems
    found = [p for p in problems if p.code == "invalid-utf8"]
    assert [(p.path, p.line) for p in found] == [(example / "product.md", 4)]


def test_lint_reports_unknown_metadata_status_and_bad_json(tmp_path):
    folder = make_workspace(tmp_path, [("a", PLANNING, "2026-01-01T00:00:00Z"),
                                       ("b", PLANNING, "2026-01-01T00:00:00Z")])
    meta_a = folder / "storages" / "a" / "metadata.json"
    meta_a.write_text(meta_a.read_text().replace('"Planning"', '"Someday"'))
    (folder / "storages" / "b" / "metadata.json").write_text('{\n  "id": "b",\n  "status": \n}\n')
    problems = session_for(folder).lint().problems
    unknown = [p for p in problems if p.code == "unknown-status"]
    assert [(p.path, p.line) for p in unknown] == [(meta_a, 7)]
    bad = [p for p in problems if p.code == "metadata-unreadable"]
    assert len(bad) == 1 and bad[0].line == 4


def test_lint_fix_repairs_the_status_mismatch(tmp_path):
    folder = make_workspace(tmp_path, [("mismatch", IN_PROGRESS, "2026-01-01T00:00:00Z")],
                            tracks_status={"mismatch": PLANNING})
    tracks_before = (folder / "tracks.md").read_bytes()
    meta_before = (folder / "storages" / "mismatch" / "metadata.json").read_bytes()
    result = session_for(folder).lint(fix=True)
    assert len(result.fixed) == 1 and "status set to In Progress" in result.fixed[0]
    assert "status-mismatch" not in codes(result.problems)
    assert read_tracks(folder / "tracks.md").row("mismatch").status == IN_PROGRESS
    assert (folder / "tracks.md").read_bytes() == tracks_before.replace(
        b"| mismatch | mismatch title | Planning |", b"| mismatch | mismatch title | In Progress |")
    assert (folder / "storages" / "mismatch" / "metadata.json").read_bytes() == meta_before


def test_unsafe_component_id_never_touches_outside_storages(tmp_path):
    folder = make_workspace(tmp_path, [("good", PLANNING, "2026-01-01T00:00:00Z")])
    # a folder that "../x" would reach from storages/, with files that look like a component
    outside = folder / "x"
    outside.mkdir()
    (outside / "metadata.json").write_text('{"id": "x", "status": "Planning"}\n')
    (outside / "plan.md").write_text("## Phase 1\n- [ ] a\n")
    tracks_path = folder / "tracks.md"
    tracks_path.write_text(tracks_path.read_text()
                           + "| ../x | escape | Planning | 2026-01-01 | 2026-01-01 |\n")
    snapshot = tree_bytes(tmp_path)
    ws = Workspace(folder)
    with pytest.raises(ComponentNotFound, match="not a valid component id"):
        ws.component("../x")
    session = session_for(folder)
    with pytest.raises(ComponentNotFound):
        session.implement("../x")
    with pytest.raises(ComponentNotFound):
        session.task("done", "1.1", "../x")
    assert [c.id for c in ws.components()] == ["good"]
    # selection ignores the unsafe row
    assert session.select().component.id == "good"
    assert tree_bytes(tmp_path) == snapshot


CHECKPOINTED_PLAN = """# Plan

## Phase 1: Schema Design [checkpoint: abc1234]

- [x] Declare the tables

## Phase 2: Migration Setup [checkpoint: def5678]

- [x] Initialise Alembic
"""


def test_complete_from_planning_when_every_phase_carries_a_checkpoint(tmp_path):
    # Plans finished by another conductor tool: all phases checkpointed, status still Planning.
    folder = make_workspace(tmp_path, [("db", PLANNING, "2026-01-01T00:00:00Z")], plan=CHECKPOINTED_PLAN)
    result = session_for(folder).complete("db")
    assert result.previous_status == PLANNING
    assert read_metadata(folder / "storages" / "db" / "metadata.json").status == COMPLETED
    assert read_tracks(folder / "tracks.md").row("db").status == COMPLETED


def test_gemini_lowercase_status_keeps_snake_case(tmp_path):
    folder = make_workspace(tmp_path, [("db", PLANNING, "2026-01-01T00:00:00Z")])
    meta = folder / "storages" / "db" / "metadata.json"
    meta.write_text('{\n  "track_id": "db",\n  "status": "new",\n  "updated_at": "2026-01-01T00:00:00Z"\n}\n')
    session_for(folder).implement("db")
    assert json.loads(meta.read_text())["status"] == "in_progress"
