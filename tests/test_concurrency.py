"""Concurrent writers on one plan: every process's ticks survive (no lost update)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from helpers.cli import conductor
from helpers.processes import Forker

from conductor_magics.workspace.plan import parse_plan
from conductor_magics.workspace.tracks import read_tracks

CONDUCTOR = Path(sys.executable).parent / "conductor"

#: A Session API writer: waits for the go file, then ticks its share of the tasks; with
#: ``churn`` it first ticks and unticks each of them a few times to widen the races.
WRITER = textwrap.dedent("""
    import os
    import sys
    import time

    from conductor_magics.session import Session

    root, go, share, workers, churn = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    session = Session.open(root=root, user=f"writer-{share}")
    plan = session.workspace.component("orders_db").read_plan()
    mine = [t.number for i, t in enumerate(t for t in plan.items() if "Verification" not in t.name)
            if i % workers == share]
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.0005)
    for _round in range(churn):
        for number in mine:
            session.task("done", number, "orders_db")
            session.task("undo", number, "orders_db")
    for number in mine:
        result = session.task("done", number, "orders_db")
        assert result.after == "done", result
    print("done", len(mine), flush=True)
""")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CONDUCTOR_ROOT"}


def item_numbers(plan_path: Path) -> list[tuple[str, str, str]]:
    plan = parse_plan(plan_path.read_bytes(), plan_path)
    return [(t.number, t.name, t.state) for t in plan.items()]


def check_workspace(project: Path, original_plan: bytes) -> None:
    """Every file parses; plan.md differs only in marks; both files say In Progress."""
    ws = project / "storage-conductor"
    plan_path = ws / "storages" / "orders_db" / "plan.md"
    data = plan_path.read_bytes()
    assert len(data) == len(original_plan)
    assert all(a == b or (a, b) == (ord(" "), ord("x")) for a, b in zip(original_plan, data, strict=True))
    meta = json.loads((ws / "storages" / "orders_db" / "metadata.json").read_text())
    assert list(meta) == ["id", "title", "type", "storage_type", "backend", "status", "created",
                          "updated"]
    assert meta["status"] == "In Progress"
    tracks = read_tracks(ws / "tracks.md")
    assert tracks.problems == []
    assert [(r.id, r.status) for r in tracks.rows] == [("orders_db", "In Progress"),
                                                       ("customer_events", "Planning")]
    assert list(ws.rglob(".*.conductor-tmp-*")) == []
    lint = conductor("lint", root=project, env=_env())
    assert lint.returncode == 0, lint.stdout + lint.stderr


def _run_session_writers(project: Path, tmp_path: Path, workers: int, churn: int) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, str(script), str(project), str(go), str(i),
                               str(workers), str(churn)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
             for i in range(workers)]
    for proc in procs:
        assert proc.stdout.readline().strip() == b"ready", proc.stderr.read().decode()
    go.touch()  # every writer starts at the same moment
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        assert out.split()[0] == b"done" and int(out.split()[1]) >= 17, out


@pytest.mark.slow
@pytest.mark.parametrize(("workers", "churn"), [(2, 0), (2, 2), (3, 1)])
def test_session_writers_lose_no_tick(unlocked_project: Path, tmp_path: Path, workers: int,
                                     churn: int) -> None:
    project = unlocked_project
    plan_path = project / "storage-conductor" / "storages" / "orders_db" / "plan.md"
    original = plan_path.read_bytes()
    _run_session_writers(project, tmp_path, workers, churn)
    items = item_numbers(plan_path)
    work = [(n, s) for n, name, s in items if "Verification" not in name]
    gates = [(n, s) for n, name, s in items if "Verification" in name]
    assert len(work) == 53
    assert [n for n, s in work if s != "done"] == [], "lost update: a tick is missing"
    assert all(s == "todo" for _n, s in gates)
    check_workspace(project, original)


@pytest.mark.slow
def test_cli_writers_lose_no_tick(unlocked_project: Path, tmp_path: Path) -> None:
    """Two sequences of `conductor task done` processes, odd- and even-numbered tasks (each a
    real process, forked from a warm one so that they overlap in their writes, not in
    Python's start-up)."""
    project = unlocked_project
    forker = Forker(tmp_path, ["conductor_magics.cli", "conductor_magics.session"])
    plan_path = project / "storage-conductor" / "storages" / "orders_db" / "plan.md"
    original = plan_path.read_bytes()
    numbers = [n for n, name, _s in item_numbers(plan_path) if "Verification" not in name]
    shares = [numbers[0::2], numbers[1::2]]
    assert min(len(s) for s in shares) >= 20
    failures: list[str] = []
    barrier = threading.Barrier(len(shares))

    def tick_all(share: list[str]) -> None:
        barrier.wait()
        for number in share:
            child = forker.start(argv=["--root", str(project), "task", "done", "orders_db", number],
                                 env=_env())
            if child.wait() != 0 or "Traceback" in child.output():
                failures.append(f"{number}: {child.returncode} {child.output()}")

    threads = [threading.Thread(target=tick_all, args=(share,)) for share in shares]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    forker.close()
    assert not any(t.is_alive() for t in threads), "a writer hung"
    assert failures == []
    assert time.monotonic() - started < 120
    states = {n: s for n, _name, s in item_numbers(plan_path)}
    assert [n for n in numbers if states[n] != "done"] == [], "lost update: a tick is missing"
    check_workspace(project, original)
