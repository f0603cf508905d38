"""Workspace files under hostile conditions: symbolic links, an editor saving while the tool
ticks, a planted lock, an unwritable plan, output cut by ``head``.

Every test runs the real CLI or real processes on a copy of the example workspace.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers.hostile import conductor, env

from conductor_magics.workspace.plan import parse_plan

ORDERS = Path("storage-conductor") / "storages" / "orders_db"


def _differing_bytes(a: bytes, b: bytes) -> int:
    assert len(a) == len(b)
    return sum(x != y for x, y in zip(a, b, strict=True))


# -- item 9: symbolic links are written through ------------------------------------------------

@pytest.mark.parametrize("absolute", [False, True], ids=["relative-link", "absolute-link"])
def test_symlinked_plan_metadata_tracks_stay_links(unlocked_project: Path, tmp_path: Path,
                                                    absolute: bool) -> None:
    project = unlocked_project
    shared = tmp_path / "shared"
    shared.mkdir()
    folder = project / ORDERS
    workspace = project / "storage-conductor"
    links = {folder / "plan.md": shared / "orders-plan.md",
             folder / "metadata.json": shared / "orders-metadata.json",
             workspace / "tracks.md": shared / "tracks.md"}
    for link, target in links.items():
        target.write_bytes(link.read_bytes())
        link.unlink()
        link.symlink_to(target if absolute else os.path.relpath(target, link.parent))
    before = {target: target.read_bytes() for target in links.values()}

    proc = conductor(project, "task", "done", "orders_db", "1.1")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    for link, target in links.items():
        assert link.is_symlink(), f"{link.name} was replaced by a regular file"
        assert link.resolve() == target.resolve()
    plan_before, plan_after = before[links[folder / "plan.md"]], links[folder / "plan.md"].read_bytes()
    assert _differing_bytes(plan_before, plan_after) == 1
    assert json.loads(links[folder / "metadata.json"].read_text())["status"] == "In Progress"
    assert "| orders_db | Orders database | relational | PostgreSQL | In Progress |" in \
        links[workspace / "tracks.md"].read_text()
    # the stand-alone writers (lint --fix, implement) write through the links too
    proc = conductor(project, "implement", "customer_events")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(link.is_symlink() for link in links)
    assert list(shared.glob(".*conductor-tmp*")) == [] and list(folder.glob(".*conductor-tmp*")) == []


# -- item 10: lint --fix removes only the tool's own stale temporaries --------------------------

def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lint_fix_keeps_user_tmp_files_and_removes_stale_tool_temps(project: Path) -> None:
    folder = project / ORDERS
    dead = _dead_pid()
    user_files = [folder / ".meeting.20261130.notes.tmp", folder / "notes.tmp",
                  folder / ".plan.md.123.abc.tmp", project / "storage-conductor" / "draft.tmp",
                  folder / "backups" / "notes.tmp", folder / "migrations" / "versions" / "x.py.tmp"]
    stale = [folder / f".plan.md.conductor-tmp-{dead}-0123abcd",
             project / "storage-conductor" / f".tracks.md.conductor-tmp-{dead}-89abcdef",
             folder / "backups" / f".20261130-full.tar.conductor-tmp-{dead}-00ff00ff",
             folder / "migrations" / "versions" / f".0001_init.py.conductor-tmp-{dead}-deadbeef",
             folder / "migrations" / f".env.py.conductor-tmp-{dead}-0badf00d"]
    live = folder / f".plan.md.conductor-tmp-{os.getpid()}-feedface"  # its writer still runs
    for path in [*user_files, *stale, live]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"keep me" if path in user_files else b"x" * 1234)

    report = conductor(project, "lint")
    assert report.returncode == 1
    for path in stale:
        line = next((ln for ln in report.stdout.splitlines() if path.name in ln), None)
        assert line is not None, f"{path} not reported:\n{report.stdout}"
        assert "1234 bytes" in line or "1.2 kB" in line, line
    assert live.name not in report.stdout
    assert not any(p.name in report.stdout for p in user_files), report.stdout

    fixed = conductor(project, "lint", "--fix")
    assert "Traceback" not in fixed.stderr, fixed.stderr
    for path in user_files:
        assert path.read_bytes() == b"keep me", f"lint --fix deleted the user's {path.name}"
    for path in stale:
        assert not path.exists(), f"{path} survived lint --fix"
    assert live.exists()


# -- item 12: unwritable files, planted locks, invalid UTF-8, broken pipes ----------------------

def _old_style_lock_path(workspace: Path, tmpdir: Path) -> Path:
    digest = hashlib.sha1(os.path.realpath(workspace).encode()).hexdigest()[:16]
    return tmpdir / "conductor-magics-locks" / f"{digest}.lock"


def test_planted_lock_symlink_neither_breaks_nor_follows(unlocked_project: Path, tmp_path: Path) -> None:
    project = unlocked_project
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    tmpdir.chmod(0o1777)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    # a hostile user plants links where a shared, world-writable lock folder would be
    planted = _old_style_lock_path(project / "storage-conductor", tmpdir)
    planted.parent.mkdir(mode=0o777)
    planted.parent.chmod(0o777)
    planted.symlink_to(victim)
    loop = planted.with_name("loop.lock")
    loop.symlink_to(loop)

    extra = {"TMPDIR": str(tmpdir), "XDG_RUNTIME_DIR": ""}
    proc = conductor(project, "task", "done", "orders_db", "1.1", extra_env=extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert victim.read_text() == "precious\n"
    private = tmpdir / f"conductor-magics-{os.getuid()}"
    st = os.lstat(private)
    assert not os.path.islink(private) and st.st_uid == os.getuid() and st.st_mode & 0o777 == 0o700

    # the private folder itself replaced by a link (or opened up to others) is refused or repaired
    private.rename(tmp_path / "moved")
    private.symlink_to(tmp_path / "moved")
    proc = conductor(project, "task", "undo", "orders_db", "1.1", extra_env=extra)
    from helpers.hostile import one_line_error

    one_line_error(proc, 2, r"lock folder .* is not a private folder")
    private.unlink()
    (tmp_path / "moved").rename(private)
    private.chmod(0o777)
    proc = conductor(project, "task", "undo", "orders_db", "1.1", extra_env=extra)
    assert proc.returncode == 0, proc.stderr
    assert os.lstat(private).st_mode & 0o777 == 0o700


def test_output_piped_to_head_exits_quietly(project: Path) -> None:
    from helpers.hostile import CONDUCTOR

    # a plan long enough that `conductor plan` writes far more than a pipe holds
    plan = project / ORDERS / "plan.md"
    tasks = "".join(f"- [ ] Task number {i} with a long enough name to fill the pipe quickly\n"
                    for i in range(4000))
    plan.write_text(plan.read_text() + "\n## Phase 9: Many\n\n" + tasks)
    for args in (["plan", "orders_db"], ["plan", "orders_db", "--json"]):
        proc = subprocess.Popen([str(CONDUCTOR), "--root", str(project), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
        first = proc.stdout.readline()
        proc.stdout.close()  # like `| head -1`
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=60)
        assert first
        assert "Traceback" not in err and "BrokenPipe" not in err, err
        assert err.strip() == "", err
        assert code in (0, 128 + signal.SIGPIPE), code


def test_unexpected_os_error_at_the_boundary_is_one_line(project: Path) -> None:
    from helpers.hostile import one_line_error

    # a folder where a context document should be: reading it raises IsADirectoryError
    (project / "storage-conductor" / "product.md").unlink()
    (project / "storage-conductor" / "product.md").mkdir()
    proc = conductor(project, "context", "orders_db", "product")
    assert "Traceback" not in proc.stderr
    if proc.returncode != 0:
        one_line_error(proc, proc.returncode, r"product\.md")


# -- item 13: an editor saving by temp-file-and-rename while the tool ticks ---------------------

EDITOR = textwrap.dedent("""
    import os, sys, time
    path, stop, period = sys.argv[1], sys.argv[2], float(sys.argv[3])
    n = 0
    while not os.path.exists(stop):
        n += 1
        with open(path, "rb") as handle:
            data = handle.read()
        tmp = os.path.join(os.path.dirname(path), f".editor-save-{n}.swp")
        with open(tmp, "wb") as handle:
            handle.write(data + f"<!-- editor save {n} -->\\n".encode())
        os.replace(tmp, path)
        time.sleep(period)
    print(n, flush=True)
""")

TICKER = textwrap.dedent("""
    import sys
    from conductor_magics.errors import ConductorError
    from conductor_magics.session import Session

    root, rounds = sys.argv[1], int(sys.argv[2])
    session = Session.open(root=root, user="ticker")
    numbers = [t.number for t in session.workspace.component("orders_db").read_plan().items()
               if "Verification" not in t.name][:10]
    ticks = refused = 0
    for _ in range(rounds):
        for number in numbers:
            for action in ("done", "undo"):
                try:
                    session.task(action, number, "orders_db")
                    ticks += 1
                except ConductorError as exc:  # a file that never stops changing: refused whole
                    assert "kept changing" in str(exc), exc
                    refused += 1
    print(ticks, refused, flush=True)
""")


def run_editor_against_ticks(project: Path, tmp_path: Path, rounds: int,
                             period: float) -> tuple[int, int, int, list[int]]:
    """(saves, ticks, ticks refused, lost save numbers) of an editor and a ticking process."""
    plan = project / ORDERS / "plan.md"
    (tmp_path / "editor.py").write_text(EDITOR)
    (tmp_path / "ticker.py").write_text(TICKER)
    stop = tmp_path / "stop"
    editor = subprocess.Popen([sys.executable, str(tmp_path / "editor.py"), str(plan), str(stop),
                               str(period)], stdout=subprocess.PIPE, env=env())
    try:
        ticker = subprocess.run([sys.executable, str(tmp_path / "ticker.py"), str(project),
                                 str(rounds)], capture_output=True, text=True, env=env(),
                                timeout=300, check=False)
    finally:
        stop.touch()
        saves = int(editor.communicate(timeout=60)[0])
    assert ticker.returncode == 0, ticker.stderr
    text = plan.read_text()
    seen = {int(line.split()[3]) for line in text.splitlines() if line.startswith("<!-- editor save ")}
    lost = sorted(set(range(1, saves + 1)) - seen)
    parse_plan(plan.read_bytes(), plan)  # still a plan
    ticks, refused = map(int, ticker.stdout.split())
    return saves, ticks, refused, lost


@pytest.mark.slow
def test_editor_saves_survive_concurrent_ticks(unlocked_project: Path, tmp_path: Path) -> None:
    """An editor saving by temp-file-and-rename every 20 ms while 120 ticks are written: on
    the code before the identity check hundreds of saves were lost; now none is. A tick
    that finds the file changed on every attempt (an overloaded machine whose fsync takes
    longer than the editor's pace) is refused whole, never half-written."""
    saves, ticks, refused, lost = run_editor_against_ticks(unlocked_project, tmp_path,
                                                           rounds=6, period=0.02)
    assert saves >= 100 and ticks >= 60 and ticks + refused == 120, (saves, ticks, refused)
    print(f"editor saves {saves}, ticks {ticks}, refused {refused}, lost {len(lost)}")
    assert lost == [], f"{len(lost)} of {saves} editor saves lost during {ticks} ticks: {lost[:20]}"


def test_tick_retries_on_a_changed_file(unlocked_project: Path, monkeypatch) -> None:
    """A save that lands between the tick's read and its rename is kept, and the tick lands
    on the new bytes (deterministic: the save is made while the tick's temporary file is
    being synced to disk)."""
    from conductor_magics.session import Session

    plan = unlocked_project / ORDERS / "plan.md"
    real_fsync = os.fsync
    saves = []

    def racing_fsync(fd):
        name = os.readlink(f"/proc/self/fd/{fd}")
        if ".plan.md.conductor-tmp-" in name and not saves:
            saves.append(name)
            tmp = plan.with_name(".plan.md.swp")
            tmp.write_bytes(plan.read_bytes() + b"\nsaved by the editor\n")
            os.replace(tmp, plan)
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", racing_fsync)
    session = Session.open(root=unlocked_project, user="t")
    result = session.task("done", "1.1", "orders_db")
    assert saves, "the race was not staged"
    assert result.after == "done"
    data = plan.read_bytes()
    assert data.endswith(b"saved by the editor\n"), "the editor's save was lost"
    assert parse_plan(data, plan).find("1.1").state == "done"
