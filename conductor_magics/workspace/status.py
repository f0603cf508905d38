"""The status vocabulary and the transitions between statuses."""

from __future__ import annotations

import re

PLANNING = "Planning"
IN_PROGRESS = "In Progress"
COMPLETED = "Completed"
BLOCKED = "Blocked"
CANCELLED = "Cancelled"
REVERTED = "Reverted"

STATUSES = (PLANNING, IN_PROGRESS, COMPLETED, BLOCKED, CANCELLED, REVERTED)

#: Checkbox marks some tools write for a status (tracks.md list items, and Status cells like
#: ``| [x] | infra-setup_20260216 | … |``). Reverted has no mark.
MARK_STATUS = {" ": PLANNING, "~": IN_PROGRESS, "x": COMPLETED, "X": COMPLETED,
               "!": BLOCKED, "-": CANCELLED}
STATUS_MARK = {PLANNING: " ", IN_PROGRESS: "~", COMPLETED: "x", BLOCKED: "!", CANCELLED: "-"}
# A cell that is nothing but a checkbox (after emphasis and code ticks are removed).
_CHECKBOX_CELL_RE = re.compile(r"^\[([ xX~!-])\]$")

_ALIASES = {
    "planning": PLANNING, "planned": PLANNING, "new": PLANNING, "pending": PLANNING,
    "todo": PLANNING, "not started": PLANNING,
    "in progress": IN_PROGRESS, "inprogress": IN_PROGRESS, "active": IN_PROGRESS,
    "started": IN_PROGRESS, "wip": IN_PROGRESS,
    "completed": COMPLETED, "complete": COMPLETED, "done": COMPLETED, "finished": COMPLETED,
    "blocked": BLOCKED, "on hold": BLOCKED,
    "cancelled": CANCELLED, "canceled": CANCELLED, "abandoned": CANCELLED,
    "reverted": REVERTED, "rolled back": REVERTED,
}

# Longest aliases first so "in progress" wins over "progress"-like fragments.
_WORD_RE = re.compile(
    r"(?<![A-Za-z])("
    + "|".join(
        sorted((a.replace(" ", r"[\s_-]*") for a in _ALIASES), key=len, reverse=True)
    )
    + r")(?![A-Za-z])",
    re.IGNORECASE,
)

#: Allowed transitions (same status is always a no-op).
TRANSITIONS = {
    # Planning → Completed happens only through `complete`, which checks every gate first
    # (e.g. a plan whose phases all carry [checkpoint: …] from another conductor tool).
    PLANNING: {IN_PROGRESS, BLOCKED, CANCELLED, COMPLETED},
    IN_PROGRESS: {COMPLETED, BLOCKED, CANCELLED, REVERTED, PLANNING},
    BLOCKED: {IN_PROGRESS, PLANNING, CANCELLED},
    COMPLETED: {REVERTED, IN_PROGRESS},
    CANCELLED: {PLANNING},
    REVERTED: {PLANNING, IN_PROGRESS},
}


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[-_]", " ", text).casefold().split())


def parse_status(text: str | None) -> str | None:
    """The canonical status a cell or value means, or None if it is not one.

    Case, ``-``/``_`` and decoration (``**In Progress**``, ``🟡 in_progress``) are ignored.
    """
    if not text:
        return None
    norm = _norm(text)
    if norm in _ALIASES:
        return _ALIASES[norm]
    match = _WORD_RE.search(text)
    if match:
        return _ALIASES.get(_norm(match.group(1)))
    return None


def parse_checkbox(text: str | None) -> str | None:
    """The status a lone checkbox mark (``[x]``, ``[ ]``, ``[~]``, ``[!]``, ``[-]``) means."""
    match = _CHECKBOX_CELL_RE.match(text or "")
    return MARK_STATUS[match.group(1)] if match else None


def find_status_word(text: str) -> tuple[int, int] | None:
    """Span of the status word inside a decorated cell, for an in-place edit."""
    match = _WORD_RE.search(text)
    return match.span(1) if match else None


def styled(status: str, like: str | None, lower_joiner: str = " ") -> str:
    """``status`` written in the style of an existing value (``in_progress``, ``IN PROGRESS``…).

    ``lower_joiner`` joins words when ``like`` is one lower-case word (``new``) that does not
    show how words are joined: ``_`` for JSON values (Gemini style), a space in tables.
    """
    if not like:
        return status
    letters = [c for c in like if c.isalpha()]
    if "_" in like or (lower_joiner == "_" and like.islower() and " " not in like.strip()):
        word = status.lower().replace(" ", "_")
    elif "-" in like and " " not in like.strip():
        word = status.lower().replace(" ", "-")
    elif letters and all(c.islower() for c in letters):
        word = status.lower()
    elif letters and all(c.isupper() for c in letters) and len(letters) > 1:
        word = status.upper()
    else:
        word = status
    return word


def can_transition(old: str | None, new: str) -> bool:
    if old is None or old == new:
        return True
    return new in TRANSITIONS.get(old, set())
