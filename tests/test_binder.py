"""binder/: the lint of `make binder-check`, its notebook runner, and postBuild + start
run for real as a non-root user (the pip part of the check runs in `make binder-check`)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import psycopg
import pytest
from helpers.workspace import REPO
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

spec = importlib.util.spec_from_file_location("binder_check", REPO / "binder" / "check.py")
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the repository's binder/ folder (not a git repository)."""
    shutil.copytree(REPO / "binder", tmp_path / "binder")
    return tmp_path


def lint_cli(repo: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "binder" / "check.py"), "--lint-only",
                           "--repo", str(repo)], capture_output=True, text=True, check=False)


def test_the_repository_binder_folder_lints_clean():
    assert check.lint(REPO) == []
    # tracked with the executable bit, which is what a fresh clone (and Binder) gets
    modes = check._git_modes(REPO, ["binder/postBuild", "binder/start"])
    assert modes == {"binder/postBuild": "100755", "binder/start": "100755"}


def test_a_postbuild_that_is_not_executable_fails_in_one_line(repo: Path):
    (repo / "binder" / "postBuild").chmod(0o644)
    assert check.lint(repo) == ["binder/postBuild is not executable: chmod +x binder/postBuild"]
    done = lint_cli(repo)
    assert done.returncode == 1
    assert done.stderr.strip() == "binder-check: binder/postBuild is not executable: chmod +x binder/postBuild"
    (repo / "binder" / "postBuild").chmod(0o755)
    assert lint_cli(repo).returncode == 0


def test_executable_on_disk_but_not_in_git_is_reported(repo: Path):
    start = repo / "binder" / "start"
    start.chmod(0o644)
    git = ["git", "-C", str(repo), "-c", "core.fileMode=true"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "binder"], check=True)
    start.chmod(0o755)  # a clone would still get 100644
    assert check.lint(repo) == ["binder/start is not executable in git: "
                                "git update-index --chmod=+x binder/start"]


@pytest.mark.parametrize("ending", ["jupyter lab\n", 'exec "$@" &\n', "exec $@\n"])
def test_start_must_end_with_exec(repo: Path, ending: str):
    start = repo / "binder" / "start"
    start.write_text(start.read_text().replace('exec "$@"\n', ending))
    assert check.lint(repo) == ['binder/start does not end with exec "$@": the notebook server would '
                                'never start; make exec "$@" its last line']


def test_a_comment_after_the_exec_is_fine(repo: Path):
    start = repo / "binder" / "start"
    start.write_text(start.read_text() + "\n# end\n\n")
    assert check.lint(repo) == []


def test_runtime_txt_parses():
    assert check.parse_runtime("python-3.11\n") == (3, 11)
    assert check.parse_runtime("python-3.12-2025-01-31") == (3, 12)
    for bad in ("python-2.7", "python-3.10", "3.11", "python-3", "python-3.11\npython-3.12", "", "r-4.3"):
        with pytest.raises(ValueError):
            check.parse_runtime(bad)


def test_a_bad_runtime_dockerfile_or_requirements_is_reported(repo: Path):
    (repo / "binder" / "runtime.txt").write_text("python-3.9\n")
    (repo / "binder" / "Dockerfile").write_text("FROM scratch\n")
    (repo / "binder" / "requirements.txt").write_text("psycopg\n")
    (repo / "binder" / "apt.txt").unlink()
    problems = check.lint(repo)
    assert problems == [
        "binder/apt.txt is missing: repo2docker needs it (see README, Binder)",
        "binder/Dockerfile exists: repo2docker would build only from it and ignore every other "
        "binder/ file; remove it",
        "binder/runtime.txt does not parse: python-3.9 is older than the package needs (>= 3.11)",
        "binder/requirements.txt does not install this project: add the line .[postgres]",
    ]
    assert len(lint_cli(repo).stderr.strip().splitlines()) == 4


def test_pick_python_prefers_the_runtime_version_then_the_closest(tmp_path: Path):
    for minor in (11, 13):
        exe = tmp_path / f"python3.{minor}"
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    assert check.pick_python((3, 13), str(tmp_path)) == str(tmp_path / "python3.13")
    assert check.pick_python((3, 12), str(tmp_path)) == str(tmp_path / "python3.13")  # a tie: newer
    with pytest.raises(check.CheckFailed, match="no Python >= 3.11"):
        check.pick_python((3, 11), str(tmp_path / "empty"))


def test_a_notebook_that_raises_is_reported_and_the_others_still_run(tmp_path: Path):
    for name, source in (("boom", "x = 1\n1 / 0"), ("fine", "print('fine')")):
        (tmp_path / name).mkdir()
        nb = new_notebook(cells=[new_markdown_cell("# " + name), new_code_cell(source)],
                          metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                   "language": "python"}})
        nbformat.write(nb, tmp_path / name / f"{name}.ipynb")
    failures = check.run_notebooks(tmp_path, ["boom", "fine"], timeout=60)
    assert failures == ["binder-check: boom.ipynb cell 2 raised ZeroDivisionError: division by zero"]
    ran = nbformat.read(tmp_path / "fine" / "fine.ipynb", as_version=4)
    assert ran.cells[1].outputs[0]["text"] == "fine\n"


def test_extension_lists_are_read_with_and_without_colours():
    green = "\x1b[32m{}\x1b[0m"
    lab = (f"JupyterLab v4.6.6\n/x/share/jupyter/labextensions\n"
           f"        conductor-magics v0.1.0 {green.format('enabled')} {green.format('OK')} (python, conductor_magics)\n")
    server = (f"Config dir: /x/etc/jupyter\n    conductor_magics {green.format('enabled')}\n"
              f"    - Validating conductor_magics...\n      conductor_magics 0.1.0 {green.format('OK')}\n")
    assert check.extension_problems(lab, server) == []
    disabled = server.replace("enabled", "disabled")
    missing = lab.replace("conductor-magics", "other-extension")
    problems = check.extension_problems(missing, disabled)
    assert [p.split(" does not show ")[0] for p in problems] == [
        "binder-check: jupyter labextension list", "binder-check: jupyter server extension list"]


def test_stop_postgres_never_signals_a_process_that_is_not_postgres(tmp_path: Path):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        data = tmp_path / "pgdata"
        data.mkdir()
        (data / "postmaster.pid").write_text(f"{sleeper.pid}\n{data}\n")
        assert check.stop_postgres(data) is False
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_postbuild_and_start_run_a_passwordless_loopback_postgres_that_stops_by_pid():
    """The real scripts as a non-root user in a fresh HOME: demo workspaces committed in
    git, the cluster up within seconds with a URL naming no password, the SQLite default
    left alone, then stopped by the PID in its postmaster.pid."""
    base = Path(tempfile.mkdtemp(prefix="conductor-binder-test-"))
    base.chmod(0o755)
    home = base / "home"
    shutil.copytree(REPO / "binder", home / "binder")
    shutil.copytree(REPO / "example_notebooks", home / "example_notebooks",
                    ignore=shutil.ignore_patterns("dev.sqlite*", "__pycache__"))
    port = check._free_port()
    as_user = []
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "nobody:", str(base)], check=True)
        as_user = ["runuser", "-u", "nobody", "--"]
    env = ["env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin", f"CONDUCTOR_DEMO_PG_PORT={port}",
           "CONDUCTOR_DATABASE_URL=sqlite:///untouched.sqlite"]
    data = home / ".conductor-demo" / "pgdata"
    try:
        built = subprocess.run([*as_user, *env, "binder/postBuild"], cwd=home, capture_output=True,
                               text=True, timeout=120, check=False)
        assert built.returncode == 0, built.stderr
        names = sorted(p.stem for p in (REPO / "example_notebooks").glob("*.ipynb"))
        assert sorted(p.name for p in (home / "demo").iterdir()) == names
        log = subprocess.run(["git", "-C", str(home / "demo" / names[0]), "-c", "safe.directory=*",
                              "log", "--format=%s"], capture_output=True, text=True, check=True)
        assert log.stdout == "chore: the example storage-conductor workspace\n"
        assert "host    all       all   127.0.0.1/32  trust" in (data / "pg_hba.conf").read_text()

        shown = subprocess.run([*as_user, *env, "binder/start", "sh", "-c",
                                'echo "$CONDUCTOR_DEMO_POSTGRES_URL|$CONDUCTOR_DATABASE_URL"'],
                               cwd=home, capture_output=True, text=True, timeout=60, check=False)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout == (f"postgresql+psycopg://conductor@127.0.0.1:{port}/orders"
                                "|sqlite:///untouched.sqlite\n")
        with psycopg.connect(host="127.0.0.1", port=port, user="conductor", dbname="orders") as conn:
            assert conn.execute("SELECT current_setting('listen_addresses')").fetchone() == ("127.0.0.1",)
        pid = int((data / "postmaster.pid").read_text().split()[0])
        assert check.stop_postgres(data) is True
        assert not Path(f"/proc/{pid}").exists() or check._zombie(pid)
    finally:
        check.stop_postgres(data)
        shutil.rmtree(base, ignore_errors=True)
