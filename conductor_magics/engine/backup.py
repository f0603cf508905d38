"""Backups that are verified, not assumed: create, verify, restore, list and prune.

A backup is two files in the backups folder (``storages/<id>/backups/`` by default):

- the **artifact** ``<id>.sqlite`` (SQLite online backup API), ``<id>.dump``
  (``pg_dump --format=custom``) or ``<id>.duckdb.tar`` (``EXPORT DATABASE`` as Parquet,
  packed into one tar file);
- the **manifest** ``<id>.manifest.json``: format version (MANIFEST_VERSION), engine and
  version, tool and version, migration head, per-table row counts and hashes over ordered
  rows (SQLite: hashes only up to ``row_hash_max_bytes``), artifact size and sha256,
  duration, created-at, and the result of the last verification.

**Nothing incomplete ever looks valid.** The artifact is written under the tool's one
temporary pattern (``.<id>.<ext>.conductor-tmp-<pid>-<hex>``, see ``fsio``), fsynced and
hashed; then, under the folder lock, the manifest is written atomically and the artifact
renamed to ``<id>.<ext>``. ``list()`` shows a backup only when both files exist, so a backup
killed at any point leaves at most a temporary file (and perhaps a manifest without its
artifact) that ``incomplete()`` lists, ``pending()`` counts and ``prune()`` removes as soon as
the process that wrote it is gone. (Old-style ``<id>.<ext>.partial`` files are still cleaned,
once they are an hour old.)

**Only what is the tool's own is touched.** A manifest is trusted only when it parses, its id
matches its file name and it names its artifact ``<id>.<ext>`` in its own folder, a regular
file (no symbolic link). Verify and restore read nothing else; prune deletes a backup only
after its artifact's sha256 matched the manifest, and only by name inside the folder.
Everything else (forged or damaged manifests, links, an artifact nobody records) is reported
and left alone.

**The manifest describes the artifact, not a second look at the database.** SQLite: the
row hashes are taken from the finished partial file (opened read-only, immutable).
PostgreSQL: one REPEATABLE READ transaction exports its snapshot, ``pg_dump --snapshot``
dumps exactly that snapshot and the row hashes are read in the same transaction (while
``pg_dump`` runs). DuckDB: ``EXPORT DATABASE`` and the hashes share one transaction.
So writes during a backup never make a good backup fail verification.

**Verify** re-hashes the artifact, restores it completely into a scratch target (a temporary
SQLite file; a temporary PostgreSQL database with ``pg_restore --exit-on-error
--single-transaction``; an in-memory DuckDB), runs the engine's structural checks (SQLite
``integrity_check`` + ``foreign_key_check``; PostgreSQL ``amcheck``: ``bt_index_check`` on
every btree index and ``verify_heapam`` on every table) and compares the per-table hashes
and the migration head with the manifest. Every check runs even when an earlier one
failed, so a report also tells whether a damaged artifact still restores. The result is
recorded in the manifest.

**What each hash proves (SQLite, manifest version 2).** The file sha256, read once while
the tables are counted, proves the artifact is the file that was written (bit rot, a
changed file). Restore is a page copy, so verify compares the restored scratch copy with
the artifact byte for byte (the header's rewritten counters apart): together with the
sha256 this proves the restore reproduces exactly the data that was backed up, which is
what the row hashes prove on other engines. Row hashes (``fingerprint``'s, over ordered
rows) are still recorded where they are cheap (databases up to 16 MiB) and compared; such
backups also get the full ``integrity_check``. Bigger ones get row counts and
``quick_check`` (integrity_check minus the index-against-table cross check, which alone
costs ~4x the copy): a backup faithfully copied from a database whose index disagrees
with its table is then not caught by verify (``conductor integrity`` on the live database
catches it), and damage under a forged sha256 is caught only where it breaks the
structure, the restore or a count (benchmarks/README.md has the rates); ``verify(full=True)``
(``backup verify --full``) runs the full ``integrity_check`` on them too. Version-1
manifests (no ``version`` field) verify exactly as before.

**Restore** runs the same sha256 check first (a damaged artifact is never restored), refuses a
target that has tables, or the live database, unless ``confirm``; over a live database that
has tables it first takes a ``safety`` backup. Then the same comparison as verify runs on
the target, and the structural checks (PostgreSQL: amcheck only if the target already has
the extension; it is never created in a user's database).

**SQLite under concurrent writes.** Without a progress bar the page copy is one step (a read
transaction for its duration: in rollback-journal mode writers wait, in WAL mode they do
not). With a bar it goes in steps, which SQLite restarts whenever another connection
writes; after three restarts it falls back to one step, so a busy database still finishes.

- SQLite: the backup API copies the artifact's pages over the target (the whole database
  becomes the backup's, atomically).
- PostgreSQL: ``pg_restore --single-transaction --exit-on-error`` (plus ``--clean
  --if-exists`` when the target has tables): a failed restore leaves the target exactly as
  it was. Tables the backup does not have (created after it) are left alone and make the
  comparison fail, naming them. Ownership and GRANTs are not restored (``--no-owner
  --no-privileges``): objects belong to the restoring role, so a backup restores on any
  server. Verify restores with exactly these options, ``--clean --if-exists`` included
  (no-ops in its empty scratch database), so a verified backup restores the same way.
- DuckDB: existing tables, views and sequences are dropped and ``IMPORT DATABASE`` runs,
  in one transaction.

**Passwords.** ``pg_dump``/``pg_restore`` get host, port, user, database and options as a
libpq connection string argument, never a credential: the password (in the URL's userinfo or
its ``password=`` parameter) only through ``PGPASSWORD``, a ``passfile`` through
``PGPASSFILE``, an ``sslpassword`` through a private service file (see pg_tool_connection).
Their stderr is scrubbed before it reaches any message, and manifests hold the URL with every
credential masked.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import stat
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import URL, Connection, Engine, MetaData, Table, inspect, select, text
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import quoted_name

from ..errors import ConductorError, DatabaseError, UnsupportedByDialect, command, option
from ..fsio import (
    atomic_write_bytes,
    is_tool_temp,
    new_file_mode,
    temp_final_name,
    temp_owner_alive,
    temp_path_for,
)
from .connection import (
    SECRET_KEYS,
    connection_of,
    driver_reason,
    first_line,
    libpq_params,
    libpq_quote,
    make_engine,
    mask,
    scrub,
)
from .fingerprint import fingerprint, user_tables
from .migrations import last_migration_at, migration_head
from .results import FAIL, PASS, SKIP, CheckResult
from .scratch import scratch_engine
from .sqlitecopy import online_copy

KINDS = ("manual", "pre-migration", "safety")
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{4}$")
MANIFEST_SUFFIX = ".manifest.json"
ARTIFACT_SUFFIX = {"sqlite": ".sqlite", "postgresql": ".dump", "duckdb": ".duckdb.tar"}
#: the DuckDB export folder's final name (it only ever exists under a temporary name)
EXPORT_SUFFIX = ".export"
#: progress bars only for databases / artifacts at least this big (small ones finish at once)
PROGRESS_MIN_BYTES = 32 * 2**20
#: old-style leftovers (no process id in the name) younger than this may belong to a backup
#: still running
STALE_AFTER = timedelta(hours=1)
#: leftovers of versions before the tool's one temporary pattern: ``<id>.<ext>.partial`` (and
#: SQLite's ``-journal`` beside it, DuckDB's ``.<id>...partial-export-*`` folder), and the old
#: temporary manifest ``.<id>.manifest.json.<hex>.tmp``
_LEGACY_PARTIAL = re.compile(r"^\.?\d{8}T\d{6}Z-[0-9a-f]{4}.*\.partial(-journal|-wal|-shm|-export-.+)?$")
_LEGACY_MANIFEST_TEMP = re.compile(r"^\.\d{8}T\d{6}Z-[0-9a-f]{4}\.manifest\.json\.[0-9a-f]{8}\.tmp$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: the manifest format new backups write. 1 (no ``version`` field): every table has
#: ``rows`` and ``sha256`` (its rows hashed in order); verify restores into a scratch
#: database, runs SQLite's ``integrity_check`` and compares the row hashes. 2: the same,
#: except that on SQLite a table's ``sha256`` is recorded only where it is cheap (a database
#: of at most ``Backups.row_hash_max_bytes``); a bigger one gets ``rows`` only, and verify
#: proves its data by the artifact's sha256 plus a restored copy compared byte for byte with
#: the artifact, and checks its structure with ``quick_check``.
MANIFEST_VERSION = 2
#: SQLite databases up to this size get the per-table row hashes and ``integrity_check``
#: (under a second here); bigger ones the file-level proof (see MANIFEST_VERSION), because
#: hashing rows costs ~5x and integrity_check ~4x a copy of the file
ROW_HASH_MAX_BYTES = 16 * 2**20
#: a directory with pg_dump/pg_restore that overrides the search by server version
PG_BINDIR_ENV = "CONDUCTOR_PG_BINDIR"
_CHUNK = 4 * 2**20
_MIB = 2**20
_LIST_COLUMNS = ["id", "label", "kind", "created", "size", "head", "verified", "path"]
_CHECK_COLUMNS = ["check", "status", "detail", "seconds"]

# check names shared by verify and restore
CHECK_PRESENT = "artifact present"
CHECK_SHA256 = "artifact sha256 matches the manifest"
CHECK_SCRATCH = "restores completely into a scratch database"
CHECK_TARGET = "restores into the target"
CHECK_SAFETY = "safety backup of the current state"
CHECK_TABLES = "table row counts and hashes match the manifest"
CHECK_HEAD = "migration head matches the manifest"


# --------------------------------------------------------------------------- manifest


@dataclass
class Manifest:
    """What one backup holds; stored as ``<id>.manifest.json`` next to the artifact."""

    id: str
    label: str | None
    kind: str
    created_at: str  # ISO 8601, UTC, microseconds
    engine: str  # SQLAlchemy dialect name
    engine_version: str
    tool: str
    tool_version: str
    migration_head: str | None
    tables: dict[str, dict[str, Any]]  # name → {"rows": int, "sha256": str}
    artifact: str  # file name inside the backups folder
    size_bytes: int
    sha256: str
    seconds: float
    verification: dict | None = None  # {"at", "passed", "seconds", "checks": [...]}
    source: str = ""  # the database URL, password masked
    version: int = 1  # the manifest format (MANIFEST_VERSION); 1 when the field is missing
    #: the folder the manifest was read from / written to (not stored)
    folder: Path | None = field(default=None, compare=False, repr=False)

    exit_code = 0

    @property
    def name(self) -> str:
        """The label, else the id: what a person calls this backup."""
        return self.label or self.id

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)

    @property
    def verified(self) -> bool | None:
        """True/False: the last verification passed/failed; None: never verified."""
        return None if not self.verification else bool(self.verification.get("passed"))

    @property
    def artifact_path(self) -> Path:
        """The artifact, always a plain name inside the manifest's folder (a name with a
        folder part, ``..`` or an absolute path is refused, never followed)."""
        if not _plain_name(self.artifact):
            raise ConductorError(f"backup {self.id}'s manifest names an artifact outside the backups "
                                 f"folder ({self.artifact!r}): not trusted, nothing there is read",
                                 path=self.manifest_path)
        return _folder_of(self) / self.artifact

    @property
    def manifest_path(self) -> Path:
        return _folder_of(self) / f"{self.id}{MANIFEST_SUFFIX}"

    @property
    def summary(self) -> str:
        rows = sum(int(t["rows"]) for t in self.tables.values())
        label = f" ({self.label})" if self.label else ""
        return (f"backup {self.id}{label}: {self.engine}, {len(self.tables)} tables, {rows} rows, "
                f"{_size_text(self.size_bytes)} in {self.seconds:.2f}s, head {self.migration_head or 'none'}")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "kind": self.kind, "created_at": self.created_at,
                "engine": self.engine, "engine_version": self.engine_version, "tool": self.tool,
                "tool_version": self.tool_version, "migration_head": self.migration_head,
                "tables": {name: dict(t) for name, t in sorted(self.tables.items())},
                "artifact": self.artifact, "size_bytes": self.size_bytes, "sha256": self.sha256,
                "seconds": round(self.seconds, 4), "verification": self.verification,
                "source": self.source, **({"version": self.version} if self.version != 1 else {})}

    @classmethod
    def from_json(cls, data: dict[str, Any] | str, folder: Path | None = None) -> Manifest:
        """A Manifest from ``to_json()`` output (a dict or its JSON text)."""
        if isinstance(data, str):
            data = json.loads(data)
        known = {f for f in cls.__dataclass_fields__ if f != "folder"}
        missing = {"id", "kind", "created_at", "engine", "artifact", "sha256"} - set(data)
        if missing:
            raise ConductorError(f"not a backup manifest: missing {', '.join(sorted(missing))}",
                                 path=folder)
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("label", None)
        for key in ("engine_version", "tool", "tool_version"):
            values.setdefault(key, "")
        values.setdefault("migration_head", None)
        values.setdefault("tables", {})
        values.setdefault("size_bytes", 0)
        values.setdefault("seconds", 0.0)
        return cls(**values, folder=folder)

    def to_text(self) -> str:
        lines = [self.summary, f"artifact {self.artifact_path if self.folder else self.artifact}",
                 f"sha256 {self.sha256}"]
        if self.verification:
            state = "passed" if self.verification.get("passed") else "FAILED"
            lines.append(f"verification {state} at {self.verification.get('at')}")
        else:
            lines.append("not verified yet: run `backup verify`")
        return "\n".join(lines)

    @property
    def row_hashes(self) -> bool:
        """Whether every table has its row hash (always in version 1; in version 2 where it
        was cheap), else only row counts."""
        return all("sha256" in t for t in self.tables.values())

    def frame(self) -> pd.DataFrame:
        """One row per table: table, rows, sha256 (None where only the count was recorded)."""
        return pd.DataFrame([{"table": name, "rows": int(t["rows"]), "sha256": t.get("sha256")}
                             for name, t in sorted(self.tables.items())],
                            columns=["table", "rows", "sha256"])


def _plain_name(name: object) -> bool:
    """A single file name (no folder part, not ``.``/``..``): stays inside its folder."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name
            and "\\" not in name and "\0" not in name)


def _folder_of(manifest: Manifest) -> Path:
    if manifest.folder is None:
        raise ConductorError(f"backup {manifest.id} has no folder (the manifest was not read "
                             "from or written to one)")
    return manifest.folder


def _size_text(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


# --------------------------------------------------------------------------- reports


class _Checked:
    """Shared by the reports made of per-check rows."""

    checks: list[CheckResult]

    @property
    def passed(self) -> bool:
        return not any(c.status == FAIL for c in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def frame(self) -> pd.DataFrame:
        """One row per check: check, status (pass/fail/skip), detail, seconds."""
        return pd.DataFrame([c.to_json() for c in self.checks], columns=_CHECK_COLUMNS)

    def _check_lines(self) -> list[str]:
        return [f"[{c.status}] {c.name}" + (f": {c.detail}" if c.detail else "") for c in self.checks]

    def _failed_text(self) -> str:
        return "; ".join(c.name for c in self.failed)


@dataclass
class VerifyReport(_Checked):
    """The result of ``Backups.verify``; also recorded in the backup's manifest."""

    backup: str
    label: str | None
    checks: list[CheckResult]
    seconds: float
    verified_at: str
    recorded: bool = True  # written into the manifest

    @property
    def summary(self) -> str:
        name = f"{self.backup} ({self.label})" if self.label else self.backup
        if self.passed:
            return f"backup {name} verified: {len(self.checks)} checks passed in {self.seconds:.2f}s"
        return f"backup {name} FAILED verification: {self._failed_text()}"

    def to_json(self) -> dict[str, Any]:
        return {"backup": self.backup, "label": self.label, "passed": self.passed,
                "verified_at": self.verified_at, "seconds": round(self.seconds, 4),
                "checks": [c.to_json() for c in self.checks]}

    def to_text(self) -> str:
        return "\n".join([*self._check_lines(), self.summary])


@dataclass
class RestoreReport(_Checked):
    """The result of ``Backups.restore``."""

    backup: str
    label: str | None
    target: str  # masked URL
    live: bool
    restored: bool
    checks: list[CheckResult]
    seconds: float
    safety_backup: Manifest | None = None

    @property
    def summary(self) -> str:
        name = f"{self.backup} ({self.label})" if self.label else self.backup
        safety = f" (safety backup {self.safety_backup.id} first)" if self.safety_backup else ""
        if not self.restored:
            return f"backup {name} NOT restored into {self.target}: {self._failed_text()}"
        if self.passed:
            return f"restored backup {name} into {self.target}{safety}: every table matches the manifest"
        return f"restored backup {name} into {self.target}{safety}, but checks FAILED: {self._failed_text()}"

    def to_json(self) -> dict[str, Any]:
        return {"backup": self.backup, "label": self.label, "target": self.target, "live": self.live,
                "restored": self.restored, "passed": self.passed, "seconds": round(self.seconds, 4),
                "safety_backup": self.safety_backup.id if self.safety_backup else None,
                "checks": [c.to_json() for c in self.checks]}

    def to_text(self) -> str:
        return "\n".join([*self._check_lines(), self.summary])


@dataclass
class PruneReport:
    """The result of ``Backups.prune``: what was (or, with dry_run, would be) kept and deleted,
    and what it leaves because it does not trust it (``left``: never deleted)."""

    kept: list[dict[str, Any]]  # {"id", "label", "created", "size", "reasons"}
    deleted: list[dict[str, Any]]
    leftovers: list[str]  # files / folders of interrupted backups removed
    freed_bytes: int
    dry_run: bool
    left: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}

    exit_code = 0

    @property
    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        extra = f" and {len(self.leftovers)} leftover(s)" if self.leftovers else ""
        left = (f"; left {len(self.left)} file(s) it does not trust (forged, damaged or not the "
                "tool's): see the report" if self.left else "")
        return (f"{verb} {len(self.deleted)} backup(s){extra}, kept {len(self.kept)}, "
                f"{_size_text(self.freed_bytes)} freed{left}")

    def to_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "kept": self.kept, "deleted": self.deleted,
                "leftovers": list(self.leftovers), "left": [dict(item) for item in self.left],
                "freed_bytes": self.freed_bytes}

    def to_text(self) -> str:
        lines = [f"keep   {k['id']} {k['label'] or ''} ({', '.join(k['reasons'])})" for k in self.kept]
        lines += [f"delete {d['id']} {d['label'] or ''}" for d in self.deleted]
        lines += [f"delete {p} (incomplete leftover)" for p in self.leftovers]
        lines += [f"leave  {item['path']}: {item['reason']}" for item in self.left]
        lines.append(self.summary)
        return "\n".join(lines)

    def frame(self) -> pd.DataFrame:
        """One row per backup or file: id, label, created, size, action (keep, delete,
        leave), reason."""
        rows = [{**{k: v for k, v in item.items() if k != "reasons"}, "action": "keep",
                 "reason": ", ".join(item["reasons"])} for item in self.kept]
        rows += [{**item, "action": "delete", "reason": "outside the retention rules"}
                 for item in self.deleted]
        rows += [{"id": Path(p).name, "label": None, "created": None, "size": None,
                  "action": "delete", "reason": "incomplete leftover"} for p in self.leftovers]
        rows += [{"id": Path(item["path"]).name, "label": None, "created": None, "size": None,
                  "action": "leave", "reason": item["reason"]} for item in self.left]
        return pd.DataFrame(rows, columns=["id", "label", "created", "size", "action", "reason"])


# --------------------------------------------------------------------------- small helpers


class _Bar:
    """One progress bar from a tqdm-compatible factory, or nothing."""

    def __init__(self, factory: Callable | None, total: float | None, desc: str, unit: str):
        self._bar = factory(total=total, desc=desc, unit=unit) if factory is not None else None
        self._done = 0.0

    def update(self, amount: float) -> None:
        if self._bar is not None and amount > 0:
            self._bar.update(amount)
            self._done += amount

    def advance_to(self, done: float) -> None:
        """Move to ``done`` in all; a step back (the backup API restarting) is ignored."""
        self.update(done - self._done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class _Progress:
    """Which bars to show: none without a factory or for small work."""

    factory: Callable | None
    show: bool

    def bar(self, total: float | None, desc: str, unit: str) -> _Bar:
        return _Bar(self.factory if self.show else None, total, desc, unit)


def _now() -> datetime:
    return datetime.now(UTC)


def _elapsed(started: float) -> float:
    return time.perf_counter() - started


def _sha256_file(path: Path, progress: _Progress, desc: str = "hash",
                 bar: _Bar | None = None) -> tuple[int, str]:
    """(size, sha256 hex) of a file, read in chunks (into ``bar`` when given: the caller
    made it, and closes it)."""
    # O_NOFOLLOW: a symbolic link swapped in for an artifact is never read through
    handle = os.fdopen(os.open(path, os.O_RDONLY | _NOFOLLOW), "rb")
    with handle:
        return _sha256_handle(handle, progress, desc, bar)


def _sha256_handle(handle, progress: _Progress, desc: str = "hash",
                   bar: _Bar | None = None) -> tuple[int, str]:
    """(size, sha256 hex) of an open binary file, read in chunks from the start."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    made = bar is None
    if made:
        bar = progress.bar(os.fstat(handle.fileno()).st_size / _MIB, desc, "MiB")
    with bar if made else contextlib.nullcontext(bar) as bar:
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            size += count
            bar.update(count / _MIB)
    return size, digest.hexdigest()


def _fsync(path: Path) -> None:
    """Flush a file, or a folder's entries (a rename), to disk."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # folders cannot be opened on some platforms
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
LOCK_NAME = ".lock"


def _write_manifest(manifest: Manifest) -> None:
    """Write a manifest with the tool's one atomic writer (temporary name, fsync, rename)."""
    path = manifest.manifest_path
    if path.is_symlink():  # never written through: the target may lie outside the folder
        raise ConductorError(f"{path} is a symbolic link: not written",
                             hint="remove the link; the backups folder holds plain files only")
    atomic_write_bytes(path, (json.dumps(manifest.to_json(), indent=2) + "\n").encode("utf-8"))


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on the backups folder while manifests are written, backups
    completed and pruned (label checks, no half-seen states)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: labels are checked without a lock
        yield
        return
    lock = folder / LOCK_NAME
    try:
        # O_NOFOLLOW: a link planted at the lock path is refused, never created through
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | _NOFOLLOW, new_file_mode())
    except OSError as exc:
        raise ConductorError(f"cannot lock the backups folder {folder}: {exc.strerror or exc}",
                             path=lock, hint="the folder must be writable, and its .lock a plain "
                                             "file; nothing was changed") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _reason(exc: BaseException, *urls: URL | str | None) -> str:
    """The first line of an error, passwords removed."""
    return driver_reason(exc, *urls)


def _all_tables(bind: Engine | Connection) -> list[str]:
    """Every table of the default schema, the tool's own included (what a restore replaces)."""
    with connection_of(bind) as conn:
        if conn.dialect.name == "duckdb":
            return sorted(conn.execute(text(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")).scalars())
        return sorted(inspect(conn).get_table_names())


def _same_database(a: Engine, b: Engine) -> bool:
    """Whether two engines point at the same database (the live one)."""
    if a is b:
        return True
    if a.dialect.name != b.dialect.name:
        return False
    if a.dialect.name in ("sqlite", "duckdb"):
        da, db = a.url.database or "", b.url.database or ""
        if not da or ":memory:" in da or not db or ":memory:" in db:
            return False
        return Path(da).resolve() == Path(db).resolve()
    return ((a.url.host or "localhost", a.url.port or 5432, a.url.database)
            == (b.url.host or "localhost", b.url.port or 5432, b.url.database))


# --------------------------------------------------------------------------- public helpers


#: the service name pg_dump / pg_restore find an ``sslpassword`` under (see pg_tool_connection)
PG_SERVICE = "conductor"


def pg_tool_connection(url: URL | str, service_folder: Path | None = None) -> tuple[str, dict[str, str]]:
    """(``--dbname`` argument, environment additions) for pg_dump / pg_restore.

    The argument is a libpq connection string with every parameter the URL connects with
    (host, port, user, database, query options, a ``dbname`` DSN or URI expanded) except the
    credentials, which never go on a command line (process lists show it): the password
    (userinfo or ``password=``) goes into ``PGPASSWORD``, a ``passfile`` into ``PGPASSFILE``,
    and an ``sslpassword``, which libpq reads from no variable, into a service file (mode
    0600) in ``service_folder``, named by ``PGSERVICEFILE`` (the argument says ``service=``).
    """
    params = libpq_params(url)
    secret = {key: params.pop(key) for key in list(params) if key in SECRET_KEYS}
    env: dict[str, str] = {}
    if secret.get("password"):
        env["PGPASSWORD"] = secret["password"]
    if secret.get("passfile"):
        env["PGPASSFILE"] = secret["passfile"]
    if secret.get("sslpassword"):
        if "service" in params:
            raise UnsupportedByDialect(
                "pg_dump/pg_restore cannot get both the URL's service and its sslpassword "
                "without putting the sslpassword on their command line",
                hint="put the sslpassword into that service's entry in pg_service.conf instead")
        params["service"] = PG_SERVICE
        if service_folder is not None:
            path = Path(service_folder) / "pg_service.conf"
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(f"[{PG_SERVICE}]\nsslpassword={secret['sslpassword']}\n")
            env["PGSERVICEFILE"] = str(path)
    conninfo = " ".join(f"{key}={libpq_quote(value)}" for key, value in params.items())
    return conninfo, env


@dataclass(frozen=True)
class PgTools:
    """pg_dump / pg_restore for one server's major version."""

    pg_dump: str
    pg_restore: str
    version: str  # "15.18"
    major: int

    @classmethod
    def for_server(cls, bind: Engine | Connection) -> PgTools:
        """The tools matching the server's major version (``SHOW server_version_num``):
        ``$CONDUCTOR_PG_BINDIR``, else ``/usr/lib/postgresql/<major>/bin``, else ``PATH``."""
        with connection_of(bind) as conn:
            number = int(conn.exec_driver_sql("SHOW server_version_num").scalar())
        major = number // 10000
        candidates = [os.environ.get(PG_BINDIR_ENV), f"/usr/lib/postgresql/{major}/bin"]
        for folder in candidates:
            if folder and (Path(folder) / "pg_dump").is_file() and (Path(folder) / "pg_restore").is_file():
                dump, restore = str(Path(folder) / "pg_dump"), str(Path(folder) / "pg_restore")
                break
        else:
            dump, restore = shutil.which("pg_dump"), shutil.which("pg_restore")
            if not dump or not restore:
                raise UnsupportedByDialect(
                    f"pg_dump/pg_restore for PostgreSQL {major} not found "
                    f"(looked in ${PG_BINDIR_ENV}, /usr/lib/postgresql/{major}/bin and PATH)",
                    hint=f"install the client tools (Debian: apt-get install postgresql-client-{major}) "
                         f"or set {PG_BINDIR_ENV}")
        output = subprocess.run([dump, "--version"], capture_output=True, text=True, check=False).stdout
        found = re.search(r"(\d+)(?:\.(\d+))?", output)
        version = found.group(0) if found else "unknown"
        tool_major = int(found.group(1)) if found else 0
        if tool_major < major:
            raise UnsupportedByDialect(
                f"{dump} is version {version}, older than the server (PostgreSQL {major}): "
                "pg_dump refuses newer servers",
                hint=f"install postgresql-client-{major} or set {PG_BINDIR_ENV} to its bin folder")
        return cls(dump, restore, version, major)


class _PgProcess:
    """pg_dump / pg_restore running with a scrubbed-stderr reader that drives a progress bar."""

    def __init__(self, argv: list[str], url: URL, bar: _Bar, marker: str):
        # a private folder (0700) for the sslpassword service file, removed when the tool ends
        self.private = Path(tempfile.mkdtemp(prefix="conductor-pgtool-"))
        try:
            _, extra_env = pg_tool_connection(url, self.private)
            self.url = url
            self.tool = Path(argv[0]).name
            self.lines: list[str] = []
            self.process = subprocess.Popen(argv, env={**os.environ, **extra_env}, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                            errors="replace")
        except BaseException:
            shutil.rmtree(self.private, ignore_errors=True)
            raise
        self._reader = threading.Thread(target=self._read, args=(bar, marker), daemon=True)
        self._reader.start()

    def _read(self, bar: _Bar, marker: str) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if marker in line:
                bar.update(1)
            self.lines.append(line.rstrip("\n"))
            del self.lines[:-200]  # keep the end: the errors are there

    def wait(self) -> None:
        """Wait for the tool; raise DatabaseError with its scrubbed error lines if it failed."""
        code = self.process.wait()
        self._reader.join()
        shutil.rmtree(self.private, ignore_errors=True)
        if code != 0:
            errors = [line for line in self.lines if "error" in line.lower()] or self.lines[-3:]
            reason = scrub(" | ".join(errors[:3]) or f"exit status {code}", self.url)
            raise DatabaseError(f"{self.tool} failed ({mask(self.url)}): {reason}",
                                hint="nothing was changed" if self.tool == "pg_restore"
                                else "check the server and the role's privileges")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join()
        shutil.rmtree(self.private, ignore_errors=True)


# --------------------------------------------------------------------------- engine strategies


@dataclass
class _Dumped:
    """What a dump found, read from the same state the artifact holds."""

    tables: dict[str, dict[str, Any]]
    head: str | None
    engine_version: str
    tool: str
    tool_version: str
    #: (size, sha256) of the artifact when the dump already read it
    artifact: tuple[int, str] | None = None


def _table_map(bind: Engine | Connection) -> dict[str, dict[str, Any]]:
    """Per-table ``{"rows", "sha256"}``: :func:`.fingerprint.fingerprint`'s values, computed
    faster on SQLite (:func:`_sqlite_table_map`)."""
    if bind.dialect.name == "sqlite":
        return _sqlite_table_map(bind)
    return {name: {"rows": fp.rows, "sha256": fp.sha256} for name, fp in fingerprint(bind).items()}


#: rows per batch of the SQLite row hash; must stay fingerprint's batch size (a batch's rows
#: are joined with "\n" and the batch ends with "\n": the same bytes either way, but keep
#: the two readers interchangeable at a glance)
_HASH_BATCH = 10_000


def _sqlite_table_map(bind: Engine | Connection) -> dict[str, dict[str, Any]]:
    """:func:`.fingerprint.fingerprint` on SQLite, byte for byte, at C speed.

    The same ordered SELECT, the same bytes hashed (each row's tuple ``repr``, rows joined
    by a newline per batch of 10,000, a newline after each batch), so manifests written by
    either reader verify with the other. The speed comes from reading the sqlite3 cursor
    directly: ``fetchmany`` builds plain tuples in C and ``map(repr, ...)`` + ``join`` stay
    in C, where SQLAlchemy's Row objects and a Python-level ``tuple(row)`` per row cost
    several times the whole read.
    """
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return _sqlite_table_map(conn)
    metadata = MetaData()
    cursor = bind.connection.driver_connection.cursor()
    found: dict[str, dict[str, Any]] = {}
    try:
        for name in user_tables(bind):
            table = Table(quoted_name(name, None), metadata, autoload_with=bind)
            order = list(table.primary_key.columns) or list(table.columns)
            cursor.execute(str(select(table).order_by(*order).compile(dialect=bind.dialect)))
            digest = hashlib.sha256()
            count = 0
            while rows := cursor.fetchmany(_HASH_BATCH):
                digest.update("\n".join(map(repr, rows)).encode("utf-8"))
                digest.update(b"\n")
                count += len(rows)
            found[name] = {"rows": count, "sha256": digest.hexdigest()}
    finally:
        cursor.close()
    return found


def _sqlite_row_counts(bind: Engine | Connection) -> dict[str, dict[str, Any]]:
    """Per-table ``{"rows"}`` on SQLite: ``count(*)`` walks the smallest b-tree in C (a
    few milliseconds per million rows), no row reaches Python."""
    with connection_of(bind) as conn:
        quote = conn.dialect.identifier_preparer.quote
        return {name: {"rows": int(conn.exec_driver_sql(f"SELECT count(*) FROM {quote(name)}").scalar())}
                for name in user_tables(conn)}


#: the SQLite file header: the backup API rewrites some of its fields in the copy it makes
#: (change counter, schema cookie, version-valid-for), so copies are compared after it
_SQLITE_HEADER = 100


def _same_bytes(original: Path, copy: Path) -> str | None:
    """None when ``copy`` holds ``original``'s bytes (the SQLite header apart), else what
    differs. Both are read in large chunks and compared with ``==`` (memcmp, in C)."""
    # O_NOFOLLOW: like every read of an artifact, never through a link swapped in for it
    with os.fdopen(os.open(original, os.O_RDONLY | _NOFOLLOW), "rb") as left, open(copy, "rb") as right:
        size, other = os.fstat(left.fileno()).st_size, os.fstat(right.fileno()).st_size
        if size != other:
            return f"the restored copy is {other} bytes, the artifact {size}"
        offset = 0
        while chunk := left.read(_CHUNK):
            theirs = right.read(len(chunk))
            start = _SQLITE_HEADER if offset == 0 else 0
            if chunk[start:] != theirs[start:]:
                common = min(len(chunk), len(theirs))  # only on a difference: a plain loop
                first = next((i for i in range(start, common) if chunk[i] != theirs[i]), common)
                return f"the restored copy differs from the artifact at byte {offset + first}"
            offset += len(chunk)
    return None


class _Strategy:
    """How one engine dumps, restores and checks itself."""

    dialect = ""
    #: verify may run the structural checks on its scratch copy beside the row comparison
    checks_in_parallel = False

    def __init__(self, engine: Engine, row_hash_max_bytes: int = ROW_HASH_MAX_BYTES):
        self.engine = engine
        #: SQLite: databases up to this size get row hashes in the manifest (MANIFEST_VERSION)
        self.row_hash_max_bytes = row_hash_max_bytes

    def database_size(self) -> int:
        return 0

    def dump(self, partial: Path, progress: _Progress) -> _Dumped:
        raise NotImplementedError

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Engine]:
        with scratch_engine(self.engine) as engine:
            yield engine

    def restore_into(self, artifact: Path, target: Engine, replace: bool, progress: _Progress) -> None:
        raise NotImplementedError

    def structural(self, target: Engine, scratch: bool, quick: bool = False) -> list[CheckResult]:
        """The engine's structural checks on ``target``; ``quick``: the cheaper variant where
        the engine has one (SQLite ``quick_check``)."""
        return []


class _Sqlite(_Strategy):
    dialect = "sqlite"
    checks_in_parallel = True

    def database_size(self) -> int:
        with self.engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar() or 0
            size = conn.exec_driver_sql("PRAGMA page_size").scalar() or 0
        return int(pages) * int(size)

    def dump(self, partial: Path, progress: _Progress) -> _Dumped:
        raw = self.engine.raw_connection()
        dest = sqlite3.connect(partial)
        try:
            # The rollback journal in memory, not in a file beside the temporary one: a kill
            # then leaves exactly one file under the tool's temporary name (no "-journal"
            # that no pattern recognises). A failed copy throws the file away anyway.
            dest.execute("PRAGMA journal_mode=MEMORY")
            _copy_pages(raw.driver_connection, dest, progress, "backup (copy pages)")
        finally:
            dest.close()
            raw.close()
        _rollback_journal_header(partial)
        _fsync(partial)
        # The file is final now: its sha256 is read in a thread while the tables are read
        # from the same file (hashlib and SQLite both let go of the GIL), so the backup
        # costs about the longer of the two. The bars keep their order and meaning: the
        # sha256 bar waits for the thread. Leaving the with block waits for it on errors too.
        # Row hashes only where cheap (manifest version 2): on a bigger file they cost ~5x
        # the copy, and the sha256 plus verify's byte-for-byte restore prove the data there.
        hashed_rows = partial.stat().st_size <= self.row_hash_max_bytes
        with ThreadPoolExecutor(1, thread_name_prefix="conductor-backup") as pool:
            hashed = pool.submit(_sha256_file, partial, _Progress(None, False))
            desc = "backup (row hashes)" if hashed_rows else "backup (row counts)"
            with _readonly_sqlite(partial) as engine, progress.bar(None, desc, "table") as bar:
                tables = _table_map(engine) if hashed_rows else _sqlite_row_counts(engine)
                bar.update(len(tables))
                head = migration_head(engine)
            with progress.bar(partial.stat().st_size / _MIB, "backup (sha256)", "MiB") as bar:
                artifact = hashed.result()
                bar.update(artifact[0] / _MIB)
        return _Dumped(tables, head, sqlite3.sqlite_version, "sqlite3 online backup API",
                       sqlite3.sqlite_version, artifact)

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Engine]:
        # a file, not memory: artifacts may be gigabytes
        with tempfile.TemporaryDirectory(prefix="conductor-scratch-") as folder:
            engine = make_engine(f"sqlite:///{Path(folder) / 'scratch.sqlite'}", poolclass=NullPool)
            try:
                yield engine
            finally:
                engine.dispose()

    def restore_into(self, artifact: Path, target: Engine, replace: bool, progress: _Progress) -> None:
        source = sqlite3.connect(f"{artifact.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        raw = target.raw_connection()
        try:
            # one atomic page copy: the target becomes exactly the backup's database
            _copy_pages(source, raw.driver_connection, progress, "restore (copy pages)")
        finally:
            raw.close()
            source.close()

    def structural(self, target: Engine, scratch: bool, quick: bool = False) -> list[CheckResult]:
        if quick:
            return _sqlite_quick_checks(target)
        from .integrity import sqlite_checks

        started = time.perf_counter()
        try:
            frame = sqlite_checks(target)
        except Exception as exc:  # a damaged file fails with the driver's own error types
            reason = _reason(exc)
            return [CheckResult("SQLite integrity_check", FAIL, reason, _elapsed(started)),
                    CheckResult("SQLite foreign_key_check", SKIP, "integrity_check could not run")]
        seconds = _elapsed(started)  # integrity_check dominates; foreign_key_check is cheap
        results = []
        for name in ("integrity_check", "foreign_key_check"):
            rows = frame[frame["check"] == name]
            bad = rows[rows["status"] != "ok"]
            detail = "; ".join(str(d) for d in bad["detail"].head(5)) if len(bad) else str(rows["detail"].iloc[0])
            if len(bad) > 5:
                detail += f" (and {len(bad) - 5} more)"
            results.append(CheckResult(f"SQLite {name}", FAIL if len(bad) else PASS, detail,
                                       seconds if name == "integrity_check" else 0.0))
        return results


def _sqlite_quick_checks(target: Engine) -> list[CheckResult]:
    """``PRAGMA quick_check`` and ``foreign_key_check``, each on its own connection at the
    same time (SQLite lets go of the GIL). quick_check is integrity_check without its
    index-against-table cross check (every b-tree page, cell, record and the free list are
    still checked): a ninth of its cost on a big table."""
    with ThreadPoolExecutor(1, thread_name_prefix="conductor-fk-check") as pool:
        orphans = pool.submit(_sqlite_pragma_rows, target, "foreign_key_check")
        quick = _sqlite_pragma_rows(target, "quick_check")
        found = orphans.result()
    if isinstance(quick[0], Exception):  # a damaged file fails with the driver's own errors
        return [CheckResult("SQLite quick_check", FAIL, _reason(quick[0]), quick[1]),
                CheckResult("SQLite foreign_key_check", SKIP, "quick_check could not run")]
    bad = [row[0] for row in quick[0] if row[0] != "ok"]
    detail = "; ".join(bad[:5]) + (f" (and {len(bad) - 5} more)" if len(bad) > 5 else "")
    results = [CheckResult("SQLite quick_check", FAIL if bad else PASS, detail or "ok", quick[1])]
    if isinstance(found[0], Exception):
        return [*results, CheckResult("SQLite foreign_key_check", FAIL, _reason(found[0]), found[1])]
    violations: dict[tuple[str, str], int] = {}
    for table, _rowid, parent, _fkid in found[0]:
        violations[(table, parent)] = violations.get((table, parent), 0) + 1
    problems = [f"{table}: {count} row(s) reference a missing {parent} row"
                for (table, parent), count in sorted(violations.items())]
    detail = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
    return [*results, CheckResult("SQLite foreign_key_check", FAIL if problems else PASS,
                                  detail or "no row references a missing parent", found[1])]


def _sqlite_pragma_rows(target: Engine, pragma: str) -> tuple[list[tuple] | Exception, float]:
    """(the rows of ``PRAGMA <pragma>`` or the error it raised, seconds)."""
    started = time.perf_counter()
    try:
        with target.connect() as conn:
            return [tuple(row) for row in conn.exec_driver_sql(f"PRAGMA {pragma}")], _elapsed(started)
    except Exception as exc:  # reported by the caller as a failed check
        return exc, _elapsed(started)


def _rollback_journal_header(path: Path) -> None:
    """Mark a copied SQLite file as a rollback-journal database.

    The page copy keeps the source's header, WAL flag included (file format read/write
    versions at offsets 18 and 19: 2 = WAL, 1 = rollback journal). The copy has no WAL
    content, so setting both to 1 makes it a self-contained file that opens without
    ``-wal``/``-shm`` (what ``PRAGMA journal_mode=DELETE`` does, minus the WAL files that
    pragma creates on the way).
    """
    with open(path, "r+b") as handle:
        header = handle.read(20)
        if len(header) == 20 and header[:16] == b"SQLite format 3\x00" and header[18:20] != b"\x01\x01":
            handle.seek(18)
            handle.write(b"\x01\x01")


def _copy_pages(source: sqlite3.Connection, dest: sqlite3.Connection, progress: _Progress,
                desc: str) -> None:
    """The SQLite online backup from ``source`` into ``dest``, with a bar in MiB when one
    is shown (:func:`.sqlitecopy.online_copy`)."""
    page_size = source.execute("PRAGMA page_size").fetchone()[0]
    total = source.execute("PRAGMA page_count").fetchone()[0]
    with progress.bar(total * page_size / _MIB, desc, "MiB") as bar:
        online_copy(source, dest, (lambda done, _total: bar.advance_to(done * page_size / _MIB))
                    if progress.show else None)


@contextlib.contextmanager
def _readonly_sqlite(path: Path) -> Iterator[Engine]:
    """An engine reading a SQLite file that must not change (``mode=ro&immutable=1``)."""
    uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
    engine = make_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True), poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


class _Postgres(_Strategy):
    dialect = "postgresql"

    def database_size(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar() or 0)

    def dump(self, partial: Path, progress: _Progress) -> _Dumped:
        tools = PgTools.for_server(self.engine)
        url = self.engine.url
        conninfo, _ = pg_tool_connection(url)
        with self.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                # pg_dump dumps exactly this transaction's snapshot; the row hashes below are
                # read in the same snapshot, so the manifest describes the artifact even while
                # other sessions write.
                snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
                tables_total = conn.execute(text(
                    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    f"WHERE c.relkind IN ('r', 'p', 'm') AND {_USER_NAMESPACES}")).scalar()
                argv = [tools.pg_dump, "--format=custom", f"--file={partial}", "--no-password",
                        "--verbose", f"--snapshot={snapshot}", "--dbname", conninfo]
                with progress.bar(tables_total, "backup (pg_dump)", "table") as bar:
                    process = _PgProcess(argv, url, bar, "dumping contents of table")
                    try:
                        tables = _table_map(conn)
                        head = migration_head(conn)
                        version = str(conn.exec_driver_sql("SHOW server_version").scalar())
                    except BaseException:
                        process.kill()
                        raise
                    process.wait()
        _fsync(partial)
        return _Dumped(tables, head, version, "pg_dump --format=custom", tools.version)

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Engine]:
        with scratch_engine(self.engine) as engine:
            if engine.url.database == self.engine.url.database:
                # scratch_engine fell back to a schema: pg_restore would write into the real
                # database's public schema, so refuse instead.
                raise DatabaseError("cannot create a scratch database to restore into "
                                    f"({mask(self.engine.url)})",
                                    hint="the role needs CREATEDB to verify PostgreSQL backups")
            yield engine

    def restore_into(self, artifact: Path, target: Engine, replace: bool, progress: _Progress) -> None:
        tools = PgTools.for_server(target)
        conninfo, _ = pg_tool_connection(target.url)
        argv = [tools.pg_restore, "--exit-on-error", "--single-transaction", "--no-owner",
                "--no-privileges", "--no-password", "--verbose"]
        if replace:
            argv += ["--clean", "--if-exists"]
        argv += ["--dbname", conninfo, str(artifact)]
        total = None
        if progress.show:
            listing = subprocess.run([tools.pg_restore, "--list", str(artifact)], capture_output=True,
                                     text=True, check=False, errors="replace").stdout
            total = sum(" TABLE DATA " in line for line in listing.splitlines()) or None
        with progress.bar(total, "restore (pg_restore)", "table") as bar:
            _PgProcess(argv, target.url, bar, "processing data for table").wait()

    def structural(self, target: Engine, scratch: bool, quick: bool = False) -> list[CheckResult]:
        started = time.perf_counter()
        names = ("PostgreSQL amcheck: bt_index_check on every btree index",
                 "PostgreSQL amcheck: verify_heapam on every table")
        with target.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            installed = conn.exec_driver_sql("SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'").scalar()
            if not installed and scratch:
                try:  # only ever in the scratch database, never in a user's target
                    conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS amcheck")
                    installed = 1
                except Exception as exc:  # no contrib package, or not a superuser
                    reason = f"amcheck is not available: {_reason(exc, target.url)}"
                    return [CheckResult(n, SKIP, reason, _elapsed(started)) for n in names]
            if not installed:
                reason = ("amcheck is not installed in the target (it is never created there); "
                          "`backup verify` runs it in a scratch database")
                return [CheckResult(n, SKIP, reason) for n in names]
            return [self._amcheck(conn, names[0], _BTREE_INDEXES, "SELECT bt_index_check(CAST(:oid AS oid)::regclass, true)"),
                    self._amcheck(conn, names[1], _HEAP_TABLES, _VERIFY_HEAP)]

    @staticmethod
    def _amcheck(conn: Connection, name: str, objects_sql: str, check_sql: str) -> CheckResult:
        started = time.perf_counter()
        if "verify_heapam" in check_sql and not conn.exec_driver_sql(
                "SELECT count(*) FROM pg_proc WHERE proname = 'verify_heapam'").scalar():
            return CheckResult(name, SKIP, "this amcheck version has no verify_heapam")
        problems: list[str] = []
        objects = conn.execute(text(objects_sql)).all()
        for oid, label in objects:
            try:
                found = conn.execute(text(check_sql), {"oid": oid}).all()
            except Exception as exc:  # amcheck raises on a corrupt index
                problems.append(f"{label}: {_reason(exc, conn.engine.url)}")
                continue
            problems += [f"{label}: {row[-1]}" for row in found if row and row[-1] not in (None, "")]
        detail = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        return CheckResult(name, FAIL if problems else PASS, detail or f"{len(objects)} checked",
                           _elapsed(started))


_USER_NAMESPACES = ("n.nspname NOT IN ('pg_catalog', 'information_schema') "
                    "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'")
_BTREE_INDEXES = (
    "SELECT c.oid, n.nspname || '.' || c.relname FROM pg_index i "
    "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    f"WHERE am.amname = 'btree' AND i.indisvalid AND i.indisready AND {_USER_NAMESPACES} "
    "ORDER BY 2")
_HEAP_TABLES = (
    "SELECT c.oid, n.nspname || '.' || c.relname FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    f"WHERE c.relkind IN ('r', 'm') AND {_USER_NAMESPACES} ORDER BY 2")
# the message column last: _amcheck reports each returned row's last value
_VERIFY_HEAP = "SELECT blkno, offnum, msg FROM verify_heapam(CAST(:oid AS oid)::regclass)"


class _Duckdb(_Strategy):
    dialect = "duckdb"

    def dump(self, partial: Path, progress: _Progress) -> _Dumped:
        # under the tool's temporary pattern too, so a kill leaves nothing prune cannot place
        final = temp_final_name(partial.name) or partial.name
        export = temp_path_for(partial.parent / f"{final}{EXPORT_SUFFIX}")
        export.mkdir(mode=0o700)
        try:
            with self.engine.connect() as conn, conn.begin():
                # EXPORT and the row hashes share one transaction, so one snapshot
                conn.exec_driver_sql(f"EXPORT DATABASE {_duck_literal(export)} (FORMAT PARQUET)")
                tables = _table_map(conn)
                head = migration_head(conn)
                version = str(conn.exec_driver_sql("SELECT version()").scalar())
            with tarfile.open(partial, "w") as tar, progress.bar(None, "backup (pack)", "file") as bar:
                for path in sorted(export.iterdir()):
                    tar.add(path, arcname=path.name)
                    bar.update(1)
        finally:
            shutil.rmtree(export, ignore_errors=True)
        _fsync(partial)
        return _Dumped(tables, head, version, "duckdb EXPORT DATABASE (parquet)", version)

    def restore_into(self, artifact: Path, target: Engine, replace: bool, progress: _Progress) -> None:
        with tempfile.TemporaryDirectory(prefix="conductor-import-") as folder:
            with tarfile.open(artifact, "r") as tar:
                tar.extractall(folder, filter="data")
            with target.connect() as conn, conn.begin():
                if replace:
                    _duck_drop_everything(conn)
                conn.exec_driver_sql(f"IMPORT DATABASE {_duck_literal(Path(folder))}")

    def structural(self, target: Engine, scratch: bool, quick: bool = False) -> list[CheckResult]:
        return [CheckResult("DuckDB structural check", SKIP,
                            "DuckDB has no integrity_check; the import read every row")]


def _duck_literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _duck_drop_everything(conn: Connection) -> None:
    """Drop the default schema's views, tables (referencing ones first) and sequences."""
    quote = conn.dialect.identifier_preparer.quote
    for view in conn.exec_driver_sql(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = current_schema()").scalars():
        conn.exec_driver_sql(f"DROP VIEW {quote(view)}")
    remaining = set(_all_tables(conn))
    references = conn.exec_driver_sql(
        "SELECT table_name, referenced_table FROM duckdb_constraints() "
        "WHERE constraint_type = 'FOREIGN KEY' AND schema_name = current_schema()").all()
    while remaining:
        referenced = {parent for child, parent in references if child in remaining and child != parent}
        leaves = sorted(remaining - referenced) or sorted(remaining)
        for name in leaves:
            conn.exec_driver_sql(f"DROP TABLE {quote(name)}")
        remaining -= set(leaves)
    for sequence in conn.exec_driver_sql(
            "SELECT sequence_name FROM duckdb_sequences() WHERE schema_name = current_schema()").scalars():
        conn.exec_driver_sql(f"DROP SEQUENCE {quote(sequence)}")


_STRATEGIES: dict[str, type[_Strategy]] = {s.dialect: s for s in (_Sqlite, _Postgres, _Duckdb)}


def _strategy_for(dialect: str, engine: Engine) -> _Strategy:
    if dialect not in _STRATEGIES:
        raise UnsupportedByDialect(f"backups are not supported on {dialect}",
                                   hint="backups work on SQLite, PostgreSQL and DuckDB; "
                                        "use the database's own tools here")
    return _STRATEGIES[dialect](engine)


# --------------------------------------------------------------------------- comparison


def compare_to_manifest(manifest: Manifest, bind: Engine | Connection) -> list[CheckResult]:
    """Per-table row counts and hashes, and the migration head, of ``bind`` against the
    manifest: the comparison verify runs on its scratch copy and restore on its target."""
    started = time.perf_counter()
    counts_only = not manifest.row_hashes and bind.dialect.name == "sqlite"
    try:
        found = _sqlite_row_counts(bind) if counts_only else _table_map(bind)
    except Exception as exc:  # a damaged database fails with the driver's own errors
        url = bind.url if isinstance(bind, Engine) else bind.engine.url
        return [CheckResult(CHECK_TABLES, FAIL, f"cannot read the tables: {_reason(exc, url)}",
                            _elapsed(started)),
                CheckResult(CHECK_HEAD, SKIP, "the tables could not be read")]
    problems = []
    missing = sorted(set(manifest.tables) - set(found))
    extra = sorted(set(found) - set(manifest.tables))
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    if extra:
        problems.append(f"not in the backup: {', '.join(extra)}")
    for name in sorted(set(found) & set(manifest.tables)):
        want, got = manifest.tables[name], found[name]
        if int(want["rows"]) != got["rows"]:
            problems.append(f"{name}: {got['rows']} rows, the manifest says {want['rows']}")
        elif "sha256" in want and want["sha256"] != got.get("sha256"):
            problems.append(f"{name}: same row count ({got['rows']}), different content")
    rows = sum(t["rows"] for t in found.values())
    same = (f"{len(found)} tables, {rows} rows identical" if not counts_only else
            f"{len(found)} tables, {rows} rows: the counts match (the manifest of this big backup "
            "has counts, not row hashes: the artifact's sha256 proves its data)")
    results = [CheckResult(CHECK_TABLES, FAIL if problems else PASS, "; ".join(problems) or same,
                           _elapsed(started))]
    started = time.perf_counter()
    try:
        head = migration_head(bind)
    except Exception as exc:
        url = bind.url if isinstance(bind, Engine) else bind.engine.url
        results.append(CheckResult(CHECK_HEAD, FAIL, f"cannot read alembic_version: {_reason(exc, url)}",
                                   _elapsed(started)))
        return results
    same = head == manifest.migration_head
    results.append(CheckResult(CHECK_HEAD, PASS if same else FAIL,
                               f"head {head or 'none'}" if same
                               else f"head {head or 'none'}, the manifest says {manifest.migration_head or 'none'}",
                               _elapsed(started)))
    return results


# --------------------------------------------------------------------------- the folder's entries

#: what prune does with an entry that is not a complete backup
REMOVE = "remove"  # an interrupted backup's leftover whose writer is gone
WAIT = "wait"  # its writer may still run: removed later
LEAVE = "leave"  # not trusted (forged, damaged, a link, not the tool's): reported, never deleted


@dataclass
class _Entry:
    """One file or folder of the backups folder that is not a complete backup."""

    path: Path
    reason: str
    action: str  # REMOVE, WAIT or LEAVE
    manifest: Manifest | None = None  # a manifest's content, when it could be read


@dataclass
class _Survey:
    complete: list[Manifest]  # oldest first
    entries: list[_Entry]


def _read_manifest(path: Path) -> tuple[Manifest | None, str | None]:
    """(manifest, None) for a manifest the tool can trust with its artifact; else
    (what could be read or None, why it is not trusted)."""
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            return None, "the manifest is a symbolic link: not trusted, nothing it names is read or deleted"
        with os.fdopen(os.open(path, os.O_RDONLY | _NOFOLLOW), encoding="utf-8") as handle:
            text_ = handle.read()
        manifest = Manifest.from_json(text_, folder=path.parent)
    except (OSError, ValueError, TypeError, AttributeError, ConductorError) as exc:
        reason = exc.message if isinstance(exc, ConductorError) else first_line(str(exc))
        return None, f"unreadable manifest ({reason}): left in place"
    return manifest, _manifest_problem(manifest, path.name)


def _manifest_problem(m: Manifest, file_name: str) -> str | None:
    """Why a parsed manifest is not trusted (None: it is)."""
    if not isinstance(m.id, str) or not ID_PATTERN.match(m.id) or file_name != f"{m.id}{MANIFEST_SUFFIX}":
        return f"the manifest's id {m.id!r} does not match its file name: not trusted, left in place"
    if not _plain_name(m.artifact):
        return (f"the manifest names an artifact outside the backups folder ({m.artifact!r}): "
                "not trusted, nothing there is read or deleted")
    suffix = ARTIFACT_SUFFIX.get(m.engine) if isinstance(m.engine, str) else None
    if suffix is None or m.artifact != f"{m.id}{suffix}":
        return (f"the manifest names the artifact {m.artifact!r}, not its own "
                f"{m.id}{suffix or '.<ext>'}: not trusted, left in place")
    if (not isinstance(m.sha256, str) or not _SHA256.match(m.sha256)
            or not isinstance(m.size_bytes, int) or m.size_bytes < 0):
        return "the manifest's sha256 or size is malformed: not trusted, left in place"
    try:
        aware = m.created.tzinfo is not None
    except (TypeError, ValueError):
        aware = False
    if not aware or not isinstance(m.tables, dict) or not isinstance(m.label, str | None):
        return "the manifest's created_at, tables or label is malformed: not trusted, left in place"
    if not isinstance(m.version, int) or isinstance(m.version, bool) or m.version < 1:
        return "the manifest's version is malformed: not trusted, left in place"
    if m.version > MANIFEST_VERSION:
        return (f"the manifest has format version {m.version}, newer than this conductor reads "
                f"({MANIFEST_VERSION}): not trusted, left in place; upgrade conductor")
    return None


def _not_usable(ref: str, entry: _Entry) -> ConductorError:
    if entry.action == LEAVE:
        return ConductorError(f"backup {ref!r} is not trusted: {entry.reason}", path=entry.path,
                              hint="nothing was read or changed; take a new backup")
    return ConductorError(f"backup {ref!r} is not a complete backup: {entry.reason}", path=entry.path,
                          hint="only complete backups can be verified or restored")


def _regular_file(path: Path) -> bool:
    """Whether ``path`` is a regular file itself (a symbolic link is not)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _intact(manifest: Manifest, dir_fd: int) -> tuple[str | None, tuple[int, int]]:
    """(None, (device, inode)) when the artifact in the folder ``dir_fd`` is a regular file
    whose size and sha256 match the manifest; else (why it is left, ...)."""
    try:
        fd = os.open(manifest.artifact, os.O_RDONLY | _NOFOLLOW, dir_fd=dir_fd)
    except OSError as exc:
        return f"its artifact cannot be opened ({exc.strerror or exc}): not deleted", (0, 0)
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return "its artifact is not a regular file: not deleted", (0, 0)
        if st.st_size != manifest.size_bytes:
            return (f"its artifact is {st.st_size} bytes, the manifest says {manifest.size_bytes} "
                    "(sha256 not checked): changed or damaged since the backup, not deleted; "
                    "check it, delete it by hand if unneeded"), (0, 0)
        _, digest = _sha256_handle(handle, _Progress(None, False))
    if digest != manifest.sha256:
        return ("its artifact's sha256 does not match the manifest: changed or damaged since the "
                "backup, not deleted; check it, delete it by hand if unneeded"), (0, 0)
    return None, (st.st_dev, st.st_ino)


def _unlink(dir_fd: int, name: str, identity: tuple[int, int] | None = None) -> str | None:
    """Remove ``name`` from the folder ``dir_fd`` (never through a link: the entry itself);
    a real folder with its files. With ``identity``, only if it is still that file.
    Returns why it could not be removed, or None."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if identity is not None and (st.st_dev, st.st_ino) != identity:
            return "changed while prune ran: not deleted"
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"could not be deleted: {exc.strerror or exc}"
    return None


def _backup_id_of(name: str) -> str:
    """The backup a leftover belongs to (its name up to the first dot, temporary prefix off)."""
    return (temp_final_name(name) or name).lstrip(".").split(".")[0]


def _size_of(path: Path) -> int:
    """Bytes a file, or a real folder's files, take (links count as themselves)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total



# --------------------------------------------------------------------------- backups


class Backups:
    """The backups of one database, kept in ``folder`` (created on the first backup)."""

    def __init__(self, folder: Path, engine: Engine):
        self.folder = Path(folder)
        self.engine = engine
        #: progress bars only when the database / artifact is at least this big
        self.progress_min_bytes = PROGRESS_MIN_BYTES
        #: SQLite: databases up to this size get per-table row hashes in the manifest and
        #: ``integrity_check`` in verify; bigger ones row counts and ``quick_check`` (see
        #: MANIFEST_VERSION)
        self.row_hash_max_bytes = ROW_HASH_MAX_BYTES

    # -- reading the folder

    def _survey(self) -> _Survey:
        """Every entry of the folder: complete backups (trusted manifest, regular artifact),
        and everything else with what prune does with it (REMOVE, WAIT or LEAVE)."""
        survey = _Survey([], [])
        try:
            names = sorted(os.listdir(self.folder))
        except (FileNotFoundError, NotADirectoryError):
            return survey
        except OSError as exc:
            raise ConductorError(f"cannot read the backups folder {self.folder}: {exc.strerror or exc}",
                                 hint="check the folder's permissions") from None
        writing = {temp_final_name(n) for n in names
                   if is_tool_temp(n) and temp_owner_alive(n)}
        recorded: set[str] = set()
        for name in names:
            if name.startswith(".") or not name.endswith(MANIFEST_SUFFIX):
                continue
            path = self.folder / name
            manifest, problem = _read_manifest(path)
            if problem is not None:
                survey.entries.append(_Entry(path, problem, LEAVE, manifest))
                continue
            assert manifest is not None
            recorded.add(manifest.artifact)
            try:
                st = os.lstat(manifest.artifact_path)
            except FileNotFoundError:
                if manifest.artifact in writing:
                    survey.entries.append(_Entry(path, "manifest of a backup being completed", WAIT, manifest))
                else:
                    survey.entries.append(_Entry(path, "manifest without its artifact (an interrupted "
                                                       "backup or prune, or the artifact was deleted)",
                                                 REMOVE, manifest))
                continue
            if stat.S_ISREG(st.st_mode):
                survey.complete.append(manifest)
            else:
                what = (f"a symbolic link (to {os.readlink(manifest.artifact_path)})"
                        if stat.S_ISLNK(st.st_mode) else "not a regular file")
                survey.entries.append(_Entry(path, f"its artifact {manifest.artifact} is {what}: not "
                                                   "trusted, nothing there is read or deleted",
                                             LEAVE, manifest))
        stale_before = time.time() - STALE_AFTER.total_seconds()
        for name in names:
            if name == LOCK_NAME or name in recorded or (
                    not name.startswith(".") and name.endswith(MANIFEST_SUFFIX)):
                continue
            path = self.folder / name
            try:
                st = os.lstat(path)
            except FileNotFoundError:  # gone meanwhile (a backup finishing, a prune)
                continue
            link = stat.S_ISLNK(st.st_mode)
            final = temp_final_name(name)
            if final is not None:
                pid = name.rsplit("-", 2)[-2]
                export = final.endswith(EXPORT_SUFFIX)
                what = ("export folder" if export else "temporary manifest"
                        if final.endswith(MANIFEST_SUFFIX) else "partial artifact")
                if link or not (stat.S_ISDIR(st.st_mode) if export else stat.S_ISREG(st.st_mode)):
                    kind = "a symbolic link" if link else "not what the tool writes there"
                    survey.entries.append(_Entry(path, f"has the tool's temporary name but is {kind}: "
                                                       "left in place", LEAVE))
                elif temp_owner_alive(name):
                    survey.entries.append(_Entry(path, f"{what} of a backup in progress (process {pid} "
                                                       "is running)", WAIT))
                else:
                    survey.entries.append(_Entry(path, f"{what} of an interrupted backup (process {pid} "
                                                       "is gone)", REMOVE))
            elif _LEGACY_PARTIAL.match(name) or _LEGACY_MANIFEST_TEMP.match(name):
                if link:
                    survey.entries.append(_Entry(path, "a symbolic link with an interrupted backup's "
                                                       "name: left in place", LEAVE))
                elif st.st_mtime < stale_before:
                    survey.entries.append(_Entry(path, "old-style leftover of an interrupted backup "
                                                       "(over an hour old)", REMOVE))
                else:
                    survey.entries.append(_Entry(path, "old-style leftover that may belong to a backup "
                                                       "still running (removed once an hour old)", WAIT))
            elif ID_PATTERN.match(name.split(".")[0]):
                survey.entries.append(_Entry(path, "a file named like a backup's artifact that no "
                                                   "manifest records: left in place (delete it by "
                                                   "hand if unneeded)", LEAVE))
        survey.complete.sort(key=lambda m: (m.created, m.id))
        return survey

    def _manifests(self) -> list[Manifest]:
        """Complete backups (trusted manifest and its artifact present), oldest first."""
        return self._survey().complete

    def manifests(self, verified: bool | None = None) -> list[Manifest]:
        """Complete backups, oldest first; ``verified=True``: only those whose last
        verification passed; ``verified=False``: only those not verified successfully."""
        return [m for m in self._manifests() if verified is None or (m.verified is True) == verified]

    def list(self) -> pd.DataFrame:
        """Complete backups, newest first: id, label, kind, created, size, head, verified
        (True/False: the last verification passed/failed; None: never verified), path.
        Leftovers of interrupted backups are never listed here: see ``incomplete()``."""
        rows = [{"id": m.id, "label": m.label, "kind": m.kind, "created": pd.Timestamp(m.created),
                 "size": int(m.size_bytes), "head": m.migration_head, "verified": m.verified,
                 "path": str(m.artifact_path)} for m in reversed(self._manifests())]
        frame = pd.DataFrame(rows, columns=_LIST_COLUMNS)
        frame["verified"] = frame["verified"].astype(object)
        return frame

    def incomplete(self) -> pd.DataFrame:
        """Files and folders that are not part of a complete backup: path, size, modified,
        reason, prune (what ``prune`` does with it: "remove" an interrupted backup's leftover,
        "wait" while its writer may still run, "leave" what it does not trust)."""
        rows = []
        for entry in self._survey().entries:
            try:
                modified = os.lstat(entry.path).st_mtime
            except FileNotFoundError:
                continue
            rows.append({"path": str(entry.path), "size": _size_of(entry.path),
                         "modified": pd.Timestamp(modified, unit="s", tz="UTC"),
                         "reason": entry.reason, "prune": entry.action})
        return pd.DataFrame(rows, columns=["path", "size", "modified", "reason", "prune"])

    def pending(self) -> dict[str, Any]:
        """What interrupted backups left: ``backups`` (how many backups they were), ``bytes``
        and ``files`` (what ``prune`` removes now), ``in_progress`` (files of backups whose
        writer still runs) and ``untrusted`` (``{"path", "reason"}`` of files prune leaves)."""
        survey = self._survey()
        gone = [e for e in survey.entries if e.action == REMOVE]
        return {"backups": len({_backup_id_of(e.path.name) for e in gone}),
                "bytes": sum(_size_of(e.path) for e in gone),
                "files": [str(e.path) for e in gone],
                "in_progress": sum(e.action == WAIT for e in survey.entries),
                "untrusted": [{"path": str(e.path), "reason": e.reason}
                              for e in survey.entries if e.action == LEAVE]}

    def resolve(self, ref: str) -> Manifest:
        """A backup by label, id, unique id prefix, or the path of its artifact or manifest.
        A manifest that is not trusted is refused, naming why; nothing it names is read."""
        survey = self._survey()
        manifests = survey.complete
        for manifest in manifests:
            if ref in (manifest.id, manifest.label):
                return manifest
        for entry in survey.entries:
            if entry.manifest is not None and ref in (entry.manifest.id, entry.manifest.label):
                raise _not_usable(ref, entry)
        path = Path(ref)
        if path.is_file() or path.is_symlink():
            return self._from_path(path)
        prefixed = [m for m in manifests if m.id.startswith(ref)] if ref else []
        if len(prefixed) == 1:
            return prefixed[0]
        if len(prefixed) > 1:
            raise ConductorError(f"backup {ref!r} is ambiguous: {', '.join(m.id for m in prefixed)}",
                                 hint="give more of the id, or the label")
        known = ", ".join(m.name for m in reversed(manifests[-10:])) or "none"
        raise ConductorError(f"no backup {ref!r} in {self.folder}",
                             hint=f"backups there (newest first): {known}")

    def _from_path(self, path: Path) -> Manifest:
        name = path.name
        if name.endswith(MANIFEST_SUFFIX):
            manifest_name = name
        elif is_tool_temp(name) or _LEGACY_PARTIAL.match(name):
            manifest_name = None
        else:
            manifest_name = f"{name.split('.')[0]}{MANIFEST_SUFFIX}"
        if manifest_name is None or not os.path.lexists(path.parent / manifest_name):
            raise ConductorError(f"{path} is not a complete backup (no manifest next to it)",
                                 path=path, hint="only backups with a manifest can be verified or restored")
        here = path.parent.resolve() == self.folder.resolve() if self.folder.is_dir() else False
        survey = (self if here else Backups(path.parent, self.engine))._survey()
        for manifest in survey.complete:
            if manifest.manifest_path.name == manifest_name and name in (manifest_name, manifest.artifact):
                return manifest
        for entry in survey.entries:
            if entry.path.name == manifest_name:
                raise _not_usable(str(path), entry)
        raise ConductorError(f"{path} is not a complete backup", path=path,
                             hint="only backups with a manifest can be verified or restored")

    def latest(self, verified: bool | None = None) -> Manifest | None:
        """The newest complete backup; ``verified=True``: the newest whose last verification
        passed; ``verified=False``: the newest not (yet) verified successfully."""
        for manifest in reversed(self._manifests()):
            if verified is None or (manifest.verified is True) == verified:
                return manifest
        return None

    # -- create

    def create(self, label: str | None = None, *, kind: str = "manual", progress=None) -> Manifest:
        """Back the database up into the folder and write its manifest; returns the manifest.

        ``kind``: "manual", "pre-migration" (taken by migrations before they run) or "safety"
        (taken by restore before it replaces the live database). ``label`` must be a safe
        name (letters, digits, ``._-``) and unique among the folder's backups.
        """
        if kind not in KINDS:
            raise ConductorError(f"unknown backup kind {kind!r}", hint=f"one of {', '.join(KINDS)}")
        self._check_label(label)
        strategy = _strategy_for(self.engine.dialect.name, self.engine)
        strategy.row_hash_max_bytes = self.row_hash_max_bytes
        self._make_folder()
        started = time.perf_counter()
        created = _now()
        backup_id = self._new_id(created)
        artifact = f"{backup_id}{ARTIFACT_SUFFIX[strategy.dialect]}"
        final = self.folder / artifact
        # the tool's one temporary pattern: lint reports it, prune removes it once this
        # process is gone, and it never looks like a backup
        temp = temp_path_for(final)
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600))
        except OSError as exc:
            raise ConductorError(f"cannot write in the backups folder {self.folder}: "
                                 f"{exc.strerror or exc}",
                                 hint=f"choose a folder you can write with {option('to', 'DIR')}; nothing was "
                                      "changed") from None
        url = self.engine.url
        try:
            progress_on = _Progress(progress, progress is not None
                                    and strategy.database_size() >= self.progress_min_bytes)
            dumped = strategy.dump(temp, progress_on)
            size, digest = dumped.artifact or _sha256_file(temp, progress_on, "backup (sha256)")
            os.chmod(temp, new_file_mode())
        except BaseException as exc:
            temp.unlink(missing_ok=True)
            if isinstance(exc, ConductorError) or not isinstance(exc, Exception):
                raise
            raise DatabaseError(f"backup of {mask(url)} failed: {_reason(exc, url)}",
                                hint="nothing was kept; check the database and the free disk space") from None
        manifest = Manifest(
            id=backup_id, label=label, kind=kind, created_at=created.isoformat(),
            engine=strategy.dialect, engine_version=dumped.engine_version, tool=dumped.tool,
            tool_version=dumped.tool_version, migration_head=dumped.head, tables=dumped.tables,
            artifact=artifact, size_bytes=size, sha256=digest, seconds=_elapsed(started),
            source=mask(url), version=MANIFEST_VERSION, folder=self.folder)
        try:
            with _folder_lock(self.folder):
                self._check_label(label)  # again: another backup may have taken it meanwhile
                # The manifest first, then the rename that completes the backup: a kill in
                # between leaves a manifest without its artifact, which prune removes (never
                # an artifact that nothing records).
                _write_manifest(manifest)
                os.replace(temp, final)
                _fsync(self.folder)
        except BaseException:
            temp.unlink(missing_ok=True)
            if not final.exists():
                manifest.manifest_path.unlink(missing_ok=True)
            raise
        return manifest

    def _make_folder(self) -> None:
        """Create the backups folder (and its parents) if missing; one-line errors."""
        if os.path.lexists(self.folder) and not self.folder.is_dir():
            raise ConductorError(f"the backups folder {self.folder} exists and is not a folder",
                                 hint=f"give a folder with {option('to', 'DIR')} (it is created when missing); "
                                      "nothing was changed")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConductorError(f"cannot create the backups folder {self.folder}: {exc.strerror or exc}",
                                 hint=f"choose a folder you can write with {option('to', 'DIR')}; nothing was "
                                      "changed") from None

    def _check_label(self, label: str | None) -> None:
        if label is None:
            return
        if not isinstance(label, str) or not LABEL_PATTERN.match(label) or ID_PATTERN.match(label):
            raise ConductorError(f"backup label {label!r} is not a safe name",
                                 hint="use 1-64 letters, digits, '.', '_' or '-', starting with a "
                                      "letter or digit (and not shaped like a backup id)")
        for manifest in self._manifests():
            if manifest.label == label:
                raise ConductorError(f"a backup labelled {label!r} exists already ({manifest.id})",
                                     hint="choose another label, or prune/delete the old backup")

    def _new_id(self, created: datetime) -> str:
        stamp = created.strftime("%Y%m%dT%H%M%SZ")
        while True:
            backup_id = f"{stamp}-{secrets.token_hex(2)}"
            # temporary names too: another backup may be writing this id right now
            if not any(self.folder.glob(f"{backup_id}.*")) and not any(self.folder.glob(f".{backup_id}.*")):
                return backup_id

    # -- verify

    def verify(self, ref: str | None = None, *, full: bool = False, progress=None) -> VerifyReport:
        """Re-hash the artifact, restore it completely into a scratch database, run the
        engine's structural checks and compare tables and migration head with the manifest.
        Every check runs; the result is recorded in the manifest (atomically). ``full``: the
        full ``integrity_check`` on a big SQLite backup too (else ``quick_check``, see the
        module docstring)."""
        manifest = self._pick(ref)
        strategy = self._strategy_matching(manifest)
        started = time.perf_counter()
        when = _now().isoformat()
        progress_on = _Progress(progress, progress is not None
                                and manifest.size_bytes >= self.progress_min_bytes)
        # The artifact's sha256 is read in a thread while the scratch restore reads the same
        # file (both in C, without the GIL): verify costs the longer of the two, not the sum.
        # Every check runs whatever the others find, so nothing waits for the hash.
        with ThreadPoolExecutor(1, thread_name_prefix="conductor-verify-sha256") as pool:
            hashed = self._artifact_checks(manifest, progress_on, pool)
            checks: list[CheckResult] = []
            if _regular_file(manifest.artifact_path):
                scratch_started = time.perf_counter()
                try:
                    with strategy.scratch() as scratch:
                        # replace=True: the same options as a confirmed restore over a database
                        # with tables (pg_restore --clean --if-exists), so its DROP statements are
                        # read and run too (no-ops in the empty scratch database)
                        checks += self._restore_and_compare(manifest, strategy, scratch, CHECK_SCRATCH,
                                                            replace=True, scratch=True, progress=progress_on,
                                                            full=full)
                except ConductorError as exc:  # the scratch database could not be made
                    checks.append(CheckResult(CHECK_SCRATCH, FAIL, str(exc), _elapsed(scratch_started)))
            checks = hashed() + checks
        report = VerifyReport(manifest.id, manifest.label, checks, _elapsed(started), when)
        report.recorded = self._record(manifest, report)
        return report

    def _pick(self, ref: str | None) -> Manifest:
        if ref:
            return self.resolve(ref)
        newest = self.latest()
        if newest is None:
            raise ConductorError(f"no backups in {self.folder}",
                                 hint=f"take one first with {command('backup')}")
        return newest

    def _strategy_matching(self, manifest: Manifest) -> _Strategy:
        if manifest.engine != self.engine.dialect.name:
            raise ConductorError(
                f"backup {manifest.id} is a {manifest.engine} backup; the connected database is "
                f"{self.engine.dialect.name}",
                hint=f"connect to a {manifest.engine} database to verify or restore it")
        return _strategy_for(manifest.engine, self.engine)

    def _artifact_checks(self, manifest: Manifest, progress: _Progress,
                         pool: ThreadPoolExecutor | None = None) -> Callable[[], list[CheckResult]]:
        """The artifact's presence and sha256 checks; returns a function giving their
        results. With ``pool`` the hash is read there (its bar is made here, so bars keep
        their order) and the function waits for it."""
        started = time.perf_counter()
        path = manifest.artifact_path
        if not _regular_file(path):
            what = "is missing" if not os.path.lexists(path) else "is not a regular file: not read"
            missing = [CheckResult(CHECK_PRESENT, FAIL, f"{path} {what}", _elapsed(started)),
                       CheckResult(CHECK_SHA256, SKIP, "no artifact")]
            return lambda: missing
        actual = path.stat().st_size
        results = [CheckResult(CHECK_PRESENT, PASS if actual == manifest.size_bytes else FAIL,
                               f"{_size_text(actual)}" if actual == manifest.size_bytes
                               else f"{actual} bytes, the manifest says {manifest.size_bytes}",
                               _elapsed(started))]

        def sha256_check(bar: _Bar | None = None) -> list[CheckResult]:
            started = time.perf_counter()
            try:
                _, digest = _sha256_file(path, progress, "verify (sha256)", bar)
            except OSError as exc:  # replaced by a link or removed meanwhile
                return [*results, CheckResult(CHECK_SHA256, FAIL, f"cannot read {path}: {exc.strerror or exc}",
                                              _elapsed(started))]
            same = digest == manifest.sha256
            return [*results, CheckResult(CHECK_SHA256, PASS if same else FAIL,
                                          digest if same else f"sha256 {digest}, the manifest says {manifest.sha256}",
                                          _elapsed(started))]

        if pool is None:
            done = sha256_check()
            return lambda: done
        bar = progress.bar(actual / _MIB, "verify (sha256)", "MiB")

        def hashed_with_bar() -> list[CheckResult]:
            with bar:
                return sha256_check(bar)

        return pool.submit(hashed_with_bar).result

    def _restore_and_compare(self, manifest: Manifest, strategy: _Strategy, target: Engine, name: str,
                             *, replace: bool, scratch: bool, progress: _Progress,
                             full: bool = False) -> list[CheckResult]:
        """Restore the artifact into ``target``, then structural checks and the comparison."""
        started = time.perf_counter()
        try:
            strategy.restore_into(manifest.artifact_path, target, replace, progress)
        except Exception as exc:  # the tool's or driver's error: the artifact did not restore
            reason = str(exc) if isinstance(exc, ConductorError) else _reason(exc, target.url)
            skipped = [CheckResult(n, SKIP, "the restore failed") for n in (CHECK_TABLES, CHECK_HEAD)]
            return [CheckResult(name, FAIL, reason, _elapsed(started)), *skipped]
        where = f"a temporary {target.dialect.name} database" if scratch else mask(target.url)
        results = [CheckResult(name, PASS, f"into {where}", _elapsed(started))]
        if scratch and strategy.dialect == "sqlite" and manifest.version >= 2:
            return self._scratch_sqlite_checks(manifest, strategy, target, results[0], full)
        if scratch and strategy.checks_in_parallel:
            # Both only read the scratch file, each on its own connection, and sqlite3 lets go
            # of the GIL while SQLite works: integrity_check runs beside the row hashes
            # instead of before them (verify then costs the longer of the two, not the sum).
            with ThreadPoolExecutor(1, thread_name_prefix="conductor-verify") as pool:
                structural = pool.submit(self._structural, strategy, target, scratch)
                compared = compare_to_manifest(manifest, target)
                return results + structural.result() + compared
        return results + self._structural(strategy, target, scratch) + compare_to_manifest(manifest, target)

    def _scratch_sqlite_checks(self, manifest: Manifest, strategy: _Strategy, target: Engine,
                               restored: CheckResult, full: bool = False) -> list[CheckResult]:
        """Verify's checks of a version-2 SQLite backup restored into its scratch file, all
        at once (each reads the file on its own, in C, without the GIL): the restored copy
        compared byte for byte with the artifact (whose sha256 matched: so the restore
        reproduces exactly the data that was backed up), the structural checks (the full
        ``integrity_check`` where the manifest has row hashes, else ``quick_check``) and
        the comparison with the manifest (row hashes where recorded, else counts)."""
        copy = Path(target.url.database or "")
        quick = not manifest.row_hashes and not full
        with ThreadPoolExecutor(2, thread_name_prefix="conductor-verify") as pool:
            same = pool.submit(_same_bytes, manifest.artifact_path, copy)
            structural = pool.submit(self._structural, strategy, target, True, quick)
            compared = compare_to_manifest(manifest, target)
            try:
                problem = same.result()
            except OSError as exc:
                problem = f"cannot compare the restored copy with the artifact: {exc.strerror or exc}"
        if problem:
            restored = CheckResult(restored.name, FAIL, problem, restored.seconds)
        else:
            restored = CheckResult(restored.name, PASS, f"{restored.detail}, byte for byte the artifact",
                                   restored.seconds)
        return [restored, *structural.result(), *compared]

    @staticmethod
    def _structural(strategy: _Strategy, target: Engine, scratch: bool,
                    quick: bool = False) -> list[CheckResult]:
        started = time.perf_counter()
        try:
            return strategy.structural(target, scratch, quick)
        except Exception as exc:  # a check that cannot run on this database is a failure
            return [CheckResult(f"{strategy.dialect} structural checks", FAIL,
                                _reason(exc, target.url), _elapsed(started))]

    def _record(self, manifest: Manifest, report: VerifyReport) -> bool:
        """Write the verification into the manifest file (re-read under the folder lock)."""
        path = manifest.manifest_path
        try:
            with _folder_lock(path.parent):
                current, problem = _read_manifest(path)
                if current is None or problem is not None:
                    return False  # replaced meanwhile by something not trusted: not written
                current.verification = {"at": report.verified_at, "passed": report.passed,
                                        "seconds": round(report.seconds, 4),
                                        "checks": [c.to_json() for c in report.checks]}
                _write_manifest(current)
        except (OSError, ValueError, ConductorError):
            return False  # e.g. a read-only copy of a backups folder: the report still stands
        manifest.verification = current.verification
        return True

    # -- restore

    def restore(self, ref: str, target: Engine | str | None = None, *, confirm: bool = False,
                progress=None) -> RestoreReport:
        """Restore a backup into ``target`` (an Engine or URL; None: this live database).

        Refused without ``confirm`` when the target is the live database or already has
        tables. Over a live database that has tables a ``safety`` backup is taken first
        (reported as ``safety_backup``; listed with kind "safety"). The artifact's
        sha256 is checked before anything is touched; after the restore the target is
        compared with the manifest (tables, head) and structurally checked.
        """
        manifest = self.resolve(ref)
        strategy = self._strategy_matching(manifest)
        if isinstance(target, str):
            target_engine, owned = make_engine(target), True
        else:
            target_engine, owned = (target or self.engine), False
        try:
            return self._restore(manifest, strategy, target_engine, confirm, progress)
        finally:
            if owned:
                target_engine.dispose()

    def _restore(self, manifest: Manifest, strategy: _Strategy, target: Engine, confirm: bool,
                 progress) -> RestoreReport:
        started = time.perf_counter()
        if target.dialect.name != manifest.engine:
            raise ConductorError(f"backup {manifest.id} is a {manifest.engine} backup; the target "
                                 f"{mask(target.url)} is {target.dialect.name}",
                                 hint=f"restore into a {manifest.engine} database")
        live = _same_database(target, self.engine)
        try:
            existing = _all_tables(target)
        except Exception as exc:
            raise DatabaseError(f"cannot read the target {mask(target.url)}: {_reason(exc, target.url)}",
                                hint="check the target URL and that the database exists") from None
        if not confirm and (live or existing):
            shown = ", ".join(existing[:8]) + (", …" if len(existing) > 8 else "")
            what = ("restoring over the live database replaces it" if live
                    else f"the target {mask(target.url)} already has tables ({shown})")
            raise ConductorError(f"{what}: refused without confirmation; nothing was changed",
                                 hint=f"pass {option('confirm')} (confirm=True) to replace it"
                                      + ("; a safety backup of the current state is taken first" if live else ""))
        progress_on = _Progress(progress, progress is not None
                                and manifest.size_bytes >= self.progress_min_bytes)
        checks = self._artifact_checks(manifest, progress_on)()
        report = RestoreReport(manifest.id, manifest.label, mask(target.url), live, False, checks, 0.0)
        if not report.passed:
            checks.append(CheckResult(CHECK_TARGET, SKIP, "the artifact does not match its manifest: "
                                                          "not restored, nothing was changed"))
            report.seconds = _elapsed(started)
            return report
        if live and existing:
            safety_started = time.perf_counter()
            report.safety_backup = self.create(kind="safety", progress=progress)
            checks.append(CheckResult(CHECK_SAFETY, PASS, f"backup {report.safety_backup.id}",
                                      _elapsed(safety_started)))
        checks += self._restore_and_compare(manifest, strategy, target, CHECK_TARGET,
                                            replace=bool(existing), scratch=False, progress=progress_on)
        report.restored = not any(c.name == CHECK_TARGET and c.status == FAIL for c in checks)
        report.seconds = _elapsed(started)
        return report

    # -- prune

    def prune(self, keep_last: int, keep_daily: int, *, dry_run: bool = False) -> PruneReport:
        """Delete backups outside the retention rules: keep the newest ``keep_last``, plus the
        newest backup of each of the last ``keep_daily`` days that have backups (UTC), plus
        always the newest verified one (so the only verified backup is never deleted).
        Leftovers of interrupted backups go too: at once when the process that wrote them is
        gone, old-style ``.partial`` files once an hour old.

        Only the folder's own files are deleted, by name: a backup only when its manifest is
        trusted and its artifact's sha256 still matches it. Everything else (forged or
        damaged manifests, links, files nobody records) is reported in ``left`` and kept.
        """
        for name, value in (("keep_last", keep_last), ("keep_daily", keep_daily)):
            if not isinstance(value, int) or value < 0:
                raise ConductorError(f"{name} must be a whole number >= 0, not {value!r}")
        if not self.folder.is_dir():
            return PruneReport([], [], [], 0, dry_run)
        # a dry run changes nothing, not even the lock file
        with contextlib.nullcontext() if dry_run else _folder_lock(self.folder):
            try:
                dir_fd = os.open(self.folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            except OSError as exc:
                raise ConductorError(f"cannot open the backups folder {self.folder}: "
                                     f"{exc.strerror or exc}") from None
            try:
                return self._prune(keep_last, keep_daily, dry_run, dir_fd)
            finally:
                os.close(dir_fd)

    def _prune(self, keep_last: int, keep_daily: int, dry_run: bool, dir_fd: int) -> PruneReport:
        survey = self._survey()
        newest_first = list(reversed(survey.complete))
        reasons: dict[str, list[str]] = {}
        for manifest in newest_first[:keep_last]:
            reasons.setdefault(manifest.id, []).append(f"newest {keep_last}")
        days_seen: list[str] = []
        for manifest in newest_first:
            day = manifest.created.astimezone(UTC).date().isoformat()
            if day not in days_seen:
                days_seen.append(day)
                if len(days_seen) <= keep_daily:
                    reasons.setdefault(manifest.id, []).append(f"daily {day}")
        verified = next((m for m in newest_first if m.verified is True), None)
        if verified is not None:
            reasons.setdefault(verified.id, []).append("newest verified")

        def row(m: Manifest) -> dict[str, Any]:
            return {"id": m.id, "label": m.label, "created": m.created_at, "size": m.size_bytes}

        kept = [{**row(m), "reasons": reasons[m.id]} for m in newest_first if m.id in reasons]
        left = [{"path": str(e.path), "reason": e.reason} for e in survey.entries if e.action == LEAVE]
        doomed: list[tuple[Manifest, tuple[int, int]]] = []
        for manifest in newest_first:
            if manifest.id in reasons:
                continue
            problem, identity = _intact(manifest, dir_fd)
            if problem is None:
                doomed.append((manifest, identity))
            else:
                left.append({"path": str(manifest.artifact_path), "reason": problem})
        leftovers = [e.path for e in survey.entries if e.action == REMOVE]
        freed = sum(_size_of(path) for path in leftovers)
        deleted: list[dict[str, Any]] = []
        removed: list[str] = []
        for manifest, identity in doomed:
            if not dry_run:
                # the artifact first, only the file just hashed: a kill in between leaves a
                # manifest without its artifact, which the next prune removes
                problem = _unlink(dir_fd, manifest.artifact, identity) or _unlink(
                    dir_fd, manifest.manifest_path.name)
                if problem:
                    left.append({"path": str(manifest.artifact_path), "reason": problem})
                    continue
            deleted.append(row(manifest))
            freed += manifest.size_bytes
        for path in leftovers:
            problem = None if dry_run else _unlink(dir_fd, path.name)
            if problem:
                left.append({"path": str(path), "reason": problem})
            else:
                removed.append(str(path))
        if not dry_run and (deleted or removed):
            with contextlib.suppress(OSError):
                os.fsync(dir_fd)
        return PruneReport(kept, deleted, removed, freed, dry_run, left)


__all__ = [
    "KINDS", "Backups", "Manifest", "PgTools", "PruneReport", "RestoreReport", "VerifyReport", "compare_to_manifest", "last_migration_at", "migration_head",
    "pg_tool_connection",
]
