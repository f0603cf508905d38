"""Declared schema: splitting and applying DDL, reflection, findings, Mermaid, declared MetaData.

Runs the same scenarios on SQLite (a file), a real PostgreSQL database and DuckDB (a file).
"""

from __future__ import annotations

import re

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, inspect, make_url

from conductor_magics.engine.connection import make_engine
from conductor_magics.engine.schema import (
    NAMING_CONVENTION,
    SchemaReport,
    apply_sql,
    declared_metadata,
    reflect,
    split_statements,
    validate,
)
from conductor_magics.errors import DatabaseError
from conductor_magics.workspace.layout import SCHEMA_FILE as DECLARED_FILE
from conductor_magics.workspace.layout import declared_path, read_declared

DDL = """
-- customers; orders; order items. Semicolons in comments and strings must not split.
CREATE TABLE customers (
    id INTEGER NOT NULL,
    email VARCHAR(255) NOT NULL,
    name VARCHAR(100),
    tier VARCHAR(10) NOT NULL DEFAULT 'std;basic',
    CONSTRAINT pk_customers PRIMARY KEY (id),
    CONSTRAINT uq_customers_email UNIQUE (email)
);

/* orders: one unnamed CHECK (status) */
CREATE TABLE orders (
    id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    status VARCHAR(20) NOT NULL DEFAULT 'new',
    total NUMERIC(10, 2) NOT NULL,
    CONSTRAINT pk_orders PRIMARY KEY (id),
    CONSTRAINT fk_orders_customer_id_customers FOREIGN KEY (customer_id) REFERENCES customers (id),
    CONSTRAINT ck_orders_total_positive CHECK (total >= 0),
    CHECK (status IN ('new', 'paid', 'shipped'))
);
CREATE INDEX ix_orders_customer_id ON orders (customer_id);

CREATE TABLE order_items (
    order_id INTEGER NOT NULL,
    line_no INTEGER NOT NULL,
    sku VARCHAR(40) NOT NULL,
    qty INTEGER NOT NULL,
    CONSTRAINT pk_order_items PRIMARY KEY (order_id, line_no),
    CONSTRAINT fk_order_items_order_id_orders FOREIGN KEY (order_id) REFERENCES orders (id),
    CONSTRAINT ck_order_items_qty CHECK (qty > 0)
);

-- no primary key, and its foreign key has no index
CREATE TABLE audit_log (
    happened_at TIMESTAMP NOT NULL,
    customer_id INTEGER,
    note TEXT,
    CONSTRAINT fk_audit_log_customer_id_customers FOREIGN KEY (customer_id) REFERENCES customers (id)
);
"""

#: (table, column, nullable, pk, fk, unique) for every column, in reflection order
EXPECTED_ROWS = [
    ("audit_log", "happened_at", False, False, "", False),
    ("audit_log", "customer_id", True, False, "customers.id", False),
    ("audit_log", "note", True, False, "", False),
    ("customers", "id", False, True, "", False),
    ("customers", "email", False, False, "", True),
    ("customers", "name", True, False, "", False),
    ("customers", "tier", False, False, "", False),
    ("order_items", "order_id", False, True, "orders.id", False),
    ("order_items", "line_no", False, True, "", False),
    ("order_items", "sku", False, False, "", False),
    ("order_items", "qty", False, False, "", False),
    ("orders", "id", False, True, "", False),
    ("orders", "customer_id", False, False, "customers.id", False),
    ("orders", "status", False, False, "", False),
    ("orders", "total", False, False, "", False),
]

EXPECTED_FINDINGS = {
    ("error", "audit_log", "no-primary-key"),
    ("warning", "audit_log", "fk-without-index"),
    ("warning", "orders", "unnamed-constraint"),
}

EXPECTED_RELATIONSHIPS = {
    'customers |o--o{ audit_log : "customer_id"',
    'orders ||--o{ order_items : "order_id"',
    'customers ||--o{ orders : "customer_id"',
}

DIALECTS = ["sqlite", "postgresql", "duckdb"]


@pytest.fixture(params=DIALECTS)
def dialect(request) -> str:
    """conftest's dialects, and duckdb."""
    return request.param


@pytest.fixture
def live(db_engine) -> Engine:
    """An empty live database of each dialect."""
    return db_engine


def _rows(report: SchemaReport) -> list[tuple]:
    frame = report.summary_frame()
    return [(r.table, r.column, bool(r.nullable), bool(r.pk), r.fk, bool(r.unique))
            for r in frame.itertuples()]


def _tables(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())


# --------------------------------------------------------------------------- validate / reflect


def test_validate_reports_every_column_with_keys_checks_and_indexes(live):
    report = validate(DDL, live)
    assert _rows(report) == EXPECTED_ROWS
    frame = report.summary_frame().set_index(["table", "column"])
    assert "INT" in frame.loc[("orders", "id"), "type"].upper()
    assert re.search(r"(NUMERIC|DECIMAL)\(10, ?2\)", frame.loc[("orders", "total"), "type"].upper())
    assert frame.loc[("orders", "customer_id"), "indexes"] == "ix_orders_customer_id"
    assert frame.loc[("orders", "id"), "indexes"] == ""
    assert re.search(r"total\s*>=\s*0", frame.loc[("orders", "total"), "checks"])
    assert "paid" in frame.loc[("orders", "status"), "checks"]
    assert re.search(r"qty\s*>\s*0", frame.loc[("order_items", "qty"), "checks"])
    assert frame.loc[("customers", "email"), "checks"] == ""
    # the string default with a semicolon survived the split
    assert "std;basic" in (report.table("customers").columns[3].default or "")

    tables = report.tables_frame().set_index("table")
    assert tables.loc["orders", ["columns", "foreign_keys", "checks", "indexes"]].tolist() == [4, 1, 2, 1]
    assert tables.loc["order_items", "primary_key"] == "order_id, line_no"
    assert tables.loc["audit_log", "primary_key"] == ""
    assert tables.loc["audit_log", ["errors", "warnings"]].tolist() == [1, 1]
    assert tables.loc["customers", ["unique", "errors", "warnings"]].tolist() == [1, 0, 0]
    # validating touched nothing in the live database
    assert _tables(live) == []


def test_findings_are_exact_per_table(live):
    report = validate(DDL, live)
    assert {(f.severity, f.table, f.code) for f in report.findings} == EXPECTED_FINDINGS
    unnamed = next(f for f in report.findings if f.code == "unnamed-constraint")
    assert "CHECK" in unnamed.message and "status" in unnamed.message
    fk = next(f for f in report.findings if f.code == "fk-without-index")
    assert "customer_id" in fk.message


def test_constraint_names_or_none(live):
    report = validate(DDL, live)
    orders = report.table("orders")
    assert orders.primary_key.name == "pk_orders" and orders.primary_key.explicit
    assert [fk.name for fk in orders.foreign_keys] == ["fk_orders_customer_id_customers"]
    checks = {ck.name: ck.explicit for ck in orders.check_constraints}
    assert checks.pop("ck_orders_total_positive") is True
    ((unnamed_name, explicit),) = checks.items()
    assert explicit is False
    # SQLite and DuckDB keep no name for it; PostgreSQL generates one
    expected = "orders_status_check" if live.dialect.name == "postgresql" else None
    assert unnamed_name == expected
    assert report.table("customers").unique_constraints[0].name == "uq_customers_email"
    assert report.table("audit_log").primary_key is None


def test_mermaid_diagram_has_typed_entities_and_relationships(live):
    text = validate(DDL, live).mermaid()
    lines = text.splitlines()
    assert lines[0] == "erDiagram"
    assert {line.split(" {")[0].strip() for line in lines if line.endswith("{")} == {
        "audit_log", "customers", "order_items", "orders"}
    body = "\n".join(lines)
    assert re.search(r"^ {8}INT\w* id PK$", body, re.M)
    assert re.search(r"^ {8}INT\w* order_id PK, FK$", body, re.M)
    assert re.search(r"^ {8}VARCHAR\w* email UK$", body, re.M)
    assert re.search(r"^ {8}(NUMERIC|DECIMAL)_10_2 total$", body, re.M)
    assert {line.strip() for line in lines if "--" in line} == EXPECTED_RELATIONSHIPS
    # Mermaid grammar: attribute types and names are single tokens without parentheses
    attribute = re.compile(r"^ {8}[A-Za-z_][A-Za-z0-9_]* [A-Za-z_][A-Za-z0-9_]*( (PK|FK|UK)(, (PK|FK|UK))*)?$")
    inside = False
    for line in lines[1:]:
        if line.endswith("{"):
            inside = True
        elif line.strip() == "}":
            inside = False
        elif inside:
            assert attribute.match(line), line


def test_mermaid_sanitizes_identifiers_and_marks_one_to_one(live):
    sql = """
    CREATE TABLE "user profile" (id INTEGER NOT NULL, CONSTRAINT pk_up PRIMARY KEY (id));
    CREATE TABLE "2fa" (
        profile_id INTEGER NOT NULL,
        "secret key" VARCHAR(64),
        CONSTRAINT pk_2fa PRIMARY KEY (profile_id),
        CONSTRAINT fk_2fa_profile FOREIGN KEY (profile_id) REFERENCES "user profile" (id)
    );
    """
    text = validate(sql, live).mermaid()
    assert "    user_profile {" in text and "    _2fa {" in text
    assert re.search(r"VARCHAR\w* secret_key\n", text)
    assert 'user_profile ||--o| _2fa : "profile_id"' in text


def test_reflect_live_database_matches_validate_and_skips_tool_tables(live):
    apply_sql(live, DDL + "\nCREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL);")
    assert "alembic_version" in _tables(live)
    report = reflect(live)
    assert _rows(report) == EXPECTED_ROWS
    assert "alembic_version" not in {t.name for t in report.tables}
    codes = {(f.severity, f.table, f.code) for f in report.findings}
    if live.dialect.name == "duckdb":
        # DuckDB stores no constraint names: without the declared SQL it cannot tell
        assert codes == EXPECTED_FINDINGS - {("warning", "orders", "unnamed-constraint")}
        assert any("DuckDB does not store constraint names" in n for n in report.notes)
        assert reflect(live, declared_sql=DDL).findings == validate(DDL, live).findings
    else:
        assert codes == EXPECTED_FINDINGS
    with live.connect() as conn:  # a Connection works as well as an Engine
        assert _rows(reflect(conn)) == EXPECTED_ROWS
    assert report.to_json()["tables"][0]["name"] == "audit_log"
    assert {f["code"] for f in report.to_json()["findings"]} >= {"no-primary-key"}


def test_pg_default_constraint_names_count_as_unnamed(pg_url):
    sql = """
    CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT UNIQUE, n INTEGER CHECK (n > 0),
                    parent INTEGER REFERENCES t (id));
    CREATE INDEX ix_t_parent ON t (parent);
    CREATE TABLE u (id INTEGER, CONSTRAINT u_pkey PRIMARY KEY (id));
    """
    engine = make_engine(pg_url)
    try:
        declared = validate(sql, engine)
        unnamed = sorted(f.message.split(" has ")[0] for f in declared.findings
                         if f.code == "unnamed-constraint")
        assert unnamed == ["t: CHECK (n > 0)", "t: FOREIGN KEY (parent) → t", "t: PRIMARY KEY (id)",
                           "t: UNIQUE (email)"]
        # the declared SQL says u_pkey was named on purpose; the live database cannot tell
        apply_sql(engine, sql)
        live_unnamed = {f.table for f in reflect(engine).findings if f.code == "unnamed-constraint"}
        assert live_unnamed == {"t", "u"}
        assert [f.code for f in declared.findings if f.table == "u"] == []
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- errors


BROKEN = """
CREATE TABLE first_ok (id INTEGER NOT NULL, CONSTRAINT pk_first_ok PRIMARY KEY (id));
INSERT INTO keep (id) VALUES (2);
CREATE TABL second_broken (id INTEGER);
CREATE TABLE never_reached (id INTEGER);
"""


def test_ddl_error_names_the_statement_and_leaves_the_live_database_untouched(live):
    apply_sql(live, "CREATE TABLE keep (id INTEGER NOT NULL, CONSTRAINT pk_keep PRIMARY KEY (id));"
                    "INSERT INTO keep (id) VALUES (1);")
    with pytest.raises(DatabaseError) as caught:
        apply_sql(live, BROKEN)
    message = str(caught.value)
    assert "statement 3 of 4" in message
    assert "CREATE TABL second_broken" in message
    assert "rolled back" in message
    assert _tables(live) == ["keep"]
    with live.connect() as conn:
        assert conn.exec_driver_sql("SELECT id FROM keep").scalars().all() == [1]

    with pytest.raises(DatabaseError) as caught:
        validate("CREATE TABLE a (id INTEGER);\nCREATE TABLE b (id INTEGER REFERENCES nowhere ((;",
                 live)
    assert "statement 2 of 2" in str(caught.value)
    assert _tables(live) == ["keep"]


def test_errors_never_show_the_password(pg_url):
    password = make_url(pg_url).password
    assert password
    engine = make_engine(pg_url)
    try:
        with pytest.raises(DatabaseError) as caught:
            apply_sql(engine, f"CREATE TABLE x (id INTEGER);\nSELECT '{pg_url}'::integer;")
        assert "statement 2 of 2" in str(caught.value)
        assert password not in str(caught.value)
        assert password not in repr(caught.value.to_json())
        with pytest.raises(DatabaseError) as caught:
            validate("CREATE TABLE broken (", engine)
        assert password not in str(caught.value)
    finally:
        engine.dispose()


def test_validate_rejects_an_empty_schema(live):
    with pytest.raises(DatabaseError, match="empty"):
        validate("-- nothing here;\n /* ; */ ", live)


def _databases(pg_server) -> set[str]:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


def test_validate_leaves_no_scratch_database_on_postgresql(pg_server, pg_url):
    engine = make_engine(pg_url)
    try:
        before = _databases(pg_server)
        validate(DDL, engine)
        declared_metadata(DDL, engine)
        with pytest.raises(DatabaseError):
            validate(BROKEN, engine)
        after = _databases(pg_server)
        assert after == before
        assert not [d for d in after if d.startswith("conductor_scratch_")]
        assert _tables(engine) == []
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- declared MetaData


def _constraint_names(metadata: MetaData, table: str) -> set[tuple[str, str]]:
    return {(type(c).__name__, str(c.name)) for c in metadata.tables[table].constraints
            if c.name is not None}


def test_declared_metadata_has_tables_and_named_constraints(live, tmp_path):
    metadata = declared_metadata(DDL, live)
    assert metadata.naming_convention == NAMING_CONVENTION
    assert set(metadata.tables) == {"customers", "orders", "order_items", "audit_log"}
    assert _constraint_names(metadata, "customers") == {
        ("PrimaryKeyConstraint", "pk_customers"), ("UniqueConstraint", "uq_customers_email")}
    assert _constraint_names(metadata, "orders") == {
        ("PrimaryKeyConstraint", "pk_orders"),
        ("ForeignKeyConstraint", "fk_orders_customer_id_customers"),
        ("CheckConstraint", "ck_orders_total_positive"),
        ("CheckConstraint", "ck_orders_status"),  # the unnamed CHECK gets the convention's name
    }
    assert _constraint_names(metadata, "audit_log") == {
        ("ForeignKeyConstraint", "fk_audit_log_customer_id_customers")}
    assert [ix.name for ix in metadata.tables["orders"].indexes] == ["ix_orders_customer_id"]
    assert _tables(live) == []

    # round trip: creating the MetaData on an empty database reproduces the declared schema
    metadata.create_all(live)
    again = reflect(live)
    assert _rows(again) == EXPECTED_ROWS
    if live.dialect.name != "duckdb":
        assert {ck.name for ck in again.table("orders").check_constraints} == {
            "ck_orders_total_positive", "ck_orders_status"}
        # what Alembic autogenerate sees: no difference between the database and the MetaData
        with live.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                             "compare_server_default": True})
            assert compare_metadata(context, metadata) == []


# --------------------------------------------------------------------------- splitting and files


def test_split_statements_respects_strings_comments_bodies_and_triggers():
    pg = """
    -- a comment; with a semicolon
    CREATE FUNCTION touch() RETURNS trigger AS $$
    BEGIN NEW.updated := now(); RETURN NEW; END;
    $$ LANGUAGE plpgsql;
    INSERT INTO t VALUES ('a;b', 'it''s; fine') /* ; */ ;
    ;
    """
    statements = split_statements(pg, "postgresql")
    assert len(statements) == 2
    assert statements[0].startswith("-- a comment; with a semicolon\n    CREATE FUNCTION touch()")
    assert statements[0].endswith("$$ LANGUAGE plpgsql")
    assert statements[1] == "INSERT INTO t VALUES ('a;b', 'it''s; fine') /* ; */"

    sqlite = """CREATE TABLE a (x INTEGER, y INTEGER);
    CREATE TRIGGER a_y AFTER INSERT ON a BEGIN
        UPDATE a SET y = CASE WHEN x > 0 THEN 1 ELSE 0 END WHERE rowid = NEW.rowid;
        SELECT 1;
    END;
    SELECT 2"""
    statements = split_statements(sqlite, "sqlite")
    assert [s.split()[0:2] for s in statements] == [["CREATE", "TABLE"], ["CREATE", "TRIGGER"],
                                                   ["SELECT", "2"]]
    assert statements[1].endswith("END")

    # text sqlglot cannot make sense of is kept as written
    odd = "FROBNICATE the widgets @@ now; VACUUM"
    assert split_statements(odd, "sqlite") == ["FROBNICATE the widgets @@ now", "VACUUM"]
    unterminated = "SELECT 1; SELECT 'no end; here"
    assert split_statements(unterminated, "postgresql") == ["SELECT 1", "SELECT 'no end; here"]
    assert split_statements("  -- only a comment\n", "duckdb") == []


def test_apply_sql_runs_in_the_callers_transaction(live):
    with live.connect() as conn:
        trans = conn.begin()
        apply_sql(conn, "CREATE TABLE inside (id INTEGER NOT NULL, CONSTRAINT pk_inside PRIMARY KEY (id));")
        trans.rollback()
    assert _tables(live) == []


def test_declared_file_paths(tmp_path):
    folder = tmp_path / "storages" / "orders"
    folder.mkdir(parents=True)
    assert declared_path(folder) == folder / DECLARED_FILE == folder / "schema.sql"
    assert read_declared(folder) is None
    declared_path(folder).write_text(DDL, encoding="utf-8")
    assert read_declared(folder) == DDL
