"""The live-database steps of the implement loop, for one component.

Joins the two lower layers: which component and which files (workspace/) with
which database (engine/). Connects (embedded SQLite by default), keeps the
declared schema in ``storages/<id>/schema.sql``, runs migrations from
``storages/<id>/migrations/``, SQL cells, transactions, integrity probes and
the gate's automated checks. Returns :class:`StepResult` objects that the CLI
prints and the magics display.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Engine

from .engine import checks as gate_checks
from .engine.connection import EMBEDDED_FILE, EMBEDDED_FILES, Connected, connect
from .errors import ChecksFailed, ConductorError, DatabaseError
from .fsio import read_utf8
from .workspace.components import Component
from .workspace.files import atomic_write_bytes, ensure_gitignore
from .workspace.workflow import AUTOMATIC

if TYPE_CHECKING:
    from .session import Session

DECLARED_FILE = "schema.sql"
MIGRATIONS_FOLDER = "migrations"


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def frame_records(frame: pd.DataFrame) -> list[dict]:
    return [_jsonable(r) for r in frame.to_dict(orient="records")]


@dataclass
class StepResult:
    """An engine step's outcome: a one-line summary, JSON data, tables and Markdown."""

    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    frames: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    markdown: str | None = None
    exit_code: int = 0
    #: matplotlib figures (benchmark distributions) for the notebook; not in JSON
    figures: list[Any] = field(default_factory=list)
    #: the engine's own result object (BenchResult, AdviceReport) for the notebook
    value: Any = None
    #: the plain-text form, when the engine's report has a better one than the tables
    text: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"summary": self.summary, **_jsonable(self.data)}
        for title, frame in self.frames:
            out[title] = frame_records(frame)
        return out

    def to_text(self) -> str:
        if self.text is not None:
            return self.text
        parts = [self.summary]
        for title, frame in self.frames:
            if frame is not None and not frame.empty:
                table = frame.to_string(index=False, max_colwidth=60, float_format="{:.4g}".format)
                parts.append(f"\n{title}:\n{table}")
        return "\n".join(parts)


class LiveDatabase:
    """The live-engine steps for one component."""

    def __init__(self, session: Session, component: Component, url: str | None = None,
                 engine: Engine | None = None, progress: Any = None):
        self.session = session
        self.component = component
        self._url = url
        #: a tqdm-compatible factory for long steps (seeding, benchmarks, backups), or None
        self.progress = progress
        #: seconds each statement of sql, txn, query, bench, advise and seed may run
        #: (None: $CONDUCTOR_STATEMENT_TIMEOUT, else 300; 0: no limit)
        self.timeout: float | None = None
        self._connected: Connected | None = Connected(engine, "jupysql") if engine is not None else None

    # -- connection --------------------------------------------------------------------

    @property
    def connected(self) -> Connected:
        if self._connected is None:
            embedded = self.component.dir / EMBEDDED_FILE
            self._connected = connect(self._url, embedded=embedded)
            if self._connected.source == "embedded":
                ensure_gitignore(self.component.dir, EMBEDDED_FILES)
        return self._connected

    @property
    def engine(self) -> Engine:
        return self.connected.engine

    def connect(self) -> StepResult:
        c = self.connected
        return StepResult(f"{self.component.id}: connected to {c.masked_url} ({c.dialect}, from {c.source})",
                          c.to_json())

    # -- declared schema -----------------------------------------------------------------

    @property
    def declared_path(self) -> Path:
        return self.component.dir / DECLARED_FILE

    def declared_sql(self) -> str | None:
        path = self.declared_path
        return read_utf8(path) if path.is_file() else None

    def schema_declare(self, sql: str, apply: bool = False) -> StepResult:
        """Validate DDL on a scratch database, then save it as the declared schema."""
        from .engine.schema import validate

        if not sql.strip():
            raise ConductorError("the schema cell is empty",
                                 hint="put the CREATE TABLE statements in the cell (or --file)")
        prefs = self.session.load(self.component).workflow
        if apply and prefs.migrations != AUTOMATIC:
            raise ConductorError(
                "--apply needs workflow.md to say migrations are automatic "
                f"(it says {prefs.migrations})", path=self.session.workspace.dir / "workflow.md",
                hint="use versioned migrations: conductor migrate new -m MESSAGE, then migrate up")
        try:
            report = validate(sql, self.engine)  # bad DDL raises here: nothing written
        except DatabaseError as exc:  # the DDL is the user's input: exit 2, not 1
            raise ConductorError(exc.message, hint=exc.hint) from None
        with self.session.workspace.lock():
            if apply:
                self._apply_and_save(sql)
            else:
                atomic_write_bytes(self.declared_path, sql.encode("utf-8"))
        return self._schema_result(report, f"declared schema saved to {self.declared_path}"
                                   + (" and applied to the live database" if apply else ""),
                                   applied=apply)

    def _apply_and_save(self, sql: str) -> None:
        """Apply ``sql`` to the live database in one transaction and write schema.sql just
        before its commit: a failed statement changes neither, a failed write rolls the DDL
        back, and a failed commit puts the previous schema.sql back."""
        from sqlalchemy.exc import DBAPIError

        from .engine.connection import first_line, scrub
        from .engine.schema import apply_sql

        path = self.declared_path
        previous = path.read_bytes() if path.is_file() else None
        written = False
        try:
            with self.engine.connect() as conn, conn.begin():
                apply_sql(conn, sql)
                atomic_write_bytes(path, sql.encode("utf-8"))
                written = True
        except BaseException as exc:
            if written:  # the commit failed after the write: undo the write
                if previous is None:
                    path.unlink(missing_ok=True)
                else:
                    atomic_write_bytes(path, previous)
            if isinstance(exc, DatabaseError):
                hint = f"{exc.hint}; " if exc.hint else ""
                raise DatabaseError(exc.message, path=exc.path, line=exc.line,
                                    hint=f"{hint}{path.name} was not changed") from None
            if isinstance(exc, DBAPIError):
                raise DatabaseError(
                    f"applying the declared schema failed: "
                    f"{first_line(scrub(str(exc.orig or exc), self.engine.url))}",
                    hint=f"nothing was applied and {path.name} was not changed") from None
            raise

    def schema_show(self, live: bool = False) -> StepResult:
        from .engine.schema import reflect, validate

        if live:
            return self._schema_result(reflect(self.engine), f"live schema of {self.connected.masked_url}")
        sql = self.declared_sql()
        if sql is None:
            raise ConductorError(f"no declared schema at {self.declared_path}",
                                 hint="declare it with %%conductor schema or conductor schema declare --file F")
        return self._schema_result(validate(sql, self.engine), f"declared schema ({self.declared_path})")

    def _schema_result(self, report, head: str, **extra: Any) -> StepResult:
        summary = f"{self.component.id}: {head}: {len(report.tables)} tables, {len(report.findings)} finding(s)"
        return StepResult(summary, {"schema": report.to_json(), **extra},
                          [("columns", report.summary_frame()), ("findings", report.findings_frame())],
                          markdown=f"```mermaid\n{report.mermaid()}\n```")

    # -- migrations ----------------------------------------------------------------------

    @property
    def migrations_folder(self) -> Path:
        return self.component.dir / MIGRATIONS_FOLDER

    def migrations(self):
        from .engine.migrations import Migrations

        engine = self.engine  # a bad URL fails here, before anything is written
        # Alembic imports revision files, which leaves __pycache__/ in versions/.
        ensure_gitignore(self.component.dir, ("__pycache__/",))
        return Migrations(self.migrations_folder, engine)

    def migrate(self, action: str, target: str | None = None, message: str | None = None,
                empty: bool = False, confirm: bool = False) -> StepResult:
        """One migrate action. ``down`` that would drop tables or columns holding data (or
        delete rows) needs ``confirm``; without it nothing changes (not even a backup)."""
        m = self.migrations()
        cid = self.component.id
        match action:
            case "new":
                if not message:
                    raise ConductorError("a revision needs a message", hint="-m 'add orders.note'")
                sql = None if empty else self.declared_sql()
                if not empty and sql is None:
                    raise ConductorError(f"no declared schema at {self.declared_path}",
                                         hint="declare the target schema first, or pass --empty")
                m.init()
                info = m.new(message, sql, empty=empty)
                return StepResult(f"{cid}: new revision {info.revision}: {info.message} ({info.path})",
                                  {"revision": info.revision, "message": info.message,
                                   "path": str(info.path), "operations": info.operations})
            case "up" | "down":
                destructive = False
                if action == "down":
                    from .engine.migrations import destructive_downgrade

                    # a rolled-back trial run says what would go, before any backup is taken
                    losses = m.down_losses(target or "-1")
                    if losses and not confirm:
                        raise destructive_downgrade(target or "-1", losses)
                    destructive = bool(losses)
                backup = self._pre_migration_backup(m, action, destructive)
                run = (m.up(target or "head") if action == "up"
                       else m.down(target or "-1", confirm=confirm))
                data = run.to_json()
                text = f"{cid}: {run.to_text()}"
                if backup is not None:
                    data["pre_migration_backup"] = backup
                    text += f" (pre-migration backup {backup.get('id')})"
                return StepResult(text, data)
            case "history":
                frame = m.history()
                return StepResult(f"{cid}: {len(frame)} revision(s)", {}, [("history", frame)])
            case "current":
                current = m.current()
                return StepResult(f"{cid}: current revision {current or '(none: empty database)'}",
                                  {"current": current})
            case "sql":
                text = m.sql(target or "base:head")
                return StepResult(text, {"sql": text})
            case "check":
                report = m.check(self.declared_sql())
                return StepResult(f"{cid}: migrate check {'passed' if report.passed else 'FAILED'}",
                                  report.to_json(), [("checks", report.frame())],
                                  exit_code=0 if report.passed else 1)
            case "lint":
                report = m.lint(target)
                return StepResult(f"{cid}: {len(report.findings)} finding(s)", report.to_json(),
                                  [("findings", report.frame())], exit_code=1 if report.flagged else 0)
        raise ConductorError(f"unknown migrate action '{action}'")

    def _pre_migration_backup(self, m, action: str, destructive: bool = False) -> dict | None:
        from .recovery import pre_migration_backup

        if action == "up" and m.at_head():
            return None  # nothing to apply: nothing to protect
        return pre_migration_backup(self, destructive=destructive)

    # -- SQL, transactions, integrity ------------------------------------------------------

    def sql(self, body: str) -> StepResult:
        from .engine.sqlrun import run_sql

        result = run_sql(self.engine, body, timeout=self.timeout)
        frames = [("result", result.frame)] if result.frame is not None else []
        return StepResult(result.to_text().splitlines()[0] if result.to_text() else "ok",
                          result.to_json(), frames)

    def txn(self, body: str, isolation: str | None = None, python: bool = False,
            namespace: dict | None = None) -> StepResult:
        from .engine.sqlrun import run_transaction

        result = run_transaction(self.engine, body, isolation=isolation, python=python,
                                 namespace=namespace, timeout=self.timeout)
        frames = [("result", result.frame)] if result.frame is not None else []
        return StepResult(result.to_text().splitlines()[0], result.to_json(), frames)

    def integrity(self) -> StepResult:
        from .engine.integrity import check_integrity

        report = check_integrity(self.engine, self.declared_sql())
        frames = [(name, frame) for name, frame in (
            ("constraints", report.inventory), ("probes", report.probes),
            ("data checks", report.data), ("structural checks", report.structural)) if frame is not None]
        problems = report.problems
        summary = (f"{self.component.id}: integrity: "
                   + (f"{len(problems)} problem(s): " + "; ".join(problems[:5]) if problems else "clean"))
        return StepResult(summary, report.to_json(), frames, exit_code=1 if problems else 0)

    def crud(self, table: str | None = None, rows: int = 5) -> StepResult:
        from .engine.integrity import crud

        frame = crud(self.engine, table, rows=rows)
        failed = int((frame["status"] != "ok").sum()) if "status" in frame else 0
        return StepResult(f"{self.component.id}: CRUD smoke on {len(frame)} table(s), rolled back: "
                          + ("all ok" if not failed else f"{failed} failed"),
                          {}, [("crud", frame)], exit_code=1 if failed else 0)

    # -- index tuning (tuning.py) and backups (recovery.py) -------------------------------

    def seed(self, table: str | None, rows: int, seed: int = 0, skew: float = 0.0) -> StepResult:
        from .tuning import seed as seed_rows

        return seed_rows(self, table, rows, seed, skew)

    def query(self, name: str | None, body: str | None, source: str | None = None) -> StepResult:
        from .tuning import list_workload, record_query

        if (body or "").strip():
            if not name:
                raise ConductorError("a query cell needs a name", hint="%%conductor query NAME")
            return record_query(self, name, body)
        if name:
            from .tuning import find_query

            find_query(self, name, source)  # an unknown name raises, listing the known ones
        result = list_workload(self, source)
        if name:
            frame = result.frames[0][1]
            result.frames = [("workload", frame[frame["query"] == name])]
        return result

    def bench(self, body: str | None, name: str | None, indexes: list[str], **options: Any) -> StepResult:
        from .tuning import bench

        step, result = bench(self, body, name, indexes, **options)
        step.figures.append(result.plot())
        step.value = result
        step.text = f"{self.component.id}: {result.to_text()}"
        return step

    def advise(self, source: str | None = None, **options: Any) -> StepResult:
        from .tuning import advise

        step, report = advise(self, source, **options)
        if report is None:  # --abandon: no advice
            return step
        step.value = report
        details = report.to_text().split("\n", 1)[1:]  # its first line is the summary
        step.text = "\n".join([step.summary, *details])
        return step

    def backup(self, action: str = "create", ref: str | None = None, **options: Any) -> StepResult:
        from .recovery import backup

        return backup(self, action, ref, **options)

    def restore(self, ref: str, **options: Any) -> StepResult:
        from .recovery import restore

        return restore(self, ref, **options)

    # -- gate checks ---------------------------------------------------------------------

    def run_checks(self, kind: str) -> list[gate_checks.CheckResult]:
        """The automated checks for a phase kind; artifacts (ER diagram) are saved."""
        from .tuning import workload

        try:
            queries = workload(self) if kind == "indexing" else []
        except ConductorError:
            queries = []
        context = gate_checks.CheckContext(self.engine, self.declared_sql(), self.migrations_folder,
                                           self.component.dir, queries)
        results = gate_checks.run_checks(kind, context)
        for result in results:
            for name, text in result.artifacts.items():
                with self.session.workspace.lock():
                    atomic_write_bytes(self.component.dir / name, text.encode("utf-8"))
        return results


def require_passed(results: list[gate_checks.CheckResult], waivers: dict[str, str]) -> None:
    """Raise when a failed check is not waived (waivers match check names, case-insensitive)."""
    waived = {k.casefold() for k in waivers}
    failing = [r for r in results if r.status == gate_checks.FAIL and r.name.casefold() not in waived]
    if failing:
        listing = "; ".join(f"{r.name}: {r.detail}" for r in failing)
        raise ChecksFailed(f"{len(failing)} automated check(s) failed: {listing}",
                           hint="fix them, or waive one with --waive 'CHECK=REASON'")
