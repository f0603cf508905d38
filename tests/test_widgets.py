"""The plan checklist, the verification gate and the component chooser (ipywidgets 8),
on real files and a real IPython shell. Ticks are sent the way the frontend sends them
(``set_state``), so the widgets' observers, reverts and echoes run as in JupyterLab."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from IPython.utils.capture import capture_output
from ipywidgets.widgets.widget import _instances  # model_id → widget (Widget.widgets is deprecated)

from conductor_magics.session import Session
from conductor_magics.widgets.checklist import ComponentChooser, PlanChecklist, task_class
from conductor_magics.widgets.checklist_model import ChecklistModel
from conductor_magics.widgets.gate import GateWidget
from conductor_magics.workspace import Workspace

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def session(project: Path, monkeypatch) -> Session:
    monkeypatch.delenv("CONDUCTOR_DATABASE_URL", raising=False)
    return Session(Workspace(project / "storage-conductor"), user="tester")


@pytest.fixture
def plan_path(project: Path) -> Path:
    return project / "storage-conductor/storages/orders_db/plan.md"


@pytest.fixture(autouse=True)
def close_widgets():
    """Close every checklist a test opened (stops its poller)."""
    yield
    for widget in list(_instances.values()):
        if isinstance(widget, (PlanChecklist, ComponentChooser, GateWidget)):
            widget.close()


class RecordingComm:
    """Stands in for the kernel's comm: records what the kernel sends to the frontend."""

    kernel = object()

    def __init__(self, original):
        self.comm_id = original.comm_id
        self.sent: list[dict] = []

    def send(self, data=None, buffers=None, **_kwargs):
        self.sent.append(data)

    def close(self, *args, **kwargs):
        pass

    def on_msg(self, *args, **kwargs):
        pass


def click(box, value: bool = True) -> None:
    """What the frontend does when the user clicks a checkbox."""
    box.set_state({"value": value})


def diff_bytes(before: bytes, after: bytes) -> list[int]:
    assert len(before) == len(after)
    return [i for i in range(len(before)) if before[i] != after[i]]


def checklist(session: Session, storage_id: str = "orders_db", **kwargs) -> PlanChecklist:
    kwargs.setdefault("poll_seconds", None)
    return PlanChecklist(ChecklistModel(session, storage_id), **kwargs)


def finish_phase(session: Session, storage_id: str, phase: int) -> None:
    plan = session.plan(storage_id).plan
    # sub-tasks before their parents, as a user ticks them
    for task in sorted(plan.phase(phase).items(), key=lambda t: -t.depth):
        session.task("done", task.number, storage_id)


# -- layering -----------------------------------------------------------------------------


def test_model_imports_without_ipywidgets_or_ipython():
    code = ("import sys\nsys.modules['ipywidgets'] = None\n"
            "import conductor_magics.widgets.checklist_model\n"
            "print(sorted(m for m in ('ipywidgets', 'IPython', 'ipykernel') if sys.modules.get(m)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    # ...whereas the widget module does need it (so the check above can fail)
    code = "import sys\nsys.modules['ipywidgets'] = None\nimport conductor_magics.widgets.checklist\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0 and "ipywidgets" in out.stderr


# -- the checklist ------------------------------------------------------------------------


def test_dom_classes_and_visible_descriptions(session):
    view = checklist(session)
    assert "conductor-checklist" in view._dom_classes
    assert "conductor-message" in view.message._dom_classes
    section = view.section(3)
    assert {"conductor-phase", "conductor-phase-3", "conductor-locked"} <= set(section._dom_classes)
    assert "conductor-lock-reason" in section.status._dom_classes
    assert "schema-first" in section.status.value
    assert "conductor-locked" not in view.section(1)._dom_classes
    box = view.box("1.1.2")
    assert {"conductor-task", "conductor-task-1-1-2"} <= set(box._dom_classes)
    assert task_class("3.1.2") == "conductor-task-3-1-2"
    assert box.indent is False and box.layout.width == "auto"
    assert box.description.startswith("1.1.2 Restrict orders.status")
    current = [view.box(t.number) for t in view.model.tasks() if t.is_current]
    assert len(current) == 1 and "conductor-current" in current[0]._dom_classes
    assert all(view.box(t.number).disabled for t in view.model.phases[2].tasks)
    assert not any(view.box(t.number).disabled for t in view.model.phases[0].tasks)
    # sub-tasks are indented below their parent
    row_of = {row.number: row for s in view._sections for row in s.rows}
    assert row_of["1.1.1"].layout.margin != row_of["1.1"].layout.margin


def test_tick_writes_one_byte_and_updates_counts_and_progress(session, plan_path, project):
    view = checklist(session)
    box = view.box("1.1.1")
    before = plan_path.read_bytes()
    overall, phase_bar = view.progress.value, view.section(1).bar.value
    click(box)
    after = plan_path.read_bytes()
    changed = diff_bytes(before, after)
    assert len(changed) == 1 and after[changed[0]:changed[0] + 1] == b"x"
    assert box.value is True and view.message.value.startswith("✔")
    assert view.progress.value == overall + 1 and view.section(1).bar.value == phase_bar + 1
    assert view.model.phases[0].counts["subtasks_done"] == 1
    assert "sub-tasks 1/" in view.progress_label.value
    # the tick also set the component In Progress in metadata.json and tracks.md
    meta = json.loads((project / "storage-conductor/storages/orders_db/metadata.json").read_text())
    assert meta["status"] == "In Progress"
    # untick: the byte goes back
    click(box, False)
    assert plan_path.read_bytes() == before and box.value is False
    assert view.model.phases[0].counts["subtasks_done"] == 0


def test_tick_in_a_locked_phase_reverts_and_says_why(session, plan_path):
    view = checklist(session)
    box = view.box("3.1")
    assert box.disabled and "locked" in (box.tooltip or "")
    comm = RecordingComm(box.comm)
    box.comm = comm
    before = plan_path.read_bytes()
    click(box)  # a stale or scripted frontend can still send it
    assert plan_path.read_bytes() == before
    assert box.value is False
    assert view.message.value.startswith("✘") and "locked" in view.message.value
    assert "schema-first" in view.message.value
    # the revert reached the frontend (not just the kernel-side trait)
    updates = [m for m in comm.sent if m.get("method") == "update"]
    assert any(m["state"].get("value") is False for m in updates), comm.sent


def test_ticking_the_last_task_never_verifies_the_phase(session, project):
    view = checklist(session, "customer_events")
    for number in ("1.1.1", "1.1.2", "1.1", "1.2", "1.3"):
        click(view.box(number))
        assert view.box(number).value, view.message.value
    phase = view.model.phases[0]
    assert phase.finished and not phase.verified
    assert view.section(1).status.value == "finished, awaiting verification"
    assert "conductor-locked" in view.section(2)._dom_classes
    assert "Phase 1" in view.section(2).status.value
    log = project / "storage-conductor/storages/customer_events/verification.json"
    assert not log.exists() or not [r for r in json.loads(log.read_text()) if r["kind"] == "verification"]


def test_external_edits_appear_after_one_poll(session, plan_path, project):
    view = checklist(session)
    box = view.box("1.2.1")
    task = session.plan("orders_db").plan.find("1.2.1")
    data = bytearray(plan_path.read_bytes())
    data[task.mark_offset] = ord("x")
    with open(plan_path, "r+b") as handle:  # in place, as an editor without atomic save does
        handle.write(bytes(data))
    assert box.value is False  # not before the poll
    assert view.poll_once() is True
    assert box.value is True
    assert view.poll_once() is False  # nothing changed since
    # another process (the CLI) ticks a task
    subprocess.run([sys.executable, "-m", "conductor_magics.cli", "--root", str(project),
                    "task", "start", "orders_db", "1.3"], check=True, capture_output=True)
    view.poll_once()
    assert view.box("1.3").description.startswith("◐ 1.3 ")
    assert "conductor-current" in view.box("1.3")._dom_classes
    # a prose line inserted above: numbers stay, offsets move; a tick still hits one byte
    text = plan_path.read_bytes().replace(b"## Phase 1: Schema Design\n",
                                          b"## Phase 1: Schema Design\n\nA note added in the editor.\n")
    plan_path.write_bytes(text)
    view.poll_once()
    before = plan_path.read_bytes()
    click(view.box("1.4"))
    assert len(diff_bytes(before, plan_path.read_bytes())) == 1


def test_a_same_size_rewrite_in_the_same_mtime_tick_is_seen(session, plan_path):
    session.task("start", "1.2", "orders_db")  # plan.md written just now
    model = ChecklistModel(session, "orders_db")
    stat = plan_path.stat()
    task = session.plan("orders_db").plan.find("1.1")
    data = bytearray(plan_path.read_bytes())
    data[task.mark_offset] = ord("~")
    with open(plan_path, "r+b") as handle:
        handle.write(bytes(data))
    # the clock did not tick between the two writes (coarse file timestamps)
    os.utime(plan_path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = plan_path.stat()
    assert (after.st_mtime_ns, after.st_size, after.st_ino) == (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    assert model.refresh() is True
    assert model.task("1.1").state == "in_progress"


def test_unparsable_plan_reverts_the_tick_with_the_reason(session, plan_path):
    view = checklist(session)
    good = plan_path.read_bytes()
    broken = good.replace(b"## Phase 2: Migration Setup", b"## Phase 2: Migration \xff Setup")
    plan_path.write_bytes(broken)  # written meanwhile; the widget has not polled yet
    box = view.box("1.1.1")
    click(box)
    assert box.value is False
    assert plan_path.read_bytes() == broken  # nothing written
    assert view.message.value.startswith("✘") and "not valid UTF-8" in view.message.value
    assert "plan.md" in view.message.value
    assert all(view.box(t.number).disabled for t in view.model.tasks())
    plan_path.write_bytes(good)
    assert view.poll_once()
    assert not box.disabled and view.message.value == ""
    click(box)
    assert box.value is True


def test_the_poller_follows_the_files_from_a_thread(session, plan_path):
    view = checklist(session, poll_seconds=0.1)
    assert view.polling and view._poll_thread is not None  # no running loop here
    session.task("done", "1.4", "orders_db")  # the CLI or another kernel
    deadline = time.monotonic() + 10
    while not view.box("1.4").value and time.monotonic() < deadline:
        time.sleep(0.05)
    assert view.box("1.4").value is True
    thread = view._poll_thread
    view.close()
    assert not thread.is_alive() and not view.polling


def test_the_poller_runs_on_the_running_event_loop(session):
    async def scenario():
        view = checklist(session, poll_seconds=0.1)
        assert view._poll_task is not None and view._poll_thread is None
        session.task("done", "1.4", "orders_db")
        for _ in range(100):
            await asyncio.sleep(0.05)
            if view.box("1.4").value:
                break
        ticked = view.box("1.4").value
        task = view._poll_task
        view.close()
        await asyncio.sleep(0)
        return ticked, task

    ticked, task = asyncio.run(scenario())
    assert ticked is True
    assert task.done()


def test_a_verified_phase_can_be_unticked_but_stays_verified(session):
    finish_phase(session, "customer_events", 1)
    session.verify("customer_events", 1, note="DDL reviewed")
    view = checklist(session, "customer_events")
    assert view.section(1).status.value.startswith("✔ verified by tester")
    assert "conductor-verified" in view.section(1)._dom_classes
    box = view.box("1.2")
    assert not box.disabled
    click(box, False)
    assert box.value is False and view.model.task("1.2").state == "todo"


# -- the gate -----------------------------------------------------------------------------


def test_gate_refuses_until_a_failed_check_is_waived_then_records_it(session, project, plan_path):
    finish_phase(session, "orders_db", 1)
    log = project / "storage-conductor/storages/orders_db/verification.json"
    gate = GateWidget(session, "orders_db", 1)
    assert "conductor-gate" in gate._dom_classes
    assert "conductor-note" in gate.note._dom_classes
    assert "conductor-confirm" in gate.confirm_button._dom_classes
    failed = [r for r in gate.rows if r.status == "fail"]
    assert failed and failed[0].name == "declared schema exists"  # no schema.sql yet
    assert {"conductor-check", "conductor-check-fail"} <= set(failed[0]._dom_classes)
    assert "conductor-waive" in failed[0].waive._dom_classes
    gate.note.value = "reviewed the DDL with the team"
    gate.confirm_button.click()
    assert gate.message.value.startswith("✘ refused") and "declared schema exists" in gate.message.value
    assert not log.exists()
    failed[0].waive.value = "   "  # blank is not a reason
    gate.confirm_button.click()
    assert "waive reason" in gate.message.value and not log.exists()
    failed[0].waive.value = "schema lives in the models until phase 2"
    gate.confirm_button.click()
    assert gate.message.value == ""
    record = json.loads(log.read_text())[-1]
    assert record["kind"] == "verification" and record["phase"] == 1 and record["by"] == "tester"
    assert record["note"] == "reviewed the DDL with the team"
    assert record["waivers"] == {"declared schema exists": "schema lives in the models until phase 2"}
    assert "verified by" in gate.verdict.value and "tester" in gate.verdict.value
    assert gate.confirm_button.disabled and gate.note.disabled
    assert "[verified:" in plan_path.read_text().split("\n## Phase 1", 1)[1].splitlines()[0]
    # a checklist sees the verdict: phase 1 verified, phase 3 unlocked (schema-first)
    view = checklist(session)
    assert view.model.phases[0].verified and not view.model.phases[2].locked
    gate.confirm_button.click()
    assert "already verified" in gate.message.value
    assert len([r for r in json.loads(log.read_text()) if r["kind"] == "verification"]) == 1


def test_gate_refuses_an_empty_note_and_open_tasks(session, project):
    gate = GateWidget(session, "customer_events", 1)
    assert [r.status for r in gate.rows] == ["fail"]
    gate.rows[0].waive.value = "not declared yet"
    gate.confirm_button.click()
    assert "write a note" in gate.message.value
    gate.note.value = "looks right"
    gate.confirm_button.click()
    assert "open task" in gate.message.value
    assert not (project / "storage-conductor/storages/customer_events/verification.json").exists()


def test_gate_opened_from_the_checklist_updates_it(session):
    from conductor_magics.widgets.display import checklist_for

    finish_phase(session, "customer_events", 1)
    view = checklist_for(session, "customer_events")
    view.stop_polling()
    section = view.section(1)
    assert section.gate_button.layout.display is None  # offered on a finished phase
    assert view.section(2).gate_button.layout.display == "none"
    section.gate_button.click()
    gate = section.gate_widget
    assert isinstance(gate, GateWidget) and gate in section.body.children
    gate.rows[0].waive.value = "schema.sql comes with the migration"
    gate.note.value = "reviewed"
    gate.confirm_button.click()
    assert view.model.phases[0].verified
    assert "conductor-locked" not in view.section(2)._dom_classes


# -- through %conductor -------------------------------------------------------------------


def displayed(ip, line: str):
    with capture_output() as cap:
        result = ip.run_cell(line)
    assert result.success, cap.stderr
    widgets = [_instances[o.data[WIDGET_MIME]["model_id"]] for o in cap.outputs if WIDGET_MIME in o.data]
    return cap, widgets


def test_plan_magic_displays_the_checklist_with_fallbacks(ip):
    cap, widgets = displayed(ip, "%conductor plan orders_db")
    assert len(widgets) == 1 and isinstance(widgets[0], PlanChecklist)
    view = widgets[0]
    assert view.model.component_id == "orders_db" and len(view.model.phases) == 8
    assert view.polling  # it follows the files
    data = cap.outputs[0].data
    assert "Phase 1: Schema Design" in data["text/plain"] and "<details" in data["text/html"]


def test_plain_output_when_rich_is_off(ip):
    ip.run_line_magic("config", "Conductor.rich = False")
    cap, widgets = displayed(ip, "%conductor plan orders_db")
    assert widgets == [] and "Phase 1: Schema Design" in cap.stdout


def test_html_fallback_without_ipywidgets(project: Path):
    code = ("import sys\nsys.modules['ipywidgets'] = None\n"
            "from IPython.core.interactiveshell import InteractiveShell\n"
            "from IPython.utils.capture import capture_output\n"
            "ip = InteractiveShell.instance(); ip.run_line_magic('load_ext', 'conductor_magics')\n"
            "with capture_output() as cap: ok = ip.run_cell('%conductor plan orders_db').success\n"
            "print(ok, sorted(cap.outputs[0].data))\n")
    env = {**os.environ, "CONDUCTOR_ROOT": str(project)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=env)
    assert out.stdout.strip().splitlines()[-1] == "True ['text/html', 'text/plain']"


def test_implement_by_name_shows_its_checklist(ip):
    cap, widgets = displayed(ip, "%conductor implement customer_events")
    assert "Implementing customer_events" in cap.outputs[0].data["text/plain"]
    assert len(widgets) == 1 and isinstance(widgets[0], PlanChecklist)
    assert widgets[0].model.component_id == "customer_events"
    assert ip.user_ns["conductor"].id == "customer_events"


def test_implement_without_id_offers_the_other_candidates(ip, project):
    cap, widgets = displayed(ip, "%conductor implement")
    assert len(widgets) == 1 and isinstance(widgets[0], ComponentChooser)
    chooser = widgets[0]
    assert "conductor-chooser" in chooser.dropdown._dom_classes
    assert "conductor-choose" in chooser.button._dom_classes
    ids = [value for _label, value in chooser.dropdown.options]
    assert sorted(ids) == ["customer_events", "orders_db"]
    picked = ip.user_ns["conductor"].id
    assert chooser.dropdown.value == picked and chooser.checklist.model.component_id == picked
    other = next(i for i in ids if i != picked)
    chooser.dropdown.value = other
    chooser.button.click()
    assert chooser.checklist.model.component_id == other
    assert ip.user_ns["conductor"].id == other
    meta = json.loads((project / f"storage-conductor/storages/{other}/metadata.json").read_text())
    assert meta["status"] == "In Progress"


def test_verify_magic_shows_the_gate_and_confirm_does_not(ip, project):
    _cap, widgets = displayed(ip, "%conductor verify customer_events --phase 1")
    assert len(widgets) == 1 and isinstance(widgets[0], GateWidget)
    gate = widgets[0]
    assert gate.phase_number == 1 and [r.status for r in gate.rows] == ["fail"]
    for ref in ("1.1.1", "1.1.2", "1.1", "1.2", "1.3"):
        ip.run_line_magic("conductor", f"task done customer_events {ref}")
    cap, widgets = displayed(ip, '%conductor verify customer_events --phase 1 --confirm "ok" '
                                 '--run-checks --waive "declared schema exists=later"')
    assert widgets == [] and "verified by tester" in cap.outputs[0].data["text/plain"]
