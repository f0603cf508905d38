"""The ``conductor`` CLI on a copy of the example workspace: in process (``cli.main``) for the
behaviour, and through the real console script for a few smoke tests of the entry point
itself (help and exit codes, --json, $CONDUCTOR_ROOT and discovery from the working folder)."""

from __future__ import annotations

import json
import random
import re
import subprocess
from pathlib import Path

import pytest
from helpers.cli import clean_env, conductor

COMPONENT_KEYS = ["id", "title", "status", "storage_type", "backend", "tasks_total", "tasks_done",
                  "subtasks_total", "subtasks_done", "current_phase", "implicit_phase", "next_task",
                  "problems"]


def run(*args: str, cwd: Path, env: dict[str, str] | None = None,
        real: bool = False) -> subprocess.CompletedProcess:
    proc = conductor(*args, cwd=cwd, env=env, timeout=60, real=real)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


def cli(root: Path, *args: str, real: bool = False) -> subprocess.CompletedProcess:
    return run("--root", str(root), *args, cwd=root, real=real)


def cli_json(root: Path, *args: str, code: int = 0, real: bool = False):
    proc = cli(root, *args, "--json", real=real)
    assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
    return json.loads(proc.stdout)


# -- an independent reading of plan.md (regexes, not the project's parser) -----------------

_HEADING = re.compile(r"^#{1,3}\s+((?:Phase|Stage|Milestone|Step)\b.*?)\s*$", re.IGNORECASE)
_ITEM = re.compile(r"^(\s*)[-*+]\s+\[([ xX~!-])\]\s+(.*?)\s*$")


def reference_counts(plan: Path) -> dict:
    """Counts, current phase and next task from plan.md with plain regexes."""
    tasks_total = tasks_done = subs_total = subs_done = 0
    phase = None
    in_fence = False
    first_todo = first_wip = None  # (phase, text)
    for line in plan.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        heading = _HEADING.match(line)
        if heading:
            phase = heading.group(1)
            continue
        item = _ITEM.match(line)
        if not item or phase is None:
            continue
        indent, mark, text = item.groups()
        if indent == "":
            tasks_total += 1
            tasks_done += mark in "xX"
        else:
            subs_total += 1
            subs_done += mark in "xX"
        if mark == "~" and first_wip is None:
            first_wip = (phase, text)
        if mark == " " and first_todo is None:
            first_todo = (phase, text)
    nxt = first_wip or first_todo
    return {"tasks_total": tasks_total, "tasks_done": tasks_done, "subtasks_total": subs_total,
            "subtasks_done": subs_done, "current_phase": nxt[0] if nxt else None,
            "next_task": nxt[1] if nxt else None}


def tick_randomly(plan: Path, rng: random.Random, share: float) -> None:
    """Tick (or start) random items by editing the file directly, never closing a phase
    (the last top-level task of every phase stays open) so no phase gate is involved."""
    lines = plan.read_bytes().split(b"\n")
    last_top: dict[int, int] = {}
    phase_no = 0
    for i, line in enumerate(lines):
        if _HEADING.match(line.decode()):
            phase_no += 1
        elif phase_no and re.match(rb"^[-*+] \[ \] ", line):
            last_top[phase_no] = i
    keep = set(last_top.values())
    for i, line in enumerate(lines):
        if i not in keep and re.match(rb"^\s*[-*+] \[ \] ", line) and rng.random() < share:
            lines[i] = line.replace(b"[ ]", b"[x]" if rng.random() < 0.9 else b"[~]", 1)
    plan.write_bytes(b"\n".join(lines))


def check_status(root: Path, real: bool = False) -> dict:
    data = cli_json(root, "status", real=real)
    assert list(data) == ["components", "problems"]
    assert data["problems"] == []
    ws = root / "storage-conductor"
    ids = [c["id"] for c in data["components"]]
    assert ids == ["orders_db", "customer_events"]
    for comp in data["components"]:
        assert list(comp) == COMPONENT_KEYS
        meta = json.loads((ws / "storages" / comp["id"] / "metadata.json").read_text())
        assert comp["title"] == meta["title"]
        assert comp["status"] == meta["status"]
        assert comp["storage_type"] == meta["storage_type"]
        assert comp["backend"] == meta["backend"]
        assert comp["problems"] == []
        ref = reference_counts(ws / "storages" / comp["id"] / "plan.md")
        for key, value in ref.items():
            assert comp[key] == value, (comp["id"], key, comp[key], value)
        for key in ("current_phase", "next_task"):
            text = comp[key]
            assert isinstance(text, str) and text.strip() == text
            assert "**" not in text and "[ ]" not in text and not text.startswith(("-", "#"))
        for key in ("tasks_total", "tasks_done", "subtasks_total", "subtasks_done"):
            assert isinstance(comp[key], int)
    return data


def test_status_json_matches_an_independent_count(project: Path) -> None:
    """Smoke test of --json through the real console script."""
    data = check_status(project, real=True)
    orders, events = data["components"]
    # Spot-check the reference itself against numbers read off the example by hand.
    assert (orders["tasks_total"], orders["subtasks_total"]) == (38, 23)
    assert (events["tasks_total"], events["subtasks_total"]) == (9, 3)
    assert orders["current_phase"] == "Phase 1: Schema Design"
    assert orders["next_task"] == "Task: Declare the customers, products and orders tables in schema.sql"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_status_json_counts_after_random_ticks(project: Path, seed: int) -> None:
    rng = random.Random(seed)
    ws = project / "storage-conductor"
    for cid in ("orders_db", "customer_events"):
        tick_randomly(ws / "storages" / cid / "plan.md", rng, share=0.3 + 0.2 * seed)
    data = check_status(project)
    assert data["components"][0]["tasks_done"] + data["components"][0]["subtasks_done"] > 0


def test_status_json_after_ticks_through_the_cli(project: Path) -> None:
    for ref in ("1.1", "1.1.1", "1.2.2", "2.1"):
        assert cli(project, "task", "done", "orders_db", ref).returncode == 0
    assert cli(project, "task", "start", "orders_db", "1.3").returncode == 0
    data = check_status(project)
    orders = data["components"][0]
    assert (orders["tasks_done"], orders["subtasks_done"]) == (2, 2)
    assert orders["status"] == "In Progress"
    assert orders["next_task"].startswith("Task: Mirror schema.sql as SQLAlchemy 2 models")


def test_json_on_every_subcommand(project: Path) -> None:
    ws = project / "storage-conductor"
    for args, code in [
        (("status",), 0),
        (("implement", "customer_events"), 0),
        (("next",), 0),
        (("next", "orders_db"), 0),
        (("context", "customer_events"), 0),
        (("context", "customer_events", "spec"), 0),
        (("plan", "customer_events"), 0),
        (("task", "done", "customer_events", "1.1.1"), 0),
        (("task", "undo", "customer_events", "1.1.1"), 0),
        (("task", "start", "customer_events", "Mirror the events table"), 0),
        (("verify", "customer_events", "--phase", "1"), 1),  # shows the gate: not verified
        (("complete", "customer_events"), 1),  # gate refused: JSON error object
        (("lint",), 0),
    ]:
        data = cli_json(project, *args, code=code)
        assert isinstance(data, dict) and data, (args, data)
    plan = cli_json(project, "plan", "customer_events")
    assert plan["id"] == "customer_events"
    assert [p["title"] for p in plan["plan"]["phases"]] == [
        "Phase 1: Schema Design", "Phase 2: Migration Setup", "Phase 3: Data Integrity"]
    ctx = cli_json(project, "context", "customer_events", "spec")
    assert ctx["documents"]["spec"] == (ws / "storages/customer_events/spec.md").read_text()
    refused = cli_json(project, "complete", "customer_events", code=1)
    assert refused["error"] == "GateClosed"
    assert refused["file"] == str((ws / "storages/customer_events/plan.md").resolve())


def _status_ids(proc: subprocess.CompletedProcess) -> list[str]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [c["id"] for c in json.loads(proc.stdout)["components"]]


def test_root_env_and_discovery(project: Path, tmp_path: Path) -> None:
    """Smoke test of the real console script's environment and working folder."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    expected = ["orders_db", "customer_events"]
    # --root: the project folder, or the storage-conductor folder itself.
    assert _status_ids(run("--root", str(project), "status", "--json", cwd=elsewhere, real=True)) == expected
    assert _status_ids(run("status", "--json", "--root", str(project / "storage-conductor"),
                           cwd=elsewhere, real=True)) == expected
    # $CONDUCTOR_ROOT
    env = clean_env(CONDUCTOR_ROOT=str(project))
    assert _status_ids(run("status", "--json", cwd=elsewhere, real=True, env=env)) == expected
    # discovery by walking up from a nested folder, inside and outside the workspace
    nested = project / "src" / "pkg" / "deeper"
    nested.mkdir(parents=True)
    assert _status_ids(run("status", "--json", cwd=nested, real=True)) == expected
    inside = project / "storage-conductor" / "storages" / "orders_db"
    assert _status_ids(run("status", "--json", cwd=inside, real=True)) == expected
    # nothing to find: a clear error, exit 2
    proc = run("status", cwd=elsewhere, real=True)
    assert proc.returncode == 2 and "storage-conductor" in proc.stderr, proc.stderr
    # --root wins over $CONDUCTOR_ROOT
    bad_env = clean_env(CONDUCTOR_ROOT=str(elsewhere))
    assert _status_ids(run("--root", str(project), "status", "--json", cwd=elsewhere, real=True,
                           env=bad_env)) == expected
    proc = run("status", cwd=nested, real=True, env=bad_env)
    assert proc.returncode == 2 and "CONDUCTOR_ROOT" in proc.stderr, proc.stderr
    # a write through discovery lands in the discovered workspace
    assert run("task", "done", "customer_events", "1.1.1", cwd=nested, real=True).returncode == 0
    plan = (project / "storage-conductor/storages/customer_events/plan.md").read_text()
    assert "  - [x] Restrict kind to the six documented event kinds" in plan


def test_help_exits_zero(project: Path) -> None:
    """Smoke test of the real console script: help, and exit 2 without a command."""
    top = run("--help", cwd=project, real=True)
    assert top.returncode == 0 and "usage" in top.stdout.lower()
    for command in ("status", "implement", "task", "verify", "complete", "lint"):
        assert command in top.stdout
    task = run("task", "--help", cwd=project, real=True)
    assert task.returncode == 0
    for action in ("done", "undo", "start", "skip", "block", "--force"):
        assert action in task.stdout
    none = run(cwd=project, real=True)
    assert none.returncode == 2 and none.stderr.strip(), none.stderr


def _status_row(tracks: str, cid: str) -> list[str]:
    for line in tracks.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == cid:
            return cells
    raise AssertionError(f"{cid} not in tracks.md")


def test_happy_path_customer_events(project: Path) -> None:
    ws = project / "storage-conductor"
    comp = ws / "storages" / "customer_events"
    original_plan = (comp / "plan.md").read_bytes()
    orders_before = {p.name: p.read_bytes() for p in (ws / "storages" / "orders_db").iterdir()}

    impl = cli_json(project, "implement", "customer_events")
    assert (impl["previous_status"], impl["status"]) == ("Planning", "In Progress")
    assert json.loads((comp / "metadata.json").read_text())["status"] == "In Progress"
    assert _status_row((ws / "tracks.md").read_text(), "customer_events")[4] == "In Progress"

    verified: list[int] = []
    ticked: list[str] = []
    for _ in range(40):
        nxt = cli_json(project, "next", "customer_events")
        if nxt["action"] == "work":
            number = nxt["task"]["number"]
            # one task by its text, the rest by number
            ref = "Add a trigger that rejects every UPDATE" if number == "3.1" else number
            done = cli_json(project, "task", "done", "customer_events", ref)
            assert done["task"]["number"] == number and done["after"] == "done"
            ticked.append(number)
        elif nxt["action"] == "verify":
            n = nxt["phase"]["number"]
            res = cli_json(project, "verify", "customer_events", "--phase", str(n),
                           "--confirm", f"phase {n} reviewed", "--by", "tester")
            assert res["verified"] is True
            verified.append(n)
        else:
            assert nxt["action"] == "complete", nxt
            break
    assert verified == [1, 2, 3]
    assert ticked == ["1.1", "1.1.1", "1.1.2", "1.2", "1.3", "2.1", "2.2", "2.3",
                      "3.1", "3.1.1", "3.2", "3.3"]

    proc = cli(project, "complete", "customer_events")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    meta = json.loads((comp / "metadata.json").read_text())
    assert meta["status"] == "Completed"
    assert list(meta) == ["id", "title", "type", "storage_type", "backend", "status", "created",
                          "updated"]
    assert _status_row((ws / "tracks.md").read_text(), "customer_events")[4] == "Completed"
    assert _status_row((ws / "tracks.md").read_text(), "orders_db")[4] == "Planning"

    log = json.loads((comp / "verification.json").read_text())
    assert [r["phase"] for r in log if r["kind"] == "verification"] == [1, 2, 3]
    assert all(r["by"] == "tester" for r in log)

    # Each verified phase heading gained a `[verified: date]` annotation; apart from those
    # three lines, plan.md differs from the original only in the 12 ticked mark bytes.
    new_plan = (comp / "plan.md").read_bytes()
    annotated = re.compile(rb" \[verified: \d{4}-\d{2}-\d{2}\]")
    assert len(annotated.findall(new_plan)) == 3
    new_plan = annotated.sub(b"", new_plan)
    assert len(new_plan) == len(original_plan)
    diffs = [i for i, (a, b) in enumerate(zip(original_plan, new_plan, strict=True)) if a != b]
    assert len(diffs) == 12 and all(original_plan[i:i + 1] == b" " and new_plan[i:i + 1] == b"x"
                                    for i in diffs)
    assert {p.name: p.read_bytes() for p in (ws / "storages" / "orders_db").iterdir()} == orders_before

    status = cli_json(project, "status")["components"][1]
    assert status["status"] == "Completed"
    assert (status["tasks_done"], status["subtasks_done"]) == (9, 3)
    assert status["next_task"] is None
    lint = cli(project, "lint")
    assert lint.returncode == 0, lint.stdout
    # completing again is a no-op that still succeeds
    again = cli_json(project, "complete", "customer_events")
    assert again["status"] == "Completed" and again["previous_status"] == "Completed"
