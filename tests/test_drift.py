"""`drift` (issue 15): each kind of drift built for real, seen as exactly that finding with
file:line; a clean workspace reports none; CLI exit codes 0/1/2 and --json."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
from helpers.cli import conductor
from sqlalchemy import create_engine, make_url, text

from conductor_magics.notebook_html import notebook_view
from conductor_magics.session import Session
from conductor_magics.workspace import Workspace

SCHEMA = """CREATE TABLE customers (
  id INTEGER NOT NULL,
  email VARCHAR(254) NOT NULL,
  CONSTRAINT pk_customers PRIMARY KEY (id),
  CONSTRAINT uq_customers_email UNIQUE (email)
);
CREATE TABLE orders (
  id INTEGER NOT NULL,
  customer_id INTEGER NOT NULL,
  status VARCHAR(20) NOT NULL,
  shipped_at TIMESTAMP,
  CONSTRAINT pk_orders PRIMARY KEY (id),
  CONSTRAINT fk_orders_customer_id_customers FOREIGN KEY (customer_id) REFERENCES customers (id)
);
CREATE INDEX ix_orders_customer_id ON orders (customer_id);
"""

SPEC = """# Spec: orders

## Entities

### customers

| Column | Type | Null | Constraints |
| --- | --- | --- | --- |
| `id` | integer | no | `pk_customers` |
| `email` | text | no | `uq_customers_email` |

### orders

| Column | Type | Null | Constraints |
| --- | --- | --- | --- |
| `id` | integer | no | `pk_orders` |
| `customer_id` | integer | no | `fk_orders_customer_id_customers` references `customers (id)` |
| `status` | text | no | |
| `shipped_at` | timestamp | yes | NULL until shipped |

## Query Patterns

### orders_of_customer

The order list. Served by `ix_orders_customer_id`.

```sql
SELECT o.id, o.status, o.shipped_at FROM orders AS o WHERE o.customer_id = :customer_id
```
"""

COMPONENT = "orders_db"


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the first line of ``path`` containing ``needle``."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


@pytest.fixture
def built(dialect: str, request, unlocked_project: Path, monkeypatch):
    """A component whose spec, schema.sql, revisions and live database agree."""
    monkeypatch.delenv("CONDUCTOR_DATABASE_URL", raising=False)
    url = request.getfixturevalue("pg_url") if dialect == "postgresql" else None
    folder = unlocked_project / "storage-conductor" / "storages" / COMPONENT
    (folder / "spec.md").write_text(SPEC, encoding="utf-8")
    session = Session(Workspace(unlocked_project / "storage-conductor"), user="tester")
    live = session.database(COMPONENT, url=url)
    live.schema_declare(SCHEMA)
    live.migrate("new", message="orders")
    live.migrate("up")
    yield session, live, folder, url
    live.engine.dispose()


def kinds(report) -> list[tuple[str, str]]:
    return [(f.kind, f.object) for f in report.findings]


def test_a_clean_workspace_reports_no_drift(built):
    session, live, folder, url = built
    report = live.drift()
    assert report.findings == [], report.to_text()
    assert report.exit_code == 0 and "no drift" in report.to_text()
    args = ["drift", "--id", COMPONENT, "--json"] + (["--url", url] if url else [])
    done = conductor(*args, root=folder.parents[2])
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["clean"] is True and data["findings"] == []
    assert set(data["counts"]) == {"spec-vs-schema", "queries-vs-schema", "schema-vs-migrations",
                                   "migrations-vs-database", "plan-vs-evidence"}


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_a_spec_column_missing_from_schema_sql(built):
    session, live, folder, _ = built
    spec = folder / "spec.md"
    spec.write_text(SPEC.replace("| `shipped_at` | timestamp | yes | NULL until shipped |\n",
                                 "| `shipped_at` | timestamp | yes | NULL until shipped |\n"
                                 "| `note` | text | yes | |\n"), encoding="utf-8")
    report = live.drift()
    assert kinds(report) == [("spec-vs-schema", "orders.note")], report.to_text()
    finding = report.findings[0]
    assert finding.severity == "warning" and finding.object_type == "column"
    assert finding.left == f"storages/{COMPONENT}/spec.md:{line_of(spec, '`note`')}"
    assert finding.right == f"storages/{COMPONENT}/schema.sql:{line_of(folder / 'schema.sql', 'CREATE TABLE orders')}"
    assert "conductor schema declare" in finding.fix


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_a_schema_sql_index_no_revision_creates(built):
    session, live, folder, _ = built
    live.schema_declare(SCHEMA + "CREATE INDEX ix_orders_status ON orders (status);\n")
    report = live.drift()
    assert kinds(report) == [("schema-vs-migrations", "ix_orders_status")], report.to_text()
    finding = report.findings[0]
    assert finding.severity == "error" and finding.object_type == "index"
    assert "no revision creates it" in finding.message
    assert finding.left == f"storages/{COMPONENT}/schema.sql:{line_of(folder / 'schema.sql', 'ix_orders_status')}"
    assert "conductor migrate new" in finding.fix
    # the migration gate includes it: the drift row fails with the finding's one line
    rows = {r.name: r for r in live.run_checks("migration")}
    row = rows["no drift: schema-vs-migrations"]
    assert row.status == "fail" and row.detail == finding.line()
    # the schema gate's drift rows pass: spec and queries agree with schema.sql
    schema_rows = {r.name: r for r in live.run_checks("schema")}
    assert schema_rows["no drift: spec-vs-schema"].status == "pass"
    assert schema_rows["no drift: queries-vs-schema"].status == "pass"


def test_a_column_added_to_the_live_database_by_hand(built):
    session, live, folder, url = built
    if url:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE customers ADD COLUMN nickname VARCHAR(40)"))
        engine.dispose()
    else:
        with sqlite3.connect(folder / "dev.sqlite") as conn:
            conn.execute("ALTER TABLE customers ADD COLUMN nickname VARCHAR(40)")
        conn.close()
    report = live.drift()
    assert kinds(report) == [("migrations-vs-database", "customers.nickname")], report.to_text()
    finding = report.findings[0]
    assert finding.severity == "error" and "added by hand" in finding.message
    assert finding.right.startswith("live database ")
    password = make_url(url).password if url else None
    assert not password or password not in finding.right + report.to_text()
    args = ["drift", "--id", COMPONENT] + (["--url", url] if url else [])
    done = conductor(*args, root=folder.parents[2])
    assert done.returncode == 1, done.stderr
    assert "customers.nickname" in done.stdout and "migrations-vs-database (1)" in done.stdout
    rows = {r.name: r for r in live.run_checks("migration")}
    assert rows["no drift: migrations-vs-database"].status == "fail"


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_a_spec_query_naming_a_missing_column(built):
    session, live, folder, _ = built
    spec = folder / "spec.md"
    spec.write_text(SPEC + "\n### paid_orders\n\n```sql\nSELECT o.id, o.paid_at FROM orders AS o\n```\n",
                    encoding="utf-8")
    report = live.drift()
    assert kinds(report) == [("queries-vs-schema", "paid_orders")], report.to_text()
    finding = report.findings[0]
    assert "unknown column orders.paid_at" in finding.message
    assert finding.left == f"storages/{COMPONENT}/spec.md:{line_of(spec, 'SELECT o.id, o.paid_at') - 1}"
    assert finding.right == f"storages/{COMPONENT}/schema.sql:{line_of(folder / 'schema.sql', 'CREATE TABLE orders')}"


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_an_index_the_spec_says_serves_a_query_that_no_layer_has(built):
    session, live, folder, _ = built
    spec = folder / "spec.md"
    spec.write_text(SPEC.replace("Served by `ix_orders_customer_id`", "Served by `ix_orders_by_customer`"),
                    encoding="utf-8")
    report = live.drift()
    assert kinds(report) == [("queries-vs-schema", "ix_orders_by_customer")], report.to_text()
    assert report.findings[0].left == f"storages/{COMPONENT}/spec.md:{line_of(spec, 'ix_orders_by_customer')}"


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_schema_sql_edited_after_its_phase_was_verified_is_a_stale_verdict(built):
    session, live, folder, _ = built
    session.verify(COMPONENT, 1, note="schema reviewed", force=True)
    assert live.drift().findings == []
    schema = folder / "schema.sql"
    schema.write_text(schema.read_text(encoding="utf-8") + "-- reviewed later\n", encoding="utf-8")
    report = live.drift()
    assert kinds(report) == [("plan-vs-evidence", "Phase 1: Schema Design")], report.to_text()
    finding = report.findings[0]
    assert "is stale" in finding.message and "schema.sql changed after the verdict" in finding.message
    assert "content hash" in finding.message
    plan = folder / "plan.md"
    assert finding.left == f"storages/{COMPONENT}/plan.md:{line_of(plan, '## Phase 1: Schema Design')}"
    assert finding.right == f"storages/{COMPONENT}/schema.sql"
    assert "conductor verify --phase 1" in finding.fix
    # a later phase verified after the edit saw it: the verdict is no longer stale
    session.verify(COMPONENT, 2, note="migrations reviewed", force=True)
    assert live.drift().findings == []


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_an_old_verdict_without_evidence_is_compared_by_modification_time(built):
    session, live, folder, _ = built
    session.verify(COMPONENT, 1, note="schema reviewed", force=True)
    log = folder / "verification.json"
    data = json.loads(log.read_text(encoding="utf-8"))
    records = data["records"] if isinstance(data, dict) else data
    for record in records:
        record.pop("evidence")
    log.write_text(json.dumps(data), encoding="utf-8")
    assert live.drift().findings == []
    later = time.time() + 5
    os.utime(folder / "schema.sql", (later, later))
    report = live.drift()
    assert kinds(report) == [("plan-vs-evidence", "Phase 1: Schema Design")], report.to_text()
    assert "was modified at" in report.findings[0].message


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_a_revision_added_after_the_migration_phase_was_verified(built):
    session, live, folder, _ = built
    session.verify(COMPONENT, 2, note="migrations reviewed", force=True)
    live.schema_declare(SCHEMA + "CREATE INDEX ix_orders_status ON orders (status);\n")
    info = live.migrate("new", message="status index")
    live.migrate("up")
    report = live.drift()
    # schema.sql changed too, but the schema phase was never verified
    assert kinds(report) == [("plan-vs-evidence", "Phase 2: Migration Setup")], report.to_text()
    finding = report.findings[0]
    assert info.data["revision"] in finding.message and "added after the verdict" in finding.message
    assert finding.right == f"storages/{COMPONENT}/migrations/versions/{Path(info.data['path']).name}"


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_a_spec_without_machine_readable_entities_is_said_not_guessed(built):
    session, live, folder, _ = built
    (folder / "spec.md").write_text("# Spec\n\nOrders and customers, described in prose.\n",
                                    encoding="utf-8")
    report = live.drift()
    assert report.findings == []
    assert any("no '## Entities' section" in n for n in report.notes), report.notes


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_cli_exit_codes_and_the_notebook_view(built):
    session, live, folder, _ = built
    root = folder.parents[2]
    assert conductor("drift", "--id", COMPONENT, root=root).returncode == 0
    (folder / "spec.md").write_text(SPEC.replace("o.shipped_at", "o.paid_at"), encoding="utf-8")
    done = conductor("drift", "--id", COMPONENT, "--json", root=root)
    assert done.returncode == 1
    data = json.loads(done.stdout)
    assert data["clean"] is False and data["counts"]["queries-vs-schema"] == 1
    assert data["findings"][0]["kind"] == "queries-vs-schema"
    bad = conductor("drift", "--id", "no_such_component", root=root)
    assert bad.returncode == 2 and "no_such_component" in bad.stderr
    assert conductor("drift", "extra-word", root=root).returncode == 2
    view = notebook_view(live.drift())
    html = view.bundles[0]["text/html"]
    assert "<svg" in html and "<h4>queries-vs-schema (1)</h4>" in html
    assert "%conductor schema declare" in html or "%%conductor schema declare" in html


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_an_index_dropped_after_the_indexing_phase_was_verified(built):
    session, live, folder, _ = built
    waivers = {r.name: "benchmarks come later" for r in live.run_checks("indexing")
               if r.status == "fail"}
    session.verify(COMPONENT, 4, note="indexes reviewed", force=True, run_checks=True,
                   waivers=waivers)
    assert live.drift().findings == []
    with sqlite3.connect(folder / "dev.sqlite") as conn:
        conn.execute("DROP INDEX ix_orders_customer_id")
    conn.close()
    report = live.drift()
    assert sorted(kinds(report)) == [("migrations-vs-database", "ix_orders_customer_id"),
                                     ("plan-vs-evidence", "Phase 4: Indexing and Query Performance")], \
        report.to_text()
    stale = next(f for f in report.findings if f.kind == "plan-vs-evidence")
    assert "ix_orders_customer_id dropped after the verdict" in stale.message
    assert stale.left == f"storages/{COMPONENT}/plan.md:{line_of(folder / 'plan.md', '## Phase 4:')}"


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_a_backup_older_than_a_migration_after_the_backup_phase_was_verified(built):
    session, live, folder, _ = built
    live.backup("create", label="before")
    session.verify(COMPONENT, 6, note="backups reviewed", force=True)
    time.sleep(1.1)  # the migration's applied_at has whole seconds, like the verdict
    live.schema_declare(SCHEMA + "CREATE INDEX ix_orders_status ON orders (status);\n")
    live.migrate("new", message="status index")
    live.migrate("up")
    report = live.drift()
    assert kinds(report) == [("plan-vs-evidence", "Phase 6: Backup and Recovery")], report.to_text()
    assert "a migration was applied at" in report.findings[0].message
    assert "is older than it" in report.findings[0].message
    live.backup("create", label="after")
    assert live.drift().findings == []


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_an_applied_revision_file_edited_afterwards(built):
    session, live, folder, _ = built
    revision = next((folder / "migrations" / "versions").glob("*.py"))
    revision.write_text(revision.read_text(encoding="utf-8") + "\n# tidied up\n", encoding="utf-8")
    report = live.drift()
    assert kinds(report) == [("migrations-vs-database", "applied revision files")], report.to_text()
    finding = report.findings[0]
    assert finding.severity == "error" and revision.name in finding.message
    assert "was edited after it was applied" in finding.message


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_a_schema_sql_that_does_not_apply_is_bad_input(built):
    session, live, folder, _ = built
    schema = folder / "schema.sql"
    schema.write_text(SCHEMA + "CREATE TABLE broken (id INTEGER, CONSTRAINT x FOREIGN KEY\n",
                      encoding="utf-8")
    before = sorted(p.name for p in folder.iterdir())
    done = conductor("drift", "--id", COMPONENT, root=folder.parents[2])
    assert done.returncode == 2 and done.stdout == ""
    assert "schema.sql does not apply to a scratch database" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in folder.iterdir()) == before
