"""One base exception for everything the tool reports to a user.

Each error says what failed, where (file:line, component, phase) and what to
do next. Edges (CLI, magics) translate them once: the CLI exits with
``exit_code``; a magic shows ``str(error)`` on one line without a traceback.

A hint that names a next action says it with :func:`command` and :func:`option`, never
in an edge's own words: the text comes out in the CLI's words (what the CLI and
``--json`` show), and the notebook edge rewrites it once with :func:`notebook_words`.
"""

from __future__ import annotations

import re
from pathlib import Path


class ConductorError(Exception):
    """Base of every error the tool raises on purpose.

    ``exit_code`` is what the CLI exits with: 2 for bad input (the default),
    1 for a check that ran and failed.
    """

    exit_code = 2

    def __init__(self, message: str, *, path: Path | str | None = None,
                 line: int | None = None, hint: str | None = None):
        self.message = message
        self.path = Path(path) if path is not None else None
        self.line = line
        self.hint = hint
        super().__init__(str(self))

    @property
    def location(self) -> str | None:
        """``file:line`` (or just the file) this error is about, if any."""
        if self.path is None:
            return None
        return f"{self.path}:{self.line}" if self.line else str(self.path)

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        if self.hint:
            text += f"; {self.hint}"
        return text

    def to_json(self) -> dict:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "file": str(self.path) if self.path else None,
            "line": self.line,
            "hint": self.hint,
        }


class WorkspaceNotFound(ConductorError):
    """No ``storage-conductor/`` folder where one was looked for."""


class WorkspaceFormatError(ConductorError):
    """A workspace file cannot be read as what it should be (JSON, a table, UTF-8)."""


class ComponentNotFound(ConductorError):
    """A component id names nothing in the workspace."""


class TaskNotFound(ConductorError):
    """A task reference matches no task, or several."""


class TaskChanged(ConductorError):
    """A task's mark is no longer the one the caller saw: it was changed elsewhere (another
    kernel, the panel, the editor) since the caller read the plan. Nothing was written."""

    exit_code = 1


class GateClosed(ConductorError):
    """An operation is refused because a phase gate is not passed yet."""

    exit_code = 1


class ChecksFailed(ConductorError):
    """Checks ran and found problems (lint findings, failed verification)."""

    exit_code = 1


class DatabaseError(ConductorError):
    """A database step failed (connection, statement, migration). Messages never hold a
    password: engine errors are scrubbed before they are wrapped."""

    exit_code = 1


class DatabaseUnavailable(DatabaseError):
    """The database could not be used just now: locked by another connection, a lock wait
    timed out, a deadlock, or the connection was lost. It says nothing about the data (a
    gate cannot pass or fail on it); the message says what to do, usually retry."""

    #: "locked", "lock timeout", "deadlock" or "connection lost"
    kind: str | None = None


class BadDatabaseURL(DatabaseError):
    """A database URL that cannot be parsed (bad input: nothing was tried or changed)."""

    exit_code = 2


class UnsupportedByDialect(ConductorError):
    """The connected dialect cannot do this step; the message says which and why."""


# -- next actions, named without knowing the edge ------------------------------------------

def command(*words: str, cell: bool = False) -> str:
    """A command to suggest, e.g. ``command("migrate new", option("m", "MESSAGE"))``.

    ``cell=True`` for a command whose input is a cell body (``--file F`` on the CLI).
    Spelled in the CLI's words here, the one place that knows them; the notebook edge
    turns them into ``%conductor …`` (or a ``%%conductor …`` cell) with
    :func:`notebook_words`.
    """
    line = " ".join(w for w in words if w)
    return f"`conductor {line}{_CELL_BODY if cell else ''}`"


def option(name: str, value: str | None = None) -> str:
    """A command option to suggest (``option("confirm")``, ``option("to", "DIR")``): the
    same spelling on the CLI and in ``%conductor``; one letter is a short option."""
    flag = f"-{name}" if len(name) == 1 else f"--{name}"
    return f"{flag} {value}" if value else flag


_CELL_BODY = " --file F"
_COMMAND = re.compile(r"`conductor ([^`]*?)(" + re.escape(_CELL_BODY) + r")?`")


def notebook_words(text: str) -> str:
    """``text`` with its suggested commands in the notebook's words: `` `conductor X` ``
    becomes `` `%conductor X` ``, and a cell command a `` `%%conductor X` `` cell."""
    return _COMMAND.sub(lambda m: f"a `%%conductor {m[1]}` cell" if m[2] else f"`%conductor {m[1]}`",
                        text)
