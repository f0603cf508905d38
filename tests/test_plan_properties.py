"""Property tests of plan.md parsing and one-byte edits.

Plan files are generated from a small model (phases, tasks, sub-tasks, noise) and
rendered with random but CommonMark-correct formatting; the parser must find exactly
the model's structure, and any single state change must touch exactly one byte.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conductor_magics.workspace.plan import MARKS, STATE_MARK, parse_plan, set_mark_bytes

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# (markdown, plain text) pairs: what is written and what the parser should report.
WORDS = [
    ("Declare", "Declare"), ("orders", "orders"), ("table", "table"), ("índice", "índice"),
    ("café", "café"), ("Seed", "Seed"), ("1000000", "1000000"), ("rows", "rows"),
    ("migrate", "migrate"), ("日本語", "日本語"), ("`idx_users`", "idx_users"),
    ("**bold**", "bold"), ("*slanted*", "slanted"), ("with", "with"), ("the", "the"),
    ("schema.sql", "schema.sql"), ("p95", "p95"), ("2026", "2026"),
]
TITLE_WORDS = ["Schema", "Design", "Migration", "Setup", "Schéma", "Indexing", "Backup", "Données"]
PHASE_WORDS = ["Phase", "Stage", "Milestone", "Step"]
BULLETS = ["-", "*", "+", "1."]
MARK_CHARS = list(MARKS)  # " ", x, X, ~, -, !
PROSE = [
    "This phase is about the schema; tasks are written as - [ ] items below.",
    "Über die Tabelle 🚀 and its [links](spec.md) — nothing here is a task.",
    "Plain prose\nover two lines with `code` and **emphasis**.",
    "Phase notes: remember step 3 of the protocol.",
]
FENCES = [
    ["```markdown", "- [ ] fake fenced task", "  - [x] fake fenced sub-task", "## Phase 99: fenced", "```"],
    ["~~~", "* [ ] fake tilde task", "~~~"],
    ["```sql", "SELECT 1; -- [ ] not a task", "1. [x] nor this", "```"],
]
COMMENTS = [
    ["<!--", "- [ ] fake commented task", "## Phase 98: commented", "-->"],
    ["<!-- - [x] one-line comment task -->"],
    ["<!-- a comment", "  - [ ] indented fake", "ends here -->"],
]

# 7-12 hex digits holding at least one digit and one letter (what a short commit SHA
# looks like, and what the parser requires so that "Seed 1000000 rows" keeps its number)
hex_sha = st.tuples(
    st.sampled_from("0123456789"), st.sampled_from("abcdef"),
    st.text(alphabet="0123456789abcdef", min_size=5, max_size=10), st.booleans(),
).map(lambda p: (p[0] + p[1] if p[3] else p[1] + p[0]) + p[2])


@dataclass
class MTask:
    words: list[tuple[str, str]]
    mark: str
    bullet: str
    sha: str | None
    sha_style: str
    tab_children: bool
    blank_before: bool
    children: list[MTask] = field(default_factory=list)

    @property
    def name(self) -> str:
        return " ".join(plain for _md, plain in self.words)

    @property
    def markdown(self) -> str:
        text = " ".join(md for md, _plain in self.words)
        if self.sha:
            text += {"bare": f" {self.sha}", "paren": f" ({self.sha})",
                     "bracket": f" [{self.sha}]", "tick": f" `{self.sha}`",
                     # a commit note after the SHA (issue 10, 16c): an annotation, not the name
                     "note": f" {self.sha} (original commit, refactored in e9d5635)",
                     }[self.sha_style]
        return text

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass
class MPhase:
    #: the number tasks carry: the headings' own when they number consistently, else position
    number: int
    title: str
    level: int
    bold: bool
    emoji: bool
    closing_hashes: bool
    checkpoint: str | None
    intro: list[list[str]]  # noise blocks between the heading and the first task
    tasks: list[MTask]
    noise_after: dict[int, list[str]]  # top-level task index → noise block after it


@dataclass
class MPlan:
    preamble: bool
    phases: list[MPhase]
    implicit: bool  # no phase headings: the tasks of phases[0] are written without one
    bom: bool
    eol_mode: str
    final_newline: bool
    trailing_space_seed: list[bool]
    eol_seed: list[bool]


noise_block = st.one_of(
    st.sampled_from(PROSE).map(lambda s: s.split("\n")),
    st.sampled_from(FENCES),
    st.sampled_from(COMMENTS),
)


@functools.cache
def task_strategy(depth: int):
    children = (st.lists(task_strategy(depth + 1), max_size=(3, 2, 1)[depth])
                if depth < 3 else st.just([]))
    return st.builds(
        MTask,
        words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=4),
        mark=st.sampled_from(MARK_CHARS),
        bullet=st.sampled_from(BULLETS),
        sha=st.one_of(st.none(), hex_sha),
        sha_style=st.sampled_from(["bare", "paren", "bracket", "tick", "note"]),
        tab_children=st.booleans(),
        blank_before=st.integers(0, 5).map(lambda n: n == 0),
        children=children,
    )


@st.composite
def phase_strategy(draw, number: int, min_tasks: int = 0, heading_number: int | None = None,
                   numbered: bool = True):
    word = draw(st.sampled_from(PHASE_WORDS))
    title = f"{word} {number if heading_number is None else heading_number}" if numbered else word
    if draw(st.booleans()) or not numbered:
        sep = draw(st.sampled_from([": ", " — ", " - "]))
        title += sep + " ".join(draw(st.lists(st.sampled_from(TITLE_WORDS), min_size=1, max_size=3)))
    tasks = draw(st.lists(task_strategy(0), min_size=min_tasks, max_size=4))
    noise_after = {}
    for index in range(len(tasks) - 1):
        if draw(st.integers(0, 4)) == 0:
            noise_after[index] = draw(noise_block)
    return MPhase(
        number=number,
        title=title,
        level=draw(st.integers(1, 3)),
        bold=draw(st.booleans()),
        emoji=draw(st.booleans()),
        closing_hashes=draw(st.integers(0, 4).map(lambda n: n == 0)),
        checkpoint=draw(st.one_of(st.none(), hex_sha)),
        intro=draw(st.lists(noise_block, max_size=2)),
        tasks=tasks,
        noise_after=noise_after,
    )


@st.composite
def plan_strategy(draw):
    implicit = draw(st.integers(0, 6)) == 0
    if implicit:
        phases = [draw(phase_strategy(1, min_tasks=1))]
    else:
        count = draw(st.integers(0, 4))
        positions = list(range(1, count + 1))
        # How the headings number the phases (issue 10, 16b): from 1, from 0, increasing with
        # gaps (all numbered by their headings), or inconsistently (numbered by position).
        style = draw(st.sampled_from(["from1", "from0", "gaps", "unnumbered", "repeated"]))
        if style == "from0":
            headings = [n - 1 for n in positions]
        elif style == "gaps":
            headings, last = [], draw(st.integers(-1, 3))
            for _ in positions:
                last += draw(st.integers(1, 3))
                headings.append(last)
        else:
            headings = list(positions)
        unnumbered = draw(st.integers(0, count - 1)) if style == "unnumbered" and count else None
        if style == "repeated" and count > 1:
            at = draw(st.integers(1, count - 1))
            headings[at] = headings[at - 1] - draw(st.integers(0, 1))  # repeated or decreasing
        consistent = unnumbered is None and all(a < b for a, b in zip(headings, headings[1:], strict=False))
        phases = [draw(phase_strategy(heading if consistent else position, heading_number=heading,
                                      numbered=position - 1 != unnumbered))
                  for position, heading in zip(positions, headings, strict=True)]
    return MPlan(
        preamble=draw(st.booleans()),
        phases=phases,
        implicit=implicit,
        bom=draw(st.booleans()),
        eol_mode=draw(st.sampled_from(["lf", "crlf", "mixed"])),
        final_newline=draw(st.integers(0, 3).map(lambda n: n != 0)),
        trailing_space_seed=draw(st.lists(st.booleans(), min_size=8, max_size=8)),
        eol_seed=draw(st.lists(st.booleans(), min_size=16, max_size=16)),
    )


def columns(prefix: str) -> int:
    col = 0
    for ch in prefix:
        col = col + 4 - col % 4 if ch == "\t" else col + 1
    return col


@dataclass
class Rendered:
    data: bytes
    #: per model task in document order: (task, number, depth, byte offset of its mark)
    tasks: list[tuple[MTask, str, int, int]]


def render(model: MPlan) -> Rendered:
    lines: list[str] = []
    marks: list[tuple[MTask, str, int, int, int]] = []  # task, number, depth, line index, column

    def blank():
        if lines and lines[-1] != "":
            lines.append("")

    def block(text_lines: list[str]):
        blank()
        lines.extend(text_lines)
        lines.append("")

    def emit(task: MTask, prefix: str, number: str, depth: int):
        if task.blank_before:
            blank()
        head = f"{prefix}{task.bullet} ["
        marks.append((task, number, depth, len(lines), len(head.encode("utf-8"))))
        lines.append(f"{head}{task.mark}] {task.markdown}")
        content_col = columns(prefix) + len(task.bullet) + 1
        spaces = prefix + " " * (len(task.bullet) + 1)
        tabbed = prefix + "\t"
        child_prefix = (tabbed if task.tab_children and content_col <= columns(tabbed) < content_col + 4
                        else spaces)
        for index, child in enumerate(task.children, start=1):
            emit(child, child_prefix, f"{number}.{index}", depth + 1)

    if model.preamble:
        lines.append("# Implementation Plan: Orders — Überblick")
        block(["A preamble paragraph; the phases follow."])
    for phase in model.phases:
        if not model.implicit:
            blank()
            text = f"**{phase.title}**" if phase.bold else phase.title
            if phase.emoji:
                text = "🚀 " + text
            if phase.checkpoint:
                text += f" [checkpoint: {phase.checkpoint}]"
            heading = "#" * phase.level + " " + text
            if phase.closing_hashes:
                heading += " " + "#" * phase.level
            lines.append(heading)
        for noise in phase.intro:
            block(noise)
        for index, task in enumerate(phase.tasks):
            emit(task, "", f"{phase.number}.{index + 1}", 0)
            if index in phase.noise_after:
                block(phase.noise_after[index])

    # line endings, trailing spaces and the final newline
    eols = []
    for index in range(len(lines)):
        if model.eol_mode == "lf":
            eols.append("\n")
        elif model.eol_mode == "crlf":
            eols.append("\r\n")
        else:
            eols.append("\r\n" if model.eol_seed[index % len(model.eol_seed)] ^ (index % 3 == 0) else "\n")
    if lines and not model.final_newline:
        eols[-1] = ""
    out = bytearray(b"\xef\xbb\xbf" if model.bom else b"")
    starts = []
    for index, (line, eol) in enumerate(zip(lines, eols, strict=True)):
        starts.append(len(out))
        if model.trailing_space_seed[index % len(model.trailing_space_seed)] and index % 2:
            line += " " * (1 + index % 3)
        out += (line + eol).encode("utf-8")
    offsets = [(task, number, depth, starts[line] + col) for task, number, depth, line, col in marks]
    return Rendered(bytes(out), offsets)


def expected_counts(phase: MPhase) -> dict[str, int]:
    subs = [s for t in phase.tasks for c in t.children for s in c.walk()]
    return {
        "tasks_total": len(phase.tasks),
        "tasks_done": sum(t.mark in "xX" for t in phase.tasks),
        "subtasks_total": len(subs),
        "subtasks_done": sum(s.mark in "xX" for s in subs),
    }


def structure(plan) -> list[tuple]:
    return [(p.number, p.title, p.level, p.checkpoint, p.implicit,
             tuple((t.number, t.name, t.sha, t.depth, t.line, t.mark_offset) for t in p.items()))
            for p in plan.phases]


@SETTINGS
@given(plan_strategy())
def test_parse_matches_the_model(model):
    rendered = render(model)
    plan = parse_plan(rendered.data, "plan.md")
    assert plan.loose_tasks == []
    assert len(plan.phases) == len(model.phases)
    totals = {"tasks_total": 0, "tasks_done": 0, "subtasks_total": 0, "subtasks_done": 0}
    for phase, mphase in zip(plan.phases, model.phases, strict=True):
        want = expected_counts(mphase)
        assert phase.counts() == want, phase.title
        for key in totals:
            totals[key] += want[key]
        assert phase.implicit == model.implicit
        assert phase.number == mphase.number
        if not model.implicit:
            assert phase.title == mphase.title
            assert phase.level == mphase.level
            assert phase.checkpoint == mphase.checkpoint
    assert plan.counts() == totals
    parsed = list(plan.items())
    assert len(parsed) == len(rendered.tasks)
    for task, (mtask, number, depth, offset) in zip(parsed, rendered.tasks, strict=True):
        assert task.number == number
        assert task.name == mtask.name
        assert task.mark == mtask.mark
        assert task.sha == mtask.sha
        assert task.depth == depth
        assert task.mark_offset == offset
        assert [c.name for c in task.children] == [c.name for c in mtask.children]


@SETTINGS
@given(plan_strategy().filter(lambda m: any(m.phases[i].tasks for i in range(len(m.phases)))),
       st.data())
def test_any_single_state_change_touches_one_byte(model, data):
    rendered = render(model)
    plan = parse_plan(rendered.data, "plan.md")
    items = list(plan.items())
    index = data.draw(st.integers(0, len(items) - 1), label="task index")
    state = data.draw(st.sampled_from(["done", "todo", "in_progress", "skipped"]), label="state")
    task = items[index]
    assert task.mark_offset == rendered.tasks[index][3]

    new = set_mark_bytes(rendered.data, task, state)
    assert len(new) == len(rendered.data)
    diff = [i for i in range(len(new)) if new[i] != rendered.data[i]]
    if task.mark == STATE_MARK[state]:
        assert diff == []
    else:
        assert diff == [task.mark_offset]
        assert new[task.mark_offset:task.mark_offset + 1] == STATE_MARK[state].encode()
        assert new[task.mark_offset - 1:task.mark_offset] == b"["

    again = parse_plan(new, "plan.md")
    assert structure(again) == structure(plan)
    before = [t.state for t in items]
    after = [t.state for t in again.items()]
    expected = list(before)
    expected[index] = state
    assert after == expected
    # counts move only where the changed task is counted
    changed_phase = task.phase_number
    for old_phase, new_phase in zip(plan.phases, again.phases, strict=True):
        if old_phase.number != changed_phase:
            assert old_phase.counts() == new_phase.counts()
