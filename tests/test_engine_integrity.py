"""Integrity: constraint inventory, violation probes (always rolled back), data checks,
SQLite structural checks and the CRUD smoke test, on SQLite (a file) and a real
PostgreSQL database; DuckDB says plainly that it cannot.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, event

from conductor_magics.engine.connection import make_engine
from conductor_magics.engine.fingerprint import fingerprint
from conductor_magics.engine.integrity import (
    IntegrityReport,
    check_integrity,
    crud,
    data_checks,
    inventory,
    probe,
    sqlite_checks,
)
from conductor_magics.engine.sample import seed
from conductor_magics.engine.sqlrun import run_sql
from conductor_magics.errors import ConductorError, UnsupportedByDialect

DDL = """
CREATE TABLE customers (
    id INTEGER NOT NULL,
    email VARCHAR(255) NOT NULL,
    name VARCHAR(100),
    tier VARCHAR(10) NOT NULL DEFAULT 'std',
    CONSTRAINT pk_customers PRIMARY KEY (id),
    CONSTRAINT uq_customers_email UNIQUE (email)
);
CREATE TABLE orders (
    id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    status VARCHAR(20) NOT NULL DEFAULT 'new',
    total NUMERIC(10, 2) NOT NULL,
    CONSTRAINT pk_orders PRIMARY KEY (id),
    CONSTRAINT fk_orders_customer_id_customers FOREIGN KEY (customer_id) REFERENCES customers (id),
    CONSTRAINT ck_orders_total_positive CHECK (total >= 0),
    CONSTRAINT ck_orders_status CHECK (status IN ('new', 'paid', 'shipped'))
);
CREATE INDEX ix_orders_customer_id ON orders (customer_id);
CREATE TABLE order_items (
    order_id INTEGER NOT NULL,
    line_no INTEGER NOT NULL,
    sku VARCHAR(40) NOT NULL,
    qty INTEGER NOT NULL,
    CONSTRAINT pk_order_items PRIMARY KEY (order_id, line_no),
    CONSTRAINT fk_order_items_order_id_orders FOREIGN KEY (order_id) REFERENCES orders (id),
    CONSTRAINT ck_order_items_qty CHECK (qty > 0 AND qty <= 1000)
);
CREATE UNIQUE INDEX ux_order_items_sku ON order_items (order_id, sku);
"""

#: the same schema with the total CHECK, the email UNIQUE and tier's NOT NULL left out
WEAKENED = (DDL.replace("    CONSTRAINT ck_orders_total_positive CHECK (total >= 0),\n", "")
            .replace(",\n    CONSTRAINT uq_customers_email UNIQUE (email)", "")
            .replace("tier VARCHAR(10) NOT NULL DEFAULT 'std'", "tier VARCHAR(10) DEFAULT 'std'"))

KINDS = {"PRIMARY KEY", "FOREIGN KEY", "UNIQUE", "CHECK", "NOT NULL"}


@pytest.fixture
def url(db_url: str) -> str:
    """A fresh database per dialect (conftest's db_url)."""
    return db_url


@pytest.fixture
def engine(db_engine):
    """conftest's per-dialect engine with DDL applied."""
    run_sql(db_engine, DDL)
    return db_engine


def execute(engine, sql: str) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(sql)


def rows_of(frame, **where):
    for key, value in where.items():
        frame = frame[frame[key] == value]
    return frame


# --------------------------------------------------------------------------- inventory


def test_inventory_lists_every_constraint(engine):
    frame = inventory(engine)
    assert list(frame.columns) == ["table", "constraint", "kind", "columns", "definition"]
    assert set(frame["kind"]) == KINDS
    named = {(r["table"], r["constraint"], r["kind"], r["columns"]) for _, r in frame.iterrows() if r["constraint"]}
    assert {("customers", "pk_customers", "PRIMARY KEY", "id"),
            ("customers", "uq_customers_email", "UNIQUE", "email"),
            ("orders", "fk_orders_customer_id_customers", "FOREIGN KEY", "customer_id"),
            ("orders", "ck_orders_total_positive", "CHECK", "total"),
            ("orders", "ck_orders_status", "CHECK", "status"),
            ("order_items", "pk_order_items", "PRIMARY KEY", "order_id, line_no"),
            ("order_items", "ux_order_items_sku", "UNIQUE", "order_id, sku"),
            ("order_items", "ck_order_items_qty", "CHECK", "qty")} <= named
    not_null = set(rows_of(frame, kind="NOT NULL", table="orders")["columns"])
    assert {"customer_id", "status", "total"} <= not_null
    assert "name" not in set(rows_of(frame, kind="NOT NULL", table="customers")["columns"])
    fk = rows_of(frame, constraint="fk_orders_customer_id_customers").iloc[0]
    assert "REFERENCES customers" in fk["definition"].replace('"', "")
    assert rows_of(frame, kind="NOT NULL")["constraint"].isna().all()


# --------------------------------------------------------------------------- probes


@pytest.mark.parametrize("seeded", [True, False], ids=["seeded", "empty"])
def test_probes_report_every_constraint_enforced_and_change_nothing(engine, seeded):
    if seeded:
        seed(engine, rows=15)
    before = fingerprint(engine)
    frame = probe(engine)
    after = fingerprint(engine)
    assert after == before
    assert all(p.rows == (15 if seeded else 0) for p in after.values())
    assert list(frame.columns) == ["table", "constraint", "kind", "columns", "status", "detail", "seconds"]
    assert len(frame) == len(inventory(engine))  # one probe per constraint
    weak = frame[frame["status"] != "enforced"]
    assert weak.empty, weak.to_string()
    assert set(frame["kind"]) == KINDS
    assert (frame["seconds"] >= 0).all()
    check = rows_of(frame, constraint="ck_order_items_qty").iloc[0]
    assert "qty=0 rejected" in check["detail"]
    status = rows_of(frame, constraint="ck_orders_status").iloc[0]
    assert "not in the allowed list" in status["detail"]


def test_sqlite_with_foreign_keys_off_shows_fks_not_enforced(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    tool = make_engine(url)
    run_sql(tool, DDL)
    seed(tool, rows=5)
    plain = create_engine(url)  # no PRAGMA foreign_keys=ON
    before = fingerprint(plain)
    frame = probe(plain)
    assert fingerprint(plain) == before
    fks = rows_of(frame, kind="FOREIGN KEY")
    assert len(fks) == 2
    assert set(fks["status"]) == {"NOT ENFORCED"}
    assert all("PRAGMA foreign_keys is OFF" in d for d in fks["detail"])
    assert set(frame[frame["kind"] != "FOREIGN KEY"]["status"]) == {"enforced"}
    # the tool's own engine turns the pragma on: the same database, every FK enforced
    assert set(rows_of(probe(tool), kind="FOREIGN KEY")["status"]) == {"enforced"}
    report = check_integrity(plain)
    assert any("fk_orders_customer_id_customers NOT ENFORCED" in p for p in report.problems)
    assert check_integrity(tool).problems == []


def test_sqlite_ignored_checks_are_not_enforced(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    run_sql(make_engine(url), DDL)
    loose = make_engine(url)
    event.listen(loose, "connect", lambda dbapi, _record: dbapi.execute("PRAGMA ignore_check_constraints=ON"))
    frame = probe(loose)
    checks = rows_of(frame, kind="CHECK")
    assert set(checks["status"]) == {"NOT ENFORCED"}
    assert all("ignore_check_constraints" in d for d in checks["detail"])


def test_a_check_that_is_not_a_simple_bound_is_skipped_with_a_reason(url):
    engine = make_engine(url)
    run_sql(engine, "CREATE TABLE stays (id INTEGER PRIMARY KEY, arrive DATE NOT NULL, leave DATE NOT NULL, "
                    "CONSTRAINT ck_stays_order CHECK (leave >= arrive))")
    row = rows_of(probe(engine), constraint="ck_stays_order").iloc[0]
    assert row["status"] == "skipped"
    assert "not a simple bound" in row["detail"]
    engine.dispose()


def test_postgres_identity_keys_and_deferred_fks_are_probed_for_what_they_are(pg_url):
    engine = make_engine(pg_url)
    run_sql(engine, """
        CREATE TABLE a (id INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY, code TEXT UNIQUE);
        CREATE TABLE b (id SERIAL PRIMARY KEY,
                        a_id INTEGER NOT NULL REFERENCES a (id) DEFERRABLE INITIALLY DEFERRED,
                        k TEXT NOT NULL);
        CREATE UNIQUE INDEX ux_b_k ON b (lower(k));
    """)
    seed(engine, rows=3)
    before = fingerprint(engine)
    frame = probe(engine)
    assert fingerprint(engine) == before
    by_kind = {(r["table"], r["kind"], r["columns"]): r for _, r in frame.iterrows()}
    # the duplicate key is rejected by the primary key, not by the identity rule
    assert "a_pkey" in by_kind[("a", "PRIMARY KEY", "id")]["detail"]
    assert "not-null" in by_kind[("a", "NOT NULL", "id")]["detail"]
    # deferred constraints are checked at once inside the probe transaction
    assert by_kind[("b", "FOREIGN KEY", "a_id")]["status"] == "enforced"
    expression = rows_of(frame, constraint="ux_b_k").iloc[0]
    assert expression["status"] == "skipped" and "expression" in expression["detail"]
    assert set(frame[frame["constraint"] != "ux_b_k"]["status"]) == {"enforced"}
    engine.dispose()


def test_postgres_not_valid_fk_is_detected(pg_url):
    engine = make_engine(pg_url)
    run_sql(engine, DDL)
    seed(engine, rows=5)
    execute(engine, "ALTER TABLE orders DROP CONSTRAINT fk_orders_customer_id_customers")
    execute(engine, "INSERT INTO orders (id, customer_id, status, total) VALUES (9001, 424242, 'new', 1)")
    execute(engine, "ALTER TABLE orders ADD CONSTRAINT fk_orders_customer_id_customers FOREIGN KEY (customer_id) "
                    "REFERENCES customers (id) NOT VALID")
    fk = rows_of(inventory(engine), constraint="fk_orders_customer_id_customers").iloc[0]
    assert fk["definition"].endswith("NOT VALID")
    # new rows are checked ...
    assert rows_of(probe(engine), constraint="fk_orders_customer_id_customers").iloc[0]["status"] == "enforced"
    # ... but the old orphan is still there, and the constraint was never validated
    data = data_checks(engine, DDL)
    unvalidated = rows_of(data, check="not validated", table="orders")
    assert len(unvalidated) == 1 and unvalidated.iloc[0]["status"] == "problem"
    orphans = rows_of(data, check="orphans", table="orders").iloc[0]
    assert orphans["status"] == "problem" and orphans["count"] == 1
    report = check_integrity(engine, DDL)
    assert any("NOT VALID" in p for p in report.problems)
    engine.dispose()


def test_postgres_dropped_constraint_vs_declared_schema(pg_url):
    engine = make_engine(pg_url)
    run_sql(engine, DDL)
    seed(engine, rows=5)
    assert rows_of(data_checks(engine, DDL), status="problem").empty
    execute(engine, "ALTER TABLE orders DROP CONSTRAINT ck_orders_total_positive")
    execute(engine, "INSERT INTO orders (id, customer_id, status, total) "
                    "SELECT 9001, min(id), 'new', -5 FROM customers")
    data = data_checks(engine, DDL)
    missing = rows_of(data, check="declared but missing", table="orders")
    assert len(missing) == 1
    assert "ck_orders_total_positive" in missing.iloc[0]["detail"]
    assert missing.iloc[0]["count"] == 1  # the row written while it was gone
    assert "ck_orders_total_positive" not in set(probe(engine)["constraint"].dropna())
    engine.dispose()


def test_weakened_live_schema_vs_declared(url):
    engine = make_engine(url)
    run_sql(engine, WEAKENED)
    execute(engine, "INSERT INTO customers (id, email, name, tier) VALUES (1, 'a@example.com', 'A', NULL)")
    execute(engine, "INSERT INTO customers (id, email, name, tier) VALUES (2, 'a@example.com', 'B', 'std')")
    execute(engine, "INSERT INTO orders (id, customer_id, status, total) VALUES (1, 1, 'new', -3)")
    data = data_checks(engine, DDL)
    missing = rows_of(data, check="declared but missing")
    kinds = {(r["table"], r["detail"].split(" ")[0]) for _, r in missing.iterrows()}
    assert kinds == {("orders", "CHECK"), ("customers", "UNIQUE"), ("customers", "NOT")}
    check = rows_of(missing, table="orders").iloc[0]
    assert "declared but missing" in check["detail"] and check["count"] == 1
    duplicates = rows_of(data, check="duplicates", table="customers", columns="email").iloc[0]
    assert duplicates["status"] == "problem" and duplicates["count"] == 2
    nulls = rows_of(data, check="nulls", table="customers", columns="tier").iloc[0]
    assert nulls["status"] == "problem" and nulls["count"] == 1
    # without the declared schema only the live constraints are checked: all clean
    assert rows_of(data_checks(engine), status="problem").empty
    engine.dispose()


def test_orphans_detected_on_sqlite_with_foreign_keys_off(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    tool = make_engine(url)
    run_sql(tool, DDL)
    seed(tool, rows=5)
    assert rows_of(data_checks(tool), status="problem").empty
    plain = create_engine(url)
    execute(plain, "INSERT INTO orders (id, customer_id, status, total) VALUES (9001, 777, 'new', 1)")
    execute(plain, "INSERT INTO orders (id, customer_id, status, total) VALUES (9002, 778, 'new', 1)")
    data = data_checks(tool)
    orphans = rows_of(data, check="orphans", table="orders").iloc[0]
    assert orphans["status"] == "problem" and orphans["count"] == 2
    assert rows_of(data, check="orphans", table="order_items").iloc[0]["status"] == "ok"
    structural = sqlite_checks(tool)
    fk_check = rows_of(structural, check="foreign_key_check", table="orders").iloc[0]
    assert fk_check["status"] == "problem" and fk_check["count"] == 2
    report = check_integrity(tool)
    assert any(p.startswith("orphans orders: 2 row(s)") for p in report.problems)
    assert any(p.startswith("foreign_key_check") for p in report.problems)


def test_sqlite_checks_ok_on_a_good_database(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'live.sqlite'}")
    run_sql(engine, DDL)
    seed(engine, rows=5)
    frame = sqlite_checks(engine)
    assert list(frame["check"]) == ["integrity_check", "foreign_key_check"]
    assert set(frame["status"]) == {"ok"}


def test_sqlite_checks_are_sqlite_only(pg_url):
    engine = make_engine(pg_url)
    with pytest.raises(UnsupportedByDialect, match="not available on postgresql"):
        sqlite_checks(engine)
    engine.dispose()


# --------------------------------------------------------------------------- CRUD


@pytest.mark.parametrize("seeded", [True, False], ids=["seeded", "empty"])
def test_crud_per_table_ok_and_data_unchanged(engine, seeded):
    if seeded:
        seed(engine, rows=10)
    before = fingerprint(engine)
    frame = crud(engine, rows=4)
    assert fingerprint(engine) == before
    assert list(frame["table"]) == ["customers", "orders", "order_items"]
    assert set(frame["status"]) == {"ok"}, frame.to_string()
    assert (frame["rows"] == 4).all()
    for step in ("insert_ms", "read_ms", "update_ms", "delete_ms"):
        assert (frame[step] > 0).all()
    one = crud(engine, "order_items", rows=3)  # its parents get rows too, inside the rollback
    assert list(one["table"]) == ["order_items"] and one.iloc[0]["status"] == "ok"
    assert fingerprint(engine) == before
    with pytest.raises(ConductorError, match="no table 'nope'"):
        crud(engine, "nope")


def test_crud_reports_a_failing_step(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'live.sqlite'}")
    run_sql(engine, DDL + "CREATE TRIGGER no_order_updates BEFORE UPDATE ON orders "
                          "BEGIN SELECT RAISE(ABORT, 'orders are immutable'); END;")
    seed(engine, rows=3)
    before = fingerprint(engine)
    frame = crud(engine)
    assert fingerprint(engine) == before
    orders = rows_of(frame, table="orders").iloc[0]
    assert orders["status"] == "failed"
    assert orders["detail"].startswith("update: ") and "orders are immutable" in orders["detail"]
    assert rows_of(frame, table="customers").iloc[0]["status"] == "ok"


# --------------------------------------------------------------------------- report and dialects


def test_check_integrity_report(engine):
    seed(engine, rows=5)
    before = fingerprint(engine)
    report = check_integrity(engine, DDL)
    assert fingerprint(engine) == before
    assert isinstance(report, IntegrityReport)
    assert report.problems == []
    assert (report.structural is not None) == (engine.dialect.name == "sqlite")
    data = json.loads(json.dumps(report.to_json()))
    assert data["problems"] == [] and len(data["probes"]) == len(report.probes)
    assert data["inventory"][0]["table"] == "customers"
    text = report.to_text()
    assert text.splitlines()[0] == "integrity: clean"
    assert "probes (rolled back):" in text


@pytest.mark.parametrize("step", [inventory, probe, data_checks, crud, check_integrity])
def test_duckdb_says_it_is_unsupported(tmp_path, step):
    engine = make_engine(f"duckdb:///{tmp_path / 'live.duckdb'}")
    run_sql(engine, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
    with pytest.raises(UnsupportedByDialect, match="not supported on duckdb"):
        step(engine)
    with pytest.raises(UnsupportedByDialect, match="SQLite pragmas"):
        sqlite_checks(engine)


def test_inline_unique_on_sqlite_is_inventoried_and_probed(tmp_path):
    # SQLAlchemy's SQLite reflection alone misses `email TEXT UNIQUE`: it must still be probed.
    from conductor_magics.engine.connection import make_engine
    from conductor_magics.engine.integrity import inventory, probe

    engine = make_engine(f"sqlite:///{tmp_path / 'inline.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE)")
    found = inventory(engine)
    uniques = found[found["kind"] == "UNIQUE"]
    assert list(uniques["columns"].astype(str)) and "email" in str(list(uniques["columns"]))
    probes = probe(engine)
    unique_probes = probes[probes["kind"] == "UNIQUE"]
    assert len(unique_probes) == 1 and unique_probes.iloc[0]["status"] == "enforced"


# SQLite UNIQUE constraints that SQLAlchemy's reflection does not return (SQLAlchemy 2.1):
# a key with COLLATE or DESC, a unique index on an expression. ("display name" is reflected.)
UNREFLECTED_DDL = """
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    region TEXT NOT NULL,
    handle TEXT,
    "display name" TEXT UNIQUE,
    CONSTRAINT uq_accounts_email_region UNIQUE (email COLLATE NOCASE, region),
    CONSTRAINT uq_accounts_handle UNIQUE (handle DESC)
);
CREATE UNIQUE INDEX ux_accounts_lower_email ON accounts (lower(email));
"""


def not_inventoried(frame):
    return frame[frame["definition"].astype(str).str.contains("not inventoried")]


def test_unique_constraints_reflection_misses_are_listed_as_not_inventoried(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'unreflected.sqlite'}")
    run_sql(engine, UNREFLECTED_DDL)
    found = not_inventoried(inventory(engine))
    by_name = {row["constraint"]: row for _, row in found.iterrows()}
    assert set(by_name) == {"uq_accounts_email_region", "uq_accounts_handle",
                            "ux_accounts_lower_email"}, found.to_string()
    assert (found["kind"] == "UNIQUE").all() and (found["table"] == "accounts").all()
    email = by_name["uq_accounts_email_region"]
    assert email["columns"] == "email, region"
    assert "UNIQUE (email COLLATE NOCASE, region)" in email["definition"]
    assert "COLLATE" in email["definition"].split("not inventoried")[1]
    assert "expression" in by_name["ux_accounts_lower_email"]["definition"].split("not inventoried")[1]
    assert "lower(email)" in by_name["ux_accounts_lower_email"]["definition"]
    assert by_name["uq_accounts_handle"]["columns"] == "handle"
    reflected = rows_of(inventory(engine), kind="UNIQUE", columns="display name")
    assert len(reflected) == 1 and "not inventoried" not in reflected.iloc[0]["definition"]

    # Probes and data checks say so too, instead of nothing; nothing counts as a problem.
    probes = probe(engine)
    skipped = probes[probes["detail"].astype(str).str.startswith("not inventoried")]
    assert len(skipped) == 3 and (skipped["status"] == "skipped").all()
    data = data_checks(engine, UNREFLECTED_DDL)
    rows = rows_of(data, check="not inventoried")
    assert len(rows) == 3 and (rows["status"] == "skipped").all(), data.to_string()
    assert rows_of(data, status="problem").empty, data.to_string()
    report = check_integrity(engine, UNREFLECTED_DDL)
    assert report.problems == []


def test_declared_unique_that_reflection_misses_is_reported_missing_live(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'unreflected.sqlite'}")
    # Live: the same table without the collated UNIQUE and without the expression index.
    run_sql(engine, UNREFLECTED_DDL.replace(
        "    CONSTRAINT uq_accounts_email_region UNIQUE (email COLLATE NOCASE, region),\n", "")
        .replace("CREATE UNIQUE INDEX ux_accounts_lower_email ON accounts (lower(email));\n", ""))
    data = data_checks(engine, UNREFLECTED_DDL)
    missing = rows_of(data, check="declared but missing")
    details = " | ".join(missing["detail"])
    assert len(missing) == 2 and (missing["status"] == "problem").all(), data.to_string()
    assert "uq_accounts_email_region" in details and "ux_accounts_lower_email" in details
    # The one still there is listed as present but not inventoried.
    assert list(rows_of(data, check="not inventoried")["columns"]) == ["handle"]
