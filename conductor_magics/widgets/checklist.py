"""The plan checklist (ipywidgets 8) and the component chooser.

:class:`PlanChecklist` renders a :class:`ChecklistModel`: overall progress, one
collapsible section per phase with its own progress bar and status line, a
checkbox per task. Ticking writes plan.md through the model; a refused or failed
tick reverts the box and the message line says why. A poller (an asyncio task on
the kernel's event loop, else a daemon thread) re-reads the files about once a
second, so edits made in the editor, by git or by the CLI show up by themselves.

DOM classes (a browser test relies on them): the checklist ``conductor-checklist``;
each phase section ``conductor-phase`` and ``conductor-phase-<n>`` (plus
``conductor-locked`` / ``conductor-verified`` / ``conductor-awaiting``); a locked
phase's reason label ``conductor-lock-reason``; each task checkbox ``conductor-task``
and ``conductor-task-<number with . → ->``; the current task's box
``conductor-current``; the message label ``conductor-message``; the chooser's
Dropdown ``conductor-chooser`` and its button ``conductor-choose``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from html import escape
from typing import Any

import ipywidgets as w

from ..errors import ConductorError, notebook_words
from ..notebook_html import to_html
from ..session import Session
from .checklist_model import ChecklistModel, Outcome, PhaseView, TaskView

POLL_SECONDS = 1.0
INDENT_PX = 24
CURRENT_BACKGROUND = "#fff3c4"

#: (phase number) → a widget with the phase's verification gate
GateFactory = Callable[[int], w.Widget]


def task_class(number: str) -> str:
    """``conductor-task-3-1-2`` for task 3.1.2."""
    return "conductor-task-" + number.replace(".", "-")


def _set_class(widget: w.DOMWidget, name: str, on: bool) -> None:
    present = name in widget._dom_classes
    if on and not present:
        widget.add_class(name)
    elif not on and present:
        widget.remove_class(name)


def _bar_style(phase: PhaseView) -> str:
    if phase.verified:
        return "success"
    if phase.finished:
        return "info"
    if phase.locked:
        return "warning"
    return ""


class _TaskRow(w.HBox):
    """One task: its checkbox (description = symbol, number, name), SHA and TDD labels."""

    def __init__(self, task: TaskView, on_toggle: Callable[[str, bool], None]):
        self.number = task.number
        self.box = w.Checkbox(value=task.checked, description=task.label, indent=False,
                              layout=w.Layout(width="auto"))
        self.box.add_class("conductor-task")
        self.box.add_class(task_class(task.number))
        self.sha = w.HTML(layout=w.Layout(width="auto"))
        self.sha.add_class("conductor-sha")
        self.note = w.Label(layout=w.Layout(width="auto"))
        self.note.add_class("conductor-task-note")
        super().__init__([self.box, self.sha, self.note],
                         layout=w.Layout(margin=f"0 0 0 {INDENT_PX * task.depth}px",
                                         align_items="center", width="auto"))
        self.add_class("conductor-task-row")
        self.box.observe(lambda change: on_toggle(self.number, bool(change["new"])), names="value")
        self.update(task)

    def update(self, task: TaskView) -> None:
        box = self.box
        box.description = task.label
        box.value = task.checked
        box.disabled = not task.enabled
        _set_class(box, "conductor-current", task.is_current)
        box.style.background = CURRENT_BACKGROUND if task.is_current else None
        self.sha.value = (f'<code title="commit {escape(task.sha)}">{escape(task.short_sha)}</code>'
                          if task.sha else "")
        notes = []
        if task.is_current:
            notes.append("← current")
        if task.tdd is not None and task.state != "done":
            notes.append(f"TDD: {task.tdd}")
        self.note.value = "  ".join(notes)


class _PhaseSection(w.VBox):
    """A phase: a header (toggle, progress, status line) and its collapsible task rows."""

    def __init__(self, phase: PhaseView, expanded: bool, on_toggle: Callable[[str, bool], None],
                 gate: GateFactory | None, on_gate_opened: Callable[[w.Widget], None]):
        self.number = phase.number
        self.title = phase.title
        self._gate_factory = gate
        self._on_gate_opened = on_gate_opened
        self.gate_widget: w.Widget | None = None
        self.toggle = w.ToggleButton(value=expanded, layout=w.Layout(width="auto"))
        self.toggle.add_class("conductor-phase-toggle")
        self.bar = w.IntProgress(min=0, layout=w.Layout(width="160px"))
        self.counts = w.Label(layout=w.Layout(width="auto"))
        self.status = w.Label(layout=w.Layout(width="auto"))
        self.status.add_class("conductor-phase-status")
        self.gate_button = w.Button(description="Verify this phase…", icon="check",
                                    layout=w.Layout(width="auto"))
        self.gate_button.add_class("conductor-open-gate")
        self.gate_button.on_click(lambda _b: self.open_gate())
        header = w.HBox([self.toggle, self.bar, self.counts, self.status, self.gate_button],
                        layout=w.Layout(align_items="center", flex_flow="row wrap"))
        self.rows = [_TaskRow(t, on_toggle) for t in phase.tasks]
        self.body = w.VBox(list(self.rows))
        self.body.add_class("conductor-phase-body")
        super().__init__([header, self.body])
        self.add_class("conductor-phase")
        self.add_class(f"conductor-phase-{phase.number}")
        self.toggle.observe(lambda _c: self._show_body(), names="value")
        self.update(phase)

    def _show_body(self) -> None:
        open_ = self.toggle.value
        self.body.layout.display = None if open_ else "none"
        self.toggle.description = f"{'▾' if open_ else '▸'} {self.title}"

    def update(self, phase: PhaseView) -> None:
        self.title = phase.title
        self._show_body()
        self.bar.max = max(phase.items_total, 1)
        self.bar.value = phase.items_closed
        self.bar.bar_style = _bar_style(phase)
        n = phase.counts
        self.counts.value = (f"{phase.items_closed}/{phase.items_total} · tasks "
                             f"{n['tasks_done']}/{n['tasks_total']}")
        self.status.value = phase.status_line
        self.status.tooltip = phase.lock_reason if phase.locked else None
        _set_class(self, "conductor-locked", phase.locked)
        _set_class(self, "conductor-verified", phase.verified)
        _set_class(self, "conductor-awaiting", phase.awaiting_verification)
        _set_class(self.status, "conductor-lock-reason", phase.locked)
        can_gate = self._gate_factory is not None and phase.awaiting_verification
        self.gate_button.layout.display = None if can_gate and self.gate_widget is None else "none"
        for row, task in zip(self.rows, phase.tasks, strict=True):
            row.update(task)
            row.box.tooltip = f"locked: {phase.lock_reason}" if phase.locked else None

    def open_gate(self) -> None:
        if self._gate_factory is None or self.gate_widget is not None:
            return
        self.gate_widget = self._gate_factory(self.number)
        self.gate_button.layout.display = "none"
        self.toggle.value = True
        self.body.children = [*self.body.children, self.gate_widget]
        self._on_gate_opened(self.gate_widget)

    def close(self) -> None:
        for row in self.rows:
            row.box.close()
            row.sha.close()
            row.note.close()
            row.close()
        if self.gate_widget is not None:
            self.gate_widget.close()
        super().close()


class PlanChecklist(w.VBox):
    """The interactive checklist of a component's plan (see the module docstring)."""

    def __init__(self, model: ChecklistModel, *, poll_seconds: float | None = POLL_SECONDS,
                 gate: GateFactory | None = None):
        self.model = model
        self._gate = gate
        self._lock = model.lock  # one lock for the model and its widgets: no lock-order trap
        self._syncing = False
        self._rendered = -1
        self._structure: tuple | None = None
        self._sections: list[_PhaseSection] = []
        self._error_shown: str | None = None
        self._poll_task: asyncio.Task | None = None
        self._poll_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.poll_seconds = poll_seconds
        self.header = w.HTML()
        self.header.add_class("conductor-header")
        self.progress = w.IntProgress(min=0, layout=w.Layout(width="240px"))
        self.progress.add_class("conductor-progress")
        self.progress_label = w.Label(layout=w.Layout(width="auto"))
        self.message = w.Label(layout=w.Layout(width="auto"))
        self.message.add_class("conductor-message")
        self.sections = w.VBox()
        super().__init__([self.header,
                          w.HBox([self.progress, self.progress_label],
                                 layout=w.Layout(align_items="center")),
                          self.message, self.sections])
        self.add_class("conductor-checklist")
        self.add_class(f"conductor-checklist-{model.component_id}")
        self._sync()
        model.on_change(self._model_changed)
        if poll_seconds:
            self.start_polling()

    def _model_changed(self, _model: ChecklistModel) -> None:
        if not self._syncing:
            self._sync()

    # -- rendering ---------------------------------------------------------------------

    def _sync(self) -> None:
        """Make every widget show what the model says (reverting refused ticks)."""
        with self._lock:
            self._syncing = True
            try:
                self._rendered = self.model.version
                self._render()
            finally:
                self._syncing = False

    def _render(self) -> None:
        m = self.model
        self.header.value = (f"<b>{escape(m.component_id)}</b> — {escape(m.title)} "
                             f"<i>({escape(str(m.status))})</i><br><span>{escape(m.next_text)}</span>")
        self.progress.max = max(m.items_total, 1)
        self.progress.value = m.items_closed
        self.progress.bar_style = "success" if m.items_total and m.items_closed == m.items_total else ""
        n = m.counts()
        self.progress_label.value = (f"{m.items_closed}/{m.items_total} closed · tasks "
                                     f"{n['tasks_done']}/{n['tasks_total']} · sub-tasks "
                                     f"{n['subtasks_done']}/{n['subtasks_total']}")
        if m.error is not None:
            self.message.value = f"⚠ {notebook_words(m.error)}"
            self._error_shown = m.error
        elif self._error_shown is not None:
            if notebook_words(self._error_shown) in self.message.value:  # the files are readable again
                self.message.value = ""
            self._error_shown = None
        structure = tuple((p.number, p.title, tuple((t.number, t.key, t.depth) for t in p.tasks))
                          for p in m.phases)
        if structure != self._structure:
            self._rebuild()
            self._structure = structure
        for section, phase in zip(self._sections, m.phases, strict=True):
            section.update(phase)

    def _rebuild(self) -> None:
        expanded = {s.title: s.toggle.value for s in self._sections}
        old = self._sections
        self._sections = [
            _PhaseSection(p, expanded.get(p.title, not p.verified), self._on_toggle, self._gate,
                          self._gate_opened)
            for p in self.model.phases]
        self.sections.children = list(self._sections)
        for section in old:
            section.close()

    def _gate_opened(self, gate: w.Widget) -> None:
        if hasattr(gate, "on_verified"):
            gate.on_verified(lambda _result: self.poll_once())

    # -- ticking -----------------------------------------------------------------------

    def _on_toggle(self, number: str, checked: bool) -> None:
        if self._syncing:
            return
        outcome = self.tick(number, checked)
        # hints name commands in the notebook's words, as the magics and the gate widget do
        self.message.value = ("✔ " if outcome.ok else "✘ ") + notebook_words(outcome.message)

    def tick(self, number: str, checked: bool) -> Outcome:
        """Tick or untick a task as the checkbox does; the boxes follow the files after."""
        with self._lock:
            try:
                return self.model.toggle(number, checked)
            finally:
                self._sync()

    def box(self, number: str) -> w.Checkbox:
        """The checkbox of a task (by number)."""
        for section in self._sections:
            for row in section.rows:
                if row.number == number:
                    return row.box
        raise KeyError(number)

    def section(self, phase_number: int) -> _PhaseSection:
        return next(s for s in self._sections if s.number == phase_number)

    # -- following the files -------------------------------------------------------------

    def poll_once(self) -> bool:
        """Re-read the files if they changed; True when the widgets were updated."""
        with self._lock:
            changed = self.model.refresh()
            if not changed and self.model.version == self._rendered:
                return False
            self._sync()
            return True

    def start_polling(self) -> None:
        """Follow the files about every ``poll_seconds``: an asyncio task on the running
        loop (ipykernel has one), else a daemon thread."""
        if self._poll_task is not None or self._poll_thread is not None:
            return
        self._stop.clear()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self._poll_task = loop.create_task(self._poll_async())
        else:
            self._poll_thread = threading.Thread(target=self._poll_in_thread, daemon=True,
                                                 name=f"conductor-checklist-{self.model.component_id}")
            self._poll_thread.start()

    @property
    def polling(self) -> bool:
        return bool((self._poll_task is not None and not self._poll_task.done())
                    or (self._poll_thread is not None and self._poll_thread.is_alive()))

    async def _poll_async(self) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(self.poll_seconds or POLL_SECONDS)
            if self._stop.is_set() or self.comm is None:
                break
            self._poll_safely()

    def _poll_in_thread(self) -> None:
        while not self._stop.wait(self.poll_seconds or POLL_SECONDS):
            if self.comm is None:
                break
            self._poll_safely()

    def _poll_safely(self) -> None:
        try:
            self.poll_once()
        except (ConductorError, OSError) as exc:  # keep following; say what went wrong
            self.message.value = f"⚠ {' '.join(str(exc).split())}"

    def stop_polling(self) -> None:
        self._stop.set()
        task, self._poll_task = self._poll_task, None
        if task is not None:
            task.cancel()
        thread, self._poll_thread = self._poll_thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def close(self) -> None:
        self.stop_polling()
        self.model.remove_listener(self._model_changed)
        for section in self._sections:
            section.close()
        for child in (self.header, self.progress, self.progress_label, self.message, self.sections):
            child.close()
        super().close()

    # -- fallbacks for frontends without widgets (nbconvert, GitHub, CI logs) ------------

    def _repr_mimebundle_(self, **kwargs) -> dict[str, Any] | None:
        data = super()._repr_mimebundle_(**kwargs)
        if data is None:
            return None
        try:
            result = self.model.session.plan(self.model.component_id)
        except ConductorError as exc:
            data["text/plain"] = str(exc)
            return data
        data["text/plain"] = result.to_text()
        data["text/html"] = to_html(result)
        return data


class ComponentChooser(w.VBox):
    """Several components are candidates: say which one was picked and why, and offer the
    others. ``on_choose(id)`` implements a component and returns its ChecklistModel."""

    def __init__(self, session: Session, selection: Any, *,
                 on_choose: Callable[[str], ChecklistModel] | None = None,
                 make_checklist: Callable[[ChecklistModel], w.Widget] | None = None,
                 show_checklist: bool = True):
        self.session = session
        self._on_choose = on_choose or self._implement
        self._make_checklist = make_checklist or (lambda model: PlanChecklist(model))
        picked = selection.component
        options = [(self._label(c), c.id) for c in [picked, *selection.candidates]]
        self.intro = w.HTML(
            f"<b>{len(options)} components can be implemented.</b> Picked "
            f"<code>{escape(picked.id)}</code> ({escape(selection.reason)}); choose another here:")
        self.dropdown = w.Dropdown(options=options, value=picked.id, layout=w.Layout(width="auto"))
        self.dropdown.add_class("conductor-chooser")
        self.button = w.Button(description="Open", icon="folder-open", button_style="primary")
        self.button.add_class("conductor-choose")
        self.button.on_click(lambda _b: self.choose(self.dropdown.value))
        self.message = w.Label()
        self.message.add_class("conductor-chooser-message")
        self.content = w.VBox()
        self.chosen: str | None = None
        self.checklist: w.Widget | None = None
        super().__init__([self.intro, w.HBox([self.dropdown, self.button]), self.message,
                          self.content])
        self.add_class("conductor-chooser-box")
        if show_checklist:
            self._show(picked.id, ChecklistModel(session, picked.id))

    @staticmethod
    def _label(component) -> str:
        return f"{component.id} — {component.title} ({component.status})"

    def _implement(self, storage_id: str) -> ChecklistModel:
        self.session.implement(storage_id)
        return ChecklistModel(self.session, storage_id)

    def choose(self, storage_id: str) -> bool:
        """Open a component (as the button does); False (and a message) when refused."""
        try:
            model = self._on_choose(storage_id)
        except ConductorError as exc:
            self.message.value = "✘ " + " ".join(str(exc).split())
            return False
        self.message.value = f"✔ implementing {storage_id}"
        self._show(storage_id, model)
        return True

    def _show(self, storage_id: str, model: ChecklistModel) -> None:
        old = self.checklist
        self.chosen = storage_id
        self.checklist = self._make_checklist(model)
        self.content.children = [self.checklist]
        if old is not None:
            old.close()

    def close(self) -> None:
        if self.checklist is not None:
            self.checklist.close()
        super().close()
