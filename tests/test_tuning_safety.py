"""Kill tests of the tuning steps (issue 10, items 6 and 7): `advise --apply` killed at
random points is finished by the next run, and a killed `bench --index` never leaves its
candidate index behind. Real processes on real databases, SIGKILL at random moments: each
killed run is a child forked from a warm process (helpers.processes), so it starts at once
and the kills land in the work, not in Python's imports."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers.hostile import conductor, env
from helpers.orders import make_orders
from helpers.processes import Forker
from helpers.sample_ddl import ORDER_LIST
from helpers.sample_ddl import TUNING_SCHEMA as SCHEMA
from sqlalchemy import create_engine, inspect, text

from conductor_magics.steps.tuning import TEST_PAUSE_ENV
from conductor_magics.workspace.intents import ADVISE_INTENT

COMPONENT = Path("storage-conductor") / "storages" / "orders_db"
INDEX = "ix_orders_customer_id_status_created_at"
KILLS = 20
PAUSE = 0.2  # seconds between the steps of advise --apply (test-only hook)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


#: what a killed child needs imported before it is forked
WARM = ["sqlalchemy", "alembic", "pandas", "conductor_magics.cli", "conductor_magics.live_database",
        "conductor_magics.steps.tuning", "conductor_magics.steps.migrate", "conductor_magics.engine.bench",
        "conductor_magics.engine.advisor", "conductor_magics.engine.migrations",
        "conductor_magics.engine.connection"]


@pytest.fixture(scope="module")
def forker(tmp_path_factory):
    """One warm forking process for the module's killed runs."""
    with Forker(tmp_path_factory.mktemp("forker"), WARM) as forker:
        yield forker


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    """A project with customers and orders migrated, seeded and one workload query."""
    from helpers.workspace import EXAMPLE

    base = tmp_path_factory.mktemp("seeded")
    project = base / "project"
    project.mkdir()
    shutil.copytree(EXAMPLE, project / "storage-conductor")
    (base / "schema.sql").write_text(SCHEMA)
    (base / "q.sql").write_text(ORDER_LIST)
    ok(conductor(project, "implement", "orders_db"))
    ok(conductor(project, "schema", "declare", "orders_db", "--file", str(base / "schema.sql")))
    ok(conductor(project, "migrate", "new", "-m", "customers and orders", "--id", "orders_db"))
    ok(conductor(project, "migrate", "up", "--id", "orders_db"))
    ok(conductor(project, "seed", "--rows", "200"))
    ok(conductor(project, "seed", "orders", "--rows", "3000"))
    ok(conductor(project, "query", "order_list", "--file", str(base / "q.sql")))
    return project


def copy_of(seeded: Path, folder: Path) -> Path:
    shutil.copytree(seeded, folder, symlinks=True)
    return folder


def started_applying(component: Path, schema_before: bytes, versions_before: set[str]) -> bool:
    """Whether advise --apply has begun writing (any of its first traces, old or new code)."""
    if (component / ADVISE_INTENT).exists():
        return True
    if (component / "schema.sql").read_bytes() != schema_before:
        return True
    return bool(set(os.listdir(component / "migrations" / "versions")) - versions_before)


def kill_apply_midway(forker: Forker, project: Path, rng: random.Random) -> str:
    """Start `advise --apply`, wait for one of its steps (chosen at random) to begin,
    SIGKILL it a random moment later; returns the exit code (for failure messages)."""
    component = project / COMPONENT
    schema_before = (component / "schema.sql").read_bytes()
    versions_before = set(os.listdir(component / "migrations" / "versions"))
    intent = component / ADVISE_INTENT

    def recorded() -> bool:
        with contextlib.suppress(OSError, ValueError):
            return bool(json.loads(intent.read_text()).get("revision"))
        return False

    # after: the intent or the first write; its revision recorded; schema.sql written
    waits = {"start": (lambda: True, 6 * PAUSE), "recorded": (recorded, 10 * PAUSE),
             "declared": (lambda: (component / "schema.sql").read_bytes() != schema_before,
                          2 * PAUSE)}
    reached, spread = waits[rng.choice(sorted(waits))]
    proc = forker.start(argv=["--root", str(project), "advise", "--apply"], cwd=project,
                        env=env(**{TEST_PAUSE_ENV: str(PAUSE)}))
    try:
        deadline = time.monotonic() + 120
        while not (started_applying(component, schema_before, versions_before) and reached()):
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.005)
        time.sleep(rng.uniform(0, spread))
        proc.kill()
    finally:
        proc.wait()
    return f"exit {proc.returncode}"


def revisions_creating(component: Path, index: str) -> list[str]:
    return [p.name for p in (component / "migrations" / "versions").glob("*.py")
            if re.search(rf"create_index\(\s*['\"]{index}['\"]", p.read_text())]


def state_after_kill(component: Path) -> str:
    """Which window the kill landed in."""
    intent = component / ADVISE_INTENT
    if not intent.exists():
        return "done" if INDEX in (component / "schema.sql").read_text() else "not started"
    recorded = json.loads(intent.read_text()).get("revision")
    if not recorded:
        return "intent, no revision recorded"
    engine = create_engine(f"sqlite:///{component / 'dev.sqlite'}")
    try:
        with engine.connect() as conn:
            live = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()
    return "revision applied" if live == recorded else "revision recorded, not applied"


def one_kill_and_recovery(forker: Forker, seeded: Path, folder: Path, seed: int,
                          migrate_check: bool) -> str:
    project = copy_of(seeded, folder)
    component = project / COMPONENT
    how = kill_apply_midway(forker, project, random.Random(seed))
    how += ": " + state_after_kill(component)
    again = conductor(project, "advise", "--apply", "--json")
    assert again.returncode == 0, (how, again.stderr[-2000:])
    assert "Traceback" not in again.stderr
    schema = (component / "schema.sql").read_text()
    assert len(re.findall(rf"CREATE INDEX {INDEX}\b", schema)) == 1, (how, schema)
    creating = revisions_creating(component, INDEX)
    assert len(creating) == 1, (how, creating)
    assert not (component / ADVISE_INTENT).exists(), how
    engine = create_engine(f"sqlite:///{component / 'dev.sqlite'}")
    try:
        with engine.connect() as conn:
            assert INDEX in {ix["name"] for ix in inspect(conn).get_indexes("orders")}, how
            live = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()
    assert live in creating[0], (how, live, creating)  # the live database is at that revision
    if migrate_check:  # the full gate (slow: round trips on scratch databases) on some runs
        check = conductor(project, "migrate", "check", "--id", "orders_db", "--json")
        assert check.returncode == 0, (how, check.stdout[-3000:], check.stderr[-1000:])
    return how


def test_advise_apply_killed_at_random_points_is_finished_by_the_next_run(forker: Forker,
                                                                        seeded: Path,
                                                                        tmp_path: Path):
    """SIGKILL `advise --apply` at random points (>= 20 runs, two at a time): the next
    `advise --apply` completes, schema.sql declares the index once, exactly one revision
    creates it, the live database is at that revision (and `migrate check` passes: checked
    on every fourth run, as it is slow)."""
    pool = ThreadPoolExecutor(max_workers=2)
    try:
        futures = [pool.submit(one_kill_and_recovery, forker, seeded, tmp_path / f"run{i}",
                               1000 + i, i % 4 == 0) for i in range(KILLS)]
        windows = {future.result().split(": ", 1)[1] for future in futures}
    finally:
        pool.shutdown(cancel_futures=True)
    # the kills landed in several of the windows between the steps
    assert len(windows - {"not started"}) >= 3, windows


def test_an_interrupted_apply_is_reported_by_lint_and_status_and_can_be_abandoned(
        forker: Forker, seeded: Path, tmp_path: Path):
    project = copy_of(seeded, tmp_path / "project")
    component = project / COMPONENT
    schema_before = (component / "schema.sql").read_bytes()
    versions_before = set(os.listdir(component / "migrations" / "versions"))
    # killed after its revision was written and recorded, before the upgrade

    proc = forker.start(argv=["--root", str(project), "advise", "--apply"], cwd=project,
                        env=env(**{TEST_PAUSE_ENV: "12"}))  # long enough for the checks below
    try:
        deadline = time.monotonic() + 90
        while not (component / ADVISE_INTENT).exists() or \
                not json.loads((component / ADVISE_INTENT).read_text()).get("revision"):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        # while it runs, a second apply is refused, and lint does not call it interrupted
        running = conductor(project, "advise", "--apply")
        assert running.returncode == 2 and "is running in process" in running.stderr
        assert "advise --apply was interrupted" not in conductor(project, "lint").stdout
    finally:
        proc.kill()
        proc.wait()
    lint = conductor(project, "lint")
    assert lint.returncode == 1 and "advise --apply was interrupted" in lint.stdout, lint.stdout
    assert "--abandon" in lint.stdout
    status = conductor(project, "status")
    assert "advise --apply was interrupted" in status.stdout + status.stderr
    abandoned = ok(conductor(project, "advise", "--abandon"))
    assert "undid" in abandoned.stdout
    assert (component / "schema.sql").read_bytes() == schema_before
    assert set(os.listdir(component / "migrations" / "versions")) == versions_before
    assert not (component / ADVISE_INTENT).exists()
    assert "advise --apply was interrupted" not in conductor(project, "lint").stdout
    ok(conductor(project, "migrate", "check", "--id", "orders_db"))


def test_an_old_half_applied_schema_and_an_index_already_live_do_not_fail_the_apply(
        seeded: Path, tmp_path: Path):
    """schema.sql already declaring the index (a run of an older version killed midway)
    makes no duplicate; an index the live database already has is taken as applied."""
    project = copy_of(seeded, tmp_path / "project")
    component = project / COMPONENT
    ddl = f"CREATE INDEX {INDEX} ON orders (customer_id, status, created_at);"
    with open(component / "schema.sql", "a") as out:
        out.write(f"\n\n-- Indexes recommended by `conductor advise`\n{ddl}\n")
    # and a second index declared in schema.sql and created by hand in the live database
    with open(component / "schema.sql", "a") as out:
        out.write("CREATE INDEX ix_orders_total_cents ON orders (total_cents);\n")
    engine = create_engine(f"sqlite:///{component / 'dev.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE INDEX ix_orders_total_cents ON orders (total_cents)"))
    engine.dispose()
    ok(conductor(project, "advise", "--apply"))
    schema = (component / "schema.sql").read_text()
    assert schema.count(ddl) == 1
    assert len(revisions_creating(component, INDEX)) == 1
    ok(conductor(project, "migrate", "check", "--id", "orders_db"))


# --------------------------------------------------------------------------- bench --index

BENCH_CHILD = """
import sys
from conductor_magics.engine.bench import benchmark
from conductor_magics.engine.connection import make_engine
engine = make_engine(sys.argv[1])
print("go", flush=True)
benchmark(engine, "SELECT id, amount FROM orders WHERE customer_id = :cid", {"cid": 42},
          indexes=["CREATE INDEX ix_orders_customer_id ON orders (customer_id)",
                   "CREATE INDEX ix_orders_amount ON orders (amount)"],
          repeat=200, warmup=1, insert_rows=100)
"""


def orders_indexes(url: str) -> list[str]:
    from conductor_magics.engine.connection import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(ix["name"] for ix in inspect(conn).get_indexes("orders"))
    finally:
        engine.dispose()


def kill_bench(forker: Forker, url: str, delay: float) -> None:
    proc = forker.start(code=BENCH_CHILD, args=[url], env=env())
    try:
        assert proc.wait_for_output("go\n"), proc.output()
        time.sleep(delay)
        proc.kill()
    finally:
        proc.wait()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_killed_bench_never_leaves_its_candidate_index(forker: Forker, url_for, dialect):
    """Issue 10 item 7: SIGKILL `bench --index` at random moments (20 runs): the candidate
    indexes are built inside the run's transaction, never committed, so none is left and
    the next run does not take one for an index that was there before."""
    from conductor_magics.engine.bench import benchmark

    url = url_for(dialect)
    make_orders(url, rows=20_000).dispose()
    before = orders_indexes(url)
    rng = random.Random(7)
    for run in range(KILLS):
        kill_bench(forker, url, rng.uniform(0.0, 1.5))
        assert orders_indexes(url) == before, f"kill {run}: {orders_indexes(url)}"
    from conductor_magics.engine.connection import make_engine

    engine = make_engine(url)
    try:
        result = benchmark(engine, "SELECT id FROM orders WHERE customer_id = :cid", {"cid": 42},
                           indexes=["CREATE INDEX ix_orders_customer_id ON orders (customer_id)"],
                           repeat=3, warmup=0, insert_rows=0)
    finally:
        engine.dispose()
    assert result.arms[1].existed is False
    assert orders_indexes(url) == before


def test_migrate_check_reports_a_live_index_no_revision_created(seeded: Path, tmp_path: Path):
    """What a benchmark killed before this fix left behind (or an index made by hand):
    `migrate check` names it instead of passing."""
    project = copy_of(seeded, tmp_path / "project")
    component = project / COMPONENT
    ok(conductor(project, "migrate", "check", "--id", "orders_db"))
    engine = create_engine(f"sqlite:///{component / 'dev.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE INDEX ix_left_behind ON orders (total_cents)"))
    engine.dispose()
    check = conductor(project, "migrate", "check", "--id", "orders_db", "--json")
    assert check.returncode == 1, check.stdout[-2000:] + check.stderr[-2000:]
    rows = {row["check"]: row for row in json.loads(check.stdout)["checks"]}
    row = rows["live indexes all created by revisions"]
    assert row["status"] == "fail" and "orders.ix_left_behind" in row["detail"], row
