"""Sample rows respect the schema, bulk seeding keeps every constraint in one transaction,
and fingerprints tell identical data from changed data."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import Engine, text

from conductor_magics.engine.connection import make_engine
from conductor_magics.engine.fingerprint import fingerprint
from conductor_magics.engine.sample import SeedReport, check_bounds, seed, seed_report
from conductor_magics.errors import ConductorError, DatabaseError, UnsupportedByDialect

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


@pytest.fixture
def engine(db_engine):
    """conftest's per-dialect engine with DDL applied."""
    with db_engine.begin() as conn:
        for statement in DDL:
            conn.execute(text(statement))
    return db_engine


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
            "CHECK (status IN ('pending', 'paid')), paid_at TIMESTAMP, note VARCHAR(20), code VARCHAR(20), "
            "CONSTRAINT ck_paid CHECK (paid_at IS NULL OR status = 'paid'), "
            "CONSTRAINT ck_note CHECK (note IS NULL OR length(note) > 100 OR status = 'paid'), "
            "CONSTRAINT ck_code CHECK (code = upper(code) OR status = 'paid'))"))
    assert check_bounds(["paid_at IS NULL OR status = 'paid'"], "sqlite")["paid_at"].null_satisfies
    # ck_paid and ck_note are read (paid_at and note left NULL); ck_code is not: it rejects
    # the first batch, and the NULL fallback (code left NULL) satisfies it.
    report = seed_report(eng, rows=30)
    assert report.inserted == {"orders": 30} and report.tables[0].null_fallback
    assert "optional columns NULL" in report.to_text()
    with eng.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM orders WHERE paid_at IS NOT NULL "
                                 "OR code IS NOT NULL")).scalar_one() == 0


# --------------------------------------------------------------------------- bulk seeding

SHOP = [
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(120) NOT NULL UNIQUE, "
    "tier VARCHAR(10) NOT NULL CHECK (tier IN ('free', 'pro', 'team')), "
    "score INTEGER NOT NULL CHECK (score BETWEEN 1 AND 500))",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers (id), "
    "code VARCHAR(30) NOT NULL UNIQUE, status VARCHAR(12) NOT NULL CHECK (status IN ('pending', 'paid', 'shipped')), "
    "total NUMERIC(10, 2) NOT NULL CHECK (total > 0 AND total <= 5000), placed_at TIMESTAMP NOT NULL, "
    "note VARCHAR(40))",
    "CREATE INDEX ix_orders_customer_id ON orders (customer_id)",
    "CREATE INDEX ix_orders_open ON orders (placed_at) WHERE status <> 'shipped' AND code LIKE 'code-1%'",
    "CREATE TABLE order_lines (order_id INTEGER NOT NULL REFERENCES orders (id), "
    "line INTEGER NOT NULL CHECK (line BETWEEN 1 AND 4), "
    "quantity INTEGER NOT NULL CHECK (quantity > 0 AND quantity < 100), PRIMARY KEY (order_id, line))",
]
SHOP_TABLES = ["customers", "orders", "order_lines"]
BULK = 50_000


@pytest.fixture
def new_db(request, tmp_path):
    """``new_db(dialect, ddl)``: a fresh database of that dialect with ``ddl`` applied."""
    engines: list[Engine] = []

    def make(dialect: str, ddl: list[str]) -> Engine:
        if dialect == "sqlite":
            url = f"sqlite:///{tmp_path / f'db{len(engines)}.sqlite'}"
        else:
            server = request.getfixturevalue("pg_server")
            name = server.create_database(f"t_{secrets.token_hex(5)}")
            request.addfinalizer(lambda: server.drop_database(name))
            url = server.url(name)
        eng = make_engine(url)
        engines.append(eng)
        with eng.begin() as conn:
            for statement in ddl:
                conn.execute(text(statement))
        return eng

    yield make
    for eng in engines:
        eng.dispose()


class Bar:
    """A tqdm-compatible progress factory that records what it was told."""

    made: list[Bar] = []

    def __init__(self, **options):
        self.options, self.updates, self.closed = options, [], False
        Bar.made.append(self)

    def update(self, count: int) -> None:
        self.updates.append(count)

    def close(self) -> None:
        self.closed = True


def scalar(eng: Engine, sql: str):
    with eng.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def catalog(eng: Engine) -> list:
    """Index and foreign-key definitions, to show a bulk load restores them exactly."""
    if eng.dialect.name == "sqlite":
        sql = "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'table') ORDER BY name"
    else:
        sql = ("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid IN "
               "('orders'::regclass, 'order_lines'::regclass) UNION ALL "
               "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2")
    with eng.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_bulk_seed_keeps_every_constraint(new_db, dialect):
    eng = new_db(dialect, SHOP)
    before = catalog(eng)
    Bar.made.clear()
    report = seed_report(eng, BULK, seed=1, progress=Bar)
    path = {"sqlite": "executemany", "postgresql": "COPY"}[dialect]
    assert isinstance(report, SeedReport) and report.path == path
    assert report.inserted == dict.fromkeys(SHOP_TABLES, BULK)
    assert [t.path for t in report.tables] == [path] * 3
    # progress: one bar for the whole run, updated per batch up to the total, then closed
    (bar,) = Bar.made
    assert bar.options["total"] == 3 * BULK and sum(bar.updates) == 3 * BULK
    assert len(bar.updates) == 3 * BULK // 10_000 and bar.closed
    # the large load rebuilt the plain index (and on PostgreSQL re-added the foreign key)
    orders = report.tables[1]
    assert orders.indexes_rebuilt_after == ["ix_orders_customer_id", "ix_orders_open"]
    assert orders.foreign_keys_checked_after == (["orders_customer_id_fkey"] if dialect == "postgresql" else [])
    assert catalog(eng) == before

    def check_everything(rows: int) -> None:
        for table in SHOP_TABLES:
            assert scalar(eng, f"SELECT count(*) FROM {table}") == rows
        assert scalar(eng, "SELECT count(DISTINCT email) FROM customers") == rows
        assert scalar(eng, "SELECT count(DISTINCT code) FROM orders") == rows
        assert scalar(eng, "SELECT count(*) FROM (SELECT DISTINCT order_id, line FROM order_lines) d") == rows
        assert scalar(eng, "SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id "
                           "WHERE c.id IS NULL") == 0
        assert scalar(eng, "SELECT count(*) FROM order_lines l LEFT JOIN orders o ON o.id = l.order_id "
                           "WHERE o.id IS NULL") == 0
        broken = {
            "customers": "tier NOT IN ('free', 'pro', 'team') OR score < 1 OR score > 500",
            "orders": "status NOT IN ('pending', 'paid', 'shipped') OR total <= 0 OR total > 5000 "
                      "OR length(code) > 30 OR length(note) > 40",
            "order_lines": "line < 1 OR line > 4 OR quantity < 1 OR quantity > 99",
        }
        for table, condition in broken.items():
            assert scalar(eng, f"SELECT count(*) FROM {table} WHERE {condition}") == 0, table
        nulls = scalar(eng, "SELECT count(*) FROM orders WHERE note IS NULL")
        assert 0.05 * rows < nulls < 0.15 * rows  # the nullable text is NULL about 10 % of the time
        assert scalar(eng, "SELECT count(DISTINCT status) FROM orders") == 3

    check_everything(BULK)
    # a second seed appends after the existing rows: keys continue, nothing collides
    assert seed(eng, rows=20_000, seed=1) == dict.fromkeys(SHOP_TABLES, 20_000)
    check_everything(BULK + 20_000)


def test_same_seed_same_rows_whatever_the_batch_size(new_db):
    first = new_db("sqlite", SHOP)
    seed(first, rows=20_000, seed=5)
    again = new_db("sqlite", SHOP)
    seed(again, rows=20_000, seed=5, batch_size=7_000)  # batches cut the streams elsewhere
    other = new_db("sqlite", SHOP)
    seed(other, rows=20_000, seed=6)
    prints, other_prints = fingerprint(first), fingerprint(other)
    assert fingerprint(again) == prints
    for table in SHOP_TABLES:
        assert other_prints[table].rows == prints[table].rows
        assert other_prints[table].sha256 != prints[table].sha256, table


def test_copy_is_reproducible_and_matches_the_sqlalchemy_path(new_db):
    copied = new_db("postgresql", SHOP)
    assert seed_report(copied, 25_000, seed=9).path == "COPY"
    again = new_db("postgresql", SHOP)
    seed(again, rows=25_000, seed=9)
    plain = new_db("postgresql", SHOP)
    report = seed_report(plain, 25_000, seed=9, method="sqlalchemy")
    assert {t.path for t in report.tables} == {"sqlalchemy"}
    assert fingerprint(copied) == fingerprint(again) == fingerprint(plain)
    other = new_db("postgresql", SHOP)
    seed(other, rows=25_000, seed=10)
    assert fingerprint(other)["orders"].sha256 != fingerprint(copied)["orders"].sha256


def top_share(eng: Engine, table: str, column: str) -> float:
    return scalar(eng, f"SELECT max(n) * 1.0 / sum(n) FROM (SELECT count(*) AS n FROM {table} "
                       f"GROUP BY {column}) g")


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_skew_makes_a_few_values_common(new_db, dialect):
    shares = {}
    for skew in (0.0, 1.5):
        eng = new_db(dialect, SHOP)
        seed(eng, rows=1_000, tables=["customers"])
        seed(eng, rows=30_000, tables=["orders"], seed=2, skew=skew)
        shares[skew] = {"customer": top_share(eng, "orders", "customer_id"),
                        "status": top_share(eng, "orders", "status"),
                        "orphans": scalar(eng, "SELECT count(*) FROM orders o LEFT JOIN customers c "
                                               "ON c.id = o.customer_id WHERE c.id IS NULL")}
    uniform, skewed = shares[0.0], shares[1.5]
    assert uniform["customer"] < 0.01 < 0.2 < skewed["customer"]  # 1 of 1,000 customers vs ~38 %
    assert uniform["status"] < 0.4 < 0.55 < skewed["status"]  # 3 statuses: ~1/3 each vs ~65 %
    assert uniform["orphans"] == skewed["orphans"] == 0


def test_named_tables_and_missing_parents(new_db):
    eng = new_db("sqlite", SHOP)
    with pytest.raises(ConductorError, match="cannot seed orders: orders.customer_id references "
                                             "customers, which has no rows") as found:
        seed(eng, rows=10, tables=["orders"])
    assert "seed customers first" in str(found.value)
    with pytest.raises(ConductorError, match=r"no table 'nope' to seed; the database has: "
                                             r"customers, order_lines, orders"):
        seed(eng, rows=10, tables=["nope"])
    assert seed(eng, rows=15, tables=["customers"]) == {"customers": 15}
    assert scalar(eng, "SELECT count(*) FROM orders") == 0
    # named out of order: still parents first; a parent in the same run needs no rows yet
    assert seed(eng, rows=12, tables=["order_lines", "ORDERS"]) == {"orders": 12, "order_lines": 12}
    for bad in ({"rows": -1}, {"batch_size": 0}, {"skew": -0.5}, {"method": "bcp"}):
        with pytest.raises(ConductorError):
            seed_report(eng, **bad)
    with pytest.raises(UnsupportedByDialect, match="COPY path is not available on sqlite"):
        seed_report(eng, rows=5, method="COPY")


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_failure_mid_way_keeps_nothing(new_db, dialect):
    audit = ("CREATE TABLE zz_audit (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, "
             "line INTEGER NOT NULL, a INTEGER NOT NULL, b INTEGER NOT NULL, "
             "FOREIGN KEY (order_id, line) REFERENCES order_lines (order_id, line), "
             "CONSTRAINT ck_pair CHECK (a * 2 = b + 1))")
    eng = new_db(dialect, [*SHOP, audit])
    with pytest.raises(DatabaseError, match="seeding zz_audit failed: .*ck_pair") as found:
        seed(eng, rows=25_000)  # the last table's CHECK cannot be met, even with NULLs
    assert "nothing from this seed is kept" in str(found.value)
    assert str(eng.url.password or "no password") not in str(found.value)
    for table in [*SHOP_TABLES, "zz_audit"]:
        assert scalar(eng, f"SELECT count(*) FROM {table}") == 0, table
    # on a Connection the caller's transaction decides
    with eng.connect() as conn:
        transaction = conn.begin()
        assert seed(conn, rows=30, tables=SHOP_TABLES) == dict.fromkeys(SHOP_TABLES, 30)
        transaction.rollback()
    assert scalar(eng, "SELECT count(*) FROM customers") == 0


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_composite_foreign_keys_and_unique_integers_after_existing_rows(new_db, dialect):
    eng = new_db(dialect, [
        *SHOP,
        "CREATE TABLE shipments (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, line INTEGER NOT NULL, "
        "ticket INTEGER NOT NULL UNIQUE, FOREIGN KEY (order_id, line) REFERENCES order_lines (order_id, line))",
    ])
    seed(eng, rows=300, tables=SHOP_TABLES)
    with eng.begin() as conn:  # rows written by other means use the numbers seed would use next
        conn.execute(text("INSERT INTO shipments (id, order_id, line, ticket) "
                          "SELECT order_id, order_id, line, order_id + 1000 FROM order_lines "
                          "WHERE order_id <= 5"))
    assert seed(eng, rows=400, tables=["shipments"], seed=3) == {"shipments": 400}
    assert scalar(eng, "SELECT count(*) FROM shipments s LEFT JOIN order_lines l "
                       "ON l.order_id = s.order_id AND l.line = s.line WHERE l.order_id IS NULL") == 0
    assert scalar(eng, "SELECT count(DISTINCT ticket) FROM shipments") == 405
    assert scalar(eng, "SELECT min(ticket) FROM shipments WHERE ticket < 1000 OR ticket > 1005") == 1006


KINDS = {
    "sqlite": [
        "CREATE TABLE kinds (id INTEGER PRIMARY KEY, flag BOOLEAN NOT NULL, day DATE NOT NULL, at_time TIME, "
        "raw BLOB, small SMALLINT NOT NULL, price NUMERIC(5, 2) NOT NULL CHECK (price >= 1), ratio REAL, "
        "doc JSON, tag VARCHAR(5) NOT NULL UNIQUE, level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 5 "
        "AND level <> 3), stamp TIMESTAMP NOT NULL, created TIMESTAMP DEFAULT CURRENT_TIMESTAMP)",
    ],
    "postgresql": [
        "CREATE TYPE mood AS ENUM ('calm', 'busy', 'stormy')",
        "CREATE TABLE kinds (id INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY, flag BOOLEAN NOT NULL, "
        "day DATE NOT NULL, at_time TIME, raw BYTEA, small SMALLINT NOT NULL, "
        "price NUMERIC(5, 2) NOT NULL CHECK (price >= 1), ratio DOUBLE PRECISION, doc JSONB, "
        "tag VARCHAR(5) NOT NULL UNIQUE, level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 5 AND level <> 3), "
        "stamp TIMESTAMPTZ NOT NULL, token UUID NOT NULL UNIQUE, mood mood NOT NULL, "
        "doubled INTEGER GENERATED ALWAYS AS (small * 2) STORED, created TIMESTAMP DEFAULT now())",
    ],
}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_every_kind_of_column_loads_the_same_by_either_path(new_db, dialect):
    rows = []
    for method in ("auto", "sqlalchemy"):
        eng = new_db(dialect, KINDS[dialect])
        report = seed_report(eng, 3_000, seed=4, method=method)
        assert report.inserted == {"kinds": 3_000}
        with eng.connect() as conn:
            found = conn.execute(text("SELECT * FROM kinds ORDER BY id")).mappings().all()
        rows.append([{k: v for k, v in r.items() if k != "created"} for r in found])
        assert all(r["created"] is not None for r in found)  # the server default filled it
    assert rows[0] == rows[1]
    levels = {r["level"] for r in rows[0]}
    tags = [r["tag"] for r in rows[0]]
    assert levels == {1, 2, 4, 5} and len(set(tags)) == 3_000 and max(map(len, tags)) == 5
    assert all(1 <= r["price"] <= 999.99 for r in rows[0])  # NUMERIC(5,2) holds at most 999.99
    assert {r["flag"] for r in rows[0]} == {False, True}  # SQLite answers 0 and 1
    if dialect == "postgresql":
        assert {r["mood"] for r in rows[0]} == {"calm", "busy", "stormy"}
        assert len({r["token"] for r in rows[0]}) == 3_000
        assert all(r["doubled"] == 2 * r["small"] for r in rows[0])


def test_report_shapes(new_db):
    eng = new_db("sqlite", SHOP)
    report = seed_report(eng, 30, seed=2)
    data = report.to_json()
    assert data["inserted"] == dict.fromkeys(SHOP_TABLES, 30) and data["rows"] == 90
    assert data["path"] == "executemany" and report.exit_code == 0
    assert report.summary.startswith("seeded 90 rows into 3 table(s)")
    assert list(report.frame()["table"]) == SHOP_TABLES
    assert "orders: 30 rows" in report.to_text()


def test_duckdb_says_seeding_is_not_supported(tmp_path):
    eng = make_engine(f"duckdb:///{tmp_path / 'd.duckdb'}")
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR)"))
    with pytest.raises(UnsupportedByDialect, match="seeding sample rows is not supported on duckdb"):
        seed(eng, rows=5)
