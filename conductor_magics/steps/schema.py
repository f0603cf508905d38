"""The declared-schema steps: declare (validate on a scratch database, save schema.sql,
optionally apply) and show (declared or live)."""

from __future__ import annotations

from typing import Any

from ..errors import ConductorError, DatabaseError, command, option
from ..workspace.files import atomic_write_bytes
from ..workspace.workflow import AUTOMATIC
from .context import ComponentDatabase, StepResult


def schema_declare(db: ComponentDatabase, sql: str, apply: bool = False) -> StepResult:
    """Validate DDL on a scratch database, then save it as the declared schema."""
    from ..engine.schema import validate

    if not sql.strip():
        raise ConductorError("the schema cell is empty",
                             hint="put the CREATE TABLE statements in the cell (or --file)")
    prefs = db.preferences()
    if apply and prefs.migrations != AUTOMATIC:
        raise ConductorError(
            "--apply needs workflow.md to say migrations are automatic "
            f"(it says {prefs.migrations})", path=db.workflow_path,
            hint=f"use versioned migrations: {command('migrate new', option('m', 'MESSAGE'))}, "
                 f"then {command('migrate up')}")
    try:
        report = validate(sql, db.engine)  # bad DDL raises here: nothing written
    except DatabaseError as exc:  # the DDL is the user's input: exit 2, not 1
        raise ConductorError(exc.message, hint=exc.hint) from None
    with db.lock():
        if apply:
            _apply_and_save(db, sql)
        else:
            atomic_write_bytes(db.declared_path, sql.encode("utf-8"))
    return _schema_result(db, report, f"declared schema saved to {db.declared_path}"
                          + (" and applied to the live database" if apply else ""),
                          applied=apply)


def _apply_and_save(db: ComponentDatabase, sql: str) -> None:
    """Apply ``sql`` to the live database in one transaction and write schema.sql just
    before its commit: a failed statement changes neither, a failed write rolls the DDL
    back, and a failed commit puts the previous schema.sql back."""
    from sqlalchemy.exc import DBAPIError

    from ..engine.connection import first_line, scrub
    from ..engine.schema import apply_sql

    path = db.declared_path
    previous = path.read_bytes() if path.is_file() else None
    written = False
    try:
        with db.engine.connect() as conn, conn.begin():
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
                f"{first_line(scrub(str(exc.orig or exc), db.engine.url))}",
                hint=f"nothing was applied and {path.name} was not changed") from None
        raise


def schema_show(db: ComponentDatabase, live: bool = False) -> StepResult:
    """The declared schema (validated on a scratch database), or with ``live`` the live one."""
    from ..engine.schema import reflect, validate

    if live:
        return _schema_result(db, reflect(db.engine), f"live schema of {db.connected.masked_url}")
    sql = db.declared_sql()
    if sql is None:
        raise ConductorError(f"no declared schema at {db.declared_path}",
                             hint=f"declare it with {command('schema declare', cell=True)}")
    return _schema_result(db, validate(sql, db.engine), f"declared schema ({db.declared_path})")


def _schema_result(db: ComponentDatabase, report, head: str, **extra: Any) -> StepResult:
    summary = f"{db.component.id}: {head}: {len(report.tables)} tables, {len(report.findings)} finding(s)"
    return StepResult(summary, {"schema": report.to_json(), **extra},
                      [("columns", report.summary_frame()), ("findings", report.findings_frame())],
                      markdown=f"```mermaid\n{report.mermaid()}\n```")
