"""What the plan checklist shows, as plain data: no ipywidgets here.

:class:`ChecklistModel` is built from :meth:`Session.plan` and kept equal to the
files: :meth:`ChecklistModel.refresh` re-reads them when they changed (a cheap
``stat`` first), :meth:`ChecklistModel.toggle` ticks or unticks a task through
:meth:`Session.task` and re-reads afterwards, so whether the write succeeded or
was refused, what the model says is what the files say.

Decisions (documented here because the widget only renders them):

- A task's checkbox is *checked* when its mark is ``[x]``. Ticking sets ``[x]``
  (``task done``), unticking sets ``[ ]`` (``task undo``); ``[~]``, ``[-]`` and
  ``[!]`` show unchecked with a symbol in the label, and ticking them sets ``[x]``.
- ``enabled`` is False only when the task's phase is **locked** (or the plan
  cannot be read at the moment). Tasks of a *verified* phase stay tickable, as
  on the command line, so a mistaken tick can be undone; the phase's verdict is
  kept in verification.json either way. Ticking never verifies a phase: only
  the gate (``GateWidget``) or ``verify --confirm`` does.
- When plan.md (or another watched file) becomes unreadable, the model keeps
  the last view it could read, sets :attr:`ChecklistModel.error` to the
  one-line reason and disables every task until the files are readable again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConductorError
from ..reports import PlanResult
from ..session import Session
from ..workspace.plan import TaskKey
from ..workspace.test_runs import FILE_NAME as TEST_RUNS_FILE
from ..workspace.test_runs import read_runs

#: A file whose mtime is this close to the moment it was read may be rewritten within
#: the same timestamp tick with the same size, so its bytes are compared as well.
RACY_NS = 2_000_000_000

STATE_SYMBOLS = {"todo": "", "done": "", "in_progress": "◐", "skipped": "⊘", "blocked": "⛔"}


@dataclass(frozen=True)
class Outcome:
    """What a tick did: ``ok`` and a one-line message for the user."""

    ok: bool
    message: str


@dataclass(frozen=True)
class TaskView:
    number: str
    name: str
    state: str
    depth: int
    sha: str | None
    is_current: bool
    enabled: bool
    key: TaskKey
    line: int
    #: TDD state of the task's tests (``red``, ``green``, …) when workflow.md says TDD
    tdd: str | None = None

    @property
    def checked(self) -> bool:
        return self.state == "done"

    @property
    def symbol(self) -> str:
        return STATE_SYMBOLS[self.state]

    @property
    def short_sha(self) -> str | None:
        return self.sha[:7] if self.sha else None

    @property
    def label(self) -> str:
        """``◐ 3.1 name``: the mark's symbol (if not a plain checkbox state), number, name."""
        prefix = f"{self.symbol} " if self.symbol else ""
        return f"{prefix}{self.number} {self.name}"


@dataclass(frozen=True)
class PhaseView:
    number: int
    title: str
    kind: str
    #: tasks_total, tasks_done, subtasks_total, subtasks_done (as ``Phase.counts()``)
    counts: dict[str, int]
    #: every task and sub-task, and those done or skipped (what the progress bar shows)
    items_total: int
    items_closed: int
    finished: bool
    verified: bool
    locked: bool
    lock_reason: str | None
    verdict: dict[str, Any] | None
    checkpoint: str | None
    tasks: tuple[TaskView, ...] = field(default=())

    @property
    def progress(self) -> float:
        return self.items_closed / self.items_total if self.items_total else 0.0

    @property
    def awaiting_verification(self) -> bool:
        return self.finished and not self.verified

    @property
    def status_line(self) -> str:
        if self.verified:
            v = self.verdict or {}
            if v.get("by"):
                return f"✔ verified by {v['by']} at {v.get('at', '?')}"
            return f"✔ verified (checkpoint {self.checkpoint})" if self.checkpoint else "✔ verified"
        if self.locked:
            return f"locked: {self.lock_reason}"
        if self.finished:
            return "finished, awaiting verification"
        return ""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


class FileWatch:
    """Has any of these files changed since :meth:`record`? ``stat`` first; the bytes
    only while a file was written too recently for its mtime to tell (same tick)."""

    def __init__(self, paths: list[Path]):
        self.paths = list(paths)
        self._seen: dict[Path, tuple[tuple[int, int, int] | None, bytes | None, bool]] = {}

    def record(self) -> None:
        now_ns = time.time_ns()
        seen = {}
        for path in self.paths:
            stamp = _stamp(path)
            racy = stamp is not None and now_ns - stamp[0] < RACY_NS
            seen[path] = (stamp, _read(path) if racy else None, racy)
        self._seen = seen

    def changed(self) -> bool:
        if not self._seen:
            return True
        now_ns = time.time_ns()
        for path in self.paths:
            stamp, data, racy = self._seen[path]
            if _stamp(path) != stamp:
                return True
            if racy:
                if _read(path) != data:
                    return True
                if now_ns - stamp[0] >= RACY_NS:  # any later write gets a newer mtime
                    self._seen[path] = (stamp, None, False)
        return False


class ChecklistModel:
    """The checklist of one component's plan, kept equal to its files."""

    def __init__(self, session: Session, storage_id: str | None = None):
        self.session = session
        component = session.active(storage_id)
        self.component_id = component.id
        ws_dir = session.workspace.dir
        self._watch = FileWatch([component.plan_path, component.verification_path,
                                 component.dir / TEST_RUNS_FILE, component.metadata_path,
                                 ws_dir / "workflow.md"])
        #: held while reading or writing; widgets over this model use the same lock
        self.lock = threading.RLock()
        self._listeners: list[Callable[[ChecklistModel], None]] = []
        self.title = component.title
        self.status: str | None = component.status
        self.phases: list[PhaseView] = []
        self.next_text = ""
        self.current: str | None = None
        #: the one-line reason the files cannot be read right now (None when they can)
        self.error: str | None = None
        #: bumped whenever what the model shows changes
        self.version = 0
        self._watch.record()
        self._apply(session.plan(self.component_id))  # unreadable at the start: raise

    # -- reading -------------------------------------------------------------------------

    def refresh(self, force: bool = False) -> bool:
        """Re-read the files if they changed (or ``force``); True when the view changed."""
        with self.lock:
            if not force and not self._watch.changed():
                return False
            self._watch.record()
            try:
                result = self.session.plan(self.component_id)
            except (ConductorError, OSError) as exc:
                return self._apply_error(_one_line(exc))
            return self._apply(result)

    def _apply(self, result: PlanResult) -> bool:
        before = (self.snapshot(), self.error, self.status, self.next_text)
        self.title = result.component.title
        self.status = result.component.status
        nxt = result.next
        self.current = nxt.task.number if nxt.action == "work" and nxt.task is not None else None
        self.next_text = nxt.to_text().splitlines()[0]
        tdd_runs = None
        if self.session.preferences().tdd:
            try:
                tdd_runs = read_runs(result.component.dir / TEST_RUNS_FILE)
            except ConductorError:
                tdd_runs = None
        phases = []
        for state in result.phases:
            phase = state.phase
            items = list(phase.items())
            tasks = tuple(
                TaskView(number=t.number, name=t.name, state=t.state, depth=t.depth, sha=t.sha,
                         is_current=t.number == self.current, enabled=not state.locked,
                         key=t.key, line=t.line,
                         tdd=tdd_runs.state(t.name) if tdd_runs is not None else None)
                for t in items)
            phases.append(PhaseView(
                number=phase.number, title=phase.title, kind=phase.kind, counts=phase.counts(),
                items_total=len(items), items_closed=sum(t.closed for t in items),
                finished=phase.finished, verified=state.verified, locked=state.locked,
                lock_reason=state.lock_reason, verdict=state.verdict, checkpoint=phase.checkpoint,
                tasks=tasks))
        self.phases = phases
        self.error = None
        changed = before != (self.snapshot(), self.error, self.status, self.next_text)
        if changed:
            self._changed()
        return changed

    def _apply_error(self, message: str) -> bool:
        if self.error == message:
            return False
        self.error = message
        self.current = None
        self.phases = [replace(p, tasks=tuple(replace(t, enabled=False, is_current=False)
                                              for t in p.tasks)) for p in self.phases]
        self._changed()
        return True

    def on_change(self, callback: Callable[[ChecklistModel], None]) -> None:
        """Call ``callback(model)`` whenever what the model shows changes."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[ChecklistModel], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def _changed(self) -> None:
        self.version += 1
        for callback in list(self._listeners):
            callback(self)

    # -- what it shows ---------------------------------------------------------------------

    def tasks(self) -> list[TaskView]:
        return [t for p in self.phases for t in p.tasks]

    def task(self, number: str) -> TaskView | None:
        return next((t for t in self.tasks() if t.number == number), None)

    def phase_of(self, task: TaskView) -> PhaseView:
        return next(p for p in self.phases if task in p.tasks)

    @property
    def items_total(self) -> int:
        return sum(p.items_total for p in self.phases)

    @property
    def items_closed(self) -> int:
        return sum(p.items_closed for p in self.phases)

    @property
    def progress(self) -> float:
        return self.items_closed / self.items_total if self.items_total else 0.0

    def counts(self) -> dict[str, int]:
        totals = {"tasks_total": 0, "tasks_done": 0, "subtasks_total": 0, "subtasks_done": 0}
        for phase in self.phases:
            for key, value in phase.counts.items():
                totals[key] += value
        return totals

    def snapshot(self) -> list[tuple]:
        """Everything the checklist shows, as comparable plain data."""
        return [(p.number, p.title, p.verified, p.locked, p.lock_reason, tuple(sorted(p.counts.items())),
                 tuple((t.number, t.name, t.state, t.depth, t.sha, t.is_current, t.enabled, t.tdd)
                       for t in p.tasks))
                for p in self.phases]

    # -- writing -------------------------------------------------------------------------

    def toggle(self, number: str, checked: bool) -> Outcome:
        """Tick (``[x]``) or untick (``[ ]``) the task shown as ``number``.

        The task is found again by its key (phase title, text path, ordinal) after a
        re-read, so an edit made elsewhere since the view was drawn does not redirect the
        tick to another task. Whatever happens, the model matches the files afterwards.
        """
        with self.lock:
            shown = self.task(number)
            self.refresh()
            if shown is None:
                return Outcome(False, f"task {number} is not in the plan")
            if self.error is not None:
                return Outcome(False, self.error)
            task = next((t for t in self.tasks() if t.key == shown.key), None)
            if task is None:
                return Outcome(False, f"task {number} '{shown.name}' is no longer in plan.md "
                                      "(it changed meanwhile)")
            if not task.enabled:
                phase = self.phase_of(task)
                return Outcome(False, f"task {task.number} is in phase {phase.number}, which is "
                                      f"locked: {phase.lock_reason}")
            if task.checked == checked:
                return Outcome(True, f"task {task.number} is already {'done' if checked else 'not done'}")
            action = "done" if checked else "undo"
            try:
                result = self.session.task(action, task.number, self.component_id)
            except (ConductorError, OSError) as exc:
                self.refresh(force=True)
                return Outcome(False, _one_line(exc))
            self.refresh(force=True)
            return Outcome(True, result.to_text().splitlines()[0])
