"""Automated checks for the verification gate, per phase kind (DESIGN.md §4).

Each check returns pass / fail / skip with details and how long it took. The
session runs the checks for a phase's kind; a failing check blocks the gate
unless it is waived with a written reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from ..errors import ConductorError, DatabaseUnavailable, command, option
from .connection import database_error, is_driver_error
from .results import FAIL, PASS, SKIP, CheckResult


@dataclass
class CheckContext:
    """What the checks of one component may look at."""

    engine: Engine
    declared_sql: str | None
    migrations_folder: Path
    #: the recorded benchmark runs (JSON lines) the indexing checks read, if any
    benchmarks_path: Path | None = None
    #: the folder of the component's backups, for the backup checks (None: no such folder)
    backups_folder: Path | None = None
    #: the component's workload queries (workload.sql, else the spec's Query Patterns)
    workload: list = field(default_factory=list)


CheckFunction = Callable[[CheckContext], Iterator[CheckResult]]
REGISTRY: dict[str, list[CheckFunction]] = {}


def register(kind: str) -> Callable[[CheckFunction], CheckFunction]:
    """Add a check function for a phase kind (schema, migration, core, integrity, …)."""
    def decorate(func: CheckFunction) -> CheckFunction:
        REGISTRY.setdefault(kind, []).append(func)
        return func
    return decorate


def run_checks(kind: str, context: CheckContext) -> list[CheckResult]:
    """Every registered check of ``kind``; a check that raises is a failed row (one line,
    passwords scrubbed), not a crash.

    A database that cannot be used just now (locked by another connection, a lock wait
    that timed out, a lost connection) raises :class:`DatabaseUnavailable` instead: the
    checks could not look at the data, so the gate neither passes nor fails on it, and
    a failed row would only invite a waiver.
    """
    results: list[CheckResult] = []
    for func in REGISTRY.get(kind, []):
        name = func.__name__.replace("_", " ")
        started = time.perf_counter()
        try:
            for result in func(context):
                results.append(result)
        except DatabaseUnavailable:
            raise
        except ConductorError as exc:
            results.append(_timed(name, started, False, str(exc)))
        except Exception as exc:
            if not is_driver_error(exc):
                raise
            error = database_error(f"{kind} gate checks", exc, context.engine.url,
                                   hint="no verdict was recorded")
            if isinstance(error, DatabaseUnavailable):
                raise error from None
            results.append(_timed(name, started, False, error.message))
    return results


def _timed(name: str, started: float, ok: bool, detail: str = "", **artifacts: str) -> CheckResult:
    return CheckResult(name, PASS if ok else FAIL, detail, time.perf_counter() - started, dict(artifacts))


@register("schema")
def schema_checks(ctx: CheckContext) -> Iterator[CheckResult]:
    from .schema import validate

    started = time.perf_counter()
    if not ctx.declared_sql:
        yield CheckResult("declared schema exists", FAIL,
                          f"no schema.sql: declare it with {command('schema declare', cell=True)}")
        return
    try:
        report = validate(ctx.declared_sql, ctx.engine)
    except ConductorError as exc:
        yield _timed("schema applies to a scratch database", started, False, str(exc))
        return
    yield _timed("schema applies to a scratch database", started, True,
                 f"{len(report.tables)} tables")
    no_pk = [f.table for f in report.findings if f.code == "no-primary-key"]
    yield CheckResult("every table has a primary key", FAIL if no_pk else PASS,
                      ("without: " + ", ".join(no_pk)) if no_pk else "")
    names = {t.name for t in report.tables}
    dangling = [f"{t.name}.{', '.join(fk.columns)} → {fk.referred_table}"
                for t in report.tables for fk in t.foreign_keys if fk.referred_table not in names]
    yield CheckResult("foreign keys resolve", FAIL if dangling else PASS, "; ".join(dangling))
    yield CheckResult("snapshot and ER diagram", PASS, "saved with the verdict",
                      artifacts={"schema_doc": schema_markdown(report)})


def schema_markdown(report) -> str:
    """The declared schema as Markdown: a summary table and a Mermaid ER diagram."""
    table = report.summary_frame().to_markdown(index=False)
    return f"# Declared schema\n\n{table}\n\n```mermaid\n{report.mermaid()}\n```\n"


@register("migration")
def migration_checks(ctx: CheckContext) -> Iterator[CheckResult]:
    from .migrations import Migrations

    if not (ctx.migrations_folder / "versions").is_dir():
        yield CheckResult("migrations exist", FAIL,
                          f"no migrations folder: create the first revision with {command('migrate new')}")
        return
    report = Migrations(ctx.migrations_folder, ctx.engine).check(ctx.declared_sql)
    for row in report.results:
        yield CheckResult(row.check, row.status, row.detail, row.seconds)


@register("core")
def core_checks(ctx: CheckContext) -> Iterator[CheckResult]:
    from .integrity import crud

    started = time.perf_counter()
    frame = crud(ctx.engine)
    if frame.empty:
        yield CheckResult("CRUD smoke per table", FAIL, "the database has no tables")
        return
    failed = frame[frame["status"] != "ok"] if "status" in frame else frame.iloc[0:0]
    detail = "; ".join(f"{r['table']}: {r.get('detail', '')}" for _, r in failed.iterrows())
    yield _timed("CRUD smoke per table (rolled back)", started, failed.empty,
                 detail or f"{len(frame)} tables")


@register("integrity")
def integrity_checks(ctx: CheckContext) -> Iterator[CheckResult]:
    from .integrity import data_checks, probe, sqlite_checks

    started = time.perf_counter()
    probes = probe(ctx.engine)
    weak = probes[probes["status"] == "NOT ENFORCED"] if not probes.empty else probes
    yield _timed("every constraint rejects a violating row", started, weak.empty,
                 "; ".join(f"{r['table']}.{r['constraint'] or r['kind']}" for _, r in weak.iterrows())
                 or f"{len(probes)} probes")
    started = time.perf_counter()
    data = data_checks(ctx.engine, ctx.declared_sql)
    bad = data[data["status"] == "problem"] if not data.empty else data
    yield _timed("orphan, duplicate and NULL checks clean", started, bad.empty,
                 "; ".join(f"{r['check']} {r['table']}: {r['detail']}" for _, r in bad.iterrows()))
    if ctx.engine.dialect.name == "sqlite":
        started = time.perf_counter()
        structural = sqlite_checks(ctx.engine)
        bad = structural[structural["status"] != "ok"] if not structural.empty else structural
        yield _timed("SQLite integrity_check and foreign_key_check", started, bad.empty,
                     "; ".join(str(r.get("detail", "")) for _, r in bad.iterrows()))


@register("indexing")
def indexing_checks(ctx: CheckContext) -> Iterator[CheckResult]:
    """Recorded benchmarks show that the indexes kept help; the advisor has nothing to add."""
    from .bench import parse_index_ddl, recorded_index_arms

    started = time.perf_counter()
    arms = recorded_index_arms(ctx.benchmarks_path) if ctx.benchmarks_path else []
    live = _live_index_shapes(ctx.engine)
    kept, explored = [], []
    for arm in arms:
        try:
            shape = (arm["table"], tuple(parse_index_ddl(arm["ddl"], ctx.engine.dialect.name).columns))
        except ConductorError:
            shape = None
        # A benchmarked candidate that is not in the database was exploration, not a decision.
        (kept if shape in live else explored).append(arm)
    name = "benchmarks of the indexes kept show a speed-up"
    if not kept:
        yield _timed(name, started, False,
                     "no recorded benchmark covers an index of the database: run "
                     f"{command('bench NAME', option('index', repr('CREATE INDEX …')))} "
                     "for the indexes you keep"
                     + (f" ({len(explored)} candidate(s) benchmarked but not kept)" if explored else ""))
    else:
        weak = [a for a in kept if not (a["uses_index"] and a["ci_low"] is not None and a["ci_low"] > 1)]
        detail = "; ".join(
            f"{a['query']} + {a['index']}: " + ("the plan does not use the index" if not a["uses_index"]
                                                 else f"speed-up interval starts at {a['ci_low']:.2f}")
            for a in weak)
        yield _timed(name, started, not weak, detail or (
            f"{len(kept)} benchmark(s): plan uses the index, 95 % interval above 1"
            + (f"; {len(explored)} candidate(s) benchmarked and not kept" if explored else "")))
    if not ctx.workload:
        yield CheckResult("advisor finds nothing left to add", FAIL,
                          f"no workload: record queries with {command('query NAME', cell=True)}, or add "
                          "SQL blocks under '## Query Patterns' in spec.md")
        return
    from .advisor import advise

    started = time.perf_counter()
    try:
        report = advise(ctx.engine, list(ctx.workload))
    except ConductorError as exc:  # not one workload query runs here
        yield _timed("every workload query runs", started, False, exc.message)
        return
    yield CheckResult("every workload query runs", FAIL if report.skipped else PASS,
                      "; ".join(f"{n}: {r}" for n, r in report.skipped.items())
                      or f"{len(report.queries)} queries planned")
    open_ = report.open_recommendations(ADVISOR_GATE_GAIN)
    yield _timed("advisor finds nothing left to add", started, not open_,
                 "; ".join(f"{r.ddl} (helps {', '.join(r.queries_helped)}, gain {r.gain:.0%})"
                           for r in open_)
                 or f"{len(ctx.workload)} workload queries: no missing index with a gain above "
                    f"{ADVISOR_GATE_GAIN:.0%}")


def _live_index_shapes(engine: Engine) -> set[tuple[str, tuple[str, ...]]]:
    """(table, columns) of every index and unique constraint in the live database."""
    from sqlalchemy import inspect

    inspector = inspect(engine)
    shapes = set()
    for table in inspector.get_table_names():
        for index in inspector.get_indexes(table):
            shapes.add((table, tuple(index["column_names"])))
        for unique in inspector.get_unique_constraints(table):
            shapes.add((table, tuple(unique["column_names"])))
    return shapes


#: an open advisor recommendation above this workload-cost gain blocks the indexing gate
ADVISOR_GATE_GAIN = 0.20


#: the backup & recovery gate's two checks
GATE_NEWER = "verified backup newer than the last migration"
GATE_DRILL = "restore drill: latest backup restored into scratch matches its manifest"


@register("backup")
def backup_checks(ctx: CheckContext) -> Iterator[CheckResult]:
    """A verified backup newer than the last migration; a restore drill that passes."""
    yield from gate_checks(ctx)


def gate_checks(ctx: CheckContext) -> Iterator[CheckResult]:
    """The backup & recovery phase's gate: (1) a verified backup newer than the last
    migration exists; (2) a restore drill: the newest backup, restored into a scratch
    database, matches its manifest (this verifies it, so it is recorded; the drill runs
    first, so a fresh good backup satisfies both)."""
    from .backup import Backups

    if ctx.backups_folder is None:
        detail = "no backups folder"
        yield CheckResult(GATE_NEWER, FAIL, detail)
        yield CheckResult(GATE_DRILL, FAIL, detail)
        return
    backups = Backups(ctx.backups_folder, ctx.engine)
    started = time.perf_counter()
    newest = backups.latest()
    if newest is None:
        drill = CheckResult(GATE_DRILL, FAIL, f"no backups in {backups.folder}: take one with "
                                              f"{command('backup')}")
    else:
        try:
            report = backups.verify(newest.id)
            drill = _timed(GATE_DRILL, started, report.passed, f"backup {newest.name}: " + (
                f"{len(report.checks)} checks passed" if report.passed else
                "; ".join(f"{c.name}: {c.detail}" for c in report.failed)))
        except ConductorError as exc:
            drill = _timed(GATE_DRILL, started, False, str(exc))
    yield _newer_than_last_migration(backups, ctx.engine)
    yield drill


def _newer_than_last_migration(backups, engine: Engine) -> CheckResult:
    from .migrations import last_migration_at, migration_head

    started = time.perf_counter()
    migrated = last_migration_at(engine)
    head = migration_head(engine)
    verified = backups.manifests(verified=True)
    if not verified:
        existing = backups.latest()
        detail = (f"no backup in {backups.folder} has passed verification: run "
                  f"{command('backup verify')}"
                  if existing else f"no backups in {backups.folder}: take one with {command('backup')}")
        return _timed(GATE_NEWER, started, False, detail)
    # newer than the last migration, and taken at the current head (a backup taken in the same
    # second just before the migration is older than it, even though applied_at has no fraction)
    good = [m for m in verified if (migrated is None or m.created > migrated) and m.migration_head == head]
    if good:
        chosen = good[-1]
        since = f"the last migration ({migrated.isoformat()})" if migrated else "any migration (none recorded)"
        return _timed(GATE_NEWER, started, True, f"backup {chosen.name} ({chosen.created_at}, head "
                                                 f"{chosen.migration_head or 'none'}) is newer than {since}")
    newest = verified[-1]
    return _timed(GATE_NEWER, started, False,
                  f"the newest verified backup {newest.name} ({newest.created_at}, head "
                  f"{newest.migration_head or 'none'}) predates the last migration "
                  f"({migrated.isoformat() if migrated else 'none'}, head {head or 'none'}): "
                  "take and verify a new backup")


__all__ = ["ADVISOR_GATE_GAIN", "FAIL", "GATE_DRILL", "GATE_NEWER", "PASS", "REGISTRY", "SKIP",
           "CheckContext", "CheckResult", "gate_checks", "register", "run_checks"]
