"""Versioned migrations with Alembic: new (autogenerate), up, down, history, current, sql,
check and lint for one component's ``storages/<id>/migrations/`` folder.

Alembic does the work; this module builds its ``Config`` in code (no ``alembic.ini``, so no
URL is ever written to a file), hands it the live connection through
``config.attributes``, and adds what a data engineer needs around it:

- **Safety.** One ``up``/``down`` is one transaction, on PostgreSQL and on SQLite (whose DDL
  is transactional once the transaction is opened explicitly, see ``connection.py``), and a
  failed run is undone by rolling it back — never by copying a file back, which would also
  erase what other connections committed meanwhile. The transaction holds the database for
  the whole run (SQLite ``BEGIN IMMEDIATE``; PostgreSQL an advisory lock), and the live
  revision is read only once it is held: a second ``migrate up`` waits for the first and
  then finds nothing to do, other writers wait, and nobody races. On SQLite a revision may
  not COMMIT or ROLLBACK by itself (an authorizer refuses it), so the run stays one unit.
  A failed run leaves schema and rows exactly as they were, and the error names the
  revision and the driver's reason. Dialects without transactional DDL (e.g. MySQL) are
  refused plainly.
- **Destructive downgrades.** ``down`` counts the rows and non-NULL values of every table
  before it runs and compares afterwards, inside the same transaction: a downgrade that
  drops tables or columns holding data, or deletes rows, is rolled back and refused unless
  ``confirm`` is given (:meth:`Migrations.down_losses` runs the same check and always rolls
  back, to ask before a backup is taken).
- **Foreign keys in batch mode.** SQLite table rebuilds (``render_as_batch``) drop and
  re-create tables; with ``PRAGMA foreign_keys=ON`` (the tool's default) that would fail or
  cascade. Migrations therefore run with foreign keys off on their connection, and
  ``PRAGMA foreign_key_check`` after each revision turns any dangling reference into a
  failure of that revision.
- **Revision hashes.** ``up`` records ``(revision, sha256 of its file, applied_at)`` in the
  ``conductor_revision_hashes`` table in the same transaction; ``down`` removes the row;
  ``check`` reports an applied revision whose file changed afterwards.
- **check** and **lint** (see their docstrings).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from alembic import command
from alembic.config import Config
from alembic.operations import ops as alembic_ops
from alembic.runtime.environment import EnvironmentContext
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    delete,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import quoted_name

from ..errors import ConductorError, DatabaseError, UnsupportedByDialect, option
from ..errors import command as suggest  # alembic's `command` is imported above
from ..fsio import atomic_write_bytes
from .connection import (
    SQLITE_BEGIN_IMMEDIATE,
    connection_of,
    driver_reason,
    first_line,
    has_transactional_ddl,
    is_driver_error,
    require_reflection,
    scrub,
    table_exists,
)
from .fingerprint import TOOL_TABLES, TableFingerprint, fingerprint_table, user_tables
from .sample import seed
from .schema import declared_metadata
from .scratch import scratch_engine

#: revision files sort by creation time: 20240131_142501_<rev>_<slug>.py
FILE_TEMPLATE = ("%%(year)d%%(month).2d%%(day).2d_%%(hour).2d%%(minute).2d%%(second).2d"
                 "_%%(rev)s_%%(slug)s")
HASH_TABLE_NAME = "conductor_revision_hashes"
assert HASH_TABLE_NAME in TOOL_TABLES  # fingerprints and comparisons leave it out
NEW_HINT = f"create the first revision with {suggest('migrate new', option('m', 'MESSAGE'))}"
#: how long ``up``/``down`` waits for another migration or writer before giving up unchanged
LOCK_TIMEOUT_SECONDS = 30
#: PostgreSQL advisory lock key held by ``up``/``down``: one migration at a time per database
_PG_LOCK_KEY = 0x636F6E64756374  # "conduct"

_hash_metadata = MetaData()
REVISION_HASHES = Table(
    HASH_TABLE_NAME, _hash_metadata,
    Column("revision", String(64), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("file", String(255), nullable=False),
    Column("applied_at", String(40), nullable=False),
)

Status = Literal["pass", "fail", "skip"]

# --------------------------------------------------------------------------- migration state


def live_heads(bind: Engine | Connection) -> tuple[str, ...]:
    """The revisions recorded in the database's ``alembic_version`` (sorted; empty when the
    table is absent or empty): the one reader of a database's migration state."""
    with connection_of(bind) as conn:
        if not table_exists(conn, "alembic_version"):
            return ()
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
        return tuple(sorted(str(v) for v in rows))


def migration_head(bind: Engine | Connection) -> str | None:
    """The Alembic revision(s) of the database (comma-joined if several heads), or None
    when none is applied (what backup manifests record and the gate compares)."""
    return ",".join(live_heads(bind)) or None


def last_migration_at(bind: Engine | Connection) -> datetime | None:
    """When the newest recorded migration was applied: max ``applied_at`` of
    ``conductor_revision_hashes`` (written by ``migrations.up``); None when absent or empty."""
    with connection_of(bind) as conn:
        if not table_exists(conn, HASH_TABLE_NAME):
            return None
        values = conn.execute(text(f"SELECT applied_at FROM {HASH_TABLE_NAME}")).scalars().all()
    stamps = []
    for value in values:
        try:
            stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        except ValueError:
            continue
        stamps.append(stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC))
    return max(stamps, default=None)


# --------------------------------------------------------------------------- files written by init()

ENV_PY = '''\
"""Alembic environment for this component's migrations (written by conductor-magics).

The connection and the target schema are handed over at run time through
``config.attributes`` by conductor-magics' migrate step (CLI or notebook), so
no database URL (and no password) is ever written to a file.
"""

from alembic import context

#: the tooling's own tables: never created, dropped or compared by a migration
TOOL_TABLES = __TOOL_TABLES__

config = context.config


def include_object(obj, name, type_, reflected, compare_to):
    if type_ == "table":
        return name not in TOOL_TABLES
    table = getattr(obj, "table", None)
    return getattr(table, "name", None) not in TOOL_TABLES


def autogenerate_plugins():
    try:  # compares named CHECK constraints too (Alembic >= 1.17)
        import alembic.ext.checkconstraint_byname  # noqa: F401
    except ImportError:
        return {}
    return {"autogenerate_plugins": ["alembic.autogenerate.*",
                                     "alembic.ext.checkconstraint_byname"]}


def options(dialect_name):
    opts = dict(
        target_metadata=config.attributes.get("target_metadata"),
        compare_type=True,
        include_object=include_object,
        render_as_batch=dialect_name == "sqlite",
        transaction_per_migration=False,
        **autogenerate_plugins(),
    )
    opts.update(config.attributes.get("configure_options", {}))
    return opts


if context.is_offline_mode():
    dialect_name = config.attributes["dialect_name"]
    context.configure(dialect_name=dialect_name, literal_binds=True, **options(dialect_name))
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run these migrations with __MIGRATE_UP__: "
                           "it passes the database connection to Alembic")
    context.configure(connection=connection, **options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()
'''

SCRIPT_MAKO = '''\
"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision: str = ${repr(up_revision)}
down_revision: Union[str, Sequence[str], None] = ${repr(down_revision)}
branch_labels: Union[str, Sequence[str], None] = ${repr(branch_labels)}
depends_on: Union[str, Sequence[str], None] = ${repr(depends_on)}


def upgrade() -> None:
    """Upgrade schema (and data: op.execute / op.get_bind() for data migrations)."""
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    """Undo upgrade() so that upgrade -> downgrade -> upgrade keeps the data."""
    ${downgrades if downgrades else "pass"}
'''

# --------------------------------------------------------------------------- results


@dataclass
class RevisionInfo:
    revision: str
    message: str
    path: Path
    operations: list[str] = field(default_factory=list)
    #: what the author should look at (e.g. differences autogenerate could not express)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"revision": self.revision, "message": self.message, "path": str(self.path),
                "operations": list(self.operations), "notes": list(self.notes)}

    def to_text(self) -> str:
        ops = "\n".join(f"  - {o}" for o in self.operations) or "  (empty: edit upgrade()/downgrade())"
        notes = "".join(f"\nnote: {n}" for n in self.notes)
        return f"revision {self.revision} ({self.message}) → {self.path.name}\n{ops}{notes}"


@dataclass
class MigrationRun:
    from_revision: str | None
    to_revision: str | None
    applied: list[str]
    seconds: float
    #: whether a failed run was rolled back (set on the error's ``run``)
    rolled_back: bool = False
    #: how a failure is undone: "transaction" ("" when nothing ran)
    safety: str = ""
    #: what a downgrade deleted (confirmed) or would delete: "table t (12 row(s))", ...
    losses: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"from_revision": self.from_revision, "to_revision": self.to_revision,
                "applied": list(self.applied), "seconds": round(self.seconds, 4),
                "rolled_back": self.rolled_back, "safety": self.safety,
                "losses": list(self.losses)}

    def to_text(self) -> str:
        if not self.applied:
            return f"nothing to do: the database is at {self.to_revision or 'base'}"
        return (f"{self.from_revision or 'base'} → {self.to_revision or 'base'}: "
                f"{len(self.applied)} revision(s) ({', '.join(self.applied)}) "
                f"in {self.seconds:.2f}s"
                + (f"; deleted {'; '.join(self.losses)}" if self.losses else ""))


@dataclass
class CheckRow:
    check: str
    status: Status
    detail: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"check": self.check, "status": self.status, "detail": self.detail,
                "seconds": round(self.seconds, 4)}


@dataclass
class CheckReport:
    results: list[CheckRow] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.status != "fail" for r in self.results)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([r.to_json() for r in self.results],
                            columns=["check", "status", "detail", "seconds"])

    def to_json(self) -> dict:
        return {"passed": self.passed, "results": [r.to_json() for r in self.results]}

    def to_text(self) -> str:
        lines = [f"[{r.status}] {r.check}" + (f": {r.detail}" if r.detail else "")
                 for r in self.results]
        failed = sum(r.status == "fail" for r in self.results)
        lines.append("migration checks passed" if self.passed else f"{failed} check(s) failed")
        return "\n".join(lines)


@dataclass
class LintFinding:
    revision: str
    severity: Literal["error", "warning"]
    code: str
    message: str

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class LintReport:
    findings: list[LintFinding] = field(default_factory=list)
    #: the revisions that were linted, oldest first
    revisions: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return bool(self.findings)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([f.to_json() for f in self.findings],
                            columns=["revision", "severity", "code", "message"])

    def to_json(self) -> dict:
        return {"flagged": self.flagged, "revisions": list(self.revisions),
                "findings": [f.to_json() for f in self.findings]}

    def to_text(self) -> str:
        if not self.revisions:
            return "nothing to lint: no pending revisions"
        lines = [f"{f.severity}: {f.revision} {f.code}: {f.message}" for f in self.findings]
        lines.append(f"{len(self.findings)} finding(s) in {len(self.revisions)} revision(s)"
                     if self.findings else f"{len(self.revisions)} revision(s): nothing flagged")
        return "\n".join(lines)


class _RevisionFailed(Exception):
    """A check the tool runs after a revision (e.g. foreign_key_check) failed."""


class DestructiveDowngrade(ConductorError):
    """A downgrade would drop tables or columns holding data (or delete rows) and was not
    confirmed; nothing was changed."""


def destructive_downgrade(target: str, losses: list[str]) -> DestructiveDowngrade:
    """The refusal of an unconfirmed downgrade to ``target`` that would delete ``losses``."""
    return DestructiveDowngrade(
        f"migrate down {target} would delete data: {'; '.join(losses)}",
        hint=f"nothing changed: pass {option('confirm')} to run it (a pre-migration backup is "
             "taken first unless workflow.md says never)")


# --------------------------------------------------------------------------- the API


class Migrations:
    """Alembic migrations in ``folder`` (``storages/<id>/migrations``) against ``engine``."""

    def __init__(self, folder: Path, engine: Engine):
        self.folder = Path(folder)
        self.engine = engine

    # ----------------------------------------------------------------- set-up

    def init(self) -> bool:
        """Create the folder, ``env.py``, ``script.py.mako`` and ``versions/`` where missing.
        Returns whether anything was created."""
        created = False
        versions = self.folder / "versions"
        if not versions.is_dir():
            versions.mkdir(parents=True, exist_ok=True)
            created = True
        env_py = (ENV_PY.replace("__TOOL_TABLES__", repr(sorted(TOOL_TABLES)))
                  .replace("__MIGRATE_UP__", suggest("migrate up")))
        for name, content in (("env.py", env_py), ("script.py.mako", SCRIPT_MAKO)):
            path = self.folder / name
            if not path.exists():
                atomic_write_bytes(path, content.encode("utf-8"))
                created = True
        return created

    def _config(self, **attributes: Any) -> Config:
        config = Config(cmd_opts=argparse.Namespace(quiet=True))
        config.set_main_option("script_location", str(self.folder).replace("%", "%%"))
        config.set_main_option("path_separator", "os")
        config.set_main_option("file_template", FILE_TEMPLATE)
        config.set_main_option("timezone", "UTC")
        config.attributes.update(attributes)
        return config

    def _script(self) -> ScriptDirectory:
        if not (self.folder / "env.py").is_file() or not (self.folder / "versions").is_dir():
            raise ConductorError(f"no migrations in {self.folder}", hint=NEW_HINT)
        try:
            return ScriptDirectory.from_config(self._config())
        except CommandError as exc:
            raise ConductorError(f"cannot read the migrations in {self.folder}: {exc}") from None

    def _heads(self, script: ScriptDirectory) -> list[str]:
        try:
            heads = script.get_heads()
        except CommandError as exc:
            raise ConductorError(f"cannot read the revisions in {self.folder}: {exc}") from None
        except Exception as exc:  # a revision file that does not import
            raise ConductorError(f"a revision file in {self.folder / 'versions'} does not load: "
                                 f"{type(exc).__name__}: {exc}") from None
        return heads

    def _require_revisions(self, script: ScriptDirectory) -> list[str]:
        heads = self._heads(script)
        if not heads:
            raise ConductorError(f"no revisions yet in {self.folder / 'versions'}", hint=NEW_HINT)
        return heads

    def _url_scrub(self, message: str) -> str:
        return scrub(message, self.engine.url)

    # ----------------------------------------------------------------- reading state

    def _live_heads(self) -> tuple[str, ...]:
        try:
            return live_heads(self.engine)
        except DBAPIError as exc:
            raise DatabaseError(f"cannot read the database's revision: "
                                f"{first_line(self._url_scrub(str(exc.orig or exc)))}") from None

    def current(self) -> str | None:
        """The live database's revision (None: no revision applied)."""
        heads = self._live_heads()
        return ",".join(sorted(heads)) if heads else None

    def at_head(self) -> bool:
        """Whether the live database is at every head (False when there are no revisions)."""
        if not (self.folder / "versions").is_dir():
            return False
        heads = set(self._heads(self._script()))
        return bool(heads) and set(self._live_heads()) == heads

    def _applied(self, script: ScriptDirectory, heads: tuple[str, ...]) -> set[str]:
        if not heads:
            return set()
        try:
            return {s.revision for s in script.iterate_revisions(heads, "base")}
        except CommandError as exc:
            raise ConductorError(
                f"the database is at revision {', '.join(heads)}, which is not in "
                f"{self.folder / 'versions'} ({exc})",
                hint=f"restore the missing revision file, or point {option('url')} at the right database") from None

    def history(self) -> pd.DataFrame:
        """One row per revision, oldest first: revision, down_revision, message, file,
        created, applied (to the live database), is_head."""
        columns = ["revision", "down_revision", "message", "file", "created", "applied", "is_head"]
        script = self._script()
        heads = set(self._heads(script))
        applied = self._applied(script, self._live_heads()) if heads else set()
        rows = []
        for sc in reversed(list(script.walk_revisions())):
            rows.append({"revision": sc.revision, "down_revision": _join(sc.down_revision),
                         "message": sc.doc, "file": Path(sc.path).name, "created": _created(sc),
                         "applied": sc.revision in applied, "is_head": sc.revision in heads})
        frame = pd.DataFrame(rows, columns=columns)
        # keep None (the first revision has no parent) rather than a string column's NaN
        frame["down_revision"] = pd.Series([r["down_revision"] for r in rows], dtype=object)
        return frame

    # ----------------------------------------------------------------- running migrations

    @contextmanager
    def _migration_connection(self, engine: Engine, lock: bool = False) -> Iterator[Connection]:
        """A connection to run migrations on. SQLite: foreign keys off while batch mode
        rebuilds tables (PRAGMA foreign_keys is ignored inside a transaction, so it is set
        before one starts), back on afterwards. ``lock``: its transactions start with
        BEGIN IMMEDIATE and wait up to LOCK_TIMEOUT_SECONDS for other writers."""
        sqlite = engine.dialect.name == "sqlite"
        with engine.connect() as conn:
            # SQLAlchemy emits BEGIN on SQLite itself, so the PRAGMAs go straight to the
            # driver while no transaction is open.
            driver = conn.connection.driver_connection if sqlite else None
            busy = None
            if driver is not None:
                driver.execute("PRAGMA foreign_keys=OFF")
                if lock:
                    busy = driver.execute("PRAGMA busy_timeout").fetchone()[0]
                    driver.execute(f"PRAGMA busy_timeout={int(LOCK_TIMEOUT_SECONDS * 1000)}")
                    conn.execution_options(**{SQLITE_BEGIN_IMMEDIATE: True})
            try:
                yield conn
            finally:
                if driver is not None:
                    conn.rollback()
                    driver.execute("PRAGMA foreign_keys=ON")
                    if busy is not None:
                        driver.execute(f"PRAGMA busy_timeout={int(busy)}")

    def _hold(self, conn: Connection, verb: str) -> None:
        """Begin the run's transaction holding the database: SQLite BEGIN IMMEDIATE (other
        writers wait for it), PostgreSQL a transaction-scoped advisory lock (another
        ``up``/``down`` waits). Gives up unchanged after LOCK_TIMEOUT_SECONDS."""
        try:
            conn.begin()
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(LOCK_TIMEOUT_SECONDS)}s'")
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
                conn.exec_driver_sql("SET LOCAL lock_timeout TO DEFAULT")
        except DBAPIError as exc:
            conn.rollback()
            raise DatabaseError(
                f"migrate {verb} could not start: another connection held the database for "
                f"more than {LOCK_TIMEOUT_SECONDS}s (another migration or a long write "
                f"transaction): {self._url_scrub(first_line(str(exc.orig or exc)))}",
                hint="nothing changed: run it again when the other one has finished") from None

    def _plan(self, script: ScriptDirectory, target: str, heads: tuple[str, ...],
              upgrade: bool) -> list[Script]:
        """The revisions ``up``/``down`` would run, in order; unknown targets are refused."""
        try:
            steps = (script._upgrade_revs(target, heads) if upgrade
                     else script._downgrade_revs(target, heads))
        except CommandError as exc:
            if not upgrade and not heads:
                raise ConductorError("nothing to downgrade: no revision is applied to the database",
                                     hint=f"see {suggest('migrate history')}") from None
            raise ConductorError(f"cannot {'upgrade' if upgrade else 'downgrade'} to {target!r}: "
                                 f"{exc}", hint=f"see {suggest('migrate history')} for revisions") from None
        return [step.revision for step in steps]

    def _run_steps(self, conn: Connection, script: ScriptDirectory, target: str, upgrade: bool,
                   done: list[str], record_hashes: bool) -> None:
        """Run Alembic's upgrade/downgrade to ``target`` on ``conn`` (inside the caller's
        transaction), appending each finished revision to ``done``."""
        sqlite = conn.dialect.name == "sqlite"
        if record_hashes:
            if upgrade:
                REVISION_HASHES.create(conn, checkfirst=True)
            record_hashes = inspect(conn).has_table(HASH_TABLE_NAME)

        def on_apply(ctx, step, heads, run_args):  # called inside the migration's transaction
            revision = step.up_revision_id
            if sqlite:
                problems = ctx.connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if problems:
                    tables = sorted({f"{r[0]} → {r[2]}" for r in problems})
                    raise _RevisionFailed(f"{len(problems)} row(s) break a foreign key afterwards "
                                          f"({', '.join(tables)})")
            if record_hashes:
                ctx.connection.execute(delete(REVISION_HASHES)
                                       .where(REVISION_HASHES.c.revision == revision))
                if step.is_upgrade:
                    path = Path(script.get_revision(revision).path)
                    ctx.connection.execute(REVISION_HASHES.insert().values(
                        revision=revision, sha256=_file_sha256(path), file=path.name,
                        applied_at=datetime.now(UTC).isoformat(timespec="seconds")))
            done.append(revision)

        def steps(rev, context):
            return script._upgrade_revs(target, rev) if upgrade else script._downgrade_revs(target, rev)

        config = self._config(connection=conn, configure_options={"on_version_apply": [on_apply]})
        with EnvironmentContext(config, script, fn=steps, destination_rev=target):
            script.run_env()

    def _migrate(self, target: str, upgrade: bool, confirm: bool = True,
                 dry_run: bool = False) -> MigrationRun:
        started = time.perf_counter()
        verb = "up" if upgrade else "down"
        script = self._script()
        self._require_revisions(script)
        if not (has_transactional_ddl(self.engine) or self.engine.dialect.name == "sqlite"):
            raise UnsupportedByDialect(
                f"migrate {verb} is not supported on {self.engine.dialect.name}: its DDL is "
                "not transactional, so a failed revision could leave the database half-migrated",
                hint=f"take a backup and run the SQL from {suggest('migrate sql')} yourself")
        done: list[str] = []
        with self._migration_connection(self.engine, lock=True) as conn:
            self._hold(conn, verb)
            try:
                # read only now that the database is held: a run that waited for another
                # one sees what that one applied
                heads = live_heads(conn)
                self._applied(script, heads)
                before = ",".join(sorted(heads)) or None
                plan = self._plan(script, target, heads, upgrade)
            except BaseException:
                conn.rollback()
                raise
            if not plan:
                conn.rollback()
                return MigrationRun(before, before, [], time.perf_counter() - started)
            denied: list[str] = []
            try:
                counts = None if upgrade else _measure(conn)
                with _one_transaction(conn, denied):
                    self._run_steps(conn, script, target, upgrade, done, record_hashes=True)
                losses = [] if counts is None else _losses(counts, _measure(conn))
                after = ",".join(live_heads(conn))
                if losses and not confirm:
                    raise destructive_downgrade(target, losses)
                if dry_run:
                    conn.rollback()
                else:
                    conn.commit()
            except Exception as exc:
                conn.rollback()
                error = self._failure(exc, plan, done, upgrade, denied)
                error.run = MigrationRun(before, before, [], time.perf_counter() - started,
                                         True, "transaction")
                raise error from None
        return MigrationRun(before, before if dry_run else (after or None), done,
                            time.perf_counter() - started, False, "transaction", losses)

    def _failure(self, exc: Exception, plan: list[Script], done: list[str], upgrade: bool,
                 denied: list[str]) -> ConductorError:
        if isinstance(exc, ConductorError):
            return exc
        failed = plan[len(done)] if len(done) < len(plan) else plan[-1]
        if denied:
            reason = (f"the revision ran {denied[0]} itself, which a migration may not do: "
                      "the whole run is one transaction so that a failure can be undone "
                      "(split a large data migration into several revisions instead)")
        elif is_driver_error(exc):
            reason = driver_reason(exc, self.engine.url)
        elif isinstance(exc, _RevisionFailed):
            reason = str(exc)
        else:
            reason = f"{type(exc).__name__}: {first_line(str(exc))}"
        reason = self._url_scrub(reason)
        return DatabaseError(
            f"{'upgrade' if upgrade else 'downgrade'} failed in revision {failed.revision} "
            f"({failed.doc}): {reason}",
            path=failed.path,
            hint="nothing changed: the run's transaction was rolled back"
                 + (f" (revisions {', '.join(done)} were undone too)" if done else ""))

    def up(self, target: str = "head") -> MigrationRun:
        """Upgrade the live database to ``target`` (default: head) in one transaction."""
        return self._migrate(target, upgrade=True)

    def down(self, target: str = "-1", confirm: bool = False) -> MigrationRun:
        """Downgrade the live database to ``target`` (default: one revision back) in one
        transaction. A downgrade that drops tables or columns holding data, or deletes
        rows, is rolled back and raises :class:`DestructiveDowngrade` unless ``confirm``."""
        return self._migrate(target, upgrade=False, confirm=confirm)

    def down_losses(self, target: str = "-1") -> list[str]:
        """What ``down(target)`` would delete ("table t (12 row(s))", "column t.c (3
        value(s))", "5 row(s) of table t"), found by running it and rolling it back."""
        return self._migrate(target, upgrade=False, confirm=True, dry_run=True).losses

    # ----------------------------------------------------------------- new revisions

    def new(self, message: str, declared_sql: str | None, *, empty: bool = False) -> RevisionInfo:
        """A revision taking the database from the current head to the declared schema
        (Alembic autogenerate against a scratch database upgraded to head), or an empty,
        hand-editable one (``empty=True``, for data migrations)."""
        if not message or not message.strip():
            raise ConductorError("a revision needs a message", hint="e.g. -m 'add orders.note'")
        if not empty and not (declared_sql and declared_sql.strip()):
            raise ConductorError("no declared schema to generate a revision from",
                                 hint=f"declare it with {suggest('schema declare', cell=True)}, or pass "
                                      f"{option('empty')} for a hand-written one")
        self.init()
        script = self._script()
        heads = self._heads(script)
        if len(heads) > 1:
            raise ConductorError(f"the migrations have {len(heads)} heads ({', '.join(heads)})",
                                 hint="merge them first (alembic merge) so history is linear")
        if empty:
            created = command.revision(self._config(), message=message.strip())
            return RevisionInfo(created.revision, message.strip(), Path(created.path), [])
        require_reflection(self.engine, "migrate new")
        target = declared_metadata(declared_sql, self.engine)
        with scratch_engine(self.engine) as scratch, self._migration_connection(scratch) as conn:
            if heads:
                with conn.begin():
                    self._run_steps(conn, script, "heads", True, [], record_hashes=False)
            operations, created = self._autogenerate(conn, target, message.strip(), write=True)
            if not operations:
                raise ConductorError("the database at head already matches the declared schema",
                                     hint=f"change the declared schema first, or pass {option('empty')} "
                                          "for a data migration")
            # try the new revision on the scratch database and see what is still missing
            try:
                with conn.begin():
                    self._run_steps(conn, self._script(), created.revision, True, [],
                                    record_hashes=False)
            except Exception as exc:
                raise DatabaseError(
                    f"the generated revision {created.revision} does not apply to a scratch "
                    f"database at head: {self._reason(exc)}", path=created.path,
                    hint="edit the revision file (or delete it and change the declared "
                         "schema)") from None
            remaining, _ = self._autogenerate(conn, target, "remaining", write=False)
        info = RevisionInfo(created.revision, message.strip(), Path(created.path), operations)
        if remaining:
            info.notes.append("autogenerate could not express everything; add by hand: "
                              + "; ".join(remaining))
        return info

    def _autogenerate(self, conn: Connection, target: MetaData, message: str,
                      write: bool) -> tuple[list[str], Script | None]:
        """Alembic autogenerate of ``conn`` (at head) against ``target``: the operations, and
        the written revision when ``write`` and something differs."""
        found: list[str] = []

        def directives(context, revision, scripts):
            migration = scripts[0]
            found.extend(_describe_ops(migration.upgrade_ops))
            if not write or migration.upgrade_ops.is_empty():
                scripts[:] = []

        config = self._config(connection=conn, target_metadata=target)
        try:
            created = command.revision(config, message=message, autogenerate=True,
                                       process_revision_directives=directives)
        finally:
            conn.rollback()  # autogenerate only reads; end the transaction it began
        return found, created if isinstance(created, Script) else None

    # ----------------------------------------------------------------- offline SQL

    def sql(self, revision_range: str = "base:head") -> str:
        """The SQL that ``up`` (or ``down`` for a range going back, e.g. ``head:base``) would
        run, rendered offline for the engine's dialect. SQLite table rebuilds (batch mode)
        cannot be rendered offline; those ranges are recorded from a run on a scratch
        database instead."""
        script = self._script()
        self._require_revisions(script)
        start, _, end = revision_range.rpartition(":")
        start = start or "base"
        downgrade = self._goes_down(script, start, end)
        buffer = io.StringIO()
        config = self._config(dialect_name=self.engine.dialect.name)
        config.output_buffer = buffer
        try:
            run = command.downgrade if downgrade else command.upgrade
            run(config, f"{start}:{end}" if (downgrade or start != "base") else end, sql=True)
        except CommandError as exc:
            if "copy_from" in str(exc) and self.engine.dialect.name == "sqlite":
                return self._recorded_sql(script, start, end, downgrade)
            raise ConductorError(f"cannot render SQL for {revision_range!r}: {exc}",
                                 hint=f"see {suggest('migrate history')} for revisions") from None
        return buffer.getvalue()

    def _goes_down(self, script: ScriptDirectory, start: str, end: str) -> bool:
        if end == "base":
            return start != "base"
        if start == "base":
            return False
        try:
            below = {s.revision for s in script.iterate_revisions(start, "base")}
            return all(s.revision in below for s in script.get_revisions(end)) and \
                {s.revision for s in script.get_revisions(start)} != \
                {s.revision for s in script.get_revisions(end)}
        except CommandError as exc:
            raise ConductorError(f"unknown revision in {start}:{end}: {exc}",
                                 hint=f"see {suggest('migrate history')} for revisions") from None

    def _recorded_sql(self, script: ScriptDirectory, start: str, end: str, downgrade: bool) -> str:
        statements: list[str] = []

        def record(conn, cursor, statement, parameters, context, executemany):
            head = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
            if head not in ("SELECT", "PRAGMA"):
                statements.append(_inline(statement, parameters) + ";")

        with scratch_engine(self.engine) as scratch, self._migration_connection(scratch) as conn:
            if start != "base":
                with conn.begin():
                    self._run_steps(conn, script, start, True, [], record_hashes=False)
            event.listen(conn, "before_cursor_execute", record)
            try:
                with conn.begin():
                    self._run_steps(conn, script, end, not downgrade, [], record_hashes=False)
            finally:
                event.remove(conn, "before_cursor_execute", record)
        header = ("-- SQLite: recorded from a run on a scratch database (table rebuilds in "
                  "batch mode cannot be rendered offline)\n")
        if statements and statements[0] == "BEGIN;":
            statements.append("COMMIT;")
        return header + "\n".join(statements) + "\n"

    # ----------------------------------------------------------------- check

    def check(self, declared_sql: str | None, rows: int = 20) -> CheckReport:
        """The migration-setup gate: one head; empty → head; per revision upgrade →
        downgrade → upgrade keeps seeded data; head matches the declared schema; live
        database at head; applied revision files unchanged. One row per check."""
        report = CheckReport()
        script = self._script()
        heads = self._heads(script)

        started = time.perf_counter()
        if len(heads) == 1:
            report.results.append(CheckRow("one head", "pass", heads[0], _since(started)))
        else:
            detail = ("no revisions yet; " + NEW_HINT) if not heads else \
                f"{len(heads)} heads: {', '.join(heads)} (merge them)"
            report.results.append(CheckRow("one head", "fail", detail, _since(started)))
        if not heads:
            return report
        require_reflection(self.engine, "migrate check")
        revisions = list(reversed(list(script.walk_revisions())))
        linear = len(heads) == 1 and all(not isinstance(s.down_revision, tuple | list)
                                         for s in revisions)

        # empty → head, then head against the declared schema, on one scratch database
        with scratch_engine(self.engine) as scratch:
            started = time.perf_counter()
            at_head = False
            try:
                with self._migration_connection(scratch) as conn, conn.begin():
                    self._run_steps(conn, script, "heads", True, [], record_hashes=False)
                at_head = True
                report.results.append(CheckRow("empty → head", "pass",
                                               f"{len(revisions)} revision(s)", _since(started)))
            except Exception as exc:
                report.results.append(CheckRow("empty → head", "fail", self._reason(exc),
                                               _since(started)))
            started = time.perf_counter()
            if declared_sql is None or not declared_sql.strip():
                report.results.append(CheckRow("head matches declared schema", "skip",
                                               "no declared schema (schema.sql)", 0.0))
            elif not at_head:
                report.results.append(CheckRow("head matches declared schema", "skip",
                                               "the database could not be upgraded to head", 0.0))
            else:
                try:
                    target = declared_metadata(declared_sql, self.engine)
                    with scratch.connect() as conn:
                        diff, _ = self._autogenerate(conn, target, "check", write=False)
                    report.results.append(CheckRow(
                        "head matches declared schema", "fail" if diff else "pass",
                        ("differs: " + "; ".join(diff) + f" (create a revision with "
                         f"{suggest('migrate new')})") if diff else "no autogenerate difference",
                        _since(started)))
                except Exception as exc:
                    report.results.append(CheckRow("head matches declared schema", "fail",
                                                   self._reason(exc), _since(started)))
            report.results.append(self._untracked_indexes_row(scratch, at_head))

        # upgrade → downgrade → upgrade per revision on seeded sample rows
        if not linear:
            report.results.append(CheckRow("upgrade → downgrade → upgrade keeps data", "skip",
                                           "needs one linear history (merge the heads)", 0.0))
        else:
            report.results.extend(self._round_trips(script, revisions, rows))

        started = time.perf_counter()
        live = self.current()
        ok = len(heads) == 1 and live == heads[0]
        report.results.append(CheckRow(
            "live database at head", "pass" if ok else "fail",
            f"at {live}" if ok else f"live database at {live or 'base (nothing applied)'}, "
                                    f"head is {', '.join(heads)}: run {suggest('migrate up')}",
            _since(started)))
        report.results.append(self._hash_check(script))
        return report

    def _untracked_indexes_row(self, head: Engine, at_head: bool) -> CheckRow:
        """Indexes in the live database that no revision creates (a candidate left by an
        interrupted benchmark, an index made by hand): drift the revisions do not know."""
        name = "live indexes all created by revisions"
        started = time.perf_counter()
        if not at_head:
            return CheckRow(name, "skip", "the database could not be upgraded to head", 0.0)
        if set(self._live_heads()) != set(self._heads(self._script())):
            return CheckRow(name, "skip", "the live database is not at head", 0.0)
        try:
            extra = sorted(untracked_indexes(self.engine, head))
        except Exception as exc:
            return CheckRow(name, "fail", self._reason(exc), _since(started))
        if extra:
            return CheckRow(name, "fail", f"{', '.join(extra)} in the live database, created by no "
                            "revision: drop it, or declare it in schema.sql and create a revision "
                            f"({suggest('migrate new')})", _since(started))
        return CheckRow(name, "pass", "no index outside the revisions", _since(started))

    def _reason(self, exc: Exception) -> str:
        if is_driver_error(exc):
            return driver_reason(exc, self.engine.url)
        if isinstance(exc, ConductorError):
            return self._url_scrub(str(exc))
        return self._url_scrub(f"{type(exc).__name__}: {first_line(str(exc))}")

    def _round_trips(self, script: ScriptDirectory, revisions: list[Script],
                     rows: int) -> list[CheckRow]:
        results: list[CheckRow] = []
        broken = None
        with scratch_engine(self.engine) as scratch, self._migration_connection(scratch) as conn:
            for index, sc in enumerate(revisions):
                name = f"upgrade → downgrade → upgrade keeps data: {sc.revision}"
                if broken:
                    results.append(CheckRow(name, "skip", f"{broken} failed before it", 0.0))
                    continue
                started = time.perf_counter()
                parent = sc.down_revision or "base"
                step = "upgrade"
                try:
                    with conn.begin():
                        before = _columns(conn)
                    with conn.begin():
                        self._run_steps(conn, script, sc.revision, True, [], record_hashes=False)
                    step = "seeding sample rows"
                    with conn.begin():
                        seed(conn, rows=rows, seed=index)
                    with conn.begin():
                        kept = _kept_columns(before, _columns(conn))
                        first = _kept_fingerprint(conn, kept)
                    step = "downgrade"
                    with conn.begin():
                        self._run_steps(conn, script, parent, False, [], record_hashes=False)
                    with conn.begin():
                        down = _kept_fingerprint(conn, kept)
                    step = "upgrade again"
                    with conn.begin():
                        self._run_steps(conn, script, sc.revision, True, [], record_hashes=False)
                    with conn.begin():
                        again = _kept_fingerprint(conn, kept)
                except Exception as exc:
                    conn.rollback()
                    results.append(CheckRow(name, "fail", f"{sc.doc}: {step} failed: "
                                                          f"{self._reason(exc)}", _since(started)))
                    broken = sc.revision
                    continue
                problems = _fingerprint_differences(first, down, "after downgrade") + \
                    _fingerprint_differences(first, again, "after upgrading again")
                total = sum(p.rows for p in first.values())
                detail = (f"{sc.doc}: " + "; ".join(problems)) if problems else (
                    f"{sc.doc}: {len(first)} table(s), {total} row(s) identical after the round trip"
                    if first else f"{sc.doc}: no tables before this revision; the round trip ran "
                                  "on seeded rows")
                results.append(CheckRow(name, "fail" if problems else "pass", detail,
                                        _since(started)))
        return results

    def _hash_check(self, script: ScriptDirectory) -> CheckRow:
        name = "revision files unchanged since applied"
        started = time.perf_counter()
        with self.engine.connect() as conn:
            if not inspect(conn).has_table(HASH_TABLE_NAME):
                return CheckRow(name, "skip", "no revision applied through conductor yet",
                                _since(started))
            recorded = conn.execute(select(REVISION_HASHES)).mappings().all()
        changed = []
        for row in recorded:
            try:
                path = Path(script.get_revision(row["revision"]).path)
            except CommandError:
                changed.append(f"{row['file']} (revision {row['revision']}) was deleted")
                continue
            if _file_sha256(path) != row["sha256"]:
                changed.append(f"{path.name} (revision {row['revision']}) was edited after it "
                               f"was applied on {row['applied_at']}")
        if changed:
            return CheckRow(name, "fail", "; ".join(changed) + ": revert the edit, or add a new "
                                                               "revision instead", _since(started))
        return CheckRow(name, "pass", f"{len(recorded)} applied revision file(s) checked",
                        _since(started))

    # ----------------------------------------------------------------- drift

    def heads(self) -> list[str]:
        """The head revision(s) of the folder (empty when there are none yet)."""
        if not (self.folder / "versions").is_dir():
            return []
        return self._heads(self._script())

    @contextmanager
    def head_database(self) -> Iterator[Engine | None]:
        """A scratch database of the live one's dialect upgraded to head (None when there
        are no revisions), removed when the block ends; the live database is not touched."""
        heads = self.heads()
        if not heads:
            yield None
            return
        script = self._script()
        with scratch_engine(self.engine) as scratch:
            with self._migration_connection(scratch) as conn, conn.begin():
                self._run_steps(conn, script, "heads", True, [], record_hashes=False)
            yield scratch

    def applied_files_check(self) -> CheckRow:
        """Whether the revision files applied to the live database are unchanged (the
        check ``check`` runs), without the rest of ``check``."""
        return self._hash_check(self._script())

    # ----------------------------------------------------------------- lint

    def lint(self, revision: str | None = None) -> LintReport:
        """Flag destructive (drop table / column) and data-dependent changes (NOT NULL column
        without a server default on a table with rows, a new NOT NULL on a column holding
        NULLs, a new UNIQUE on a table with rows — saying whether the live data has
        duplicates) before they run. Default: the revisions not yet applied to the live
        database; or just ``revision``.

        Each revision's changes are read by running it on a scratch database and comparing
        the reflected schema before and after, so hand-written ``op.execute`` DDL and
        SQLite table rebuilds are read as reliably as autogenerated operations."""
        script = self._script()
        self._require_revisions(script)
        require_reflection(self.engine, "migrate lint")
        live_heads = self._live_heads()
        self._applied(script, live_heads)
        if revision is None:
            pending = self._plan(script, "heads", live_heads, upgrade=True)
            start: tuple[str, ...] = live_heads
        else:
            try:
                pending = [script.get_revision(revision)]
            except CommandError as exc:
                raise ConductorError(f"unknown revision {revision!r}: {exc}",
                                     hint=f"see {suggest('migrate history')}") from None
            if pending[0] is None:
                raise ConductorError(f"unknown revision {revision!r}",
                                     hint=f"see {suggest('migrate history')}")
            down = pending[0].down_revision
            start = (down,) if isinstance(down, str) else tuple(down or ())
        report = LintReport(revisions=[s.revision for s in pending])
        if not pending:
            return report
        facts = _LiveFacts(self.engine)
        with scratch_engine(self.engine) as scratch, self._migration_connection(scratch) as conn:
            for head in start:
                with conn.begin():
                    self._run_steps(conn, script, head, True, [], record_hashes=False)
            created_here: set[str] = set()
            with conn.begin():
                before = _shape(conn)
            for sc in pending:
                try:
                    with conn.begin():
                        self._run_steps(conn, script, sc.revision, True, [], record_hashes=False)
                except Exception as exc:
                    report.findings.append(LintFinding(
                        sc.revision, "error", "upgrade_fails",
                        f"the revision fails on an empty database: {self._reason(exc)}"))
                    break
                with conn.begin():
                    after = _shape(conn)
                report.findings.extend(_lint_step(sc.revision, before, after, facts, created_here))
                created_here |= set(after) - set(before)
                before = after
        return report


# --------------------------------------------------------------------------- one transaction


@contextmanager
def _one_transaction(conn: Connection, denied: list[str]) -> Iterator[None]:
    """While a run's revisions execute on SQLite, refuse a COMMIT or ROLLBACK they issue
    themselves (through the driver or SQL): it would end the run's transaction, making
    what follows autocommit and a later failure impossible to undo. ``denied`` records it."""
    driver = conn.connection.driver_connection if conn.dialect.name == "sqlite" else None
    if driver is None:
        yield
        return

    def authorize(action, arg1, *_):
        if action == sqlite3.SQLITE_TRANSACTION and arg1 in ("COMMIT", "ROLLBACK"):
            denied.append(arg1)
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    driver.set_authorizer(authorize)
    try:
        yield
    finally:
        driver.set_authorizer(None)


def _measure(conn: Connection) -> dict[str, tuple[int, dict[str, int]]]:
    """Per user table: (rows, non-NULL values per column), in one scan per table."""
    quote = conn.dialect.identifier_preparer.quote
    insp = inspect(conn)
    found: dict[str, tuple[int, dict[str, int]]] = {}
    for name in user_tables(conn):
        columns = [c["name"] for c in insp.get_columns(name)]
        counts = ", ".join(["count(*)", *(f"count({quote(c)})" for c in columns)])
        row = conn.execute(text(f"SELECT {counts} FROM {quote(name)}")).one()
        found[name] = (int(row[0]), {c: int(v) for c, v in zip(columns, row[1:], strict=True)})
    return found


def _losses(before: dict[str, tuple[int, dict[str, int]]],
            after: dict[str, tuple[int, dict[str, int]]]) -> list[str]:
    """What went missing between two :func:`_measure` results: tables with rows, columns
    with non-NULL values, rows of tables that remain."""
    lost: list[str] = []
    for table, (rows, columns) in sorted(before.items()):
        if table not in after:
            if rows:
                lost.append(f"table {table} ({rows} row(s))")
            continue
        kept_rows, kept = after[table]
        for column, values in columns.items():
            if column not in kept and values:
                lost.append(f"column {table}.{column} ({values} value(s))")
        if kept_rows < rows:
            lost.append(f"{rows - kept_rows} row(s) of table {table}")
    return lost


# --------------------------------------------------------------------------- lint helpers


@dataclass
class _TableShape:
    columns: dict[str, tuple[bool, bool, str]]  # name → (nullable, has server default, type)
    uniques: set[tuple[str, ...]]


def _shape(conn: Connection) -> dict[str, _TableShape]:
    insp = inspect(conn)
    shapes: dict[str, _TableShape] = {}
    for name in user_tables(conn):
        columns = {c["name"]: (bool(c["nullable"]), c.get("default") is not None
                               or bool(c.get("identity")) or bool(c.get("autoincrement") is True),
                               str(c["type"]))
                   for c in insp.get_columns(name)}
        uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints(name)}
        uniques |= {tuple(i["column_names"]) for i in insp.get_indexes(name)
                    if i.get("unique") and all(i["column_names"])}
        pk = tuple(insp.get_pk_constraint(name).get("constrained_columns") or ())
        uniques.discard(pk)
        shapes[name] = _TableShape(columns, uniques)
    return shapes


class _LiveFacts:
    """Row counts, NULL counts and duplicate groups in the live database, looked up lazily."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.tables = set(user_tables(engine))
        self._columns: dict[str, set[str]] = {}

    def _q(self, name: str) -> str:
        return self.engine.dialect.identifier_preparer.quote(name)

    def columns(self, table: str) -> set[str]:
        if table not in self._columns:
            self._columns[table] = ({c["name"] for c in inspect(self.engine).get_columns(table)}
                                    if table in self.tables else set())
        return self._columns[table]

    def rows(self, table: str) -> int:
        if table not in self.tables:
            return 0
        with self.engine.connect() as conn:
            return conn.execute(text(f"SELECT count(*) FROM {self._q(table)}")).scalar_one()

    def nulls(self, table: str, column: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(text(f"SELECT count(*) FROM {self._q(table)} "
                                     f"WHERE {self._q(column)} IS NULL")).scalar_one()

    def duplicates(self, table: str, columns: tuple[str, ...]) -> int:
        cols = ", ".join(self._q(c) for c in columns)
        not_null = " AND ".join(f"{self._q(c)} IS NOT NULL" for c in columns)
        with self.engine.connect() as conn:
            return conn.execute(text(
                f"SELECT count(*) FROM (SELECT {cols} FROM {self._q(table)} WHERE {not_null} "
                f"GROUP BY {cols} HAVING count(*) > 1) AS dup")).scalar_one()


def _lint_step(revision: str, before: dict[str, _TableShape], after: dict[str, _TableShape],
               facts: _LiveFacts, created_here: set[str]) -> list[LintFinding]:
    found: list[LintFinding] = []

    def live_rows(table: str) -> int:
        return 0 if table in created_here else facts.rows(table)

    for table in sorted(set(before) - set(after)):
        rows = live_rows(table)
        found.append(LintFinding(revision, "error", "drop_table",
                                 f"drops table {table} ({rows} row(s) in the live database are lost)"))
    for table in sorted(set(before) & set(after)):
        old, new = before[table], after[table]
        rows = None
        added = set(new.columns) - set(old.columns)
        for column in sorted(set(old.columns) - set(new.columns)):
            rows = live_rows(table) if rows is None else rows
            found.append(LintFinding(revision, "error", "drop_column",
                                     f"drops column {table}.{column} (its values in {rows} live "
                                     "row(s) are lost)"))
        for column in sorted(added):
            nullable, has_default, _ = new.columns[column]
            if nullable or has_default:
                continue
            rows = live_rows(table) if rows is None else rows
            if rows:
                found.append(LintFinding(
                    revision, "error", "not_null_without_default",
                    f"adds NOT NULL column {table}.{column} without a server default to {table}, "
                    f"which has {rows} row(s) in the live database: the upgrade will fail "
                    "(add a server_default, or add it nullable, fill it, then set NOT NULL)"))
        for column in sorted(set(old.columns) & set(new.columns)):
            if old.columns[column][0] and not new.columns[column][0]:
                live = table not in created_here and column in facts.columns(table)
                nulls = facts.nulls(table, column) if live else 0
                if nulls:
                    found.append(LintFinding(
                        revision, "error", "not_null_on_nulls",
                        f"makes {table}.{column} NOT NULL but {nulls} live row(s) hold NULL "
                        "there: the upgrade will fail (fill them first)"))
        for columns in sorted(new.uniques - old.uniques):
            rows = live_rows(table) if rows is None else rows
            if not rows:
                continue
            cols = ", ".join(columns)
            if table in created_here or not set(columns) <= facts.columns(table):
                state = "its columns are new, so the live data cannot be checked yet"
                severity = "warning"
            else:
                groups = facts.duplicates(table, columns)
                state = (f"the live data has {groups} duplicate group(s): the upgrade will fail"
                         if groups else "the live data has no duplicates now")
                severity = "error" if groups else "warning"
            found.append(LintFinding(revision, severity, "new_unique",
                                     f"adds UNIQUE ({cols}) on {table}, which has {rows} row(s); "
                                     f"{state}"))
    return found


# --------------------------------------------------------------------------- check helpers


def _columns(conn: Connection) -> dict[str, list[str]]:
    insp = inspect(conn)
    return {t: [c["name"] for c in insp.get_columns(t)] for t in user_tables(conn)}


def _kept_columns(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, list[str]]:
    """Tables and columns that exist both before and after a revision: what its downgrade
    must give back unchanged."""
    return {t: [c for c in after[t] if c in before[t]] for t in after if t in before}


def _kept_fingerprint(conn: Connection, kept: dict[str, list[str]]) -> dict[str, TableFingerprint]:
    prints: dict[str, TableFingerprint] = {}
    for name, columns in kept.items():
        reflected = Table(quoted_name(name, None), MetaData(), autoload_with=conn)
        subset = Table(quoted_name(name, None), MetaData(),
                       *[Column(c.name, c.type, primary_key=c.primary_key)
                         for c in reflected.columns if c.name in columns])
        prints[name] = fingerprint_table(conn, subset)
    return prints


def _fingerprint_differences(first: dict[str, TableFingerprint],
                             second: dict[str, TableFingerprint], when: str) -> list[str]:
    problems = []
    for name, print_ in first.items():
        other = second.get(name)
        if other is None:
            problems.append(f"{name} is missing {when}")
        elif other.rows != print_.rows:
            problems.append(f"{name} has {other.rows} row(s) {when}, {print_.rows} before")
        elif other.sha256 != print_.sha256:
            problems.append(f"{name}'s rows differ {when} (same count, different hash)")
    return problems


# --------------------------------------------------------------------------- small helpers


def _describe_ops(container: Any) -> list[str]:
    found: list[str] = []
    for op in getattr(container, "ops", []):
        if isinstance(op, alembic_ops.OpContainer):
            found.extend(_describe_ops(op))
        else:
            found.append(_describe_op(op))
    return found


def _describe_op(op: Any) -> str:
    table = getattr(op, "table_name", None)
    if isinstance(op, alembic_ops.CreateTableOp):
        return f"create_table {table}"
    if isinstance(op, alembic_ops.DropTableOp):
        return f"drop_table {table}"
    if isinstance(op, alembic_ops.AddColumnOp):
        return f"add_column {table}.{op.column.name}"
    if isinstance(op, alembic_ops.DropColumnOp):
        return f"drop_column {table}.{op.column_name}"
    if isinstance(op, alembic_ops.AlterColumnOp):
        changes = []
        if op.modify_nullable is not None:
            changes.append("NULL" if op.modify_nullable else "NOT NULL")
        if op.modify_type is not None:
            changes.append(f"type {op.modify_type}")
        if op.modify_server_default is not False:
            changes.append("server default")
        return f"alter_column {table}.{op.column_name}" + (f" ({', '.join(changes)})"
                                                           if changes else "")
    if isinstance(op, alembic_ops.CreateIndexOp):
        columns = ", ".join(str(getattr(c, "name", c)) for c in op.columns)
        unique = "unique " if op.kw.get("unique") or getattr(op, "unique", False) else ""
        return f"create_index {unique}{op.index_name} on {table}({columns})"
    if isinstance(op, alembic_ops.DropIndexOp):
        return f"drop_index {op.index_name} on {table}"
    if isinstance(op, alembic_ops.CreateUniqueConstraintOp):
        return f"create_unique_constraint {op.constraint_name} on {table}({', '.join(op.columns)})"
    if isinstance(op, alembic_ops.CreateForeignKeyOp):
        return f"create_foreign_key {op.constraint_name} on {op.source_table} → {op.referent_table}"
    if isinstance(op, alembic_ops.CreateCheckConstraintOp):
        return f"create_check_constraint {op.constraint_name} on {table}"
    if isinstance(op, alembic_ops.DropConstraintOp):
        kind = f" ({op.constraint_type})" if op.constraint_type else ""
        return f"drop_constraint {op.constraint_name} on {table}{kind}"
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(op).__name__.removesuffix("Op")).lower()
    return f"{name} {table}" if table else name


def _inline(statement: str, parameters: Any) -> str:
    """A recorded SQLite statement with its ``?`` parameters written as literals."""
    if not parameters or isinstance(parameters, dict):
        return statement.strip()
    values = iter(parameters)

    def literal(_match: re.Match) -> str:
        value = next(values, None)
        if value is None:
            return "NULL"
        if isinstance(value, int | float):
            return str(value)
        return "'" + str(value).replace("'", "''") + "'"

    return re.sub(r"\?", literal, statement.strip())


def _join(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else ",".join(value)


_CREATE_DATE = re.compile(r"^Create Date:\s*(.+?)\s*$", re.MULTILINE)


def _created(script: Script) -> datetime | None:
    try:
        match = _CREATE_DATE.search(Path(script.path).read_text(encoding="utf-8"))
        return datetime.fromisoformat(match.group(1)) if match else None
    except (OSError, ValueError):
        return None


def untracked_indexes(live: Engine, head: Engine) -> set[str]:
    """``table.index`` names in ``live`` that ``head`` (a scratch database upgraded to the
    head revision) does not have."""
    def indexes(engine: Engine) -> set[str]:
        with engine.connect() as conn:
            inspector = inspect(conn)
            return {f"{table}.{ix['name']}" for table in user_tables(conn)
                    for ix in inspector.get_indexes(table) if ix.get("name")}

    return indexes(live) - indexes(head)


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _since(started: float) -> float:
    return time.perf_counter() - started


__all__ = ["CheckReport", "CheckRow", "DestructiveDowngrade", "destructive_downgrade", "LintFinding", "LintReport",
           "MigrationRun", "Migrations", "RevisionInfo"]
