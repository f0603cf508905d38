"""Workload parameters and the index advisor on real SQLite files and a real PostgreSQL 15
(with HypoPG, and without it: real indexes in a rolled-back transaction)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.pool import StaticPool

from conductor_magics.engine.advisor import Candidate, advise, candidates
from conductor_magics.engine.connection import make_engine
from conductor_magics.engine.fingerprint import fingerprint
from conductor_magics.engine.sample import seed
from conductor_magics.engine.workload import Query, parameters, sample_parameters
from conductor_magics.errors import ConductorError

DDL = [
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(200) NOT NULL UNIQUE, "
    "created_at TIMESTAMP NOT NULL)",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), "
    "status VARCHAR(20) NOT NULL CHECK (status IN ('pending','paid','shipped','cancelled')), "
    "total_cents INTEGER NOT NULL CHECK (total_cents >= 0), created_at TIMESTAMP NOT NULL)",
]
#: 200 customers × 100 orders: 25 orders per (customer, status), so ORDER BY matters
CUSTOMERS, ORDERS = 200, 20_000

BY_STATUS = ("SELECT o.id, o.total_cents, o.created_at FROM orders o "
             "WHERE o.customer_id = :c AND o.status = :s ORDER BY o.created_at DESC")
COMPOSITE = ("customer_id", "status", "created_at")


def build(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        for statement in DDL:
            conn.execute(text(statement))
    seed(engine, rows=CUSTOMERS, tables=["customers"], seed=1)
    seed(engine, rows=ORDERS, tables=["orders"], seed=2)
    engine.dispose()


@pytest.fixture(scope="module")
def seeded_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("advisor") / "template.sqlite"
    build(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_engine(seeded_file, tmp_path):
    """A fresh copy of the seeded SQLite file (tests may add indexes to it)."""
    path = tmp_path / "live.sqlite"
    shutil.copy(seeded_file, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def file_digest(engine) -> str:
    return hashlib.sha256(Path(engine.url.database).read_bytes()).hexdigest()


def sqlite_indexes(engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' "
                                 "ORDER BY name")).all()


def composite_of(report) -> list:
    return [r for r in report.recommendations if r.table == "orders" and tuple(r.columns[:3]) == COMPOSITE]


# --------------------------------------------------------------------------- parameters


def test_parameters_in_order_ignoring_casts_and_literals():
    sql = ("SELECT a::int, ':not_me', \"col:x\" FROM t WHERE a = :first AND b IN (:second, :first) "
           "AND c = :end AND d[1:2] = 0 LIMIT :n")
    assert parameters(sql) == ["first", "second", "end", "n"]
    assert parameters("SELECT 1") == []


def test_sample_parameters_draw_values_from_the_data(sqlite_engine):
    with sqlite_engine.connect() as conn:
        def count(sql, params):
            return conn.execute(text(sql), params).scalar_one()

        # equality on two columns of one alias: the same existing row, so the query matches
        eq = "SELECT count(*) FROM orders AS o WHERE o.customer_id = :c AND o.status = :s"
        values = sample_parameters(sqlite_engine, eq, seed=3)
        assert set(values) == {"c", "s"} and count(eq, values) >= 1
        assert sample_parameters(sqlite_engine, eq, seed=3) == values  # seeded: reproducible

        # a range bounded on both sides: around the median, selective but not empty
        rng = "SELECT count(*) FROM orders WHERE created_at >= :lo AND created_at < :hi"
        values = sample_parameters(sqlite_engine, rng)
        assert values["lo"] < values["hi"]
        assert 0 < count(rng, values) < ORDERS / 2

        # IN, BETWEEN, LIMIT and OFFSET; a constant filter on the same table is honoured
        mixed = ("SELECT count(*) FROM (SELECT id FROM orders WHERE status IN (:st) AND total_cents "
                 "BETWEEN :low AND :high AND status <> 'cancelled' LIMIT :n OFFSET :skip) AS page")
        values = sample_parameters(sqlite_engine, mixed)
        assert values["st"] in {"pending", "paid", "shipped"}
        assert values["n"] == 20 and values["skip"] == 0 and values["low"] <= values["high"]
        assert count(mixed, values) > 0

        # aliases and an unqualified column resolved through the schema; an expression side
        join = ("SELECT count(*) FROM orders o JOIN customers AS c ON c.id = o.customer_id "
                "WHERE email = :email AND DATE(o.created_at) = :day")
        values = sample_parameters(sqlite_engine, join)
        assert conn.execute(text("SELECT count(*) FROM customers WHERE email = :e"),
                            {"e": values["email"]}).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM orders WHERE DATE(created_at) = :d"),
                            {"d": values["day"]}).scalar_one() >= 1


def test_given_parameters_are_kept_and_the_rest_drawn(sqlite_engine):
    sql = "SELECT id FROM orders WHERE id = :a + 1 AND status = :s LIMIT :n"
    values = sample_parameters(sqlite_engine, sql, given={"a": 7, "n": 3})
    assert values["a"] == 7 and values["n"] == 3 and values["s"] in {"pending", "paid", "shipped", "cancelled"}
    assert sample_parameters(sqlite_engine, "SELECT :x", given={"x": 1}) == {"x": 1}


def test_unresolvable_parameters_name_themselves(sqlite_engine):
    with pytest.raises(ConductorError, match=r":x .*bind :x explicitly"):
        sample_parameters(sqlite_engine, "SELECT id FROM orders WHERE id = :x + 1 + :y")
    with pytest.raises(ConductorError, match=r":shade"):
        sample_parameters(sqlite_engine, "SELECT :shade FROM orders")
    with sqlite_engine.begin() as conn:
        conn.execute(text("CREATE TABLE empty_table (id INTEGER PRIMARY KEY, v INTEGER)"))
    with pytest.raises(ConductorError, match=r":v .*empty_table has no rows"):
        sample_parameters(sqlite_engine, "SELECT id FROM empty_table WHERE v = :v")
    with pytest.raises(ConductorError, match="workload query q1: .*:x"):
        advise(sqlite_engine, [Query("q1", "SELECT :x FROM orders")])


# --------------------------------------------------------------------------- candidates


def test_candidates_equalities_then_sort_columns(sqlite_engine):
    found = candidates(BY_STATUS, "sqlite", sqlite_engine)
    assert found[0].columns == COMPOSITE and found[0].table == "orders"
    assert found[0].name == "ix_orders_customer_id_status_created_at"
    assert found[0].ddl("sqlite") == ("CREATE INDEX ix_orders_customer_id_status_created_at "
                                      "ON orders (customer_id, status, created_at)")
    # the covering variant: trailing columns on SQLite (the rowid id is in every index)
    assert ("customer_id", "status", "created_at", "total_cents") in [c.columns for c in found]
    # PostgreSQL: INCLUDE, and id is no rowid there
    pg = candidates(BY_STATUS, "postgresql", None)
    covering = [c for c in pg if c.include]
    assert covering and covering[0].ddl("postgresql").endswith(
        "ON orders (customer_id, status, created_at) INCLUDE (id, total_cents)")


def test_candidates_ranges_joins_and_key_lookups(sqlite_engine):
    ranged = candidates("SELECT id FROM orders WHERE status = 'pending' AND created_at < :cut "
                        "AND total_cents > 5 ORDER BY created_at", "sqlite", sqlite_engine)
    # equality, one range column, then the sort: each range column gets its own composite
    assert ranged[0].columns == ("status", "created_at")
    assert ("status", "total_cents", "created_at") in [c.columns for c in ranged]
    covering = [c for c in ranged if c.base is not None]
    assert [(c.columns, c.base) for c in covering] == [
        (("status", "created_at", "total_cents"), ("status", "created_at"))]
    joined = candidates("SELECT c.email FROM customers c JOIN orders o ON o.customer_id = c.id "
                        "WHERE o.status = :s", "sqlite", sqlite_engine)
    assert ("customer_id",) in [c.columns for c in joined if c.table == "orders"]
    assert all(c.table != "customers" for c in joined)  # joined on its primary key
    assert candidates("SELECT * FROM orders WHERE id = :id", "sqlite", sqlite_engine) == []
    assert candidates("SELECT * FROM customers WHERE email = :e", "sqlite", sqlite_engine) == []


def test_long_index_names_are_cut_with_a_hash():
    columns = tuple(f"a_rather_long_column_name_{i}" for i in range(4))
    name = Candidate("orders", columns).name
    other = Candidate("orders", columns[:3] + ("another_long_column_name",)).name
    assert len(name) == 63 and name.startswith("ix_orders_a_rather_long_column_name_0")
    assert name != other and len(other) <= 63


# --------------------------------------------------------------------------- SQLite


def test_sqlite_advisor_finds_the_composite_and_leaves_the_file_alone(sqlite_engine):
    digest, indexes = file_digest(sqlite_engine), sqlite_indexes(sqlite_engine)
    counts = {t: f.rows for t, f in fingerprint(sqlite_engine).items()}
    calls = []

    def progress(**kwargs):
        calls.append(kwargs)

        class Bar:
            def update(self, n):
                calls.append(n)

            def close(self):
                calls.append("closed")
        return Bar()

    report = advise(sqlite_engine, [Query("by_status", BY_STATUS),
                                    Query("by_id", "SELECT * FROM orders WHERE id = :id")],
                    progress=progress)
    # method: the search runs on hypothetical indexes now (was "sqlite scratch copy"); still measured in ms
    assert report.method == "sqlite what-if" and report.measured and report.cost_unit == "ms"
    assert len(report.recommendations) == 1
    rec = report.recommendations[0]
    assert composite_of(report) == [rec] and rec.queries_helped == ["by_status"]
    assert rec.ddl.startswith(f"CREATE INDEX {rec.name} ON orders (customer_id, status, created_at")
    assert 0 < rec.gain <= 1 and rec.cost_after < rec.cost_before and rec.size_bytes > 0
    rows = {q.query: q for q in report.queries}
    assert rows["by_status"].full_scan_before == ["orders"] and rows["by_status"].full_scan_after == []
    assert rows["by_status"].recommended == [rec.name] and rows["by_status"].uses_index
    assert rows["by_id"].recommended == [] and rows["by_id"].uses_index
    assert calls and calls[0]["total"] > 0 and "closed" in calls
    # nothing changed in the live database: not one byte of the file
    assert file_digest(sqlite_engine) == digest and sqlite_indexes(sqlite_engine) == indexes
    assert {t: f.rows for t, f in fingerprint(sqlite_engine).items()} == counts
    # the report renders
    data = json.loads(json.dumps(report.to_json()))
    assert data["recommendations"][0]["ddl"] == rec.ddl and data["method"] == report.method
    assert list(report.frame()["name"]) == [rec.name]
    assert list(report.queries_frame()["query"]) == ["by_status", "by_id"]
    assert rec.ddl in report.to_text() and rec.name in report.summary
    assert report.open_recommendations(0.10) == [rec] and report.exit_code == 0
    assert report.open_recommendations(1.0) == []


def test_sqlite_nothing_to_add_for_key_lookups_and_existing_indexes(sqlite_engine):
    report = advise(sqlite_engine, [Query("by_id", "SELECT * FROM orders WHERE id = :id")])
    assert report.recommendations == [] and report.candidates_considered == 0
    # an index on the FK alone does not serve the query: the composite still pays ...
    with sqlite_engine.begin() as conn:
        conn.execute(text("CREATE INDEX ix_orders_customer_id ON orders (customer_id)"))
    report = advise(sqlite_engine, [Query("by_status", BY_STATUS)])
    assert composite_of(report) and all(r.columns != ["customer_id"] for r in report.recommendations)
    # ... and once the composite exists, there is nothing left to add
    with sqlite_engine.begin() as conn:
        conn.execute(text("CREATE INDEX ix_orders_customer_id_status_created_at "
                          "ON orders (customer_id, status, created_at)"))
    report = advise(sqlite_engine, [Query("by_status", BY_STATUS)])
    assert report.recommendations == [], report.to_text()
    assert report.queries[0].indexes_after == ["ix_orders_customer_id_status_created_at"]
    assert {"ix_orders_customer_id", "ix_orders_customer_id_status_created_at"} <= {
        i.name for i in report.existing}


def test_partial_index_is_no_reason_to_skip_a_candidate(sqlite_engine):
    with sqlite_engine.begin() as conn:
        conn.execute(text("CREATE INDEX ix_orders_pending_customer ON orders (customer_id, status, created_at) "
                          "WHERE status = 'pending'"))
    report = advise(sqlite_engine, [Query("by_status", BY_STATUS, params={"c": 7, "s": "paid"})])
    assert composite_of(report), report.to_text()
    assert [i.kind for i in report.existing if i.name == "ix_orders_pending_customer"] == ["partial index"]
    assert report.queries[0].params == {"c": 7, "s": "paid"}


def test_a_query_that_does_not_run_is_skipped_and_named(sqlite_engine):
    # e.g. a spec query that needs a column the schema does not have yet
    bad = Query("bad", "SELECT no_such_column FROM orders WHERE id = 1")
    report = advise(sqlite_engine, [bad, Query("by_status", BY_STATUS)])
    assert list(report.skipped) == ["bad"] and "no_such_column" in report.skipped["bad"]
    assert "skipped" in report.summary and "bad" in report.to_text()
    assert [q.query for q in report.queries] == ["by_status"]
    assert composite_of(report), report.to_text()
    with pytest.raises(ConductorError, match="no workload query runs on this database: bad: .*no_such_column"):
        advise(sqlite_engine, [bad])


# --------------------------------------------------------------------------- PostgreSQL


def pg_state(engine) -> tuple:
    with engine.connect() as conn:
        indexes = conn.execute(text("SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes "
                                    "ORDER BY 1, 2, 3")).all()
        extensions = conn.execute(text("SELECT extname FROM pg_extension ORDER BY 1")).all()
    return indexes, extensions, {t: (f.rows, f.sha256) for t, f in fingerprint(engine).items()}


def test_postgres_with_and_without_hypopg(pg_url):
    build(pg_url)
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    before = pg_state(engine)
    assert ("hypopg",) not in before[1]
    workload = [Query("by_status", BY_STATUS), Query("by_id", "SELECT * FROM orders WHERE id = :id")]

    # HypoPG is available but not installed: created inside the advisor's transaction
    report = advise(engine, workload)
    assert report.method == "hypopg" and report.cost_unit == "estimated cost"
    assert composite_of(report), report.to_text()
    rec = composite_of(report)[0]
    assert rec.queries_helped == ["by_status"] and rec.size_bytes > 0 and rec.gain > 0.5
    assert rec.ddl.startswith(f"CREATE INDEX {rec.name} ON orders (customer_id, status, created_at)")
    rows = {q.query: q for q in report.queries}
    assert rows["by_status"].full_scan_before == ["orders"] and rows["by_status"].recommended == [rec.name]
    assert "<" not in rows["by_status"].plan_after  # hypothetical names shown as the index's name
    assert rows["by_id"].recommended == [] and "orders_pkey" in rows["by_id"].plan_after
    assert pg_state(engine) == before

    # without HypoPG: real indexes inside a transaction that is rolled back
    fallback = advise(engine, workload, use_hypopg=False)
    assert fallback.method == "rolled-back indexes"
    assert [r.name for r in fallback.recommendations] == [r.name for r in report.recommendations]
    assert composite_of(fallback)[0].size_bytes > 0
    assert pg_state(engine) == before
    # an engine that autocommits still gets one transaction, rolled back
    autocommit = make_engine(pg_url, isolation_level="AUTOCOMMIT")
    assert composite_of(advise(autocommit, workload[:1], use_hypopg=False))
    autocommit.dispose()
    assert pg_state(engine) == before
    engine.dispose()


def test_postgres_leaves_no_hypothetical_index_in_the_session(pg_url):
    build(pg_url)
    engine = make_engine(pg_url, poolclass=StaticPool)  # one connection: the advisor's own
    with engine.connect() as conn:
        conn.execute(text("CREATE EXTENSION hypopg"))
        conn.execute(text("CREATE INDEX ix_orders_customer_id_status_created_at "
                          "ON orders (customer_id, status, created_at)"))
        conn.execute(text("ANALYZE"))
        conn.commit()
    before = pg_state(engine)
    report = advise(engine, [Query("by_status", BY_STATUS)], use_hypopg=True)
    assert report.method == "hypopg" and report.recommendations == [], report.to_text()
    assert report.queries[0].indexes_after == ["ix_orders_customer_id_status_created_at"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hypopg_list_indexes")).scalar_one() == 0
    assert pg_state(engine) == before
    engine.dispose()
