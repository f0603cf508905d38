"""The implement loop: which component, which task is next, phase gates, completion.

Sits on ``workspace/`` (files) and knows nothing of Jupyter: the CLI, the
magics and (later) the widgets and server extension all call a
:class:`Session` and render the plain results it returns.
"""

from __future__ import annotations

import contextlib
import getpass
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .commits import CommitResult, commit_phase, commit_task, verification_note
from .errors import ConductorError, GateClosed, TaskChanged, TaskNotFound
from .reports import (
    CompleteResult,
    ComponentStatus,
    ContextResult,
    ImplementResult,
    LintResult,
    NextResult,
    PhaseState,
    PlanResult,
    StatusReport,
    TaskResult,
    TestResult,
    VerifyResult,
)
from .revert import RevertResult
from .revert import revert as revert_through_git
from .workspace import (
    Component,
    Phase,
    Plan,
    WorkflowPreferences,
    Workspace,
    load_context,
    read_plan,
)
from .workspace.context import DOC_NAMES, doc_path, normalise_doc_name, read_text_lenient
from .workspace.files import FileEdit, check_writable, undo_edits, write_edits
from .workspace.intents import interrupted_advise, interrupted_advise_message
from .workspace.lint import fix_workspace, lint_workspace
from .workspace.plan import (
    MARKS,
    Task,
    annotate_phase_bytes,
    parse_plan,
    set_task_sha_bytes,
    write_plan_edit,
    write_task_state,
)
from .workspace.sources import file_evidence
from .workspace.status import COMPLETED, IN_PROGRESS, PLANNING
from .workspace.test_runs import FILE_NAME as TEST_RUNS_FILE
from .workspace.test_runs import GREEN, append_run, read_runs
from .workspace.timestamps import now
from .workspace.verification import append_record, phase_fields, read_log
from .workspace.workflow import SCHEMA_FIRST, parse_workflow

if TYPE_CHECKING:
    from .live_database import LiveDatabase

#: task action → the state it sets
#: phase kinds that build on the schema: locked until it is verified in schema-first mode
IMPLEMENTATION_KINDS = frozenset({"core", "indexing", "integrity", "backup"})
_MANUAL_TASK_RE = re.compile(r"manual\s+verification", re.IGNORECASE)

ACTIONS = {"done": "done", "undo": "todo", "start": "in_progress", "skip": "skipped", "block": "blocked"}
_SELECTABLE = (IN_PROGRESS, PLANNING)


class LoadedComponent:
    """A component's context as loaded into the kernel by ``%conductor implement``.

    Documents are attributes (``spec``, ``product``, ``tech_stack``, ``workflow``…);
    ``plan`` is re-read whenever plan.md changes on disk, so it never goes stale
    after a task is ticked from another cell, the editor or the CLI.
    """

    def __init__(self, component: Component, plan: Plan, docs: dict[str, str],
                 missing: list[str], workflow: WorkflowPreferences):
        self.id = component.id
        self.title = component.title
        self.status = component.status
        self.folder = component.dir
        self.docs = docs
        self.missing = missing
        self.workflow = workflow
        self.metadata = dict(component.metadata.data) if component.metadata else {}
        self._plan = plan
        self._plan_stamp = _stamp(plan.path)

    @property
    def plan(self) -> Plan:
        stamp = _stamp(self._plan.path)
        if stamp != self._plan_stamp:
            self._plan = read_plan(self._plan.path)
            self._plan_stamp = stamp
        return self._plan

    def _doc(self, name: str) -> str:
        return self.docs.get(name, "")

    spec = property(lambda self: self._doc("spec"), doc="spec.md")
    product = property(lambda self: self._doc("product"), doc="product.md")
    tech_stack = property(lambda self: self._doc("tech-stack"), doc="tech-stack.md")
    storage_standards = property(lambda self: self._doc("storage-standards"), doc="storage-standards.md")
    storage_template = property(lambda self: self._doc("storage-template"), doc="storage-template.md")
    workflow_text = property(lambda self: self._doc("workflow"), doc="workflow.md")

    def __repr__(self) -> str:
        return (f"<LoadedComponent {self.id!r} ({self.status}): {len(self.docs)} documents, "
                f"{len(self.plan.phases)} phases, missing={self.missing}>")


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


@dataclass
class Selection:
    component: Component
    reason: str
    candidates: list[Component]


def default_user(folder: Path) -> str:
    """Who confirms: ``git config user.name`` where the workspace is, else the OS user."""
    try:
        out = subprocess.run(["git", "config", "user.name"], cwd=folder, capture_output=True,
                             text=True, timeout=5, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _expected_state(expect: str) -> str:
    """``[ ]``/``[x]``/… (or the bare mark) → the state it means; bad input is refused."""
    mark = expect[1:-1] if len(expect) == 3 and expect[0] + expect[-1] == "[]" else expect
    if len(mark) != 1 or mark not in MARKS:
        raise ConductorError(f"expected mark {expect!r} is not a task mark",
                             hint="one of: [ ], [x], [~], [-], [!]")
    return MARKS[mark]


def _commit_failed(kind: str, exc: Exception) -> CommitResult:
    """A commit that broke unexpectedly: reported like a git failure (files stay written)."""
    return CommitResult(kind=kind, skipped_reason="git failed",
                        warnings=[f"not committed: {type(exc).__name__}: {exc}"])


class Session:
    """The implement loop over one workspace."""

    def __init__(self, workspace: Workspace, *, user: str | None = None,
                 clock: Callable[[], datetime] = now):
        self.workspace = workspace
        self._user = user
        self.clock = clock
        self._preferences: tuple[tuple[int, int] | None, WorkflowPreferences] | None = None

    @classmethod
    def open(cls, root: str | Path | None = None, cwd: str | Path | None = None, **kwargs) -> Session:
        return cls(Workspace.locate(root=root, cwd=cwd), **kwargs)

    @property
    def user(self) -> str:
        if self._user is None:
            self._user = default_user(self.workspace.dir)
        return self._user

    # -- reading -------------------------------------------------------------------------

    def preferences(self) -> WorkflowPreferences:
        """workflow.md's preferences (defaults when it is missing); parsed again only when
        the file changes, since every gate decision asks for them."""
        path = self.workspace.dir / "workflow.md"
        stamp = _stamp(path)
        if self._preferences is None or self._preferences[0] != stamp:
            prefs = parse_workflow(read_text_lenient(path) if stamp is not None else None)
            self._preferences = (stamp, prefs)
        return self._preferences[1]

    def phase_states(self, component: Component, plan: Plan) -> list[PhaseState]:
        """Each phase with whether it is finished, verified and locked (and why).

        A phase is locked while an earlier phase is finished but unverified; and when
        workflow.md says schema-first, implementation phases are locked until the schema
        design phase is verified.
        """
        log = read_log(component.verification_path)
        prefs = self.preferences()
        schema_first = prefs.testing == SCHEMA_FIRST and "testing" in prefs.source_lines
        states: list[PhaseState] = []
        blocker: PhaseState | None = None
        blocker_reason = ""
        schema_gate: PhaseState | None = None
        for phase in plan.phases:
            verdict = log.verdict_for(phase, plan)
            verified = verdict is not None or phase.checkpoint is not None
            state = PhaseState(phase=phase, verified=verified, verdict=verdict)
            if blocker is not None:
                state.locked, state.blocked_by = True, blocker.phase.number
                state.lock_reason = f"{blocker.phase.label} {blocker_reason}"
            elif schema_gate is not None and phase.kind in IMPLEMENTATION_KINDS:
                state.locked, state.blocked_by = True, schema_gate.phase.number
                state.lock_reason = (f"schema-first: {schema_gate.phase.label} must be verified "
                                     "before implementation phases")
            if not state.locked and phase.finished and not verified:
                blocker, blocker_reason = state, "is finished but not verified"
            elif not state.locked and not verified and log.revoked(phase, plan) is not None:
                # a reverted phase holds the later ones until it is verified again
                blocker, blocker_reason = state, "was reverted and is not verified again"
            if schema_first and schema_gate is None and phase.kind == "schema" and not verified:
                schema_gate = state
            states.append(state)
        return states

    def component_status(self, component: Component) -> ComponentStatus:
        problems: list[str] = []
        plan = None
        states: list[PhaseState] = []
        if component.metadata_error is not None:
            problems.append(str(component.metadata_error))
        if component.plan_path.is_file():
            try:
                plan = component.read_plan()
                states = self.phase_states(component, plan)
            except ConductorError as exc:
                problems.append(str(exc))
        else:
            problems.append(f"{component.plan_path}: plan.md is missing")
        if interrupted_advise(component.dir) is not None:
            problems.append(interrupted_advise_message(component.id))
        upcoming = self._next(component, plan, states) if plan is not None else None
        return ComponentStatus(component=component, plan=plan, phases=states, problems=problems,
                               next=upcoming)

    def status(self) -> StatusReport:
        """Every component with its progress, current phase and next task."""
        ws = self.workspace
        problems: list[str] = []
        tracks = None
        try:
            tracks = ws.read_tracks()
        except ConductorError as exc:
            problems.append(str(exc))
        if tracks is not None:
            problems.extend(str(p) for p in tracks.problems)
        components = [self.component_status(c) for c in ws.components(tracks)]
        return StatusReport(workspace=ws.dir, components=components, problems=problems)

    def select(self, storage_id: str | None = None) -> Selection:
        """The named component, else In Progress before Planning, most recently updated first."""
        if storage_id:
            return Selection(self.workspace.component(storage_id), "named", [])
        candidates = [c for c in self.workspace.components() if c.status in _SELECTABLE]
        if not candidates:
            raise self.workspace.no_component(
                f"no component is In Progress or Planning in {self.workspace.dir}: name one")
        epoch = datetime.min.replace(tzinfo=self.clock().tzinfo)
        candidates.sort(key=lambda c: (_SELECTABLE.index(c.status), -(c.updated or epoch).timestamp()
                                       if c.updated else float("inf")))
        chosen = candidates[0]
        same = [c for c in candidates if c.status == chosen.status]
        reason = (f"the only {chosen.status} component" if len(same) == 1
                  else f"the most recently updated of {len(same)} {chosen.status} components")
        return Selection(chosen, reason, candidates[1:])

    def active(self, storage_id: str | None) -> Component:
        """The component a command is about, by the one rule: the id given, else the
        active component (In Progress, else Planning; the most recently updated), else the
        only component; otherwise one line listing the known ids (exit 2)."""
        if storage_id:
            return self.workspace.component(storage_id)
        components = self.workspace.components()
        if not any(c.status in _SELECTABLE for c in components) and len(components) == 1:
            return components[0]
        return self.select().component

    # -- the loop ------------------------------------------------------------------------

    def implement(self, storage_id: str | None = None) -> ImplementResult:
        """Select a component, set it In Progress and load its context."""
        selection = self.select(storage_id)
        component = selection.component
        if component.status not in _SELECTABLE:
            raise ConductorError(
                f"component '{component.id}' is {component.status}; only Planning or In Progress "
                "components can be implemented", path=component.metadata_path,
                hint="change its status first if this is intended")
        plan = component.read_plan()  # fail before any write if the plan is unreadable
        component.require_metadata()
        previous = component.status
        if previous != IN_PROGRESS:
            with self.workspace.lock():
                self.workspace.write_status(component, IN_PROGRESS, self.clock())
            component = self.workspace.component(component.id)
        loaded = self.load(component, plan)
        states = self.phase_states(component, plan)
        return ImplementResult(selection=selection, component=component, previous_status=previous,
                               loaded=loaded, phases=states, next=self._next(component, plan, states))

    def load(self, component: Component, plan: Plan | None = None) -> LoadedComponent:
        context = load_context(self.workspace.dir, component.dir, component.id)
        return LoadedComponent(component, plan or component.read_plan(), context.docs,
                               context.missing, context.workflow_preferences)

    def _next(self, component: Component, plan: Plan, states: list[PhaseState]) -> NextResult:
        task = plan.next_task()
        pending = next((s for s in states if s.phase.finished and not s.verified), None)
        if task is not None:
            state = states[task.phase_index]
            if state.locked and pending is not None:
                return NextResult(component, "verify", pending.phase, None, pending.lock_reason
                                  or f"verify phase {pending.phase.number} first")
            return NextResult(component, "work", state.phase, task, None)
        if pending is not None:
            return NextResult(component, "verify", pending.phase, None,
                              f"phase {pending.phase.number} is finished and waits for verification")
        if any(t.state == "blocked" for t in plan.items()):
            blocked = next(t for t in plan.items() if t.state == "blocked")
            return NextResult(component, "blocked", plan.phases[blocked.phase_index], blocked,
                              f"task {blocked.number} is blocked")
        return NextResult(component, "complete", None, None, "every phase is verified")

    def next(self, storage_id: str | None = None) -> NextResult:
        component = self.active(storage_id)
        plan = component.read_plan()
        return self._next(component, plan, self.phase_states(component, plan))

    def plan(self, storage_id: str | None = None) -> PlanResult:
        """The plan's phases and tasks with their gates and the next step."""
        component = self.active(storage_id)
        plan = component.read_plan()
        states = self.phase_states(component, plan)
        return PlanResult(component, plan, states, self._next(component, plan, states))

    def context(self, storage_id: str | None = None, doc: str | None = None) -> ContextResult:
        """All context documents of a component, or one of them."""
        if storage_id and doc is None and normalise_doc_name(storage_id) and not self._is_component(storage_id):
            storage_id, doc = None, storage_id
        component = self.active(storage_id)
        if doc is not None:
            name = normalise_doc_name(doc)
            if name is None:
                raise ConductorError(f"unknown document '{doc}'", hint="one of: " + ", ".join(DOC_NAMES))
            path = doc_path(self.workspace.dir, component.dir, name)
            if not path.is_file():
                raise ConductorError(f"{name} is missing", path=path)
            return ContextResult(component, {name: read_text_lenient(path)}, [], {name: path})
        context = load_context(self.workspace.dir, component.dir, component.id)
        return ContextResult(component, context.docs, context.missing, context.paths)

    def _is_component(self, name: str) -> bool:
        return any(c.id == name for c in self.workspace.components())

    def task(self, action: str, ref: str, storage_id: str | None = None, *,
             force: bool = False, reason: str | None = None,
             expect: str | None = None) -> TaskResult:
        """Tick, untick, start, skip or block a task (by number like 2.3 or by text).

        ``expect`` is the mark the caller last saw (``[ ]``, ``[x]``, ``[~]``, ``[-]``,
        ``[!]``): when the task's mark is another one by the time the lock is held, nothing
        is written and :class:`TaskChanged` says what it is now (a panel or widget showing
        a stale plan never overwrites a tick made elsewhere).
        """
        if action not in ACTIONS:
            raise ConductorError(f"unknown task action '{action}'", hint="one of: " + ", ".join(ACTIONS))
        expected = _expected_state(expect) if expect is not None else None
        component = self.active(storage_id)
        component.require_metadata()
        target = ACTIONS[action]
        with self.workspace.lock():
            plan = component.read_plan()
            task = plan.find(ref)
            if expected is not None and task.state != expected:
                raise TaskChanged(f"task {task.number} is [{task.mark}] now, not {expect}: "
                                  "it was changed elsewhere", path=component.plan_path,
                                  line=task.line, hint="reload the plan and try again")
            states = self.phase_states(component, plan)
            state = states[task.phase_index] if task.phase_index is not None else None
            forced = False
            override_reason = None
            if target != "todo" and state is not None and state.locked:
                if not force:
                    raise GateClosed(
                        f"task {task.number} is in phase {state.phase.number}, which is locked: "
                        f"{state.lock_reason}", path=component.plan_path, line=task.line,
                        hint=f"verify it first (`conductor verify {component.id} --phase "
                             f"{state.blocked_by} --confirm NOTE`) or pass --force")
                forced, override_reason = True, state.lock_reason
            if target == "done" and task.state != "done" and self._needs_red_green(task):
                tdd = read_runs(component.dir / TEST_RUNS_FILE).state(task.name)
                if tdd != GREEN:
                    if not force:
                        raise GateClosed(
                            f"TDD: task {task.number} cannot be ticked: its tests are {tdd} "
                            "(a test must be seen failing, then passing)",
                            path=component.plan_path, line=task.line,
                            hint=f"record runs with %%conductor test NAME --task {task.number} "
                                 "(conductor test NAME --task … --passed/--failed), or pass --force")
                    forced, override_reason = True, f"TDD: tests are {tdd}"
            status = IN_PROGRESS if component.status == PLANNING and target != "todo" else None
            moment = self.clock()
            # Validate metadata.json and tracks.md, and check every file can be written, before
            # plan.md is written, so a malformed or read-only file leaves every file unchanged.
            status_edits = (self.workspace.status_edits(component, status, moment)
                            if task.state != target else [])
            check_writable([component.plan_path, *(e.path for e in status_edits),
                            *([component.verification_path] if forced else [])])
            new_plan, new_task, before = write_task_state(component.plan_path, task.key, target, plan)
            changed = before != target
            previous_status = component.status
            if changed:
                written: list[FileEdit] = []
                try:
                    written = write_edits(lambda: self.workspace.status_edits(component, status, moment))
                    if forced:
                        append_record(component.verification_path, {
                            "kind": "override", **phase_fields(state.phase),
                            "task": new_task.number,
                            "task_name": new_task.name, "action": action,
                            "reason": reason or override_reason, "gate": override_reason,
                            "by": self.user, "at": moment.isoformat(timespec="seconds"),
                        })
                except ConductorError:
                    # one change or none: put the tick (and the status files) back
                    undo_edits(written)
                    with contextlib.suppress(ConductorError):
                        write_task_state(component.plan_path, task.key, before)
                    raise
            commit = None
            if changed and target == "done":
                commit = self._commit_task(component, new_plan, new_task)
                if commit.committed:
                    new_plan, new_task = self._record_task_sha(component, new_plan, new_task, commit)
        new_states = self.phase_states(component, new_plan)
        phase_state = new_states[new_task.phase_index] if new_task.phase_index is not None else None
        return TaskResult(component=component, task=new_task, before=before, after=new_task.state,
                          changed=changed, forced=forced, phase=phase_state,
                          status_before=previous_status,
                          next=self._next(component, new_plan, new_states), commit=commit)

    # -- git -----------------------------------------------------------------------------

    def _commit_task(self, component: Component, plan: Plan, task: Task) -> CommitResult:
        """Per-task commits (workflow.md): commit the ticked task's work. Never raises for a
        git problem; the result says what happened. The caller holds the lock."""
        kind = plan.phases[task.phase_index].kind if task.phase_index is not None else None
        try:
            return commit_task(self.workspace.dir, component.id, task.name, prefs=self.preferences(),
                               phase_kind=kind, project_root=self.workspace.root)
        except Exception as exc:  # plan.md is written: report it, never lose the tick
            return _commit_failed("task", exc)

    def _record_task_sha(self, component: Component, plan: Plan, task: Task,
                         commit: CommitResult) -> tuple[Plan, Task]:
        """Append the commit's short SHA to the ticked task's line in plan.md.

        This is a second, separate edit after the one-byte tick, and it is left
        uncommitted: it rides along in the next commit (the next task's, or the phase's
        checkpoint). Amending the task's commit to include it would change the very SHA
        it records. A failure here is reported, never raised: the tick and the commit stand.
        """
        short = commit.short_sha

        def edit(data: bytes, target: Task) -> bytes:
            new = set_task_sha_bytes(data, target, short)
            # Only when the plan reads it back as this task's SHA: never garble a task line.
            found = parse_plan(new, component.plan_path).by_key(target.key)
            return new if found is not None and found.sha == short else data

        try:
            new_plan = write_plan_edit(component.plan_path, edit, key=task.key)
        except ConductorError as exc:
            commit.warnings.append(f"committed, but the SHA was not written onto the task: {exc}")
            return plan, task
        new_task = new_plan.by_key(task.key) or task
        if new_task.sha != short:
            commit.warnings.append(f"committed as {short}, but the SHA was not written onto task "
                                   f"{task.number}: plan.md would not read it back as that task's")
        return new_plan, new_task

    def database(self, storage_id: str | None = None, url: str | None = None,
                 engine: Any = None, progress: Any = None) -> LiveDatabase:
        """The live-database steps for a component (embedded SQLite unless a URL is given);
        ``progress`` is a tqdm-compatible factory for long steps."""
        from .live_database import LiveDatabase  # pandas and SQLAlchemy only when needed

        return LiveDatabase(self.workspace, self.active(storage_id), url=url, engine=engine,
                            progress=progress)

    def verify(self, storage_id: str | None = None, phase: int | None = None, *,
               note: str | None = None, by: str | None = None, force: bool = False,
               run_checks: bool = False, waivers: dict[str, str] | None = None,
               url: str | None = None, engine: Any = None) -> VerifyResult:
        """Show a phase's gate, or with ``note`` record its verification.

        ``run_checks`` runs the automated checks for the phase's kind against the live
        database; a failed check blocks the verdict unless ``waivers`` names it with a
        written reason. Waivers and results are recorded with the verdict.
        """
        waivers = dict(waivers or {})
        for check, reason in waivers.items():
            if not reason.strip():
                raise ConductorError(f"waiver of '{check}' has no reason",
                                     hint="--waive 'CHECK=why it is acceptable'")
        component = self.active(storage_id)
        plan = component.read_plan()
        states = self.phase_states(component, plan)
        if not states:
            raise ConductorError("the plan has no phases to verify", path=component.plan_path)
        if phase is None:
            pending = next((s for s in states if s.phase.finished and not s.verified), None)
            current = pending or next((s for s in states if not s.verified), states[-1])
        else:
            current = states[plan.phase(phase).index]  # a clear error for a bad number
        db = self.database(component.id, url, engine) if run_checks else None
        results = db.run_checks(current.phase.kind) if db is not None else None
        if note is None:
            return VerifyResult(component, current, recorded=None, checks=results, waivers=waivers)
        if not note.strip():
            raise ConductorError("the confirmation note is empty",
                                 hint="say what was checked: --confirm 'schema reviewed with …'")
        if current.verified:
            return VerifyResult(component, current, recorded=None, already=True)
        if results is not None:
            from .steps.checks import require_passed

            require_passed(results, waivers)
        open_items = [t for t in current.phase.items() if not t.closed]
        if open_items and not force:
            listing = ", ".join(t.number for t in open_items[:8])
            raise GateClosed(f"{current.phase.label} has "
                             f"{len(open_items)} open task(s): {listing}",
                             path=component.plan_path, line=current.phase.line,
                             hint="finish or skip them, or pass --force to verify anyway")
        record = {
            "kind": "verification", **phase_fields(current.phase),
            "phase_kind": current.phase.kind, "verdict": "verified", "note": note.strip(),
            "by": by or self.user, "at": self.clock().isoformat(timespec="seconds"),
            "checks": [r.to_json() for r in results or []], "waivers": waivers,
            "forced": bool(open_items),
            "open_tasks": [t.number for t in open_items],
            # what drift compares later to tell whether the verdict went stale
            "evidence": (db.evidence() if db is not None
                         else file_evidence(component.dir)),
        }
        with self.workspace.lock():
            # Another kernel may have confirmed this phase since it was read above.
            if read_log(component.verification_path).verdict_for(current.phase, plan) is not None:
                state = self.phase_states(component, plan)[current.phase.index]
                return VerifyResult(component, state, recorded=None, already=True)
            moment = self.clock()
            status_edits = self.workspace.status_edits(component, None, moment)  # validates
            check_writable([component.verification_path, component.plan_path,
                            *(e.path for e in status_edits)])
            written = write_edits(lambda: self.workspace.status_edits(component, None, moment))
            try:
                append_record(component.verification_path, record)
            except ConductorError:
                undo_edits(written)
                raise
            commit = self._commit_checkpoint(component, current.phase, record)
            annotation = (f"[checkpoint: {commit.short_sha}]" if commit.committed
                          else f"[verified: {self.clock().date().isoformat()}]")
            # Like a task's SHA, the checkpoint annotation is written after its commit and
            # rides along in the next one.
            plan = write_plan_edit(component.plan_path,
                                   lambda data, phase: annotate_phase_bytes(data, phase, annotation),
                                   phase_number=current.phase.number)
        new_state = self.phase_states(component, plan)[current.phase.index]
        return VerifyResult(component, new_state, recorded=record, checks=results, waivers=waivers,
                            commit=commit)

    def _commit_checkpoint(self, component: Component, phase: Phase,
                           record: dict[str, Any]) -> CommitResult:
        """The checkpoint commit of a verified phase (per-phase commits: all of the phase's
        work), with the verification report as a git note. Never raises for git problems."""
        with contextlib.suppress(ConductorError):
            phase = component.read_plan().phase(phase.number)  # with the SHAs written meanwhile
        tasks = [{"number": t.number, "name": t.name, "state": t.state, "sha": t.sha}
                 for t in phase.items()]
        lines = [f"Verified by {record['by']} at {record['at']}: {record['note']}"]
        lines += [f"Waived {name}: {why}" for name, why in record.get("waivers", {}).items()]
        if record.get("forced"):
            lines.append("Verified with open tasks: " + ", ".join(record.get("open_tasks", [])))
        lines.append("")
        lines += [f"- [{t.mark}] {t.number} {t.name}"
                  + (f" ({t.sha})" if t.sha else "") for t in phase.items()]
        try:
            return commit_phase(self.workspace.dir, component.id, phase.number, phase.title,
                                prefs=self.preferences(), body="\n".join(lines),
                                note=verification_note(component.id, record, tasks),
                                project_root=self.workspace.root)
        except Exception as exc:  # the verdict is recorded: report it, never raise
            return _commit_failed("checkpoint", exc)

    def run_task(self, ref: str, execute: Callable[[], bool], storage_id: str | None = None, *,
                 force: bool = False) -> TaskResult:
        """A task cell: mark the task [~] (refused if its phase is locked), run the work,
        and tick it when the work succeeded; on failure it stays [~]."""
        started = self.task("start", ref, storage_id, force=force) \
            if self._task_state(ref, storage_id) != "done" else None
        if not execute():
            result = started or self.task("start", ref, storage_id, force=force)
            result.cell_failed = True
            return result
        return self.task("done", ref, storage_id, force=force)

    def _task_state(self, ref: str, storage_id: str | None) -> str:
        return self.active(storage_id).read_plan().find(ref).state

    def _needs_red_green(self, task: Task) -> bool:
        """In TDD mode every task needs red → green, except manual verification tasks."""
        prefs = self.preferences()
        return prefs.tdd and not _MANUAL_TASK_RE.search(task.name)

    def record_test(self, name: str, passed: bool, *, task_ref: str | None = None,
                    storage_id: str | None = None, detail: str | None = None) -> TestResult:
        """Record one run of a test cell, linked to a task (default: the task in progress,
        else the next one). In TDD mode these runs decide whether the task may be ticked."""
        if not name.strip():
            raise ConductorError("a test needs a name", hint="%%conductor test NAME")
        component = self.active(storage_id)
        with self.workspace.lock():
            plan = component.read_plan()
            task = plan.find(task_ref) if task_ref else plan.next_task()
            if task is None:
                raise TaskNotFound("no open task to link the test to", path=component.plan_path,
                                   hint="pass --task TASK")
            runs = append_run(component.dir / TEST_RUNS_FILE, {
                "name": name.strip(), "task": task.number, "task_name": task.name,
                "passed": bool(passed), "detail": detail, "at": self.clock().isoformat(timespec="seconds"),
            })
        return TestResult(component, task, name.strip(), bool(passed), runs.state(task.name),
                          self.preferences().tdd)

    def complete(self, storage_id: str | None = None) -> CompleteResult:
        """Mark the component Completed; only when every phase is finished and verified."""
        component = self.active(storage_id)
        component.require_metadata()
        plan = component.read_plan()
        states = [s for s in self.phase_states(component, plan) if list(s.phase.items())]
        missing = [s for s in states if not (s.phase.finished and s.verified)]
        if missing:
            listing = "; ".join(
                f"{s.phase.label} ({'not finished' if not s.phase.finished else 'not verified'})"
                for s in missing)
            raise GateClosed(f"component '{component.id}' cannot be completed: {listing}",
                             path=component.plan_path,
                             hint="finish and verify every phase first (`conductor next` says what is next)")
        previous = component.status
        if previous != COMPLETED:
            with self.workspace.lock():
                self.workspace.write_status(component, COMPLETED, self.clock())
        component = self.workspace.component(component.id)
        return CompleteResult(component, plan, states, previous_status=previous,
                              completed_at=self.clock())

    def revert(self, kind: str, ref: str | None, storage_id: str | None = None, *,
               confirm: bool = False, dry_run: bool = False, downgrade: bool = False,
               matches: list[str] | None = None, url: str | None = None,
               engine: Any = None) -> RevertResult:
        """Revert a task, a phase or a component through git (:mod:`.revert`); a dry run
        unless ``confirm``."""
        return revert_through_git(self, kind, ref, storage_id, confirm=confirm, dry_run=dry_run,
                      downgrade=downgrade, matches=matches, url=url, engine=engine)

    def lint(self, fix: bool = False) -> LintResult:
        problems = lint_workspace(self.workspace)
        fixed: list[str] = []
        if fix and any(p.fixable for p in problems):
            with self.workspace.lock():
                fixed = fix_workspace(self.workspace, problems)
            problems = lint_workspace(self.workspace)
        return LintResult(self.workspace.dir, problems, fixed)
