"""Index advisor vs SQLite's ``.expert`` and supabase's ``index_advisor`` on public and
home-made workloads (issue 14, item 7).

Run from the repository root::

    .venv/bin/python benchmarks/bench_advisor.py --quick            # a few minutes
    .venv/bin/python benchmarks/bench_advisor.py --sf 0.3           # the issue's targets
    PYTHONPATH=/path/to/other/checkout .venv/bin/python benchmarks/bench_advisor.py ...
        # measures that checkout's advisor (PYTHONPATH, or --package-path, wins over this repo)

TPC-H data needs ``tpchgen-cli`` (PyPI): ``python -m venv /tmp/tpchgen &&
/tmp/tpchgen/bin/pip install tpchgen-cli``, then ``--tpchgen /tmp/tpchgen/bin/tpchgen-cli``
(default: ``tpchgen-cli`` on PATH). PostgreSQL needs the server binaries
(``/usr/lib/postgresql/*/bin``) and HypoPG (``apt-get install postgresql-15-hypopg``); the
side-by-side with supabase's ``index_advisor`` needs its SQL file (``--index-advisor-sql``,
e.g. ``index_advisor--0.2.0.sql`` from github.com/supabase/index_advisor; it is installed in
the benchmark's throw-away cluster only).

Workloads (see ``workloads_advisor.py``): ``tpch`` (22 queries where they run + 11 point
lookups), ``stores`` and ``shop`` (joins whose selective filter is on the small table),
``orders_db`` (the orders_db spec's Query Patterns), and on PostgreSQL ``events`` (one
10 M-row table, generated server-side).

SQLite, per workload: ``advise`` runs in a child process bounded by ``--advise-timeout``
(a workload it does not finish is reported as such); ``.expert`` (the ``sqlite3`` shell)
runs once per query on a copy. Each index set (none, ``.expert``'s, the advisor's) gets an
in-memory copy with its indexes built and ``ANALYZE``; per query the median of calibrated
loops, the sets' samples interleaved; the workload time is the sum of per-query medians;
the advisor/``.expert`` time ratio has a bootstrap interval (``engine/stats.ratio_interval``).
Index sizes come from ``dbstat``. A query slower than ``--query-limit`` without indexes
is left out (and said so).

PostgreSQL, per workload: ``advise`` with HypoPG and with ``use_hypopg=False`` (each
bounded by ``--advise-timeout``; a stopped advisor's server backend is terminated), the
catalog compared before/after, supabase's ``index_advisor(query)`` per query, then one
database per index set cloned from the loaded one (``CREATE DATABASE … TEMPLATE``), its
indexes built, ``ANALYZE``, the sets timed interleaved; sizes by ``pg_relation_size``.

Writes JSON to ``--out`` (default ``benchmarks/results/advisor.json``) with machine facts
and the load average, and prints a summary. ``--merge A.json B.json`` joins result files.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import multiprocessing
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _package_path(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--package-path" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--package-path="):
            return arg.split("=", 1)[1]
    return None


REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"
# The advisor under test comes from --package-path, else PYTHONPATH, else this checkout:
# this repository is only appended when PYTHONPATH is set, so it cannot shadow it.
_chosen = _package_path(sys.argv)
if _chosen:
    sys.path.insert(0, str(Path(_chosen).resolve()))
elif not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(REPO))
else:
    sys.path.append(str(REPO))
if str(BENCH) not in sys.path:
    sys.path.insert(1, str(BENCH))

import workloads_advisor as wl  # noqa: E402

import conductor_magics  # noqa: E402
from conductor_magics.engine.advisor import advise  # noqa: E402
from conductor_magics.engine.connection import make_engine  # noqa: E402
from conductor_magics.engine.stats import calibrate_loops, ratio_interval  # noqa: E402
from conductor_magics.engine.workload import Query  # noqa: E402

INDEX_NAME = re.compile(r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?"
                        r"(\"[^\"]+\"|\S+)\s+ON", re.I)
APP_NAME = "conductor-bench-advise"


def machine_info() -> dict:
    """bench_workspace's machine facts (imported late: that module puts this checkout first
    on sys.path, which must not decide which conductor_magics is measured)."""
    from bench_workspace import machine_info as facts
    return facts()


def package_info() -> dict:
    """Which conductor_magics is measured: its folder, git commit and branch."""
    folder = Path(conductor_magics.__file__).resolve().parent.parent
    info = {"path": str(folder)}
    for key, cmd in (("commit", ["rev-parse", "HEAD"]), ("branch", ["rev-parse", "--abbrev-ref", "HEAD"]),
                     ("dirty", ["status", "--porcelain", "--", "conductor_magics"])):
        run = subprocess.run(["git", "-C", str(folder), *cmd], capture_output=True, text=True, check=False)
        info[key] = run.stdout.strip() if key != "dirty" else bool(run.stdout.strip())
    return info


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- advise, bounded -------------------------------------------------------------------------

def _advise_child(url: str, queries: list[Query], kwargs: dict, tmpdir: str, pipe) -> None:
    os.environ["TMPDIR"] = tmpdir  # scratch files of a stopped advisor go where we clean up
    tempfile.tempdir = tmpdir
    try:
        engine = make_engine(url)
        started = time.perf_counter()
        report = advise(engine, queries, **kwargs)
        seconds = time.perf_counter() - started
        engine.dispose()
        pipe.send({"status": "finished", "seconds": round(seconds, 2),
                   "ddl": [r.ddl for r in report.recommendations], "summary": report.summary,
                   "method": getattr(report, "method", None), "skipped": dict(getattr(report, "skipped", {}))})
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, whatever it is
        pipe.send({"status": "error", "error": f"{type(exc).__name__}: {exc}"[:2000]})


def advise_bounded(url: str, queries: list[Query], timeout: float, tmpdir: Path, **kwargs) -> dict:
    """``advise`` in a child process; after ``timeout`` seconds the child is stopped and the
    result says so (``status``: finished, timeout, error)."""
    receive, send = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(
        target=_advise_child, args=(url, queries, kwargs, str(tmpdir), send), daemon=True)
    started = time.perf_counter()
    child.start()
    send.close()
    if receive.poll(timeout):
        try:
            result = receive.recv()
        except EOFError:
            result = {"status": "error", "error": f"the advisor process died (exit code {child.exitcode})"}
        child.join(30)
    else:
        child.terminate()
        child.join(30)
        if child.is_alive():
            child.kill()
            child.join()
        result = {"status": "timeout", "error": f"did not finish in {timeout:g} s"}
    result["wall_seconds"] = round(time.perf_counter() - started, 2)
    return result


# -- SQLite ----------------------------------------------------------------------------------

def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def probe_sqlite(path: Path, queries: list[Query], limit: float) -> tuple[list[Query], dict, dict]:
    """Queries that run without indexes within ``limit`` seconds (one run each), the others
    with the reason, and each kept query's probe time."""
    db = sqlite3.connect(path)
    kept, skipped, seconds = [], {}, {}
    for query in queries:
        deadline = time.perf_counter() + limit
        db.set_progress_handler(lambda deadline=deadline: time.perf_counter() > deadline, 10_000)
        started = time.perf_counter()
        try:
            db.execute(query.sql, query.params).fetchall()
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                skipped[query.name] = f"slower than {limit:g} s without indexes (not timed repeatedly)"
            else:
                skipped[query.name] = f"does not run on SQLite: {exc}"
            continue
        seconds[query.name] = round(time.perf_counter() - started, 3)
        kept.append(query)
    db.close()
    return kept, skipped, seconds


def expert_indexes(path: Path, queries: list[Query], timeout: float) -> dict:
    """``.expert``'s CREATE INDEX statements, one shell run per query on a copy of the
    database (exact duplicates merged), what it said per query, and its wall time."""
    per_query: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    found: dict[str, str] = {}  # definition without the name → statement
    seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="conductor-expert-") as folder:
        copy = Path(folder) / "expert.sqlite"
        shutil.copy(path, copy)
        for query in queries:
            started = time.perf_counter()
            try:
                run = subprocess.run([wl.SQLITE_SHELL, str(copy)], input=f".expert\n{query.sql};\n",
                                     capture_output=True, text=True, timeout=timeout, check=False)
            except subprocess.TimeoutExpired:
                errors[query.name] = f"did not finish in {timeout:g} s"
                continue
            finally:
                seconds += time.perf_counter() - started
            if run.returncode != 0 or "Error" in run.stderr:
                errors[query.name] = run.stderr.strip()[:300]
                continue
            lines = [ln.strip().rstrip(";") for ln in run.stdout.splitlines() if wl.CREATE_INDEX.match(ln)]
            per_query[query.name] = lines
            for line in lines:
                definition = re.sub(r"INDEX\s+\S+\s+ON", "INDEX ON", line, flags=re.I)
                found.setdefault(definition, line)
    return {"ddl": list(found.values()), "per_query": per_query, "errors": errors, "seconds": round(seconds, 2)}


def index_name(ddl: str) -> str:
    match = INDEX_NAME.search(ddl)
    return match.group(1).strip('"') if match else ""


def loaded_copy(path: Path, indexes: list[str], folder: Path) -> tuple[sqlite3.Connection, dict[str, int]]:
    """A copy of the database in a new file under ``folder`` with ``indexes`` built and
    ANALYZE run, opened read-only and memory-mapped, and each built index's size in bytes
    (dbstat). Files, not ``:memory:`` copies: in-memory copies sat wherever the heap put
    them and the first one loaded ran identical plans up to 10 % faster than the others;
    memory-mapped files are read from the kernel's page cache alike (±1.5 %)."""
    handle, name = tempfile.mkstemp(dir=folder, prefix="arm-", suffix=".sqlite")
    os.close(handle)
    source = sqlite3.connect(path)
    db = sqlite3.connect(name, isolation_level=None)
    source.backup(db)
    source.close()
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    for ddl in indexes:
        db.execute(ddl)
    db.execute("ANALYZE")
    sizes = {}
    for ddl in indexes:
        index = index_name(ddl)
        sizes[index] = db.execute("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?",
                                  (index,)).fetchone()[0]
    db.close()
    db = sqlite3.connect(f"file:{name}?mode=ro", uri=True, isolation_level=None)
    db.execute(f"PRAGMA mmap_size = {max(os.path.getsize(name) * 2, 1 << 20)}")
    return db, sizes


def time_sets(path: Path, sets: dict[str, list[str]], queries: list[Query], samples: int,
              min_seconds: float, clock=time.perf_counter) -> dict[str, dict]:
    """Per index set and query: per-execution seconds of each sample (interleaved sets),
    read on ``clock`` (``time.thread_time``: SQLite runs in this thread, so CPU time leaves
    out what other processes on a loaded machine take)."""
    with tempfile.TemporaryDirectory(prefix="conductor-bench-arms-", dir=path.parent) as folder:
        return _time_sets(path, sets, queries, samples, min_seconds, clock, Path(folder))


def _time_sets(path: Path, sets: dict[str, list[str]], queries: list[Query], samples: int,
               min_seconds: float, clock, folder: Path) -> dict[str, dict]:
    loaded = {name: loaded_copy(path, ddl, folder) for name, ddl in sets.items()}
    dbs = {name: db for name, (db, _) in loaded.items()}
    plans = {name: {q.name: "; ".join(r[-1] for r in db.execute("EXPLAIN QUERY PLAN " + q.sql, q.params))
                    for q in queries} for name, db in dbs.items()}
    runners, loops = {}, {}
    for name, db in dbs.items():
        for query in queries:
            def run(n: int, db=db, query=query) -> float:
                started = clock()
                for _ in range(n):
                    db.execute(query.sql, query.params).fetchall()
                return clock() - started
            first = run(1)  # warm-up; a query slower than a sample needs no calibration
            runners[name, query.name] = run
            loops[name, query.name] = 1 if first >= min_seconds else calibrate_loops(
                run, min_seconds, max_loops=100_000)
    times: dict[tuple[str, str], list[float]] = {key: [] for key in runners}
    # each round in its own (seeded) order: in a fixed order a run's predecessor (another
    # copy's working set in the CPU caches) biased arms with identical plans by up to 10 %
    order = list(runners)
    shuffle = random.Random(0).shuffle
    for _ in range(samples):
        shuffle(order)
        for key in order:
            times[key].append(runners[key](loops[key]) / loops[key])
    for db in dbs.values():
        db.close()
    out = {}
    for name in sets:
        per_query = {q.name: times[name, q.name] for q in queries}
        totals = [sum(per_query[q.name][i] for q in queries) for i in range(samples)]
        sizes = loaded[name][1]
        out[name] = {"indexes": sets[name], "index_count": len(sets[name]),
                     "index_bytes": sum(sizes.values()), "index_sizes": sizes,
                     "workload_ms": sum(statistics.median(v) for v in per_query.values()) * 1000,
                     "per_query_ms": {q: statistics.median(v) * 1000 for q, v in per_query.items()},
                     "plans": plans[name], "sample_totals_s": totals}
    return out


def compare(timed: dict, arm: str, baseline: str) -> dict:
    """``arm``'s workload time over ``baseline``'s (time ratio: < 1 is faster) with its
    interval, and the index count/size comparison."""
    speed = ratio_interval(timed[baseline]["sample_totals_s"], timed[arm]["sample_totals_s"])
    return {"time_ratio": round(1 / speed.ratio, 3), "time_ratio_low": round(1 / speed.high, 3),
            "time_ratio_high": round(1 / speed.low, 3), "verdict": speed.verdict,
            "not_slower": speed.verdict != "slower",
            "not_more_indexes": timed[arm]["index_count"] <= timed[baseline]["index_count"],
            "size_ratio": (round(timed[arm]["index_bytes"] / timed[baseline]["index_bytes"], 3)
                           if timed[baseline]["index_bytes"] else None)}


def run_sqlite(workload: wl.Workload, args, tmp: Path) -> dict:
    """One workload on SQLite: advisor vs .expert (see the module docstring)."""
    path = workload.sqlite_path
    queries = [Query(name, sql, workload.name, dict(workload.params.get(name, {})))
               for name, sql in workload.queries.items()]
    out: dict = {"engine": "sqlite", "workload": workload.name, "description": workload.description,
                 "rows": workload.rows, "notes": workload.notes, "load_before": load()}
    excluded = {q.name: "left out with --exclude (to run the same queries as a reference run)"
                for q in queries if q.name in args.exclude}
    queries = [q for q in queries if q.name not in excluded]
    queries, skipped, probe = probe_sqlite(path, queries, args.query_limit)
    out["skipped_queries"] = {**workload.skipped, **excluded, **skipped}
    out["queries"] = {q.name: " ".join(q.sql.split()) for q in queries}
    out["no_index_probe_s"] = probe
    print(f"[sqlite/{workload.name}] {len(queries)} queries ({len(out['skipped_queries'])} left out); advise "
          f"(limit {args.advise_timeout:g} s)...", flush=True)
    digest = file_digest(path)
    kwargs = {} if args.min_gain is None else {"min_gain": args.min_gain}
    advice = advise_bounded(f"sqlite:///{path}", queries, args.advise_timeout, tmp, **kwargs)
    advice["live_database_unchanged"] = file_digest(path) == digest
    out["advisor"] = advice
    print(f"  advisor: {advice['status']} in {advice['wall_seconds']:.1f} s"
          + (f", {len(advice['ddl'])} index(es)" if advice["status"] == "finished" else f" ({advice.get('error')})"),
          flush=True)
    expert = expert_indexes(path, queries, args.advise_timeout)
    out["expert"] = expert
    print(f"  .expert: {len(expert['ddl'])} index(es) in {expert['seconds']:.1f} s", flush=True)
    sets = {"none": [], "expert": expert["ddl"]}
    if advice["status"] == "finished":
        sets["advisor"] = advice["ddl"]
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    timed = time_sets(path, sets, queries, args.samples, args.min_seconds, clock)
    out["sets"] = timed
    if "advisor" in timed:
        verdict = compare(timed, "advisor", "expert")
        verdict["target_met"] = verdict["not_slower"] and verdict["not_more_indexes"]
        out["advisor_vs_expert"] = verdict
    out["load_after"] = load()
    return out


# -- PostgreSQL ------------------------------------------------------------------------------

def start_postgres():
    """A throw-away cluster (tests/helpers/postgres_server.py's starter)."""
    spec = importlib.util.spec_from_file_location("bench_pg_server", REPO / "tests" / "helpers" / "postgres_server.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module.start_server()


def catalog(dsn: str) -> list[tuple]:
    """What advise must leave as it was: relations, indexes and extensions."""
    import psycopg
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT c.relname, c.relkind, pg_relation_filenode(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg_toast%' UNION ALL SELECT extname, 'x', NULL FROM pg_extension "
            "ORDER BY 1, 2").fetchall()


def stop_backends(dsn: str) -> None:
    """Terminate what a stopped advisor process left running on the server."""
    import psycopg
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                     (APP_NAME,))


def probe_postgres(dsn: str, queries: list[Query], limit: float) -> tuple[list[Query], dict, dict]:
    import psycopg
    kept, skipped, seconds = [], {}, {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"SET statement_timeout = {int(limit * 1000)}")
        for query in queries:
            started = time.perf_counter()
            try:
                conn.execute(query.sql).fetchall()
            except psycopg.errors.QueryCanceled:
                skipped[query.name] = f"slower than {limit:g} s without indexes (not timed repeatedly)"
                continue
            except psycopg.Error as exc:
                skipped[query.name] = f"does not run on PostgreSQL: {str(exc).splitlines()[0]}"
                continue
            seconds[query.name] = round(time.perf_counter() - started, 3)
            kept.append(query)
    return kept, skipped, seconds


def supabase_indexes(dsn: str, sql_file: Path, queries: list[Query]) -> dict:
    """supabase ``index_advisor(query)`` per query in the database at ``dsn`` (HypoPG and
    the function are installed there): its CREATE INDEX statements, merged, and errors."""
    import psycopg
    found, per_query, errors = {}, {}, {}
    # index_advisor runs DEALLOCATE ALL: psycopg must not keep prepared statements here.
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
        conn.execute(sql_file.read_text(encoding="utf-8"))
        started = time.perf_counter()
        for query in queries:
            statements, errs = conn.execute(
                "SELECT index_statements, errors FROM index_advisor(%s)", (query.sql,)).fetchone()
            per_query[query.name] = list(statements or [])
            if errs:
                errors[query.name] = "; ".join(errs)[:300]
            for statement in statements or []:
                found.setdefault(" ".join(statement.lower().split()), statement)
        seconds = time.perf_counter() - started
    return {"ddl": list(found.values()), "per_query": per_query, "errors": errors, "seconds": round(seconds, 2)}


def build_indexes(dsn: str, ddl: list[str]) -> dict[str, int]:
    """Build ``ddl`` in the database at ``dsn``, ANALYZE, and return each new index's size."""
    import psycopg
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = {r[0] for r in conn.execute("SELECT indexrelid FROM pg_index").fetchall()}
        for statement in ddl:
            conn.execute(statement)
        conn.execute("ANALYZE")
        rows = conn.execute("SELECT indexrelid, indexrelid::regclass::text, pg_relation_size(indexrelid) "
                            "FROM pg_index").fetchall()
    return {name: size for oid, name, size in rows if oid not in before}


def time_postgres(dsns: dict[str, str], queries: list[Query], samples: int, min_seconds: float) -> dict[str, dict]:
    """Per database (index set) and query: per-execution seconds of each sample, the sets'
    samples interleaved. psycopg's default preparation (after 5 runs) applies to every set."""
    import psycopg
    conns = {name: psycopg.connect(dsn, autocommit=True) for name, dsn in dsns.items()}
    try:
        plans, runners, loops = {}, {}, {}
        for name, conn in conns.items():
            plans[name] = {}
            for query in queries:
                plan = conn.execute("EXPLAIN " + query.sql).fetchall()
                plans[name][query.name] = " | ".join(r[0].strip() for r in plan[:6])

                def run(n: int, conn=conn, query=query) -> float:
                    started = time.perf_counter()
                    for _ in range(n):
                        conn.execute(query.sql).fetchall()
                    return time.perf_counter() - started
                first = run(1)
                runners[name, query.name] = run
                loops[name, query.name] = 1 if first >= min_seconds else calibrate_loops(
                    run, min_seconds, max_loops=100_000)
        times: dict[tuple[str, str], list[float]] = {key: [] for key in runners}
        for _ in range(samples):
            for key, run in runners.items():
                times[key].append(run(loops[key]) / loops[key])
    finally:
        for conn in conns.values():
            conn.close()
    out = {}
    for name in dsns:
        per_query = {q.name: times[name, q.name] for q in queries}
        out[name] = {"workload_ms": sum(statistics.median(v) for v in per_query.values()) * 1000,
                     "per_query_ms": {q: statistics.median(v) * 1000 for q, v in per_query.items()},
                     "plans": plans[name],
                     "sample_totals_s": [sum(per_query[q.name][i] for q in queries) for i in range(samples)]}
    return out


def run_postgres(server, name: str, loader, queries_of: dict[str, str], args, tmp: Path, rows_note) -> dict:
    """One workload on PostgreSQL: the advisor (HypoPG, no HypoPG) vs supabase index_advisor."""
    import psycopg
    base = f"bench_{name}"
    server.create_database(base)
    out: dict = {"engine": "postgresql", "workload": name, "load_before": load()}
    started = time.perf_counter()
    out["rows"] = loader(server.dsn(base)) or rows_note
    out["load_seconds"] = round(time.perf_counter() - started, 1)
    if callable(queries_of):  # queries whose literals are read from the loaded data
        queries_of = queries_of(server.dsn(base))
    excluded = {q: "left out with --exclude (to run the same queries as a reference run)"
                for q in queries_of if f"{name}:{q}" in args.exclude}
    queries = [Query(q, sql, name) for q, sql in queries_of.items() if q not in excluded]
    queries, skipped, probe = probe_postgres(server.dsn(base), queries, args.query_limit)
    skipped.update(excluded)
    out["skipped_queries"], out["no_index_probe_s"] = skipped, probe
    out["queries"] = {q.name: " ".join(q.sql.split()) for q in queries}
    print(f"[postgresql/{name}] loaded in {out['load_seconds']} s; {len(queries)} queries "
          f"({len(skipped)} left out)", flush=True)
    url = server.url(base) + f"?application_name={APP_NAME}"
    kwargs = {} if args.min_gain is None else {"min_gain": args.min_gain}
    out["advisor"] = {}
    for mode, use_hypopg in (("hypopg", True), ("no_hypopg", False)):
        before = catalog(server.dsn(base))
        advice = advise_bounded(url, queries, args.advise_timeout, tmp, use_hypopg=use_hypopg, **kwargs)
        if advice["status"] != "finished":
            stop_backends(server.dsn())
            time.sleep(1)
        advice["catalog_unchanged"] = catalog(server.dsn(base)) == before
        out["advisor"][mode] = advice
        print(f"  advisor ({mode}): {advice['status']} in {advice['wall_seconds']:.1f} s"
              + (f", {len(advice['ddl'])} index(es)" if advice["status"] == "finished"
                 else f" ({advice.get('error')})"), flush=True)
    sets: dict[str, list[str]] = {"none": []}
    for mode in ("hypopg", "no_hypopg"):
        advice = out["advisor"][mode]
        if advice["status"] == "finished" and advice["ddl"] not in sets.values():
            sets[f"advisor_{mode}"] = advice["ddl"]
        elif advice["status"] == "finished":
            out["advisor"][mode]["same_set_as"] = next(k for k, v in sets.items() if v == advice["ddl"])
    dsns = {}
    for arm in [*sets, "supabase"] if args.index_advisor_sql else list(sets):
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{base}_{arm}" TEMPLATE "{base}"')
        dsns[arm] = server.dsn(f"{base}_{arm}")
    if args.index_advisor_sql:
        supa = supabase_indexes(dsns["supabase"], args.index_advisor_sql, queries)
        out["supabase"] = supa
        sets["supabase"] = supa["ddl"]
        print(f"  supabase index_advisor: {len(supa['ddl'])} index(es) in {supa['seconds']:.1f} s"
              + (f", errors on {sorted(supa['errors'])}" if supa["errors"] else ""), flush=True)
    sizes = {}
    for arm, ddl in sets.items():
        started = time.perf_counter()
        sizes[arm] = build_indexes(dsns[arm], ddl)
        print(f"  built {arm}'s {len(ddl)} index(es) in {time.perf_counter() - started:.1f} s", flush=True)
    timed = time_postgres(dsns, queries, args.samples, args.min_seconds)
    for arm in timed:
        timed[arm].update({"indexes": sets[arm], "index_count": len(sets[arm]), "index_sizes": sizes[arm],
                           "index_bytes": sum(sizes[arm].values())})
    out["sets"] = timed
    if "supabase" in timed:
        for arm in timed:
            if arm.startswith("advisor_"):
                verdict = compare(timed, arm, "supabase")
                verdict["target_met"] = verdict["not_slower"] and (verdict["size_ratio"] is None
                                                                   or verdict["size_ratio"] <= 1.5)
                out[f"{arm}_vs_supabase"] = verdict
    for arm in dsns:
        server.drop_database(f"{base}_{arm}")
    server.drop_database(base)
    out["load_after"] = load()
    return out


def tpch_postgres_queries(dsn: str, sf: float) -> dict[str, str]:
    """TPC-H's queries for PostgreSQL and the lookups with keys read from the loaded data."""
    import psycopg
    with psycopg.connect(dsn) as conn:
        values = wl.tpch_lookup_values(conn)
    queries = {q: wl.tpch_sql(s, "postgresql", sf) for q, s in wl.TPCH_QUERIES.items()}
    queries.update(wl.tpch_lookups(values))
    return queries


# -- summary ---------------------------------------------------------------------------------

def mb(size: int | None) -> str:
    return "-" if size is None else f"{size / 1e6:.1f} MB"


def summary(results: dict) -> str:
    lines = []
    for item in results["workloads"]:
        head = f"\n== {item['engine']} / {item['workload']}: {len(item.get('queries', {}))} queries"
        lines.append(head + (f", left out: {', '.join(sorted(item['skipped_queries']))}"
                             if item.get("skipped_queries") else ""))
        for arm, data in item.get("sets", {}).items():
            lines.append(f"  {arm:20} {data['workload_ms']:12.2f} ms  {data['index_count']:3d} indexes "
                         f"{mb(data['index_bytes']):>10}")
        advisor = item.get("advisor", {})
        for mode, advice in ([("", advisor)] if "status" in advisor else advisor.items()):
            lines.append(f"  advise{(' ' + mode) if mode else ''}: {advice['status']} "
                         f"{advice['wall_seconds']:.1f} s"
                         + ("" if advice["status"] == "finished" else f" ({advice.get('error')})"))
        if "expert" in item:
            lines.append(f"  .expert: {item['expert']['seconds']:.1f} s")
        for key in [k for k in item if k.endswith("_vs_expert") or k.endswith("_vs_supabase")]:
            v = item[key]
            lines.append(f"  {key}: time {v['time_ratio']:.2f}× ({v['time_ratio_low']:.2f}–{v['time_ratio_high']:.2f}),"
                         f" size {v['size_ratio']}× → target {'met' if v['target_met'] else 'NOT met'}")
    return "\n".join(lines)


def _advise_cell(advice: dict) -> str:
    if not advice:
        return "-"
    if advice["status"] == "finished":
        return f"{advice['wall_seconds']:.1f} s"
    return f"did not finish in {advice['error'].split(' in ')[-1]}" if advice["status"] == "timeout" \
        else "error"


def _arm_cell(item: dict, arm: str) -> str:
    data = item.get("sets", {}).get(arm)
    if not data:
        return "-"
    return f"{data['workload_ms']:.1f} ms, {data['index_count']} ix, {mb(data['index_bytes'])}"


def markdown(files: list[Path]) -> str:
    """Before/after tables (Markdown) from result files given as LABEL=PATH."""
    runs = []
    for spec in files:
        label, _, path = str(spec).partition("=")
        runs.append((label, json.loads(Path(path).read_text(encoding="utf-8"))))
    lines = ["| workload | run | no index | `.expert` | advisor | advisor ÷ `.expert` time (95 % CI) "
             "| advise | `.expert` |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for label, data in runs:
        for item in data["workloads"]:
            if item["engine"] != "sqlite":
                continue
            v = item.get("advisor_vs_expert")
            ratio = (f"{v['time_ratio']:.2f} ({v['time_ratio_low']:.2f}–{v['time_ratio_high']:.2f})"
                     if v else "-")
            lines.append(f"| {item['workload']} | {label} | {_arm_cell(item, 'none')} | {_arm_cell(item, 'expert')} "
                         f"| {_arm_cell(item, 'advisor')} | {ratio} | {_advise_cell(item['advisor'])} "
                         f"| {item['expert']['seconds']:.1f} s |")
    lines += ["", "| workload | run | no index | supabase `index_advisor` | advisor (HypoPG set) "
              "| advisor ÷ supabase time (95 % CI), size | advise HypoPG | advise no HypoPG |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for label, data in runs:
        for item in data["workloads"]:
            if item["engine"] != "postgresql":
                continue
            arm = "advisor_hypopg" if "advisor_hypopg" in item.get("sets", {}) else "advisor_no_hypopg"
            v = item.get(f"{arm}_vs_supabase")
            ratio = (f"{v['time_ratio']:.2f} ({v['time_ratio_low']:.2f}–{v['time_ratio_high']:.2f}), "
                     f"{v['size_ratio']}×" if v else "-")
            lines.append(f"| {item['workload']} | {label} | {_arm_cell(item, 'none')} | {_arm_cell(item, 'supabase')} "
                         f"| {_arm_cell(item, arm)} | {ratio} | {_advise_cell(item['advisor'].get('hypopg'))} "
                         f"| {_advise_cell(item['advisor'].get('no_hypopg'))} |")
    return "\n".join(lines)


def merge(files: list[Path], out: Path) -> int:
    parts = [json.loads(f.read_text(encoding="utf-8")) for f in files]
    merged = {**parts[0], "workloads": [w for p in parts for w in p["workloads"]],
              "runs": [{k: p[k] for k in ("machine", "config", "package", "load") if k in p} for p in parts]}
    out.write_text(json.dumps(merged, indent=2, default=str) + "\n", encoding="utf-8")
    print(summary(merged))
    print(f"wrote {out}")
    return 0


# -- main ------------------------------------------------------------------------------------

SQLITE_WORKLOADS = ("tpch", "stores", "shop", "orders_db")
PG_WORKLOADS = ("tpch", "shop", "events")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small data (TPC-H SF 0.01, 50k-row joins, 1 M events), 3 samples: a few minutes")
    parser.add_argument("--sf", type=float, help="TPC-H scale factor (default 0.05; quick 0.01; the target 0.3)")
    parser.add_argument("--big-rows", type=int, help="rows of the join workloads' big table (default 400,000)")
    parser.add_argument("--orders", type=int, help="orders_db orders (default 100,000)")
    parser.add_argument("--events", type=int, help="PostgreSQL events rows (default 10,000,000)")
    parser.add_argument("--samples", type=int, help="timing samples per query and index set (default 5)")
    parser.add_argument("--advise-timeout", type=float, default=600.0,
                        help="seconds an advise (and each .expert run) may take per workload (default 600)")
    parser.add_argument("--query-limit", type=float,
                        help="a query slower than this without indexes is left out (default 10 s; quick 3 s)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="SQLite timings: this thread's CPU time (default; robust on a loaded machine) "
                             "or wall time")
    parser.add_argument("--exclude", default="",
                        help="comma-separated query names to leave out on SQLite (q01) and, prefixed "
                             "with the workload, on PostgreSQL (tpch:q17): to time the same queries as "
                             "a reference run whose --query-limit left them out")
    parser.add_argument("--min-gain", type=float, help="passed to advise (default: the advisor's)")
    parser.add_argument("--engines", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--workloads", help=f"comma-separated subset of {sorted(set(SQLITE_WORKLOADS + PG_WORKLOADS))}")
    parser.add_argument("--tpchgen", default="tpchgen-cli", help="the tpchgen-cli executable")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "conductor-bench-advisor-cache",
                        help="where generated TPC-H CSV is kept between runs")
    parser.add_argument("--index-advisor-sql", type=Path,
                        help="supabase index_advisor's SQL file (skip the side-by-side without it)")
    parser.add_argument("--package-path", help="import conductor_magics from this folder (before PYTHONPATH)")
    parser.add_argument("--label", default="", help="recorded in the results (e.g. before/after)")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "advisor.json",
                        help="where to write the JSON results")
    parser.add_argument("--merge", type=Path, nargs="+", help="join these result files into --out and stop")
    parser.add_argument("--markdown", type=Path, nargs="+", metavar="LABEL=FILE",
                        help="print before/after Markdown tables of these result files and stop")
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)
    if args.markdown:
        print(markdown(args.markdown))
        return 0
    sf = args.sf or (0.01 if args.quick else 0.05)
    big = args.big_rows or (50_000 if args.quick else 400_000)
    orders = args.orders or (20_000 if args.quick else 100_000)
    events = args.events or (1_000_000 if args.quick else 10_000_000)
    args.samples = args.samples or (3 if args.quick else 5)
    args.query_limit = args.query_limit or (3.0 if args.quick else 10.0)
    args.min_seconds = 0.02 if args.quick else 0.05
    args.exclude = {name for name in args.exclude.split(",") if name}
    engines = set(args.engines.split(","))
    chosen = set(args.workloads.split(",")) if args.workloads else None
    if args.index_advisor_sql and not args.index_advisor_sql.exists():
        parser.error(f"--index-advisor-sql {args.index_advisor_sql} does not exist")

    results: dict = {
        "label": args.label, "machine": machine_info(), "package": package_info(),
        "mode": "quick" if args.quick else "full",
        "config": {"tpch_sf": sf, "big_rows": big, "orders": orders, "events": events, "samples": args.samples,
                   "sample_min_seconds": args.min_seconds, "advise_timeout_s": args.advise_timeout,
                   "query_limit_s": args.query_limit, "min_gain": args.min_gain,
                   "sqlite_clock": args.clock, "postgresql_clock": "wall",
                   "sqlite_version": sqlite3.sqlite_version, "engines": sorted(engines)},
        "load": {"start": load()}, "workloads": []}
    print(f"measuring conductor_magics from {results['package']['path']} "
          f"({results['package']['branch']} {results['package']['commit'][:10]}); load {load()}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="conductor-bench-advisor-"))
    args.cache.mkdir(parents=True, exist_ok=True)
    try:
        if "sqlite" in engines:
            for name in SQLITE_WORKLOADS:
                if chosen and name not in chosen:
                    continue
                started = time.perf_counter()
                path = tmp / f"{name}.sqlite"
                if name == "tpch":
                    try:
                        workload = wl.tpch(path, sf, args.cache, args.tpchgen)
                    except wl.MissingTool as exc:
                        print(f"[sqlite/tpch] left out: {exc}", flush=True)
                        results["left_out"] = {"tpch": str(exc)}
                        continue
                elif name == "orders_db":
                    workload = wl.orders_db(path, orders)
                else:
                    workload = wl.join_workload(name, path, big)[0]
                print(f"[sqlite/{name}] built in {time.perf_counter() - started:.1f} s: "
                      + ", ".join(f"{t} {n:,}" for t, n in workload.rows.items()), flush=True)
                results["workloads"].append(run_sqlite(workload, args, tmp))
                write(results, args.out, partial=True)
                path.unlink()
                print(summary({"workloads": results["workloads"][-1:]}), flush=True)
        if "postgresql" in engines:
            server = start_postgres()
            try:
                for name in PG_WORKLOADS:
                    if chosen and name not in chosen:
                        continue
                    if name == "tpch":
                        try:
                            folder = wl.tpch_csv(sf, args.cache, args.tpchgen)
                        except wl.MissingTool as exc:
                            print(f"[postgresql/tpch] left out: {exc}", flush=True)
                            results["left_out"] = {"tpch": str(exc)}
                            continue
                        item = run_postgres(server, name, lambda dsn, f=folder: wl.load_tpch_postgres(dsn, f),
                                            lambda dsn: tpch_postgres_queries(dsn, sf), args, tmp, None)
                        item["notes"] = dict(wl.TPCH_ADAPTED)
                    elif name == "shop":
                        _, _, shop_queries, rows_of = wl.JOIN_WORKLOADS["shop"]
                        rows = rows_of(big)
                        item = run_postgres(server, name, lambda dsn, r=rows: wl.load_rows_postgres(
                            dsn, wl.SHOP_SCHEMA, r), shop_queries, args, tmp, {t: len(v) for t, v in rows.items()})
                    else:
                        item = run_postgres(server, name, lambda dsn: wl.load_events_postgres(dsn, events),
                                            wl.EVENTS_QUERIES, args, tmp, None)
                    results["workloads"].append(item)
                    write(results, args.out, partial=True)
                    print(summary({"workloads": [item]}), flush=True)
            finally:
                server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["load"]["end"] = load()
    print(summary(results))
    write(results, args.out, partial=False)
    print(f"wrote {args.out}")
    return 0


def write(results: dict, out: Path, partial: bool) -> None:
    """The results so far (``partial``: written after each workload, so a stopped run keeps them)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**results, "partial": partial}, indent=2, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
