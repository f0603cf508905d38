"""Git commits as workflow.md asks: one per task or per phase, checkpoints and notes.

Session level (no Jupyter): runs the ``git`` executable with argument lists, never
through a shell, in the repository that holds the workspace. Nothing here raises
for a git problem: a missing repository, a ``none`` strategy or nothing to commit is
a quiet no-op, and a failing git command (no ``user.name``, a hook saying no) is
reported as a warning in the :class:`CommitResult`, so a tick already written to
plan.md is never lost.

What is committed (and nothing else):

- the component's folder ``storage-conductor/storages/<id>/`` (plan.md,
  metadata.json, verification.json, test_runs.json, schema.sql, schema.md,
  migrations/ …), ``storage-conductor/tracks.md``, and the paths workflow.md lists
  in ``- **Commit paths:** src/db/, tests/db/`` (relative to the project folder,
  the one that holds ``storage-conductor/``; git pathspecs, so globs work);
- only files git reports as changed, new (and not ignored) or deleted
  (``git ls-files --modified --others --exclude-standard``, ``--deleted``), plus
  files someone already staged inside those paths;
- never the embedded database (``dev.sqlite*``) nor a writer's temporary file,
  even when they are not ignored.

The commit is made with ``git commit -- <paths>`` (``--only`` semantics): changes
that were staged before the tool ran, outside what it commits, stay staged and
uncommitted, and are reported in ``left_alone``.

Messages (Conventional Commits when workflow.md says so, else plain):

=============================  ===============================================  ==========================
commit                         conventional                                     plain
=============================  ===============================================  ==========================
task                           ``feat(<id>): <task>``                           ``<task>``
migration task                 ``migration(<id>): <task>``                      ``<task>``
migration files of a task      ``migration(<id>): <task>``                      ``<task> (migrations)``
checkpoint / per-phase         ``chore(<id>): verify phase <N> <title>``        ``Verify phase <N>: <title>``
migration files of a phase     ``migration(<id>): <title>``                     ``<title> (migrations)``
=============================  ===============================================  ==========================

``<title>`` is the phase heading without its ``Phase N:`` prefix (so the subject reads
like workflow.md's ``chore(orders_db): verify phase 2 Migration Setup``); the
checkpoint's body says who verified it, when, the note and waivers, and lists the
phase's tasks with their SHAs. ``<task>`` is the task's text without a leading ``Task:``, first letter lowered
unless it starts an acronym (``Declare …`` → ``declare …``, ``SQLAlchemy`` stays).
A task is a migration task when its phase's kind is ``migration`` or when every
file it changed, besides the conductor's own files (plan.md, metadata.json,
verification.json, test_runs.json, tracks.md), is under ``migrations/``.
Migration files are kept out of code commits: when a task (or phase) changed both
migration files and other work, the migrations folder is committed first on its
own, then everything else (with the conductor's files, so the tick lands in the
last commit). Every message ends with a ``Storage-Id: <id>`` trailer
(``git commit --trailer``).

Short SHAs are at least git's abbreviation and grow until they hold a digit and a
letter, so plan.md's reader can always tell them from words and numbers.

The session writes a task's short SHA (`` (abc1234)``) onto its line, and a
checkpoint's ``[checkpoint: abc1234]`` onto its phase heading, *after* the commit:
that edit is left in the working tree and rides along in the next commit (the next
task's, or the phase's checkpoint). Amending would change the very SHA it records.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .fsio import is_tool_temp
from .workspace.layout import BOOKKEEPING_FILES, EMBEDDED_DATABASE, MIGRATIONS_FOLDER
from .workspace.workflow import NO_COMMITS, PER_PHASE, PER_TASK, WorkflowPreferences

GIT_TIMEOUT_S = 120.0
TRAILER_KEY = "Storage-Id"
#: files the conductor itself writes in a component folder (they travel with the last commit)
#: the embedded database and its journals (never committed, ignored or not)
_EMBEDDED_RE = re.compile("^" + re.escape(EMBEDDED_DATABASE))
#: a writer's temporary file (workspace/files.py atomic_write_bytes)
_TASK_PREFIX_RE = re.compile(r"^task\s*:\s*", re.IGNORECASE)
_PHASE_PREFIX_RE = re.compile(r"^(phase|stage|milestone|step)\s*[0-9.]*\s*[:.\-–—]\s*", re.IGNORECASE)

NOT_A_REPOSITORY = "not a git repository"


class GitError(Exception):
    """A git command failed; the message is git's own explanation."""


@dataclass
class CommitInfo:
    """One commit the tool made."""

    sha: str
    short_sha: str
    message: str
    files: list[str]

    @property
    def subject(self) -> str:
        return self.message.splitlines()[0] if self.message else ""

    def to_json(self) -> dict[str, Any]:
        return {"sha": self.sha, "short_sha": self.short_sha, "subject": self.subject,
                "message": self.message, "files": self.files}


@dataclass
class CommitResult:
    """What committing a task or a phase did (or why it did nothing).

    ``sha``/``short_sha``/``message`` are those of the last commit made: the one
    holding the tick (task) or the verification record (checkpoint). A task that
    changed migration files and other work makes two commits; ``commits`` has both.
    """

    kind: str  # "task" | "checkpoint"
    commits: list[CommitInfo] = field(default_factory=list)
    #: paths staged before the tool ran, outside what it commits: left staged, uncommitted
    left_alone: list[str] = field(default_factory=list)
    #: why nothing was committed (no repository, strategy, nothing to commit, git failed)
    skipped_reason: str | None = None
    #: git problems (the tick or verdict is written regardless)
    warnings: list[str] = field(default_factory=list)
    note_attached: bool = False
    repository: Path | None = None
    strategy: str | None = None

    @property
    def committed(self) -> bool:
        return bool(self.commits)

    @property
    def last(self) -> CommitInfo | None:
        return self.commits[-1] if self.commits else None

    @property
    def sha(self) -> str | None:
        return self.last.sha if self.last else None

    @property
    def short_sha(self) -> str | None:
        return self.last.short_sha if self.last else None

    @property
    def message(self) -> str | None:
        return self.last.message if self.last else None

    @property
    def files(self) -> list[str]:
        return [f for c in self.commits for f in c.files]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "strategy": self.strategy,
            "repository": str(self.repository) if self.repository else None,
            "committed": self.committed, "sha": self.sha, "short_sha": self.short_sha,
            "message": self.message, "files": self.files,
            "commits": [c.to_json() for c in self.commits],
            "note_attached": self.note_attached, "left_alone": self.left_alone,
            "skipped_reason": self.skipped_reason, "warnings": self.warnings,
        }

    def text_lines(self) -> list[str]:
        """Lines for the CLI and the magics; quiet when commits were never asked for."""
        lines = [f"committed {c.short_sha} {c.subject} ({_files_text(c.files)})" for c in self.commits]
        if self.note_attached and self.last:
            lines.append(f"verification report attached to {self.last.short_sha} as a git note")
        if self.left_alone:
            lines.append("left staged and uncommitted (staged before conductor ran): "
                         + ", ".join(self.left_alone[:10])
                         + (f" and {len(self.left_alone) - 10} more" if len(self.left_alone) > 10 else ""))
        if self.skipped_reason == "nothing to commit":
            lines.append("no commit: nothing to commit")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return lines


def _files_text(files: list[str]) -> str:
    return "1 file" if len(files) == 1 else f"{len(files)} files"


# -- git plumbing ----------------------------------------------------------------------------


def _git_env(literal: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    env.pop("GIT_LITERAL_PATHSPECS", None)
    if literal:
        env["GIT_LITERAL_PATHSPECS"] = "1"
    return env


def run_git(args: list[str], cwd: Path, *, input: str | None = None,
            literal: bool = False) -> subprocess.CompletedProcess:
    """Run ``git ARGS`` in ``cwd``; a non-zero exit raises :class:`GitError` with git's words."""
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True,
                              text=True, encoding="utf-8", errors="surrogateescape",
                              env=_git_env(literal), timeout=GIT_TIMEOUT_S, check=False,
                              stdin=None if input is not None else subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise GitError("git is not installed (no `git` on PATH)") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"`git {args[0]}` did not finish within {GIT_TIMEOUT_S:.0f} s") from exc
    except OSError as exc:
        raise GitError(f"cannot run git: {exc}") from exc
    if proc.returncode != 0:
        detail = " ".join((proc.stderr or proc.stdout or "").split()) or f"exit status {proc.returncode}"
        raise GitError(f"`git {args[0]}` failed: {detail}")
    return proc


def _nul_join(paths: list[str]) -> str:
    return "".join(f"{p}\0" for p in paths)


def _nul_list(text: str) -> list[str]:
    return [p for p in text.split("\0") if p]


class Repository:
    """The git work tree a workspace lives in."""

    def __init__(self, top: Path):
        self.top = Path(top)

    @classmethod
    def find(cls, folder: Path) -> tuple[Repository | None, str | None]:
        """(repository, None), or (None, why not): ``not a git repository`` or git's complaint."""
        folder = Path(folder)
        if not folder.is_dir():
            return None, NOT_A_REPOSITORY
        try:
            proc = run_git(["rev-parse", "--show-toplevel"], folder)
        except GitError as exc:
            text = str(exc)
            if "not a git repository" in text.lower():
                return None, NOT_A_REPOSITORY
            return None, text
        top = proc.stdout.strip()
        if not top:  # inside .git or a bare repository: no work tree
            return None, NOT_A_REPOSITORY
        return cls(Path(top)), None

    def git(self, *args: str, input: str | None = None, literal: bool = False) -> subprocess.CompletedProcess:
        return run_git(list(args), self.top, input=input, literal=literal)

    def relative(self, path: Path) -> str | None:
        """``path`` relative to the work tree (POSIX form), or None when it is outside."""
        try:
            rel = Path(os.path.realpath(path)).relative_to(os.path.realpath(self.top))
        except ValueError:
            return None
        return rel.as_posix() if str(rel) != "." else ""

    def changed(self, pathspecs: list[str]) -> list[str]:
        """Files under ``pathspecs`` that are modified, deleted, new (not ignored) or staged."""
        found: list[str] = []
        for args in (["ls-files", "-z", "--modified", "--others", "--exclude-standard"],
                     ["ls-files", "-z", "--deleted"]):
            found.extend(_nul_list(self.git(*args, "--", *pathspecs).stdout))
        found.extend(self.staged(pathspecs))
        return sorted(set(found))

    def staged(self, pathspecs: list[str] | None = None) -> list[str]:
        """Paths whose index entry differs from HEAD (all of them on an unborn branch)."""
        base = ["--cached", "--name-only", "-z", "--no-renames"]
        if self.head() is None:
            base.append(self.empty_tree())
        extra = ["--", *pathspecs] if pathspecs is not None else []
        return _nul_list(self.git("diff", *base, *extra).stdout)

    def head(self) -> str | None:
        try:
            return self.git("rev-parse", "--verify", "-q", "HEAD").stdout.strip() or None
        except GitError:
            return None

    def empty_tree(self) -> str:
        return self.git("hash-object", "-t", "tree", "--stdin", input="").stdout.strip()

    def short(self, sha: str) -> str:
        """An abbreviation of ``sha`` that is unique and holds a digit and a letter."""
        try:
            size = len(self.git("rev-parse", "--short", sha).stdout.strip())
        except GitError:
            size = 7
        size = max(size, 7)
        while size < len(sha) and not (re.search(r"[0-9]", sha[:size]) and re.search(r"[a-f]", sha[:size])):
            size += 1
        return sha[:size]

    def commit(self, files: list[str], message: str, trailers: list[str],
               staged_before: frozenset[str] = frozenset()) -> CommitInfo:
        """Commit exactly ``files`` (their working-tree state) with ``--only`` semantics.

        When the commit fails, files the tool staged for it (not ``staged_before``) are
        unstaged again, so a failed attempt leaves the index as it found it.
        """
        listing = _nul_join(files)
        # New files must be known to the index before `git commit -- paths` takes them.
        self.git("add", "--all", "--pathspec-from-file=-", "--pathspec-file-nul", input=listing,
                 literal=True)
        args = ["commit", "--quiet", "--only", "-m", message]
        for trailer in trailers:
            args += ["--trailer", trailer]
        try:
            self.git(*args, "--pathspec-from-file=-", "--pathspec-file-nul", input=listing, literal=True)
        except GitError:
            self.unstage([f for f in files if f not in staged_before])
            raise
        sha = self.git("rev-parse", "HEAD").stdout.strip()
        body = self.git("log", "-1", "--format=%B", sha).stdout.rstrip("\n")
        return CommitInfo(sha=sha, short_sha=self.short(sha), message=body, files=list(files))

    def unstage(self, files: list[str]) -> None:
        """Reset the index entries of ``files`` to HEAD (best effort)."""
        if not files:
            return
        args = (["reset", "-q"] if self.head() is not None
                else ["rm", "--cached", "-q", "-r", "--ignore-unmatch"])
        with contextlib.suppress(GitError):
            self.git(*args, "--pathspec-from-file=-", "--pathspec-file-nul", input=_nul_join(files),
                     literal=True)

    def add_note(self, sha: str, text: str) -> None:
        self.git("notes", "add", "-f", "-F", "-", sha, input=text)


# -- what to commit ----------------------------------------------------------------------------


@dataclass
class _Scope:
    repo: Repository
    workspace: str  # repo-relative folder of the workspace ("" at the top)
    component: str  # repo-relative folder of the component (no trailing slash)
    pathspecs: list[str]
    warnings: list[str]
    staged_before: frozenset[str] = frozenset()


def _scope(repo: Repository, workspace_dir: Path, storage_id: str, project_root: Path,
           commit_paths: list[str]) -> _Scope | None:
    ws = repo.relative(workspace_dir)
    if ws is None:
        return None
    prefix = f"{ws}/" if ws else ""
    component = f"{prefix}storages/{storage_id}"
    pathspecs = [f":(literal){component}/", f":(literal){prefix}tracks.md"]
    warnings: list[str] = []
    for raw in commit_paths:
        spec = _user_pathspec(repo, project_root, raw)
        if spec is None:
            warnings.append(f"commit path '{raw}' is not a path inside the repository {repo.top} "
                            "(below its top folder); not committed")
        elif spec not in pathspecs:
            pathspecs.append(spec)
    return _Scope(repo, ws, component, pathspecs, warnings)


def _user_pathspec(repo: Repository, project_root: Path, raw: str) -> str | None:
    """A workflow.md commit path as a pathspec relative to the work tree (globs kept), or
    None when it is empty, pathspec magic, the whole repository or outside it."""
    text = raw.strip()
    if not text or text.startswith(":"):
        return None
    trailing = "/" if text.endswith("/") else ""
    candidate = Path(text) if Path(text).is_absolute() else Path(project_root) / text
    rel = repo.relative(Path(os.path.normpath(candidate)))  # `..` resolved lexically
    if not rel:
        return None
    return rel + trailing


def _allowed(path: str) -> bool:
    name = PurePosixPath(path).name
    return not (_EMBEDDED_RE.match(name) or is_tool_temp(name))


def _is_migration(path: str, component: str) -> bool:
    return path.startswith(f"{component}/{MIGRATIONS_FOLDER}/")


def _is_bookkeeping(path: str, scope: _Scope) -> bool:
    """plan.md, metadata.json, verification.json, test_runs.json of the component; tracks.md."""
    pure = PurePosixPath(path)
    if str(pure.parent) == scope.component and pure.name in BOOKKEEPING_FILES:
        return True
    return path == (f"{scope.workspace}/tracks.md" if scope.workspace else "tracks.md")


def describe_task(name: str) -> str:
    """A task's name as a commit subject says it: the number prefix gone, lower-case start."""
    text = " ".join(_TASK_PREFIX_RE.sub("", name.strip()).split())
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def phase_name(title: str) -> str:
    """``Phase 2: Migration Setup`` → ``Migration Setup`` (the number is said separately)."""
    text = " ".join(title.split())
    return _PHASE_PREFIX_RE.sub("", text) or text


def plain_task_name(name: str) -> str:
    """A task's name without its number prefix, whitespace folded."""
    return " ".join(_TASK_PREFIX_RE.sub("", name.strip()).split())


# -- the two operations ------------------------------------------------------------------------


def _prepare(kind: str, workspace_dir: Path, storage_id: str, prefs: WorkflowPreferences,
             project_root: Path | None, wanted: set[str]
             ) -> tuple[CommitResult, _Scope | None, list[str]]:
    """(result, scope, files to commit); no scope when there is nothing to do (see the result)."""
    result = CommitResult(kind=kind, strategy=prefs.commits)
    if prefs.commits not in wanted:
        result.skipped_reason = ("workflow.md asks for no commits" if prefs.commits == NO_COMMITS
                                 else f"commit strategy is {prefs.commits}")
        return result, None, []
    repo, why = Repository.find(workspace_dir)
    if repo is None:
        result.skipped_reason = why
        if why != NOT_A_REPOSITORY:
            result.warnings.append(str(why))
        return result, None, []
    result.repository = repo.top
    scope = _scope(repo, workspace_dir, storage_id, Path(project_root or Path(workspace_dir).parent),
                   prefs.commit_paths)
    if scope is None:
        result.skipped_reason = NOT_A_REPOSITORY
        return result, None, []
    result.warnings.extend(scope.warnings)
    try:
        staged_before = repo.staged()
        files = [f for f in repo.changed(scope.pathspecs) if _allowed(f)]
    except GitError as exc:
        result.skipped_reason = "git failed"
        result.warnings.append(str(exc))
        return result, None, []
    chosen = set(files)
    result.left_alone = [p for p in staged_before if p not in chosen]
    scope.staged_before = frozenset(staged_before)
    if not files:
        result.skipped_reason = "nothing to commit"
    return result, scope, files


def _split(files: list[str], scope: _Scope) -> tuple[list[str], list[str], list[str]]:
    """(migration files, other work files, the conductor's own files)."""
    migrations = [f for f in files if _is_migration(f, scope.component)]
    own = [f for f in files if f not in migrations and _is_bookkeeping(f, scope)]
    work = [f for f in files if f not in migrations and f not in own]
    return migrations, work, own


def _commit_all(result: CommitResult, scope: _Scope, batches: list[tuple[list[str], str]],
                trailers: list[str]) -> CommitResult:
    for files, message in batches:
        if not files:
            continue
        try:
            result.commits.append(scope.repo.commit(files, message, trailers, scope.staged_before))
        except GitError as exc:
            result.skipped_reason = "git failed" if not result.commits else None
            result.warnings.append(f"{exc} (nothing was lost: the files are written, "
                                   "commit them yourself)")
            break
    return result


def commit_task(workspace_dir: Path, storage_id: str, task_name: str, *,
                prefs: WorkflowPreferences, phase_kind: str | None = None,
                project_root: Path | None = None) -> CommitResult:
    """Commit a ticked task's work when workflow.md asks for per-task commits."""
    result, scope, files = _prepare("task", workspace_dir, storage_id, prefs, project_root, {PER_TASK})
    if scope is None or not files:
        return result
    migrations, work, own = _split(files, scope)
    conventional = prefs.conventional_commits
    migration_task = phase_kind == "migration" or (bool(migrations) and not work)
    kind = "migration" if migration_task else "feat"
    batches: list[tuple[list[str], str]] = []
    if migrations and work:
        batches.append((migrations, f"migration({storage_id}): {describe_task(task_name)}" if conventional
                        else f"{plain_task_name(task_name)} (migrations)"))
        batches.append((work + own, f"feat({storage_id}): {describe_task(task_name)}" if conventional
                        else plain_task_name(task_name)))
    else:
        batches.append((files, f"{kind}({storage_id}): {describe_task(task_name)}" if conventional
                        else plain_task_name(task_name)))
    return _commit_all(result, scope, batches, [f"{TRAILER_KEY}: {storage_id}"])


def commit_phase(workspace_dir: Path, storage_id: str, phase_number: int, phase_title: str, *,
                 prefs: WorkflowPreferences, body: str = "", note: str | None = None,
                 project_root: Path | None = None) -> CommitResult:
    """The checkpoint commit at a phase's verification (with per-phase commits: the phase's
    commit of all its work), then ``note`` attached to it as a git note."""
    result, scope, files = _prepare("checkpoint", workspace_dir, storage_id, prefs, project_root,
                                       {PER_TASK, PER_PHASE})
    if scope is None or not files:
        return result
    migrations, work, own = _split(files, scope)
    title = phase_name(phase_title)
    conventional = prefs.conventional_commits
    subject = (f"chore({storage_id}): verify phase {phase_number} {title}" if conventional
               else f"Verify phase {phase_number}: {title}")
    message = subject + (f"\n\n{body.strip()}" if body.strip() else "")
    batches: list[tuple[list[str], str]] = []
    if migrations and work:
        batches.append((migrations, f"migration({storage_id}): {title}" if conventional
                        else f"{title} (migrations)"))
        batches.append((work + own, message))
    else:
        batches.append((files, message))
    _commit_all(result, scope, batches, [f"{TRAILER_KEY}: {storage_id}"])
    if note is not None and result.committed and len(result.commits) == len(batches):
        try:
            scope.repo.add_note(result.sha, note)
            result.note_attached = True
        except GitError as exc:
            result.warnings.append(f"the verification report was not attached as a git note: {exc}")
    return result


def verification_note(storage_id: str, record: dict[str, Any], tasks: list[dict[str, Any]]) -> str:
    """The git note of a checkpoint: the verdict record and the phase's checks, as JSON."""
    report = {
        "storage_id": storage_id,
        "phase": {"number": record.get("phase_number", record.get("phase")), "title": record.get("phase_title"),
                  "kind": record.get("phase_kind")},
        "verdict": record,
        "checks": record.get("checks", []),
        "waivers": record.get("waivers", {}),
        "tasks": tasks,
    }
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"
