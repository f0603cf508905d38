"""The migration steps: Alembic revisions in ``storages/<id>/migrations/`` (new, up, down,
history, current, sql, check, lint), with the pre-migration backup workflow.md asks for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConductorError
from ..workspace.files import ensure_gitignore
from .backup import pre_migration_backup
from .context import ComponentDatabase, StepResult

if TYPE_CHECKING:
    from ..engine.migrations import Migrations


def migrations(db: ComponentDatabase) -> Migrations:
    """The component's migrations folder over its live database."""
    from ..engine.migrations import Migrations

    engine = db.engine  # a bad URL fails here, before anything is written
    # Alembic imports revision files, which leaves __pycache__/ in versions/.
    ensure_gitignore(db.component.dir, ("__pycache__/",))
    return Migrations(db.migrations_folder, engine)


def migrate(db: ComponentDatabase, action: str, target: str | None = None,
            message: str | None = None, empty: bool = False, confirm: bool = False) -> StepResult:
    """One migrate action. ``down`` that would drop tables or columns holding data (or
    delete rows) needs ``confirm``; without it nothing changes (not even a backup)."""
    m = migrations(db)
    cid = db.component.id
    match action:
        case "new":
            if not message:
                raise ConductorError("a revision needs a message", hint="-m 'add orders.note'")
            sql = None if empty else db.declared_sql()
            if not empty and sql is None:
                raise ConductorError(f"no declared schema at {db.declared_path}",
                                     hint="declare the target schema first, or pass --empty")
            m.init()
            info = m.new(message, sql, empty=empty)
            return StepResult(f"{cid}: new revision {info.revision}: {info.message} ({info.path})",
                              {"revision": info.revision, "message": info.message,
                               "path": str(info.path), "operations": info.operations})
        case "up" | "down":
            destructive = False
            if action == "down":
                from ..engine.migrations import destructive_downgrade

                # a rolled-back trial run says what would go, before any backup is taken
                losses = m.down_losses(target or "-1")
                if losses and not confirm:
                    raise destructive_downgrade(target or "-1", losses)
                destructive = bool(losses)
            backup = _pre_migration_backup(db, m, action, destructive)
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
            report = m.check(db.declared_sql())
            return StepResult(f"{cid}: migrate check {'passed' if report.passed else 'FAILED'}",
                              report.to_json(), [("checks", report.frame())],
                              exit_code=0 if report.passed else 1)
        case "lint":
            report = m.lint(target)
            return StepResult(f"{cid}: {len(report.findings)} finding(s)", report.to_json(),
                              [("findings", report.frame())], exit_code=1 if report.flagged else 0)
    raise ConductorError(f"unknown migrate action '{action}'")


def _pre_migration_backup(db: ComponentDatabase, m: Migrations, action: str,
                          destructive: bool = False) -> dict | None:
    if action == "up" and m.at_head():
        return None  # nothing to apply: nothing to protect
    return pre_migration_backup(db, destructive=destructive)
