"""``conductor revert {task,phase,component}`` in real temporary git repositories.

Each test builds its history through the tool itself (ticks and verifications with
per-task or per-phase commits), reverts through the CLI and reads the result back with
git and the workspace files. Every refusal exits 2 and leaves the repository exactly as
it was: HEAD, refs, the index file's bytes and every working-tree file's bytes.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.cli import conductor as run_conductor
from helpers.git_repos import commit_all, git, init_repo, isolate_git, set_workflow, snapshot
from helpers.notebook import run_cell

from conductor_magics.session import Session
from conductor_magics.workspace import Workspace
from conductor_magics.workspace.plan import read_plan
from conductor_magics.workspace.status import COMPLETED

NOW = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
WS = "storage-conductor"
CID = "customer_events"
EVENTS = f"{WS}/storages/{CID}"
PHASE_1 = ["1.1.1", "1.1.2", "1.1", "1.2", "1.3"]  # the order they are ticked
PHASE_1_IN_PLAN = ["1.1", "1.1.1", "1.1.2", "1.2", "1.3"]  # document order

EVENTS_SQL = """CREATE TABLE events (
    id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    CONSTRAINT pk_events PRIMARY KEY (id)
);
"""
EVENTS_INDEXED_SQL = EVENTS_SQL + "CREATE INDEX ix_events_kind ON events (kind);\n"


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_git(tmp_path, monkeypatch)


def session(project: Path) -> Session:
    return Session(Workspace(project / WS), user="tester", clock=lambda: NOW)


def conductor(project: Path, *args: str) -> subprocess.CompletedProcess:
    proc = run_conductor(*args, root=project, timeout=120)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


def revert(project: Path, *args: str, code: int = 0) -> dict:
    proc = conductor(project, "revert", *args, "--id", CID, "--json")
    assert proc.returncode == code, (args, proc.stdout, proc.stderr)
    return json.loads(proc.stdout) if code == 0 else {"stderr": proc.stderr}


def refused(project: Path, *args: str) -> str:
    """Run a revert that must be refused: exit 2, one line, nothing changed."""
    before = snapshot(project)
    proc = conductor(project, "revert", *args, "--id", CID)
    assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
    assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert snapshot(project) == before
    return proc.stderr


def work(project: Path, name: str, text: str) -> None:
    (project / EVENTS / name).write_text(text)


def tick(project: Path, number: str, s: Session | None = None):
    result = (s or session(project)).task("done", number, CID)
    assert result.after == "done"
    return result


def plan_bytes(project: Path) -> bytes:
    return (project / EVENTS / "plan.md").read_bytes()


def one_byte_apart(old: bytes, new: bytes) -> list[int]:
    assert len(old) == len(new)
    return [i for i in range(len(old)) if old[i] != new[i]]


def state_of(project: Path, number: str) -> str:
    return read_plan(project / EVENTS / "plan.md").find(number).state


def log(project: Path) -> list[str]:
    return git(project, "log", "--format=%s", "HEAD").splitlines()


def records(project: Path) -> list[dict]:
    return json.loads((project / EVENTS / "verification.json").read_text())["records"] \
        if isinstance(json.loads((project / EVENTS / "verification.json").read_text()), dict) \
        else json.loads((project / EVENTS / "verification.json").read_text())


def phase_one_verified(project: Path) -> Session:
    """Phase 1 of customer_events worked (a file per task) and verified."""
    s = session(project)
    for number in PHASE_1:
        work(project, f"work_{number.replace('.', '_')}.txt", f"work of {number}\n")
        tick(project, number, s)
    verdict = s.verify(CID, 1, note="schema reviewed")
    assert verdict.recorded is not None
    return s


# -- one task --------------------------------------------------------------------------------


def test_revert_one_task_per_task_commits(project: Path):
    repo = init_repo(project)
    s = session(project)
    work(project, "schema.sql", EVENTS_SQL)
    first = tick(project, "1.1.1", s)
    work(project, "models.py", "class Event: ...\n")
    second = tick(project, "1.1.2", s)
    (project / "notes.txt").write_text("not the tool's business\n")
    git(repo, "add", "notes.txt")  # staged by the user: stays staged, uncommitted

    # the dry run (the default) says exactly what would happen and changes nothing
    before = snapshot(repo)
    plan = revert(project, "task", "1.1.1")
    assert plan["dry_run"] and not plan["carried_out"]
    assert [c["sha"] for c in plan["commits"]] == [first.commit.sha]
    assert [t["number"] for t in plan["reopen"]] == ["1.1.1"]
    assert plan["revoke"] == [] and plan["blockers"] == []
    assert snapshot(repo) == before
    assert revert(project, "task", "1.1.1", "--dry-run", "--confirm")["dry_run"]
    assert snapshot(repo) == before
    text = conductor(project, "revert", "task", "1.1.1", "--id", CID).stdout
    assert f"{first.commit.sha[:12]} feat({CID}): restrict kind" in text and "--confirm" in text

    old_plan = plan_bytes(project)
    done = revert(project, "task", "1.1.1", "--confirm")
    assert not done["dry_run"] and done["reverted"][0]["sha"] == first.commit.sha
    # the task's work is gone, the later task's work and unrelated files stay
    assert not (project / EVENTS / "schema.sql").exists()
    assert (project / EVENTS / "models.py").read_text() == "class Event: ...\n"
    assert (project / "notes.txt").exists()
    # the task reopened with a one-byte edit (the later task's pending SHA stays)
    diffs = one_byte_apart(old_plan, plan_bytes(project))
    assert len(diffs) == 1 and plan_bytes(project)[diffs[0]:diffs[0] + 1] == b" "
    assert state_of(project, "1.1.1") == "todo" and state_of(project, "1.1.2") == "done"
    # git's own revert message, then the bookkeeping commit, both with the trailer
    assert log(project)[:2] == [f"revert({CID}): task 1.1.1",
                                f'Revert "feat({CID}): restrict kind to the six documented event '
                                'kinds with ck_events_kind"']
    body = git(repo, "log", "-1", "--format=%B", "HEAD~1")
    assert f"This reverts commit {first.commit.sha}." in body and f"Storage-Id: {CID}" in body
    assert git(repo, "status", "--porcelain") == "A  notes.txt\n"
    assert "notes.txt" not in git(repo, "log", "--name-only", "--format=", "HEAD~2..HEAD")
    assert second.commit.sha in git(repo, "rev-list", "HEAD")


def test_a_task_without_its_own_commit_is_refused_per_phase(project: Path):
    init_repo(project)
    set_workflow(project, commit_strategy="per phase")
    tick(project, "1.1.1")
    err = refused(project, "task", "1.1.1", "--confirm")
    assert "no commit of its own (commits are made per phase)" in err
    assert "conductor revert phase --id customer_events 1" in err


# -- a verified phase ------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["per task", "per phase"])
def test_revert_a_verified_phase(project: Path, strategy: str):
    repo = init_repo(project)
    set_workflow(project, commit_strategy=strategy)
    s = phase_one_verified(project)
    checkpoint = read_plan(project / EVENTS / "plan.md").phase(1).checkpoint
    assert checkpoint
    (project / EVENTS / "migrations").mkdir()
    work(project, "migrations/alembic.ini", "[alembic]\n")
    tick(project, "2.1", s)  # phase 2 is open once phase 1 is verified
    if strategy == "per phase":
        commit_all(project, "phase 2 work so far")
    before_records = records(project)

    plan = revert(project, "phase", "1")
    shas = [c["sha"] for c in plan["commits"]]
    assert shas and all(not c["ghost"] for c in plan["commits"])
    positions = [git(repo, "rev-list", "--count", f"{sha}..HEAD").strip() for sha in shas]
    assert positions == sorted(positions, key=int)  # newest first
    assert [t["number"] for t in plan["reopen"]] == PHASE_1_IN_PLAN
    assert [p["number"] for p in plan["revoke"]] == [1]
    assert [p["number"] for p in plan["lock_again"]] == [2, 3]
    if strategy == "per phase":
        assert len(shas) == 1 and shas[0].startswith(checkpoint)

    done = revert(project, "phase", "1", "--confirm")
    assert not done["dry_run"]
    for number in PHASE_1:
        assert not (project / EVENTS / f"work_{number.replace('.', '_')}.txt").exists()
        assert state_of(project, number) == "todo"
    assert (project / EVENTS / "migrations" / "alembic.ini").exists()  # phase 2's work stays
    # the verdict is revoked by an appended record; the history is kept
    after = records(project)
    assert after[:len(before_records)] == before_records
    assert len(after) == len(before_records) + 1
    assert after[-1]["kind"] == "revocation" and after[-1]["phase_title"] == "Phase 1: Schema Design"
    heading = next(line for line in (project / EVENTS / "plan.md").read_text().splitlines()
                   if line.startswith("## Phase 1:"))
    assert heading == "## Phase 1: Schema Design"
    # the next phases lock again
    states = session(project).phase_states(Workspace(project / WS).component(CID),
                                           read_plan(project / EVENTS / "plan.md"))
    assert [st.verified for st in states] == [False, False, False]
    assert [st.locked for st in states] == [False, True, True]
    assert "was reverted" in states[1].lock_reason
    locked = conductor(project, "task", "done", CID, "2.2")
    assert locked.returncode == 1 and "locked" in locked.stderr
    assert git(repo, "status", "--porcelain") == ""
    assert log(project)[0] == f"revert({CID}): phase 1"


# -- a component -----------------------------------------------------------------------------


def test_revert_a_component(project: Path):
    repo = init_repo(project)
    s = phase_one_verified(project)
    work(project, "alembic.ini", "[alembic]\n")
    tick(project, "2.1", s)
    ws = Workspace(project / WS)
    with ws.lock():
        ws.write_status(ws.component(CID), COMPLETED, NOW)
    commit_all(project, "marked completed by hand")
    start = git(repo, "rev-parse", "HEAD").strip()

    plan = revert(project, "component")
    assert plan["status_before"] == "Completed" and plan["status_after"] == "In Progress"
    assert [t["number"] for t in plan["reopen"]] == [*PHASE_1_IN_PLAN, "2.1"]
    done = revert(project, "component", "--confirm")
    assert [p["number"] for p in done["revoke"]] == [1]
    assert not any((project / EVENTS).glob("work_*.txt")) and not (project / EVENTS / "alembic.ini").exists()
    assert all(t.state == "todo" for t in read_plan(project / EVENTS / "plan.md").items())
    meta = json.loads((project / EVENTS / "metadata.json").read_text())
    assert meta["status"].lower().replace("_", " ") == "in progress"
    row = next(line for line in (project / WS / "tracks.md").read_text().splitlines() if CID in line)
    assert "In Progress" in row
    # one revert commit per reverted commit that held more than bookkeeping, then ours
    made = git(repo, "log", "--format=%s", f"{start}..HEAD").splitlines()
    assert made[0] == f"revert({CID}): component {CID}"
    assert len([m for m in made if m.startswith('Revert "')]) == len(PHASE_1) + 1
    assert done["bookkeeping_only"]  # the checkpoint commit held only the tool's own files
    assert git(repo, "status", "--porcelain") == ""


# -- rebased history -------------------------------------------------------------------------


def test_a_ghost_sha_is_matched_by_subject_and_trailer_never_guessed(project: Path):
    repo = init_repo(project)
    s = session(project)
    base = git(repo, "rev-parse", "HEAD").strip()
    work(project, "schema.sql", EVENTS_SQL)
    old = tick(project, "1.1.1", s).commit.sha
    work(project, "models.py", "class Event: ...\n")
    tick(project, "1.1.2", s)
    commit_all(project, "record the last task's SHA")
    # rewrite the history: same messages and trailers, new SHAs
    git(repo, "rebase", "-q", "--force-rebase", base, env={"GIT_COMMITTER_DATE": "2030-01-01T00:00:00"})
    new = git(repo, "log", "--format=%H", "--grep", "restrict kind", "HEAD").split()[0]
    assert new != old and git(repo, "merge-base", "--is-ancestor", old, "HEAD", check=False) == ""

    plan = revert(project, "task", "1.1.1")
    ghost = plan["commits"][0]
    assert ghost["ghost"] and ghost["recorded"] == old[:len(ghost["recorded"])]
    assert [c["sha"] for c in ghost["candidates"]] == [new]
    assert plan["blockers"] and "--match" in plan["blockers"][0]
    err = refused(project, "task", "1.1.1", "--confirm")
    assert "not in the current branch's history" in err and new[:12] in err
    # a --match naming a commit outside the history is refused too
    refused(project, "task", "1.1.1", "--confirm", "--match", f"{ghost['recorded']}={old}")

    done = revert(project, "task", "1.1.1", "--confirm", "--match", f"{ghost['recorded']}={new}")
    assert done["reverted"][0]["sha"] == new
    assert not (project / EVENTS / "schema.sql").exists() and (project / EVENTS / "models.py").exists()
    assert state_of(project, "1.1.1") == "todo"


# -- conflicts and other refusals -----------------------------------------------------------


def test_a_conflict_leaves_the_repository_exactly_as_it_was(project: Path):
    repo = init_repo(project)
    s = session(project)
    work(project, "schema.sql", EVENTS_SQL)
    tick(project, "1.1.1", s)
    work(project, "schema.sql", EVENTS_SQL.replace("kind TEXT", "kind VARCHAR(20)"))
    tick(project, "1.1.2", s)  # changes the very lines 1.1.1 wrote
    (project / "notes.txt").write_text("untracked, unrelated\n")
    git(repo, "add", "notes.txt")  # staged: the index is not HEAD's
    err = refused(project, "task", "1.1.1", "--confirm")
    assert "conflicts in" in err and "schema.sql" in err and "git revert --abort" in err
    assert git(repo, "worktree", "list").count("\n") == 1


def test_refusals_exit_2_and_change_nothing(project: Path, tmp_path: Path):
    # outside a git repository
    assert "revert needs git" in refused(project, "task", "1.1.1", "--confirm")
    repo = init_repo(project)
    s = session(project)
    work(project, "schema.sql", EVENTS_SQL)
    tick(project, "1.1.1", s)
    # a dirty working tree touching the affected files
    work(project, "schema.sql", EVENTS_SQL + "-- edited\n")
    err = refused(project, "task", "1.1.1", "--confirm")
    assert "uncommitted changes in files the reverts touch" in err and "schema.sql" in err
    git(repo, "checkout", "--", f"{EVENTS}/schema.sql")
    # ... but the tool's own pending edit (the SHA on plan.md) does not stop it
    assert git(repo, "status", "--porcelain") == f" M {EVENTS}/plan.md\n"
    assert revert(project, "task", "1.1.1")["blockers"] == []
    # a task that is not done, a bad phase number, a reference given to component
    assert "is not done" in refused(project, "task", "1.2", "--confirm")
    refused(project, "phase", "x", "--confirm")
    refused(project, "component", "1", "--confirm")
    # a merge under way
    commit_all(project, "record the SHA")
    git(repo, "checkout", "-q", "-b", "side", "HEAD~1")
    work(project, "other.sql", "CREATE TABLE other (id INTEGER);\n")
    commit_all(project, "side")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-commit", "--no-ff", "side")
    assert "merge" in refused(project, "task", "1.1.1", "--confirm")


# -- an applied migration (SQLite) -----------------------------------------------------------


def _declare(project: Path, tmp_path: Path, sql: str) -> None:
    ddl = tmp_path / "schema_input.sql"
    ddl.write_text(sql)
    proc = conductor(project, "schema", "declare", "--id", CID, "--file", str(ddl))
    assert proc.returncode == 0, proc.stderr


def _migrate(project: Path, *args: str) -> None:
    proc = conductor(project, "migrate", *args, "--id", CID)
    assert proc.returncode == 0, proc.stderr


def _heads(project: Path) -> list[str]:
    with sqlite3.connect(project / EVENTS / "dev.sqlite") as conn:
        return [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]


def test_an_applied_migration_needs_downgrade(project: Path, tmp_path: Path):
    repo = init_repo(project)
    s = session(project)
    _declare(project, tmp_path, EVENTS_SQL)
    _migrate(project, "new", "-m", "events")
    _migrate(project, "up")
    with sqlite3.connect(project / EVENTS / "dev.sqlite") as conn:
        conn.executemany("INSERT INTO events (id, kind, payload) VALUES (?, ?, ?)",
                         [(i, "created", "{}") for i in range(1, 51)])
    tick(project, "1.1.1", s)
    first_head = _heads(project)
    _declare(project, tmp_path, EVENTS_INDEXED_SQL)
    _migrate(project, "new", "-m", "index events kind")
    _migrate(project, "up")
    second = tick(project, "1.1.2", s)
    assert len(second.commit.commits) == 2  # the migrations first, then the rest
    second_head = _heads(project)
    assert second_head != first_head

    plan = revert(project, "task", "1.1.2")
    assert [c["for"] for c in plan["commits"]] == ["task 1.1.2", "task 1.1.2 (migrations)"]
    assert [r["applied"] for r in plan["revisions"]] == [True]
    assert plan["downgrade_to"] == first_head[0]
    err = refused(project, "task", "1.1.2", "--confirm")
    assert f"run `conductor migrate down {first_head[0]} --id {CID}` first" in err
    assert "--downgrade" in err and _heads(project) == second_head

    done = revert(project, "task", "1.1.2", "--confirm", "--downgrade")
    assert _heads(project) == first_head
    with sqlite3.connect(project / EVENTS / "dev.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 50
        assert not conn.execute("SELECT name FROM sqlite_master WHERE name = 'ix_events_kind'").fetchall()
    assert done["downgrade"]["pre_migration_backup"]["kind"] == "pre-migration"
    versions = sorted(p.name for p in (project / EVENTS / "migrations" / "versions").glob("*.py"))
    assert len(versions) == 1 and first_head[0] in versions[0]
    assert (project / EVENTS / "schema.sql").read_text() == EVENTS_SQL
    assert state_of(project, "1.1.2") == "todo" and state_of(project, "1.1.1") == "done"
    assert git(repo, "status", "--porcelain") == ""


def test_a_recorded_sha_git_never_had_gets_candidates_by_the_task_s_subject(project: Path):
    repo = init_repo(project)
    s = session(project)
    work(project, "schema.sql", EVENTS_SQL)
    real = tick(project, "1.1.1", s).commit
    plan_path = project / EVENTS / "plan.md"
    plan_path.write_bytes(plan_bytes(project).replace(f"({real.short_sha})".encode(), b"(deadbee1)"))
    commit_all(project, "a SHA from another clone")
    plan = revert(project, "task", "1.1.1")
    ghost = plan["commits"][0]
    assert ghost["ghost"] and ghost["recorded"] == "deadbee1"
    assert [c["sha"] for c in ghost["candidates"]] == [real.sha]
    refused(project, "task", "1.1.1", "--confirm")
    revert(project, "task", "1.1.1", "--confirm", "--match", f"deadbee1={real.short_sha}")
    assert not (project / EVENTS / "schema.sql").exists()
    assert git(repo, "status", "--porcelain") == ""


def test_the_magic_takes_the_same_words(ip, project: Path):
    init_repo(project)
    work(project, "schema.sql", EVENTS_SQL)
    tick(project, "1.1.1")
    ip.run_line_magic("reload_ext", "conductor_magics")
    before = snapshot(project)
    cap, result = run_cell(ip, f"%conductor revert task --id {CID} 1.1.1")
    assert result.success, cap.stderr
    text = "".join(o.data.get("text/plain", "") for o in cap.outputs) + cap.stdout
    assert "dry run, nothing changed" in text and "carry it out with --confirm" in text
    assert snapshot(project) == before


def test_a_commit_reverted_already_is_not_reverted_again(project: Path):
    repo = init_repo(project)
    work(project, "schema.sql", EVENTS_SQL)
    first = tick(project, "1.1.1").commit
    revert(project, "task", "1.1.1", "--confirm")
    # ticked again with commits turned off: the line still shows the old (reverted) SHA
    set_workflow(project, commit_strategy="none")
    tick(project, "1.1.1")
    assert read_plan(project / EVENTS / "plan.md").find("1.1.1").sha == first.short_sha
    head = git(repo, "rev-parse", "HEAD").strip()
    plan = revert(project, "task", "1.1.1")
    assert plan["commits"] == [] and [t["number"] for t in plan["reopen"]] == ["1.1.1"]
    assert any("was reverted already" in w for w in plan["warnings"])
    done = revert(project, "task", "1.1.1", "--confirm")
    assert done["reverted"] == [] and state_of(project, "1.1.1") == "todo"
    assert git(repo, "rev-parse", "HEAD").strip() == head  # workflow.md asks for no commits
    assert any("no commits" in w for w in done["warnings"])


def test_a_downgrade_that_would_drop_data_is_left_to_migrate_down_confirm(project: Path, tmp_path: Path):
    init_repo(project)
    s = session(project)
    _declare(project, tmp_path, EVENTS_SQL)
    _migrate(project, "new", "-m", "events")
    _migrate(project, "up")
    tick(project, "1.1.1", s)
    first_head = _heads(project)
    archive = "CREATE TABLE archive (id INTEGER NOT NULL, CONSTRAINT pk_archive PRIMARY KEY (id));\n"
    _declare(project, tmp_path, EVENTS_SQL + archive)
    _migrate(project, "new", "-m", "archive")
    _migrate(project, "up")
    with sqlite3.connect(project / EVENTS / "dev.sqlite") as conn:
        conn.executemany("INSERT INTO archive (id) VALUES (?)", [(i,) for i in range(1, 11)])
    tick(project, "1.1.2", s)
    second_head = _heads(project)
    err = refused(project, "task", "1.1.2", "--confirm", "--downgrade")
    assert "would delete data" in err and "table archive (10 row(s))" in err
    assert f"run `conductor migrate down {first_head[0]} --id {CID} --confirm` yourself" in err
    assert _heads(project) == second_head


def test_an_applied_migration_on_postgresql(project: Path, tmp_path: Path, pg_url: str):
    from sqlalchemy import create_engine, text

    repo = init_repo(project)
    s = session(project)
    engine = create_engine(pg_url)

    def heads() -> list[str]:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]

    try:
        _declare(project, tmp_path, EVENTS_SQL)
        _migrate(project, "new", "-m", "events", "--url", pg_url)
        _migrate(project, "up", "--url", pg_url)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO events (id, kind, payload) VALUES (:i, 'created', '{}')"),
                         [{"i": i} for i in range(1, 21)])
        tick(project, "1.1.1", s)
        first_head = heads()
        _declare(project, tmp_path, EVENTS_INDEXED_SQL)
        _migrate(project, "new", "-m", "index events kind", "--url", pg_url)
        _migrate(project, "up", "--url", pg_url)
        tick(project, "1.1.2", s)
        second_head = heads()

        plan = revert(project, "task", "1.1.2", "--url", pg_url)
        assert [r["applied"] for r in plan["revisions"]] == [True]
        # without --url the embedded database is meant, which has nothing applied
        assert revert(project, "task", "1.1.2")["revisions"][0]["applied"] is False
        err = refused(project, "task", "1.1.2", "--confirm", "--url", pg_url)
        assert f"conductor migrate down {first_head[0]}" in err and heads() == second_head
        revert(project, "task", "1.1.2", "--confirm", "--downgrade", "--url", pg_url)
        assert heads() == first_head
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM events")).scalar() == 20
            assert conn.execute(text("SELECT count(*) FROM pg_indexes WHERE indexname = "
                                     "'ix_events_kind'")).scalar() == 0
        assert git(repo, "status", "--porcelain") == ""
    finally:
        engine.dispose()
