"""HTML for session results in a notebook (status table with progress bars, plan, lint).

Pure string building: no Jupyter imports, so it can be tested anywhere. Every
value from the workspace is escaped.
"""

from __future__ import annotations

from html import escape

from .reports import (
    ImplementResult,
    LintResult,
    PhaseState,
    PlanResult,
    StatusReport,
)

_STYLE = """<style>
.conductor table{border-collapse:collapse;font-size:13px}
.conductor th,.conductor td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.conductor .bar{display:inline-block;width:90px;height:9px;background:#e5e5e5;border-radius:4px;margin-right:6px;vertical-align:middle}
.conductor .bar>span{display:block;height:100%;background:#2e7d32;border-radius:4px}
.conductor .badge{padding:1px 6px;border-radius:8px;font-size:12px;background:#eee}
.conductor .b-in-progress{background:#fff3cd}.conductor .b-completed{background:#d4edda}
.conductor .b-blocked{background:#f8d7da}.conductor .b-planning{background:#e2e3f3}
.conductor .muted{color:#777}.conductor .warn{color:#a15c00}.conductor .err{color:#b00020}
.conductor .current{background:#fffbe6;font-weight:600}
</style>"""

_MARKS = {"todo": "☐", "done": "☑", "in_progress": "◐", "skipped": "⊘", "blocked": "⛔"}


def _bar(done: int, total: int) -> str:
    pct = 0 if not total else round(100 * done / total)
    return (f'<span class="bar" title="{pct}%"><span style="width:{pct}%"></span></span>'
            f"{done}/{total}")


def _badge(status: str | None) -> str:
    text = status or "?"
    css = "b-" + text.lower().replace(" ", "-")
    return f'<span class="badge {css}">{escape(text)}</span>'


def _wrap(body: str) -> str:
    return f'{_STYLE}<div class="conductor">{body}</div>'


def status_html(report: StatusReport) -> str:
    rows = []
    for cs in report.components:
        c, n = cs.component, cs.counts
        phase = cs.current_phase
        task = cs.next_task
        nxt = (f"{escape(task.number)} {escape(task.name)}" if task else
               ('<span class="warn">verify phase</span>' if cs.next and cs.next.action == "verify" else "–"))
        problems = "".join(f'<div class="err">{escape(p)}</div>' for p in cs.problems)
        rows.append(
            f"<tr><td><code>{escape(c.id)}</code></td><td>{escape(c.title)}</td><td>{_badge(c.status)}</td>"
            f"<td>{_bar(n['tasks_done'], n['tasks_total'])}</td>"
            f"<td>{_bar(n['subtasks_done'], n['subtasks_total'])}</td>"
            f"<td>{escape(phase.title) if phase else '–'}</td><td>{nxt}{problems}</td></tr>")
    head = ("<tr><th>ID</th><th>Title</th><th>Status</th><th>Tasks</th><th>Sub-tasks</th>"
            "<th>Current phase</th><th>Next task</th></tr>")
    extra = "".join(f'<div class="err">{escape(p)}</div>' for p in report.problems)
    if not rows:
        return _wrap(f'<p class="muted">No components in {escape(str(report.workspace))}.</p>{extra}')
    return _wrap(f"<table>{head}{''.join(rows)}</table>{extra}")


def _phases_html(states: list[PhaseState], current: str | None, with_tasks: bool) -> str:
    parts = []
    for s in states:
        n = s.phase.counts()
        flag = ("✔ verified" if s.verified else "finished — awaiting verification" if s.phase.finished
                else f"locked: {s.lock_reason}" if s.locked else "")
        head = (f"<b>{escape(s.phase.title)}</b> {_bar(n['tasks_done'], n['tasks_total'])} "
                f'<span class="muted">{escape(flag)}</span>')
        if not with_tasks:
            parts.append(f"<div>{head}</div>")
            continue
        items = []
        for t in s.phase.items():
            css = ' class="current"' if t.number == current else ""
            sha = f' <code class="muted">{escape(t.sha)}</code>' if t.sha else ""
            items.append(f'<div{css} style="margin-left:{12 + 18 * t.depth}px">{_MARKS[t.state]} '
                         f'<span class="muted">{escape(t.number)}</span> {escape(t.name)}{sha}</div>')
        opened = "" if (s.verified or s.locked) else " open"
        parts.append(f"<details{opened}><summary>{head}</summary>{''.join(items)}</details>")
    return "".join(parts)


def plan_html(result: PlanResult) -> str:
    c = result.component
    current = result.next.task.number if result.next.task else None
    return _wrap(f"<h4>{escape(c.id)} — {escape(c.title)} {_badge(c.status)}</h4>"
                 f"{_phases_html(result.phases, current, with_tasks=True)}"
                 f"<p>{escape(result.next.to_text().splitlines()[0])}</p>")


def implement_html(result: ImplementResult) -> str:
    c = result.component
    sel = result.selection
    lines = [f"<h4>Implementing <code>{escape(c.id)}</code> — {escape(c.title)} {_badge(c.status)}</h4>",
             f'<div class="muted">{escape(sel.reason)}'
             + (f"; status {escape(str(result.previous_status))} → {escape(str(c.status))}"
                if result.previous_status != c.status else "") + "</div>"]
    if sel.candidates:
        others = ", ".join(f"<code>{escape(o.id)}</code> ({escape(str(o.status))})" for o in sel.candidates)
        lines.append(f"<div>Other candidates: {others} — <code>%conductor implement ID</code> "
                     "to pick one</div>")
    lines.append(f"<div>Context loaded: {escape(', '.join(sorted(result.loaded.docs)))}"
                 + (f' <span class="warn">(missing: {escape(", ".join(result.loaded.missing))})</span>'
                    if result.loaded.missing else "") + "</div>")
    current = result.next.task.number if result.next.task else None
    lines.append(_phases_html(result.phases, current, with_tasks=False))
    lines.append(f"<p><b>Next:</b> {escape(result.next.to_text().splitlines()[0])}</p>")
    return _wrap("".join(lines))


def lint_html(result: LintResult) -> str:
    if not result.problems:
        return _wrap(f"<p>✔ no problems in {escape(str(result.workspace))}</p>")
    rows = "".join(
        f'<tr><td class="{"err" if p.severity == "error" else "warn"}">{escape(p.severity)}</td>'
        f"<td><code>{escape(p.location)}</code></td><td>{escape(p.message)}</td></tr>"
        for p in result.problems)
    fixed = "".join(f"<div>fixed: {escape(f)}</div>" for f in result.fixed)
    return _wrap(f"{fixed}<table><tr><th>Severity</th><th>Where</th><th>Problem</th></tr>{rows}</table>")


def step_html(result) -> str:
    """An engine step: its summary line and its tables."""
    parts = [f"<p>{escape(result.summary.splitlines()[0] if result.summary else '')}</p>"]
    if result.summary and "\n" in result.summary:  # e.g. migrate sql: show it all
        parts = [f"<pre>{escape(result.summary)}</pre>"]
    for title, frame in result.frames:
        if frame is None:
            continue
        shown = frame.head(200)
        more = f'<div class="muted">{len(frame) - 200} more rows</div>' if len(frame) > 200 else ""
        parts.append(f"<h5>{escape(title)}</h5>{shown.to_html(index=False, border=0)}{more}")
    return _wrap("".join(parts))


def text_html(text: str) -> str:
    return _wrap(f"<pre>{escape(text)}</pre>")


def to_html(result) -> str:
    """HTML for any session result (plain text in a <pre> where no richer view exists)."""
    for kind, render in ((StatusReport, status_html), (PlanResult, plan_html),
                         (ImplementResult, implement_html), (LintResult, lint_html)):
        if isinstance(result, kind):
            return render(result)
    if hasattr(result, "frames") and hasattr(result, "summary"):
        return step_html(result)
    return text_html(result.to_text())
