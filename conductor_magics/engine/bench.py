"""Index benchmarks: time a query without and with candidate indexes on the same data.

``benchmark(engine, sql, indexes=[DDL, ...])`` measures one *arm* per situation: the
baseline "without" (none of the candidate indexes) and one arm per candidate index
(that index only). Method (issue 5):

- **Same data, switched by DDL that is rolled back.** The whole run is one transaction
  that is never committed (SQLite and PostgreSQL both have transactional DDL). Each
  candidate index is built once inside it (``build_seconds``, ``size_bytes``). An arm's
  sample runs inside a savepoint that drops the *other* candidates and is rolled back
  afterwards: ``SAVEPOINT s; DROP INDEX <others>; <timed loops>; ROLLBACK TO s``. At the
  end the run's transaction is rolled back, taking the built indexes with it; a run killed
  at any moment cannot leave one behind either (PostgreSQL aborts the transaction of a
  dropped connection; SQLite's journal rolls it back when the database is next opened).
  Indexes that existed before are never dropped outside a rolled-back savepoint, so the
  database is left as found.
- **Plan per arm**, captured in the arm's state: SQLite ``EXPLAIN QUERY PLAN``;
  PostgreSQL ``EXPLAIN (FORMAT JSON)`` or, with ``analyze=True``, ``EXPLAIN (ANALYZE,
  BUFFERS, FORMAT JSON)`` (it runs the query, inside the rolled-back transaction).
  ``uses_index`` says whether the plan names the arm's index, ``full_scan`` whether it
  scans a whole table.
- **Timing at the DBAPI cursor**: a clock read around ``cursor.execute(sql, params);
  cursor.fetchall()`` × loops on the connection's driver connection, with the SQL
  compiled once into the driver's paramstyle and the garbage collector paused (as
  ``timeit`` does). The clock is ``time.perf_counter`` (wall) for PostgreSQL and, by
  default, this thread's CPU time for SQLite, whose queries run in this thread: a busy
  machine then does not inflate the samples (see ``choose_clock``). Before the timed loops of each sample, one untimed execution absorbs
  the statement re-preparation (re-planning) that the DROP INDEX forces.
- **Prepared statements, as an application's loop runs them.** SQLite: the sqlite3
  module's statement cache, as in any application. PostgreSQL (``prepared=True``, the
  default): every execution is ``cursor.execute(sql, params, prepare=True)``, a
  server-side prepared statement, one per arm (the arm's number in a trailing comment
  keeps their plan caches apart: PostgreSQL's choice between a generic and a custom plan
  learns from earlier executions, and one arm's must not steer another's). Each arm's
  statement runs ``PLAN_CACHE_WARMUP`` times before it is first timed, so the plan cache
  is past its first five custom plans. The arm-switching statements (SAVEPOINT, DROP
  INDEX, ROLLBACK TO SAVEPOINT) go to libpq directly: psycopg forgets (DEALLOCATE ALL) its
  prepared statements on any DROP or ROLLBACK it sees, and then every execution would be
  parsed and planned again, which is not what an application sees. The server keeps them
  (prepared statements are not transactional) and re-plans each once after the DDL, in the
  untimed execution. ``prepared=False`` times the statement unprepared (parsed and planned
  at every execution, as through a transaction-mode pooler), the same way in every arm.
- **Loops per sample are calibrated per arm** so that every sample lasts at least
  ``min_sample_seconds``: a fast index arm gets many loops, the slow scan arm one, and the
  run time is not multiplied by the slowest arm. Arms within 3× of the baseline's loops
  share the most of them (``share_loops``). A sample is the per-execution time
  (loop total / loops), so arms with different loops compare directly.
- **Warm-up blocks are discarded**; then ``repeat`` blocks each run every arm once in an
  order shuffled by a seeded RNG (randomised blocks in one process), so drift of the
  machine affects every arm alike.
- **Statistics** (``stats.py``): per arm n, min, median, IQR, p95; per index arm the
  speed-up ``median(without) / median(arm)`` with a 95 % percentile-bootstrap interval,
  joined with the sign-test interval of the per-block ratios (robust to load that changes
  from block to block), both widened by a systematic uncertainty between arms
  (``SYSTEMATIC``: SQLite arms with the same plan measured 0.5–2.7 % apart); "no change"
  when the interval contains 1.
- **Insert cost**: ``insert_rows`` generated rows (``sample.RowGenerator``) inserted
  into the index's table with and without the index, in rolled-back transactions,
  alternating, five rounds; ``insert_slowdown`` = median with / median without.
  PostgreSQL sequences that the inserts advance are set back afterwards.

Run it on a development or staging copy, not on a busy production database: the
candidate indexes are really built (in the run's transaction), which holds the table
against writers for the whole run (SQLite: the write lock on the database), and every
sample's DROP INDEX locks the table until its rollback (PostgreSQL: ACCESS EXCLUSIVE),
so other sessions wait for it, and it waits for them.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlglot
from sqlalchemy import Connection, Engine, MetaData, Table, func, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlglot import exp

from ..errors import ConductorError, DatabaseError, UnsupportedByDialect, option
from .connection import first_line, mask, scrub
from .explain import read_postgres, read_sqlite, sqlite_plan_indexes  # noqa: F401 - bench.sqlite_plan_indexes stays importable
from .sample import RowGenerator, parent_values
from .sqlrun import json_value
from .stats import RatioInterval, Summary, calibrate_loops, ratio_interval, summarize
from .timeouts import statement_timeout

SUPPORTED_DIALECTS = ("sqlite", "postgresql")
BASELINE = "without"
CONFIDENCE = 0.95
RESAMPLES = 2000
#: relative uncertainty between arms that sampling does not show, per dialect (stats.py:
#: "Systematic differences"). SQLite: two arms with the same full-scan plan, one running a
#: DROP INDEX that is rolled back, differed by 0.5–2.7 % (median per process), always in
#: the same direction; 2 % brings identical arms to "no change" in 96–97.5 % of runs.
#: PostgreSQL showed none on a full scan (98.7–100 % without it), but an index search
#: (~0.5 ms) with an index on another column in the second arm came out 1.6–1.7 % apart
#: (median of 75 runs, two sittings) and "faster" in 4–8 % of runs with 1 %: 2 % too.
SYSTEMATIC = {"sqlite": 0.02, "postgresql": 0.02}
#: an arm whose IQR exceeds this fraction of its median gets a note: the machine was busy
UNSTABLE_IQR = 0.25
#: alternating rounds of the insert measurement (median of these per arm)
INSERT_ROUNDS = 5
#: PostgreSQL: untimed executions of an arm's prepared statement before its first timed one
#: (the server plans the first five with their parameter values, then may keep a generic
#: plan: an application's loop runs past that point at once)
PLAN_CACHE_WARMUP = 6
#: arms whose calibrated loops are within this factor of the baseline's share the most of
#: them (see share_loops; calibration on a busy machine varies by 2× and more)
SHARE_LOOPS_WITHIN = 3
#: the most page cache (KiB) a SQLite benchmark run asks for (see sqlite_cache_for_database)
SQLITE_CACHE_LIMIT_KIB = 1024 * 1024
_SQLGLOT_DIALECT = {"postgresql": "postgres", "sqlite": "sqlite"}

Progress = Callable[..., Any]


# --------------------------------------------------------------------------- results


@dataclass
class Arm:
    """One measured situation: the baseline ("without") or one candidate index."""

    label: str
    ddl: str | None = None
    index_name: str | None = None
    table: str | None = None
    #: the index was in the database before the benchmark (kept afterwards)
    existed: bool = False
    #: SQLite: EXPLAIN QUERY PLAN rows [{id, parent, detail}]; PostgreSQL: EXPLAIN JSON
    plan: Any = None
    plan_text: str = ""
    #: index arm: the plan names its index; baseline: the plan names any candidate
    uses_index: bool = False
    #: every index the plan names
    indexes_used: list[str] = field(default_factory=list)
    #: the plan reads a whole table (SQLite "SCAN t", PostgreSQL "Seq Scan")
    full_scan: bool = False
    loops: int = 1
    #: per-execution seconds, one per timed sample (warm-up excluded)
    samples: list[float] = field(default_factory=list)
    summary: Summary | None = None
    build_seconds: float | None = None
    size_bytes: int | None = None
    #: median seconds to insert ``insert_rows`` rows with this index (alone) present
    insert_seconds: float | None = None
    insert_slowdown: float | None = None
    comparison: RatioInterval | None = None
    #: PostgreSQL, prepared: how often the server ran the arm's prepared statement with its
    #: generic plan and with a custom one (``pg_prepared_statements``, PostgreSQL 14+)
    prepared_plans: dict[str, int] | None = None

    @property
    def is_baseline(self) -> bool:
        return self.ddl is None

    def to_json(self) -> dict[str, Any]:
        comparison = self.comparison
        return {
            "label": self.label, "ddl": self.ddl, "index_name": self.index_name,
            "table": self.table, "existed": self.existed,
            "uses_index": self.uses_index, "indexes_used": self.indexes_used,
            "full_scan": self.full_scan, "plan_text": self.plan_text,
            "plan": json_value(self.plan), "loops": self.loops, "samples": self.samples,
            "summary": self.summary.to_json() if self.summary else None,
            "build_seconds": self.build_seconds, "size_bytes": self.size_bytes,
            "insert_seconds": self.insert_seconds, "insert_slowdown": self.insert_slowdown,
            "ratio": comparison.ratio if comparison else None,
            "ci_low": comparison.low if comparison else None,
            "ci_high": comparison.high if comparison else None,
            "confidence": comparison.confidence if comparison else None,
            "verdict": comparison.verdict if comparison else None,
            "prepared_plans": self.prepared_plans,
        }


def _number(value: float) -> str:
    return f"{value:.3g}"


@dataclass
class BenchResult:
    """What ``benchmark`` measured: one Arm per situation, the baseline first."""

    name: str
    sql: str
    dialect: str
    params: dict[str, Any]
    arms: list[Arm]
    database: str = ""  # masked URL: never a password
    timestamp: str = ""
    seconds: float = 0.0
    repeat: int = 0
    warmup: int = 0
    seed: int = 0
    min_sample_seconds: float = 0.0
    insert_rows: int = 0
    analyze: bool = False
    #: what the samples measure: "wall" (perf_counter) or "cpu" (this thread's CPU time)
    clock: str = "wall"
    #: SQLite: the page cache (KiB) the run used (see _Harness.sqlite_cache_for_database)
    sqlite_cache_kib: int | None = None
    #: the timed executions ran as prepared statements (see the module docstring)
    prepared: bool = True
    #: median seconds to insert ``insert_rows`` rows without any candidate, per table
    insert_baseline_seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    exit_code = 0

    @property
    def baseline(self) -> Arm:
        return self.arms[0]

    @property
    def statements(self) -> str:
        """How the timed executions ran: prepared or not, in words."""
        if self.dialect == "sqlite":
            return "prepared (the sqlite3 statement cache, as an application's)"
        if self.prepared:
            return ("prepared on the server (psycopg prepare=True), one statement per arm, "
                    f"warmed up {PLAN_CACHE_WARMUP} executions, as an application's loop")
        return "not prepared: parsed and planned at every execution"

    @property
    def index_arms(self) -> list[Arm]:
        return [arm for arm in self.arms if not arm.is_baseline]

    @property
    def samples(self) -> dict[str, list[float]]:
        """Raw per-execution seconds per arm label."""
        return {arm.label: list(arm.samples) for arm in self.arms}

    @property
    def summary(self) -> str:
        """One line: each index arm's speed-up with its interval and whether the plan
        uses the index; without candidates, the median time."""
        if not self.index_arms:
            stats = self.baseline.summary
            scan = ", full scan" if self.baseline.full_scan else ""
            return (f"{self.name}: median {stats.median * 1e3:.3g} ms per execution "
                    f"(IQR {stats.iqr * 1e3:.3g} ms, n={stats.n}){scan}")
        parts = []
        for arm in self.index_arms:
            c = arm.comparison
            if c.verdict == "faster":
                change = f"{_number(c.ratio)}× faster"
            elif c.verdict == "slower":
                change = f"{_number(1 / c.ratio)}× slower"
            else:
                change = f"no change ({_number(c.ratio)}×)"
            if arm.uses_index and self.baseline.full_scan and not arm.full_scan:
                plan = "plan: full scan → index search"
            else:
                plan = "plan uses the index" if arm.uses_index else "plan does not use the index"
            parts.append(f"{arm.label} {change} [{round(c.confidence * 100):d} % CI "
                         f"{_number(c.low)}–{_number(c.high)}], {plan}")
        return f"{self.name}: " + "; ".join(parts)

    def frame(self) -> pd.DataFrame:
        """One row per arm: plan use, sample statistics in ms, speed-up with its interval
        and verdict, build time, size and insert slowdown (NaN/None where not applicable)."""
        rows = []
        for arm in self.arms:
            s, c = arm.summary, arm.comparison
            rows.append({
                "arm": arm.label,
                "index used": arm.uses_index,
                "full scan": arm.full_scan,
                "n": s.n,
                "min ms": s.min * 1e3, "median ms": s.median * 1e3, "IQR ms": s.iqr * 1e3,
                "p95 ms": s.p95 * 1e3,
                "speed-up": c.ratio if c else None,
                "CI low": c.low if c else None, "CI high": c.high if c else None,
                "verdict": c.verdict if c else "baseline",
                "build ms": arm.build_seconds * 1e3 if arm.build_seconds is not None else None,
                "size bytes": arm.size_bytes,
                "insert slowdown": arm.insert_slowdown,
            })
        frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)
        frame["size bytes"] = frame["size bytes"].astype("Int64")  # whole bytes, or <NA>
        return frame

    def to_json(self) -> dict[str, Any]:
        """Everything measured, JSON-serialisable: settings, per-arm plans, raw samples,
        statistics and intervals. The gate reads, per index arm, ``uses_index``,
        ``ci_low``, ``ci_high`` and ``verdict``."""
        return {
            "kind": "index-benchmark",
            "name": self.name, "sql": self.sql, "dialect": self.dialect,
            "database": self.database, "params": json_value(self.params),
            "timestamp": self.timestamp, "seconds": round(self.seconds, 4),
            "settings": {"repeat": self.repeat, "warmup": self.warmup, "seed": self.seed,
                         "min_sample_seconds": self.min_sample_seconds,
                         "insert_rows": self.insert_rows, "analyze": self.analyze,
                         "confidence": CONFIDENCE, "resamples": RESAMPLES,
                         "systematic": SYSTEMATIC[self.dialect],
                         "order": "randomized blocks", "loops": "calibrated per arm",
                         "clock": self.clock, "prepared": self.prepared,
                         "statements": self.statements,
                         "sqlite_cache_kib": self.sqlite_cache_kib},
            "summary": self.summary,
            "insert_baseline_seconds": self.insert_baseline_seconds,
            "notes": self.notes,
            "arms": [arm.to_json() for arm in self.arms],
        }

    def to_text(self) -> str:
        frame = self.frame()
        # pandas prints <NA> for a missing Int64 whatever na_rep says: show "-" like the rest
        frame["size bytes"] = ["-" if pd.isna(v) else str(v) for v in frame["size bytes"]]
        lines = [self.summary, f"statements: {self.statements}", "",
                 frame.to_string(index=False, na_rep="-"), ""]
        for arm in self.arms:
            lines.append(f"plan ({arm.label}):")
            lines.extend("  " + line for line in arm.plan_text.splitlines())
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)


FRAME_COLUMNS = ["arm", "index used", "full scan", "n", "min ms", "median ms", "IQR ms",
                 "p95 ms", "speed-up", "CI low", "CI high", "verdict", "build ms",
                 "size bytes", "insert slowdown"]




# --------------------------------------------------------------------------- input


@dataclass
class CandidateIndex:
    """A parsed ``CREATE [UNIQUE] INDEX name ON table (...)`` statement."""

    ddl: str
    name: str
    table: str
    schema: str | None
    unique: bool
    #: plain column names, None for an expression (compared with an existing index)
    columns: list[str | None]
    #: an index of this name and shape was already there (measured, never dropped for good)
    existed: bool = False
    #: this run created the index (dropped again at the end)
    built: bool = False


def parse_index_ddl(ddl: str, dialect: str) -> CandidateIndex:
    """Name, table and columns of one CREATE INDEX statement; anything else, several
    statements, an unnamed index or CONCURRENTLY raise ConductorError."""
    statement = (ddl or "").strip().rstrip(";").strip()
    if not statement:
        raise ConductorError(f"an empty {option('index')}", hint="give CREATE INDEX name ON table (columns)")
    try:
        trees = [t for t in sqlglot.parse(statement, read=_SQLGLOT_DIALECT.get(dialect)) if t]
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as exc:
        detail = first_line(str(exc))
        errors = getattr(exc, "errors", None)
        if errors:  # sqlglot's message quotes its internal tokens: say where instead
            detail = f"syntax error at line {errors[0].get('line')}, column {errors[0].get('col')}"
        raise ConductorError(f"cannot read the index DDL '{first_line(statement)}': {detail}",
                             hint="give CREATE [UNIQUE] INDEX name ON table (columns)") from None
    if len(trees) != 1:
        raise ConductorError(f"{option('index')} takes one CREATE INDEX statement, got "
                             f"{len(trees)}: '{first_line(statement)}'",
                             hint=f"repeat {option('index')} for each index")
    tree = trees[0]
    index = tree.this if isinstance(tree, exp.Create) else None
    if not isinstance(tree, exp.Create) or str(tree.args.get("kind")).upper() != "INDEX" \
            or not isinstance(index, exp.Index):
        raise ConductorError(f"not a CREATE INDEX statement: '{first_line(statement)}'",
                             hint="give CREATE [UNIQUE] INDEX name ON table (columns)")
    if tree.args.get("concurrently"):
        raise ConductorError(f"CREATE INDEX CONCURRENTLY cannot run inside the benchmark's "
                             f"transactions: '{first_line(statement)}'",
                             hint="benchmark it without CONCURRENTLY (the plan is the same)")
    name_node, table_node = index.this, index.args.get("table")
    if not isinstance(name_node, exp.Identifier) or not name_node.name:
        raise ConductorError(f"the index has no name: '{first_line(statement)}'",
                             hint="name it: CREATE INDEX ix_<table>_<column> ON ...")
    if not isinstance(table_node, exp.Table) or not table_node.name:
        raise ConductorError(f"no table in '{first_line(statement)}'")
    params = index.args.get("params")
    columns: list[str | None] = []
    for ordered in (params.args.get("columns") or []) if params else []:
        node = ordered.this if isinstance(ordered, exp.Ordered) else ordered
        columns.append(node.name if isinstance(node, exp.Column) else None)
    return CandidateIndex(
        ddl=statement, name=_identifier(name_node, dialect),
        table=_identifier(table_node.this, dialect),
        schema=_identifier(table_node.args["db"], dialect) if table_node.args.get("db") else None,
        unique=bool(tree.args.get("unique")), columns=columns)


def _identifier(node: exp.Identifier, dialect: str) -> str:
    """The name as the catalog stores it: PostgreSQL folds unquoted names to lower case."""
    name = node.name
    return name.lower() if dialect == "postgresql" and not node.args.get("quoted") else name


@dataclass
class CompiledQuery:
    """The query in the driver's paramstyle, with its driver-ready parameters (None when
    the query has no bind parameters: then the SQL is sent exactly as written)."""

    sql: str
    params: tuple | dict | None


def compile_query(engine: Engine | Connection, sql: str,
                  params: dict[str, Any] | None) -> CompiledQuery:
    """Compile ``:name`` bind parameters once into the driver's paramstyle."""
    compiled = text(sql).compile(dialect=engine.dialect)
    if not compiled.binds:
        return CompiledQuery(sql, None)
    missing = sorted(set(compiled.binds) - set(params or {}))
    if missing:
        raise ConductorError(f"no value for bind parameter{'s' if len(missing) > 1 else ''} "
                             + ", ".join(f":{m}" for m in missing),
                             hint="pass params={" + ", ".join(f"'{m}': …" for m in missing) + "}")
    values = compiled.construct_params(params)
    if compiled.positional:
        return CompiledQuery(compiled.string, tuple(values[name] for name in compiled.positiontup))
    return CompiledQuery(compiled.string, values)


# --------------------------------------------------------------------------- plans


def _sqlite_plan(rows: Sequence[Sequence[Any]],
                 known: Sequence[str] = ()) -> tuple[list[dict], str, list[str], bool]:
    plan = read_sqlite(rows, known)
    return plan.raw, plan.text, plan.indexes, plan.full_scan


def _pg_plan(document: Any) -> tuple[Any, str, list[str], bool]:
    plan = read_postgres(document)
    return plan.raw, plan.text, plan.indexes, plan.full_scan


# --------------------------------------------------------------------------- the harness


def _timed_loops(cursor, query: CompiledQuery, loops: int, fetch: bool,
                 clock: Callable[[], float] = time.perf_counter,
                 prepare: bool | None = None) -> float:
    """Seconds (of ``clock``) for ``loops`` executions (+ fetchall) of ``query`` on a
    DBAPI cursor; ``prepare`` (psycopg only; None: the driver's default) is passed to
    every ``execute``.

    The loop bodies are kept free of anything but the driver calls: this is what a
    bare DBAPI loop does, so the harness adds almost nothing to the measurement."""
    execute, fetchall, statement, params = cursor.execute, cursor.fetchall, query.sql, query.params
    if prepare is not None:
        # what an application's loop passes too; a C-level partial costs ~0.1 µs a call
        execute = functools.partial(execute, prepare=prepare)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        if params is None and fetch:
            start = clock()
            for _ in range(loops):
                execute(statement)
                fetchall()
        elif params is None:
            start = clock()
            for _ in range(loops):
                execute(statement)
        elif fetch:
            start = clock()
            for _ in range(loops):
                execute(statement, params)
                fetchall()
        else:
            start = clock()
            for _ in range(loops):
                execute(statement, params)
        return clock() - start
    finally:
        if gc_was_enabled:
            gc.enable()


class _Harness:
    """One benchmark run on one connection: switching arms, plans, samples, inserts."""

    def __init__(self, conn: Connection, query: CompiledQuery, candidates: list[CandidateIndex],
                 clock: Callable[[], float] = time.perf_counter, prepared: bool = True):
        self.conn = conn
        self.clock = clock
        self.dialect = conn.dialect.name
        self.query = query
        self.candidates = candidates
        #: psycopg's ``prepare`` argument for the timed executions (SQLite: None, the
        #: sqlite3 statement cache prepares them anyway)
        self.prepare: bool | None = prepared if self.dialect == "postgresql" else None
        #: executions of each arm's statement so far (key: the kept candidate's name)
        self.executions: dict[str | None, int] = {}
        self.quote = conn.dialect.identifier_preparer.quote
        self.fetch = True
        #: what the run is doing, for error messages
        self.step = "starting"
        #: notes for the result (PostgreSQL: an index its own transaction cannot use)
        self.notes: list[str] = []
        self._run_transaction: Any = None
        self._savepoints = 0

    @property
    def driver(self):
        return self.conn.connection.dbapi_connection

    def arm_query(self, keep: CandidateIndex | None) -> CompiledQuery:
        """The statement an arm times. Prepared on PostgreSQL: the query with the arm's
        number in a trailing comment, so each arm has its own server-side statement and
        plan cache (the generic-or-custom plan choice learns from earlier executions)."""
        if not self.prepare:
            return self.query
        number = 0 if keep is None else 1 + self.candidates.index(keep)
        return CompiledQuery(f"{self.query.sql}\n/* conductor_bench arm {number} */",
                             self.query.params)

    def command(self, statement: str) -> None:
        """A statement that switches arms (SAVEPOINT, DROP INDEX, ROLLBACK TO ...).

        PostgreSQL: sent to libpq directly, not through psycopg's cursor, which on any
        DROP or ROLLBACK forgets its prepared statements (DEALLOCATE ALL) so that the next
        timed execution would be parsed and planned again. The server keeps them across
        the rollback and re-plans each once after the DDL."""
        if self.dialect != "postgresql":
            self.run_sql(statement)
            return
        from psycopg import errors, pq  # the PostgreSQL driver: only loaded on PostgreSQL

        driver = self.driver
        if driver.pgconn.transaction_status == pq.TransactionStatus.IDLE:
            self.run_sql("SELECT 1")  # psycopg opens the transaction on its first statement
        result = driver.pgconn.exec_(statement.encode(driver.info.encoding))
        if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
            raise errors.error_from_result(result, encoding=driver.info.encoding)

    def run_sql(self, statement: str, params: Any = None) -> list:
        """A statement on the driver's cursor (no paramstyle escaping of ``%`` when there
        are no parameters); returns its rows, if any."""
        cursor = self.driver.cursor()
        try:
            if params is None:
                cursor.execute(statement)
            else:
                cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description is not None else []
        finally:
            cursor.close()

    def begin_run(self) -> None:
        """Open the run's one transaction, which is never committed: the candidate indexes
        are built inside it, so a run killed at any moment cannot leave one behind (the
        server aborts the transaction when the connection drops; SQLite's journal rolls it
        back when the database is next opened)."""
        if self.conn.in_transaction():
            self.conn.rollback()
        self._run_transaction = self.conn.begin()
        if self.dialect == "sqlite" and not self.driver.in_transaction:
            # An engine not made by make_engine (pysqlite's legacy mode) would run the
            # DDL in autocommit: open the transaction explicitly.
            self.driver.execute("BEGIN")

    def end_run(self) -> None:
        """Roll the run's transaction back: the indexes built for it go with it."""
        transaction, self._run_transaction = self._run_transaction, None
        try:
            if transaction is not None and transaction.is_active:
                transaction.rollback()
            elif self.conn.in_transaction():
                self.conn.rollback()
        finally:
            if self.dialect == "sqlite" and self.driver.in_transaction:
                self.driver.execute("ROLLBACK")

    @contextmanager
    def rolled_back(self) -> Iterator[None]:
        """A savepoint in the run's transaction that is always rolled back to."""
        if self._run_transaction is None:
            self.begin_run()
        self._savepoints += 1
        name = f"conductor_bench_{self._savepoints}"
        self.command(f"SAVEPOINT {name}")
        try:
            yield
        finally:
            self.command(f"ROLLBACK TO SAVEPOINT {name}")
            self.command(f"RELEASE SAVEPOINT {name}")

    def qualified(self, candidate: CandidateIndex) -> str:
        name = self.quote(candidate.name)
        return f"{self.quote(candidate.schema)}.{name}" if candidate.schema else name

    def enter(self, keep: CandidateIndex | None) -> None:
        """Inside a rolled-back transaction: drop every candidate but ``keep``."""
        for candidate in self.candidates:
            if candidate is not keep:
                self.command(f"DROP INDEX {self.qualified(candidate)}")

    def sample(self, keep: CandidateIndex | None, loops: int) -> float:
        """Total seconds of ``loops`` timed executions in the state of one arm."""
        with self.rolled_back():
            self.enter(keep)
            cursor = self.driver.cursor()
            try:
                # untimed: the re-planning the DDL forces, and the first executions of a
                # prepared statement (custom plans) that an application's loop is past
                warm = PLAN_CACHE_WARMUP if self.prepare else 1
                done = self.executions.get(self.key(keep), 0)
                self.execute_untimed(cursor, keep, 1 + max(0, warm - 1 - done))
                elapsed = _timed_loops(cursor, self.arm_query(keep), loops, self.fetch,
                                       self.clock, self.prepare)
                self.executions[self.key(keep)] += loops
                return elapsed
            finally:
                cursor.close()

    def record_prepared_plans(self, arms: list[Arm], keeps: list[CandidateIndex | None]) -> None:
        """PostgreSQL 14+, prepared: each arm's generic and custom plan counts, as the
        server reports them for the arm's statement."""
        if not self.prepare or self.driver.info.server_version < 140000:
            return
        rows = self.run_sql("SELECT statement, generic_plans, custom_plans "
                            "FROM pg_prepared_statements")
        for arm, keep in zip(arms, keeps, strict=True):
            sql = self.arm_query(keep).sql
            tail = sql[sql.rindex("/* conductor_bench arm"):]
            for statement, generic, custom in rows:
                if statement.endswith(tail):
                    arm.prepared_plans = {"generic": int(generic), "custom": int(custom)}

    @staticmethod
    def key(keep: CandidateIndex | None) -> str | None:
        return None if keep is None else keep.name

    def execute_untimed(self, cursor, keep: CandidateIndex | None, times: int,
                        fetch: bool | None = None) -> None:
        """Run the arm's statement ``times`` times, untimed, and count them."""
        _timed_loops(cursor, self.arm_query(keep), times, self.fetch if fetch is None else fetch,
                     prepare=self.prepare)
        self.executions[self.key(keep)] = self.executions.get(self.key(keep), 0) + times

    def capture_plan(self, arm: Arm, keep: CandidateIndex | None, analyze: bool) -> None:
        with self.rolled_back():
            self.enter(keep)
            cursor = self.driver.cursor()
            try:
                # Does the statement return rows? (a DML statement has nothing to fetch)
                self.execute_untimed(cursor, keep, 1, fetch=False)
                self.fetch = self.fetch and cursor.description is not None
            finally:
                cursor.close()
            if self.dialect == "sqlite":
                rows = self.run_sql("EXPLAIN QUERY PLAN " + self.query.sql, self.query.params)
                known = [r[0] for r in self.run_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND name IS NOT NULL")]
                arm.plan, arm.plan_text, used, arm.full_scan = _sqlite_plan(rows, known)
            else:
                options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
                rows = self.run_sql(f"EXPLAIN ({options}) " + self.query.sql, self.query.params)
                arm.plan, arm.plan_text, used, arm.full_scan = _pg_plan(rows[0][0])
        arm.indexes_used = used
        # the exact name: SQLite's names ignore case, PostgreSQL's (quoted) do not
        fold = str.lower if self.dialect == "sqlite" else str
        named = {fold(name) for name in used}
        targets = [keep] if keep is not None else self.candidates
        arm.uses_index = any(fold(c.name) in named for c in targets)

    @contextmanager
    def sqlite_cache_for_database(self) -> Iterator[int | None]:
        """SQLite: for the run, a page cache that holds the whole database (up to
        ``SQLITE_CACHE_LIMIT_KIB``), restored afterwards; yields the size used (KiB).

        DROP INDEX reads every page of the index to free it, so with SQLite's default 2 MB
        cache the arms that drop an index would evict the table's pages and run slower
        for that reason alone (measured: two arms with the same plan differed by 1.35×).
        With the database in cache, they agree (ratio 0.99–1.00)."""
        if self.dialect != "sqlite":
            yield None
            return
        old = int(self.run_sql("PRAGMA cache_size")[0][0])
        page_size = int(self.run_sql("PRAGMA page_size")[0][0])
        database_kib = int(self.run_sql("PRAGMA page_count")[0][0]) * page_size // 1024
        old_kib = -old if old < 0 else old * page_size // 1024
        wanted = min(max(database_kib * 3 // 2 + 8192, old_kib), SQLITE_CACHE_LIMIT_KIB)
        self.run_sql(f"PRAGMA cache_size = {-wanted}")
        try:
            yield wanted
        finally:
            if self.conn.in_transaction():
                self.conn.rollback()
            self.run_sql(f"PRAGMA cache_size = {old}")

    # -- building candidates ----------------------------------------------------------

    def check_candidates(self) -> None:
        """Each table exists; an index of the same name on the same table is taken as the
        candidate (kept afterwards) when its columns agree with the DDL."""
        names = [c.name.lower() for c in self.candidates]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConductorError(f"the same index name is given twice: {', '.join(duplicates)}",
                                 hint="give each candidate index its own name")
        with self.in_run():
            inspector = inspect(self.conn)
            for candidate in self.candidates:
                if not inspector.has_table(candidate.table, schema=candidate.schema):
                    raise ConductorError(f"index {candidate.name}: no table '{candidate.table}' "
                                         "in the database",
                                         hint="create the table first, or fix the table name")
                existing = {ix["name"]: ix for ix in
                            inspector.get_indexes(candidate.table, schema=candidate.schema)}
                found = existing.get(candidate.name)
                if found is None:
                    continue
                columns = list(found.get("column_names") or [])
                if (all(candidate.columns) and all(columns)
                        and [c.lower() for c in columns] != [c.lower() for c in candidate.columns]) \
                        or bool(found.get("unique")) != candidate.unique:
                    raise ConductorError(
                        f"an index named {candidate.name} already exists on {candidate.table} "
                        f"({'UNIQUE ' if found.get('unique') else ''}{', '.join(map(str, columns))})"
                        " and differs from the DDL",
                        hint="give the candidate another name, or drop the existing index first")
                candidate.existed = True

    def build(self, candidate: CandidateIndex, arm: Arm) -> None:
        """Create the index for good (or, if it existed, time a rebuild that is rolled
        back) and record build time and size."""
        before = self.sqlite_pages() if self.dialect == "sqlite" and not candidate.existed else None
        if candidate.existed:
            with self.rolled_back():
                self.command(f"DROP INDEX {self.qualified(candidate)}")
                arm.build_seconds = self.timed_statement(candidate.ddl)
        else:
            with self.in_run():  # built inside the run's transaction only: never committed
                arm.build_seconds = self.timed_statement(candidate.ddl)
            candidate.built = True
            self.check_usable(candidate)
        with self.in_run():
            arm.size_bytes = self.index_size(candidate, before)

    @contextmanager
    def in_run(self) -> Iterator[None]:
        """Statements of the run's transaction (opened when needed, never committed)."""
        if self._run_transaction is None:
            self.begin_run()
        yield

    def check_usable(self, candidate: CandidateIndex) -> None:
        """PostgreSQL does not plan with an index built in the same transaction when the
        build met HOT chains it could not index (``pg_index.indcheckxmin``): say so."""
        if self.dialect != "postgresql":
            return
        rows = self.run_sql("SELECT i.indcheckxmin FROM pg_index i JOIN pg_class c "
                            "ON c.oid = i.indexrelid WHERE c.oid = to_regclass(%s)",
                            (self.qualified(candidate),))
        if rows and rows[0][0]:
            self.notes.append(
                f"{candidate.name}: PostgreSQL cannot use this index inside the transaction "
                f"that built it (the table has recently updated rows); VACUUM "
                f"{candidate.table} and run the benchmark again")

    def timed_statement(self, statement: str) -> float:
        start = time.perf_counter()
        self.run_sql(statement)
        return time.perf_counter() - start

    def sqlite_pages(self) -> int:
        with self.in_run():
            return int(self.run_sql("PRAGMA page_count")[0][0]) - \
                int(self.run_sql("PRAGMA freelist_count")[0][0])

    def index_size(self, candidate: CandidateIndex, pages_before: int | None) -> int | None:
        if self.dialect == "postgresql":
            rows = self.conn.execute(text(
                "SELECT pg_relation_size(c.oid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relname = :name AND c.relkind IN ('i', 'I') "
                "AND (n.nspname = :schema OR (:schema IS NULL AND pg_table_is_visible(c.oid)))"),
                {"name": candidate.name, "schema": candidate.schema}).all()
            return int(rows[0][0]) if rows else None
        try:
            total = self.conn.execute(
                text("SELECT SUM(pgsize) FROM dbstat WHERE name = :name AND schema = :schema"),
                {"name": candidate.name, "schema": candidate.schema or "main"}).scalar()
            if total is not None:
                return int(total)
        except SQLAlchemyError:
            pass  # SQLite built without the dbstat virtual table: count pages instead
        if pages_before is None:
            return None
        page_size = int(self.run_sql("PRAGMA page_size")[0][0])
        used = int(self.run_sql("PRAGMA page_count")[0][0]) - int(self.run_sql("PRAGMA freelist_count")[0][0])
        return max(used - pages_before, 0) * page_size

    def drop_built(self) -> list[str]:
        """Take away the candidates this run created (by rolling back the run's transaction,
        which they were built in); returns the names of any still in the database."""
        # a rollback that fails leaves nothing either: the transaction dies with the connection
        with suppress(SQLAlchemyError, self.conn.dialect.loaded_dbapi.Error):
            self.end_run()
        built = [c for c in self.candidates if c.built]
        if not built:
            return []
        try:
            with self.conn.begin():
                inspector = inspect(self.conn)
                return [c.name for c in built if any(
                    ix["name"] == c.name
                    for ix in inspector.get_indexes(c.table, schema=c.schema))]
        except (SQLAlchemyError, self.conn.dialect.loaded_dbapi.Error):
            return []

    # -- inserts ----------------------------------------------------------------------

    def measure_inserts(self, arms: list[Arm], rows: int, seed: int,
                        result: BenchResult) -> None:
        """Per table: insert ``rows`` generated rows without any candidate and with each
        of the table's candidates alone, alternating in shuffled rounds, rolled back."""
        by_table: dict[tuple[str | None, str], list[tuple[Arm, CandidateIndex]]] = {}
        for arm, candidate in zip(arms[1:], self.candidates, strict=True):
            by_table.setdefault((candidate.schema, candidate.table), []).append((arm, candidate))
        for (schema, table_name), members in by_table.items():
            try:
                with self.rolled_back():  # a failure here leaves the run's transaction usable
                    statement, batch = self.insert_batch(schema, table_name, rows, seed)
                    sequences = self.pg_sequences(schema, table_name)
                    try:
                        timings = self.time_inserts(statement, batch, members, seed)
                    finally:
                        self.restore_sequences(sequences)
            except Exception as exc:
                # A generated row the schema rejects (a CHECK the generator cannot read, a
                # clashing key) raises the driver's own error: the insert figures stay
                # empty and the reason is noted; the query timings are still good.
                reason = first_line(scrub(str(exc), self.conn.engine.url))
                result.notes.append(f"insert cost on {table_name} not measured: {reason}")
                continue
            without = _median(timings[None])
            result.insert_baseline_seconds[table_name] = without
            for arm, candidate in members:
                arm.insert_seconds = _median(timings[candidate.name])
                arm.insert_slowdown = arm.insert_seconds / without if without > 0 else None

    def insert_batch(self, schema: str | None, table_name: str, rows: int,
                     seed: int) -> tuple[str, list]:
        """The INSERT in the driver's paramstyle and ``rows`` driver-ready parameter rows."""
        dialect = self.conn.dialect
        with self.in_run():
            table = Table(table_name, MetaData(), autoload_with=self.conn, schema=schema)
            generator = RowGenerator(table, self.dialect, random.Random(seed))
            parents = parent_values(self.conn, table)
            offset = self.conn.execute(select(func.count()).select_from(table)).scalar_one()
            generated = [generator.row(offset + i + 1, parents) for i in range(rows)]
        columns = list(generated[0])
        compiled = table.insert().compile(dialect=dialect, column_keys=columns)
        processors = {name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                      for name, bind in compiled.binds.items()}

        def driver_row(row: dict) -> tuple | dict:
            values = compiled.construct_params({c: row.get(c) for c in columns})
            values = {k: (processors[k](v) if processors.get(k) else v) for k, v in values.items()}
            if compiled.positional:
                return tuple(values[name] for name in compiled.positiontup)
            return values

        return compiled.string, [driver_row(row) for row in generated]

    def time_inserts(self, statement: str, batch: list,
                     members: list[tuple[Arm, CandidateIndex]], seed: int) -> dict:
        situations: list[CandidateIndex | None] = [None, *(c for _, c in members)]
        timings: dict[str | None, list[float]] = {None: []} | {c.name: [] for _, c in members}
        order = random.Random(seed + 1)
        for _ in range(INSERT_ROUNDS):
            order.shuffle(situations)
            for keep in situations:
                with self.rolled_back():
                    self.enter(keep)
                    cursor = self.driver.cursor()
                    try:
                        start = self.clock()
                        cursor.executemany(statement, batch)
                        elapsed = self.clock() - start
                    finally:
                        cursor.close()
                timings[keep.name if keep else None].append(elapsed)
        return timings

    def pg_sequences(self, schema: str | None, table_name: str) -> list[tuple[str, int, bool]]:
        """PostgreSQL sequences that feed the table's columns, with their state: nextval()
        is not transactional, so the rolled-back inserts would move them on."""
        if self.dialect != "postgresql":
            return []
        qualified = f"{self.quote(schema)}.{self.quote(table_name)}" if schema else self.quote(table_name)
        found = []
        with self.in_run():
            columns = [c["name"] for c in inspect(self.conn).get_columns(table_name, schema=schema)]
            for column in columns:
                sequence = self.conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                             {"t": qualified, "c": column}).scalar()
                if sequence:
                    last, called = self.conn.execute(
                        text(f"SELECT last_value, is_called FROM {sequence}")).one()
                    found.append((sequence, int(last), bool(called)))
        return found

    def restore_sequences(self, sequences: list[tuple[str, int, bool]]) -> None:
        if not sequences:
            return
        with self.in_run():  # setval is not transactional: it holds after the rollback
            for sequence, last, called in sequences:
                self.conn.execute(text("SELECT setval(CAST(:s AS regclass), :v, :c)"),
                                  {"s": sequence, "v": last, "c": called})


def choose_clock(clock: str, dialect: str) -> tuple[str, Callable[[], float]]:
    """("wall" | "cpu", the clock function) for ``clock`` = "wall", "cpu" or "auto".

    "cpu" is ``time.thread_time``: the CPU time of this thread, which leaves out the
    time the operating system gave to other processes. SQLite runs the query in this
    thread, so on a busy machine CPU time measures the query and wall time measures the
    query plus whatever else ran (measured on 2 busy cores: a 1.5× slowdown detected in
    100 % of runs with CPU time, 70–90 % with wall time). PostgreSQL runs the query in
    the server, so only wall time measures it. "auto": CPU time for SQLite where the
    thread clock resolves a microsecond (not on Windows, where it ticks every 15.6 ms),
    wall time otherwise."""
    if clock not in ("wall", "cpu", "auto"):
        raise ConductorError(f"unknown clock '{clock}'", hint="use wall, cpu or auto")
    fine = time.get_clock_info("thread_time").resolution <= 1e-6
    if clock == "cpu" and dialect != "sqlite":
        raise ConductorError(f"clock 'cpu' measures this process only; {dialect} runs the "
                             "query in the server", hint="use the wall clock (the default)")
    if clock == "cpu" or (clock == "auto" and dialect == "sqlite" and fine):
        return "cpu", time.thread_time
    return "wall", time.perf_counter


def share_loops(arms: list[Arm]) -> None:
    """Give the arms whose calibrated loops are within ``SHARE_LOOPS_WITHIN`` × of the
    baseline's the most loops
    of them: arms about as fast as each other then time the same number of executions per
    sample. Calibration is noisy, and with different loops a per-sample constant (the
    first executions after the arm switch) weighs differently per execution: measured on
    PostgreSQL, two arms with the same plan got 20 and 29 loops on average and read 12 %
    apart; with the same loops, 2 %. Arms far apart keep their own loops."""
    base = arms[0].loops
    close = [arm for arm in arms if max(arm.loops, base) <= SHARE_LOOPS_WITHIN * min(arm.loops, base)]
    most = max(arm.loops for arm in close)
    for arm in close:
        arm.loops = most


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


# --------------------------------------------------------------------------- entry point


def benchmark(engine: Engine, sql: str, params: dict[str, Any] | None = None, *,
              indexes: Sequence[str] = (), repeat: int = 30, warmup: int = 3,
              analyze: bool = False, seed: int = 0, min_sample_seconds: float = 0.001,
              insert_rows: int = 500, progress: Progress | None = None,
              name: str | None = None, clock: str = "auto",
              timeout: float | None = None, prepared: bool = True) -> BenchResult:
    """Time ``sql`` (``:name`` bind parameters from ``params``) without and with each
    candidate index DDL in ``indexes``, on the same data, and compare (see the module
    docstring for the method). The database is left as found: candidate indexes built
    here are dropped afterwards, existing ones kept.

    ``repeat`` timed samples per arm after ``warmup`` discarded blocks; ``analyze``
    (PostgreSQL) captures ``EXPLAIN (ANALYZE, BUFFERS)`` plans; ``insert_rows`` rows
    (0: skip) measure the insert slowdown; ``progress`` is a tqdm-compatible factory;
    ``clock`` is "wall", "cpu" or "auto" (see ``choose_clock``); each statement (each
    sample) may run ``timeout`` seconds (None: the default, 0: no limit); ``prepared``
    (PostgreSQL) times server-side prepared statements, as an application's loop runs
    them, or, False, statements parsed and planned at every execution."""
    dialect = engine.dialect.name
    if dialect not in SUPPORTED_DIALECTS:
        raise UnsupportedByDialect(
            f"index benchmarks are not supported on {dialect}: plans and transactional "
            "index switching are implemented for SQLite and PostgreSQL",
            hint="benchmark against a SQLite or PostgreSQL copy of the schema and data")
    if repeat < 2:
        raise ConductorError(f"{option('repeat', str(repeat))} is too small: an interval needs at "
                             "least 2 samples per arm",
                             hint=f"use {option('repeat', '10')} or more (default 30)")
    if warmup < 0 or insert_rows < 0 or min_sample_seconds < 0:
        raise ConductorError(f"{option('warmup')}, insert rows and the sample time cannot be negative")
    statement = (sql or "").strip().rstrip(";").strip()
    if not statement:
        raise ConductorError("no query to benchmark", hint="put the query in the cell, or name a "
                             "workload query")
    name = name or "query"
    clock_name, clock_function = choose_clock(clock, dialect)
    candidates = [parse_index_ddl(ddl, dialect) for ddl in indexes]
    query = compile_query(engine, statement, params)
    started = time.perf_counter()
    result = BenchResult(
        name=name, sql=statement, dialect=dialect, params=dict(params or {}), arms=[],
        database=mask(engine.url),
        timestamp=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        repeat=repeat, warmup=warmup, seed=seed, min_sample_seconds=min_sample_seconds,
        insert_rows=insert_rows, analyze=analyze, clock=clock_name,
        prepared=prepared or dialect == "sqlite")
    if not prepared and dialect == "sqlite":
        result.notes.append("SQLite statements always come from the sqlite3 statement cache, "
                            "as an application's: not preparing them applies to PostgreSQL")
    if analyze and dialect == "sqlite":
        result.notes.append("SQLite has no EXPLAIN ANALYZE: the plans are EXPLAIN QUERY PLAN")
    harness: _Harness | None = None
    try:
        with statement_timeout(engine, timeout, f"query {name}"), engine.connect() as conn:
            harness = _Harness(conn, query, candidates, clock_function, prepared)
            with harness.sqlite_cache_for_database() as result.sqlite_cache_kib:
                try:
                    _run(harness, result, repeat, warmup, analyze, seed, min_sample_seconds,
                         insert_rows, progress)
                finally:
                    harness.end_run()
            result.notes.extend(harness.notes)
    except ConductorError:
        raise
    except (SQLAlchemyError, engine.dialect.loaded_dbapi.Error) as exc:
        # SQLAlchemy's wrapper or the driver's own error (the timed loops use the cursor)
        reason = first_line(scrub(str(getattr(exc, "orig", None) or exc), engine.url))
        step = harness.step if harness else "connecting"
        raise DatabaseError(f"benchmark {name}: {step} failed: {reason}",
                            hint="nothing was changed: the candidate indexes built for the run "
                                 "were dropped again") from None
    result.seconds = time.perf_counter() - started
    return result


def _run(harness: _Harness, result: BenchResult, repeat: int, warmup: int, analyze: bool,
         seed: int, min_sample_seconds: float, insert_rows: int,
         progress: Progress | None) -> None:
    harness.step = "checking the candidate indexes"
    harness.check_candidates()
    arms = [Arm(BASELINE)]
    try:
        for candidate in harness.candidates:
            arm = Arm(candidate.name, ddl=candidate.ddl, index_name=candidate.name,
                      table=candidate.table, existed=candidate.existed)
            harness.step = f"building index {candidate.name}"
            harness.build(candidate, arm)
            arms.append(arm)
        keeps: list[CandidateIndex | None] = [None, *harness.candidates]
        for arm, keep in zip(arms, keeps, strict=True):
            harness.step = f"running and explaining the query ({arm.label})"
            harness.capture_plan(arm, keep, analyze)
            arm.loops = calibrate_loops(lambda loops, keep=keep: harness.sample(keep, loops),
                                        min_sample_seconds)
        share_loops(arms)
        rng = random.Random(seed)
        order = list(zip(arms, keeps, strict=True))
        bar = progress(total=(warmup + repeat) * len(arms), desc=f"bench {result.name}",
                       unit="sample") if progress else None
        try:
            for block in range(warmup + repeat):
                rng.shuffle(order)
                for arm, keep in order:
                    harness.step = f"timing the query ({arm.label})"
                    seconds = harness.sample(keep, arm.loops) / arm.loops
                    if block >= warmup:
                        arm.samples.append(seconds)
                    if bar is not None:
                        bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        harness.step = "reading the prepared statements' plan counts"
        harness.record_prepared_plans(arms, keeps)
        if insert_rows and harness.candidates:
            harness.measure_inserts(arms, insert_rows, seed, result)
    finally:
        left = harness.drop_built()  # keeps harness.step: the error says what failed
        if left:
            raise DatabaseError(f"could not drop the candidate index(es) {', '.join(left)} "
                                "the benchmark built", hint="drop them by hand: DROP INDEX ...")
    for arm in arms:
        arm.summary = summarize(arm.samples)
    for arm in arms[1:]:
        arm.comparison = ratio_interval(arms[0].samples, arm.samples, confidence=CONFIDENCE,
                                        resamples=RESAMPLES, seed=seed,
                                        systematic=SYSTEMATIC[harness.dialect], paired=True)
    for arm in arms:
        spread = arm.summary.iqr / arm.summary.median
        if spread > UNSTABLE_IQR:
            result.notes.append(
                f"{arm.label}: the samples vary widely (IQR {spread:.0%} of the median), "
                "probably other work competed for the CPU or the disk; the interval is wide "
                "for that reason: rerun on a quieter machine for a sharper answer")
    result.arms = arms


def recorded_index_arms(path) -> list[dict[str, Any]]:
    """The newest recorded result per (query, index) from a benchmarks.jsonl file: one dict
    per index arm with query, index, ddl, table, uses_index, ci_low, ci_high, verdict and
    timestamp. Lines that are not JSON (a write cut short) are skipped."""
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        lines = open(path, encoding="utf-8").read().splitlines()  # noqa: SIM115 - read at once
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or record.get("kind") != "index-benchmark":
            continue
        for arm in record.get("arms") or []:
            if not isinstance(arm, dict) or not arm.get("index_name"):
                continue  # the baseline
            newest[(str(record.get("name")), arm["index_name"])] = {
                "query": record.get("name"), "index": arm["index_name"], "ddl": arm.get("ddl"),
                "table": arm.get("table"), "uses_index": bool(arm.get("uses_index")),
                "ci_low": arm.get("ci_low"), "ci_high": arm.get("ci_high"),
                "verdict": arm.get("verdict"), "timestamp": record.get("timestamp")}
    return list(newest.values())
