"""What session commands return: plain data with a JSON form and a text form.

Every class here satisfies :class:`~conductor_magics.results.Result` (``to_text()``,
``to_json()``, ``exit_code``): the CLI prints the text or JSON form, the magics render
the same objects through ``notebook_html.py``. Nothing here imports Jupyter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .workspace import Component, Phase, Plan, Problem, Task


@dataclass
class PhaseState:
    phase: Phase
    verified: bool
    verdict: dict[str, Any] | None
    locked: bool = False
    lock_reason: str | None = None
    #: the phase whose verification unlocks this one
    blocked_by: int | None = None

    def to_json(self) -> dict:
        return {
            "number": self.phase.number, "title": self.phase.title, "kind": self.phase.kind,
            "finished": self.phase.finished, "verified": self.verified,
            "checkpoint": self.phase.checkpoint, "locked": self.locked,
            "lock_reason": self.lock_reason, "blocked_by": self.blocked_by, **self.phase.counts(),
            "verdict": self.verdict,
        }


@dataclass
class NextResult:
    component: Component
    action: str  # "work", "verify", "blocked" or "complete"
    phase: Phase | None
    task: Task | None
    reason: str | None

    exit_code = 0

    def to_json(self) -> dict:
        return {
            "id": self.component.id, "action": self.action,
            "phase": {"number": self.phase.number, "title": self.phase.title} if self.phase else None,
            "task": {"number": self.task.number, "name": self.task.name, "state": self.task.state}
            if self.task else None,
            "reason": self.reason,
        }

    def to_text(self) -> str:
        cid = self.component.id
        if self.action == "work" and self.task is not None:
            verb = "continue" if self.task.state == "in_progress" else "next"
            return (f"{cid}: {verb}: {self.task.number} {self.task.name}\n"
                    f"  in {self.phase.title}\n"
                    f"  when done: conductor task done {cid} {self.task.number}")
        if self.action == "verify" and self.phase is not None:
            return (f"{cid}: verify {self.phase.title} ({self.reason})\n"
                    f"  conductor verify {cid} --phase {self.phase.number} --confirm NOTE")
        if self.action == "blocked" and self.task is not None:
            return f"{cid}: {self.reason}: {self.task.number} {self.task.name}"
        return f"{cid}: every phase is verified: conductor complete {cid}"


@dataclass
class ComponentStatus:
    component: Component
    plan: Plan | None
    phases: list[PhaseState]
    problems: list[str]
    next: NextResult | None = None

    @property
    def counts(self) -> dict[str, int]:
        if self.plan is None:
            return {"tasks_total": 0, "tasks_done": 0, "subtasks_total": 0, "subtasks_done": 0}
        return self.plan.counts()

    @property
    def current_phase(self) -> Phase | None:
        return self.next.phase if self.next is not None else None

    @property
    def next_task(self) -> Task | None:
        return self.next.task if self.next is not None and self.next.action == "work" else None

    def to_json(self) -> dict:
        c = self.component
        return {
            "id": c.id, "title": c.title, "status": c.status, "storage_type": c.storage_type,
            "backend": c.backend, **self.counts,
            "current_phase": self.current_phase.title if self.current_phase else None,
            # one phase "Plan" read from tasks without any phase heading
            "implicit_phase": bool(self.plan and self.plan.phases and self.plan.phases[0].implicit),
            "next_task": self.next_task.name if self.next_task else None,
            "problems": self.problems,
        }


@dataclass
class StatusReport:
    workspace: Path
    components: list[ComponentStatus]
    problems: list[str]

    exit_code = 0

    def to_json(self) -> dict:
        return {"components": [c.to_json() for c in self.components], "problems": self.problems}

    def to_text(self) -> str:
        if not self.components:
            lines = [f"{self.workspace}: no components (add a row to tracks.md)"]
        else:
            rows = [("ID", "STATUS", "TASKS", "SUB-TASKS", "CURRENT PHASE", "NEXT TASK")]
            for cs in self.components:
                n = cs.counts
                phase = cs.current_phase
                task = cs.next_task
                rows.append((
                    cs.component.id, cs.component.status or "?",
                    f"{n['tasks_done']}/{n['tasks_total']}", f"{n['subtasks_done']}/{n['subtasks_total']}",
                    (f"{phase.title} (implicit)" if phase.implicit else phase.title) if phase else "-",
                    f"{task.number} {task.name}" if task else ("(verify)" if cs.next and cs.next.action == "verify" else "-"),
                ))
            lines = _table(rows)
        for cs in self.components:
            lines.extend(f"{cs.component.id}: {p}" for p in cs.problems)
        lines.extend(self.problems)
        return "\n".join(lines)


def _table(rows: list[tuple[str, ...]], limit: int = 60) -> list[str]:
    cells = [[(c if len(c) <= limit else c[: limit - 1] + "…") for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]


@dataclass
class PlanResult:
    """A plan with its gates: what ``plan`` shows (and the checklist widget renders)."""

    component: Component
    plan: Plan
    phases: list[PhaseState]
    next: NextResult

    exit_code = 0

    def to_json(self) -> dict:
        data = self.plan.to_json()
        for phase_json, state in zip(data["phases"], self.phases, strict=True):
            phase_json.update(verified=state.verified, locked=state.locked, lock_reason=state.lock_reason)
        return {"id": self.component.id, "status": self.component.status, "plan": data,
                "next": self.next.to_json()}

    def to_text(self) -> str:
        current = self.next.task.number if self.next.task else None
        lines = [f"{self.component.id} — {self.component.title} ({self.component.status})"]
        for state, phase_line in zip(self.phases, _phase_lines(self.phases), strict=True):
            lines.append(phase_line + (f" ({state.lock_reason})" if state.locked else ""))
            for task in state.phase.items():
                pointer = "→" if task.number == current else " "
                sha = f" ({task.sha})" if task.sha else ""
                lines.append(f" {pointer} {'  ' * task.depth}{_MARK_TEXT[task.state]} "
                             f"{task.number} {task.name}{sha}")
        return "\n".join(lines)


@dataclass
class ImplementResult:
    selection: Any  # session.Selection
    component: Component
    previous_status: str | None
    loaded: Any  # session.LoadedComponent
    phases: list[PhaseState]
    next: NextResult

    exit_code = 0

    def to_json(self) -> dict:
        return {
            "id": self.component.id, "title": self.component.title,
            "status": self.component.status, "previous_status": self.previous_status,
            "reason": self.selection.reason,
            "other_candidates": [{"id": c.id, "status": c.status} for c in self.selection.candidates],
            "documents": sorted(self.loaded.docs), "missing_documents": self.loaded.missing,
            "workflow": self.loaded.workflow.to_json(),
            "phases": [p.to_json() for p in self.phases],
            "next": self.next.to_json(),
        }

    def to_text(self) -> str:
        c = self.component
        lines = [f"Implementing {c.id} — {c.title} ({self.selection.reason})"]
        if self.previous_status != c.status:
            lines.append(f"  status: {self.previous_status} → {c.status}")
        if self.selection.candidates:
            lines.append("  other candidates: " + ", ".join(
                f"{o.id} ({o.status})" for o in self.selection.candidates))
        lines.append(f"  context loaded: {', '.join(sorted(self.loaded.docs))}")
        if self.loaded.missing:
            lines.append(f"  missing documents: {', '.join(self.loaded.missing)}")
        lines.append("")
        lines.extend(_phase_lines(self.phases))
        lines.append("")
        lines.append(self.next.to_text())
        return "\n".join(lines)


_MARK_TEXT = {"todo": "[ ]", "done": "[x]", "in_progress": "[~]", "skipped": "[-]", "blocked": "[!]"}


def _phase_lines(states: list[PhaseState]) -> list[str]:
    lines = []
    for s in states:
        n = s.phase.counts()
        flag = "verified" if s.verified else ("finished, awaiting verification" if s.phase.finished
                                              else ("locked" if s.locked else ""))
        implicit = " (implicit: the plan has no phase headings)" if s.phase.implicit else ""
        lines.append(f"{s.phase.title}{implicit} [{n['tasks_done']}/{n['tasks_total']}]"
                     + (f" — {flag}" if flag else ""))
    return lines


@dataclass
class ContextResult:
    component: Component
    docs: dict[str, str]
    missing: list[str]
    paths: dict[str, Path]

    exit_code = 0

    def to_json(self) -> dict:
        return {"id": self.component.id, "documents": self.docs, "missing": self.missing,
                "paths": {k: str(v) for k, v in self.paths.items()}}

    def to_text(self) -> str:
        if len(self.docs) == 1 and not self.missing:
            return next(iter(self.docs.values()))
        parts = []
        for name, text in self.docs.items():
            parts.append(f"===== {name} ({self.paths.get(name)}) =====\n{text.rstrip()}\n")
        if self.missing:
            parts.append("missing: " + ", ".join(self.missing))
        return "\n".join(parts)


@dataclass
class TaskResult:
    component: Component
    task: Task
    before: str
    after: str
    changed: bool
    forced: bool
    phase: PhaseState | None
    status_before: str | None
    next: NextResult
    #: a task cell whose work raised: the task stays [~]
    cell_failed: bool = False
    #: the git commit made for the tick (commits.CommitResult), when the task became done
    commit: Any = None

    @property
    def exit_code(self) -> int:
        return 1 if self.cell_failed else 0

    def to_json(self) -> dict:
        return {
            "id": self.component.id, "task": {"number": self.task.number, "name": self.task.name,
                                              "line": self.task.line},
            "cell_failed": self.cell_failed,
            "before": self.before, "after": self.after, "changed": self.changed, "forced": self.forced,
            "phase": self.phase.to_json() if self.phase else None,
            "phase_finished": bool(self.phase and self.phase.phase.finished and not self.phase.verified),
            "next": self.next.to_json(),
            "commit": self.commit.to_json() if self.commit is not None else None,
        }

    def to_text(self) -> str:
        t = self.task
        if not self.changed:
            head = f"{self.component.id}: {t.number} {t.name} is already {_MARK_TEXT[self.after]}"
        else:
            head = (f"{self.component.id}: {t.number} {t.name}: {_MARK_TEXT[self.before]} → "
                    f"{_MARK_TEXT[self.after]}" + (" (forced past a locked phase; recorded)" if self.forced else ""))
        lines = [head]
        if self.cell_failed:
            lines.append(f"the cell failed: task {t.number} stays [~] until a run succeeds")
        elif self.phase and self.phase.phase.finished and not self.phase.verified:
            p = self.phase.phase
            lines.append(f"{p.title} is finished: verify it with "
                         f"`conductor verify {self.component.id} --phase {p.number} --confirm NOTE`")
        else:
            lines.append(self.next.to_text())
        if self.commit is not None:
            lines.extend(self.commit.text_lines())
        return "\n".join(lines)


@dataclass
class TestResult:
    """One recorded run of a test cell and what it means for its task."""

    component: Component
    task: Task
    name: str
    passed: bool
    tdd_state: str
    tdd: bool

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_json(self) -> dict:
        return {"id": self.component.id, "test": self.name, "passed": self.passed,
                "task": {"number": self.task.number, "name": self.task.name},
                "tdd": self.tdd, "tdd_state": self.tdd_state}

    def to_text(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        line = f"{self.component.id}: test '{self.name}' {verdict} (task {self.task.number})"
        if self.tdd:
            line += f"; TDD state of the task: {self.tdd_state}"
        return line


@dataclass
class VerifyResult:
    component: Component
    state: PhaseState
    recorded: dict[str, Any] | None
    already: bool = False
    #: automated check results (engine.checks.CheckResult), when they were run
    checks: list[Any] | None = None
    waivers: dict[str, str] = field(default_factory=dict)
    #: the checkpoint commit and git note (commits.CommitResult), when a verdict was recorded
    commit: Any = None

    @property
    def failed_checks(self) -> list[Any]:
        waived = {k.casefold() for k in self.waivers}
        return [c for c in self.checks or [] if c.status == "fail" and c.name.casefold() not in waived]

    @property
    def exit_code(self) -> int:
        """0 when the phase is verified, or when the checks that were asked for all passed."""
        if self.state.verified:
            return 0
        if self.checks is not None:
            return 1 if self.failed_checks else 0
        return 1

    def to_json(self) -> dict:
        return {"id": self.component.id, "phase": self.state.to_json(), "verified": self.state.verified,
                "recorded": self.recorded, "already_verified": self.already,
                "checks": [c.to_json() for c in self.checks] if self.checks is not None else None,
                "waivers": self.waivers,
                "commit": self.commit.to_json() if self.commit is not None else None}

    def checks_text(self) -> list[str]:
        if self.checks is None:
            return []
        if not self.checks:
            return ["  no automated checks for this kind of phase (manual verification only)"]
        marks = {"pass": "✔", "fail": "✘", "skip": "–"}
        lines = []
        for c in self.checks:
            waived = " (waived: " + self.waivers[c.name] + ")" if c.name in self.waivers else ""
            lines.append(f"  {marks.get(c.status, '?')} {c.name} [{c.seconds:.2f} s]"
                         + (f": {c.detail}" if c.detail else "") + waived)
        return lines

    def to_text(self) -> str:
        commit = self.commit.text_lines() if self.commit is not None else []
        return "\n".join([self._head_text(), *self.checks_text(), *commit])

    def _head_text(self) -> str:
        p = self.state.phase
        head = f"{self.component.id}: {p.label} ({p.kind})"
        if self.recorded:
            return f"{head}: verified by {self.recorded['by']} at {self.recorded['at']}: {self.recorded['note']}"
        if self.state.verified:
            v = self.state.verdict or {}
            who = f" by {v.get('by')} at {v.get('at')}" if v else f" (checkpoint {p.checkpoint})"
            return f"{head}: already verified{who}"
        open_items = [t for t in p.items() if not t.closed]
        lines = [f"{head}: not verified"]
        if open_items:
            lines.append(f"  {len(open_items)} open task(s): " + ", ".join(t.number for t in open_items[:10]))
        else:
            lines.append("  every task is closed; confirm with "
                         f"`conductor verify {self.component.id} --phase {p.number} --confirm NOTE`")
        return "\n".join(lines)


@dataclass
class CompleteResult:
    component: Component
    plan: Plan
    phases: list[PhaseState]
    previous_status: str | None
    completed_at: datetime

    exit_code = 0

    def summary(self) -> dict:
        items = list(self.plan.items())
        return {
            "phases": len(self.phases),
            "tasks_done": sum(t.state == "done" for t in items),
            "tasks_skipped": sum(t.state == "skipped" for t in items),
            "verifications": [
                {"phase": s.phase.number, "title": s.phase.title,
                 "by": (s.verdict or {}).get("by"), "at": (s.verdict or {}).get("at"),
                 "checkpoint": s.phase.checkpoint}
                for s in self.phases
            ],
        }

    def to_json(self) -> dict:
        return {"id": self.component.id, "status": self.component.status,
                "previous_status": self.previous_status, "summary": self.summary()}

    def to_text(self) -> str:
        s = self.summary()
        lines = [f"{self.component.id} — {self.component.title}: {self.previous_status} → {self.component.status}",
                 f"  {s['phases']} phases verified, {s['tasks_done']} tasks done, {s['tasks_skipped']} skipped"]
        for v in s["verifications"]:
            who = f"verified by {v['by']} at {v['at']}" if v["by"] else f"checkpoint {v['checkpoint']}"
            lines.append(f"  {v['title']} — {who}")
        return "\n".join(lines)


@dataclass
class LintResult:
    workspace: Path
    problems: list[Problem]
    fixed: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.problems else 0

    def to_json(self) -> dict:
        return {"workspace": str(self.workspace), "problems": [p.to_json() for p in self.problems],
                "fixed": self.fixed}

    def to_text(self) -> str:
        lines = [f"fixed: {f}" for f in self.fixed]
        lines.extend(str(p) for p in self.problems)
        errors = sum(p.severity == "error" for p in self.problems)
        lines.append(f"{errors} error(s), {len(self.problems) - errors} warning(s) in {self.workspace}"
                     if self.problems else f"no problems in {self.workspace}")
        return "\n".join(lines)
