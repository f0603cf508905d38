"""Index tuning steps for one component: sample data, workload, benchmarks, advisor.

Joins the workspace files (``storages/<id>/workload.sql``, ``benchmarks.jsonl``,
the spec's Query Patterns, the declared schema) with the engine's seeding,
benchmark harness and index advisor. Called through :class:`LiveDatabase`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .engine.timeouts import StatementTimeout, statement_timeout
from .engine.workload import Query, check_name, parse_workload, upsert
from .errors import ConductorError, DatabaseError
from .fsio import read_utf8
from .live_database import StepResult
from .workspace.files import atomic_write_bytes
from .workspace.spec import query_patterns

if TYPE_CHECKING:
    from .live_database import LiveDatabase

WORKLOAD_FILE = "workload.sql"
BENCHMARKS_FILE = "benchmarks.jsonl"
#: workload sources besides a file path
WORKLOAD_SOURCES = ("auto", "workload", "spec")


# -- workload --------------------------------------------------------------------------

def workload(db: LiveDatabase, source: str | None = None) -> list[Query]:
    """The queries to tune: ``workload.sql`` (recorded query cells), else the spec's
    Query Patterns; ``source`` picks one (``workload``, ``spec``) or names a .sql file."""
    source = source or "auto"
    path = db.component.dir / WORKLOAD_FILE
    if source in ("auto", "workload"):
        if path.is_file():
            queries = parse_workload(read_utf8(path), str(path))
            if queries or source == "workload":
                return queries
        elif source == "workload":
            return []
    if source in ("auto", "spec"):
        spec = db.component.spec_path
        if not spec.is_file():
            return []
        text = spec.read_text(encoding="utf-8", errors="replace")
        return [Query(q.name, q.sql, f"{spec}:{q.line}") for q in query_patterns(text)]
    file = Path(source)
    if not file.is_file():
        raise ConductorError(f"no workload file {source}",
                             hint="give a .sql file with '-- name: NAME' queries, or "
                                  f"one of: {', '.join(WORKLOAD_SOURCES)}")
    return parse_workload(read_utf8(file), str(file))


def require_workload(db: LiveDatabase, source: str | None) -> list[Query]:
    queries = workload(db, source)
    if not queries:
        raise ConductorError(
            f"{db.component.id}: no workload queries found ({source or 'workload.sql or the spec'})",
            hint="record one with a %%conductor query NAME cell (conductor query NAME --file F), "
                 "or add SQL blocks under '## Query Patterns' in spec.md")
    return queries


def find_query(db: LiveDatabase, name: str, source: str | None = None) -> Query:
    queries = workload(db, source)
    for query in queries:
        if query.name == name:
            return query
    known = ", ".join(q.name for q in queries) or "none"
    raise ConductorError(f"{db.component.id}: no workload query named '{name}' (known: {known})",
                         hint="record it with a %%conductor query NAME cell")


def parse_params(items: list[str]) -> dict[str, Any]:
    """``["customer_id=42", "status=paid"]`` → values (numbers as numbers)."""
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConductorError(f"--param takes NAME=VALUE, got '{item}'")
        value: Any = raw
        for kind in (int, float):
            try:
                value = kind(raw)
                break
            except ValueError:
                continue
        params[key.strip().lstrip(":")] = value
    return params


def bind(db: LiveDatabase, query: Query, given: dict[str, Any] | None = None,
         seed: int = 0) -> Query:
    """The query with every ``:name`` parameter bound: given values first, the rest drawn
    from the data."""
    from .engine.workload import parameters, sample_parameters

    given = dict(given or {})
    names = parameters(query.sql)
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ConductorError(f"query {query.name} has no parameter {', '.join(':' + u for u in unknown)}",
                             hint=f"its parameters: {', '.join(':' + n for n in names) or 'none'}")
    params = dict(query.params)
    params.update(given)
    if any(n not in params for n in names):
        params = {**sample_parameters(db.engine, query.sql, seed=seed, given=params,
                                      timeout=db.timeout), **params}
    return Query(query.name, query.sql, query.source, {n: params[n] for n in names})


def record_query(db: LiveDatabase, name: str, sql: str) -> StepResult:
    """Run a query cell once (parameters drawn from the data, rolled back) and record it
    under ``name`` in workload.sql; a query that fails to run is not recorded."""
    from .engine.schema import split_statements

    check_name(name)
    path = db.component.dir / WORKLOAD_FILE
    if path.is_file():
        read_utf8(path)  # an unreadable workload.sql refuses before the database is touched
    sql = sql.strip().rstrip(";").strip()
    if not sql:
        raise ConductorError("the query cell is empty", hint="put one SELECT statement in the cell")
    if len(split_statements(sql, db.engine.dialect.name)) > 1:
        raise ConductorError(f"query {name}: a workload query is one statement",
                             hint="use one %%conductor query cell per query")
    query = bind(db, Query(name, sql, "cell"))
    try:
        frame, seconds = run_once(db.engine, query, db.timeout)
    except StatementTimeout:
        raise  # not a fault of the SQL: exit 1 with the timeout's own message
    except DatabaseError as exc:  # the cell is the user's input: exit 2, nothing recorded
        raise ConductorError(f"query {name} failed: {exc.message}",
                             hint=f"fix the SQL; nothing was recorded in {WORKLOAD_FILE}") from None
    with db.session.workspace.lock():
        text = read_utf8(path) if path.is_file() else ""
        atomic_write_bytes(path, upsert(text, Query(name, sql)).encode("utf-8"))
    params = ", ".join(f":{k}={v!r}" for k, v in query.params.items())
    rows = "" if frame is None else f"{len(frame)} row(s), "
    return StepResult(f"{db.component.id}: query {name} recorded in {path.name} ({rows}{seconds * 1000:.1f} ms"
                 + (f" with {params}" if params else "") + ")",
                 {"query": name, "sql": sql, "params": query.params, "file": str(path),
                  "seconds": round(seconds, 6)},
                 [("result", frame.head(20))] if frame is not None else [])


def run_once(engine, query: Query, timeout: float | None = None) -> tuple[pd.DataFrame | None, float]:
    """Run a bound query in a transaction that is rolled back: its first rows and time
    (bounded by ``timeout`` seconds; None: the default, 0: no limit)."""
    from sqlalchemy import exc, text

    from .engine.connection import statement_error

    with statement_timeout(engine, timeout, f"query {query.name}"), \
            engine.connect() as conn, conn.begin() as txn:
        try:
            started = time.perf_counter()
            result = conn.execute(text(query.sql), query.params)
            rows = result.fetchmany(1000) if result.returns_rows else None
            seconds = time.perf_counter() - started
            keys = list(result.keys()) if result.returns_rows else []
        except exc.DBAPIError as error:
            raise statement_error(conn, 1, 1, query.sql, error.orig) from None
        finally:
            txn.rollback()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=keys) if rows is not None else None
    return frame, seconds


def list_workload(db: LiveDatabase, source: str | None = None) -> StepResult:
    queries = workload(db, source)
    frame = pd.DataFrame([{"query": q.name, "source": q.source, "sql": " ".join(q.sql.split())}
                          for q in queries], columns=["query", "source", "sql"])
    return StepResult(f"{db.component.id}: {len(queries)} workload quer{'y' if len(queries) == 1 else 'ies'}",
                 {"queries": [q.to_json() for q in queries]}, [("workload", frame)])


# -- sample data -----------------------------------------------------------------------

def seed(db: LiveDatabase, table: str | None, rows: int, seed_value: int = 0,
         skew: float = 0.0) -> StepResult:
    """Generated rows for one table or all of them (parents first), in one transaction."""
    from .engine.sample import seed_report

    if rows < 1:
        raise ConductorError(f"--rows must be at least 1, got {rows}")
    report = seed_report(db.engine, rows, [table] if table else None, seed_value, skew=skew,
                         progress=db.progress, timeout=db.timeout)
    return StepResult(f"{db.component.id}: {report.summary}", report.to_json(), [("seeded", report.frame())])


# -- benchmarks ------------------------------------------------------------------------

def bench(db: LiveDatabase, body: str | None, name: str | None, indexes: list[str], *,
          repeat: int = 30, warmup: int = 3, analyze: bool = False, params: list[str] | None = None,
          seed: int = 0) -> tuple[StepResult, Any]:
    """Time the cell's query (or workload query ``name``) without and with each candidate
    index; the result is appended to benchmarks.jsonl for the indexing gate."""
    from .engine.bench import benchmark

    if repeat < 3:
        raise ConductorError(f"--repeat must be at least 3 (samples per arm), got {repeat}")
    if warmup < 0:
        raise ConductorError(f"--warmup cannot be negative, got {warmup}")
    if (body or "").strip():
        query = Query(name or "cell", body.strip().rstrip(";").strip(), "cell")
    elif name:
        query = find_query(db, name)
    else:
        raise ConductorError("bench needs a query: a %%conductor bench cell, a workload query "
                             "name, or --file F")
    query = bind(db, query, parse_params(params or []), seed=seed)
    result = benchmark(db.engine, query.sql, query.params, indexes=list(indexes), repeat=repeat,
                       warmup=warmup, analyze=analyze, seed=seed, progress=db.progress,
                       name=query.name, timeout=db.timeout)
    record = result.to_json()
    record["component"] = db.component.id
    path = db.component.dir / BENCHMARKS_FILE
    with db.session.workspace.lock(), open(path, "a+b") as out:
        # Appended, not rewritten. A line cut short by a crash is skipped by the reader;
        # start on a fresh line so it does not swallow this one.
        fresh = out.seek(0, 2) == 0
        if not fresh:
            out.seek(-1, 2)
            fresh = out.read(1) == b"\n"
        out.write((b"" if fresh else b"\n") + json.dumps(record, default=str).encode("utf-8") + b"\n")
    step = StepResult(f"{db.component.id}: {result.summary}", record, [("benchmark", result.frame())])
    return step, result


# -- advisor ---------------------------------------------------------------------------

def advise(db: LiveDatabase, source: str | None = None, *, apply: bool = False,
           min_gain: float = 0.10, use_hypopg: bool | None = None,
           seed: int = 0) -> tuple[StepResult, Any]:
    """Recommend indexes for the workload; ``apply`` adds them to the declared schema and
    writes (and runs) a migration revision for them."""
    from .engine.advisor import advise as run_advisor

    if not 0 <= min_gain < 1:
        raise ConductorError(f"--min-gain is a fraction between 0 and 1, got {min_gain}")
    queries = require_workload(db, source)
    if apply and db.declared_sql() is None:
        raise ConductorError(f"--apply needs a declared schema at {db.declared_path}",
                             hint="declare the schema first (%%conductor schema), then advise --apply")
    report = run_advisor(db.engine, queries, min_gain=min_gain, use_hypopg=use_hypopg, seed=seed,
                         progress=db.progress, timeout=db.timeout)
    data = report.to_json()
    frames = [("recommendations", report.frame()), ("queries", report.queries_frame())]
    summary = f"{db.component.id}: {report.summary}"
    if apply and report.recommendations:
        summary += "; " + apply_recommendations(db, report.recommendations, data)
    elif apply:
        summary += "; nothing to apply"
    return StepResult(summary, data, frames), report


def apply_recommendations(db: LiveDatabase, recommendations: list, data: dict) -> str:
    """Append the indexes to schema.sql, write a migration revision for them, upgrade."""
    declared = db.declared_sql() or ""
    ddl = "\n".join(r.ddl.rstrip(";") + ";" for r in recommendations)
    text = declared.rstrip() + "\n\n-- Indexes recommended by `conductor advise`\n" + ddl + "\n"
    with db.session.workspace.lock():
        atomic_write_bytes(db.declared_path, text.encode("utf-8"))
    names = ", ".join(r.name for r in recommendations)
    try:
        revision = db.migrate("new", message=f"add advisor indexes {names}")
    except ConductorError:
        with db.session.workspace.lock():  # bad input changes nothing: put schema.sql back
            atomic_write_bytes(db.declared_path, declared.encode("utf-8"))
        raise
    upgraded = db.migrate("up")
    data["applied"] = {"revision": revision.data.get("revision"), "path": revision.data.get("path"),
                       "upgrade": upgraded.data}
    return f"revision {revision.data.get('revision')} adds {len(recommendations)} index(es), applied"
