"""Issue 16: a plan without phase headings is one implicit phase "Plan", and `plan`/`status`
say so; headings carrying checkboxes are not tasks, and `lint` says they are not tracked."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.cli import conductor

PLAN = "# Implementation Plan\n\n- [x] Create table (abc1234)\n- [ ] Add index\n    - [ ] check it\n"


def _use_plan(project: Path, text: str) -> Path:
    plan = project / "storage-conductor" / "storages" / "orders_db" / "plan.md"
    plan.write_text(text, encoding="utf-8")
    return plan


def _json(project: Path, *args: str, code: int = 0) -> dict:
    proc = conductor("--root", str(project), *args, "--json", cwd=project, timeout=60)
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    return json.loads(proc.stdout)


def test_plan_and_status_say_the_phase_is_implicit(project: Path) -> None:
    _use_plan(project, PLAN)
    data = _json(project, "plan", "orders_db")
    phases = data["plan"]["phases"]
    assert [(p["title"], p["implicit"]) for p in phases] == [("Plan", True)]
    assert phases[0]["tasks_total"] == 2 and phases[0]["tasks_done"] == 1
    text = conductor("--root", str(project), "plan", "orders_db", cwd=project, timeout=60).stdout
    assert "Plan (implicit: the plan has no phase headings) [1/2]" in text
    rows = {c["id"]: c for c in _json(project, "status")["components"]}
    assert rows["orders_db"]["implicit_phase"] is True
    assert rows["customer_events"]["implicit_phase"] is False
    status_text = conductor("--root", str(project), "status", cwd=project, timeout=60).stdout
    line = next(row for row in status_text.splitlines() if row.startswith("orders_db"))
    assert "Plan (implicit)" in line


def test_phases_with_headings_are_not_implicit(project: Path) -> None:
    data = _json(project, "plan", "customer_events")
    assert data["plan"]["phases"] and not any(p["implicit"] for p in data["plan"]["phases"])


def test_lint_warns_that_checkbox_headings_are_not_tracked(project: Path) -> None:
    plan = _use_plan(project, "# Plan\n\n## Phase 1: Schema\n\n- [ ] Create table\n\n"
                              "### [x] 0.1 Task: set up\n\n#### [ ] 1.2 Another\n\n- [ ] Add index\n")
    problems = _json(project, "lint", code=1)["problems"]
    found = [(p["file"], p["line"], p["severity"]) for p in problems if p["code"] == "checkbox-heading"]
    assert found == [(str(plan), 7, "warning"), (str(plan), 9, "warning")]
    message = next(p["message"] for p in problems if p["code"] == "checkbox-heading")
    assert "0.1 Task: set up" in message and "not be tracked" in message
    # and they are not counted as tasks
    phase = _json(project, "plan", "orders_db")["plan"]["phases"][0]
    assert phase["tasks_total"] == 2
