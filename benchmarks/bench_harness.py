"""Index-benchmark harness benchmarks: its timing overhead and its statistical calibration.

Run from the repository root::

    .venv/bin/python benchmarks/bench_harness.py              # full run (~1 minute)
    .venv/bin/python benchmarks/bench_harness.py --quick      # fewer repetitions (~15 s)
    .venv/bin/python benchmarks/bench_harness.py --postgres   # also PostgreSQL (overhead, arms)
    # today's figures next to an earlier run's (e.g. of the previous commit, --out elsewhere):
    .venv/bin/python benchmarks/bench_harness.py --postgres --before /tmp/before.json

Targets (issue 5; issue 14 item 5 for PostgreSQL):

(a) **Overhead** ≤ 5 % over a bare DBAPI loop for a ~100 µs query: the per-execution
    median through ``benchmark()`` against a bare ``sqlite3`` loop (``execute`` +
    ``fetchall`` × the same loops per sample, ``perf_counter`` around it) in the same
    process, both on the same SQLite file, in rounds whose order is shuffled. Both read
    the wall clock here (``clock="wall"``). A third reference, the bare loop inside
    BEGIN … ROLLBACK with the garbage collector paused, shows where a difference comes
    from. PostgreSQL (``--postgres``): a ~200 µs index search through ``benchmark()``
    against a plain psycopg loop with ``prepare=True`` (an application's loop: prepared
    statements) on its own connection, same loops, interleaved rounds; an unprepared
    psycopg loop is shown too.
(b) **Identical arms**: the speed-up interval contains 1 in ≥ 95 % of repetitions.
    Real timings: ``benchmark()`` (default clock: CPU time on SQLite, wall on
    PostgreSQL) with the baseline and one candidate index on a column the query does not
    filter on (the same plan in both arms, checked), repeated ≥ 100 times. Synthetic: two
    arms drawn from one pool of measured samples.
(c) **A 1.5× slowdown is detected**: constructed synthetically from measured samples,
    so the true ratio is known exactly: in each real identical-arms run of (b), the
    second arm's samples multiplied by 1.5 (also 1.05, 1.1, 1.2). This keeps the noise
    structure of real interleaved runs (a burst of load hits both arms of a block).
    Also shown: the same with both arms drawn independently from one pool of measured
    samples, which loses the pairing of blocks and so is pessimistic on a busy machine.

All databases are generated in a temporary folder that is removed afterwards. A summary
goes to stdout and the figures (with machine information) to ``--out``, default
``benchmarks/results/harness.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import inspect
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from anywhere without installing
    sys.path.insert(0, str(REPO))

from conductor_magics.engine.bench import SYSTEMATIC, benchmark  # noqa: E402
from conductor_magics.engine.connection import make_engine  # noqa: E402
from conductor_magics.engine.stats import ratio_interval, summarize  # noqa: E402

#: ~100 µs on SQLite: an index search returning ~200 of 50,000 rows
OVERHEAD_QUERY = "SELECT id, amount FROM events WHERE customer_id = :cid"
OVERHEAD_PARAMS = {"cid": 42}
#: known slowdowns constructed from measured samples for (c)
SLOWDOWNS = (1.05, 1.1, 1.2, 1.5)
#: a full scan; the candidate index is on a column the query does not use
SCAN_QUERY = "SELECT count(*), sum(amount) FROM events WHERE amount > :low"
SCAN_PARAMS = {"low": 50.0}
UNRELATED_INDEX = "CREATE INDEX ix_events_kind ON events (kind)"
#: (c) judges the slowed samples as benchmark() does (blockwise too, where this version has it)
JUDGED_AS_BENCH = {"paired": True} if "paired" in inspect.signature(ratio_interval).parameters \
    else {}


def machine_info() -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "sqlite": sqlite3.sqlite_version,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def create_events(engine, rows: int, customers: int, seed: int = 1) -> None:
    """``events``: integer key, customer (indexed), kind, amount."""
    rng = random.Random(seed)
    key = "INTEGER PRIMARY KEY" if engine.dialect.name == "sqlite" else "SERIAL PRIMARY KEY"
    data = [{"c": rng.randint(1, customers), "k": rng.choice("abcd"), "a": rng.random() * 100}
            for _ in range(rows)]
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE events (id {key}, customer_id INTEGER NOT NULL, "
                             "kind TEXT NOT NULL, amount REAL NOT NULL)")
        from sqlalchemy import text
        conn.execute(text("INSERT INTO events (customer_id, kind, amount) VALUES (:c, :k, :a)"),
                     data)
        conn.exec_driver_sql("CREATE INDEX ix_events_customer_id ON events (customer_id)")


# --------------------------------------------------------------------------- (a) overhead


def bare_loop_samples(path: Path, loops: int, samples: int, warmup: int,
                      in_transaction: bool = False) -> list[float]:
    """Per-execution seconds of a bare sqlite3 loop: the reference the harness is held to.

    ``in_transaction``: each sample inside BEGIN … ROLLBACK with the garbage collector
    paused, as the harness runs it (explains the difference, if any, from the plain loop:
    inside a transaction SQLite takes its shared lock once instead of per statement)."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        cursor = connection.cursor()
        sql, params = OVERHEAD_QUERY.replace(":cid", "?"), (OVERHEAD_PARAMS["cid"],)
        out = []
        for i in range(warmup + samples):
            if in_transaction:
                cursor.execute("BEGIN")
                gc.disable()
            start = time.perf_counter()
            for _ in range(loops):
                cursor.execute(sql, params)
                cursor.fetchall()
            elapsed = (time.perf_counter() - start) / loops
            if in_transaction:
                gc.enable()
                cursor.execute("ROLLBACK")
            if i >= warmup:
                out.append(elapsed)
        return out
    finally:
        connection.close()


def measure_overhead(folder: Path, rounds: int, repeat: int) -> dict:
    path = folder / "overhead.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    create_events(engine, rows=50_000, customers=250)
    pooled: dict[str, list[float]] = {"harness": [], "bare": [], "bare_in_transaction": []}
    per_round = []
    # The bare loop reads the wall clock, so the harness does too here (clock="wall");
    # by default it reads this thread's CPU time on SQLite, at the same cost.
    loops = benchmark(engine, OVERHEAD_QUERY, OVERHEAD_PARAMS, repeat=2, warmup=1,
                      insert_rows=0, clock="wall").baseline.loops  # as calibrated
    order = random.Random(0)
    for number in range(rounds):
        medians = {}
        kinds = list(pooled)
        order.shuffle(kinds)  # which of the three runs first changes from round to round
        for kind in kinds:
            if kind == "harness":
                result = benchmark(engine, OVERHEAD_QUERY, OVERHEAD_PARAMS, repeat=repeat,
                                   warmup=2, insert_rows=0, seed=number, clock="wall")
                samples = result.baseline.samples
            else:
                samples = bare_loop_samples(path, loops, repeat, warmup=2,
                                            in_transaction=kind == "bare_in_transaction")
            pooled[kind].extend(samples)
            medians[kind] = statistics.median(samples)
        per_round.append(medians)
    engine.dispose()
    harness, bare = pooled["harness"], pooled["bare"]
    h, b = summarize(harness), summarize(bare)
    # ratio_interval(bare, harness) is median(bare)/median(harness); overhead is its inverse.
    interval = ratio_interval(bare, harness)
    overhead = h.median / b.median - 1
    return {
        "query": OVERHEAD_QUERY, "params": OVERHEAD_PARAMS, "rows": 50_000, "clock": "wall",
        "rounds": rounds, "samples_per_round": repeat, "loops_per_sample": loops,
        "harness": h.to_json(), "bare_dbapi_loop": b.to_json(),
        "bare_loop_in_transaction": summarize(pooled["bare_in_transaction"]).to_json(),
        "overhead_pct": 100 * overhead,
        "overhead_ci_pct": [100 * (1 / interval.high - 1), 100 * (1 / interval.low - 1)],
        "per_round": per_round,
        "target_pct": 5.0, "meets_target": overhead <= 0.05,
    }


# --------------------------------------------------------------------------- (b) identical arms


def identical_arms(engine, repetitions: int, repeat: int, label: str, query: str = SCAN_QUERY,
                   params: dict | None = None) -> dict:
    """``benchmark()`` with the baseline and an index the query does not use, repeated:
    how often the speed-up interval contains 1, and the spread of the ratio."""
    params = SCAN_PARAMS if params is None else params
    verdicts, ratios, widths, plans, bootstrap_only, clocks = [], [], [], set(), [], set()
    detected = dict.fromkeys(SLOWDOWNS, 0)
    started = time.perf_counter()
    for i in range(repetitions):
        result = benchmark(engine, query, params, indexes=[UNRELATED_INDEX],
                           repeat=repeat, warmup=1, insert_rows=0, seed=i)
        baseline, other = result.arms
        if other.uses_index or baseline.plan_text != other.plan_text:
            raise RuntimeError(f"the arms' plans differ: {baseline.plan_text!r} vs "
                               f"{other.plan_text!r}")
        plans.add(baseline.plan_text)
        clocks.add(result.clock)
        verdicts.append(other.comparison.verdict)
        # the same samples judged by the sampling error alone (no systematic term)
        bootstrap_only.append(ratio_interval(baseline.samples, other.samples, seed=i).verdict)
        for factor in SLOWDOWNS:  # (c): the same run with the second arm made slower
            slowed = [sample * factor for sample in other.samples]
            detected[factor] += ratio_interval(
                baseline.samples, slowed, seed=i, systematic=SYSTEMATIC[engine.dialect.name],
                **JUDGED_AS_BENCH).verdict == "slower"
        ratios.append(other.comparison.ratio)
        widths.append(other.comparison.high / other.comparison.low)
        if (i + 1) % 25 == 0:
            print(f"  {label}: {i + 1}/{repetitions} runs, "
                  f"{verdicts.count('no change') / len(verdicts):.1%} no change", flush=True)
    return {
        "dialect": engine.dialect.name, "query": query, "candidate": UNRELATED_INDEX,
        "prepared": result.to_json()["settings"].get("prepared"),
        "false_verdicts": (verdicts.count("faster") + verdicts.count("slower")) / repetitions,
        "clock": sorted(clocks),
        "plan": sorted(plans), "repetitions": repetitions, "samples_per_arm": repeat,
        "systematic": SYSTEMATIC[engine.dialect.name],
        "coverage": verdicts.count("no change") / repetitions,
        "coverage_without_systematic": bootstrap_only.count("no change") / repetitions,
        "faster": verdicts.count("faster"), "slower": verdicts.count("slower"),
        "ratio_median": statistics.median(ratios),
        "ratio_p05_p95": [float(np.percentile(ratios, 5)), float(np.percentile(ratios, 95))],
        "interval_width_median": statistics.median(widths),
        "slowdown_1_5x_detected": detected[1.5] / repetitions,
        "slowdown_detected": {f"{f}x": detected[f] / repetitions for f in SLOWDOWNS},
        "seconds": time.perf_counter() - started,
    }


def sqlite_identical_arms(folder: Path, repetitions: int, repeat: int) -> tuple[dict, list[float]]:
    engine = make_engine(f"sqlite:///{folder / 'identical.sqlite'}")
    create_events(engine, rows=10_000, customers=250)
    found = identical_arms(engine, repetitions, repeat, "SQLite")
    # A long run of the same query: the pool of realistic samples for (b)/(c) synthetic.
    pool = benchmark(engine, SCAN_QUERY, SCAN_PARAMS, repeat=400, warmup=3, insert_rows=0)
    engine.dispose()
    return found, pool.baseline.samples


def psycopg_loop_samples(connection, loops: int, samples: int, warmup: int,
                         prepare: bool) -> list[float]:
    """Per-execution seconds of a plain psycopg loop on ``connection`` (its own, kept
    open across rounds as an application's pooled connection is): the application the
    harness is held to (``prepare=True``: server-side prepared statements, as an
    application's loop that runs the query often gets)."""
    sql, params = OVERHEAD_QUERY.replace(":cid", "%(cid)s"), OVERHEAD_PARAMS
    cursor = connection.cursor()
    for _ in range(6):  # past the server's five custom plans, as the harness is
        cursor.execute(sql, params, prepare=prepare)
        cursor.fetchall()
    out = []
    for i in range(warmup + samples):
        start = time.perf_counter()
        for _ in range(loops):
            cursor.execute(sql, params, prepare=prepare)
            cursor.fetchall()
        elapsed = (time.perf_counter() - start) / loops
        if i >= warmup:
            out.append(elapsed)
    connection.rollback()
    return out


def measure_postgres_overhead(engine, dsn: str, rounds: int, repeat: int) -> dict:
    """``benchmark()`` (no candidate) against plain psycopg loops, prepared and not, in
    rounds whose order is shuffled, on the same database."""
    loops = benchmark(engine, OVERHEAD_QUERY, OVERHEAD_PARAMS, repeat=2, warmup=1,
                      insert_rows=0).baseline.loops
    pooled: dict[str, list[float]] = {"harness": [], "prepared_loop": [], "unprepared_loop": []}
    per_round = []
    order = random.Random(0)
    settings = {}
    import psycopg

    # one connection per loop kind for all rounds: the harness's own comes from the
    # engine's pool, warm, and a fresh backend per round had given the loops a cold start
    connections = {kind: psycopg.connect(dsn) for kind in ("prepared_loop", "unprepared_loop")}
    try:
        for number in range(rounds):
            medians = {}
            kinds = list(pooled)
            order.shuffle(kinds)
            for kind in kinds:
                if kind == "harness":
                    result = benchmark(engine, OVERHEAD_QUERY, OVERHEAD_PARAMS, repeat=repeat,
                                       warmup=2, insert_rows=0, seed=number)
                    samples = result.baseline.samples
                    settings = result.to_json()["settings"]
                else:
                    samples = psycopg_loop_samples(connections[kind], loops, repeat, 2,
                                                   kind == "prepared_loop")
                pooled[kind].extend(samples)
                medians[kind] = statistics.median(samples)
            per_round.append(medians)
    finally:
        for connection in connections.values():
            connection.close()
    h, b = summarize(pooled["harness"]), summarize(pooled["prepared_loop"])
    interval = ratio_interval(pooled["prepared_loop"], pooled["harness"])
    overhead = h.median / b.median - 1
    return {
        "query": OVERHEAD_QUERY, "params": OVERHEAD_PARAMS, "rows": 50_000, "clock": "wall",
        "harness_prepared": settings.get("prepared"), "rounds": rounds,
        "samples_per_round": repeat, "loops_per_sample": loops,
        "harness": h.to_json(), "prepared_psycopg_loop": b.to_json(),
        "unprepared_psycopg_loop": summarize(pooled["unprepared_loop"]).to_json(),
        "overhead_pct": 100 * overhead,
        "overhead_ci_pct": [100 * (1 / interval.high - 1), 100 * (1 / interval.low - 1)],
        "per_round": per_round,
        "target_pct": 5.0, "meets_target": abs(overhead) <= 0.05,
    }


def postgres_runs(repetitions: int, repeat: int, rounds: int, overhead_repeat: int) -> dict:
    """Overhead against a prepared psycopg loop and identical arms, on a throw-away
    PostgreSQL cluster."""
    sys.path.insert(0, str(REPO / "tests"))
    from helpers.postgres_server import start_server

    server = start_server()
    out = {}
    try:
        server.create_database("overhead")
        engine = make_engine(server.url("overhead"))
        create_events(engine, rows=50_000, customers=250)
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE events")
        print("(a) overhead over a prepared psycopg loop (PostgreSQL) ...", flush=True)
        out["overhead_postgresql"] = measure_postgres_overhead(
            engine, server.dsn("overhead"), rounds, overhead_repeat)
        engine.dispose()
        server.create_database("harness")
        engine = make_engine(server.url("harness"))
        create_events(engine, rows=20_000, customers=250)
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE events")
        print("(b) identical arms, real timings (PostgreSQL) ...", flush=True)
        out["identical_arms_postgresql"] = identical_arms(engine, repetitions, repeat,
                                                          "PostgreSQL")
        out["identical_arms_postgresql_point"] = identical_arms(
            engine, repetitions, repeat, "PostgreSQL, index search", query=OVERHEAD_QUERY,
            params=OVERHEAD_PARAMS)
        engine.dispose()
        return out
    finally:
        server.stop()


# --------------------------------------------------------------------------- synthetic


def synthetic(pool: list[float], repetitions: int, sizes: tuple[int, ...]) -> dict:
    """Identical arms and known slowdowns, drawn from measured samples: the baseline and
    the arm are independent draws from the pool, the arm's multiplied by the slowdown.
    Judged as the harness judges SQLite (with its systematic term)."""
    systematic = SYSTEMATIC["sqlite"]
    rng = np.random.default_rng(0)
    values = np.asarray(pool)
    out: dict = {"pool": summarize(values).to_json(), "repetitions": repetitions,
                 "systematic": systematic, "sizes": {}}
    for n in sizes:
        same = 0
        detected = dict.fromkeys(SLOWDOWNS, 0)
        for i in range(repetitions):
            a, b = rng.choice(values, n), rng.choice(values, n)
            same += ratio_interval(a, b, seed=i, systematic=systematic).verdict == "no change"
            for factor in SLOWDOWNS:
                slower = rng.choice(values, n) * factor
                detected[factor] += ratio_interval(a, slower, seed=i,
                                                   systematic=systematic).verdict == "slower"
        out["sizes"][str(n)] = {
            "identical_coverage": same / repetitions,
            "slowdown_1_5x_detected": detected[1.5] / repetitions,
            "slowdown_detected": {f"{f}x": detected[f] / repetitions for f in SLOWDOWNS}}
    return out


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    parser.add_argument("--postgres", action="store_true",
                        help="also the overhead and identical arms on a throw-away PostgreSQL")
    parser.add_argument("--before", type=Path, metavar="JSON",
                        help="an earlier run's results (e.g. of the previous version), kept "
                             "under 'before' in --out")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "harness.json")
    args = parser.parse_args(argv)

    rounds, overhead_repeat = (4, 20) if args.quick else (10, 30)
    repetitions, arm_repeat = (40, 15) if args.quick else (150, 20)
    synthetic_reps = 300 if args.quick else 1000
    results: dict = {"machine": machine_info(), "mode": "quick" if args.quick else "full"}
    gc.collect()
    folder = Path(tempfile.mkdtemp(prefix="conductor-harness-"))
    try:
        print("(a) overhead over a bare DBAPI loop (SQLite) ...", flush=True)
        results["overhead"] = overhead = measure_overhead(folder, rounds, overhead_repeat)
        print("(b) identical arms, real timings (SQLite) ...", flush=True)
        results["identical_arms_sqlite"], pool = sqlite_identical_arms(folder, repetitions,
                                                                       arm_repeat)
        results["synthetic"] = synthetic(pool, synthetic_reps, (15, 30))
        if args.postgres:
            results.update(postgres_runs(max(repetitions // 2, 30), arm_repeat, rounds,
                                         overhead_repeat))
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    real = results["identical_arms_sqlite"]
    sizes = results["synthetic"]["sizes"]
    results["targets"] = {
        "overhead_le_5pct": overhead["meets_target"],
        "identical_real_coverage_ge_95pct": real["coverage"] >= 0.95,
        "identical_synthetic_coverage_ge_95pct": all(s["identical_coverage"] >= 0.95
                                                     for s in sizes.values()),
        "slowdown_1_5x_detected_ge_95pct": real["slowdown_1_5x_detected"] >= 0.95,
        "identical_false_verdicts_le_5pct": all(
            results[key]["false_verdicts"] <= 0.05 for key in results
            if key.startswith("identical_arms_")),
    }
    if "overhead_postgresql" in results:
        results["targets"]["postgresql_overhead_le_5pct"] = \
            results["overhead_postgresql"]["meets_target"]
    if args.before:
        results["before"] = json.loads(args.before.read_text(encoding="utf-8"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    print(f"\n(a) overhead, {overhead['query']} ({overhead['loops_per_sample']} loops/sample, "
          f"{overhead['rounds']} rounds × {overhead['samples_per_round']} samples)")
    print(f"    bare DBAPI loop median {overhead['bare_dbapi_loop']['median'] * 1e6:8.1f} µs")
    print(f"    benchmark() median     {overhead['harness']['median'] * 1e6:8.1f} µs")
    print(f"    (bare loop inside BEGIN … ROLLBACK, gc paused: "
          f"{overhead['bare_loop_in_transaction']['median'] * 1e6:.1f} µs)")
    low, high = overhead["overhead_ci_pct"]
    print(f"    overhead {overhead['overhead_pct']:+.1f} % [95 % CI {low:+.1f} … {high:+.1f} %] "
          f"(target ≤ 5 %: {'met' if overhead['meets_target'] else 'NOT met'})")
    if "overhead_postgresql" in results:
        pg = results["overhead_postgresql"]
        low, high = pg["overhead_ci_pct"]
        print(f"(a) PostgreSQL, {pg['query']} ({pg['loops_per_sample']} loops/sample, "
              f"harness prepared: {pg['harness_prepared']})")
        print(f"    prepared psycopg loop   {pg['prepared_psycopg_loop']['median'] * 1e6:8.1f} µs")
        print(f"    unprepared psycopg loop {pg['unprepared_psycopg_loop']['median'] * 1e6:8.1f} µs")
        print(f"    benchmark() median      {pg['harness']['median'] * 1e6:8.1f} µs")
        print(f"    overhead {pg['overhead_pct']:+.1f} % [95 % CI {low:+.1f} … {high:+.1f} %] "
              f"(target within 5 %: {'met' if pg['meets_target'] else 'NOT met'})")
    for key in [k for k in results if k.startswith("identical_arms_")]:
        if key in results:
            r = results[key]
            print(f"(b) identical arms ({r['dialect']}, {r['query']}, {'/'.join(r['clock'])} clock, "
                  f"{r['repetitions']} runs × "
                  f"{r['samples_per_arm']} samples/arm): interval contains 1 in "
                  f"{r['coverage']:.1%} (faster {r['faster']}, slower {r['slower']}; "
                  f"{r['coverage_without_systematic']:.1%} without the {r['systematic']:.0%} "
                  "systematic term); "
                  f"ratio median {r['ratio_median']:.3f}, 5–95 % "
                  f"{r['ratio_p05_p95'][0]:.3f}–{r['ratio_p05_p95'][1]:.3f}")
            rates = ", ".join(f"{f} {rate:.0%}" for f, rate in r["slowdown_detected"].items())
            print(f"(c)   same runs, second arm × factor → detected as slower: {rates}")
    pool = results["synthetic"]["pool"]
    print(f"(b/c) independent draws from {pool['n']} measured samples (median {pool['median'] * 1e3:.3f} ms, "
          f"IQR {pool['iqr'] * 1e3:.3f} ms), {results['synthetic']['repetitions']} repetitions:")
    for n, s in sizes.items():
        rates = ", ".join(f"{f} {rate:.0%}" for f, rate in s["slowdown_detected"].items())
        print(f"      n={n:>3}: identical arms → no change {s['identical_coverage']:.1%}; "
              f"slowdown detected: {rates}")
    print("targets: " + ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in results["targets"].items()))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
