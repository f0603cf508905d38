"""Sample rows respect the schema, and fingerprints tell identical data from changed data."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from conductor_magics.engine.connection import make_engine
from conductor_magics.engine.fingerprint import fingerprint
from conductor_magics.engine.sample import check_bounds, seed

DDL = [
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(200) NOT NULL UNIQUE, "
    "name VARCHAR(40) NOT NULL CHECK (length(name) > 3), created_at TIMESTAMP NOT NULL)",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), "
    "status VARCHAR(20) NOT NULL CHECK (status IN ('pending','paid','shipped','cancelled')), "
    "total_cents INTEGER NOT NULL CHECK (total_cents >= 0), placed DATE, flag BOOLEAN)",
    "CREATE TABLE order_items (order_id INTEGER NOT NULL REFERENCES orders(id), "
    "line INTEGER NOT NULL CHECK (line > 0 AND line <= 3), quantity INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 99), "
    "price NUMERIC(10,2) NOT NULL CHECK (price >= 0), PRIMARY KEY (order_id, line))",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 's.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    eng = make_engine(url)
    with eng.begin() as conn:
        for statement in DDL:
            conn.execute(text(statement))
    yield eng
    eng.dispose()


def test_seed_respects_constraints_and_repeats(engine):
    # The database enforces every constraint: an insert that broke one would raise.
    assert seed(engine, rows=40) == {"customers": 40, "orders": 40, "order_items": 40}
    assert seed(engine, rows=40, seed=7) == {"customers": 40, "orders": 40, "order_items": 40}
    with engine.connect() as conn:
        statuses = set(conn.execute(text("SELECT DISTINCT status FROM orders")).scalars())
        lines = set(conn.execute(text("SELECT DISTINCT line FROM order_items")).scalars())
        orphans = conn.execute(text(
            "SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id "
            "WHERE c.id IS NULL")).scalar_one()
    assert statuses <= {"pending", "paid", "shipped", "cancelled"} and len(statuses) > 1
    assert lines <= {1, 2, 3}
    assert orphans == 0


def test_same_seed_same_data(tmp_path):
    prints = []
    for name in ("a", "b"):
        eng = make_engine(f"sqlite:///{tmp_path / name}.sqlite")
        with eng.begin() as conn:
            for statement in DDL:
                conn.execute(text(statement))
        seed(eng, rows=25, seed=3)
        prints.append(fingerprint(eng))
    assert prints[0] == prints[1]


def test_fingerprint_sees_a_one_value_change(engine):
    seed(engine, rows=10)
    before = fingerprint(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE orders SET total_cents = total_cents + 1 WHERE id = "
                          "(SELECT min(id) FROM orders)"))
    after = fingerprint(engine)
    assert after["orders"].rows == before["orders"].rows
    assert after["orders"].sha256 != before["orders"].sha256
    assert after["customers"] == before["customers"]


def test_check_bounds_reads_simple_checks():
    bounds = check_bounds(["qty > 0 AND qty <= 10", "status IN ('a', 'b')", "price >= 0.5",
                           "length(code) > 2", "0 < weight", "a + b > c"], "sqlite")
    assert (bounds["qty"].low, bounds["qty"].high) == (1, 10)
    assert bounds["status"].choices == ["a", "b"]
    assert bounds["price"].low == 0.5
    assert bounds["code"].min_length == 3
    assert bounds["weight"].low == 1
    assert "a" not in bounds and "c" not in bounds
    pg = check_bounds(["(status)::text = ANY ((ARRAY['x'::character varying, 'y'::character varying])::text[])"],
                      "postgresql")
    assert pg["status"].choices == ["x", "y"]


def test_duckdb_fingerprint_works_without_reflection(tmp_path):
    eng = make_engine(f"duckdb:///{tmp_path / 'd.duckdb'}")
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER, v VARCHAR)"))
        conn.execute(text("INSERT INTO t VALUES (2, 'b'), (1, 'a')"))
    first = fingerprint(eng)
    assert first["t"].rows == 2
    with eng.begin() as conn:
        conn.execute(text("UPDATE t SET v = 'c' WHERE id = 1"))
    assert fingerprint(eng)["t"].sha256 != first["t"].sha256


def test_checks_spanning_columns(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    with eng.begin() as conn:
        conn.execute(text(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, status VARCHAR(10) NOT NULL "
            "CHECK (status IN ('pending', 'paid')), paid_at TIMESTAMP, note VARCHAR(20), "
            "CONSTRAINT ck_paid CHECK (paid_at IS NULL OR status = 'paid'), "
            "CONSTRAINT ck_note CHECK (note IS NULL OR length(note) > 100 OR status = 'paid'))"))
    assert check_bounds(["paid_at IS NULL OR status = 'paid'"], "sqlite")["paid_at"].null_satisfies
    # ck_paid is read (paid_at left NULL); ck_note is satisfied by the NULL fallback.
    assert seed(eng, rows=30) == {"orders": 30}
    with eng.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM orders WHERE paid_at IS NOT NULL")).scalar_one() == 0
