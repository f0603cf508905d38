"""The index benchmark harness on a real SQLite file and a real PostgreSQL database.

Each database gets an ``orders`` table of 30,000 rows with an existing index on
``status``. ``WHERE customer_id = :cid`` is a full scan without an index and an index
search with ``ix_orders_customer_id``. No assertion is about absolute speed: only the
plan, the verdict of a 10×+ difference, and that the database is left as found.
"""

from __future__ import annotations

import io
import json

import pytest
from helpers.orders import make_orders
from matplotlib.figure import Figure
from sqlalchemy import create_engine, inspect

from conductor_magics.engine.bench import (
    BASELINE,
    FRAME_COLUMNS,
    BenchResult,
    benchmark,
    parse_index_ddl,
    sqlite_plan_indexes,
)
from conductor_magics.engine.fingerprint import fingerprint
from conductor_magics.errors import ConductorError, DatabaseError, UnsupportedByDialect
from conductor_magics.notebook_html import bench_figure, bench_styler

BY_CUSTOMER = "SELECT id, amount FROM orders WHERE customer_id = :cid"
CUSTOMER_INDEX = "CREATE INDEX ix_orders_customer_id ON orders (customer_id)"
AMOUNT_INDEX = "CREATE INDEX ix_orders_amount ON orders (amount)"
#: small runs: the verdicts tested here are about 10×–100× differences
QUICK = {"repeat": 12, "warmup": 1, "insert_rows": 200}


@pytest.fixture
def orders(db_url):
    engine = make_orders(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def small_orders(db_url):
    """The same schema with 2,000 rows: for refusals, which never time anything."""
    engine = make_orders(db_url, rows=2_000)
    try:
        yield engine
    finally:
        engine.dispose()


def state(engine) -> dict:
    """Everything the benchmark must leave as it found: indexes, rows, sequences."""
    inspector = inspect(engine)
    indexes = sorted((ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                     for ix in inspector.get_indexes("orders"))
    found = {"indexes": indexes, "tables": sorted(inspector.get_table_names()),
             "rows": {name: (fp.rows, fp.sha256) for name, fp in fingerprint(engine).items()}}
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            found["sequence"] = tuple(conn.exec_driver_sql(
                "SELECT last_value, is_called FROM orders_id_seq").one())
    return found


# --------------------------------------------------------------------------- the main case


def test_a_scan_that_becomes_an_index_search_is_reported_faster(orders):
    before = state(orders)
    result = benchmark(orders, BY_CUSTOMER, {"cid": 42}, indexes=[CUSTOMER_INDEX],
                       name="orders_by_customer", **QUICK)
    assert state(orders) == before

    assert [arm.label for arm in result.arms] == [BASELINE, "ix_orders_customer_id"]
    baseline, indexed = result.arms
    assert baseline.uses_index is False and baseline.full_scan is True
    assert indexed.uses_index is True and indexed.full_scan is False
    assert "ix_orders_customer_id" in indexed.plan_text
    assert indexed.indexes_used and indexed.indexes_used[0] == "ix_orders_customer_id"
    assert indexed.comparison.verdict == "faster"
    assert indexed.comparison.low > 1
    assert indexed.table == "orders" and indexed.ddl == CUSTOMER_INDEX and not indexed.existed
    assert indexed.build_seconds > 0 and indexed.size_bytes > 0
    assert indexed.insert_seconds > 0 and indexed.insert_slowdown > 0
    assert result.insert_baseline_seconds["orders"] > 0
    assert baseline.comparison is None and baseline.build_seconds is None
    for arm in result.arms:
        assert len(arm.samples) == QUICK["repeat"] and all(s > 0 for s in arm.samples)
        assert arm.summary.n == QUICK["repeat"] and arm.loops >= 1
    # loops are calibrated per arm: the index search, ~100× faster, runs many per sample
    assert indexed.loops > baseline.loops
    assert result.samples == {arm.label: arm.samples for arm in result.arms}
    # SQLite runs the query in this thread: CPU time by default; PostgreSQL: wall time
    assert result.clock == ("cpu" if orders.dialect.name == "sqlite" else "wall")
    assert result.summary.startswith("orders_by_customer: ix_orders_customer_id ")
    assert "faster" in result.summary and "plan: full scan → index search" in result.summary
    assert result.exit_code == 0


def test_the_result_serialises_and_renders(orders):
    result = benchmark(orders, BY_CUSTOMER, {"cid": 7}, indexes=[CUSTOMER_INDEX], **QUICK)
    document = json.loads(json.dumps(result.to_json()))
    arm = document["arms"][1]
    assert {"uses_index", "ci_low", "ci_high", "verdict"} <= set(arm)
    assert arm["uses_index"] is True and arm["verdict"] == "faster" and arm["ci_low"] > 1
    assert document["arms"][0]["samples"] == result.arms[0].samples
    assert document["dialect"] == orders.dialect.name and document["params"] == {"cid": 7}
    assert document["timestamp"].endswith("+00:00")
    assert document["settings"]["repeat"] == QUICK["repeat"]
    assert isinstance(document["arms"][1]["plan"], list)
    password = orders.url.password
    rendered = json.dumps(document) + result.to_text() + bench_styler(result).to_html()
    if password:
        assert password not in rendered
        assert "***" in document["database"]

    frame = result.frame()
    assert list(frame.columns) == FRAME_COLUMNS
    assert frame["arm"].tolist() == [BASELINE, "ix_orders_customer_id"]
    assert frame["verdict"].tolist() == ["baseline", "faster"]
    assert frame.loc[1, "median ms"] < frame.loc[0, "median ms"]
    assert "faster" in bench_styler(result).to_html()
    figure = bench_figure(result)
    assert isinstance(figure, Figure)
    png = io.BytesIO()
    figure.savefig(png, format="png")
    assert png.getvalue().startswith(b"\x89PNG")
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == [BASELINE, "ix_orders_customer_id"]
    assert "plan (ix_orders_customer_id):" in result.to_text()


def test_an_index_on_an_unrelated_column_is_not_used(orders):
    before = state(orders)
    result = benchmark(orders, BY_CUSTOMER, {"cid": 42}, indexes=[AMOUNT_INDEX, CUSTOMER_INDEX],
                       **QUICK)
    assert state(orders) == before
    baseline, amount, customer = result.arms
    assert amount.uses_index is False and amount.full_scan is True
    assert "does not use" in result.summary
    assert customer.uses_index is True
    # each arm drops the other candidate: the customer index is not seen by the amount arm
    assert "ix_orders_customer_id" not in amount.plan_text
    assert baseline.indexes_used == [] or "ix_orders_status" not in baseline.indexes_used


SPACED = ['CREATE INDEX "ix cust" ON orders (customer_id)', 'CREATE INDEX "ix" ON orders (amount)']
PREFIXED = ["CREATE INDEX ix_a ON orders (amount)", "CREATE INDEX ix_a_b ON orders (customer_id, status)"]


@pytest.mark.parametrize("indexes, used, unused", [(SPACED, "ix cust", "ix"),
                                                   (PREFIXED, "ix_a_b", "ix_a")],
                         ids=["quoted-with-space", "prefix-of-another"])
def test_the_plan_reader_matches_the_exact_index_name(small_orders, indexes, used, unused):
    """Issue 10 item 15: SQLite prints `USING INDEX ix cust (customer_id=?)`; the arm of
    "ix cust" uses its index, the arm of "ix" (a prefix of that line) does not."""
    before = state(small_orders)
    result = benchmark(small_orders, BY_CUSTOMER, {"cid": 42}, indexes=indexes,
                       repeat=3, warmup=0, insert_rows=0)
    assert state(small_orders) == before
    arms = {arm.label: arm for arm in result.arms}
    assert arms[used].uses_index is True and arms[used].indexes_used == [used], arms[used].plan_text
    assert arms[unused].uses_index is False and unused not in arms[unused].indexes_used
    assert arms[BASELINE].uses_index is False


def test_sqlite_plan_lines_are_read_whole():
    known = ["ix", "ix cust", "ix_a", "ix_a_b", 'we"ird']
    assert sqlite_plan_indexes("SEARCH orders USING INDEX ix cust (customer_id=?)", known) == ["ix cust"]
    assert sqlite_plan_indexes('SCAN orders USING COVERING INDEX "ix cust"', known) == ["ix cust"]
    assert sqlite_plan_indexes("SEARCH o USING INDEX ix_a_b (a=?) LEFT-JOIN", known) == ["ix_a_b"]
    assert sqlite_plan_indexes("SEARCH o USING COVERING INDEX ix_a (a>?)", known) == ["ix_a"]
    assert sqlite_plan_indexes('SEARCH o USING INDEX "we""ird" (a=?)', known) == ['we"ird']
    # names the database did not list are read up to the constraint
    assert sqlite_plan_indexes("SEARCH o USING INDEX other ix (a=?)") == ["other ix"]
    assert sqlite_plan_indexes("SEARCH o USING INTEGER PRIMARY KEY (rowid=?)", known) == []
    assert sqlite_plan_indexes("SEARCH o USING AUTOMATIC COVERING INDEX (a=?)", known) == []


def test_an_existing_index_named_as_a_candidate_is_measured_and_kept(orders):
    with orders.begin() as conn:
        conn.exec_driver_sql(CUSTOMER_INDEX)
    before = state(orders)
    result = benchmark(orders, BY_CUSTOMER, {"cid": 42}, indexes=[CUSTOMER_INDEX], **QUICK)
    assert state(orders) == before
    baseline, indexed = result.arms
    assert indexed.existed is True
    assert baseline.uses_index is False and baseline.full_scan is True  # dropped, rolled back
    assert indexed.uses_index is True and indexed.comparison.verdict == "faster"
    assert indexed.build_seconds > 0  # a rebuild timed inside a rolled-back transaction


def test_an_existing_index_of_that_name_with_other_columns_is_refused(small_orders):
    with small_orders.begin() as conn:
        conn.exec_driver_sql("CREATE INDEX ix_orders_customer_id ON orders (amount)")
    before = state(small_orders)
    with pytest.raises(ConductorError, match="already exists"):
        benchmark(small_orders, BY_CUSTOMER, {"cid": 42}, indexes=[CUSTOMER_INDEX], **QUICK)
    assert state(small_orders) == before


@pytest.mark.parametrize("ddl, message", [
    ("DROP TABLE orders", "not a CREATE INDEX"),
    ("CREATE TABLE other (a INTEGER)", "not a CREATE INDEX"),
    ("CREATE INDEX ix_a ON orders (customer_id); DROP TABLE orders", "one CREATE INDEX"),
    ("CREATE INDEX ix_a ON nosuch (customer_id)", "no table 'nosuch'"),
    ("CREATE INDEX ix_a ON orders (no_such_column)", "no_such_column"),
    ("CREATE INDEX ix_a ON orders (", "cannot read"),
    ("", "empty"),
])
def test_bad_index_ddl_changes_nothing(small_orders, ddl, message):
    before = state(small_orders)
    with pytest.raises(ConductorError, match=message):
        # the good candidate first: it is built, then dropped again when the bad one fails
        benchmark(small_orders, BY_CUSTOMER, {"cid": 1}, indexes=[CUSTOMER_INDEX, ddl], **QUICK)
    assert state(small_orders) == before


def test_the_same_index_name_twice_is_refused(small_orders):
    before = state(small_orders)
    with pytest.raises(ConductorError, match="twice"):
        benchmark(small_orders, BY_CUSTOMER, {"cid": 1},
                  indexes=[CUSTOMER_INDEX, "CREATE INDEX ix_orders_customer_id ON orders (amount)"])
    assert state(small_orders) == before


# --------------------------------------------------------------------------- queries


def test_bind_parameters_and_literal_percent_signs(orders):
    result = benchmark(orders, "SELECT id FROM orders WHERE customer_id = :cid AND status LIKE 'p%' "
                               "AND amount > :low", {"cid": 42, "low": 10, "unused": 1},
                       indexes=[CUSTOMER_INDEX], **QUICK)
    assert result.arms[1].uses_index is True
    assert result.params == {"cid": 42, "low": 10, "unused": 1}
    plain = benchmark(orders, "SELECT count(*) FROM orders WHERE status LIKE 'p%'", repeat=3,
                      warmup=0)
    assert len(plain.arms) == 1 and plain.arms[0].summary.n == 3
    assert plain.summary.startswith("query: median ")


def test_a_missing_bind_parameter_is_named(small_orders):
    with pytest.raises(ConductorError, match=":cid"):
        benchmark(small_orders, BY_CUSTOMER, {}, indexes=[CUSTOMER_INDEX])


def test_a_dml_statement_is_timed_and_rolled_back(orders):
    before = state(orders)
    result = benchmark(orders, "UPDATE orders SET amount = amount + 1 WHERE customer_id = :cid",
                       {"cid": 3}, indexes=[CUSTOMER_INDEX], **QUICK)
    assert state(orders) == before
    assert result.arms[1].uses_index is True and result.arms[1].comparison.low > 1


@pytest.mark.parametrize("kwargs, message", [
    ({"repeat": 1}, "repeat"), ({"warmup": -1}, "negative"), ({"insert_rows": -5}, "negative")])
def test_bad_settings_raise(small_orders, kwargs, message):
    with pytest.raises(ConductorError, match=message):
        benchmark(small_orders, BY_CUSTOMER, {"cid": 1}, **kwargs)
    with pytest.raises(ConductorError, match="no query"):
        benchmark(small_orders, " ; ")


def test_clock_choice(orders):
    # the full table: on 2,000 rows a wall-clock gain can drown in a loaded machine's noise
    result = benchmark(orders, BY_CUSTOMER, {"cid": 1}, indexes=[CUSTOMER_INDEX],
                       clock="wall", **QUICK)
    assert result.clock == "wall" and result.to_json()["settings"]["clock"] == "wall"
    assert result.arms[1].comparison.verdict == "faster"
    with pytest.raises(ConductorError, match="unknown clock"):
        benchmark(orders, BY_CUSTOMER, {"cid": 1}, clock="sundial")
    if orders.dialect.name == "postgresql":
        with pytest.raises(ConductorError, match="server"):
            benchmark(orders, BY_CUSTOMER, {"cid": 1}, clock="cpu")


def test_progress_factory_sees_every_sample(small_orders):
    bars = []

    class Bar:
        def __init__(self, **kwargs):
            self.kwargs, self.count, self.closed = kwargs, 0, False
            bars.append(self)

        def update(self, n):
            self.count += n

        def close(self):
            self.closed = True

    benchmark(small_orders, BY_CUSTOMER, {"cid": 1}, indexes=[CUSTOMER_INDEX], repeat=4, warmup=2,
              insert_rows=0, progress=Bar, name="p")
    (bar,) = bars
    assert bar.kwargs == {"total": 12, "desc": "bench p", "unit": "sample"}
    assert bar.count == 12 and bar.closed


# --------------------------------------------------------------------------- per dialect


def test_postgresql_explain_analyze_in_a_rolled_back_transaction(pg_url):
    engine = make_orders(pg_url)
    try:
        before = state(engine)
        result = benchmark(engine, "DELETE FROM orders WHERE customer_id = :cid", {"cid": 5},
                           indexes=[CUSTOMER_INDEX], analyze=True, **QUICK)
        assert state(engine) == before
        indexed = result.arms[1]
        assert "Actual Total Time" in json.dumps(indexed.plan)
        assert "actual" in indexed.plan_text and indexed.uses_index is True
        assert result.arms[0].full_scan is True
    finally:
        engine.dispose()


def test_sqlite_engine_without_the_transaction_recipe_is_left_as_found(tmp_path):
    # pysqlite's legacy transaction mode would run DROP INDEX in autocommit; the harness
    # opens the transaction itself, so the baseline's drop is still rolled back.
    url = f"sqlite:///{tmp_path / 'plain.sqlite'}"
    make_orders(url).dispose()
    plain = create_engine(url)
    try:
        before = state(plain)
        result = benchmark(plain, BY_CUSTOMER, {"cid": 9}, indexes=[CUSTOMER_INDEX], **QUICK)
        assert state(plain) == before
        assert result.arms[0].full_scan and result.arms[1].uses_index
    finally:
        plain.dispose()


def test_other_dialects_are_refused_plainly(tmp_path):
    engine = create_engine(f"duckdb:///{tmp_path / 'x.duckdb'}")
    try:
        with pytest.raises(UnsupportedByDialect, match="duckdb"):
            benchmark(engine, "SELECT 1")
    finally:
        engine.dispose()


@pytest.mark.parametrize("ddl, dialect, expected", [
    ("CREATE INDEX ix_a ON orders (customer_id)", "sqlite",
     ("ix_a", "orders", None, False, ["customer_id"])),
    ('create unique index if not exists "Ix_B" on public.Orders (lower(email), id);', "postgresql",
     ("Ix_B", "orders", "public", True, [None, "id"])),
])
def test_parse_index_ddl(ddl, dialect, expected):
    parsed = parse_index_ddl(ddl, dialect)
    assert (parsed.name, parsed.table, parsed.schema, parsed.unique, parsed.columns) == expected


@pytest.mark.parametrize("ddl, message", [
    ("CREATE INDEX CONCURRENTLY ix ON t (a)", "CONCURRENTLY"),
    ("CREATE INDEX ON t (a)", "no name"),
])
def test_parse_index_ddl_refuses(ddl, message):
    with pytest.raises(ConductorError, match=message):
        parse_index_ddl(ddl, "postgresql")


def test_database_errors_are_database_errors(small_orders):
    with pytest.raises(DatabaseError):
        benchmark(small_orders, "SELECT * FROM no_such_table", repeat=2, warmup=0)
    assert isinstance(DatabaseError("x"), ConductorError)
    assert BenchResult.exit_code == 0
