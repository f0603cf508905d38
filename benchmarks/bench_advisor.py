"""Index advisor vs SQLite's own recommender (the ``sqlite3`` shell's ``.expert``).

Run from the repository root::

    .venv/bin/python benchmarks/bench_advisor.py            # 100k orders, 9 samples per query
    .venv/bin/python benchmarks/bench_advisor.py --quick    # 20k orders, 5 samples

The workload is the orders_db spec's Query Patterns
(``example_notebooks/storage-conductor/storages/orders_db/spec.md``) on the schema of the
last ``%%conductor schema`` cell of ``example_notebooks/implement_walkthrough.ipynb``
without its secondary ``CREATE INDEX`` statements (primary keys and UNIQUE constraints
stay), so there is something to find. A spec query that does not run on that schema is
reported as skipped. Data: generated with a seeded RNG at the spec's proportions
(customers : products : orders : order items : payments ≈ 17 : 1.1 : 100 : 260 : 60).

Three index sets are timed on the same data with the same parameter values (drawn
with ``sample_parameters``): none, the advisor's (``advise``), and ``.expert``'s (the
shell run once per query on a copy of the database, its ``CREATE INDEX`` lines
collected). Each set gets an in-memory copy of the database, its indexes and ``ANALYZE``;
each query's time is the median over samples of calibrated loops, the samples of the
three sets interleaved. The workload time is the sum of the per-query medians. The
target: the advisor's workload time no worse than ``.expert``'s (the bootstrap interval
of the ratio, ``engine/stats.ratio_interval``, not entirely below 1) with no more indexes.

Writes JSON to ``--out`` (default ``benchmarks/results/advisor.json``) and prints a summary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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

REPO = Path(__file__).resolve().parent.parent
for folder in (REPO, REPO / "benchmarks"):
    if str(folder) not in sys.path:  # run as a script from anywhere without installing
        sys.path.insert(0, str(folder))

from bench_workspace import machine_info  # noqa: E402

from conductor_magics.engine.advisor import advise  # noqa: E402
from conductor_magics.engine.connection import make_engine  # noqa: E402
from conductor_magics.engine.schema import apply_sql, split_statements  # noqa: E402
from conductor_magics.engine.stats import calibrate_loops, ratio_interval  # noqa: E402
from conductor_magics.engine.workload import Query, sample_parameters  # noqa: E402
from conductor_magics.workspace.spec import query_patterns  # noqa: E402

EXAMPLES = REPO / "example_notebooks"
SPEC = EXAMPLES / "storage-conductor" / "storages" / "orders_db" / "spec.md"
NOTEBOOK = EXAMPLES / "implement_walkthrough.ipynb"
SQLITE_SHELL = shutil.which("sqlite3") or "/usr/bin/sqlite3"
#: per 100 orders, after the spec's Data Volume table (year one)
PER_100_ORDERS = {"customers": 17, "products": 1.1, "order_items": 260, "payments": 60}
STATUSES = (("pending", 0.10), ("paid", 0.30), ("shipped", 0.50), ("cancelled", 0.10))
EPOCH = dt.datetime(2024, 1, 1)
CREATE_INDEX = re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\b", re.I)


# -- inputs ------------------------------------------------------------------------------

def schema_sql() -> tuple[str, list[str]]:
    """The walkthrough's final schema without its secondary indexes, and those indexes."""
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cells = ["".join(c["source"]) for c in notebook["cells"]
             if c["cell_type"] == "code" and "".join(c["source"]).startswith("%%conductor schema")]
    body = cells[-1].split("\n", 1)[1]
    statements = split_statements(body, "sqlite")
    kept = [s for s in statements if not CREATE_INDEX.match(s)]
    dropped = [" ".join(s.split()) for s in statements if CREATE_INDEX.match(s)]
    return ";\n".join(kept) + ";\n", dropped


def generate(path: Path, orders: int, seed: int = 0) -> dict[str, int]:
    """Rows honouring every constraint of the schema, with a seeded RNG: customers with a
    skewed number of orders, a status mix, ``paid_at`` for paid and shipped orders, 1-5
    distinct products per order, one captured payment per paid order."""
    rng = random.Random(seed)
    counts = {t: max(1, int(orders * n / 100)) for t, n in PER_100_ORDERS.items()}
    counts["orders"] = orders
    db = sqlite3.connect(path)
    minute = dt.timedelta(minutes=1)

    def stamp(moment: dt.datetime) -> str:
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?)", [
        (i, f"customer{i}@example.com", f"Customer {i}", rng.random() < 0.3,
         stamp(EPOCH + rng.randrange(700 * 24 * 60) * minute)) for i in range(1, counts["customers"] + 1)])
    prices = {i: rng.randrange(199, 20_000) for i in range(1, counts["products"] + 1)}
    db.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?)", [
        (i, f"SKU-{i:06d}", f"Product {i}", price, rng.random() < 0.9) for i, price in prices.items()])
    # a few customers order a lot (Pareto), most a little
    weights = [rng.paretovariate(1.2) for _ in range(counts["customers"])]
    customers = rng.choices(range(1, counts["customers"] + 1), weights=weights, k=orders)
    statuses = rng.choices([s for s, _ in STATUSES], weights=[w for _, w in STATUSES], k=orders)
    order_rows, item_rows, payment_rows = [], [], []
    product_ids = list(prices)
    items_per_order = counts["order_items"] / orders
    for i in range(1, orders + 1):
        created = EPOCH + rng.randrange(730 * 24 * 60) * minute
        status = statuses[i - 1]
        paid = created + rng.randrange(1, 600) * minute if status in ("paid", "shipped") else None
        chosen = rng.sample(product_ids, k=min(len(product_ids), max(1, round(rng.expovariate(
            1 / items_per_order)) or 1)))[:5]
        total = 0
        for product in chosen:
            quantity = rng.randint(1, 3)
            total += quantity * prices[product]
            item_rows.append((len(item_rows) + 1, i, product, quantity, prices[product]))
        order_rows.append((i, customers[i - 1], status, total, stamp(paid) if paid else None, stamp(created)))
        if paid is not None and total > 0:
            provider = "stripe" if rng.random() < 0.7 else "paypal"
            payment_rows.append((len(payment_rows) + 1, i, provider, f"{provider[:2]}_{i:08d}", total,
                                 stamp(paid)))
    db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", order_rows)
    db.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?, ?)", item_rows)
    db.executemany("INSERT INTO payments VALUES (?, ?, ?, ?, ?, ?)", payment_rows)
    db.commit()
    found = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
             for t in ("customers", "products", "orders", "order_items", "payments")}
    db.close()
    return found


def workload(engine, path: Path) -> tuple[list[Query], dict[str, str]]:
    """The spec's queries with parameters drawn from the data; those that do not run on
    the schema are skipped (name → reason)."""
    queries, skipped = [], {}
    db = sqlite3.connect(path)
    try:
        for pattern in query_patterns(SPEC.read_text(encoding="utf-8")):
            sql = pattern.sql.strip().rstrip(";").strip()
            try:
                db.execute("EXPLAIN QUERY PLAN " + re.sub(r":\w+", "NULL", sql))
            except sqlite3.Error as exc:
                skipped[pattern.name] = str(exc)
                continue
            queries.append(Query(pattern.name, sql, f"{SPEC.name}:{pattern.line}",
                                 sample_parameters(engine, sql, seed=0)))
    finally:
        db.close()
    return queries, skipped


# -- .expert -------------------------------------------------------------------------------

def expert_indexes(path: Path, queries: list[Query]) -> tuple[list[str], dict[str, list[str]]]:
    """``.expert``'s CREATE INDEX statements, one shell run per query on a copy of the
    database (exact duplicates merged), and what it said per query."""
    per_query: dict[str, list[str]] = {}
    found: dict[str, str] = {}  # definition without the name → statement
    with tempfile.TemporaryDirectory(prefix="conductor-expert-") as folder:
        copy = Path(folder) / "expert.sqlite"
        shutil.copy(path, copy)
        for query in queries:
            run = subprocess.run([SQLITE_SHELL, str(copy)], input=f".expert\n{query.sql};\n",
                                 capture_output=True, text=True, timeout=600, check=False)
            if run.returncode != 0 or "Error" in run.stderr:
                raise RuntimeError(f".expert failed on {query.name}: {run.stderr.strip()}")
            lines = [ln.strip().rstrip(";") for ln in run.stdout.splitlines() if CREATE_INDEX.match(ln)]
            per_query[query.name] = lines
            for line in lines:
                definition = re.sub(r"INDEX\s+\S+\s+ON", "INDEX ON", line, flags=re.I)
                found.setdefault(definition, line)
    return list(found.values()), per_query


# -- timing --------------------------------------------------------------------------------

def loaded_copy(path: Path, indexes: list[str]) -> sqlite3.Connection:
    """An in-memory copy of the database with ``indexes`` built and ANALYZE run."""
    source = sqlite3.connect(path)
    db = sqlite3.connect(":memory:", isolation_level=None)
    source.backup(db)
    source.close()
    for ddl in indexes:
        db.execute(ddl)
    db.execute("ANALYZE")
    return db


def time_sets(path: Path, sets: dict[str, list[str]], queries: list[Query], samples: int,
              min_seconds: float) -> dict[str, dict]:
    """Per index set and query: per-execution seconds of each sample (interleaved sets)."""
    dbs = {name: loaded_copy(path, ddl) for name, ddl in sets.items()}
    plans = {name: {q.name: "; ".join(r[-1] for r in db.execute("EXPLAIN QUERY PLAN " + q.sql, q.params))
                    for q in queries} for name, db in dbs.items()}
    runners, loops = {}, {}
    for name, db in dbs.items():
        for query in queries:
            def run(n: int, db=db, query=query) -> float:
                started = time.perf_counter()
                for _ in range(n):
                    db.execute(query.sql, query.params).fetchall()
                return time.perf_counter() - started
            run(1)  # warm
            runners[name, query.name] = run
            loops[name, query.name] = calibrate_loops(run, min_seconds, max_loops=100_000)
    times: dict[tuple[str, str], list[float]] = {key: [] for key in runners}
    for _ in range(samples):
        for key, run in runners.items():
            times[key].append(run(loops[key]) / loops[key])
    for db in dbs.values():
        db.close()
    out = {}
    for name in sets:
        per_query = {q.name: times[name, q.name] for q in queries}
        totals = [sum(per_query[q.name][i] for q in queries) for i in range(samples)]
        out[name] = {"indexes": sets[name], "index_count": len(sets[name]),
                     "workload_ms": sum(statistics.median(v) for v in per_query.values()) * 1000,
                     "per_query_ms": {q: statistics.median(v) * 1000 for q, v in per_query.items()},
                     "plans": plans[name], "sample_totals_s": totals}
    return out


# -- main ----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k orders and 5 samples (smoke run)")
    parser.add_argument("--orders", type=int, help="orders to generate (default 100,000; quick 20,000)")
    parser.add_argument("--samples", type=int, help="timing samples per query and index set")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "advisor.json",
                        help="where to write the JSON results")
    args = parser.parse_args(argv)
    orders = args.orders or (20_000 if args.quick else 100_000)
    samples = args.samples or (5 if args.quick else 9)
    min_seconds = 0.02 if args.quick else 0.05

    results: dict = {"machine": machine_info(), "mode": "quick" if args.quick else "full",
                     "config": {"orders": orders, "samples": samples, "sample_min_seconds": min_seconds,
                                "sqlite_version": sqlite3.sqlite_version, "spec": str(SPEC.relative_to(REPO)),
                                "schema": f"{NOTEBOOK.relative_to(REPO)} (last %%conductor schema cell)"}}
    tmp = Path(tempfile.mkdtemp(prefix="conductor-bench-advisor-"))
    try:
        path = tmp / "orders_db.sqlite"
        schema, dropped = schema_sql()
        engine = make_engine(f"sqlite:///{path}")
        apply_sql(engine, schema)
        started = time.perf_counter()
        results["rows"] = generate(path, orders)
        results["config"]["dropped_indexes"] = dropped
        print(f"generated {sum(results['rows'].values()):,} rows in {time.perf_counter() - started:.1f} s: "
              + ", ".join(f"{t} {n:,}" for t, n in results["rows"].items()), flush=True)

        queries, skipped = workload(engine, path)
        results["workload"] = [{"query": q.name, "sql": " ".join(q.sql.split()),
                                "params": {k: str(v) for k, v in q.params.items()}} for q in queries]
        results["skipped_queries"] = skipped
        for name, reason in skipped.items():
            print(f"skipped {name}: {reason} (the spec's query does not fit the walkthrough schema)")

        started = time.perf_counter()
        report = advise(engine, queries)
        advisor_seconds = time.perf_counter() - started
        engine.dispose()
        results["advisor"] = {"seconds": round(advisor_seconds, 2), "summary": report.summary,
                              "report": report.to_json()}
        print(f"advisor: {report.summary} [{advisor_seconds:.1f} s]", flush=True)

        started = time.perf_counter()
        expert, per_query = expert_indexes(path, queries)
        results["expert"] = {"seconds": round(time.perf_counter() - started, 2), "per_query": per_query}
        print(f".expert: {len(expert)} index(es) [{results['expert']['seconds']:.1f} s]", flush=True)

        sets = {"no indexes": [], "advisor": [r.ddl for r in report.recommendations], "expert": expert}
        timed = time_sets(path, sets, queries, samples, min_seconds)
        interval = ratio_interval(timed["expert"]["sample_totals_s"], timed["advisor"]["sample_totals_s"])
        not_slower = interval.verdict != "slower"
        fewer = timed["advisor"]["index_count"] <= timed["expert"]["index_count"]
        results["sets"] = timed
        results["advisor_vs_expert"] = {
            "speedup": interval.to_json(), "advisor_not_slower": not_slower,
            "advisor_not_more_indexes": fewer, "target_met": not_slower and fewer}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    names = [q["query"] for q in results["workload"]]
    print(f"\nworkload time on {orders:,} orders (sum of per-query medians, ms):")
    print(f"{'query':34}" + "".join(f"{name:>14}" for name in timed))
    for query in names:
        print(f"{query:34}" + "".join(f"{timed[s]['per_query_ms'][query]:14.3f}" for s in timed))
    print(f"{'total':34}" + "".join(f"{timed[s]['workload_ms']:14.3f}" for s in timed))
    print(f"{'indexes':34}" + "".join(f"{timed[s]['index_count']:14d}" for s in timed))
    for name in ("advisor", "expert"):
        for ddl in timed[name]["indexes"]:
            print(f"  {name:8} {ddl}")
    verdict = results["advisor_vs_expert"]
    speed = verdict["speedup"]
    print(f"\nadvisor vs .expert: {speed['ratio']:.2f}× ({speed['low']:.2f}–{speed['high']:.2f}, "
          f"{speed['verdict']}); indexes {timed['advisor']['index_count']} vs {timed['expert']['index_count']}"
          f" → target {'met' if verdict['target_met'] else 'NOT met'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
