"""plan.md: phases, tasks and sub-tasks, read leniently and edited one byte at a time.

Structure comes from markdown-it-py (so code fences, HTML comments and list
nesting follow CommonMark); each checkbox is then mapped back to the byte
offset of its mark, so ticking a task replaces exactly one byte and leaves
line endings, BOM, tabs, bullets, numbering and trailing spaces untouched.

A task is found again after a re-read by its :class:`TaskKey` (phase title,
path of task texts, ordinal), not by its line number, so an edit made in the
JupyterLab editor between reading and writing is not lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import re
import sys
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import markdown_it
from markdown_it import MarkdownIt

from ..errors import ConductorError, TaskNotFound, WorkspaceFormatError
from .files import (
    WRITE_ATTEMPTS,
    FileChanged,
    FileIdentity,
    atomic_write_bytes,
    kept_changing,
    lock_dir,
    read_with_identity,
    retry_pause,
    write_checked,
)

#: Checkbox mark → state name.
MARKS = {" ": "todo", "x": "done", "X": "done", "~": "in_progress", "-": "skipped", "!": "blocked"}
_CLOSED_MARKS = frozenset("xX-")  # done or skipped
#: State name → the mark written for it.
STATE_MARK = {"todo": " ", "done": "x", "in_progress": "~", "skipped": "-", "blocked": "!"}

_PHASE_RE = re.compile(r"^(phase|stage|milestone|step)\b", re.IGNORECASE)
# The whole number a phase heading gives itself (``Phase 0: Setup``, ``Stage 3 — Core``);
# ``Phase 1.5`` and ``Phase 2a`` give none.
_PHASE_NUMBER_RE = re.compile(r"^(?:phase|stage|milestone|step)\s*#?\s*(\d{1,6})(?!\w|\.\d)",
                              re.IGNORECASE)
# Headings that end a phase even when they are nested below it.
_CLOSING_RE = re.compile(
    r"^(acceptance criteria|acceptance|checklist|definition of done|success criteria|"
    r"done criteria|exit criteria|notes|summary|references|appendix|open questions)\b",
    re.IGNORECASE,
)
_CHECKBOX_TEXT_RE = re.compile(r"^\[([ xX~!-])\](?:[ \t]+|$)")
_CHECKBOX_LINE_RE = re.compile(r"^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+\[([ xX~!-])\](?:[ \t]|$)")
_CHECKPOINT_RE = re.compile(r"\s*\[checkpoint:\s*([0-9a-fA-F]{7,40})\s*\]", re.IGNORECASE)
# Written by `verify` when there is no commit to name: an annotation, not a verdict.
_VERIFIED_RE = re.compile(r"\s*\[verified:\s*[^\]]*\]", re.IGNORECASE)
# A trailing commit SHA: 7-40 hex digits holding at least one digit and one letter
# (so "Seed 1000000 rows" keeps its number), bare or in () / [].
_SHA_RE = re.compile(
    r"\s*(?:\(|\[)?\b((?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,40})\b(?:\)|\])?\s*$"
)
_SHA_TOKEN_RE = re.compile(r"\b((?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,40})\b")
# A trailing parenthesis (no nested ones), a commit note when it holds a SHA:
# ``… 01b3180 (original commit, refactored in e9d5635)``.
_TRAILING_PAREN_RE = re.compile(r"\s*\(([^()]*)\)\s*$")
_LEADING_SYMBOLS_RE = re.compile(r"^[^\w(\[]+", re.UNICODE)
_NUMBER_REF_RE = re.compile(r"^\d+(?:\.\d+)+$")
_NEWLINE_RE = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"

_KIND_RULES = [
    ("schema", re.compile(r"schema|data model|modell?ing", re.I)),
    ("migration", re.compile(r"migration", re.I)),
    ("indexing", re.compile(r"index|query perf|performance|tuning", re.I)),
    ("integrity", re.compile(r"integrity|constraint", re.I)),
    ("backup", re.compile(r"backup|recovery|restore|disaster", re.I)),
    ("core", re.compile(r"crud|core|implementation|repository|data access", re.I)),
    ("testing", re.compile(r"test", re.I)),
    ("documentation", re.compile(r"doc", re.I)),
]

_MD = MarkdownIt("commonmark")


def phase_kind(title: str) -> str:
    """The kind of a phase from its title (DESIGN.md §4); ``manual`` when unknown."""
    for kind, pattern in _KIND_RULES:
        if pattern.search(title):
            return kind
    return "manual"


@dataclass(frozen=True)
class TaskKey:
    """How a task is found again after the file was re-read."""

    phase_title: str
    path: tuple[str, ...]
    ordinal: int  # among items with the same phase and path
    #: how many items share that phase and path: if another one with the same text appears
    #: (or one goes) between read and write, which one is meant is ambiguous, so the key no
    #: longer matches and the write is refused instead of landing on the wrong task
    siblings: int = 1


@dataclass
class Task:
    """A checkbox list item; ``children`` are its nested checkbox items (sub-tasks)."""

    number: str
    name: str
    mark: str
    line: int
    mark_offset: int
    depth: int
    #: the number of the task's phase as messages show it (see :attr:`Phase.number`)
    phase_number: int
    key: TaskKey
    #: the last line of the task's text (a long task may wrap onto following lines)
    last_line: int = 0
    sha: str | None = None
    children: list[Task] = field(default_factory=list)
    #: position of the task's phase in ``Plan.phases`` (from 0); None outside any phase
    phase_index: int | None = None

    @property
    def state(self) -> str:
        return MARKS[self.mark]

    @property
    def closed(self) -> bool:
        """Done or skipped: nothing left to do."""
        return self.state in ("done", "skipped")

    def walk(self) -> Iterator[Task]:
        """This task and every sub-task below it, in document order."""
        # One generator with a stack, not one per level: plans of thousands of tasks are
        # walked several times per command.
        stack = [self]
        while stack:
            task = stack.pop()
            yield task
            if task.children:
                stack.extend(reversed(task.children))

    def to_json(self) -> dict:
        return {
            "number": self.number,
            "name": self.name,
            "state": self.state,
            "line": self.line,
            "sha": self.sha,
            "subtasks": [c.to_json() for c in self.children],
        }


@dataclass
class Phase:
    #: the number tasks, messages and ``--phase`` use: the heading's own number when every
    #: phase heading has one and they increase (``Phase 0``, ``Phase 1``…), else the position
    #: from 1 in file order
    number: int
    title: str
    level: int
    line: int
    checkpoint: str | None
    tasks: list[Task] = field(default_factory=list)
    implicit: bool = False
    #: position in ``Plan.phases`` (from 0), whatever the numbering
    index: int = 0
    #: the number written in the heading (``Phase 0: Setup`` → 0), if any
    heading_number: int | None = None

    def __getattr__(self, name: str) -> Any:
        # Only reached when ``tasks`` is not set: a phase made from the parse cache builds its
        # tasks on first use (a tick in a plan of thousands of tasks touches one phase).
        lazy = self.__dict__.get("_lazy") if name == "tasks" else None
        if lazy is None:
            raise AttributeError(name)
        rows, data = lazy
        tasks = [_task_from(row, data) for row in rows]
        self.__dict__["tasks"] = tasks
        del self.__dict__["_lazy"]
        self.__dict__.pop("_marks", None)
        return tasks

    def _pending_rows(self) -> tuple[tuple, bytes] | None:
        """The cached rows and bytes while the tasks are not built yet."""
        return self.__dict__.get("_lazy")

    def _pending_marks(self) -> bytes | None:
        """The marks of a phase whose tasks are not built yet, in document order (read once
        per version of the bytes: the gates ask every phase several times per command)."""
        lazy = self.__dict__.get("_lazy")
        if lazy is None:
            return None
        known = self.__dict__.get("_marks")
        if known is None or known[0] is not lazy[1]:
            known = (lazy[1], _rows_marks(*lazy))
            self.__dict__["_marks"] = known
        return known[1]

    @property
    def kind(self) -> str:
        return phase_kind(self.title)

    @property
    def label(self) -> str:
        """How messages name the phase: ``Phase 3: Core`` as it is, else ``phase 3 'Core'``."""
        if self.heading_number == self.number:
            return self.title
        return f"phase {self.number} '{self.title}'"

    def items(self) -> Iterator[Task]:
        """Every task and sub-task of the phase in document order."""
        for task in self.tasks:
            if task.children:
                yield from task.walk()
            else:
                yield task

    @property
    def finished(self) -> bool:
        """Every task and sub-task is done or skipped (and there is at least one)."""
        marks = self._pending_marks()
        if marks is not None:  # read from the marks' bytes, without building the tasks
            return bool(marks) and not marks.translate(None, _CLOSED_MARK_BYTES)
        seen = False
        for task in self.items():  # stops at the first open task
            if task.mark not in _CLOSED_MARKS:
                return False
            seen = True
        return seen

    def counts(self) -> dict[str, int]:
        tops = self.tasks
        subs = [s for t in tops for c in t.children for s in c.walk()]
        return {
            "tasks_total": len(tops),
            "tasks_done": sum(t.state == "done" for t in tops),
            "subtasks_total": len(subs),
            "subtasks_done": sum(s.state == "done" for s in subs),
        }

    def to_json(self) -> dict:
        return {
            "number": self.number,
            "title": self.title,
            "kind": self.kind,
            "line": self.line,
            "checkpoint": self.checkpoint,
            "implicit": self.implicit,
            "finished": self.finished,
            **self.counts(),
            "tasks": [t.to_json() for t in self.tasks],
        }


@dataclass
class Plan:
    path: Path
    phases: list[Phase]
    #: checkbox items outside any phase (before the first phase or after a closing heading)
    loose_tasks: list[Task]
    data: bytes
    #: phases are numbered by their headings' own numbers (else by position from 1)
    numbered_by_heading: bool = False
    #: which version of the file ``data`` was read from (None: not read from disk, or
    #: written since), checked right before a write replaces it
    identity: FileIdentity | None = None
    #: (line, text) of headings that start with a checkbox (``### [x] 0.1 Task``): not tasks
    checkbox_headings: list[tuple[int, str]] = field(default_factory=list)

    def items(self) -> Iterator[Task]:
        for phase in self.phases:
            yield from phase.items()

    def counts(self) -> dict[str, int]:
        totals = {"tasks_total": 0, "tasks_done": 0, "subtasks_total": 0, "subtasks_done": 0}
        for phase in self.phases:
            for key, value in phase.counts().items():
                totals[key] += value
        return totals

    def phase(self, number: int) -> Phase:
        for phase in self.phases:
            if phase.number == number:
                return phase
        numbers = ", ".join(str(p.number) for p in self.phases[:12])
        raise TaskNotFound(
            f"plan has no phase {number} (it has {len(self.phases)}: {numbers})", path=self.path,
            hint=("phases are numbered as their headings number them" if self.numbered_by_heading
                  else "phases are numbered from 1 in file order"),
        )

    def next_task(self) -> Task | None:
        """The first task marked in progress, else the first one not started."""
        first_todo = None
        for phase in self.phases:
            marks = phase._pending_marks()
            # only a phase holding such a mark is built
            if marks is not None and b"~" not in marks and (first_todo is not None or b" " not in marks):
                continue
            for task in phase.items():
                if task.mark == "~":
                    return task
                if first_todo is None and task.mark == " ":
                    first_todo = task
        return first_todo

    def by_key(self, key: TaskKey) -> Task | None:
        for phase in self.phases:  # its own phase first (one phase built)
            if phase.title == key.phase_title:
                for task in phase.items():
                    if task.key == key:
                        return task
        for task in self.items():
            if task.key == key:
                return task
        # The phase was renamed meanwhile: accept the task if its path is unique.
        same = [t for t in self.items() if t.key.path == key.path and t.key.ordinal == key.ordinal
                and t.key.siblings == key.siblings]
        return same[0] if len(same) == 1 else None

    def find(self, ref: str) -> Task:
        """A task by number (``2.3``, ``2.3.1``) or by unique case-insensitive text."""
        ref = ref.strip()
        if not ref:
            raise TaskNotFound("no task given", path=self.path, hint="name a task by number like 2.3 or by its text")
        if _NUMBER_REF_RE.match(ref):
            # A task's number starts with its phase's: look there first (one phase built).
            lead = ref.split(".", 1)[0]
            for phase in self.phases:
                if str(phase.number) == lead:
                    for task in phase.items():
                        if task.number == ref:
                            return task
            for task in self.items():
                if task.number == ref:
                    return task
            raise TaskNotFound(
                f"plan has no task {ref}", path=self.path,
                hint="`conductor next` or `conductor status` shows the numbering",
            )
        wanted = _fold(ref)
        items = list(self.items())
        for matcher in (
            lambda t: _fold(t.name) == wanted or _fold(_strip_task_prefix(t.name)) == wanted,
            lambda t: wanted in _fold(t.name),
        ):
            hits = [t for t in items if matcher(t)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                listing = "; ".join(f"{t.number} {t.name}" for t in hits[:6])
                raise TaskNotFound(
                    f"'{ref}' matches {len(hits)} tasks: {listing}", path=self.path,
                    hint="use the task number or more of its text",
                )
        raise TaskNotFound(f"no task matches '{ref}'", path=self.path,
                           hint="`conductor next` lists the open tasks with their numbers")

    def to_json(self) -> dict:
        return {"path": str(self.path), **self.counts(), "phases": [p.to_json() for p in self.phases]}


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def _strip_task_prefix(name: str) -> str:
    return re.sub(r"^task\s*:\s*", "", name, flags=re.IGNORECASE)


def plain_text(inline_token) -> str:
    """The text of an inline token without Markdown emphasis, code ticks or links."""
    parts = []
    for child in inline_token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return " ".join("".join(parts).split())


def clean_name(text: str) -> tuple[str, str | None, str | None]:
    """(name, trailing sha, checkpoint sha) from a heading's or task's plain text."""
    checkpoint = None
    match = _CHECKPOINT_RE.search(text)
    if match:
        checkpoint = match.group(1)
        text = (text[: match.start()] + text[match.end():]).strip()
    text = _VERIFIED_RE.sub("", text).strip()
    sha = None
    note = _sha_note(text)
    match = _SHA_RE.search(text)
    if note is None and match and match.start() > 0:
        sha = match.group(1)
        text = text[: match.start()].rstrip()
        note = _sha_note(text)  # ``… (refactored in e9d5635) (abc1234)``: a SHA after a note
    if note is not None:
        text, noted = note
        match = _SHA_RE.search(text)
        if match and match.start() > 0:  # the SHA the note comments on
            noted = match.group(1)
            text = text[: match.start()].rstrip()
        sha = sha or noted
    text = _LEADING_SYMBOLS_RE.sub("", text).strip()
    return text, sha, checkpoint


def _sha_note(text: str) -> tuple[str, str] | None:
    """(text before it, its first SHA) when ``text`` ends in a parenthesis that is a commit
    note: it holds a SHA and is more than one SHA (a lone ``(abc1234)`` is the task's SHA).
    A parenthesis without a SHA (``Add index (customer_id, created_at)``) is part of the name."""
    match = _TRAILING_PAREN_RE.search(text)
    if match is None or match.start() == 0:
        return None
    inner = match.group(1).strip()
    shas = _SHA_TOKEN_RE.findall(inner)
    if not shas or (len(shas) == 1 and inner == shas[0]):
        return None
    return text[: match.start()].rstrip(), shas[0]


def decode_markdown(data: bytes, path: Path) -> str:
    """UTF-8 text of a Markdown file (BOM removed); invalid bytes are an error with a line."""
    body = data[3:] if data.startswith(_BOM) else data
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = len(_NEWLINE_RE.findall(body[: exc.start])) + 1  # LF, CRLF or lone CR
        raise WorkspaceFormatError(
            f"not valid UTF-8 (byte 0x{body[exc.start]:02x})", path=path, line=line,
            hint="save the file as UTF-8",
        ) from exc


def _line_starts(body: bytes) -> list[int]:
    starts = [0]
    starts.extend(m.end() for m in _NEWLINE_RE.finditer(body))
    return starts


def parse_plan(data: bytes, path: Path | str = "plan.md") -> Plan:
    """Parse plan.md bytes into phases and tasks with the byte offset of each mark."""
    path = Path(path)
    text = decode_markdown(data, path)
    bom = len(_BOM) if data.startswith(_BOM) else 0
    body = data[bom:]
    starts = _line_starts(body)
    tokens = _MD.parse(text)

    phases: list[Phase] = []
    loose: list[Task] = []
    current: Phase | None = None
    # Stack of open list items: each entry is the Task it carries, or None.
    stack: list[Task | None] = []
    seen: dict[tuple, int] = {}
    checkbox_headings: list[tuple[int, str]] = []

    def line_bytes(index: int) -> bytes:
        end = starts[index + 1] if index + 1 < len(starts) else len(body)
        return body[starts[index]:end]

    for i, token in enumerate(tokens):
        if token.type == "heading_open" and not stack:
            inline = tokens[i + 1]
            level = int(token.tag[1])
            title, _sha, checkpoint = clean_name(plain_text(inline))
            lineno = token.map[0] + 1 if token.map else 0
            if _CHECKBOX_TEXT_RE.match(inline.content):
                checkbox_headings.append((lineno, " ".join(inline.content.split())))
            if level <= 3 and _PHASE_RE.match(title):
                numbered = _PHASE_NUMBER_RE.match(title)
                current = Phase(number=len(phases) + 1, title=title, level=level,
                                line=lineno, checkpoint=checkpoint, index=len(phases),
                                heading_number=int(numbered.group(1)) if numbered else None)
                phases.append(current)
            elif current is not None and (level <= current.level or _CLOSING_RE.match(title)):
                current = None
        elif token.type == "list_item_open":
            task = None
            inline = _first_inline(tokens, i)
            if token.map and inline is not None and inline.map and inline.map[0] == token.map[0]:
                match = _CHECKBOX_TEXT_RE.match(inline.content)
                if match:
                    task = _make_task(token, inline, match.group(1), line_bytes(token.map[0]),
                                      starts, bom)
            if task is not None:
                parent = next((t for t in reversed(stack) if t is not None), None)
                phase_title = current.title if current else ""
                if parent is not None:
                    task.depth = parent.depth + 1
                    task.phase_number = parent.phase_number
                    task.phase_index = parent.phase_index
                    path_ = parent.key.path + (_fold(task.name),)
                    parent.children.append(task)
                    task.number = f"{parent.number}.{len(parent.children)}"
                else:
                    task.depth = 0
                    path_ = (_fold(task.name),)
                    if current is not None:
                        current.tasks.append(task)
                        task.phase_number = current.number
                        task.phase_index = current.index
                        task.number = f"{current.number}.{len(current.tasks)}"
                    else:
                        loose.append(task)
                        task.number = f"0.{len(loose)}"
                ident = (phase_title, path_)
                ordinal = seen.get(ident, 0)
                seen[ident] = ordinal + 1
                task.key = TaskKey(phase_title, path_, ordinal)
            stack.append(task)
        elif token.type == "list_item_close":
            stack.pop()

    every = [i for phase in phases for i in phase.items()] + [i for t in loose for i in t.walk()]
    for item in every:
        item.key = replace(item.key, siblings=seen[(item.key.phase_title, item.key.path)])

    if not phases and loose:
        # A plan with tasks but no phase headings: treat it as one phase.
        implicit = Phase(number=1, title="Plan", level=1, line=1, checkpoint=None, implicit=True)
        for index, task in enumerate(loose, start=1):
            _renumber(task, f"1.{index}", 1, 0)
        implicit.tasks = loose
        phases, loose = [implicit], []
    by_heading = _numbered_by_heading(phases)
    if by_heading:
        for phase in phases:
            phase.number = phase.heading_number
            for index, task in enumerate(phase.tasks, start=1):
                _renumber(task, f"{phase.number}.{index}", phase.number, phase.index)
    return Plan(path=path, phases=phases, loose_tasks=loose, data=data,
                numbered_by_heading=by_heading, checkbox_headings=checkbox_headings)


def _numbered_by_heading(phases: list[Phase]) -> bool:
    """Whether the headings number the phases consistently: each has a number and the numbers
    increase (``Phase 0``, ``Phase 1``…). Otherwise (a heading without a number, a repeated or
    decreasing one) phases are numbered by position, from 1."""
    numbers = [p.heading_number for p in phases]
    return (bool(numbers) and None not in numbers
            and all(a < b for a, b in zip(numbers, numbers[1:], strict=False)))


def _renumber(task: Task, number: str, phase_number: int, phase_index: int | None) -> None:
    task.number = number
    task.phase_number = phase_number
    task.phase_index = phase_index
    for index, child in enumerate(task.children, start=1):
        _renumber(child, f"{number}.{index}", phase_number, phase_index)


def _first_inline(tokens, index):
    # The inline token of a list item's first paragraph, if the item starts with one.
    for token in tokens[index + 1: index + 3]:
        if token.type == "inline":
            return token
    return None


def _make_task(item_token, inline, mark: str, raw_line: bytes, starts, bom) -> Task | None:
    line_text = raw_line.decode("utf-8")
    match = _CHECKBOX_LINE_RE.match(line_text)
    if not match or match.group(1) != mark:
        return None  # e.g. a list item inside a blockquote or a second marker on the line
    line_index = item_token.map[0]
    offset = bom + starts[line_index] + len(line_text[: match.start(1)].encode("utf-8"))
    raw = plain_text(inline)
    raw = _CHECKBOX_TEXT_RE.sub("", raw, count=1) if _CHECKBOX_TEXT_RE.match(raw) else raw[3:].lstrip()
    name, sha, _checkpoint = clean_name(raw)
    last_line = inline.map[1] if inline.map else line_index + 1
    return Task(number="", name=name, mark=mark, line=line_index + 1, mark_offset=offset,
                depth=0, phase_number=0, key=TaskKey("", (), 0), sha=sha, last_line=last_line)


def read_plan(path: Path) -> Plan:
    """Read and parse a plan file (remembering which version of it was read)."""
    path = Path(path)
    try:
        data, identity = read_with_identity(path)
    except FileNotFoundError as exc:
        raise WorkspaceFormatError("plan.md is missing", path=path,
                                   hint="write the component's plan first") from exc
    plan = cached_parse(data, path)
    plan.identity = identity
    return plan


# -- the parse cache --------------------------------------------------------------------------
#
# markdown-it re-tokenising a 5,000-task plan costs ~0.4 s, and the CLI is a new process on
# every tick. So the structure found for a file's bytes is kept, per plan path, in this
# process and in this user's private temp folder (next to the locks), together with the
# bytes it was found for. It is used only for exactly those bytes, or for bytes that differ
# from them in checkbox marks alone (a tick, here or in an editor): a mark is one byte in
# ``[ ]`` and never changes the structure, so the marks are simply read from the new bytes.
# Anything else is parsed again. The cache never replaces reading the file: the lock, the
# re-read and the identity check of a write are unchanged.

#: plans smaller than this parse in a millisecond or two: no file in the temp folder for them
_DISK_CACHE_MIN_BYTES = 2 * 1024
#: larger plans are not kept (neither on disk nor in memory)
_CACHE_MAX_BYTES = 32 * 1024 * 1024
_MEMORY_CACHE_ENTRIES = 512
_MEMORY_CACHE_BYTES = 96 * 1024 * 1024
# A link reference definition named like a mark (``[x]: /url``) turns ``[x]`` into a link:
# there a mark is not structure-neutral, so such plans are always parsed again.
_MARK_LINK_DEF_RE = re.compile(rb"\[[ xX~!-]\]:")
#: path key → (bytes, structure, mark offsets, the marshalled structure or None)
_memory_cache: OrderedDict[str, tuple[bytes, tuple, tuple[int, ...], bytes | None]] = OrderedDict()
_cache_version: str | None = None


def _parser_version() -> str:
    """What the cached structure depends on: this module's source (the parser), markdown-it's
    version and the marshal format of this Python; a change of any is a different cache."""
    global _cache_version
    if _cache_version is None:
        digest = hashlib.sha256()
        with contextlib.suppress(OSError):
            digest.update(Path(__file__).read_bytes())
        digest.update(str(getattr(markdown_it, "__version__", "")).encode())
        digest.update(f"{sys.version_info[:2]}/{marshal.version}".encode())
        _cache_version = digest.hexdigest()[:24]
    return _cache_version


def _cache_key(path: Path) -> str:
    real = os.path.realpath(path)
    return hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _cache_file(key: str) -> Path:
    return lock_dir() / "plan-cache" / f"{key}.bin"


def _task_tuple(task: Task) -> tuple:
    k = task.key
    return (task.number, task.name, task.line, task.mark_offset, task.depth, task.phase_number,
            k.phase_title, k.path, k.ordinal, k.siblings, task.last_line, task.sha,
            task.phase_index, tuple(_task_tuple(c) for c in task.children))


def _plan_tuple(plan: Plan) -> tuple:
    phases = tuple((p.number, p.title, p.level, p.line, p.checkpoint, p.implicit, p.index,
                    p.heading_number, tuple(_task_tuple(t) for t in p.tasks)) for p in plan.phases)
    return (phases, tuple(_task_tuple(t) for t in plan.loose_tasks), plan.numbered_by_heading,
            tuple(plan.checkbox_headings))


_new = object.__new__
_set = object.__setattr__  # TaskKey is frozen
_MARK_OF_BYTE = {ord(mark): mark for mark in MARKS}


def _task_from(row: tuple, data: bytes) -> Task:
    (number, name, line, offset, depth, phase_number, k_title, k_path, k_ordinal, k_siblings,
     last_line, sha, phase_index, children) = row
    mark = _MARK_OF_BYTE.get(data[offset])  # read from the bytes: a tick since the parse is seen
    if mark is None or data[offset - 1] != 0x5B or data[offset + 1] != 0x5D:  # [ and ]
        raise ValueError("cached mark offset does not hold a mark")
    # Built without the dataclass __init__s (the same fields): thousands of tasks are made
    # per read, and this is the cost of a cache hit.
    key = _new(TaskKey)
    _set(key, "__dict__", {"phase_title": k_title, "path": k_path, "ordinal": k_ordinal,
                           "siblings": k_siblings})
    task = _new(Task)
    task.__dict__ = {"number": number, "name": name, "mark": mark, "line": line,
                     "mark_offset": offset, "depth": depth, "phase_number": phase_number,
                     "key": key, "last_line": last_line, "sha": sha,
                     "children": [_task_from(c, data) for c in children] if children else [],
                     "phase_index": phase_index}
    return task


def _rows_marks(rows: tuple, data: bytes) -> bytes:
    """The mark bytes of ``rows`` and their sub-tasks, in document order."""
    found = bytearray()
    stack = list(reversed(rows))
    while stack:
        row = stack.pop()
        found.append(data[row[3]])
        if row[13]:
            stack.extend(reversed(row[13]))
    return bytes(found)


_CLOSED_MARK_BYTES = "".join(sorted(_CLOSED_MARKS)).encode("ascii")


def _plan_from(struct: tuple, data: bytes, path: Path, offsets: tuple[int, ...]) -> Plan:
    # Every cached mark must still be a mark (the brackets around it are unchanged: the
    # bytes differ from the cached ones only at these offsets); the tasks are built per
    # phase on first use.
    if any(data[o] not in _MARK_OF_BYTE for o in offsets):
        raise ValueError("cached mark offset does not hold a mark")
    phases = []
    for number, title, level, line, checkpoint, implicit, index, heading_number, tasks in struct[0]:
        phase = _new(Phase)
        phase.__dict__ = {"number": number, "title": title, "level": level, "line": line,
                          "checkpoint": checkpoint, "implicit": implicit, "index": index,
                          "heading_number": heading_number, "_lazy": (tasks, data)}
        phases.append(phase)
    _phase_rows, loose_rows, by_heading, checkbox_headings = struct
    return Plan(path=path, phases=phases, loose_tasks=[_task_from(t, data) for t in loose_rows],
                data=data, numbered_by_heading=by_heading,
                checkbox_headings=[tuple(h) for h in checkbox_headings])


def _mark_offsets(plan: Plan) -> tuple[int, ...]:
    every = [t for p in plan.phases for t in p.items()] + [i for t in plan.loose_tasks for i in t.walk()]
    return tuple(sorted(t.mark_offset for t in every))


def _same_but_marks(old: bytes, new: bytes, offsets: tuple[int, ...]) -> bool:
    """Whether ``new`` differs from ``old`` at most in the bytes at ``offsets``."""
    if len(old) != len(new) or _MARK_LINK_DEF_RE.search(new):
        return False
    start = 0
    for offset in offsets:
        if old[start:offset] != new[start:offset]:
            return False
        start = offset + 1
    return old[start:] == new[start:]


def _remember(key: str, data: bytes, struct: tuple, offsets: tuple[int, ...],
              blob: bytes | None = None, *, disk: bool) -> None:
    if len(data) > _CACHE_MAX_BYTES:
        return
    if disk and len(data) >= _DISK_CACHE_MIN_BYTES:
        # The structure is marshalled once and reused after every tick (marks are not in it).
        blob = blob if blob is not None else marshal.dumps((struct, offsets))
        # Best effort: a cache that cannot be written is only slower.
        with contextlib.suppress(OSError, ValueError, ConductorError):
            target = _cache_file(key)
            target.parent.mkdir(mode=0o700, exist_ok=True)
            # Not durable: a cache lost or torn by a crash is detected when read (and only slower).
            atomic_write_bytes(target, marshal.dumps((_parser_version(), data, blob)), durable=False)
    _memory_cache[key] = (data, struct, offsets, blob)
    _memory_cache.move_to_end(key)
    total = sum(len(entry[0]) for entry in _memory_cache.values())
    while len(_memory_cache) > _MEMORY_CACHE_ENTRIES or total > _MEMORY_CACHE_BYTES:
        _old_key, old_entry = _memory_cache.popitem(last=False)
        total -= len(old_entry[0])


def _recall(key: str) -> tuple[bytes, tuple, tuple[int, ...], bytes | None] | None:
    entry = _memory_cache.get(key)
    if entry is not None:
        _memory_cache.move_to_end(key)
        return entry
    try:
        version, data, blob = marshal.loads(_cache_file(key).read_bytes())
        if version != _parser_version() or not isinstance(data, bytes):
            return None
        struct, offsets = marshal.loads(blob)
    except (OSError, ValueError, EOFError, TypeError, ConductorError):
        return None
    return data, struct, offsets, blob


def cached_parse(data: bytes, path: Path | str = "plan.md") -> Plan:
    """:func:`parse_plan` of ``data``, reusing the structure found earlier for the same file
    when ``data`` is the same or differs from it in checkbox marks only (a fresh ``Plan``
    every time: callers may change it)."""
    path = Path(path)
    if len(data) > _CACHE_MAX_BYTES:
        return parse_plan(data, path)
    key = _cache_key(path)
    entry = _recall(key)
    if entry is not None:
        old, struct, offsets, blob = entry
        if old == data or _same_but_marks(old, data, offsets):
            try:
                plan = _plan_from(struct, data, path, offsets)
            except (ValueError, TypeError, IndexError):
                plan = None  # a damaged cache file: parse
            if plan is not None:
                if old != data or key not in _memory_cache:
                    _remember(key, data, struct, offsets, blob, disk=old != data)
                return plan
    plan = parse_plan(data, path)
    remember_plan(plan)
    return plan


def remember_plan(plan: Plan) -> None:
    """Keep ``plan`` (parsed from, or ticked to, ``plan.data``) as the structure of its file."""
    if len(plan.data) <= _CACHE_MAX_BYTES:
        _remember(_cache_key(plan.path), plan.data, _plan_tuple(plan), _mark_offsets(plan), disk=True)


def _remember_tick(plan: Plan, old_data: bytes) -> None:
    """After a one-byte tick of ``old_data`` into ``plan.data``: the structure kept for the
    old bytes is the structure of the new ones (marks are not part of it)."""
    key = _cache_key(plan.path)
    entry = _memory_cache.get(key)
    if entry is not None and entry[0] == old_data:
        _remember(key, plan.data, entry[1], entry[2], entry[3], disk=True)
    else:
        remember_plan(plan)


def set_mark_bytes(data: bytes, task: Task, state: str) -> bytes:
    """``data`` with the task's mark replaced by the one for ``state`` (one byte)."""
    mark = STATE_MARK[state].encode("ascii")
    offset = task.mark_offset
    if data[offset:offset + 1].decode("ascii", "replace") not in MARKS:
        raise WorkspaceFormatError(f"task {task.number} mark is not where it was parsed",
                                   line=task.line)
    return data[:offset] + mark + data[offset + 1:]


def write_task_state(path: Path, key: TaskKey, state: str,
                     plan: Plan | None = None) -> tuple[Plan, Task, str]:
    """Set a task's state in plan.md, writing atomically; the caller holds the lock.

    ``plan`` is the plan as the caller read it under that lock (re-read here when not
    given), so an edit made before the lock was taken is never overwritten. Right before
    the rename the file is checked to still be that version: when an editor saved it
    meanwhile, the new bytes are read, the task found again by its key and the one-byte
    tick applied to them. Returns the plan, the task and the state it had before.
    """
    quick = False
    for _attempt in range(WRITE_ATTEMPTS):
        if plan is None or plan.identity is None:
            plan, quick = read_plan(path), False
        task = plan.by_key(key)
        if task is None:
            raise TaskNotFound(
                "the task is no longer in the plan (the file changed meanwhile)", path=path,
                hint="re-run the command; it re-reads plan.md",
            )
        before = task.state
        if before == state:
            return (cached_parse(plan.data, path) if quick else plan), task, before
        new_data = set_mark_bytes(plan.data, task, state)
        try:
            write_checked(path, new_data, plan.identity)
        except FileChanged:
            retry_pause()
            plan, quick = _reread_above(path, plan, task)
            continue
        if quick:  # parsed again now that the file is written, outside the race window
            plan = cached_parse(new_data, path)
            return plan, plan.by_key(key) or task, before
        # A tick changes one byte and no offsets: the plan is updated in place rather than
        # parsed again (its identity is unknown now: a later write re-reads it first).
        task.mark = STATE_MARK[state]
        old_data, plan.data = plan.data, new_data
        for phase in plan.phases:  # phases not built yet read their marks from the new bytes
            lazy = phase._pending_rows()
            if lazy is not None:
                marks = phase.__dict__.get("_marks")
                phase.__dict__["_lazy"] = (lazy[0], new_data)
                if marks is not None and marks[0] is lazy[1]:
                    # the one changed byte is the ticked task's, in a phase that is built
                    phase.__dict__["_marks"] = (new_data, marks[1])
        plan.identity = None
        _remember_tick(plan, old_data)  # the next command (a new CLI process too) starts from it
        return plan, task, before
    raise kept_changing(path)


def _reread_above(path: Path, plan: Plan, task: Task) -> tuple[Plan | None, bool]:
    """plan.md read again after another writer replaced it. When nothing changed up to the
    end of the task's line (an editor's save below it), the parse still locates the task
    and is reused, so the next attempt's window (read, write, rename) stays short enough to
    fit between the saves of an editor saving every few milliseconds; else (None) the plan
    is read and parsed again."""
    try:
        data, identity = read_with_identity(path)
    except FileNotFoundError:
        return None, False
    end = plan.data.find(b"\n", task.mark_offset)
    end = len(plan.data) if end < 0 else end + 1
    if data[:end] != plan.data[:end]:
        return None, False
    return replace(plan, data=data, identity=identity), True


def _line_span(data: bytes, line: int) -> tuple[int, int]:
    """Byte span of a 1-based line's content (without its line ending)."""
    bom = len(_BOM) if data.startswith(_BOM) else 0
    starts = _line_starts(data[bom:])
    start = bom + starts[line - 1]
    end = bom + starts[line] if line < len(starts) else len(data)
    while end > start and data[end - 1:end] in (b"\n", b"\r"):
        end -= 1
    return start, end


def annotate_phase_bytes(data: bytes, phase: Phase, annotation: str) -> bytes:
    """``data`` with ``annotation`` (``[checkpoint: abc1234]``) at the end of the phase's
    heading, replacing an earlier checkpoint/verified annotation; only that line changes."""
    start, end = _line_span(data, phase.line)
    text = data[start:end].decode("utf-8")
    stripped = _VERIFIED_RE.sub("", _CHECKPOINT_RE.sub("", text)).rstrip()
    closing = re.search(r"\s+#+\s*$", stripped)  # keep an ATX closing sequence last
    if closing:
        stripped = stripped[: closing.start()] + f" {annotation}" + stripped[closing.start():]
    else:
        stripped = f"{stripped} {annotation}"
    trailing = text[len(text.rstrip()):]
    return data[:start] + (stripped + trailing).encode("utf-8") + data[end:]


def unannotate_phase_bytes(data: bytes, phase: Phase) -> bytes:
    """``data`` without the phase heading's checkpoint/verified annotation (``revert``);
    only that line changes, and not at all when it has none."""
    start, end = _line_span(data, phase.line)
    text = data[start:end].decode("utf-8")
    stripped = _VERIFIED_RE.sub("", _CHECKPOINT_RE.sub("", text))
    if stripped == text:
        return data
    trailing = text[len(text.rstrip()):]
    return data[:start] + (stripped.rstrip() + trailing).encode("utf-8") + data[end:]


def set_task_sha_bytes(data: bytes, task: Task, sha: str) -> bytes:
    """``data`` with the task's trailing commit SHA set to ``sha`` (``(abc1234)``), at the
    end of the task's text (its last line when the text wraps)."""
    start, end = _line_span(data, task.last_line or task.line)
    text = data[start:end].decode("utf-8")
    body = text.rstrip()
    match = _SHA_RE.search(body)
    if match and task.sha and match.group(1) == task.sha:
        body = body[: match.start()].rstrip()
    trailing = text[len(text.rstrip()):]
    return data[:start] + f"{body} ({sha}){trailing}".encode() + data[end:]


def write_plan_edit(path: Path, edit, *, phase_number: int | None = None,
                    key: TaskKey | None = None) -> Plan:
    """Re-read plan.md, apply ``edit(data, phase_or_task)`` to a phase (by number) or a
    task (by key) and write atomically, again on the new bytes when the file changed
    meanwhile (an editor's save). The caller holds the lock."""
    for _attempt in range(WRITE_ATTEMPTS):
        plan = read_plan(path)
        target = plan.phase(phase_number) if phase_number is not None else plan.by_key(key)
        if target is None:
            raise TaskNotFound("the task is no longer in the plan (the file changed meanwhile)",
                               path=path, hint="re-run the command; it re-reads plan.md")
        new_data = edit(plan.data, target)
        if new_data == plan.data:
            return plan
        try:
            write_checked(path, new_data, plan.identity)
        except FileChanged:
            retry_pause()
            continue
        return cached_parse(new_data, path)
    raise kept_changing(path)
