"""Git commits per workflow.md, in real temporary git repositories (no mocks).

Each test makes its own repository (``git init``, a local user.name/email, the
example workspace committed), then ticks and verifies through the Session API or
the ``conductor`` CLI and reads the result back with git itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.cli import conductor as run_conductor

from conductor_magics.commits import Repository, commit_task, phase_name
from conductor_magics.session import Session
from conductor_magics.workspace import Workspace
from conductor_magics.workspace.plan import read_plan
from conductor_magics.workspace.workflow import (
    NO_COMMITS,
    PER_PHASE,
    PER_TASK,
    WorkflowPreferences,
    parse_workflow,
)

NOW = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
WS = "storage-conductor"
ORDERS = f"{WS}/storages/orders_db"
EVENTS = f"{WS}/storages/customer_events"

EVENTS_SQL = """CREATE TABLE events (
    id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    CONSTRAINT pk_events PRIMARY KEY (id)
);
"""


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No global/system git configuration and no identity from the environment: every
    repository here says who commits in its own local config (or, on purpose, not at all).
    The ceiling keeps git from finding a repository above the test's folder."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL",
                 "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL", "CONDUCTOR_ROOT"):
        monkeypatch.delenv(name, raising=False)


def git(repo: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    if check:
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout


def init_repo(project: Path, *, identity: bool = True, commit: bool = True) -> Path:
    git(project, "init", "-q", "-b", "main")
    if identity:
        git(project, "config", "user.name", "Repo Tester")
        git(project, "config", "user.email", "tester@example.com")
    else:
        git(project, "config", "user.useConfigOnly", "true")
    git(project, "config", "commit.gpgsign", "false")
    if commit:
        git(project, "add", "-A")
        git(project, "-c", "user.name=Setup", "-c", "user.email=setup@example.com",
            "commit", "-q", "-m", "initial workspace")
    return project


def set_workflow(project: Path, **lines: str) -> None:
    """Replace (or add) preference lines of workflow.md and commit the change."""
    path = project / WS / "workflow.md"
    text = path.read_text()
    for label, value in lines.items():
        label = label.replace("_", " ")
        pattern = re.compile(rf"^- \*\*{label}:\*\*.*$", re.MULTILINE | re.IGNORECASE)
        line = f"- **{label.capitalize()}:** {value}"
        text = pattern.sub(line, text) if pattern.search(text) else text.replace(
            "## Preferences\n\n", f"## Preferences\n\n{line}\n", 1)
    path.write_text(text)
    if (project / ".git").exists():
        git(project, "add", f"{WS}/workflow.md")
        git(project, "-c", "user.name=Setup", "-c", "user.email=setup@example.com",
            "commit", "-q", "-m", "workflow")


def session(project: Path) -> Session:
    return Session(Workspace(project / WS), user="tester", clock=lambda: NOW)


def commits(repo: Path) -> list[str]:
    return git(repo, "rev-list", "HEAD").split()


def message(repo: Path, sha: str) -> str:
    return git(repo, "log", "-1", "--format=%B", sha).rstrip("\n")


def trailer(repo: Path, sha: str) -> str:
    return git(repo, "log", "-1", "--format=%(trailers:key=Storage-Id,valueonly)", sha).strip()


def files_of(repo: Path, sha: str) -> set[str]:
    return set(git(repo, "show", "--name-only", "--format=", sha).split("\n")) - {""}


def status(repo: Path) -> list[str]:
    return git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()


def task_line(project: Path, component: str, number: str) -> str:
    plan = read_plan(project / WS / "storages" / component / "plan.md")
    task = next(t for t in plan.items() if t.number == number)
    return (project / WS / "storages" / component / "plan.md").read_text().splitlines()[task.line - 1]


def heading(project: Path, component: str, number: int) -> str:
    return next(line for line in (project / WS / "storages" / component / "plan.md").read_text().splitlines()
                if line.startswith(f"## Phase {number}:"))


def conductor(project: Path, *args: str) -> subprocess.CompletedProcess:
    proc = run_conductor(*args, root=project, timeout=120)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


def conductor_json(project: Path, *args: str, code: int = 0) -> dict:
    proc = conductor(project, *args, "--json")
    assert proc.returncode == code, (args, proc.stdout, proc.stderr)
    return json.loads(proc.stdout)


PHASE_1_EVENTS = ["1.1.1", "1.1.2", "1.1", "1.2", "1.3"]


# -- workflow.md: commit paths ---------------------------------------------------------------


def test_workflow_commit_paths_are_parsed():
    prefs = parse_workflow("# Workflow\n- **Commit strategy:** per task\n"
                           "- **Commit paths:** src/db/, `tests/db/`; docs/schema.md\n")
    assert prefs.commits == PER_TASK
    assert prefs.commit_paths == ["src/db/", "tests/db/", "docs/schema.md"]
    assert prefs.source_lines["commit_paths"] == 3
    assert parse_workflow("Commit files: none\n").commit_paths == []
    assert parse_workflow("* __Committed paths__: db\n").commit_paths == ["db"]
    assert WorkflowPreferences().commit_paths == []
    example = parse_workflow((Path(__file__).parent.parent / "example_notebooks" / WS / "workflow.md").read_text())
    assert example.commit_paths == [] and example.commits == PER_TASK and example.conventional_commits
    # The commit-path line is not mistaken for the strategy or the message style.
    prefs = parse_workflow("- **Commit paths:** none per phase\n- **Commit messages:** free-form\n")
    assert prefs.commits == NO_COMMITS and "commits" not in prefs.source_lines
    assert prefs.conventional_commits is False


def test_phase_name_drops_the_phase_prefix():
    assert phase_name("Phase 2: Migration Setup") == "Migration Setup"
    assert phase_name("Stage 3 - Core  Implementation (CRUD)") == "Core Implementation (CRUD)"
    assert phase_name("Backups") == "Backups"


# -- per task --------------------------------------------------------------------------------


def test_per_task_commits_one_commit_per_ticked_task(project: Path):
    repo = init_repo(project)
    start = commits(repo)
    (project / "notes.txt").write_text("not the tool's business\n")
    (project / "src").mkdir()
    (project / "src" / "app.py").write_text("print('hi')\n")
    s = session(project)

    plan_path = project / ORDERS / "plan.md"
    results = []
    for number in ("1.1.1", "1.1.2"):
        results.append(s.task("done", number, "orders_db"))
        assert results[-1].after == "done"
        assert results[-1].commit.committed
    (project / ORDERS / "schema.sql").write_text("CREATE TABLE customers (id INTEGER PRIMARY KEY);\n")
    results.append(s.task("done", "1.1", "orders_db"))

    made = commits(repo)[: -len(start)]
    assert len(made) == 3
    assert list(reversed(made)) == [r.commit.sha for r in results]
    assert [message(repo, sha) for sha in reversed(made)] == [
        "feat(orders_db): name every primary key, unique and check constraint with the pk_, uq_ "
        "and ck_ prefixes\n\nStorage-Id: orders_db",
        "feat(orders_db): restrict orders.status to pending, paid, shipped and cancelled with "
        "ck_orders_status\n\nStorage-Id: orders_db",
        "feat(orders_db): declare the customers, products and orders tables in schema.sql"
        "\n\nStorage-Id: orders_db",
    ]
    assert all(trailer(repo, sha) == "orders_db" for sha in made)

    # Only the component's files and tracks.md; the first tick also set the status.
    assert files_of(repo, made[2]) == {f"{ORDERS}/plan.md", f"{ORDERS}/metadata.json", f"{WS}/tracks.md"}
    assert files_of(repo, made[1]) == {f"{ORDERS}/plan.md"}
    assert files_of(repo, made[0]) == {f"{ORDERS}/plan.md", f"{ORDERS}/schema.sql"}
    for sha in made:
        assert all(f.startswith(f"{ORDERS}/") or f == f"{WS}/tracks.md" for f in files_of(repo, sha))

    # The short SHA of each task's commit is on its line, and the parser reads it back.
    for result in results:
        short = result.commit.short_sha
        assert result.commit.sha.startswith(short) and len(short) >= 7
        assert re.search(r"[0-9]", short) and re.search(r"[a-f]", short)
        assert task_line(project, "orders_db", result.task.number).endswith(f" ({short})")
        assert result.task.sha == short
    plan = read_plan(plan_path)
    assert [plan.find(n).sha for n in ("1.1.1", "1.1.2", "1.1")] == [r.commit.short_sha for r in results]
    assert plan.find("1.1").name == "Task: Declare the customers, products and orders tables in schema.sql"

    # Each commit holds its one-byte tick; the previous task's SHA rode along with it.
    previous_short = None
    for sha, result in zip(reversed(made), results, strict=True):
        old = git(repo, "show", f"{sha}~1:{ORDERS}/plan.md").encode()
        new = git(repo, "show", f"{sha}:{ORDERS}/plan.md").encode()
        if previous_short:
            assert f" ({previous_short})".encode() in new
            new = new.replace(f" ({previous_short})".encode(), b"", 1)
        assert len(new) == len(old)
        diffs = [i for i in range(len(old)) if old[i] != new[i]]
        assert len(diffs) == 1 and new[diffs[0]:diffs[0] + 1] == b"x"
        previous_short = result.commit.short_sha

    # What was left: the last SHA edit, and files outside the allowed paths, untouched.
    assert sorted(status(repo)) == sorted([f" M {ORDERS}/plan.md", "?? notes.txt", "?? src/app.py"])
    assert "committed " + results[0].commit.short_sha in results[0].to_text()
    assert results[0].to_json()["commit"]["sha"] == results[0].commit.sha


def test_not_done_actions_and_retick_do_not_commit(project: Path):
    repo = init_repo(project)
    s = session(project)
    start = commits(repo)
    assert s.task("start", "1.1.1", "orders_db").commit is None
    assert s.task("skip", "1.1.2", "orders_db").commit is None
    assert commits(repo) == start
    done = s.task("done", "1.1.1", "orders_db")
    assert done.commit.committed
    again = s.task("done", "1.1.1", "orders_db")
    assert not again.changed and again.commit is None
    assert len(commits(repo)) == len(start) + 1
    # The skip and the start rode along in the tick's commit.
    committed = git(repo, "show", f"HEAD:{ORDERS}/plan.md")
    assert "- [x] Name every primary key" in committed and "- [-] Restrict orders.status" in committed


def test_commit_paths_from_workflow_are_committed_and_nothing_else(project: Path):
    repo = init_repo(project)
    set_workflow(project, commit_paths="src/db/, ../outside/, tests/db/*.py")
    for rel in ("src/db/models.py", "src/other.py", "tests/db/test_orders.py", "tests/db/data.csv"):
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(f"# {rel}\n")
    result = session(project).task("done", "1.1.1", "orders_db")
    assert result.commit.committed
    assert files_of(repo, result.commit.sha) == {
        f"{ORDERS}/plan.md", f"{ORDERS}/metadata.json", f"{WS}/tracks.md",
        "src/db/models.py", "tests/db/test_orders.py"}
    assert any("../outside/" in w for w in result.commit.warnings)
    assert sorted(status(repo)) == sorted([f" M {ORDERS}/plan.md", "?? src/other.py", "?? tests/db/data.csv"])


def test_conventional_commits_off_gives_the_plain_task_name(project: Path):
    repo = init_repo(project)
    set_workflow(project, commit_messages="free-form")
    result = session(project).task("done", "1.1", "orders_db", force=True)
    assert message(repo, result.commit.sha) == (
        "Declare the customers, products and orders tables in schema.sql\n\nStorage-Id: orders_db")


# -- migrations ------------------------------------------------------------------------------


def test_migration_files_are_committed_apart_from_other_work(project: Path):
    repo = init_repo(project)
    versions = project / ORDERS / "migrations" / "versions"
    versions.mkdir(parents=True)
    (project / ORDERS / "migrations" / "env.py").write_text("# env\n")
    (versions / "0001_initial.py").write_text("revision = '0001'\n")
    (project / ORDERS / "schema.sql").write_text("CREATE TABLE t (id INTEGER PRIMARY KEY);\n")
    start = commits(repo)
    result = session(project).task("done", "1.1.1", "orders_db")  # a schema-phase task

    made = commits(repo)[: -len(start)]
    assert len(made) == 2 and [c.sha for c in result.commit.commits] == list(reversed(made))
    migration_sha, feat_sha = reversed(made)
    name = "name every primary key, unique and check constraint with the pk_, uq_ and ck_ prefixes"
    assert message(repo, migration_sha) == f"migration(orders_db): {name}\n\nStorage-Id: orders_db"
    assert message(repo, feat_sha) == f"feat(orders_db): {name}\n\nStorage-Id: orders_db"
    assert files_of(repo, migration_sha) == {f"{ORDERS}/migrations/env.py",
                                             f"{ORDERS}/migrations/versions/0001_initial.py"}
    assert files_of(repo, feat_sha) == {f"{ORDERS}/schema.sql", f"{ORDERS}/plan.md",
                                        f"{ORDERS}/metadata.json", f"{WS}/tracks.md"}
    # The task records the last commit: the one holding its tick.
    assert result.commit.sha == feat_sha
    assert task_line(project, "orders_db", "1.1.1").endswith(f"({result.commit.short_sha})")


def test_a_migration_phase_task_uses_the_migration_type(project: Path):
    repo = init_repo(project)
    s = session(project)
    for number in PHASE_1_EVENTS:
        s.task("done", number, "customer_events")
    s.verify("customer_events", 1, note="schema reviewed")
    (project / EVENTS / "migrations").mkdir()
    (project / EVENTS / "migrations" / "alembic.ini").write_text("[alembic]\n")
    first = s.task("done", "2.1", "customer_events")
    assert message(repo, first.commit.sha) == (
        "migration(customer_events): initialise Alembic for the event log with render_as_batch enabled"
        "\n\nStorage-Id: customer_events")
    assert f"{EVENTS}/migrations/alembic.ini" in files_of(repo, first.commit.sha)
    assert len(first.commit.commits) == 1  # migrations with the plan, no code to keep apart
    # Nothing but the tick (and the previous SHA) changed: still a migration task.
    second = s.task("done", "2.2", "customer_events")
    assert message(repo, second.commit.sha).startswith("migration(customer_events): create the initial")
    assert files_of(repo, second.commit.sha) == {f"{EVENTS}/plan.md"}


def test_only_migration_files_make_a_migration_commit_in_any_phase(project: Path):
    repo = init_repo(project)
    (project / EVENTS / "migrations").mkdir()
    (project / EVENTS / "migrations" / "env.py").write_text("# env\n")
    result = session(project).task("done", "1.1.1", "customer_events")
    assert len(result.commit.commits) == 1
    assert message(repo, result.commit.sha).startswith("migration(customer_events): restrict kind")


# -- phases: checkpoints and notes -----------------------------------------------------------


def test_per_phase_strategy_commits_at_verification_with_a_checkpoint_and_a_note(project: Path):
    repo = init_repo(project)
    set_workflow(project, commit_strategy="per phase")
    start = commits(repo)
    s = session(project)
    db = s.database("customer_events")
    db.schema_declare(EVENTS_SQL)  # schema.sql, and the embedded dev.sqlite (+ .gitignore)
    for number in PHASE_1_EVENTS:
        result = s.task("done", number, "customer_events")
        assert result.commit is not None and not result.commit.committed
        assert result.commit.skipped_reason == "commit strategy is per-phase"
    assert commits(repo) == start
    assert all(not re.search(r"\([0-9a-f]{7,}\)$", task_line(project, "customer_events", n))
               for n in PHASE_1_EVENTS)
    db.engine.dispose()

    verdict = s.verify("customer_events", 1, note="schema reviewed with the team", run_checks=True)
    assert verdict.state.verified and verdict.commit.committed and verdict.commit.note_attached
    made = commits(repo)[: -len(start)]
    assert made == [verdict.commit.sha]
    sha = made[0]
    assert message(repo, sha).splitlines()[0] == "chore(customer_events): verify phase 1 Schema Design"
    body = message(repo, sha)
    assert "Verified by tester at 2027-01-02T03:04:05+00:00: schema reviewed with the team" in body
    assert "- [x] 1.1.1 Restrict kind to the six documented event kinds" in body
    assert trailer(repo, sha) == "customer_events"
    # All of the phase's work in one commit; never the embedded database.
    assert files_of(repo, sha) == {f"{EVENTS}/{n}" for n in (
        "plan.md", "metadata.json", "verification.json", "schema.sql", "schema.md", ".gitignore")
    } | {f"{WS}/tracks.md"}
    assert (project / EVENTS / "dev.sqlite").exists()
    assert not [f for f in git(repo, "ls-files").splitlines() if "dev.sqlite" in f]

    # The heading names the checkpoint commit; the parser reads it as verified.
    short = verdict.commit.short_sha
    assert sha.startswith(short)
    assert heading(project, "customer_events", 1) == f"## Phase 1: Schema Design [checkpoint: {short}]"
    assert read_plan(project / EVENTS / "plan.md").phase(1).checkpoint == short
    assert verdict.state.phase.checkpoint == short

    note = json.loads(git(repo, "notes", "show", sha))
    assert note["storage_id"] == "customer_events"
    assert note["verdict"]["note"] == "schema reviewed with the team"
    assert note["verdict"] == json.loads((project / EVENTS / "verification.json").read_text())[-1]
    assert {c["check"] for c in note["checks"]} >= {"schema applies to a scratch database",
                                                  "every table has a primary key"}
    assert all(c["status"] == "pass" for c in note["checks"])
    assert [t["number"] for t in note["tasks"]] == ["1.1", "1.1.1", "1.1.2", "1.2", "1.3"]
    assert "verification report attached" in verdict.to_text()
    assert verdict.to_json()["commit"]["note_attached"] is True
    # Only the checkpoint annotation is left to ride along in the next commit.
    assert status(repo) == [f" M {EVENTS}/plan.md"]


def test_per_task_strategy_also_makes_a_checkpoint_at_verification(project: Path):
    repo = init_repo(project)
    s = session(project)
    for number in PHASE_1_EVENTS:
        s.task("done", number, "customer_events")
    last_task_sha = commits(repo)[0]
    verdict = s.verify("customer_events", 1, note="ok")
    sha = verdict.commit.sha
    assert commits(repo)[1] == last_task_sha and commits(repo)[0] == sha
    assert files_of(repo, sha) == {f"{EVENTS}/plan.md", f"{EVENTS}/verification.json"}
    # The checkpoint carries the SHA written onto the last task after its commit.
    committed_plan = git(repo, "show", f"{sha}:{EVENTS}/plan.md")
    assert f"({s.plan('customer_events').plan.find('1.3').sha})" in committed_plan
    assert heading(project, "customer_events", 1).endswith(f"[checkpoint: {verdict.commit.short_sha}]")
    assert json.loads(git(repo, "notes", "show", sha))["phase"]["title"] == "Phase 1: Schema Design"
    # The next phase is unlocked and its first tick commits the annotation along.
    nxt = s.task("done", "2.1", "customer_events")
    assert f"[checkpoint: {verdict.commit.short_sha}]" in git(repo, "show", f"{nxt.commit.sha}:{EVENTS}/plan.md")


def test_strategy_none_makes_no_commits(project: Path):
    repo = init_repo(project)
    set_workflow(project, commit_strategy="none")
    start = commits(repo)
    s = session(project)
    for number in PHASE_1_EVENTS:
        result = s.task("done", number, "customer_events")
        assert result.commit.skipped_reason == "workflow.md asks for no commits"
    verdict = s.verify("customer_events", 1, note="ok")
    assert not verdict.commit.committed and verdict.state.verified
    assert commits(repo) == start
    assert heading(project, "customer_events", 1) == "## Phase 1: Schema Design [verified: 2027-01-02]"
    assert git(repo, "notes", "list").strip() == ""
    out = conductor_json(project, "task", "done", "customer_events", "2.1")
    assert out["commit"]["committed"] is False and commits(repo) == start


# -- what is never committed ---------------------------------------------------------------


def test_a_dirty_index_is_left_alone_and_reported_through_the_cli(project: Path):
    repo = init_repo(project)
    (project / "README.md").write_text("user's own work in progress\n")
    (project / "staged.txt").write_text("staged by the user\n")
    git(repo, "add", "README.md", "staged.txt")
    (project / ORDERS / "spec.md").write_text("spec edited and staged by the user\n")
    git(repo, "add", f"{ORDERS}/spec.md")  # inside the component: committed with the task

    out = conductor_json(project, "task", "done", "orders_db", "1.1.1")
    commit = out["commit"]
    assert commit["committed"] and commit["left_alone"] == ["README.md", "staged.txt"]
    assert files_of(repo, commit["sha"]) == {f"{ORDERS}/plan.md", f"{ORDERS}/metadata.json",
                                             f"{WS}/tracks.md", f"{ORDERS}/spec.md"}
    assert git(repo, "diff", "--cached", "--name-only").split() == ["README.md", "staged.txt"]
    assert trailer(repo, commit["sha"]) == "orders_db"

    text = conductor(project, "task", "done", "orders_db", "1.1.2")
    assert text.returncode == 0, text.stderr
    assert "left staged and uncommitted (staged before conductor ran): README.md, staged.txt" in text.stdout
    assert re.search(r"committed [0-9a-f]{7,} feat\(orders_db\): restrict orders\.status", text.stdout)
    assert git(repo, "diff", "--cached", "--name-only").split() == ["README.md", "staged.txt"]
    assert "README.md" not in files_of(repo, "HEAD")


def test_ignored_files_and_the_embedded_database_are_never_staged(project: Path):
    repo = init_repo(project)
    comp = project / ORDERS
    (comp / ".gitignore").write_text("*.log\n")
    (comp / "debug.log").write_text("ignored\n")
    (comp / "dev.sqlite").write_bytes(b"SQLite format 3\x00 not ignored on purpose")
    (comp / "dev.sqlite-wal").write_bytes(b"wal")
    (comp / ".plan.md.conductor-tmp-99999999-abc12345").write_text("a killed writer's temp file")
    result = session(project).task("done", "1.1.1", "orders_db")
    committed = files_of(repo, result.commit.sha)
    assert f"{ORDERS}/.gitignore" in committed and f"{ORDERS}/plan.md" in committed
    assert not {f for f in committed if f.endswith(".log") or "conductor-tmp" in f or "dev.sqlite" in f}
    tracked = git(repo, "ls-files").splitlines()
    assert not [f for f in tracked if "dev.sqlite" in f or f.endswith(".log")]
    assert git(repo, "diff", "--cached", "--name-only") == ""
    assert sorted(status(repo)) == sorted([
        f" M {ORDERS}/plan.md", f"?? {ORDERS}/.plan.md.conductor-tmp-99999999-abc12345", f"?? {ORDERS}/dev.sqlite",
        f"?? {ORDERS}/dev.sqlite-wal"])
    # The embedded database staged by hand is not the tool's to commit either.
    git(repo, "add", "-f", f"{ORDERS}/dev.sqlite")
    nxt = session(project).task("done", "1.1.2", "orders_db")
    assert nxt.commit.left_alone == [f"{ORDERS}/dev.sqlite"]
    assert f"{ORDERS}/dev.sqlite" not in files_of(repo, nxt.commit.sha)


def test_other_components_files_are_not_committed(project: Path):
    repo = init_repo(project)
    (project / EVENTS / "schema.sql").write_text(EVENTS_SQL)
    (project / WS / "product.md").write_text("edited\n")
    result = session(project).task("done", "1.1.1", "orders_db")
    assert all(f.startswith(f"{ORDERS}/") or f == f"{WS}/tracks.md" for f in files_of(repo, result.commit.sha))
    assert sorted(status(repo)) == sorted([f" M {ORDERS}/plan.md", f" M {WS}/product.md",
                                           f"?? {EVENTS}/schema.sql"])


# -- nothing fails ---------------------------------------------------------------------------


def test_outside_a_git_repository_everything_works(project: Path):
    assert Repository.find(project / WS) == (None, "not a git repository")
    original = (project / EVENTS / "plan.md").read_bytes()
    out = conductor_json(project, "task", "done", "customer_events", "1.1.1")
    assert out["after"] == "done"
    assert out["commit"]["committed"] is False
    assert out["commit"]["skipped_reason"] == "not a git repository" and out["commit"]["warnings"] == []
    new = (project / EVENTS / "plan.md").read_bytes()
    assert len(new) == len(original) and sum(a != b for a, b in zip(original, new, strict=True)) == 1
    s = session(project)
    for number in PHASE_1_EVENTS[1:]:
        assert s.task("done", number, "customer_events").commit.skipped_reason == "not a git repository"
    verdict = s.verify("customer_events", 1, note="ok")
    assert verdict.state.verified and not verdict.commit.committed
    assert heading(project, "customer_events", 1) == "## Phase 1: Schema Design [verified: 2027-01-02]"
    assert not (project / ".git").exists()
    assert "commit" not in s.task("done", "2.1", "customer_events").to_text()


def test_a_git_failure_keeps_the_tick_and_is_reported(project: Path):
    repo = init_repo(project, identity=False)
    start = commits(repo)
    (project / ORDERS / "spec.md").write_text("staged by the user before the tick\n")
    git(repo, "add", f"{ORDERS}/spec.md")
    proc = conductor(project, "task", "done", "orders_db", "1.1.1", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["after"] == "done" and out["commit"]["committed"] is False
    assert out["commit"]["skipped_reason"] == "git failed"
    assert any("git commit" in w and ("user.useConfigOnly" in w or "email" in w)
               for w in out["commit"]["warnings"]), out["commit"]["warnings"]
    assert commits(repo) == start
    assert task_line(project, "orders_db", "1.1.1").startswith("  - [x] Name every primary key")
    assert task_line(project, "orders_db", "1.1.1").endswith("ck_ prefixes")  # no SHA
    # The failed attempt unstaged what it had staged: the index is as it was.
    assert git(repo, "diff", "--cached", "--name-only").split() == [f"{ORDERS}/spec.md"]
    text = conductor(project, "task", "done", "orders_db", "1.1.2")
    assert text.returncode == 0 and "warning: `git commit` failed" in text.stdout
    # Verification too: the verdict is recorded and the heading annotated without a commit.
    s = session(project)
    for number in ("1.1", "1.2.1", "1.2.2", "1.2", "1.3.1", "1.3", "1.4", "1.5"):
        assert s.task("done", number, "orders_db").after == "done"
    verdict = s.verify("orders_db", 1, note="ok")
    assert verdict.state.verified and not verdict.commit.committed and verdict.commit.warnings
    assert heading(project, "orders_db", 1) == "## Phase 1: Schema Design [verified: 2027-01-02]"


def test_an_unborn_branch_gets_its_first_commit(project: Path):
    repo = init_repo(project, commit=False)
    (project / "staged.txt").write_text("x\n")
    git(repo, "add", "staged.txt")
    result = session(project).task("done", "1.1.1", "orders_db")
    assert result.commit.committed and len(commits(repo)) == 1
    assert result.commit.left_alone == ["staged.txt"]
    # The whole component folder was new: all of it is in the first commit, nothing else.
    assert files_of(repo, "HEAD") == {f"{ORDERS}/{n}" for n in ("plan.md", "metadata.json", "spec.md")} \
        | {f"{WS}/tracks.md"}
    assert git(repo, "diff", "--cached", "--name-only").split() == ["staged.txt"]


def test_commit_task_directly_reports_nothing_to_commit(project: Path):
    init_repo(project)
    prefs = WorkflowPreferences(commits=PER_TASK)
    result = commit_task(project / WS, "orders_db", "Task: nothing changed", prefs=prefs)
    assert not result.committed and result.skipped_reason == "nothing to commit"
    assert result.text_lines() == ["no commit: nothing to commit"]
    per_phase = commit_task(project / WS, "orders_db", "x", prefs=WorkflowPreferences(commits=PER_PHASE))
    assert per_phase.skipped_reason == "commit strategy is per-phase" and per_phase.repository is None


def test_short_shas_always_hold_a_digit_and_a_letter(project: Path):
    repo = Repository(init_repo(project))
    assert repo.short("1234567" + "a" * 33) == "1234567a"
    assert repo.short("abcdefab" + "1" * 32) == "abcdefab1"
    assert repo.short("12ab" + "0" * 36) == "12ab000"
    head = git(project, "rev-parse", "HEAD").strip()
    short = repo.short(head)
    assert head.startswith(short) and len(short) >= 7


def test_a_task_whose_text_wraps_gets_its_sha_after_the_whole_text(project: Path):
    plan_path = project / ORDERS / "plan.md"
    text = plan_path.read_text()
    old = "  - [ ] Name every primary key, unique and check constraint with the pk_, uq_ and ck_ prefixes\n"
    assert old in text
    plan_path.write_text(text.replace(old, "  - [ ] Name every primary key, unique and check\n"
                                           "    constraint with the pk_, uq_ and ck_ prefixes\n"))
    repo = init_repo(project)
    result = session(project).task("done", "1.1.1", "orders_db")
    assert result.commit.committed and result.after == "done"
    assert not result.commit.warnings
    plan = read_plan(plan_path)
    task = plan.find("1.1.1")
    assert task.name == "Name every primary key, unique and check constraint with the pk_, uq_ and ck_ prefixes"
    assert task.state == "done" and task.sha == result.commit.short_sha
    assert f"    constraint with the pk_, uq_ and ck_ prefixes ({task.sha})\n" in plan_path.read_text()
    assert [line[3:] for line in status(repo)] == [f"{ORDERS}/plan.md"]  # the SHA rides along
