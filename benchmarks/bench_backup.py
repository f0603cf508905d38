"""Backup benchmarks: what verified backups cost over the physical floor.

Run from the repository root::

    .venv/bin/python benchmarks/bench_backup.py            # ~1 GB SQLite, ~250 MB PostgreSQL
    .venv/bin/python benchmarks/bench_backup.py --quick    # ~100 MB SQLite, ~25 MB PostgreSQL

(a) **SQLite**: ``Backups.create`` + ``Backups.verify`` on a generated database (two tables,
    a foreign key, an index; rows of ~340 bytes) against ``cp`` + ``sha256sum`` of the same
    file, the physical floor of "copy it and know its checksum". Floor and tool run
    interleaved, round after round (the machine is shared: medians, with the load average
    of each round); each tool run is a fresh process. ``--before-code DIR`` (a checkout of
    older code, e.g. ``git worktree add /tmp/main main``) measures that code too, in the
    same rounds. Reports MB/s, the ratios and where the tool's time goes.
(b) **PostgreSQL** (a throw-away cluster): the tool's backup, verify and restore against
    calling ``pg_dump`` / ``pg_restore`` directly with the same options on the same database.

Everything is generated in a temporary folder that is removed afterwards; the free disk
space is checked first. The page cache is not dropped (shared machine): every figure is
warm-cache, the floor included. Results go to ``benchmarks/results/backup.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: the code a worker process measures (--before-code): put first, so it is what is imported
CODE_ENV = "CONDUCTOR_BENCH_CODE"
CODE = Path(os.environ.get(CODE_ENV) or REPO)
if str(CODE) not in sys.path:  # run as a script from anywhere without installing
    sys.path.insert(0, str(CODE))
sys.path.insert(0, str(REPO / "tests"))

from sqlalchemy import text  # noqa: E402

from conductor_magics.engine.backup import Backups, PgTools, pg_tool_connection  # noqa: E402
from conductor_magics.engine.connection import make_engine  # noqa: E402

MB = 1e6
ROW_BYTES = 340  # average SQLite row of the generated events table, for the row count


class PhaseTimer:
    """A tqdm-compatible progress factory that times each phase (bar opened → closed)."""

    def __init__(self):
        self.phases: dict[str, float] = {}

    def __call__(self, total=None, desc="", unit=""):
        started = time.perf_counter()
        phases = self.phases

        class Bar:
            def update(self, n):
                pass

            def close(self):
                phases[desc] = phases.get(desc, 0.0) + time.perf_counter() - started

        return Bar()


def timed(func) -> tuple[float, object]:
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def run(argv: list[str], env: dict | None = None) -> None:
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def check_disk(folder: Path, needed: float) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise SystemExit(f"not enough free disk in {folder}: {free / 1e9:.1f} GB free, "
                         f"{needed / 1e9:.1f} GB needed (try --quick)")


# --------------------------------------------------------------------------- (a) SQLite


def make_sqlite(path: Path, target_bytes: float, payload_bytes: int = 150) -> int:
    """A database of about ``target_bytes``: accounts (10,000) and events referencing them
    (each with a random payload of ``payload_bytes`` bytes, stored as hex text)."""
    rows = int(target_bytes / (ROW_BYTES - 2 * (150 - payload_bytes)))
    conn = sqlite3.connect(path)
    conn.executescript("""
        PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
        CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL);
        CREATE TABLE events (id INTEGER PRIMARY KEY,
                             account_id INTEGER NOT NULL REFERENCES accounts (id),
                             kind TEXT NOT NULL, amount REAL, payload TEXT NOT NULL);
        CREATE INDEX ix_events_account_id ON events (account_id);
        CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY);
        INSERT INTO alembic_version VALUES ('bench01');
    """)
    conn.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) "
                 "INSERT INTO accounts SELECT i, 'account ' || i, '2026-01-01T00:00:00' FROM n")
    conn.execute(f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
                 "INSERT INTO events SELECT i, 1 + abs(random()) % 10000, 'k' || (i % 7), "
                 f"(abs(random()) % 100000) / 100.0, hex(randomblob({payload_bytes})) FROM n")
    conn.commit()
    conn.close()
    return rows + 10000


def bench_sqlite(work: Path, target_bytes: float, reps: int, source: Path | None = None,
                 payload_bytes: int = 150, before_code: Path | None = None) -> dict:
    # a given source file is generated once and kept: before/after runs measure the same data
    source = source or work / "source.sqlite"
    started = time.perf_counter()
    if not source.exists():
        make_sqlite(source, target_bytes, payload_bytes)
    with sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True) as conn:
        rows = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("accounts", "events"))
    size = source.stat().st_size
    print(f"SQLite: {size / MB:.0f} MB ({rows:,} rows) ready in {time.perf_counter() - started:.1f}s")
    check_disk(work, 3.5 * size)

    codes = {"after": REPO, **({"before": before_code.resolve()} if before_code else {})}
    floor, floor_fsync, load = [], [], []
    runs: dict[str, list[dict]] = {name: [] for name in codes}
    copy = work / "copy.sqlite"
    for rnd in range(reps):
        load.append(os.getloadavg()[0])
        # the order turns every round, so no variant always runs first (warmest / coldest)
        order = ["floor", *codes][rnd % (len(codes) + 1):] + ["floor", *codes][:rnd % (len(codes) + 1)]
        for what in order:
            if what == "floor":
                seconds, _ = timed(lambda: (run(["cp", str(source), str(copy)]), run(["sha256sum", str(copy)])))
                floor.append(seconds)
                copy.unlink()
                seconds, _ = timed(lambda: (run(["cp", str(source), str(copy)]), run(["sync", str(copy)]),
                                            run(["sha256sum", str(copy)])))
                floor_fsync.append(seconds)
                copy.unlink()
            else:
                runs[what].append(_tool_run(codes[what], source, work / f"backups-{what}", f"bench-{rnd}"))
        print(f"round {rnd + 1}/{reps} (load {load[-1]:.2f}): floor {floor[-1]:.2f}s, "
              + ", ".join(f"{name} backup {r[-1]['backup']:.2f}s verify {r[-1]['verify']:.2f}s"
                          for name, r in runs.items()), flush=True)

    median = statistics.median
    result = {
        "database_bytes": size, "rows": rows, "rounds": reps,
        "load_average_1min": {"per_round": load, "median": median(load)},
        "seconds": {"cp+sha256sum": floor, "cp+sync+sha256sum": floor_fsync,
                    **{name: {"backup": [r["backup"] for r in rs], "verify": [r["verify"] for r in rs]}
                       for name, rs in runs.items()}},
        "median_seconds": {"floor": median(floor), "floor_fsync": median(floor_fsync)},
        "ratio_to_floor": {}, "phases_seconds": {},
    }
    for name, rs in runs.items():
        for step in ("backup", "verify"):
            values = [r[step] for r in rs]
            result["median_seconds"][f"{name} {step}"] = median(values)
            # the median of the floor, and the median of each round's own ratio (same load)
            result["ratio_to_floor"][f"{name} {step}"] = {
                "medians": median(values) / median(floor),
                "per_round_median": median(v / f for v, f in zip(values, floor, strict=True))}
        result["phases_seconds"][name] = {"backup": _median_phases([r["backup_phases"] for r in rs]),
                                          "verify": _median_phases([r["verify_checks"] for r in rs])}
        result.setdefault("manifest_version", {})[name] = rs[-1]["version"]
    print(_sqlite_table(result))
    return result


def _tool_run(code: Path, source: Path, folder: Path, label: str) -> dict:
    """One backup + verify of ``source`` by the code in ``code``, in a fresh process (the
    import is not timed); the artifact is deleted afterwards."""
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(source),
                          str(folder), label], check=True, capture_output=True, text=True,
                         env={**os.environ, CODE_ENV: str(code), "PYTHONPATH": str(code)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _worker(source: Path, folder: Path, label: str) -> None:
    """The tool's side of one round (see _tool_run): prints its timings as one JSON line."""
    from conductor_magics.engine.backup import Backups
    from conductor_magics.engine.connection import make_engine

    engine = make_engine(f"sqlite:///{source}")
    try:
        backups = Backups(folder, engine)
        timer = PhaseTimer()
        backup_s, manifest = timed(lambda: backups.create(label, progress=timer))
        phases = timer.phases
        timer = PhaseTimer()
        verify_s, report = timed(lambda: backups.verify(manifest.id, progress=timer))
        assert report.passed, report.to_text()
        checks = {**timer.phases, **{c.name: c.seconds for c in report.checks}}
        manifest.artifact_path.unlink()  # keep one artifact on disk at a time
        manifest.manifest_path.unlink()
    finally:
        engine.dispose()
    print(json.dumps({"backup": backup_s, "verify": verify_s, "backup_phases": phases,
                      "verify_checks": checks, "version": getattr(manifest, "version", 1),
                      "code": str(CODE)}))


def _median_phases(runs: list[dict[str, float]]) -> dict[str, float]:
    names = dict.fromkeys(name for run_ in runs for name in run_)
    return {name: round(statistics.median(r.get(name, 0.0) for r in runs), 3) for name in names}


def _sqlite_table(r: dict) -> str:
    med = r["median_seconds"]
    lines = [f"\n(a) SQLite, {r['database_bytes'] / MB:.0f} MB, {r['rows']:,} rows, medians of "
             f"{r['rounds']} interleaved rounds (load average {r['load_average_1min']['median']:.2f})",
             f"{'what':<28}{'seconds':>10}{'MB/s':>10}{'x floor':>10}{'x (per round)':>15}"]
    for name, label in (("floor", "cp + sha256sum (floor)"), ("floor_fsync", "cp + sync + sha256sum")):
        lines.append(f"{label:<28}{med[name]:>10.2f}{r['database_bytes'] / MB / med[name]:>10.1f}"
                     f"{med[name] / med['floor']:>10.2f}")
    for name, ratio in r["ratio_to_floor"].items():
        lines.append(f"{name:<28}{med[name]:>10.2f}{r['database_bytes'] / MB / med[name]:>10.1f}"
                     f"{ratio['medians']:>10.2f}{ratio['per_round_median']:>15.2f}")
    for name, phases in r["phases_seconds"].items():
        for step, values in phases.items():
            lines.append(f"{name} {step} phases: " + ", ".join(f"{k} {v:.2f}s" for k, v in values.items()
                                                                if v >= 0.01))
    return "\n".join(lines)


# --------------------------------------------------------------------------- (b) PostgreSQL


def make_postgres(engine, target_bytes: float) -> int:
    rows = int(target_bytes / 250)
    with engine.begin() as conn:
        conn.exec_driver_sql("""
            CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL);
            CREATE TABLE events (id BIGINT PRIMARY KEY, account_id INTEGER NOT NULL REFERENCES accounts (id),
                                 kind TEXT NOT NULL, amount NUMERIC(12, 2), payload TEXT NOT NULL);
            CREATE INDEX ix_events_account_id ON events (account_id);
            CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY);
            INSERT INTO alembic_version VALUES ('bench01');
            INSERT INTO accounts SELECT i, 'account ' || i, '2026-01-01'::timestamptz + i * interval '1 minute'
              FROM generate_series(1, 10000) i;
        """)
        conn.execute(text(
            "INSERT INTO events SELECT i, 1 + ((i * 7919) % 10000)::integer, 'k' || (i % 7), "
            "(i % 100000) / 100.0, "
            "md5(i::text) || md5((i * 31)::text) || md5((i * 17)::text) || md5((i * 13)::text) "
            "FROM generate_series(1::bigint, :rows) i"), {"rows": rows})
        conn.exec_driver_sql("ANALYZE")
    return rows + 10000


def bench_postgres(work: Path, target_bytes: float, reps: int) -> dict:
    from helpers.postgres_server import start_server

    server = start_server()
    try:
        server.create_database("bench")
        engine = make_engine(server.url("bench"))
        started = time.perf_counter()
        rows = make_postgres(engine, target_bytes)
        with engine.connect() as conn:
            size = conn.exec_driver_sql("SELECT pg_database_size('bench')").scalar()
        print(f"\nPostgreSQL: generated {size / MB:.0f} MB ({rows:,} rows) in "
              f"{time.perf_counter() - started:.1f}s")
        check_disk(work, 3 * size)
        tools = PgTools.for_server(engine)
        conninfo, extra_env = pg_tool_connection(engine.url)
        env = {**os.environ, **extra_env}
        admin = make_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
        restore_args = ["--exit-on-error", "--single-transaction", "--no-owner", "--no-privileges",
                        "--no-password"]

        def fresh_database(name: str) -> str:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            return pg_tool_connection(server.url(name))[0]

        def drop_database(name: str) -> None:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        dump = work / "direct.dump"
        backups = Backups(work / "pg-backups", engine)
        seconds: dict[str, list[float]] = {k: [] for k in (
            "direct pg_dump", "tool backup", "direct pg_restore into a new database",
            "tool verify", "tool restore into an empty database")}
        verify_checks = []
        for rep in range(reps):
            took, _ = timed(lambda: run([tools.pg_dump, "--format=custom", f"--file={dump}", "--no-password",
                                         "--dbname", conninfo], env))
            seconds["direct pg_dump"].append(took)

            def direct_restore():
                target = fresh_database("direct_restore")
                run([tools.pg_restore, *restore_args, "--dbname", target, str(dump)], env)
                drop_database("direct_restore")

            took, _ = timed(direct_restore)
            seconds["direct pg_restore into a new database"].append(took)

            took, manifest = timed(lambda r=rep: backups.create(f"bench-{r}"))
            seconds["tool backup"].append(took)
            took, report = timed(lambda m=manifest: backups.verify(m.id))
            assert report.passed, report.to_text()
            seconds["tool verify"].append(took)
            verify_checks.append({c.name: c.seconds for c in report.checks})

            def tool_restore(m=manifest):
                fresh_database("tool_restore")
                result = backups.restore(m.id, server.url("tool_restore"))
                assert result.passed, result.to_text()
                drop_database("tool_restore")

            took, _ = timed(tool_restore)
            seconds["tool restore into an empty database"].append(took)
            manifest.artifact_path.unlink()
            manifest.manifest_path.unlink()
        dump_bytes = dump.stat().st_size
        admin.dispose()
        engine.dispose()
    finally:
        server.stop()
    best = {name: min(values) for name, values in seconds.items()}
    med = {name: statistics.median(values) for name, values in seconds.items()}
    result = {
        "database_bytes": size, "dump_bytes": dump_bytes, "rows": rows, "repetitions": reps,
        "load_average_1min": os.getloadavg()[0],
        "pg_dump_version": tools.version, "seconds": seconds, "best_seconds": best,
        "median_seconds": med,
        "overhead_medians": {
            "backup / pg_dump": med["tool backup"] / med["direct pg_dump"],
            "verify / pg_restore": med["tool verify"] / med["direct pg_restore into a new database"],
            "restore / pg_restore": med["tool restore into an empty database"]
                                    / med["direct pg_restore into a new database"],
        },
        "overhead": {
            "backup / pg_dump": best["tool backup"] / best["direct pg_dump"],
            "verify / pg_restore": best["tool verify"] / best["direct pg_restore into a new database"],
            "restore / pg_restore": best["tool restore into an empty database"]
                                    / best["direct pg_restore into a new database"],
        },
        "verify_checks_seconds": _median_phases(verify_checks),
    }
    print(_postgres_table(result))
    return result


def _postgres_table(r: dict) -> str:
    best = r["best_seconds"]
    lines = [f"\n(b) PostgreSQL, {r['database_bytes'] / MB:.0f} MB database, {r['dump_bytes'] / MB:.0f} MB "
             f"dump, best of {r['repetitions']}", f"{'what':<42}{'seconds':>10}"]
    lines += [f"{name:<42}{value:>10.2f}" for name, value in best.items()]
    lines += [f"{name:<42}{value:>9.2f}x best, {r['overhead_medians'][name]:.2f}x medians"
              for name, value in r["overhead"].items()]
    lines.append("verify checks: " + ", ".join(f"{k} {v:.2f}s" for k, v in r["verify_checks_seconds"].items()
                                               if v >= 0.01))
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~100 MB SQLite and ~25 MB PostgreSQL, 1 repetition")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 2, --quick 1)")
    parser.add_argument("--sqlite-mb", type=float, default=None)
    parser.add_argument("--postgres-mb", type=float, default=None)
    parser.add_argument("--sqlite-file", type=Path, default=None,
                        help="the SQLite source: generated there when missing, kept afterwards "
                             "(so before/after runs measure the same data)")
    parser.add_argument("--payload-bytes", type=int, default=150,
                        help="random bytes per events row (150: ~340-byte rows; 30: ~100-byte rows)")
    parser.add_argument("--no-postgres", action="store_true", help="the SQLite part only")
    parser.add_argument("--no-sqlite", action="store_true", help="the PostgreSQL part only")
    parser.add_argument("--before-code", type=Path, default=None,
                        help="a checkout of older code to measure in the same rounds (SQLite)")
    parser.add_argument("--worker", nargs=3, metavar=("SOURCE", "FOLDER", "LABEL"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "backup.json")
    args = parser.parse_args()
    if args.worker:
        _worker(Path(args.worker[0]), Path(args.worker[1]), args.worker[2])
        return
    reps = args.reps or (1 if args.quick else 3)
    sqlite_mb = args.sqlite_mb or (100 if args.quick else 1000)
    postgres_mb = args.postgres_mb or (25 if args.quick else 250)

    work = Path(tempfile.mkdtemp(prefix="conductor-bench-backup-"))
    try:
        check_disk(work, 4 * sqlite_mb * MB)
        results = {
            "benchmark": "backup", "quick": args.quick,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": {"python": platform.python_version(), "platform": platform.platform(),
                        "cpus": os.cpu_count(), "sqlite": sqlite3.sqlite_version},
            "note": "warm page cache for every figure (the cache is not dropped on a shared machine)",
        }
        if not args.no_sqlite:
            results["sqlite"] = bench_sqlite(work, sqlite_mb * MB, reps, args.sqlite_file, args.payload_bytes,
                                             args.before_code)
        if not args.no_postgres:
            results["postgresql"] = bench_postgres(work, postgres_mb * MB, reps)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
