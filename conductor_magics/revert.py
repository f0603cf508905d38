"""``revert {task,phase,component} REF``: undo recorded work through git, and reopen the plan.

Session level (no Jupyter). It never imports the session (that imports it): it is handed
one and uses its public methods (``active``, ``phase_states``, ``preferences``,
``database``, ``workspace``, ``user``, ``clock``).

What is reverted are the commits the tool recorded: the task SHAs on plan.md's lines,
the ``[checkpoint: …]`` of verified phase headings, and the migrations-only commit the
tool makes just before a task's (or phase's) own when both changed (found by its
subject and ``Storage-Id:`` trailer). Only done tasks' SHAs count (a reopened task's
SHA was reverted already). The reverts run newest first, in a scratch worktree first
(:func:`.history.trial_revert`), so a conflict changes nothing; the tool's own files are
kept out of them and edited here instead: tasks reopen with one-byte edits, a verdict
is revoked by an appended ``revocation`` record (the history stays), the heading loses
its annotation, and a Completed component (any component, for ``revert component``)
goes back to In Progress. Those edits are committed like the tool's other bookkeeping
(``git commit --only`` of exactly those files, ``Storage-Id:`` trailer).

A recorded SHA that is not in HEAD's history (rebased, squashed, amended) is a *ghost*:
commits with the same subject and trailer are shown as candidates, and nothing is
reverted until the user names one with ``--match GHOST=SHA``.

A revision file the reverts would delete while the live database has it applied is
refused unless ``--downgrade``, which runs ``migrate down`` to just before it first (with
its pre-migration backup, as workflow.md says), after the trial reverts succeeded.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from .commits import (
    NOT_A_REPOSITORY,
    TRAILER_KEY,
    GitError,
    Repository,
    describe_task,
    phase_name,
    plain_task_name,
)
from .errors import ConductorError, command, option
from .history import (
    HistoryCommit,
    TrialRevert,
    already_reverted,
    commit_of,
    dirty,
    fast_forward,
    files_of,
    history,
    operation_in_progress,
    subject_of,
    trial_revert,
)
from .workspace.layout import BOOKKEEPING_FILES, EMBEDDED_DATABASE, MIGRATION_VERSIONS
from .workspace.plan import (
    Phase,
    Plan,
    Task,
    unannotate_phase_bytes,
    write_plan_edit,
    write_task_state,
)
from .workspace.status import COMPLETED, IN_PROGRESS
from .workspace.verification import REVOCATION, append_record, phase_fields
from .workspace.workflow import NO_COMMITS, PER_TASK

KINDS = ("task", "phase", "component")
_REVISION_RE = re.compile(r"""^revision\s*(?::\s*\w+\s*)?=\s*['"]([^'"]+)['"]""", re.MULTILINE)
_DOWN_RE = re.compile(r"""^down_revision\s*(?::[^=]+)?=\s*(None|['"]([^'"]+)['"]|\(([^)]*)\))""",
                      re.MULTILINE)


class RevertRefused(ConductorError):
    """``revert`` would not go ahead; nothing was changed (exit 2)."""


@dataclass
class Recorded:
    """One commit to revert, as recorded (``ref``) and as found in history (``sha``)."""

    ref: str
    what: str  # "task 1.2", "phase 1 checkpoint", "task 1.2 (migrations)"
    sha: str | None = None
    subject: str = ""
    files: list[str] = field(default_factory=list)
    #: the recorded SHA is not in HEAD's history: candidates by subject and trailer
    ghost: bool = False
    candidates: list[HistoryCommit] = field(default_factory=list)
    matched: bool = False  # the user named its replacement with --match
    position: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"recorded": self.ref, "for": self.what, "sha": self.sha, "subject": self.subject,
                "files": self.files, "ghost": self.ghost, "matched": self.matched,
                "candidates": [{"sha": c.sha, "subject": c.subject} for c in self.candidates]}


@dataclass
class Revision:
    """A migration revision file the reverts would delete."""

    revision: str
    down_revision: str | None
    path: str
    applied: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"revision": self.revision, "down_revision": self.down_revision, "path": self.path,
                "applied": self.applied}


@dataclass
class RevertResult:
    """What ``revert`` would do (dry run) or did; satisfies :class:`~.results.Result`."""

    kind: str
    ref: str
    storage_id: str
    dry_run: bool
    commits: list[Recorded] = field(default_factory=list)
    reopen: list[Task] = field(default_factory=list)
    revoke: list[Phase] = field(default_factory=list)
    lock_again: list[Phase] = field(default_factory=list)
    status_before: str | None = None
    status_after: str | None = None
    revisions: list[Revision] = field(default_factory=list)
    downgrade_to: str | None = None
    #: what stops ``--confirm`` (shown by a dry run)
    blockers: list[str] = field(default_factory=list)
    made: list[tuple[str, str]] = field(default_factory=list)
    bookkeeping_only: list[str] = field(default_factory=list)
    downgrade: dict[str, Any] | None = None
    bookkeeping_commit: str | None = None
    warnings: list[str] = field(default_factory=list)
    exit_code: int = 0

    @property
    def ghosts(self) -> list[Recorded]:
        return [c for c in self.commits if c.ghost and not c.matched]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "ref": self.ref, "storage_id": self.storage_id,
            "dry_run": self.dry_run, "carried_out": not self.dry_run,
            "commits": [c.to_json() for c in self.commits],
            "reopen": [{"number": t.number, "name": t.name} for t in self.reopen],
            "revoke": [{"number": p.number, "title": p.title} for p in self.revoke],
            "lock_again": [{"number": p.number, "title": p.title} for p in self.lock_again],
            "status_before": self.status_before, "status_after": self.status_after,
            "revisions": [r.to_json() for r in self.revisions], "downgrade_to": self.downgrade_to,
            "blockers": self.blockers,
            "reverted": [{"sha": old, "revert_sha": new} for old, new in self.made],
            "bookkeeping_only": self.bookkeeping_only, "downgrade": self.downgrade,
            "bookkeeping_commit": self.bookkeeping_commit, "warnings": self.warnings,
        }

    def to_text(self) -> str:
        head = f"revert {self.kind} {self.ref} of {self.storage_id}"
        lines = [head + (": dry run, nothing changed" if self.dry_run else ": done")]
        if self.commits:
            lines.append("commits to revert, newest first:" if self.dry_run
                         else "commits reverted, newest first:")
            for c in self.commits:
                if c.ghost and not c.matched:
                    lines.append(f"  {c.ref} ({c.what}) is not in the history (rebased or squashed?)")
                    if c.candidates:
                        lines.extend(f"    candidate {cand.sha[:12]} {cand.subject}" for cand in c.candidates)
                    else:
                        lines.append("    no commit with the same subject and trailer")
                    continue
                seen = f" (recorded as {c.ref})" if c.matched else ""
                lines.append(f"  {c.sha[:12]} {c.subject} [{c.what}]{seen}")
        else:
            lines.append("no commits to revert")
        if self.reopen:
            lines.append("tasks reopened: " if not self.dry_run else "tasks to reopen: ")
            lines[-1] += ", ".join(t.number for t in self.reopen)
        if self.revoke:
            lines.append(("verdicts revoked: " if not self.dry_run else "verdicts to revoke: ")
                         + ", ".join(p.label for p in self.revoke))
        if self.lock_again:
            lines.append("phases locked again: " + ", ".join(str(p.number) for p in self.lock_again))
        if self.status_after and self.status_after != self.status_before:
            lines.append(f"status: {self.status_before} → {self.status_after}")
        for r in self.revisions:
            lines.append(f"revision {r.revision} ({r.path}): "
                         + ("applied to the live database" if r.applied else "not applied"))
        if self.downgrade_to:
            lines.append(("downgraded" if self.downgrade else "needs a downgrade")
                         + f" to {self.downgrade_to}")
        if self.bookkeeping_only:
            lines.append("only the tool's own files (edited, not reverted): "
                         + ", ".join(s[:12] for s in self.bookkeeping_only))
        if self.bookkeeping_commit:
            lines.append(f"committed the plan's bookkeeping as {self.bookkeeping_commit[:12]}")
        lines.extend(f"would refuse: {b}" for b in self.blockers)
        lines.extend(f"warning: {w}" for w in self.warnings)
        if self.dry_run and not self.blockers:
            lines.append(f"carry it out with {option('confirm')}")
        return "\n".join(lines)


# -- planning --------------------------------------------------------------------------------


def _task_subjects(storage_id: str, task: Task) -> tuple[set[str], set[str]]:
    """(subjects of the task's own commit, of its migrations-only commit)."""
    described = describe_task(task.name)
    own = {f"feat({storage_id}): {described}", f"migration({storage_id}): {described}",
           plain_task_name(task.name)}
    return own, {f"migration({storage_id}): {described}", f"{plain_task_name(task.name)} (migrations)"}


def _phase_subjects(storage_id: str, phase: Phase) -> tuple[set[str], set[str]]:
    title = phase_name(phase.title)
    own = {f"chore({storage_id}): verify phase {phase.number} {title}",
           f"Verify phase {phase.number}: {title}"}
    return own, {f"migration({storage_id}): {title}", f"{title} (migrations)"}


@dataclass
class _Want:
    ref: str
    what: str
    subjects: set[str]
    migration_subjects: set[str]


def _parse_matches(items: list[str]) -> dict[str, str]:
    matches = {}
    for item in items:
        ghost, sep, sha = item.partition("=")
        if not sep or not ghost.strip() or not sha.strip():
            raise RevertRefused(f"--match takes GHOST=SHA, got '{item}'")
        matches[ghost.strip().lower()] = sha.strip()
    return matches


def _matched(matches: dict[str, str], ref: str) -> str | None:
    for ghost, sha in matches.items():
        if ghost.startswith(ref.lower()) or ref.lower().startswith(ghost):
            return sha
    return None


def _resolve(repo: Repository, storage_id: str, wants: list[_Want], matches: dict[str, str],
             commits: list[HistoryCommit]) -> list[Recorded]:
    by_sha = {c.sha: c for c in commits}
    found: dict[str, Recorded] = {}
    ghosts: list[Recorded] = []
    for want in wants:
        sha = commit_of(repo, want.ref)
        record = Recorded(ref=want.ref, what=want.what)
        replacement = _matched(matches, want.ref) if sha not in by_sha else None
        if replacement is not None:
            sha = commit_of(repo, replacement)
            if sha not in by_sha:
                raise RevertRefused(f"--match {want.ref}={replacement}: {replacement} is not a commit "
                                    "in the current branch's history",
                                    hint="name one of the candidates a dry run shows")
            record.matched = True
        if sha in by_sha:
            record.sha, record.subject = sha, by_sha[sha].subject
            record.ghost = record.matched
        else:
            record.ghost = True
            subjects = set(want.subjects)
            if sha is not None:  # the old object is still there: its own subject is best
                subjects.add(subject_of(repo, sha))
            record.candidates = [c for c in commits if c.subject in subjects
                                 and storage_id in c.storage_ids]
            ghosts.append(record)
            continue
        if record.sha not in found:
            found[record.sha] = record
        # the migrations-only commit made just before this one for the same task or phase
        parents = by_sha[record.sha].parents
        parent = by_sha.get(parents[0]) if parents else None
        if (parent is not None and parent.subject in want.migration_subjects
                and storage_id in parent.storage_ids and parent.sha not in found):
            found[parent.sha] = Recorded(ref=parent.sha[:12], what=f"{want.what} (migrations)",
                                         sha=parent.sha, subject=parent.subject)
    resolved = sorted(found.values(), key=lambda r: by_sha[r.sha].position)
    for r in resolved:
        r.position = by_sha[r.sha].position
        r.files = files_of(repo, r.sha)
    return resolved + ghosts


def _select(kind: str, ref: str | None, plan: Plan, states: list[Any]
            ) -> tuple[list[Task], list[Phase], list[Task]]:
    """(tasks whose commits to revert, phases whose checkpoints to revert, tasks to reopen)."""
    if kind == "task":
        if not ref:
            raise RevertRefused("revert task needs a task", hint="by number like 2.3, or its text")
        task = plan.find(ref)
        phase = plan.phases[task.phase_index] if task.phase_index is not None else None
        tasks = list(task.walk())
        # a done parent task was ticked after this one: it reopens too
        parents = [t for t in (phase.items() if phase else []) if t is not task
                   and any(c is task for c in t.walk())]
        reopen = [t for t in tasks + parents if t.state == "done"]
        return tasks, [], reopen
    if kind == "phase":
        if not ref or not ref.strip().isdigit():
            raise RevertRefused(f"revert phase needs a phase number, got '{ref or ''}'",
                                hint="e.g. revert phase --id ID 2")
        phase = plan.phase(int(ref))
        return list(phase.items()), [phase], [t for t in phase.items() if t.state == "done"]
    if ref:
        raise RevertRefused(f"revert component takes no reference, got '{ref}'",
                            hint=f"name the component with {option('id', 'ID')}")
    tasks = list(plan.items())
    return tasks, list(plan.phases), [t for t in tasks if t.state == "done"]


def _revisions(repo: Repository, component_rel: str, commits: list[Recorded]) -> list[Revision]:
    """Revision files the recorded commits added (the reverts delete them)."""
    prefix = f"{component_rel}/{MIGRATION_VERSIONS}/"
    found: list[Revision] = []
    for c in commits:
        if c.sha is None:
            continue
        added = repo.git("diff-tree", "--no-commit-id", "-r", "--name-only", "-z", "--root",
                         "--no-renames", "--diff-filter=A", c.sha).stdout.split("\0")
        for path in (p for p in added if p.startswith(prefix) and p.endswith(".py")):
            text = repo.git("show", f"{c.sha}:{path}", literal=True).stdout
            rev = _REVISION_RE.search(text)
            if rev is None:
                continue
            down = _DOWN_RE.search(text)
            down_rev = None
            if down is not None and down.group(1) != "None":
                down_rev = down.group(2) or (down.group(3) or "").split(",")[0].strip(" '\"") or None
            found.append(Revision(rev.group(1), down_rev, path))
    return found


def _applied(session: Any, component: Any, revisions: list[Revision], url: str | None,
             engine: Any) -> tuple[Any, set[str]]:
    """(the live database, the revisions it has applied), or (None, ∅) when there is no
    database to look at (no URL and no embedded file: nothing can be applied)."""
    if not revisions:
        return None, set()
    from .engine.connection import URL_ENV
    from .engine.migrations import live_heads

    if (url is None and engine is None and not os.environ.get(URL_ENV)
            and not (component.dir / EMBEDDED_DATABASE).exists()):
        return None, set()  # connecting would create the embedded file

    db = session.database(component.id, url=url, engine=engine)
    heads = live_heads(db.engine)
    graph = _revision_graph(component.dir / MIGRATION_VERSIONS)
    applied: set[str] = set()
    stack = list(heads)
    while stack:
        rev = stack.pop()
        if rev in applied:
            continue
        applied.add(rev)
        stack.extend(graph.get(rev, []))
    return db, applied


def _revision_graph(folder: Any) -> dict[str, list[str]]:
    graph: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*.py")) if folder.is_dir() else []:
        text = path.read_text(encoding="utf-8", errors="replace")
        rev = _REVISION_RE.search(text)
        down = _DOWN_RE.search(text)
        if rev is None:
            continue
        parents: list[str] = []
        if down is not None and down.group(1) != "None":
            parents = [down.group(2)] if down.group(2) else [
                p.strip(" '\"") for p in (down.group(3) or "").split(",") if p.strip(" '\"")]
        graph[rev.group(1)] = parents
    return graph


def _downgrade_target(revisions: list[Revision]) -> str | None:
    """Just before the oldest applied revision the reverts delete (``base`` at the root)."""
    applied = [r for r in revisions if r.applied]
    if not applied:
        return None
    ids = {r.revision for r in applied}
    oldest = next((r for r in applied if r.down_revision not in ids), applied[-1])
    return oldest.down_revision or "base"


# -- the command -----------------------------------------------------------------------------


def revert(session: Any, kind: str, ref: str | None, storage_id: str | None = None, *,
           confirm: bool = False, dry_run: bool = False, downgrade: bool = False,
           matches: list[str] | None = None, url: str | None = None,
           engine: Any = None) -> RevertResult:
    """Revert a task, a phase or a whole component (see the module docstring). Without
    ``confirm`` (or with ``dry_run``) nothing is changed: the result says what would be."""
    if kind not in KINDS:
        raise RevertRefused(f"unknown revert kind '{kind}'", hint="task, phase or component")
    # Carried out under the workspace lock from the first read to the last commit, so a
    # tick (and its commit) from another kernel cannot slip in between (it is re-entrant:
    # migrate down and the plan edits take it again).
    holding = session.workspace.lock() if confirm and not dry_run else contextlib.nullcontext()
    with holding:
        return _revert(session, kind, ref, storage_id, confirm=confirm, dry_run=dry_run,
                       downgrade=downgrade, matches=matches, url=url, engine=engine)


def _revert(session: Any, kind: str, ref: str | None, storage_id: str | None, *, confirm: bool,
            dry_run: bool, downgrade: bool, matches: list[str] | None, url: str | None,
            engine: Any) -> RevertResult:
    ws = session.workspace
    component = session.active(storage_id)
    cid = component.id
    repo, why = Repository.find(ws.dir)
    if repo is None:
        raise RevertRefused(f"revert needs git: {ws.dir} is {why}" if why == NOT_A_REPOSITORY
                            else f"revert needs git: {why}", path=ws.dir,
                            hint="revert works on the commits the tool recorded; commit the "
                                 "workspace in a git repository first")
    component_rel = repo.relative(component.dir)
    tracks_rel = repo.relative(ws.tracks_path)
    if component_rel is None:
        raise RevertRefused(f"{component.dir} is outside the git repository {repo.top}")
    matched = _parse_matches(matches or [])
    plan = component.read_plan()
    states = session.phase_states(component, plan)
    tasks, phases, reopen = _select(kind, ref, plan, states)
    if kind == "task" and not any(t.sha for t in tasks if t.state == "done"):
        task = tasks[0]
        if task.state != "done":
            raise RevertRefused(f"task {task.number} is not done: nothing to revert",
                                path=component.plan_path, line=task.line)
        per_phase = session.preferences().commits != PER_TASK
        raise RevertRefused(
            f"task {task.number} has no commit of its own"
            + (" (commits are made per phase)" if per_phase else " recorded on its line"),
            path=component.plan_path, line=task.line,
            hint=f"revert its phase: {command('revert phase', option('id', cid), str(task.phase_number))}")
    wants: list[_Want] = []
    for t in tasks:
        if t.state == "done" and t.sha:
            own, mig = _task_subjects(cid, t)
            wants.append(_Want(t.sha, f"task {t.number}", own, mig))
    verified = {s.phase.index for s in states if s.verified}
    for p in phases:
        if p.checkpoint and p.index in verified:
            own, mig = _phase_subjects(cid, p)
            wants.append(_Want(p.checkpoint, f"phase {p.number} checkpoint", own, mig))
    try:
        commits = history(repo)
        recorded = _resolve(repo, cid, wants, matched, commits)
        gone = already_reverted(repo)
    except GitError as exc:
        raise RevertRefused(f"revert cannot read the git history: {exc}", path=repo.top) from None
    # a task reopened by an earlier revert and ticked again without a new commit (per-phase
    # commits) still shows its old SHA: that commit is reverted already, not again
    skipped = [c for c in recorded if c.sha in gone]
    recorded = [c for c in recorded if c.sha not in gone]

    # which verdicts go: the phases reverted, and the phase of a reverted task if verified
    revoke_idx = {p.index for p in phases if p.index in verified}
    revoke_idx |= {t.phase_index for t in reopen if t.phase_index in verified}
    if kind != "task" and not recorded and not revoke_idx and not reopen:
        raise RevertRefused(f"{kind} {ref or cid} has nothing recorded to revert "
                            "(no done task, no verified phase)", path=component.plan_path)
    revoke = [p for p in plan.phases if p.index in revoke_idx]
    # a revoked verdict locks the later phases again until the phase is verified anew
    first = min(revoke_idx, default=None)
    lock_again = [s.phase for s in states if first is not None and s.phase.index > first
                  and not s.locked]
    status_after = IN_PROGRESS if (kind == "component" or component.status == COMPLETED) else None
    result = RevertResult(kind, ref or cid, cid, dry_run or not confirm, recorded, reopen, revoke,
                          lock_again, component.status, status_after or component.status)
    result.warnings += [f"{c.sha[:12]} ({c.what}) was reverted already by {gone[c.sha][:12]}: "
                        "not reverted again" for c in skipped]

    def own_file(path: str) -> bool:
        # the component's .gitignore only lists what the tool generates (the embedded
        # database, backups/): reverting a line of it would expose those files to git
        pure = PurePosixPath(path)
        return path == tracks_rel or (str(pure.parent) == component_rel
                                      and pure.name in (*BOOKKEEPING_FILES, ".gitignore"))

    # what would stop it
    blockers: list[str] = []
    for g in result.ghosts:
        listing = ", ".join(c.sha[:12] for c in g.candidates) or "none"
        blockers.append(f"recorded commit {g.ref} of {g.what} is not in the current branch's "
                        f"history (rebased or squashed?); candidates: {listing}; name one with "
                        f"{option('match', f'{g.ref}=SHA')}")
    in_progress = operation_in_progress(repo)
    if in_progress:
        blockers.append(f"{in_progress} is under way in {repo.top}: finish or abort it first")
    touched = sorted({f for c in recorded if c.sha for f in c.files if not own_file(f)})
    changed = dirty(repo, touched)
    if changed:
        blockers.append("uncommitted changes in files the reverts touch: " + ", ".join(changed[:8])
                        + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
                        + " (commit or discard them first)")
    live = None
    result.revisions = _revisions(repo, component_rel, recorded)
    if result.revisions:
        live, applied = _applied(session, component, result.revisions, url, engine)
        for r in result.revisions:
            r.applied = r.revision in applied
        result.downgrade_to = _downgrade_target(result.revisions)
        if result.downgrade_to and not downgrade:
            first_applied = next(r for r in reversed(result.revisions) if r.applied)
            blockers.append(
                f"revision {first_applied.revision} ({first_applied.path}) is applied to the live "
                f"database; run {command('migrate down', result.downgrade_to, option('id', cid))} "
                f"first, or pass {option('downgrade')}")
    result.blockers = blockers
    if result.dry_run:
        return result
    if blockers:
        raise RevertRefused(blockers[0], path=repo.top,
                            hint=f"nothing was changed; {command('revert', kind, option('id', cid), ref or '', option('dry-run'))} shows the whole plan")

    prefs = session.preferences()
    trailers = [f"{TRAILER_KEY}: {cid}"]
    to_revert = [c.sha for c in recorded if c.sha]
    try:
        trial = (trial_revert(repo, to_revert, own=own_file, trailers=trailers) if to_revert
                 else TrialRevert(tip=repo.head() or ""))
    except GitError as exc:
        raise RevertRefused(f"revert failed in git, nothing was changed: {exc}", path=repo.top) from None
    if trial.conflict is not None:
        sha, paths = trial.conflict
        raise RevertRefused(
            f"reverting {sha[:12]} conflicts in {', '.join(paths[:6])}: later commits changed the "
            "same lines; nothing was changed (git revert --abort)", path=repo.top,
            hint="revert the later work first, or undo this by hand")
    if result.downgrade_to and live is not None:
        from .engine.migrations import DestructiveDowngrade

        try:
            step = live.migrate("down", result.downgrade_to)
        except DestructiveDowngrade as exc:
            # losing data is its own decision: made with migrate down --confirm, by hand
            raise RevertRefused(
                f"{exc.message}; nothing was changed", path=repo.top,
                hint=f"run {command('migrate down', result.downgrade_to, option('id', cid), option('confirm'))} "
                     "yourself (it takes the pre-migration backup), then revert again") from None
        result.downgrade = step.to_json()
    if trial.tip != repo.head():
        try:
            fast_forward(repo, trial.tip)
        except GitError as exc:
            raise ConductorError(f"the reverts were made as {trial.tip[:12]} but the branch could "
                                 f"not move to it: {exc}", path=repo.top,
                                 hint=f"git merge --ff-only {trial.tip}") from None
    result.made, result.bookkeeping_only = trial.made, trial.bookkeeping_only
    _bookkeeping(session, component, plan, result, repo, own_file, prefs)
    return result


def _bookkeeping(session: Any, component: Any, plan: Plan, result: RevertResult,
                 repo: Repository, own_file: Any, prefs: Any) -> None:
    """Reopen, revoke, unannotate and set the status, under the workspace lock; commit them."""
    ws = session.workspace
    moment = session.clock()
    stamp = moment.isoformat(timespec="seconds")
    reverted = [{"sha": old, "revert_sha": new} for old, new in result.made]
    with ws.lock():
        current = component.read_plan()  # re-read under the lock
        for task in result.reopen:
            found = current.by_key(task.key)
            if found is not None and found.state == "done":
                current, _task, _before = write_task_state(component.plan_path, task.key, "todo",
                                                           current)
        for phase in result.revoke:
            append_record(component.verification_path, {
                "kind": REVOCATION, **phase_fields(phase), "phase_kind": phase.kind,
                "reason": f"revert {result.kind} {result.ref}", "reverted": reverted,
                "by": session.user, "at": stamp,
            })
            current = write_plan_edit(component.plan_path, unannotate_phase_bytes,
                                      phase_number=phase.number)
        if result.status_after != result.status_before:
            ws.write_status(component, result.status_after, moment)
        # later phases whose verdicts stand but which lock behind the reverted one
        states = session.phase_states(component, component.read_plan())
        result.lock_again = [s.phase for s in states if s.locked and
                             any(p.index == s.phase.index for p in result.lock_again)]
        if prefs.commits == NO_COMMITS:
            result.warnings.append("workflow.md asks for no commits: the plan's bookkeeping is "
                                   "written, not committed")
            return
        files = [f for f in repo.changed([f":(literal){repo.relative(component.dir)}/",
                                          f":(literal){repo.relative(ws.tracks_path)}"])
                 if own_file(f)]
        if not files:
            return
        conventional = prefs.conventional_commits
        subject = (f"revert({result.storage_id}): {result.kind} {result.ref}" if conventional
                   else f"Revert {result.kind} {result.ref}")
        body = []
        if result.reopen:
            body.append("Reopened tasks: " + ", ".join(t.number for t in result.reopen))
        if result.revoke:
            body.append("Revoked verdicts: " + ", ".join(p.label for p in result.revoke))
        body += [f"Reverted {old[:12]} in {new[:12]}" for old, new in result.made]
        message = subject + ("\n\n" + "\n".join(body) if body else "")
        try:
            staged = frozenset(repo.staged())
            info = repo.commit(files, message, [f"{TRAILER_KEY}: {result.storage_id}"], staged)
            result.bookkeeping_commit = info.sha
        except GitError as exc:
            result.warnings.append(f"the plan's bookkeeping is written but not committed: {exc}")
