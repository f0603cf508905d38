"""Hostile input: statements that never end (issue 10, item 5).

A workload query, a cell or a schema trigger that runs forever must not hang `sql`,
`txn`, `query`, `bench`, `advise` or `seed`: with ``--timeout 1`` each ends within a
few seconds, says so in one line (exit 1), leaves the workspace files as they were and
the data unchanged (the transaction rolled back), on SQLite and on a real PostgreSQL.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers.hostile import conductor, refused, tree
from sqlalchemy import text

from conductor_magics.engine.connection import make_engine

#: counts forever (PostgreSQL also spills hundreds of MB to temp files meanwhile)
FOREVER = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r) SELECT count(*) FROM r"
TIMED_OUT = r"^conductor: error: statement timed out after 1 s \(.*\); stopped and rolled back"
#: seconds a timed-out command may take in all (CLI start-up on a busy 2-core machine included)
PROMPT = 30

SQLITE_TRIGGER = """CREATE TRIGGER slow_forever BEFORE INSERT ON slow BEGIN
  SELECT count(*) FROM (WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r) SELECT n FROM r);
END"""
PG_TRIGGER = [
    """CREATE FUNCTION slow_forever() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM count(*) FROM (WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r)
                         SELECT n FROM r) AS endless;
  RETURN NEW;
END $$""",
    "CREATE TRIGGER slow_forever BEFORE INSERT ON slow FOR EACH ROW EXECUTE FUNCTION slow_forever()",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def hostile(request, project: Path, tmp_path: Path):
    """(url, workspace): a database holding table t (empty), table slow whose insert
    trigger never ends, and view endless that never ends."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else \
        f"sqlite:///{tmp_path / 'live.sqlite'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql("CREATE TABLE slow (id INTEGER PRIMARY KEY, v INTEGER)")
        conn.exec_driver_sql("CREATE VIEW endless AS WITH RECURSIVE r(n) AS "
                             "(SELECT 1 UNION ALL SELECT n+1 FROM r) SELECT n FROM r")
        for statement in (PG_TRIGGER if request.param == "postgresql" else [SQLITE_TRIGGER]):
            conn.exec_driver_sql(statement)
    engine.dispose()
    return url, project / "storage-conductor"


def rows_in(url: str, table: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    finally:
        engine.dispose()


def timed_out(project: Path, url: str, workspace: Path, *args: str) -> None:
    before = tree(workspace)
    started = time.monotonic()
    proc = conductor(project, *args, "--url", url, "--id", "orders_db", "--timeout", "1",
                     timeout=120)
    elapsed = time.monotonic() - started
    refused(proc, 1, TIMED_OUT, before, workspace)
    assert elapsed < PROMPT, f"{args[0]} took {elapsed:.1f} s to give up"


def test_a_cell_that_never_ends_is_stopped_and_rolled_back(hostile, project: Path, tmp_path: Path):
    url, workspace = hostile
    cell = tmp_path / "cell.sql"
    cell.write_text(f"INSERT INTO t VALUES (1);\n{FOREVER};\n")
    timed_out(project, url, workspace, "sql", "--file", str(cell))
    timed_out(project, url, workspace, "txn", "--file", str(cell))
    assert rows_in(url, "t") == 0  # the INSERT before it was rolled back


def test_a_query_that_never_ends_is_not_recorded(hostile, project: Path, tmp_path: Path):
    url, workspace = hostile
    cell = tmp_path / "forever.sql"
    cell.write_text(FOREVER)
    timed_out(project, url, workspace, "query", "forever", "--file", str(cell))
    # drawing :n's value from a view that never ends is bounded too
    cell.write_text("SELECT n FROM endless WHERE n = :n")
    timed_out(project, url, workspace, "query", "endless", "--file", str(cell))


def test_a_benchmark_of_a_query_that_never_ends_stops(hostile, project: Path, tmp_path: Path):
    url, workspace = hostile
    cell = tmp_path / "forever.sql"
    cell.write_text(FOREVER)
    timed_out(project, url, workspace, "bench", "forever", "--file", str(cell),
              "--repeat", "3", "--warmup", "0")
    assert rows_in(url, "t") == 0


def test_advice_on_a_workload_that_never_ends_stops(hostile, project: Path, tmp_path: Path):
    url, workspace = hostile
    workload = tmp_path / "workload.sql"
    # PostgreSQL's advisor only plans queries, so it is the drawing of :n from the endless
    # view that must stop there; SQLite's advisor also runs each query on its scratch copy.
    workload.write_text("-- name: endless\nSELECT n FROM endless WHERE n = :n;\n")
    timed_out(project, url, workspace, "advise", "--workload", str(workload))
    if url.startswith("sqlite"):
        workload.write_text(f"-- name: forever\n{FOREVER};\n")
        timed_out(project, url, workspace, "advise", "--workload", str(workload))


def test_seeding_a_table_whose_trigger_never_ends_stops(hostile, project: Path):
    url, workspace = hostile
    timed_out(project, url, workspace, "seed", "slow", "--rows", "5")
    assert rows_in(url, "slow") == 0
