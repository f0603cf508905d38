"""Index tuning and backups end to end through the `conductor` CLI, on the embedded SQLite
default and on a real PostgreSQL (with HypoPG): seed → query → bench → advise --apply →
migrate check → the indexing gate; backup → verify → list → restore."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.cli import Runner, live_engine
from helpers.sample_ddl import ORDER_LIST
from helpers.sample_ddl import TUNING_SCHEMA as SCHEMA

from conductor_magics.engine.fingerprint import fingerprint

COMPOSITE = "CREATE INDEX ix_orders_customer_id_status ON orders (customer_id, status)"


@pytest.fixture
def run(dialect: str, request, project: Path) -> Runner:
    """The CLI on the example project: the embedded SQLite file, or a fresh PostgreSQL database."""
    return Runner(project, request.getfixturevalue("pg_url") if dialect == "postgresql" else None)


def component(run: Runner) -> Path:
    return run.project / "storage-conductor" / "storages" / "orders_db"


def migrated(run: Runner, tmp_path: Path) -> None:
    (tmp_path / "schema.sql").write_text(SCHEMA)
    run("implement", "orders_db", url=False)
    run("schema", "declare", "orders_db", "--file", str(tmp_path / "schema.sql"))
    run("migrate", "new", "-m", "customers and orders", "--id", "orders_db")
    run("migrate", "up", "--id", "orders_db")


def test_seed_query_bench_advise_apply_and_the_indexing_gate(run: Runner, tmp_path: Path):
    migrated(run, tmp_path)
    seeded = json.loads(run("seed", "--rows", "400", "--json").stdout)
    assert "customers" in json.dumps(seeded)
    run("seed", "orders", "--rows", "30000", "--skew", "1.1")
    assert fingerprint(live_engine(run))["orders"].rows == 30400

    # a query cell recorded in workload.sql, its parameters drawn from the data
    (tmp_path / "q.sql").write_text(ORDER_LIST)
    recorded = json.loads(run("query", "order_list", "--file", str(tmp_path / "q.sql"), "--json").stdout)
    assert set(recorded["params"]) == {"customer_id", "status"}
    assert "-- name: order_list" in (component(run) / "workload.sql").read_text()
    listed = json.loads(run("query", "--json").stdout)
    assert [q["name"] for q in listed["queries"]] == ["order_list"]

    # bench: the plan moves from a scan to the index, the speed-up interval is above 1
    result = json.loads(run("bench", "order_list", "--index", COMPOSITE, "--repeat", "15",
                            "--json").stdout)
    arms = {arm["label"]: arm for arm in result["arms"]}
    assert len(arms) == 2, arms.keys()
    base, indexed = (arms[k] for k in arms)
    assert base["uses_index"] in (False, None) and base["full_scan"]
    assert indexed["uses_index"] is True
    assert indexed["ci_low"] > 1 and indexed["verdict"] == "faster"
    lines = (component(run) / "benchmarks.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["name"] == "order_list"
    # the harness left the database as it found it: the candidate index is gone
    gate = json.loads(run("verify", "orders_db", "--phase", "4", "--run-checks", "--json",
                          "--force", expect=1).stdout)
    checks = {c["check"]: c["status"] for c in gate["checks"]}
    # the benchmarked candidate is not in the database (yet), and the advisor has work to do
    assert checks == {"benchmarks of the indexes kept show a speed-up": "fail",
                      "every workload query runs": "pass",
                      "advisor finds nothing left to add": "fail"}, gate["checks"]

    # the advisor finds the composite (equality, equality, then the ORDER BY column)
    advice = json.loads(run("advise", "--apply", "--json").stdout)
    recs = advice["recommendations"]
    assert recs, advice
    assert recs[0]["columns"][:3] == ["customer_id", "status", "created_at"] or \
        recs[0]["columns"][:3] == ["status", "customer_id", "created_at"]
    assert advice["applied"]["revision"]
    # by default only engines without transactional DDL (SQLite here) back up before migrating
    assert ("pre_migration_backup" in advice["applied"]["upgrade"]) == (run.url is None)
    assert recs[0]["ddl"].rstrip(";") in (component(run) / "schema.sql").read_text()
    check = json.loads(run("migrate", "check", "--id", "orders_db", "--json").stdout)
    assert all(row["status"] in ("pass", "skip") for row in check["checks"]), check["checks"]

    gate = json.loads(run("verify", "orders_db", "--phase", "4", "--run-checks", "--json",
                          "--force", expect=None).stdout)
    checks = {c["check"]: c["status"] for c in gate["checks"]}
    assert checks["advisor finds nothing left to add"] == "pass", gate["checks"]
    # the advisor's index is a different shape from the benchmarked candidate: benchmark it
    applied = recs[0]["ddl"]
    run("bench", "order_list", "--index", applied, "--repeat", "15")
    gate = json.loads(run("verify", "orders_db", "--phase", "4", "--run-checks", "--json",
                          "--force").stdout)
    checks = {c["check"]: c["status"] for c in gate["checks"]}
    assert checks == {"benchmarks of the indexes kept show a speed-up": "pass",
                      "every workload query runs": "pass",
                      "advisor finds nothing left to add": "pass"}, gate["checks"]
    assert_no_password(run)


def assert_no_password(run: Runner) -> None:
    if run.url:
        from sqlalchemy.engine import make_url

        password = make_url(run.url).password
        assert password and not any(password in out for out in run.outputs)
        for path in component(run).rglob("*"):
            if path.is_file() and path.suffix in (".json", ".jsonl", ".sql", ".md", ".py"):
                assert password not in path.read_text(errors="replace"), path


def test_bad_tuning_input_changes_nothing(run: Runner, tmp_path: Path):
    migrated(run, tmp_path)
    run("seed", "--rows", "50")
    before = fingerprint(live_engine(run))
    (tmp_path / "bad.sql").write_text("SELECT nope FROM orders WHERE customer_id = :c")
    run("query", "broken", "--file", str(tmp_path / "bad.sql"), expect=2)
    assert not (component(run) / "workload.sql").exists()
    run("bench", "unknown_query", expect=2)
    run("bench", "--file", str(tmp_path / "bad.sql"), "--index", "DROP TABLE orders", expect=2)
    run("seed", "no_such_table", "--rows", "5", expect=2)
    run("advise", "--workload", str(tmp_path / "missing.sql"), expect=2)
    (tmp_path / "none_run.sql").write_text("-- name: nope\nSELECT nope FROM orders;\n")
    run("advise", "--workload", str(tmp_path / "none_run.sql"), expect=2)
    refused = run("advise", "--max-size", "lots", expect=2)
    assert "--max-size takes bytes such as 500MB" in refused.stderr
    assert "--max-indexes is a count" in run("advise", "--max-indexes", "-1", expect=2).stderr
    assert fingerprint(live_engine(run)) == before
    assert not (component(run) / "benchmarks.jsonl").exists()


def test_backup_verify_list_restore(run: Runner, tmp_path: Path):
    migrated(run, tmp_path)
    run("seed", "--rows", "200")
    engine = live_engine(run)
    before = fingerprint(engine)
    made = json.loads(run("backup", "--label", "before-change", "--json").stdout)
    assert made["label"] == "before-change"
    verified = json.loads(run("backup", "verify", "before-change", "--json").stdout)
    assert verified["passed"] is True, verified
    listed = json.loads(run("backup", "list", "--json").stdout)
    assert [b["label"] for b in listed["backups"]] == ["before-change"]
    assert listed["backups"][0]["verified"] is True
    assert "backups/" in (component(run) / ".gitignore").read_text()

    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM orders")
    # over the live database: refused without --confirm, nothing changed
    run("restore", "before-change", expect=2)
    assert fingerprint(engine)["orders"].rows == 0
    restored = json.loads(run("restore", "before-change", "--confirm", "--json").stdout)
    assert restored["passed"] is True
    assert fingerprint(engine) == before
    kinds = [b["kind"] for b in json.loads(run("backup", "list", "--json").stdout)["backups"]]
    assert "safety" in kinds
    run("backup", "prune", expect=2)  # no retention rule: refused
    pruned = json.loads(run("backup", "prune", "--keep-last", "1", "--dry-run", "--json").stdout)
    assert pruned["dry_run"] is True
    assert len(json.loads(run("backup", "list", "--json").stdout)["backups"]) == 2
    assert_no_password(run)


def test_migrations_take_a_pre_migration_backup_when_configured(project: Path, tmp_path: Path):
    run = Runner(project, None)
    workflow = project / "storage-conductor" / "workflow.md"
    workflow.write_text(workflow.read_text() + "\n- **Pre-migration backups:** always\n")
    migrated(run, tmp_path)  # the first upgrade: an empty database, nothing to protect
    assert not json.loads(run("backup", "list", "--json").stdout)["backups"]
    run("seed", "--rows", "20")
    (tmp_path / "v2.sql").write_text(SCHEMA + "CREATE INDEX ix_orders_status ON orders (status);\n")
    run("schema", "declare", "orders_db", "--file", str(tmp_path / "v2.sql"))
    run("migrate", "new", "-m", "status index", "--id", "orders_db")
    up = json.loads(run("migrate", "up", "--id", "orders_db", "--json").stdout)
    assert up["pre_migration_backup"]["kind"] == "pre-migration"
    listed = json.loads(run("backup", "list", "--json").stdout)["backups"]
    assert [b["kind"] for b in listed] == ["pre-migration"]
    # already at head: nothing to protect, no second backup
    run("migrate", "up", "--id", "orders_db")
    assert len(json.loads(run("backup", "list", "--json").stdout)["backups"]) == 1


def test_a_benchmark_line_cut_short_does_not_swallow_the_next(project: Path, tmp_path: Path):
    run = Runner(project, None)
    migrated(run, tmp_path)
    run("seed", "--rows", "300")
    (tmp_path / "q.sql").write_text(ORDER_LIST)
    run("query", "order_list", "--file", str(tmp_path / "q.sql"))
    log = component(run) / "benchmarks.jsonl"
    log.write_bytes(b'{"kind": "index-benchmark", "name": "cut sho')  # a crash mid-append
    run("bench", "order_list", "--repeat", "3", "--warmup", "0")
    lines = log.read_bytes().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["name"] == "order_list"


def test_advise_over_the_spec_skips_the_queries_this_schema_cannot_run(project: Path, tmp_path: Path):
    run = Runner(project, None)
    migrated(run, tmp_path)  # customers and orders only: most spec queries need more tables
    run("seed", "--rows", "200")
    advice = json.loads(run("advise", "--json").stdout)  # no workload.sql: the spec's queries
    assert [q["query"] for q in advice["queries"]] == ["customer_orders_by_status",
                                                      "unpaid_orders_older_than"]
    assert "order_with_items" in advice["skipped"] and "payment_by_provider_reference" in advice["skipped"]
    assert "skipped" in advice["summary"]
