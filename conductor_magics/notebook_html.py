"""The notebook's one rendering of command results: MIME bundles for any result.

:func:`notebook_view` decides, by the result's type, what a notebook shows for a
:class:`~conductor_magics.results.Result` (HTML with its text/plain twin, Markdown, a
benchmark's styled table and plot), which value it keeps in the kernel, and whether a
Run All stops. The engine returns plain data; the pandas Styler and the matplotlib
figure are built here. No Jupyter imports, so it can be tested anywhere. Every value
from the workspace is escaped.
"""

from __future__ import annotations

import base64
import io
import random
from dataclasses import dataclass, field
from html import escape
from typing import Any

from .errors import notebook_words
from .reports import (
    ContextResult,
    ImplementResult,
    LintResult,
    PhaseState,
    PlanResult,
    StatusReport,
    TaskResult,
)
from .results import Result

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


_HTML = ((StatusReport, status_html), (PlanResult, plan_html),
         (ImplementResult, implement_html), (LintResult, lint_html))


def to_html(result: Result) -> str:
    """HTML for any result (plain text in a <pre> where no richer view exists)."""
    for kind, render in _HTML:
        if isinstance(result, kind):
            return render(result)
    from .steps.context import StepResult  # only engine commands load pandas and SQLAlchemy

    if isinstance(result, StepResult):
        return step_html(result)
    return text_html(result.to_text())


# -- the notebook view of a result -------------------------------------------------------

Bundle = dict[str, str]


@dataclass
class NotebookView:
    """What a notebook shows for one result, and what it does besides."""

    #: MIME bundles to display in order (each with a text/plain twin for consoles and logs)
    bundles: list[Bundle] = field(default_factory=list)
    #: plain data to keep in the kernel as ``<command>_result`` (bench samples, advice)
    value: Any = None
    #: one line that stops a Run All here (a task cell whose work raised), or None
    stop: str | None = None


def html_bundle(result: Result) -> Bundle:
    """The result as HTML with its plain text."""
    return {"text/html": to_html(result), "text/plain": result.to_text()}


def markdown_bundle(text: str) -> Bundle:
    """Markdown (JupyterLab renders Mermaid too); the source doubles as plain text."""
    return {"text/markdown": text, "text/plain": text}


def figure_bundle(figure: Any) -> Bundle:
    """A matplotlib Figure as a PNG, whatever backend the kernel has (none is needed)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    title = figure.axes[0].get_title() if figure.axes else ""
    return {"image/png": base64.b64encode(buffer.getvalue()).decode("ascii"),
            "text/plain": f"[plot: {title or 'per-arm distribution'}]"}


def widget_header(result: Result) -> list[Bundle]:
    """What is shown above a result's interactive widget (checklist, chooser, gate):
    for ``implement``, what was loaded; otherwise nothing (the widget says it all)."""
    if not isinstance(result, ImplementResult):
        return []
    return [{mime: notebook_words(data) for mime, data in html_bundle(result).items()}]


def notebook_view(result: Result) -> NotebookView:
    """The notebook's view of any result, decided by its type (the only place that does);
    suggested commands in the notebook's words (``%conductor …``)."""
    view = _view(result)
    view.bundles = [{mime: data if mime.startswith("image/") else notebook_words(data)
                     for mime, data in bundle.items()} for bundle in view.bundles]
    return view


def _view(result: Result) -> NotebookView:
    if isinstance(result, ContextResult):
        bundles = [markdown_bundle(f"**{name}** — `{result.paths.get(name)}`\n\n{text}")
                   for name, text in result.docs.items()]
        if result.missing:
            bundles.append(markdown_bundle("*missing:* " + ", ".join(result.missing)))
        return NotebookView(bundles)
    if isinstance(result, TaskResult) and result.cell_failed:
        # The work raised (its traceback is above): stop a Run All here. A failing test
        # cell does not stop anything: red is an expected step in TDD.
        return NotebookView([html_bundle(result)],
                            stop=f"task {result.task.number}: the cell failed; it stays [~]")
    if any(isinstance(result, kind) for kind, _ in _HTML):
        return NotebookView([html_bundle(result)])
    from .steps.drift import DriftReport

    if isinstance(result, DriftReport):
        return NotebookView([drift_bundle(result)], value=result)
    from .steps.context import StepResult

    if not isinstance(result, StepResult):
        return NotebookView([html_bundle(result)])
    from .engine.bench import BenchResult

    if isinstance(result.value, BenchResult):
        # A benchmark: the summary, the styled per-arm table, the distribution plot.
        styled = bench_styler(result.value).to_html()
        return NotebookView([{"text/html": f"<p>{escape(result.summary)}</p>{styled}",
                              "text/plain": result.to_text()},
                             figure_bundle(bench_figure(result.value))], value=result.value)
    bundles = [html_bundle(result)]
    if result.markdown:  # e.g. a Mermaid ER diagram
        bundles.append(markdown_bundle(result.markdown))
    return NotebookView(bundles, value=result.value)


# -- drift ---------------------------------------------------------------------------------

#: where each layer sits in the diagram (x, y of the box's centre)
_LAYER_AT = {"spec": (70, 65), "schema.sql": (215, 65), "migrations": (360, 65),
             "database": (505, 65), "plan": (360, 160)}


def drift_svg(counts: dict[str, int], severities: dict[str, str]) -> str:
    """The five layers as boxes, one edge per comparison labelled with its number of
    findings (green none, amber warnings, red errors)."""
    from .steps.drift import EDGES

    colour = {"": "#2e7d32", "warning": "#a15c00", "error": "#b00020"}
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="590" height="195" '
             'font-family="sans-serif" font-size="12" role="img" aria-label="drift between layers">']
    for kind, (a, b) in EDGES.items():
        if kind not in counts:
            continue
        (x1, y1), (x2, y2) = _LAYER_AT[a], _LAYER_AT[b]
        stroke = colour[severities.get(kind, "")]
        if kind == "queries-vs-schema":  # the second spec ↔ schema.sql edge: an arc above
            path, lx, ly = f"M{x1},{y1 - 14} Q{(x1 + x2) / 2},{y1 - 44} {x2},{y2 - 14}", (x1 + x2) / 2, y1 - 33
        elif kind == "plan-vs-evidence":  # the verdicts rest on schema.sql, revisions, database
            path = " ".join(f"M{x1},{y1 - 14} L{_LAYER_AT[layer][0]},{_LAYER_AT[layer][1] + 14}"
                            for layer in ("schema.sql", "migrations", "database"))
            lx, ly = x1 + 18, (y1 + y2) / 2 + 4
        else:
            path, lx, ly = f"M{x1 + 52},{y1} L{x2 - 52},{y2}", (x1 + x2) / 2, y1 - 6
        parts.append(f'<path d="{path}" stroke="{stroke}" stroke-width="2" fill="none"/>')
        parts.append(f'<text x="{lx}" y="{ly}" text-anchor="middle" fill="{stroke}" '
                     f'font-weight="bold"><title>{escape(kind)}</title>{counts[kind]}</text>')
    for name, (x, y) in _LAYER_AT.items():
        parts.append(f'<rect x="{x - 52}" y="{y - 14}" width="104" height="28" rx="6" '
                     'fill="#f6f8fa" stroke="#888"/>')
        parts.append(f'<text x="{x}" y="{y + 4}" text-anchor="middle">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def drift_bundle(report: Any) -> Bundle:
    """A drift report: the summary, the layer diagram with counts on its edges, and the
    findings as a table grouped by layer pair."""
    severities = {}
    for finding in report.findings:
        if severities.get(finding.kind) != "error":
            severities[finding.kind] = finding.severity
    body = [f"<p><b>{escape(report.summary())}</b></p>",
            drift_svg(report.counts(), severities)]
    for kind in report.kinds:
        found = [f for f in report.findings if f.kind == kind]
        if not found:
            continue
        rows = "".join(
            f'<tr><td class="{"err" if f.severity == "error" else "warn"}">{escape(f.severity)}</td>'
            f"<td>{escape(f.object_type)}</td><td><code>{escape(f.object)}</code></td>"
            f"<td>{escape(f.message)}</td><td><code>{escape(f.left)}</code></td>"
            f"<td><code>{escape(f.right)}</code></td><td>{escape(f.fix)}</td></tr>"
            for f in found)
        body.append(f"<h4>{escape(kind)} ({len(found)})</h4><table><tr><th>severity</th>"
                    "<th>object</th><th>name</th><th>finding</th><th>stated at</th>"
                    f"<th>against</th><th>fix</th></tr>{rows}</table>")
    body += [f'<p class="muted">note: {escape(n)}</p>' for n in report.notes]
    return {"text/html": _wrap("".join(body)), "text/plain": report.to_text()}


# -- benchmarks ----------------------------------------------------------------------------

def bench_styler(result: Any):
    """A BenchResult's ``frame()`` as a pandas Styler: units, a readable size, verdicts
    coloured (green faster, red slower), the one-line summary as the caption."""
    frame = result.frame()
    colours = {"faster": "color: #1a7f37; font-weight: bold",
               "slower": "color: #cf222e; font-weight: bold"}
    formats: dict[str, Any] = {column: "{:.3f}" for column in ("min ms", "median ms", "IQR ms",
                                                                "p95 ms")}
    formats.update({"speed-up": "{:.2f}×", "CI low": "{:.2f}", "CI high": "{:.2f}",
                    "build ms": "{:.1f}", "insert slowdown": "{:.2f}×",
                    "size bytes": _human_size})
    return (frame.style.format(formats, na_rep="–")
            .map(lambda v: colours.get(v, ""), subset=["verdict"])
            .hide(axis="index")
            .set_caption(result.summary))


def _human_size(value: Any) -> str:
    import pandas as pd

    if value is None or pd.isna(value):
        return "–"
    size = float(value)
    for unit in ("B", "kB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def bench_figure(result: Any):
    """A BenchResult's per-arm distribution of the samples (ms): box plot with the
    samples as jittered points; log scale when the arms differ by more than 20×. Built on
    a ``matplotlib.figure.Figure`` directly (no pyplot state)."""
    from matplotlib.figure import Figure

    data = [[s * 1e3 for s in arm.samples] for arm in result.arms]
    labels = [arm.label for arm in result.arms]
    figure = Figure(figsize=(7.5, 1.2 + 0.7 * len(result.arms)), layout="constrained")
    axes = figure.add_subplot()
    axes.boxplot(data, orientation="horizontal", tick_labels=labels, showfliers=False,
                 widths=0.5)
    jitter = random.Random(0)
    for position, values in enumerate(data, start=1):
        axes.scatter(values, [position + jitter.uniform(-0.15, 0.15) for _ in values],
                     s=10, alpha=0.5, zorder=3)
    medians = [sorted(v)[len(v) // 2] for v in data if v]
    if medians and min(medians) > 0 and max(medians) / min(medians) > 20:
        axes.set_xscale("log")
    axes.invert_yaxis()  # the baseline on top
    axes.set_xlabel("CPU time per execution (ms)" if result.clock == "cpu"
                    else "time per execution (ms)")
    axes.set_title(result.summary if len(result.summary) < 110 else result.name, fontsize=9)
    axes.grid(axis="x", alpha=0.3)
    return figure
