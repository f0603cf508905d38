"""Hostile inputs to the migration and schema steps: each is refused with its exit code and
one line, and nothing on disk changes (workspace files and the live database)."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from helpers.hostile import conductor, refused, tree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers.sample_ddl import V1, V2  # noqa: E402

from conductor_magics.engine.connection import make_engine  # noqa: E402
from conductor_magics.engine.migrations import Migrations  # noqa: E402
from conductor_magics.engine.sample import seed  # noqa: E402


def component(project: Path) -> Path:
    return project / "storage-conductor" / "storages" / "orders_db"


def automatic_migrations(project: Path) -> None:
    workflow = project / "storage-conductor" / "workflow.md"
    text = workflow.read_text(encoding="utf-8")
    assert "- **Migration strategy:** versioned" in text
    workflow.write_text(text.replace("- **Migration strategy:** versioned",
                                     "- **Migration strategy:** automatic"), encoding="utf-8")


def test_schema_declare_apply_that_fails_live_leaves_schema_sql_unchanged(project, tmp_path):
    # The DDL validates on an empty scratch database, but the live one already has an
    # `orders` table of another shape: statement 2 fails there. Nothing may change —
    # neither the live database nor schema.sql (it used to be overwritten anyway).
    automatic_migrations(project)
    folder = component(project)
    (folder / "schema.sql").write_text("-- the schema as declared last week\n" + V1,
                                       encoding="utf-8")
    assert conductor(project, "connect", "--id", "orders_db").returncode == 0  # .gitignore
    with sqlite3.connect(folder / "dev.sqlite") as raw:
        raw.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, legacy TEXT)")
        raw.execute("INSERT INTO orders VALUES (1, 'keep')")
    ddl = tmp_path / "v2.sql"
    ddl.write_text(V2, encoding="utf-8")
    before = tree(project)
    proc = conductor(project, "schema", "declare", "orders_db", "--file", str(ddl), "--apply")
    line = refused(proc, 1, r"statement 2 of \d+ failed \(CREATE TABLE orders.*already exists",
                   before, project)
    assert "schema.sql was not changed" in line
    with sqlite3.connect(folder / "dev.sqlite") as raw:
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"orders"}  # customers (statement 1) was rolled back


def test_destructive_migrate_down_without_confirm_changes_nothing(project):
    folder = component(project)
    engine = make_engine(f"sqlite:///{folder / 'dev.sqlite'}")
    try:
        migrations = Migrations(folder / "migrations", engine)
        migrations.new("customers and orders", V1)
        migrations.up()
        seed(engine, rows=12)
    finally:
        engine.dispose()
    assert conductor(project, "migrate", "current", "--id", "orders_db").returncode == 0
    before = tree(project)
    proc = conductor(project, "migrate", "down", "--id", "orders_db")
    refused(proc, 2, r"migrate down -1 would delete data: table customers \(12 row\(s\)\); "
                     r"table orders \(12 row\(s\)\); nothing changed: pass --confirm", before,
            project)
