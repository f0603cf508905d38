"""workflow.md preferences as a typed object.

Read leniently: ``- **Testing approach:** TDD`` style key lines win; otherwise
keywords anywhere in the document decide; otherwise the defaults hold.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

SCHEMA_FIRST, TDD = "schema-first", "tdd"
VERSIONED, AUTOMATIC = "versioned", "automatic"
PER_TASK, PER_PHASE, NO_COMMITS = "per-task", "per-phase", "none"
#: pre-migration backups: always, never, or on engines without transactional DDL
ALWAYS, NEVER, AUTO = "always", "never", "auto"

_KEY_LINE_RE = re.compile(r"^\s*(?:[-*+]\s+)?(?:\*\*|__)?([A-Za-z][A-Za-z \-/]{2,40}?)(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*(.+?)\s*$")


@dataclass
class WorkflowPreferences:
    testing: str = SCHEMA_FIRST
    migrations: str = VERSIONED
    commits: str = NO_COMMITS
    conventional_commits: bool = True
    #: extra paths committed with a component's files (``- **Commit paths:** src/db/, tests/db/``),
    #: relative to the project folder (the one holding storage-conductor/)
    commit_paths: list[str] = field(default_factory=list)
    #: ``- **Pre-migration backups:** always | never | auto`` (auto: engines whose DDL is
    #: not transactional, where a failed migration cannot be rolled back)
    pre_migration_backup: str = AUTO
    #: field → line number in workflow.md it was read from
    source_lines: dict[str, int] = field(default_factory=dict)

    @property
    def tdd(self) -> bool:
        return self.testing == TDD

    def to_json(self) -> dict:
        return asdict(self)


def _testing(value: str) -> str | None:
    v = value.lower()
    if "tdd" in v or "test-driven" in v or "test driven" in v or "test-first" in v:
        return TDD
    if "schema" in v:
        return SCHEMA_FIRST
    return None


def _migrations(value: str) -> str | None:
    v = value.lower()
    if "automatic" in v or "auto" in v or "create_all" in v or "sync" in v:
        return AUTOMATIC
    if "version" in v or "alembic" in v or "revision" in v:
        return VERSIONED
    return None


def _commits(value: str) -> str | None:
    v = value.lower()
    if re.search(r"\b(no|none|never|manual|off|disabled)\b", v):
        return NO_COMMITS
    if re.search(r"(per|each|every|after)\s+(each\s+|every\s+)?phase", v):
        return PER_PHASE
    if re.search(r"(per|each|every|after)\s+(each\s+|every\s+)?task", v):
        return PER_TASK
    return None


def _conventional(value: str) -> bool | None:
    v = value.lower()
    if "conventional" in v:
        return not re.search(r"\b(no|not|without)\b[^.]*conventional", v)
    if "free" in v or "plain" in v:
        return False
    return None


def _paths(value: str) -> list[str] | None:
    """``src/db/, `tests/db/`; docs/schema.md`` → the listed paths (``none`` → empty)."""
    if re.fullmatch(r"\(?\s*(none|no|nothing|-)\s*\)?\.?", value.strip(), re.IGNORECASE):
        return []
    paths = []
    for part in re.split(r"[,;]", value):
        part = part.strip().strip("`'\"").strip()
        if part and part not in paths:
            paths.append(part)
    return paths or None


def _backups(value: str) -> str | None:
    v = value.lower()
    if re.search(r"\b(no|none|never|off|disabled?)\b", v):
        return NEVER
    if re.search(r"\b(auto|default)\b", v):
        return AUTO
    if re.search(r"\b(yes|always|on|every|each|enabled?|required)\b", v):
        return ALWAYS
    return None


# Order matters: "Pre-migration backups" must not be read as the migrations key.
_KEYS = {
    "pre_migration_backup": (re.compile(r"backup", re.I), _backups),
    "testing": (re.compile(r"test|tdd|approach", re.I), _testing),
    "migrations": (re.compile(r"migration", re.I), _migrations),
    "commits": (re.compile(r"commit\s*(strategy|frequency|policy|cadence)?$|^commits?$", re.I), _commits),
    "conventional_commits": (re.compile(r"commit\s*(message|format|style|convention)", re.I), _conventional),
    "commit_paths": (re.compile(r"commit(ted)?\s*(paths?|files|folders?|directories|includes?)", re.I), _paths),
}


def parse_workflow(text: str | None) -> WorkflowPreferences:
    """Preferences from workflow.md text (defaults when it is missing)."""
    prefs = WorkflowPreferences()
    if not text:
        return prefs
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        match = _KEY_LINE_RE.match(line)
        if not match:
            continue
        key, value = match.group(1).strip(), match.group(2).strip("*_ ")
        for name, (key_re, reader) in _KEYS.items():
            if name in prefs.source_lines or not key_re.search(key):
                continue
            found = reader(value)
            if found is not None:
                setattr(prefs, name, found)
                prefs.source_lines[name] = number
                break
    # Keyword fallbacks for prose-only workflow files.
    lowered = text.lower()
    if "testing" not in prefs.source_lines and _testing(lowered) == TDD and re.search(r"\btdd\b|test-driven", lowered):
        prefs.testing = TDD
    if "commits" not in prefs.source_lines:
        found = _commits_from_prose(lowered)
        if found:
            prefs.commits = found
    if "conventional_commits" not in prefs.source_lines and "conventional commit" in lowered:
        prefs.conventional_commits = True
    return prefs


def _commits_from_prose(text: str) -> str | None:
    if re.search(r"commit (the changes )?(after|for) (each|every) task", text):
        return PER_TASK
    if re.search(r"commit (the changes )?(after|for|at the end of) (each|every) phase", text):
        return PER_PHASE
    return None
