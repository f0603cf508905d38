"""The command vocabulary shared by ``conductor`` (CLI) and ``%conductor`` (magics).

One argparse parser describes every subcommand; :func:`run` maps parsed
arguments to one :class:`~conductor_magics.session.Session` call and returns
its result object. The CLI prints it; the magics display it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ConductorError
from .fsio import decode_utf8, read_utf8
from .results import Result
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


def _add_id(parser: argparse.ArgumentParser) -> None:
    """``--id ID``: how every command that takes a component names it (some also keep a
    positional id; :func:`component_id` resolves both)."""
    parser.add_argument("--id", dest="component", metavar="ID",
                        help="component id (default: the active one, else the only one)")


def build_parser(prog: str = "conductor") -> ConductorArgumentParser:
    """The parser for every subcommand (used for the CLI and for ``%conductor?``)."""
    common = _common()
    identified = ConductorArgumentParser(add_help=False)
    _add_id(identified)
    parser = ConductorArgumentParser(
        prog=prog, parents=[common],
        description="Carry out a storage-conductor component plan: status, implement, tasks, "
                    "phase verification and completion, and the live-database steps (schema, "
                    "migrations, SQL, integrity, sample data, index tuning, backups).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ConductorArgumentParser)

    def add(name: str, help_: str, component: bool = True) -> argparse.ArgumentParser:
        parents = [common, identified] if component else [common]
        return sub.add_parser(name, help=help_, description=help_, parents=parents)

    add("status", "every component with its progress, current phase and next task", component=False)
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
    p.add_argument("action", choices=[*ACTIONS, "run"],
                   help="what to do with the task; run: mark it [~], run the cell (--file in a "
                        "shell) and tick it when the run succeeds")
    p.add_argument("target", nargs="+", metavar="[ID] TASK",
                   help="optional component id, then the task by number (2.3, 2.3.1) or by text")
    p.add_argument("--file", metavar="F", help="run: the Python file to run as the task's work")
    p.add_argument("--force", action="store_true",
                   help="act on a task of a locked phase anyway (the override is recorded)")
    p.add_argument("--reason", help="why --force was needed (recorded)")
    p.add_argument("--expect", metavar="MARK",
                   help="refuse (nothing written) unless the task's mark is still MARK: "
                        "'[ ]', '[x]', '[~]', '[-]' or '[!]' (for clients showing a plan)")
    p = add("test", "record a test run for a task (TDD: a task is ticked only after red → green)")
    p.add_argument("name", help="the test's name")
    p.add_argument("--task", metavar="TASK", help="the task it tests (default: the one in progress, else the next)")
    outcome = p.add_mutually_exclusive_group()
    outcome.add_argument("--passed", action="store_true", help="record a passing run (run elsewhere)")
    outcome.add_argument("--failed", action="store_true", help="record a failing run (run elsewhere)")
    p.add_argument("--file", metavar="F", help="run this Python file as the test: passes unless it raises")
    p = add("verify", "show a phase's gate, or record its verification with --confirm")
    p.add_argument("id", nargs="?", help="component id")
    p.add_argument("--phase", type=int, metavar="N", help="phase number (default: the phase waiting)")
    p.add_argument("--confirm", metavar="NOTE", help="record the phase as verified with this note")
    p.add_argument("--by", metavar="NAME", help="who confirms (default: git user.name, else the OS user)")
    p.add_argument("--force", action="store_true", help="verify a phase that still has open tasks")
    p.add_argument("--run-checks", action="store_true",
                   help="run the automated checks for the phase's kind against the live database")
    p.add_argument("--waive", action="append", default=[], metavar="CHECK=REASON",
                   help="accept a failed check with a written reason (recorded; repeatable)")
    p.add_argument("--url", help="database URL for --run-checks")
    p = add("complete", "mark the component Completed (every phase must be verified)")
    p.add_argument("id", nargs="?", help="component id")
    p = add("revert", "undo a task, a phase or a component through git (the commits the tool "
                      "recorded): a dry run unless --confirm", component=False)
    options = ConductorArgumentParser(add_help=False)
    options.add_argument("--dry-run", action="store_true", help="show what would happen (the default)")
    options.add_argument("--confirm", action="store_true", help="carry it out")
    options.add_argument("--downgrade", action="store_true",
                         help="first run migrate down to before a reverted revision the live "
                              "database has applied (with the pre-migration backup)")
    options.add_argument("--match", action="append", default=[], metavar="GHOST=SHA",
                         help="a recorded SHA no longer in the history (rebased, squashed) is "
                              "this commit (a candidate a dry run shows; repeatable)")
    options.add_argument("--url", help="the live database, for the applied-revision check")
    # one parser per kind, so `revert task --id ID 3.2` reads the reference after the options
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True,
                             parser_class=ConductorArgumentParser)
    for kind, ref_help in (("task", "the task: number (2.3) or text"), ("phase", "the phase number"),
                           ("component", None)):
        k = kinds.add_parser(kind, help=f"revert a {kind}", parents=[common, identified, options])
        if ref_help:
            k.add_argument("ref", metavar="REF", help=ref_help)
    p = add("lint", "check every workspace file; exit 1 when something is found", component=False)
    p.add_argument("--fix", action="store_true",
                   help="apply safe fixes (tracks.md status follows metadata.json, metadata id "
                        "follows the folder, stale temp files removed)")

    # -- engine commands: --url and --id on each; cell bodies come from --file in a shell --
    database = ConductorArgumentParser(add_help=False)
    database.add_argument("--url", help="SQLAlchemy URL (default: the connected one, "
                                         "$CONDUCTOR_DATABASE_URL, else storages/<id>/dev.sqlite)")
    _add_id(database)
    body = ConductorArgumentParser(add_help=False)
    body.add_argument("--file", metavar="F", help="read the cell body from F ('-' for stdin)")
    timed = ConductorArgumentParser(add_help=False)
    timed.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                       help="stop any statement that runs longer, roll back and exit 1 (default: "
                            "$CONDUCTOR_STATEMENT_TIMEOUT, else 300; 0 = no limit)")

    def add_db(name: str, help_: str, with_body: bool = False) -> argparse.ArgumentParser:
        parents = [common, database, body] if with_body else [common, database]
        if name in TIMED_COMMANDS:
            parents.append(timed)
        return sub.add_parser(name, help=help_, description=help_, parents=parents)

    p = add_db("connect", "connect to the component's database and say which (password masked)")
    p.add_argument("target_url", nargs="?", metavar="URL", help="SQLAlchemy URL to connect to")
    p.add_argument("--from-jupysql", action="store_true",
                   help="reuse JupySQL's current connection (notebook only)")
    p = add_db("schema", "declare the target schema (cell/--file: DDL), or show it", with_body=True)
    p.add_argument("words", nargs="*", metavar="[declare|show] [ID]",
                   help="declare (default with a body) or show (default without)")
    p.add_argument("--apply", action="store_true",
                   help="also apply the DDL to the live database (only when workflow.md says "
                        "migrations are automatic)")
    p.add_argument("--live", action="store_true", help="show: reflect the live database instead")
    p = add_db("migrate", "versioned migrations with Alembic in storages/<id>/migrations/")
    p.add_argument("action", choices=MIGRATE_ACTIONS, help="what to do")
    p.add_argument("target", nargs="?", metavar="REV",
                   help="up: target (default head); down: target (default -1); sql: range; "
                        "lint: revision")
    p.add_argument("-m", "--message", help="new: the revision's message")
    p.add_argument("--empty", action="store_true", help="new: a hand-written revision (data migration)")
    p.add_argument("--confirm", action="store_true",
                   help="down: run a downgrade that drops tables/columns holding data")
    add_db("sql", "run SQL (cell/--file); the last result as a table with elapsed time", with_body=True)
    p = add_db("txn", "run the cell in one transaction: commit on success, roll back on any error",
               with_body=True)
    p.add_argument("--isolation", metavar="LEVEL",
                   help="read committed, repeatable read, serializable, read uncommitted")
    p.add_argument("--python", action="store_true",
                   help="the body is Python using `conn` (the transaction's connection)")
    p = add_db("integrity", "constraint inventory, violation probes (rolled back) and data checks")
    p.add_argument("id", nargs="?", help="component id")
    p = add_db("crud", "insert/read/update/delete generated rows per table, rolled back, timed")
    p.add_argument("table", nargs="?", help="one table (default: every table)")
    p.add_argument("--rows", type=int, default=5, help="rows per table (default 5)")

    # -- index tuning --
    p = add_db("seed", "insert generated rows (types, UNIQUE, foreign keys and simple CHECKs "
                       "respected) into a table, or every table parents first, in one transaction")
    p.add_argument("table", nargs="?", help="one table (default: every table)")
    p.add_argument("--rows", type=int, default=1000, help="rows per table (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same rows")
    p.add_argument("--skew", type=float, default=0.0,
                   help="0 uniform (default); > 0 a Zipf-like exponent for foreign keys and "
                        "repeated values, e.g. 1.2, for realistic selectivity")
    p = add_db("query", "record the cell's query as NAME in storages/<id>/workload.sql (it runs "
                        "once, rolled back); without a body, list the workload", with_body=True)
    p.add_argument("name", nargs="?", help="the query's name")
    p.add_argument("--workload", metavar="SOURCE",
                   help="list: workload (workload.sql), spec (Query Patterns) or a .sql file")
    p = add_db("bench", "time the cell's query (or workload query NAME) without and with each "
                        "--index; appended to storages/<id>/benchmarks.jsonl", with_body=True)
    p.add_argument("name", nargs="?", help="a workload query's name (or the name to record a cell under)")
    p.add_argument("--index", action="append", default=[], metavar="DDL",
                   help="candidate index, e.g. 'CREATE INDEX ix_orders_customer_id ON orders "
                        "(customer_id)' (repeatable: one arm each)")
    p.add_argument("--repeat", type=int, default=30, help="samples per arm (default 30)")
    p.add_argument("--warmup", type=int, default=3, help="samples per arm discarded first (default 3)")
    p.add_argument("--analyze", action="store_true",
                   help="PostgreSQL: also EXPLAIN (ANALYZE, BUFFERS) per arm, rolled back")
    p.add_argument("--prepared", action=argparse.BooleanOptionalAction, default=True,
                   help="PostgreSQL: time server-side prepared statements, as an application's "
                        "loop runs them (default), or with --no-prepared parsed and planned at "
                        "every execution")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="bind a parameter (others are drawn from the data)")
    p.add_argument("--seed", type=int, default=0, help="random seed for arm order and parameters")
    p = add_db("advise", "recommend indexes for the workload, evaluated without disturbing the "
                         "live database (HypoPG, rolled-back indexes, or a scratch copy)")
    p.add_argument("--workload", metavar="SOURCE",
                   help="workload (workload.sql), spec (Query Patterns) or a .sql file "
                        "(default: workload.sql, else the spec)")
    p.add_argument("--apply", action="store_true",
                   help="add the indexes to the declared schema, write a migration revision "
                        "for them and upgrade (first finishing an interrupted --apply)")
    p.add_argument("--abandon", action="store_true",
                   help="undo an interrupted advise --apply (its unapplied revision and intent)")
    p.add_argument("--min-gain", type=float, default=0.10,
                   help="keep an index only if it cuts the workload cost by this fraction "
                        "(default 0.10)")
    p.add_argument("--no-hypopg", action="store_true",
                   help="PostgreSQL: build real indexes in a rolled-back transaction instead")
    p.add_argument("--max-indexes", type=int, metavar="N", help="recommend at most N indexes")
    p.add_argument("--max-size", metavar="BYTES",
                   help="total size of the recommended indexes at most this (e.g. 500MB, 2GB)")
    p.add_argument("--measure", action="store_true",
                   help="PostgreSQL: also time the workload with the recommended indexes, built "
                        "in the rolled-back transaction (SQLite always measures on a scratch copy)")
    p.add_argument("--seed", type=int, default=0, help="random seed for drawn parameters")

    # -- backup and recovery --
    p = add_db("backup", "back up the database (manifest with per-table hashes), or verify, "
                         "list and prune backups")
    p.add_argument("action", nargs="?", default="create", choices=BACKUP_ACTIONS,
                   help="create (default), verify [BACKUP], list, prune")
    p.add_argument("backup", nargs="?", metavar="BACKUP",
                   help="verify: a label, id or artifact path (default: the newest)")
    p.add_argument("--label", help="create: a name for the backup")
    p.add_argument("--to", metavar="DIR", help="backup folder (default storages/<id>/backups/)")
    p.add_argument("--keep-last", type=int, metavar="N", help="prune: keep the newest N")
    p.add_argument("--keep-daily", type=int, metavar="D",
                   help="prune: also keep the newest backup of each of the last D days")
    p.add_argument("--dry-run", action="store_true", help="prune: say what would go, delete nothing")
    p.add_argument("--full", action="store_true",
                   help="verify: SQLite's full integrity_check on a backup over 16 MiB too "
                        "(index against table; about 4x a copy of the file) instead of quick_check")
    p = add_db("restore", "restore a backup (label, id or path) and compare with its manifest")
    p.add_argument("backup", metavar="BACKUP", help="a label, id from `backup list`, or artifact path")
    p.add_argument("--target", metavar="URL",
                   help="restore into this database (default: the live one, which needs --confirm "
                        "and gets a safety backup first)")
    p.add_argument("--confirm", action="store_true",
                   help="allow replacing the tables of a database that has some")
    p.add_argument("--to", metavar="DIR", help="backup folder (default storages/<id>/backups/)")

    # -- drift --
    add_db("drift", "compare spec, schema.sql, migration revisions, live database and plan "
                    "verdicts pairwise; exit 1 when they disagree")
    return parser


MIGRATE_ACTIONS = ("new", "up", "down", "history", "current", "sql", "check", "lint")
BACKUP_ACTIONS = ("create", "verify", "list", "prune")
REVERT_KINDS = ("task", "phase", "component")
WORKSPACE_COMMANDS = ("status", "implement", "next", "context", "plan", "task", "test", "verify",
                      "complete", "lint", "revert")
ENGINE_COMMANDS = ("connect", "schema", "migrate", "sql", "txn", "integrity", "crud",
                   "seed", "query", "bench", "advise", "backup", "restore", "drift")
SUBCOMMANDS = WORKSPACE_COMMANDS + ENGINE_COMMANDS
#: commands whose cell body (or --file) is their input
BODY_COMMANDS = ("schema", "sql", "txn", "query", "bench")
#: commands whose statements are bounded by --timeout
TIMED_COMMANDS = ("sql", "txn", "query", "bench", "advise", "seed")


def _seconds(text: str) -> float:
    """``--timeout``'s type: seconds, 0 or more (0 = no limit)."""
    from .engine.timeouts import parse_seconds

    try:
        return parse_seconds(text)
    except ConductorError as exc:
        raise argparse.ArgumentTypeError(f"expected seconds, 0 or more (0 = no limit), "
                                         f"got {text!r}") from exc


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


def component_id(a: argparse.Namespace, positional: str | None = None) -> str | None:
    """The component a command names, by the one rule: ``--id ID`` or the positional id
    where the command has one (the same id when both are given). None lets the session
    choose: the active component, else the only one (:meth:`Session.active`)."""
    given = getattr(a, "component", None)
    if given and positional and given != positional:
        raise BadArguments(f"two component ids: '{positional}' and --id {given}",
                           "give the component once")
    return given or positional


def split_task_target(session: Session, words: list[str],
                      a: argparse.Namespace | None = None) -> tuple[str | None, str]:
    """``[ID] TASK…`` → (id, task): the first word is an id only if a component has it;
    ``--id`` (in ``a``) names it too."""
    storage_id = None
    if len(words) >= 2 and any(c.id == words[0] for c in session.workspace.components()):
        storage_id, words = words[0], words[1:]
    return component_id(a, storage_id) if a is not None else storage_id, " ".join(words)


def parse_waivers(items: list[str]) -> dict[str, str]:
    """``["CHECK=REASON", …]`` → {check: reason}."""
    waivers = {}
    for item in items:
        check, sep, reason = item.partition("=")
        if not sep or not check.strip():
            raise BadArguments(f"--waive takes CHECK=REASON, got '{item}'")
        waivers[check.strip()] = reason.strip()
    return waivers


def read_body(inv: Invocation, cell: str | None) -> str | None:
    """The command's body: the cell (magics) or ``--file`` (CLI; ``-`` is stdin)."""
    path = getattr(inv.args, "file", None)
    if path:
        if cell is not None and cell.strip():
            raise BadArguments("give the body either in the cell or with --file, not both")
        if path == "-":
            stdin = getattr(sys.stdin, "buffer", None)
            return decode_utf8(stdin.read(), "<stdin>") if stdin is not None else sys.stdin.read()
        try:
            return read_utf8(path)
        except OSError as exc:
            raise ConductorError(f"cannot read {path}: {exc.strerror}", path=path) from None
    return cell


def run_python_file(body: str, filename: str) -> bool:
    """Run a work or test body outside a notebook: True unless it raises (the traceback
    goes to stderr, as a test runner would show it)."""
    import traceback

    try:
        exec(compile(body, filename, "exec"), {"__name__": "__main__"})  # noqa: S102 - the user's own cell
    except Exception:  # the user's code: any failure means the run failed
        traceback.print_exc()
        return False
    return True


def run(inv: Invocation, session: Session, *, body: str | None = None, url: str | None = None,
        engine: Any = None, namespace: dict | None = None,
        execute: Callable[[str], bool] | None = None, progress: Any = None,
        timeout: float | None = None) -> Result:
    """Carry out one parsed command; returns the session's (or live database's) result,
    which satisfies :class:`~conductor_magics.results.Result` (the edges use nothing else).

    ``body`` is the cell; ``url``/``engine`` are the notebook's current connection, used
    when the command gives no ``--url``; ``namespace`` is the kernel's, for Python txn cells;
    ``execute(body) -> succeeded`` runs task and test cells (the kernel's own runner in a
    notebook; a plain ``exec`` of ``--file`` in a shell); ``progress`` is a tqdm-compatible
    factory for long steps (seeding, benchmarks, backups); ``timeout`` is the edge's
    configured statement timeout (``%config Conductor.statement_timeout``), which
    ``--timeout`` overrides.
    """
    try:
        return _run(inv, session, body, url, engine, namespace, execute, progress, timeout)
    except ConductorError:
        raise
    except Exception as exc:
        # The edges' one boundary for database errors a step did not word itself (every
        # command, verify --run-checks included): one line naming the command, passwords
        # scrubbed, never a traceback. Imported here: most commands never load SQLAlchemy.
        from .engine.connection import database_error, is_driver_error

        if not is_driver_error(exc):
            raise
        known = [u for u in (getattr(inv.args, "url", None), getattr(inv.args, "target_url", None),
                             url, getattr(engine, "url", None)) if u]
        hint = ("nothing was committed by the failed statement" if inv.command in ENGINE_COMMANDS
                else "nothing was recorded")
        raise database_error(inv.command, exc, *known, hint=hint) from None


def _run(inv: Invocation, session: Session, body: str | None, url: str | None, engine: Any,
         namespace: dict | None, execute: Callable[[str], bool] | None, progress: Any,
         timeout: float | None) -> Any:
    a = inv.args
    if inv.command in ENGINE_COMMANDS:
        return run_engine(inv, session, read_body(inv, body), url, engine, namespace, progress,
                          timeout)
    if inv.command in ("task", "test"):
        body = read_body(inv, body)
        execute = execute or (lambda code: run_python_file(code, getattr(a, "file", None) or "<cell>"))
        if inv.command == "test":
            return _run_test(a, session, body, execute)
        if a.action == "run":
            if a.expect is not None:
                raise BadArguments("--expect is for done, undo, start, skip and block, not run")
            if not (body or "").strip():
                raise BadArguments("task run needs the work: a %%conductor task TASK cell, or --file F")
            storage_id, ref = split_task_target(session, a.target, a)
            return session.run_task(ref, lambda: execute(body), storage_id, force=a.force)
    if body is not None and body.strip():
        raise BadArguments(f"'{inv.command}' takes no cell body", "use %conductor, not %%conductor")
    match inv.command:
        case "status":
            return session.status()
        case "implement":
            return session.implement(component_id(a, a.id))
        case "next":
            return session.next(component_id(a, a.id))
        case "context":
            return session.context(*_context_words(a))
        case "plan":
            return session.plan(component_id(a, a.id))
        case "task":
            storage_id, ref = split_task_target(session, a.target, a)
            return session.task(a.action, ref, storage_id, force=a.force, reason=a.reason,
                                expect=a.expect)
        case "verify":
            return session.verify(component_id(a, a.id), a.phase, note=a.confirm, by=a.by, force=a.force,
                                  run_checks=a.run_checks, waivers=parse_waivers(a.waive),
                                  url=a.url or url, engine=None if a.url else engine)
        case "complete":
            return session.complete(component_id(a, a.id))
        case "lint":
            return session.lint(fix=a.fix)
        case "revert":
            return session.revert(a.kind, getattr(a, "ref", None), component_id(a), confirm=a.confirm,
                                  dry_run=a.dry_run, downgrade=a.downgrade, matches=a.match,
                                  url=a.url or url, engine=None if a.url else engine)
    raise BadArguments(f"unknown command '{inv.command}'")


def _context_words(a: argparse.Namespace) -> tuple[str | None, str | None]:
    """``context [ID] [DOC]`` with ``--id``: the positional words then hold the document."""
    if not a.component:
        return a.id, a.doc
    words = [w for w in (a.id, a.doc) if w]
    if words and words[0] == a.component:
        words.pop(0)
    if len(words) > 1:
        raise BadArguments(f"context takes one document, got {' '.join(words)}")
    return a.component, words[0] if words else None


def _run_test(a: argparse.Namespace, session: Session, body: str | None,
              execute: Callable[[str], bool]) -> Any:
    if a.passed or a.failed:
        if (body or "").strip():
            raise BadArguments("--passed/--failed record a run made elsewhere: give no body")
        passed = a.passed
    elif (body or "").strip():
        passed = execute(body)
    else:
        raise BadArguments("test needs a body (a %%conductor test NAME cell, or --file F) "
                           "or --passed/--failed")
    return session.record_test(a.name, passed, task_ref=a.task, storage_id=component_id(a))


def run_engine(inv: Invocation, session: Session, body: str | None, url: str | None,
               engine: Any, namespace: dict | None, progress: Any = None,
               timeout: float | None = None) -> Any:
    a = inv.args
    command = inv.command
    if command in ("sql", "txn") and not (body or "").strip():
        raise BadArguments(f"'{command}' needs a body: a %%conductor {command} cell, or --file F")
    explicit = a.url or (getattr(a, "target_url", None) if command == "connect" else None)
    component = component_id(a, a.id if command == "integrity" else None)
    words = list(getattr(a, "words", []) or [])
    action = None
    if command == "schema":
        # A cell or --file means declare, even when empty (which is then refused clearly).
        action = words.pop(0) if words and words[0] in ("declare", "show") else (
            "declare" if body is not None and (body.strip() or a.file) else "show")
        if words:
            component = component_id(a, words.pop(0))
        if words:
            raise BadArguments(f"unexpected words after schema {action}: {' '.join(words)}")
    if command in TIMED_COMMANDS:  # resolved now: a bad $CONDUCTOR_STATEMENT_TIMEOUT is exit 2
        from .engine.timeouts import resolve_timeout

        timeout = resolve_timeout(a.timeout if a.timeout is not None else timeout)
    db = session.database(component, url=explicit or url, engine=None if explicit else engine,
                          progress=progress)
    db.timeout = timeout
    return _dispatch_engine(inv, db, body, action, namespace)


def _dispatch_engine(inv: Invocation, db: Any, body: str | None, action: str | None,
                     namespace: dict | None) -> Any:
    a = inv.args
    command = inv.command
    match command:
        case "connect":
            return db.connect()
        case "schema":
            if action == "declare":
                if not (body or "").strip():
                    raise BadArguments("schema declare needs DDL: a %%conductor schema cell, or --file F")
                return db.schema_declare(body, apply=a.apply)
            return db.schema_show(live=a.live)
        case "migrate":
            return db.migrate(a.action, a.target, a.message, a.empty, confirm=a.confirm)
        case "sql":
            return db.sql(body)
        case "txn":
            return db.txn(body, isolation=a.isolation, python=a.python, namespace=namespace)
        case "integrity":
            return db.integrity()
        case "crud":
            return db.crud(a.table, rows=a.rows)
        case "seed":
            return db.seed(a.table, a.rows, seed=a.seed, skew=a.skew)
        case "query":
            return db.query(a.name, body, source=a.workload)
        case "bench":
            return db.bench(body, a.name, a.index, repeat=a.repeat, warmup=a.warmup,
                            analyze=a.analyze, params=a.param, seed=a.seed, prepared=a.prepared)
        case "advise":
            return db.advise(a.workload, apply=a.apply, min_gain=a.min_gain,
                             use_hypopg=False if a.no_hypopg else None, seed=a.seed,
                             abandon=a.abandon, max_indexes=a.max_indexes, max_size=a.max_size,
                             measure=True if a.measure else None)
        case "backup":
            return db.backup(a.action, a.backup, label=a.label, to=a.to, keep_last=a.keep_last,
                             keep_daily=a.keep_daily, dry_run=a.dry_run, full=a.full)
        case "restore":
            return db.restore(a.backup, target=a.target, confirm=a.confirm, to=a.to)
        case "drift":
            return db.drift()
    raise BadArguments(f"unknown command '{command}'")


_TAKES_ID = {"implement", "next", "context", "plan", "verify", "complete", "integrity"}


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
        return [*ACTIONS, "run"] if not rest else ids
    if command == "migrate" and not rest:
        return list(MIGRATE_ACTIONS)
    if command == "backup" and not rest:
        return list(BACKUP_ACTIONS)
    if command == "revert" and not rest:
        return list(REVERT_KINDS)
    if command == "schema" and not rest:
        return ["declare", "show", *ids]
    if command == "context":
        return [*ids, *DOC_NAMES] if not rest else list(DOC_NAMES)
    if command in _TAKES_ID and not rest:
        return ids
    return []
