"""Task cells, TDD test cells, schema-first locks and the heading annotation on verify."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers.cli import conductor
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from conductor_magics.errors import GateClosed
from conductor_magics.session import Session
from conductor_magics.workspace import Workspace
from conductor_magics.workspace.plan import read_plan

TDD_LINE = "- **Testing approach:** TDD\n"


def set_testing(workspace: Path, line: str) -> None:
    workflow = workspace / "workflow.md"
    text = workflow.read_text()
    old = next(x for x in text.splitlines(keepends=True) if "Testing approach" in x)
    workflow.write_text(text.replace(old, line))


@pytest.fixture
def ip(ip):
    ip.run_line_magic("config", "Conductor.rich = False")  # the conftest ip resets it
    return ip


def state(project: Path, number: str, component: str = "customer_events") -> str:
    plan = read_plan(project / f"storage-conductor/storages/{component}/plan.md")
    return next(t.state for t in plan.items() if t.number == number)


def test_task_cell_ticks_on_success_and_stays_in_progress_on_failure(ip, project):
    with capture_output() as cap:
        ok = ip.run_cell("%%conductor task customer_events 1.1.1\nwork_done = 6 * 7")
    assert ok.success, cap.stderr
    assert ip.user_ns["work_done"] == 42  # the cell ran in the kernel's namespace
    assert state(project, "1.1.1") == "done"
    with capture_output() as cap:
        failed = ip.run_cell("%%conductor task customer_events 1.1.2\nraise ValueError('boom')")
    assert isinstance(failed.error_in_exec, UsageError)
    assert "ValueError" in cap.stdout + cap.stderr and "stays [~]" in cap.stderr
    assert state(project, "1.1.2") == "in_progress"


def test_task_cell_respects_phase_locks(ip, project):
    with capture_output() as cap:
        refused = ip.run_cell("%%conductor task customer_events 3.1\nran = True")
    assert isinstance(refused.error_in_exec, UsageError)
    assert "schema-first" in cap.stderr
    assert "ran" not in ip.user_ns  # the work did not run
    assert state(project, "3.1") == "todo"


def test_tdd_requires_red_then_green(ip, project):
    set_testing(project / "storage-conductor", TDD_LINE)
    with capture_output() as cap:
        refused = ip.run_cell("%conductor task done customer_events 1.2")
    assert isinstance(refused.error_in_exec, UsageError)
    assert "TDD" in cap.stderr and "no tests" in cap.stderr
    # green without red is not enough
    ip.run_cell("%%conductor test model_roundtrip --id customer_events --task 1.2\nassert True")
    with capture_output() as cap:
        refused = ip.run_cell("%conductor task done customer_events 1.2")
    assert isinstance(refused.error_in_exec, UsageError) and "green without red" in cap.stderr
    # red, then green
    with capture_output():
        red = ip.run_cell("%%conductor test model_roundtrip --id customer_events --task 1.2\n"
                          "assert implemented")
    assert red.success  # a failing test cell does not stop the notebook
    ip.user_ns["implemented"] = True
    ip.run_cell("%%conductor test model_roundtrip --id customer_events --task 1.2\nassert implemented")
    with capture_output() as cap:
        ticked = ip.run_cell("%conductor task done customer_events 1.2")
    assert ticked.success, cap.stderr
    runs = json.loads((project / "storage-conductor/storages/customer_events/test_runs.json").read_text())
    assert [r["passed"] for r in runs] == [True, False, True]
    assert all(r["task"] == "1.2" for r in runs)


def test_tdd_gate_from_the_cli(project):
    set_testing(project / "storage-conductor", TDD_LINE)

    def cli(*args):
        return conductor(*args, root=project, cwd=Path.cwd(), env=dict(os.environ))

    refused = cli("task", "done", "customer_events", "1.2")
    assert refused.returncode == 1 and "TDD" in refused.stderr
    assert cli("test", "t1", "--id", "customer_events", "--task", "1.2", "--failed").returncode == 1
    assert cli("test", "t1", "--id", "customer_events", "--task", "1.2", "--passed").returncode == 0
    assert cli("task", "done", "customer_events", "1.2").returncode == 0


def test_manual_verification_tasks_need_no_tests_in_tdd(project):
    set_testing(project / "storage-conductor", TDD_LINE)
    session = Session(Workspace(project / "storage-conductor"), user="tester")
    session.task("done", "1.3", "customer_events")  # "Conductor - User Manual Verification …"
    with pytest.raises(GateClosed):
        session.task("done", "1.2", "customer_events")


def test_schema_first_locks_implementation_phases_until_schema_is_verified(project):
    session = Session(Workspace(project / "storage-conductor"), user="tester")
    states = session.plan("orders_db").phases
    kinds = {s.phase.number: (s.phase.kind, s.locked) for s in states}
    assert kinds[2] == ("migration", False)  # migrations follow the declared schema
    assert all(kinds[n][1] for n in (3, 4, 5, 6))  # core, indexing, integrity, backup
    assert not kinds[7][1] and not kinds[8][1]  # testing, documentation
    with pytest.raises(GateClosed, match="schema-first"):
        session.task("done", "3.1", "orders_db")
    for ref in ("1.1.1", "1.1.2", "1.1", "1.2.1", "1.2.2", "1.2", "1.3.1", "1.3", "1.4", "1.5"):
        session.task("done", ref, "orders_db")
    session.verify("orders_db", 1, note="schema reviewed")
    assert not any(s.locked for s in session.plan("orders_db").phases)
    session.task("done", "3.1", "orders_db")


def test_verify_annotates_the_phase_heading(project):
    session = Session(Workspace(project / "storage-conductor"), user="tester")
    plan_path = project / "storage-conductor/storages/customer_events/plan.md"
    for ref in ("1.1.1", "1.1.2", "1.1", "1.2", "1.3"):
        session.task("done", ref, "customer_events")
    before = plan_path.read_bytes().splitlines()
    session.verify("customer_events", 1, note="ok")
    after = plan_path.read_bytes().splitlines()
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert len(changed) == 1
    line = after[changed[0]].decode()
    assert line.startswith("## Phase 1: Schema Design [verified: ")
    # the annotation is not part of the phase's name
    assert read_plan(plan_path).phases[0].title == "Phase 1: Schema Design"
