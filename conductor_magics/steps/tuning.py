"""Index tuning steps for one component: sample data, workload, benchmarks, advisor.

Joins the workspace files (``storages/<id>/workload.sql``, ``benchmarks.jsonl``,
the spec's Query Patterns, the declared schema) with the engine's seeding,
benchmark harness and index advisor.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pandas as pd

from ..engine.timeouts import StatementTimeout, statement_timeout
from ..engine.workload import Query, check_name, parse_workload, upsert
from ..errors import ConductorError, DatabaseError, command, option
from ..fsio import pid_alive, read_utf8
from ..workspace.files import atomic_write_bytes, ensure_gitignore
from ..workspace.intents import interrupted_advise
from ..workspace.layout import ADVISE_INTENT, BENCHMARKS_FILE, WORKLOAD_FILE
from ..workspace.spec import query_patterns
from .context import ComponentDatabase, StepResult
from .migrate import migrate, migrations

#: workload sources besides a file path
WORKLOAD_SOURCES = ("auto", "workload", "spec")


# -- workload --------------------------------------------------------------------------

def workload(db: ComponentDatabase, source: str | None = None) -> list[Query]:
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


def require_workload(db: ComponentDatabase, source: str | None) -> list[Query]:
    queries = workload(db, source)
    if not queries:
        raise ConductorError(
            f"{db.component.id}: no workload queries found ({source or 'workload.sql or the spec'})",
            hint=f"record one with {command('query NAME', cell=True)}, "
                 "or add SQL blocks under '## Query Patterns' in spec.md")
    return queries


def find_query(db: ComponentDatabase, name: str, source: str | None = None) -> Query:
    queries = workload(db, source)
    for query in queries:
        if query.name == name:
            return query
    known = ", ".join(q.name for q in queries) or "none"
    raise ConductorError(f"{db.component.id}: no workload query named '{name}' (known: {known})",
                         hint=f"record it with {command('query NAME', cell=True)}")


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


def bind(db: ComponentDatabase, query: Query, given: dict[str, Any] | None = None,
         seed: int = 0) -> Query:
    """The query with every ``:name`` parameter bound: given values first, the rest drawn
    from the data."""
    from ..engine.workload import parameters, sample_parameters

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


def record_query(db: ComponentDatabase, name: str, sql: str) -> StepResult:
    """Run a query cell once (parameters drawn from the data, rolled back) and record it
    under ``name`` in workload.sql; a query that fails to run is not recorded."""
    from ..engine.schema import split_statements

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
    with db.lock():
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

    from ..engine.connection import statement_error

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


def list_workload(db: ComponentDatabase, source: str | None = None) -> StepResult:
    queries = workload(db, source)
    frame = pd.DataFrame([{"query": q.name, "source": q.source, "sql": " ".join(q.sql.split())}
                          for q in queries], columns=["query", "source", "sql"])
    return StepResult(f"{db.component.id}: {len(queries)} workload quer{'y' if len(queries) == 1 else 'ies'}",
                 {"queries": [q.to_json() for q in queries]}, [("workload", frame)])


# -- sample data -----------------------------------------------------------------------

def seed(db: ComponentDatabase, table: str | None, rows: int, seed_value: int = 0,
         skew: float = 0.0) -> StepResult:
    """Generated rows for one table or all of them (parents first), in one transaction."""
    from ..engine.sample import seed_report

    if rows < 1:
        raise ConductorError(f"--rows must be at least 1, got {rows}")
    report = seed_report(db.engine, rows, [table] if table else None, seed_value, skew=skew,
                         progress=db.progress, timeout=db.timeout)
    return StepResult(f"{db.component.id}: {report.summary}", report.to_json(), [("seeded", report.frame())])


# -- benchmarks ------------------------------------------------------------------------

def bench(db: ComponentDatabase, body: str | None, name: str | None, indexes: list[str], *,
          repeat: int = 30, warmup: int = 3, analyze: bool = False, params: list[str] | None = None,
          seed: int = 0, prepared: bool = True) -> tuple[StepResult, Any]:
    """Time the cell's query (or workload query ``name``) without and with each candidate
    index (``prepared``: PostgreSQL statements prepared, as an application's loop runs
    them); the result is appended to benchmarks.jsonl for the indexing gate."""
    from ..engine.bench import benchmark

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
                       name=query.name, timeout=db.timeout, prepared=prepared)
    record = result.to_json()
    record["component"] = db.component.id
    path = db.component.dir / BENCHMARKS_FILE
    with db.lock(), open(path, "a+b") as out:
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

def advise(db: ComponentDatabase, source: str | None = None, *, apply: bool = False,
           min_gain: float = 0.10, use_hypopg: bool | None = None,
           seed: int = 0, abandon: bool = False, max_indexes: int | None = None,
           max_size: int | str | None = None, measure: bool | None = None) -> tuple[StepResult, Any]:
    """Recommend indexes for the workload; ``apply`` adds them to the declared schema and
    writes (and runs) a migration revision for them, first finishing an ``advise --apply``
    that was interrupted; ``abandon`` undoes an interrupted one instead (and advises nothing).
    ``max_indexes`` / ``max_size`` (bytes, or ``500MB``-style) bound the set; ``measure``
    times the workload with them on PostgreSQL too."""
    from ..engine.advisor import advise as run_advisor

    if abandon:
        if apply:
            raise ConductorError("--apply and --abandon exclude each other",
                                 hint="--abandon undoes an interrupted advise --apply; "
                                      "--apply finishes it")
        return StepResult(f"{db.component.id}: {abandon_interrupted_apply(db)}"), None
    if not 0 <= min_gain < 1:
        raise ConductorError(f"--min-gain is a fraction between 0 and 1, got {min_gain}")
    if max_indexes is not None and max_indexes < 0:
        raise ConductorError(f"{option('max-indexes')} is a count of 0 or more, got {max_indexes}")
    size_limit = parse_size(max_size) if max_size is not None else None
    queries = require_workload(db, source)
    if apply and db.declared_sql() is None and not _intent_path(db).is_file():
        raise ConductorError(f"--apply needs a declared schema at {db.declared_path}",
                             hint=f"declare the schema first ({command('schema declare', cell=True)}), then "
                                  f"{command('advise', option('apply'))}")
    finished = finish_interrupted_apply(db) if apply else None
    report = run_advisor(db.engine, queries, min_gain=min_gain, use_hypopg=use_hypopg, seed=seed,
                         progress=db.progress, timeout=db.timeout, max_indexes=max_indexes,
                         max_size=size_limit, measure=measure)
    data = report.to_json()
    frames = [("recommendations", report.frame()), ("queries", report.queries_frame())]
    summary = f"{db.component.id}: {report.summary}"
    if finished:
        summary += f"; {finished}"
        data["finished_interrupted_apply"] = finished
    if apply and report.recommendations:
        summary += "; " + apply_recommendations(db, report.recommendations, data)
    elif apply:
        summary += "; nothing to apply"
    elif pending_advise_apply(db) is not None:
        summary += ("; an interrupted advise --apply is pending: run advise --apply to finish "
                    "it or advise --abandon to undo it")
    return StepResult(summary, data, frames), report


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(|b|kb|kib|mb|mib|gb|gib|tb|tib)\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2,
               "gb": 1000**3, "gib": 1024**3, "tb": 1000**4, "tib": 1024**4}


def parse_size(value: int | str) -> int:
    """Bytes from ``12345``, ``500MB``, ``1.5GiB`` (ConductorError naming --max-size otherwise)."""
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        if match is None:
            raise ConductorError(f"{option('max-size')} takes bytes such as 500MB or 2GB, got {value!r}")
        size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])
    if size < 0:
        raise ConductorError(f"{option('max-size')} is a number of bytes, 0 or more, got {value!r}")
    return size


# -- advise --apply as one recoverable operation ----------------------------------------
#
# The three steps (a migration revision for the indexes, the upgrade, the indexes in
# schema.sql) run in this order, after an intent file (storages/<id>/.advise-apply.json)
# records what they will do. schema.sql is written last, from the intent, so a run killed
# at any point leaves: nothing done (undo: delete the intent and any revision file not yet
# recorded), a recorded revision not applied or applied (finish: upgrade, then schema.sql),
# or everything done but the intent (finish: delete it). ``advise --apply`` and ``migrate
# new|up|down`` finish an interrupted run first; ``advise --abandon`` undoes one.

#: test-only: seconds to sleep after each step of advise --apply, so that a kill test can
#: land in every window between the steps (tests/test_tuning_safety.py)
TEST_PAUSE_ENV = "CONDUCTOR_TEST_PAUSE"
_MESSAGE = "add advisor indexes {names}"
_NAME_PART = r'(?:"(?:[^"]|"")+"|[\w$]+)'
_INDEX_NAME = re.compile(r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?"
                         rf"(?:{_NAME_PART}\.)?({_NAME_PART})", re.IGNORECASE)
_REVISION_ID = re.compile(r"^revision(?:\s*:[^=\n]*)?\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)


def _test_pause() -> None:
    value = os.environ.get(TEST_PAUSE_ENV)
    if value:
        time.sleep(float(value))


def _intent_path(db: ComponentDatabase) -> Path:
    return db.component.dir / ADVISE_INTENT


def _read_intent(path: Path) -> dict[str, Any]:
    try:
        intent = json.loads(path.read_text(encoding="utf-8"))
        # a forged file must not make the undo delete anything but the run's own revision
        if not isinstance(intent, dict) or intent.get("kind") != "advise-apply" \
                or not all(isinstance(d, str) for d in intent.get("ddl") or [None]) \
                or not all(isinstance(intent.get(k), str) for k in ("schema_before", "schema_after")) \
                or not str(intent.get("message", "")).startswith(_MESSAGE.format(names="")):
            raise ValueError("not an advise --apply intent")
        file = intent.get("revision_file")
        if file is not None and not re.fullmatch(r"migrations/versions/[^/\\]+\.py", str(file)):
            raise ValueError(f"its revision file {file!r} is not in migrations/versions/")
        return intent
    except (OSError, ValueError) as exc:
        raise ConductorError(f"cannot read the advise --apply intent {path}: {exc}", path=path,
                             hint="remove the file if no advise --apply runs, then check "
                                  f"{command('migrate check')}") from None


def _write_intent(path: Path, intent: dict[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(intent, indent=2) + "\n").encode("utf-8"))


def declared_index_names(sql: str) -> set[str]:
    """The (lower-case, unqualified, unquoted) names of the indexes a DDL text creates."""
    names = set()
    for match in _INDEX_NAME.finditer(sql or ""):
        name = match.group(1)
        if name.startswith('"'):
            name = name[1:-1].replace('""', '"')
        names.add(name.lower())
    return names


def _ddl_block(ddl: list[str]) -> str:
    return "\n\n-- Indexes recommended by `conductor advise`\n" + "\n".join(ddl) + "\n"


def pending_advise_apply(db: ComponentDatabase) -> Path | None:
    """The intent file of an interrupted ``advise --apply`` of this component (its process
    is gone), or None. Engine-agnostic: it reads the workspace file only."""
    return interrupted_advise(db.component.dir)


def apply_recommendations(db: ComponentDatabase, recommendations: list, data: dict) -> str:
    """Write a migration revision for the indexes, upgrade, then add them to schema.sql:
    one operation, recorded in an intent file first so that an interrupted run is
    finished (or undone with ``advise --abandon``) by the next one."""
    path = _intent_path(db)
    with db.lock():
        _claim(db, path)
        before = db.declared_sql() or ""
        declared = declared_index_names(before)
        ddl = [r.ddl.rstrip().rstrip(";") + ";" for r in recommendations]
        missing = [d for r, d in zip(recommendations, ddl, strict=True) if r.name.lower() not in declared]
        names = ", ".join(r.name for r in recommendations)
        versions = db.migrations_folder / "versions"
        intent = {"kind": "advise-apply", "pid": os.getpid(), "ddl": ddl,
                  "indexes": [r.name for r in recommendations],
                  "message": _MESSAGE.format(names=names),
                  "schema_before": before,
                  "schema_after": before.rstrip() + _ddl_block(missing) if missing else before,
                  "versions_before": sorted(p.name for p in versions.glob("*.py")),
                  "revision": None, "revision_file": None}
        ensure_gitignore(db.component.dir, (ADVISE_INTENT,))
        _write_intent(path, intent)
    try:
        _test_pause()
        revision, upgraded = _carry_out(db, path, intent)
    except BaseException:
        # A failed step (or Ctrl-C) leaves what the database has: undo when the revision is
        # not applied, finish when it is; the original error is what the user sees.
        with contextlib.suppress(Exception):
            _settle(db, path, _read_intent(path), finish=False)
        raise
    data["applied"] = {"revision": revision, "path": intent["revision_file"] and
                       str(db.component.dir / intent["revision_file"]),
                       "upgrade": upgraded.data if upgraded is not None else {}}
    return f"revision {revision} adds {len(recommendations)} index(es), applied"


def _claim(db: ComponentDatabase, path: Path) -> None:
    """Refuse while another process's advise --apply runs; finish an interrupted one."""
    if path.is_file():
        finish_interrupted_apply(db)


def _carry_out(db: ComponentDatabase, path: Path, intent: dict[str, Any]) -> tuple[str | None, Any]:
    m = migrations(db)
    m.init()
    try:
        info = m.new(intent["message"], intent["schema_after"])
    except ConductorError as exc:
        if "already matches" not in exc.message:
            raise
        info = None  # head creates the indexes already (a revision not yet applied)
    if info is not None:
        _existing_indexes_if_not_exists(db, info.path)
        intent["revision"] = info.revision
        intent["revision_file"] = Path(info.path).resolve().relative_to(db.component.dir.resolve()).as_posix()
        _write_intent(path, intent)
        _test_pause()
    upgraded = migrate(db, "up")
    _test_pause()
    _write_declared(db, intent)
    _test_pause()
    path.unlink(missing_ok=True)
    return (info.revision if info else m.current()), upgraded


def _existing_indexes_if_not_exists(db: ComponentDatabase, revision_file: Path) -> None:
    """An index the revision creates that the live database has already (declared in
    schema.sql and created by hand, say) is taken as applied: its create_index gets
    ``if_not_exists=True``, so the upgrade does not fail on "already exists"."""
    from sqlalchemy import inspect

    with db.engine.connect() as conn:
        inspector = inspect(conn)
        live = {ix["name"].lower() for table in inspector.get_table_names()
                for ix in inspector.get_indexes(table) if ix.get("name")}
    text_ = Path(revision_file).read_text(encoding="utf-8")
    changed = text_
    for name in live:
        changed = re.sub(rf"(create_index\(\s*['\"]{re.escape(name)}['\"][^\n]*?)\)(\s*)$",
                         r"\1, if_not_exists=True)\2", changed, flags=re.IGNORECASE | re.MULTILINE)
    if changed != text_:
        atomic_write_bytes(Path(revision_file), changed.encode("utf-8"))


def _write_declared(db: ComponentDatabase, intent: dict[str, Any]) -> None:
    """schema.sql with the intent's indexes: the prepared text, or (edited meanwhile) the
    edited text plus the DDL of the indexes it does not declare yet."""
    with db.lock():
        current = db.declared_sql() or ""
        if current == intent["schema_after"]:
            return
        if current == intent["schema_before"]:
            text_ = intent["schema_after"]
        else:
            declared = declared_index_names(current)
            missing = [d for d in intent["ddl"] if not declared_index_names(d) <= declared]
            if not missing:
                return
            text_ = current.rstrip() + _ddl_block(missing)
        atomic_write_bytes(db.declared_path, text_.encode("utf-8"))


def _revision_files(db: ComponentDatabase, intent: dict[str, Any]) -> list[Path]:
    """The revision file(s) the interrupted run wrote: the recorded one, else any new file
    in versions/ whose docstring is the run's message (written before it was recorded)."""
    if intent.get("revision_file"):
        path = db.component.dir / intent["revision_file"]
        return [path] if path.is_file() else []
    before = set(intent.get("versions_before") or [])
    found = []
    for path in sorted((db.migrations_folder / "versions").glob("*.py")):
        if path.name in before:
            continue
        with contextlib.suppress(OSError):
            first = path.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0]
            if first == '"""' + intent["message"]:
                found.append(path)
    return found


def _applied(db: ComponentDatabase, revision: str | None) -> bool:
    if not revision:
        return False
    m = migrations(db)
    try:
        frame = m.history()
        return bool(frame.loc[frame["revision"] == revision, "applied"].any())
    except ConductorError:  # a revision file does not load: the live heads still tell
        return revision in (m.current() or "").split(",")


def _settle(db: ComponentDatabase, path: Path, intent: dict[str, Any], *, finish: bool) -> str:
    """Finish (``finish``, or whenever the revision is applied already) or undo the
    operation an intent file describes; returns what was done."""
    files = _revision_files(db, intent)
    revision = intent.get("revision")
    if not revision and files:
        match = _REVISION_ID.search(files[0].read_text(encoding="utf-8", errors="replace"))
        revision = match.group(1) if match else None
    applied = _applied(db, revision)
    recorded = bool(intent.get("revision")) and bool(files)
    if applied or (finish and recorded):
        if not applied:
            migrate(db, "up")
        _write_declared(db, intent)
        path.unlink(missing_ok=True)
        return f"finished the interrupted advise --apply (revision {revision})"
    for file in files:  # never applied: a revision the run had not finished with
        match = _REVISION_ID.search(file.read_text(encoding="utf-8", errors="replace"))
        if not (match and _applied(db, match.group(1))):
            file.unlink(missing_ok=True)
    with db.lock():
        if (db.declared_sql() or "") == intent["schema_after"] != intent["schema_before"]:
            atomic_write_bytes(db.declared_path, intent["schema_before"].encode("utf-8"))
    path.unlink(missing_ok=True)
    return "undid the interrupted advise --apply (nothing of it had been applied)"


def _stale_intent(db: ComponentDatabase) -> tuple[Path, dict[str, Any]] | None:
    path = _intent_path(db)
    if not path.is_file():
        return None
    intent = _read_intent(path)
    pid = int(intent.get("pid") or 0)
    if pid != os.getpid() and pid_alive(pid):
        raise ConductorError(f"{db.component.id}: advise --apply is running in process {pid} "
                             f"({path.name})", path=path,
                             hint="wait for it to finish, then run this again")
    return path, intent


def finish_interrupted_apply(db: ComponentDatabase) -> str | None:
    """Finish an interrupted ``advise --apply`` (upgrade to its revision, then schema.sql),
    or undo it when it had not written its revision yet; None when there is none."""
    found = _stale_intent(db)
    if found is None:
        return None
    return _settle(db, *found, finish=True)


def abandon_interrupted_apply(db: ComponentDatabase) -> str:
    """Undo an interrupted ``advise --apply``: delete its revision file and intent (and put
    schema.sql back); refused when its revision is applied already."""
    found = _stale_intent(db)
    if found is None:
        raise ConductorError(f"{db.component.id}: no interrupted advise --apply to abandon "
                             f"({ADVISE_INTENT} not found)")
    path, intent = found
    files = _revision_files(db, intent)
    revision = intent.get("revision")
    if not revision and files:
        match = _REVISION_ID.search(files[0].read_text(encoding="utf-8", errors="replace"))
        revision = match.group(1) if match else None
    if _applied(db, revision):
        raise ConductorError(
            f"{db.component.id}: the interrupted advise --apply already upgraded the database "
            f"to revision {revision}", path=path,
            hint=f"finish it with {command('advise', option('apply'))}, or "
                 f"{command('migrate down')} first and then {command('advise', option('abandon'))}")
    return _settle(db, path, intent, finish=False)
