"""Crash safety: a writer ticking and unticking tasks is SIGKILLed at random moments.

After every kill each file must be whole: plan.md differs from the original only in
mark bytes, metadata.json is valid JSON with its keys in order, tracks.md has both
rows. Temporary files left by killed writers are removed by ``conductor lint --fix``.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers.cli import conductor
from helpers.workspace import EXAMPLE, without_phase_kind_locks

from conductor_magics.workspace.plan import parse_plan
from conductor_magics.workspace.tracks import read_tracks

MIN_TICKS = 300
MIN_KILLS = 30
TIME_BUDGET_S = 90.0  # a hang guard; a normal run takes ~20 s

WRITER = textwrap.dedent("""
    import random
    import sys
    from datetime import UTC, datetime, timedelta

    from conductor_magics.session import Session

    root, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    base = datetime(2027, 1, 1, tzinfo=UTC)

    def clock():
        # a different moment on every call, so every tick rewrites metadata.json and
        # often the Updated Date of tracks.md
        return base + timedelta(minutes=rng.randrange(0, 2_000_000))

    session = Session.open(root=root, user="crash-writer", clock=clock)
    component = session.workspace.component("orders_db")
    # never the verification tasks: no phase is ever finished, so no gate gets in the way
    states = {t.number: t.state for t in component.read_plan().items() if "Verification" not in t.name}
    numbers = sorted(states)
    print("ready", flush=True)
    n = 0
    while True:
        number = rng.choice(numbers)
        result = session.task("undo" if states[number] == "done" else "done", number, "orders_db")
        states[number] = result.after
        n += 1
        print(n, flush=True)
""")

_MARK_LINE = re.compile(rb"^[ \t]*[-*+][ \t]+\[([ xX~!-])\]")


def mark_offsets(data: bytes) -> set[int]:
    """Byte offsets of every checkbox mark, found line by line with a regex."""
    offsets: set[int] = set()
    pos = 0
    for line in data.split(b"\n"):
        match = _MARK_LINE.match(line)
        if match:
            offsets.add(pos + match.start(1))
        pos += len(line) + 1
    return offsets


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CONDUCTOR_ROOT"}


def tmp_files(ws: Path) -> list[Path]:
    return sorted(p for p in ws.rglob("*") if ".conductor-tmp-" in p.name)


class Checker:
    def __init__(self, ws: Path):
        self.ws = ws
        self.plan_path = ws / "storages" / "orders_db" / "plan.md"
        self.meta_path = ws / "storages" / "orders_db" / "metadata.json"
        self.original_plan = self.plan_path.read_bytes()
        self.offsets = mark_offsets(self.original_plan)
        assert len(self.offsets) == 61
        self.meta_keys = list(json.loads(self.meta_path.read_text()))
        self.others = {p: p.read_bytes() for p in ws.rglob("*")
                       if p.is_file() and p not in (self.plan_path, self.meta_path, ws / "tracks.md")}

    def check(self, when: str) -> None:
        data = self.plan_path.read_bytes()
        assert len(data) == len(self.original_plan), when
        changed = [i for i, (a, b) in enumerate(zip(self.original_plan, data, strict=True)) if a != b]
        assert set(changed) <= self.offsets, (when, [i for i in changed if i not in self.offsets])
        assert all(data[i:i + 1] in (b" ", b"x") for i in changed), when
        plan = parse_plan(data, self.plan_path)
        assert len(plan.phases) == 8 and len(list(plan.items())) == 61, when

        meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        assert list(meta) == self.meta_keys, when
        assert meta["status"] in ("Planning", "In Progress"), when
        assert self.meta_path.read_bytes().endswith(b"}\n"), when

        tracks = read_tracks(self.ws / "tracks.md")
        assert [r.id for r in tracks.rows] == ["orders_db", "customer_events"], when
        assert tracks.problems == [], when
        assert all(r.status in ("Planning", "In Progress") for r in tracks.rows), when

        for path, content in self.others.items():
            assert path.read_bytes() == content, (when, path)


@pytest.mark.slow
def test_sigkill_never_leaves_half_a_file(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(EXAMPLE, project / "storage-conductor")
    ws = project / "storage-conductor"
    without_phase_kind_locks(ws)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    checker = Checker(ws)
    rng = random.Random(20261124)

    ticks = kills = caught_mid_write = 0
    dead_pids: set[int] = set()
    started = time.monotonic()
    while kills < MIN_KILLS or ticks < MIN_TICKS:
        assert time.monotonic() - started < TIME_BUDGET_S, (kills, ticks)
        proc = subprocess.Popen([sys.executable, str(script), str(project), str(rng.randrange(10**9))],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
        assert proc.stdout.readline().strip() == b"ready", proc.stderr.read().decode()
        # a few ms up to a few hundred; once enough kills are done, longer runs reach the
        # tick count sooner on a slow machine
        time.sleep(rng.uniform(0.003, 0.300 if kills < MIN_KILLS else 0.800))
        # Freeze it first to see whether the kill lands in the middle of a write.
        proc.send_signal(signal.SIGSTOP)
        if any(str(proc.pid) in p.name for p in tmp_files(ws)):
            caught_mid_write += 1
        proc.kill()
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL, err.decode()
        assert b"Traceback" not in err, err.decode()
        dead_pids.add(proc.pid)
        kills += 1
        ticks += len(out.split())
        checker.check(f"after kill {kills} ({ticks} ticks)")

    # Keep killing a writer mid-write (frozen while its temp file exists) until at least
    # one stale temp file is left behind, so the clean-up below is really exercised.
    deadline = time.monotonic() + 15
    while caught_mid_write == 0:
        assert time.monotonic() < deadline, "never caught a writer in the middle of a write"
        proc = subprocess.Popen([sys.executable, str(script), str(project), str(rng.randrange(10**9))],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
        assert proc.stdout.readline().strip() == b"ready"
        for _ in range(400):
            time.sleep(rng.uniform(0.0005, 0.003))
            proc.send_signal(signal.SIGSTOP)
            if any(str(proc.pid) in p.name for p in tmp_files(ws)):
                caught_mid_write += 1
                break
            proc.send_signal(signal.SIGCONT)
        proc.kill()
        out, _err = proc.communicate(timeout=10)
        dead_pids.add(proc.pid)
        ticks += len(out.split())
        checker.check("after a mid-write kill")

    stale = tmp_files(ws)
    assert stale, "a writer killed mid-write left no temp file"
    for path in stale:
        match = re.fullmatch(r"\.(plan\.md|metadata\.json|tracks\.md)\.conductor-tmp-(\d+)-[0-9a-f]{8}",
                             path.name)
        assert match, path
        assert int(match[2]) in dead_pids, path

    lint = conductor("lint", root=project, env=_env())
    assert lint.returncode == 1, lint.stdout + lint.stderr
    for path in stale:
        assert f"{path.resolve()}: warning: temporary file" in lint.stdout, lint.stdout

    fix = conductor("lint", "--fix", "--json", root=project, env=_env())
    assert "Traceback" not in fix.stdout + fix.stderr
    report = json.loads(fix.stdout)
    assert all(p["code"] != "stale-temp-file" for p in report["problems"]), report
    assert len([f for f in report["fixed"] if f.endswith(": removed")]) == len(stale), report
    assert tmp_files(ws) == []
    # Whatever a kill between two files left (tracks.md behind metadata.json) is fixed too.
    assert fix.returncode == 0, fix.stdout

    again = conductor("lint", root=project, env=_env())
    assert again.returncode == 0, again.stdout
    assert "temporary file" not in again.stdout
    checker.check("after lint --fix")
    assert ticks >= MIN_TICKS and kills >= MIN_KILLS
