"""Backup and recovery steps for one component: backup, verify, list, prune, restore.

The engine's :class:`~conductor_magics.engine.backup.Backups` does the work; this
step picks the folder (``storages/<id>/backups/``, git-ignored), passes the
progress bar and turns reports into :class:`~.context.StepResult` objects. It also takes
the automatic pre-migration backups that workflow.md asks for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.connection import has_transactional_ddl
from ..errors import ConductorError
from ..workspace.files import ensure_gitignore
from ..workspace.layout import BACKUPS_FOLDER
from ..workspace.workflow import ALWAYS, NEVER
from .context import ComponentDatabase, StepResult

if TYPE_CHECKING:
    from ..engine.backup import Backups

def backups(db: ComponentDatabase, to: str | None = None) -> Backups:
    """The component's backups (``--to DIR`` for another folder)."""
    from ..engine.backup import Backups

    engine = db.engine  # a bad URL fails here, before anything is written
    folder = Path(to) if to else db.component.dir / BACKUPS_FOLDER
    if os.path.lexists(folder) and not folder.is_dir():
        raise ConductorError(f"the backups folder {folder} exists and is not a folder",
                             hint=("give a folder with --to DIR (it is created when missing)" if to
                                   else "move that file away") + "; nothing was changed")
    if not to:
        ensure_gitignore(db.component.dir, (f"{BACKUPS_FOLDER}/",))
    return Backups(folder, engine)


def _result(db: ComponentDatabase, report, frames: list | None = None) -> StepResult:
    if frames is None:
        frame = report.frame() if hasattr(report, "frame") else None
        frames = [("checks", frame)] if frame is not None else []
    return StepResult(f"{db.component.id}: {report.summary}", report.to_json(), frames,
                      exit_code=getattr(report, "exit_code", 0))


def backup(db: ComponentDatabase, action: str = "create", ref: str | None = None, *,
           label: str | None = None, to: str | None = None, keep_last: int | None = None,
           keep_daily: int | None = None, dry_run: bool = False, full: bool = False) -> StepResult:
    """One backup action: create (default), verify [BACKUP], list, prune. ``full``: verify
    runs SQLite's full ``integrity_check`` on a big backup too."""
    store = backups(db, to)
    match action:
        case "create":
            if ref:
                raise ConductorError(f"unexpected word '{ref}' after backup",
                                     hint="name the backup with --label L")
            return _result(db, store.create(label, progress=db.progress), frames=[])
        case "verify":
            return _result(db, store.verify(ref, full=full, progress=db.progress))
        case "list":
            frame = store.list()
            pending = store.pending()
            summary = f"{db.component.id}: {len(frame)} backup(s) in {store.folder}"
            if pending["backups"]:
                summary += (f"; {pending['backups']} incomplete backup"
                            f"{'s' if pending['backups'] != 1 else ''} "
                            f"({pending['bytes'] / 2**20:.1f} MB) left by interrupted runs; "
                            "`backup prune --keep-last N` removes them")
            if pending["untrusted"]:
                summary += (f"; {len(pending['untrusted'])} file(s) prune will not touch (forged, "
                            "damaged or not the tool's): see `backup prune --dry-run`")
            return StepResult(summary, {"folder": str(store.folder),
                                        "incomplete": {k: pending[k] for k in
                                                       ("backups", "bytes", "files", "in_progress")},
                                        "untrusted": pending["untrusted"]},
                              [("backups", frame)])
        case "prune":
            if keep_last is None and keep_daily is None:
                raise ConductorError("prune needs a retention rule",
                                     hint="--keep-last N and/or --keep-daily D")
            report = store.prune(keep_last or 0, keep_daily or 0, dry_run=dry_run)
            return _result(db, report)
    raise ConductorError(f"unknown backup action '{action}'", hint="create, verify, list or prune")


def restore(db: ComponentDatabase, ref: str, *, target: str | None = None, confirm: bool = False,
            to: str | None = None) -> StepResult:
    """Restore a backup into ``target`` (default: the live database, which needs
    ``confirm`` and gets a safety backup first), then compare with the manifest."""
    store = backups(db, to)
    report = store.restore(ref, target, confirm=confirm, progress=db.progress)
    return _result(db, report)


def wants_pre_migration_backup(db: ComponentDatabase, destructive: bool = False) -> bool:
    """workflow.md's ``Pre-migration backups`` setting; by default (auto), engines whose DDL
    is not transactional (SQLite's ALTERs rebuild tables; MySQL commits each statement),
    and every engine when the migration deletes data (a confirmed destructive downgrade:
    a rollback cannot bring that back once it is committed)."""
    setting = db.preferences().pre_migration_backup
    if setting == ALWAYS:
        return True
    if setting == NEVER:
        return False
    return destructive or not has_transactional_ddl(db.engine)


def pre_migration_backup(db: ComponentDatabase, destructive: bool = False) -> dict | None:
    """Take the pre-migration backup when configured and the database holds something
    to protect; returns its manifest (JSON) or None. (No label: the kind says why.)"""
    from ..engine.fingerprint import user_tables

    if not wants_pre_migration_backup(db, destructive) or not user_tables(db.engine):
        return None
    return backups(db).create(None, kind="pre-migration", progress=db.progress).to_json()
