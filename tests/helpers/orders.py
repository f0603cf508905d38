"""An ``orders`` table to benchmark: many rows, an index on ``status``, none on ``customer_id``."""

from __future__ import annotations

import random

from sqlalchemy import text

from conductor_magics.engine.connection import make_engine

ROWS = 30_000
CUSTOMERS = 2_000


def make_orders(url: str, rows: int = ROWS):
    """A database at ``url`` with ``rows`` random orders of CUSTOMERS customers."""
    engine = make_engine(url)
    key = "INTEGER PRIMARY KEY" if engine.dialect.name == "sqlite" else "SERIAL PRIMARY KEY"
    rng = random.Random(1)
    rows = [{"c": rng.randint(1, CUSTOMERS), "s": rng.choice(["new", "paid", "shipped"]),
             "a": rng.randint(100, 1_000_000) / 100} for _ in range(rows)]
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE orders (id {key}, customer_id INTEGER NOT NULL, status TEXT NOT NULL, "
            "amount NUMERIC(10, 2) NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)")
        conn.execute(text("INSERT INTO orders (customer_id, status, amount) VALUES (:c, :s, :a)"),
                     rows)
        conn.exec_driver_sql("CREATE INDEX ix_orders_status ON orders (status)")
    return engine
