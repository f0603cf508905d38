"""Property: the checklist (model and widgets) and the files never disagree, after any
sequence of ticks (through the model or the checkbox), external edits (a mark byte
written in place, prose lines added or removed, a phase verified by another session)
and reloads."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from helpers.workspace import EXAMPLE
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from conductor_magics.errors import ConductorError
from conductor_magics.session import Session
from conductor_magics.widgets.checklist import PlanChecklist
from conductor_magics.widgets.checklist_model import ChecklistModel
from conductor_magics.workspace import Workspace
from conductor_magics.workspace.plan import read_plan

_HEADING = re.compile(rb"^#{1,3} Phase \d+[^\n]*\n", re.M)
_TOP_TASK = re.compile(rb"^- \[.\] ", re.M)
_INSERTED = re.compile(rb"^- \[.\] Task: inserted in the editor \d+\n", re.M)


def expected_from_files(workspace_dir: Path, storage_id: str):
    """What a fresh session says about the files, in the shape the model shows."""
    result = Session(Workspace(workspace_dir), user="property").plan(storage_id)
    current = result.next.task.number if result.next.action == "work" and result.next.task else None
    phases = [(s.phase.number, s.phase.title, s.verified, s.locked, s.lock_reason, s.phase.counts(),
               [(t.number, t.name, t.state, t.depth, t.sha) for t in s.phase.items()])
              for s in result.phases]
    return phases, current


class ChecklistMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="conductor-widget-prop-"))
        shutil.copytree(EXAMPLE, self.tmp / "storage-conductor")
        self.ws_dir = self.tmp / "storage-conductor"
        self.session = Session(Workspace(self.ws_dir), user="property")
        self.storage_id = ""
        self.model: ChecklistModel | None = None
        self.view: PlanChecklist | None = None
        self.prose: list[bytes] = []
        self.inserted = 0

    @property
    def plan_path(self) -> Path:
        return self.ws_dir / "storages" / self.storage_id / "plan.md"

    def teardown(self):
        if self.view is not None:
            self.view.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _open(self) -> None:
        if self.view is not None:
            self.view.close()
        self.model = ChecklistModel(self.session, self.storage_id)
        self.view = PlanChecklist(self.model, poll_seconds=None)

    def _poll(self) -> None:
        self.view.poll_once()

    @initialize(storage_id=st.sampled_from(["customer_events", "orders_db"]))
    def start(self, storage_id):
        self.storage_id = storage_id
        self._open()

    # -- ticks --------------------------------------------------------------------------

    @rule(data=st.data(), checked=st.booleans(), via_box=st.booleans())
    def tick(self, data, checked, via_box):
        number = data.draw(st.sampled_from([t.number for t in self.model.tasks()]))
        shown = self.model.task(number)
        before = self.plan_path.read_bytes()
        if via_box:
            self.view.box(number).set_state({"value": checked})  # as the frontend sends it
        else:
            self.model.toggle(number, checked)
        after = self.plan_path.read_bytes()
        if not shown.enabled or shown.checked == checked:
            event("tick refused (locked) or no-op")
            assert after == before, f"{number} (enabled={shown.enabled}) changed plan.md"
        else:
            event("tick written")
            assert len(after) == len(before)
            assert sum(a != b for a, b in zip(before, after, strict=True)) == 1
            assert read_plan(self.plan_path).find(number).state == ("done" if checked else "todo")

    @rule(data=st.data())
    def finish_a_phase(self, data):
        open_phases = [p for p in self.model.phases if not p.locked and not p.finished]
        if not open_phases:
            return
        phase = data.draw(st.sampled_from(open_phases))
        for task in sorted(phase.tasks, key=lambda t: -t.depth):
            if task.state not in ("done", "skipped"):
                outcome = self.model.toggle(task.number, True)
                assert outcome.ok, outcome.message

    # -- edits made elsewhere -----------------------------------------------------------

    def _write_mark(self, data) -> None:
        plan = read_plan(self.plan_path)
        task = data.draw(st.sampled_from(list(plan.items())))
        mark = data.draw(st.sampled_from([" ", "x", "~", "-", "!"]))
        raw = bytearray(plan.data)
        raw[task.mark_offset] = ord(mark)
        with open(self.plan_path, "r+b") as handle:  # in place, same size: only mtime moves
            handle.write(bytes(raw))

    @rule(data=st.data())
    def external_mark(self, data):
        self._write_mark(data)
        self._poll()

    @rule(data=st.data())
    def external_mark_then_click_before_the_poll(self, data):
        self._write_mark(data)
        number = data.draw(st.sampled_from([t.number for t in self.model.tasks()]))
        box = self.view.box(number)  # the box still shows the state before the edit
        box.set_state({"value": not box.value})

    def _insert_task(self, data) -> None:
        raw = self.plan_path.read_bytes()
        heading = data.draw(st.sampled_from(list(_HEADING.finditer(raw))))
        first = _TOP_TASK.search(raw, heading.end())
        at = first.start() if first else heading.end()
        self.inserted += 1
        line = f"- [ ] Task: inserted in the editor {self.inserted}\n".encode()
        self.plan_path.write_bytes(raw[:at] + line + raw[at:])  # renumbers the phase's tasks

    @rule(data=st.data())
    def external_task_inserted(self, data):
        self._insert_task(data)
        self._poll()

    @rule(data=st.data())
    def external_task_inserted_then_click_before_the_poll(self, data):
        shown = data.draw(st.sampled_from(self.model.tasks()))
        self._insert_task(data)
        states = {t.key: t.state for t in read_plan(self.plan_path).items()}
        box = self.view.box(shown.number)  # a stale number: the task may be numbered differently now
        box.set_state({"value": not box.value})
        after = {t.key: t.state for t in read_plan(self.plan_path).items()}
        assert after.keys() == states.keys()
        changed = {k for k in states if states[k] != after[k]}
        assert changed <= {shown.key}, f"clicking {shown.number} changed {changed}"

    @precondition(lambda self: self.inserted > 0)
    @rule(data=st.data())
    def external_task_removed(self, data):
        raw = self.plan_path.read_bytes()
        found = list(_INSERTED.finditer(raw))
        if found:
            gone = data.draw(st.sampled_from(found))
            self.plan_path.write_bytes(raw[:gone.start()] + raw[gone.end():])
        self._poll()

    @rule(data=st.data())
    def insert_prose(self, data):
        raw = self.plan_path.read_bytes()
        headings = list(_HEADING.finditer(raw))
        at = data.draw(st.sampled_from(headings)).end()
        line = f"\nProse note {len(self.prose) + 1} written in the editor.\n".encode()
        self.prose.append(line)
        self.plan_path.write_bytes(raw[:at] + line + raw[at:])
        self._poll()

    @precondition(lambda self: bool(self.prose))
    @rule(data=st.data())
    def remove_prose(self, data):
        line = data.draw(st.sampled_from(self.prose))
        self.prose.remove(line)
        raw = self.plan_path.read_bytes()
        self.plan_path.write_bytes(raw.replace(line, b"", 1))
        self._poll()

    @rule(data=st.data())
    def verify_a_finished_phase(self, data):
        session = Session(Workspace(self.ws_dir), user="other-kernel")
        pending = [s.phase.number for s in session.plan(self.storage_id).phases
                   if s.phase.finished and not s.verified]
        if not pending:
            return
        number = data.draw(st.sampled_from(pending))
        try:
            session.verify(self.storage_id, number, note="checked elsewhere")
        except ConductorError as exc:  # a finished phase is verifiable even when locked
            raise AssertionError(f"verify {number} refused: {exc}") from exc
        event("a phase verified elsewhere")
        self._poll()

    @rule()
    def reload(self):
        self._open()

    # -- the property -------------------------------------------------------------------

    @invariant()
    def model_and_widgets_match_the_files(self):
        if self.model is None:
            return
        phases, current = expected_from_files(self.ws_dir, self.storage_id)
        assert self.model.error is None
        shown = [(p.number, p.title, p.verified, p.locked, p.lock_reason, p.counts,
                  [(t.number, t.name, t.state, t.depth, t.sha) for t in p.tasks])
                 for p in self.model.phases]
        assert shown == phases
        assert [t.number for t in self.model.tasks() if t.is_current] == ([current] if current else [])
        for phase in self.model.phases:
            section = self.view.section(phase.number)
            assert ("conductor-locked" in section._dom_classes) == phase.locked
            assert section.status.value == phase.status_line
            assert section.bar.value == phase.items_closed
            for task in phase.tasks:
                assert task.enabled == (not phase.locked)
                box = self.view.box(task.number)
                assert box.value == (task.state == "done"), task.number
                assert box.disabled == (not task.enabled)
                assert box.description == task.label
                assert ("conductor-current" in box._dom_classes) == task.is_current
        assert self.view.progress.value == self.model.items_closed


ChecklistMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=15, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestChecklistAgainstFiles = ChecklistMachine.TestCase
