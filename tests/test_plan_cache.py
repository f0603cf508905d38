"""The plan parse cache (issue 16): a cached structure is used only for the bytes it was
found for, or for bytes that differ in checkbox marks alone; anything else is parsed again."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conductor_magics.workspace import plan as plan_mod
from conductor_magics.workspace.plan import cached_parse, parse_plan, read_plan

ROOT = Path(__file__).resolve().parent.parent


def _big_plan(phases: int = 6, tasks: int = 40) -> bytes:
    out = ["# Plan\n\n"]
    for p in range(1, phases + 1):
        out.append(f"## Phase {p}: Schema {p}\n\n")
        for t in range(1, tasks + 1):
            out.append(f"- [{'x' if t % 5 == 0 else ' '}] Task {p}.{t} create table t_{p}_{t}\n")
            if t % 4 == 0:
                out.append(f"    - [ ] Sub {p}.{t} check it\n")
        out.append("\n```\n- [ ] not a task\n```\n\n")
    return "".join(out).encode()


@pytest.fixture(autouse=True)
def private_tmp(tmp_path, monkeypatch):
    """Each test has its own temp folder (so its own cache files) and an empty memory cache."""
    temp = tmp_path / "tmpdir"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    plan_mod._memory_cache.clear()
    yield temp
    plan_mod._memory_cache.clear()


def _same(a, b) -> None:
    assert a.to_json() == b.to_json()
    assert [dataclasses.asdict(t) for t in a.items()] == [dataclasses.asdict(t) for t in b.items()]
    assert [(t.key, t.mark_offset, t.last_line, t.phase_index) for t in a.items()] == \
        [(t.key, t.mark_offset, t.last_line, t.phase_index) for t in b.items()]
    assert [t.number for t in a.loose_tasks] == [t.number for t in b.loose_tasks]


def test_cached_parse_equals_parse_for_same_and_mark_only_changes(tmp_path):
    path = tmp_path / "plan.md"
    data = _big_plan()
    _same(cached_parse(data, path), parse_plan(data, path))
    first = parse_plan(data, path)
    ticked = bytearray(data)
    for task in list(first.items())[::7]:
        ticked[task.mark_offset] = ord("x" if task.mark == " " else "~")
    ticked = bytes(ticked)
    got = cached_parse(ticked, path)
    _same(got, parse_plan(ticked, path))
    assert got.counts() != first.counts()


def test_every_call_returns_a_fresh_plan(tmp_path):
    path = tmp_path / "plan.md"
    data = _big_plan()
    a = cached_parse(data, path)
    a.phases[0].tasks[0].mark = "!"
    a.phases[0].tasks.clear()
    _same(cached_parse(data, path), parse_plan(data, path))


@pytest.mark.parametrize("edit", [
    lambda d: d.replace(b"Task 2.3 create", b"Task 2.3 alter", 1),          # a renamed task
    lambda d: d.replace(b"## Phase 3", b"### Notes\n\n## Phase 3", 1),      # a new heading
    lambda d: d.replace(b"- [ ] Task 1.2", b"- [ ] Task 1.2\n- [ ] Task 1.2", 1),  # a sibling
    lambda d: d.replace(b"- [ ] Task 1.1", b"  [ ] Task 1.1", 1),           # a bullet gone
    lambda d: d + b"\n[x]: https://example.com\n",                          # [x] made a link
    lambda d: d.replace(b"[ ] Task 4.1", b"[y] Task 4.1", 1),               # not a mark
])
def test_any_other_change_is_parsed_again(tmp_path, edit):
    path = tmp_path / "plan.md"
    data = _big_plan()
    cached_parse(data, path)
    changed = edit(data)
    _same(cached_parse(changed, path), parse_plan(changed, path))


def test_link_definition_named_like_a_mark_is_never_patched(tmp_path):
    path = tmp_path / "plan.md"
    data = _big_plan() + b"\n[ ]: https://example.com\n"
    cached_parse(data, path)
    task = next(parse_plan(data, path).items())
    ticked = data[:task.mark_offset] + b"x" + data[task.mark_offset + 1:]
    _same(cached_parse(ticked, path), parse_plan(ticked, path))


def test_a_damaged_or_foreign_cache_file_is_ignored(tmp_path):
    path = tmp_path / "plan.md"
    data = _big_plan()
    cached_parse(data, path)
    cache_file = plan_mod._cache_file(plan_mod._cache_key(path))
    assert cache_file.exists() and (cache_file.parent.stat().st_mode & 0o077) == 0
    for junk in (b"", b"\x00garbage", cache_file.read_bytes()[:1000]):
        cache_file.write_bytes(junk)
        plan_mod._memory_cache.clear()
        _same(cached_parse(data, path), parse_plan(data, path))
    # a cache written by another parser version: ignored
    plan_mod._memory_cache.clear()
    real = plan_mod._cache_version
    try:
        plan_mod._cache_version = "another-version"
        cached_parse(data.replace(b"Task 1.1", b"Task 1.1 renamed"), path)
    finally:
        plan_mod._cache_version = real
    plan_mod._memory_cache.clear()
    _same(cached_parse(data, path), parse_plan(data, path))


def test_a_new_process_uses_the_cache_a_tick_left(tmp_path, private_tmp):
    """The CLI is a new process on each command: after a tick the next read does not parse."""
    path = tmp_path / "plan.md"
    data = _big_plan()
    path.write_bytes(data)
    plan = read_plan(path)
    task = plan.phases[1].tasks[2]
    new = data[:task.mark_offset] + b"x" + data[task.mark_offset + 1:]
    path.write_bytes(new)
    plan_mod.remember_plan(parse_plan(new, path))
    code = (
        "import sys\n"
        "from conductor_magics.workspace import plan as m\n"
        "def boom(*a, **k):\n"
        "    raise SystemExit('parsed')\n"
        "m.parse_plan = boom\n"
        f"p = m.read_plan(m.Path({str(path)!r}))\n"
        "print(p.counts()['tasks_done'])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(private_tmp)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == parse_plan(new, path).counts()["tasks_done"]


def test_small_plans_leave_no_cache_file(tmp_path):
    path = tmp_path / "plan.md"
    cached_parse(b"## Phase 1: Schema\n\n- [ ] one\n", path)
    assert not plan_mod._cache_file(plan_mod._cache_key(path)).exists()


def _mark_patterns(data: bytes) -> list[bytes]:
    """The plan with its phases all closed, one in progress, all skipped, all open..."""
    plan = parse_plan(data, "plan.md")
    patterns = []
    for fill in ("x", "-", " "):
        changed = bytearray(data)
        for phase in plan.phases[:3]:
            for task in phase.items():
                changed[task.mark_offset] = ord(fill)
        patterns.append(bytes(changed))
    with_progress = bytearray(patterns[0])
    with_progress[list(plan.phases[4].items())[3].mark_offset] = ord("~")
    patterns.append(bytes(with_progress))
    return [data, *patterns]


def test_phases_read_from_the_cache_answer_before_their_tasks_are_built(tmp_path):
    # A phase made from the cache builds its tasks on first use; finished, next_task, find
    # and by_key answer as a fresh parse does, building only the phases they must look into.
    path = tmp_path / "plan.md"
    data = _big_plan()
    cached_parse(data, path)
    for variant in _mark_patterns(data):
        fresh = parse_plan(variant, path)
        cached = cached_parse(variant, path)
        assert all(p._pending_rows() is not None for p in cached.phases)
        assert [p.finished for p in cached.phases] == [p.finished for p in fresh.phases]
        assert all(p._pending_rows() is not None for p in cached.phases)  # marks only
        want = fresh.next_task()
        got = cached.next_task()
        assert (got.number, got.mark) == (want.number, want.mark)
        # built: the phase of the answer, and the one of the first open task on the way
        first_open = next((t.phase_index for t in fresh.items() if t.mark == " "), got.phase_index)
        built = [p.index for p in cached.phases if p._pending_rows() is None]
        assert built == sorted({got.phase_index, first_open})
        for number in ("2.7", "5.40", "6.1"):
            assert cached_parse(variant, path).find(number).mark_offset == fresh.find(number).mark_offset
        key = fresh.find("4.12").key
        lookup = cached_parse(variant, path)
        assert lookup.by_key(key).mark_offset == fresh.find("4.12").mark_offset
        assert [p.index for p in lookup.phases if p._pending_rows() is None] == [3]
        _same(cached, fresh)  # and everything else, once built


def test_a_tick_builds_only_its_phase_and_the_rest_follow_the_new_bytes(tmp_path):
    path = tmp_path / "plan.md"
    path.write_bytes(_big_plan())
    read_plan(path)  # the cache
    plan = read_plan(path)
    task = plan_mod.cached_parse(plan.data, path).find("3.3")
    new_plan, new_task, before = plan_mod.write_task_state(path, task.key, "done", plan)
    assert (before, new_task.state) == ("todo", "done")
    assert [p.index for p in new_plan.phases if p._pending_rows() is None] == [2]
    # the phases not built read their marks from the written bytes
    _same(new_plan, parse_plan(path.read_bytes(), path))
