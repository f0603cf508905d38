"""The command vocabulary shared by ``conductor`` (CLI) and ``%conductor`` (magics).

One argparse parser describes every subcommand; :func:`run` maps parsed
arguments to one :class:`~conductor_magics.session.Session` call and returns
its result object. The CLI prints it; the magics display it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from .errors import ConductorError
from .session import ACTIONS, Session
from .workspace.context import DOC_NAMES


class BadArguments(ConductorError):
    """The command line itself is wrong (unknown subcommand, missing argument)."""

    def __init__(self, message: str, usage: str = ""):
        super().__init__(message, hint=usage.strip().replace("\n", " ") or None)


class ParserExit(Exception):
    """argparse wanted to exit (``--help``); the edge decides what that means."""

    def __init__(self, status: int, message: str | None):
        super().__init__(message)
        self.status = status
        self.message = message


class ConductorArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting, so a kernel never exits."""

    def error(self, message: str):  # noqa: D102 - argparse API
        raise BadArguments(message, self.format_usage())

    def exit(self, status: int = 0, message: str | None = None):  # noqa: D102
        raise ParserExit(status, message)


def _common() -> argparse.ArgumentParser:
    common = ConductorArgumentParser(add_help=False)
    common.add_argument("--root", metavar="DIR", default=argparse.SUPPRESS,
                        help="project folder holding storage-conductor/ (default: $CONDUCTOR_ROOT, "
                             "else the nearest one above the working directory)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print the result as JSON (CLI)")
    return common


def build_parser(prog: str = "conductor") -> ConductorArgumentParser:
    """The parser for every subcommand (used for the CLI and for ``%conductor?``)."""
    common = _common()
    parser = ConductorArgumentParser(
        prog=prog, parents=[common],
        description="Carry out a storage-conductor component plan: status, implement, tasks, "
                    "phase verification and completion.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ConductorArgumentParser)

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_, parents=[common])

    add("status", "every component with its progress, current phase and next task")
    p = add("implement", "select a component (In Progress before Planning, most recently updated), "
                         "set it In Progress and load its context")
    p.add_argument("id", nargs="?", help="component id (default: the active component)")
    p = add("next", "the next task (first [~], else first [ ]) or the phase waiting for verification")
    p.add_argument("id", nargs="?", help="component id")
    p = add("context", "the component's context documents, or one of them")
    p.add_argument("id", nargs="?", help="component id (or a document name)")
    p.add_argument("doc", nargs="?", help="product, tech-stack, workflow, storage-standards, "
                                          "storage-template, spec, plan or metadata")
    p = add("plan", "the plan's phases and tasks with their marks, gates and locks")
    p.add_argument("id", nargs="?", help="component id")
    p = add("task", "mark a task: done [x], undo [ ], start [~], skip [-], block [!]")
    p.add_argument("action", choices=list(ACTIONS), help="what to do with the task")
    p.add_argument("target", nargs="+", metavar="[ID] TASK",
                   help="optional component id, then the task by number (2.3, 2.3.1) or by text")
    p.add_argument("--force", action="store_true",
                   help="act on a task of a locked phase anyway (the override is recorded)")
    p.add_argument("--reason", help="why --force was needed (recorded)")
    p = add("verify", "show a phase's gate, or record its verification with --confirm")
    p.add_argument("id", nargs="?", help="component id")
    p.add_argument("--phase", type=int, metavar="N", help="phase number (default: the phase waiting)")
    p.add_argument("--confirm", metavar="NOTE", help="record the phase as verified with this note")
    p.add_argument("--by", metavar="NAME", help="who confirms (default: git user.name, else the OS user)")
    p.add_argument("--force", action="store_true", help="verify a phase that still has open tasks")
    p = add("complete", "mark the component Completed (every phase must be verified)")
    p.add_argument("id", nargs="?", help="component id")
    p = add("lint", "check every workspace file; exit 1 when something is found")
    p.add_argument("--fix", action="store_true",
                   help="apply safe fixes (tracks.md status follows metadata.json, metadata id "
                        "follows the folder, stale temp files removed)")
    return parser


SUBCOMMANDS = ("status", "implement", "next", "context", "plan", "task", "verify", "complete", "lint")


@dataclass
class Invocation:
    command: str
    args: argparse.Namespace
    root: str | None
    json: bool


def parse(argv: list[str], prog: str = "conductor") -> Invocation:
    """Parse a command line; raises BadArguments or ParserExit (for ``--help``)."""
    parser = build_parser(prog)
    ns = parser.parse_args(argv)
    if not ns.command:
        raise BadArguments("no command given", parser.format_usage())
    return Invocation(ns.command, ns, getattr(ns, "root", None), bool(getattr(ns, "json", False)))


def split_task_target(session: Session, words: list[str]) -> tuple[str | None, str]:
    """``[ID] TASK…`` → (id, task): the first word is an id only if a component has it."""
    if len(words) >= 2 and any(c.id == words[0] for c in session.workspace.components()):
        return words[0], " ".join(words[1:])
    return None, " ".join(words)


def run(inv: Invocation, session: Session) -> Any:
    """Carry out one parsed command; returns the session's result object."""
    a = inv.args
    match inv.command:
        case "status":
            return session.status()
        case "implement":
            return session.implement(a.id)
        case "next":
            return session.next(a.id)
        case "context":
            return session.context(a.id, a.doc)
        case "plan":
            return session.plan(a.id)
        case "task":
            storage_id, ref = split_task_target(session, a.target)
            return session.task(a.action, ref, storage_id, force=a.force, reason=a.reason)
        case "verify":
            return session.verify(a.id, a.phase, note=a.confirm, by=a.by, force=a.force)
        case "complete":
            return session.complete(a.id)
        case "lint":
            return session.lint(fix=a.fix)
    raise BadArguments(f"unknown command '{inv.command}'")


def exit_code(result: Any) -> int:
    """0 when the result is good, 1 when it reports failed checks."""
    return int(getattr(result, "exit_code", 0))


_TAKES_ID = {"implement", "next", "context", "plan", "verify", "complete"}


def complete(words: list[str], session: Session | None) -> list[str]:
    """Completions for the word being typed, given the words before it (``%conductor`` removed).

    Subcommands first, then task actions, component ids and document names.
    """
    if not words:
        return list(SUBCOMMANDS)
    command, rest = words[0], words[1:]
    ids: list[str] = []
    if session is not None:
        try:
            ids = [c.id for c in session.workspace.components()]
        except ConductorError:
            ids = []
    if command == "task":
        return list(ACTIONS) if not rest else ids
    if command == "context":
        return [*ids, *DOC_NAMES] if not rest else list(DOC_NAMES)
    if command in _TAKES_ID and not rest:
        return ids
    return []
