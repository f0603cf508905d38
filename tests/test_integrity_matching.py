"""Declared constraints are matched with live ones by what they are (table, kind, columns,
normalised expression), never by name: the scratch database names an inline CHECK
``orders_status_check`` (PostgreSQL) or not at all (SQLite), while the migration's naming
convention calls it ``ck_orders_status``. A genuinely missing constraint is still reported.

The scenario runs through the ``conductor`` CLI (in process) on SQLite and a real PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers.cli import conductor as run_conductor

from conductor_magics.engine import integrity
from conductor_magics.engine.connection import make_engine
from conductor_magics.engine.integrity import data_checks
from conductor_magics.engine.sqlrun import run_sql

V1 = """
CREATE TABLE customers (
  id INTEGER NOT NULL,
  email VARCHAR(254) NOT NULL,
  CONSTRAINT pk_customers PRIMARY KEY (id)
);
CREATE TABLE orders (
  id INTEGER NOT NULL,
  customer_id INTEGER NOT NULL,
  status VARCHAR(20) NOT NULL,
  CONSTRAINT pk_orders PRIMARY KEY (id)
);
"""

# v2: inline (unnamed) CHECK and REFERENCES on an existing table, a table-level unnamed
# CHECK, and a new table with inline UNIQUE, REFERENCES and CHECK.
V2 = V1 + """
CREATE TABLE shipments (
  id INTEGER NOT NULL,
  order_id INTEGER NOT NULL REFERENCES orders (id),
  tracking VARCHAR(40) NOT NULL UNIQUE,
  CONSTRAINT pk_shipments PRIMARY KEY (id),
  CHECK (length(tracking) > 0)
);
"""
V2 = V2.replace(
    "  customer_id INTEGER NOT NULL,\n  status VARCHAR(20) NOT NULL,\n",
    "  customer_id INTEGER NOT NULL REFERENCES customers (id),\n"
    "  status VARCHAR(20) NOT NULL CHECK (status IN ('new', 'paid', 'shipped')),\n"
    "  total_cents INTEGER NOT NULL DEFAULT 0,\n",
).replace(
    "  CONSTRAINT pk_orders PRIMARY KEY (id)\n",
    "  CONSTRAINT pk_orders PRIMARY KEY (id),\n  CHECK (total_cents >= 0 AND total_cents < 100000000)\n",
)
assert "CHECK (status IN" in V2 and "CHECK (total_cents" in V2

#: SQLite: the migration generator leaves an unnamed UNIQUE out of the migration (so it
#: would be missing live for real, and integrity rightly says so); name that one there
V2_SQLITE = V2.replace("tracking VARCHAR(40) NOT NULL UNIQUE,",
                       "tracking VARCHAR(40) NOT NULL,\n  CONSTRAINT uq_shipments_tracking UNIQUE (tracking),")


def conductor(project: Path, url: str | None, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
    proc = run_conductor(*args, *(["--url", url] if url else []), root=project, cwd=Path.cwd())
    assert expect is None or proc.returncode == expect, (args, proc.returncode, proc.stdout[-3000:],
                                                         proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture
def url(dialect: str, request) -> str | None:
    """None: the component's embedded SQLite file; else a fresh PostgreSQL database."""
    return request.getfixturevalue("pg_url") if dialect == "postgresql" else None


def live_url(project: Path, url: str | None) -> str:
    return url or f"sqlite:///{project / 'storage-conductor/storages/orders_db/dev.sqlite'}"


def migrate_v1_then_v2(project: Path, url: str | None, tmp_path: Path) -> None:
    (tmp_path / "v1.sql").write_text(V1)
    (tmp_path / "v2.sql").write_text(V2 if url else V2_SQLITE)
    conductor(project, None, "implement", "orders_db")
    conductor(project, url, "schema", "declare", "orders_db", "--file", str(tmp_path / "v1.sql"))
    conductor(project, url, "migrate", "new", "-m", "v1", "--id", "orders_db")
    conductor(project, url, "migrate", "up", "--id", "orders_db")
    conductor(project, url, "schema", "declare", "orders_db", "--file", str(tmp_path / "v2.sql"))
    conductor(project, url, "migrate", "new", "-m", "v2 inline constraints", "--id", "orders_db")
    conductor(project, url, "migrate", "up", "--id", "orders_db")


def test_inline_constraints_migrated_under_convention_names_are_not_missing(project, url, tmp_path):
    migrate_v1_then_v2(project, url, tmp_path)
    proc = conductor(project, url, "integrity", "orders_db", "--json", expect=None)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, report["problems"]
    assert report["problems"] == []
    assert not [r for r in report["data"] if r["check"] == "declared but missing"], report["data"]
    statuses = {(r["table"], r["kind"], r["columns"]): r["status"] for r in report["probes"]}
    for key in [("orders", "CHECK", "status"), ("orders", "FOREIGN KEY", "customer_id"),
                ("shipments", "UNIQUE", "tracking"), ("shipments", "FOREIGN KEY", "order_id")]:
        assert statuses[key] == "enforced", (key, report["probes"])
    assert all(r["status"] != "NOT ENFORCED" for r in report["probes"]), report["probes"]


def test_a_check_really_missing_live_is_still_declared_but_missing(project, url, tmp_path):
    migrate_v1_then_v2(project, url, tmp_path)
    # the live table loses its status CHECK behind the tool's back
    engine = make_engine(live_url(project, url))
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                constraint = conn.exec_driver_sql(
                    "SELECT conname FROM pg_constraint WHERE contype = 'c' "
                    "AND position('status' IN pg_get_constraintdef(oid)) > 0").scalar_one()
                conn.exec_driver_sql(f'ALTER TABLE orders DROP CONSTRAINT "{constraint}"')
            else:  # SQLite cannot drop a CHECK: rebuild the table without it
                conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
                conn.exec_driver_sql(
                    "CREATE TABLE orders_new (id INTEGER NOT NULL, customer_id INTEGER NOT NULL "
                    "REFERENCES customers (id), status VARCHAR(20) NOT NULL, "
                    "total_cents INTEGER NOT NULL DEFAULT 0, CONSTRAINT pk_orders PRIMARY KEY (id), "
                    "CHECK (total_cents >= 0 AND total_cents < 100000000))")
                conn.exec_driver_sql("INSERT INTO orders_new SELECT id, customer_id, status, total_cents "
                                     "FROM orders")
                conn.exec_driver_sql("DROP TABLE orders")
                conn.exec_driver_sql("ALTER TABLE orders_new RENAME TO orders")
    finally:
        engine.dispose()
    proc = conductor(project, url, "integrity", "orders_db", "--json", expect=1)
    report = json.loads(proc.stdout)
    missing = [r for r in report["data"] if r["check"] == "declared but missing"]
    assert len(missing) == 1, report["data"]
    assert missing[0]["table"] == "orders" and missing[0]["columns"] == "status", missing
    assert "CHECK" in missing[0]["detail"] and "declared but missing live" in missing[0]["detail"]
    assert any("declared but missing" in p for p in report["problems"])


@pytest.mark.parametrize("declared, live", [
    # what PostgreSQL stores for the scratch database's inline CHECK vs the migration's
    ("((status)::text = ANY ((ARRAY['new'::character varying, 'paid'::character varying])::text[]))",
     "((status)::text = ANY (ARRAY[('new'::character varying)::text, ('paid'::character varying)::text]))"),
    ("status IN ('new', 'paid')", "status::text = ANY (ARRAY['new'::character varying::text, "
                                  "'paid'::character varying::text])"),
    ("(status IN ('new','paid'))", "status in ( 'paid' , 'new' )"),
    ("status NOT IN ('a', 'b')", "((status)::text <> ALL ((ARRAY['a'::character varying, "
                                 "'b'::character varying])::text[]))"),
    ("total_cents >= 0 AND total_cents < 10", "((total_cents < 10) AND (total_cents >= 0))"),
    ("qty BETWEEN 1 AND 5", "((qty >= 1) AND (qty <= 5))"),
    ("qty > 0", "(qty > (0)::numeric)"),
    ('"Qty" > 0', "qty > 0"),
    ("note IS NOT NULL", "NOT (note IS NULL)"),
])
def test_check_expressions_normalise_to_the_same_form(declared, live):
    assert integrity.normalize_check(declared, "postgresql") == integrity.normalize_check(live, "postgresql")


@pytest.mark.parametrize("one, other", [
    ("status IN ('new', 'paid')", "status IN ('new', 'paid', 'shipped')"),
    ("status IN ('new', 'paid')", "status NOT IN ('new', 'paid')"),
    ("total_cents >= 0", "total_cents > 0"),
    ("a >= 0", "b >= 0"),
    ("(a OR b) AND c", "a OR (b AND c)"),
    ("length(name) > 0", "length(name) > 1"),
])
def test_different_check_expressions_stay_different(one, other):
    for dialect in ("postgresql", "sqlite"):
        assert integrity.normalize_check(one, dialect) != integrity.normalize_check(other, dialect)


UNNAMED = """
CREATE TABLE customers (
  id INTEGER NOT NULL PRIMARY KEY,
  email VARCHAR(254) NOT NULL UNIQUE,
  handle VARCHAR(40) NOT NULL,
  UNIQUE (handle)
);
CREATE TABLE orders (
  id INTEGER NOT NULL PRIMARY KEY,
  customer_id INTEGER NOT NULL REFERENCES customers (id),
  status VARCHAR(20) NOT NULL CHECK (status IN ('new', 'paid', 'shipped')),
  qty INTEGER NOT NULL,
  CHECK (qty BETWEEN 1 AND 1000)
);
"""

#: the same schema as a naming convention (Alembic's) spells it
NAMED = """
CREATE TABLE customers (
  id INTEGER NOT NULL,
  email VARCHAR(254) NOT NULL,
  handle VARCHAR(40) NOT NULL,
  CONSTRAINT pk_customers PRIMARY KEY (id),
  CONSTRAINT uq_customers_email UNIQUE (email),
  CONSTRAINT uq_customers_handle UNIQUE (handle)
);
CREATE TABLE orders (
  id INTEGER NOT NULL,
  customer_id INTEGER NOT NULL,
  status VARCHAR(20) NOT NULL,
  qty INTEGER NOT NULL,
  CONSTRAINT pk_orders PRIMARY KEY (id),
  CONSTRAINT fk_orders_customer_id_customers FOREIGN KEY (customer_id) REFERENCES customers (id),
  CONSTRAINT ck_orders_status CHECK (status IN ('new', 'paid', 'shipped')),
  CONSTRAINT ck_orders_qty CHECK (qty >= 1 AND qty <= 1000)
);
"""


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize("declared, live", [(UNNAMED, NAMED), (NAMED, UNNAMED)], ids=["unnamed-declared",
                                                                                   "named-declared"])
def test_constraints_match_whatever_their_names(url_for, dialect, declared, live):
    engine = make_engine(url_for(dialect))
    try:
        run_sql(engine, live)
        data = data_checks(engine, declared)
        assert not (data["status"] == "problem").any(), data.to_dict("records")
        # a name the declared schema gave and the live database does not use is a note, not a problem
        notes = data[data["check"] == "named differently"]
        assert (notes["status"] == "ok").all()
        assert len(notes) == (0 if declared is UNNAMED else 7), notes.to_dict("records")
    finally:
        engine.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_same_name_other_expression_is_missing_and_says_so(url_for, dialect):
    engine = make_engine(url_for(dialect))
    try:
        run_sql(engine, NAMED.replace("qty >= 1 AND qty <= 1000", "qty >= 0"))
        data = data_checks(engine, NAMED)
        missing = data[data["check"] == "declared but missing"]
        assert list(missing["columns"]) == ["qty"], data.to_dict("records")
        assert "ck_orders_qty" in missing.iloc[0]["detail"] and "differs" in missing.iloc[0]["detail"]
    finally:
        engine.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_expression_unique_indexes_match_by_expression_not_name(url_for, dialect):
    table = "CREATE TABLE people (id INTEGER PRIMARY KEY, email VARCHAR(200) NOT NULL);\n"
    declared = table + "CREATE UNIQUE INDEX ux_people_lower_email ON people (lower(email));\n"
    engine = make_engine(url_for(dialect))
    try:
        run_sql(engine, table + "CREATE UNIQUE INDEX people_email_idx ON people (lower(email));\n")
        data = data_checks(engine, declared)
        assert not (data["check"] == "declared but missing").any(), data.to_dict("records")
        run_sql(engine, "DROP INDEX people_email_idx;\nCREATE UNIQUE INDEX people_email_idx ON people (upper(email));")
        missing = data_checks(engine, declared)
        missing = missing[missing["check"] == "declared but missing"]
        assert len(missing) == 1 and "ux_people_lower_email" in missing.iloc[0]["detail"], missing.to_dict("records")
    finally:
        engine.dispose()
