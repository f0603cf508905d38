"""The recorded commits in git history, for ``revert`` (next to :mod:`.commits`, which makes them).

Session level, no Jupyter; runs ``git`` with argument lists through
:func:`.commits.run_git`. It finds the commits the tool recorded (task SHAs in plan.md,
``[checkpoint: …]`` headings, ``Storage-Id:`` trailers) in the current branch's history,
offers candidates for a recorded SHA the history no longer holds (rebased or squashed),
and reverts commits *in a scratch worktree first*: the user's branch, index and working
tree are only touched, by a fast-forward, once every revert applied without a conflict.
So a conflict leaves the repository exactly as it was (the scratch worktree's revert is
aborted with ``git revert --abort`` and the worktree removed).

The tool's own files (plan.md, metadata.json, verification.json, test_runs.json,
tracks.md, the component's .gitignore) are kept out of the git reverts (the caller says
which, with ``own``): they hold the ticks and SHAs of later tasks too, so ``revert`` edits
them itself (one-byte unticks, an appended revocation).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .commits import TRAILER_KEY, GitError, Repository

_FIELD = "\x1f"
_RECORD = "\x1e"


@dataclass
class HistoryCommit:
    """One commit of HEAD's history."""

    sha: str
    parents: list[str]
    subject: str
    storage_ids: list[str]
    #: position in ``git rev-list HEAD`` order (0 = HEAD: newest first)
    position: int


def history(repo: Repository) -> list[HistoryCommit]:
    """HEAD's history, newest first (empty on an unborn branch)."""
    if repo.head() is None:
        return []
    fmt = _FIELD.join(["%H", "%P", "%s", f"%(trailers:key={TRAILER_KEY},valueonly,separator=%x2C)"])
    out = repo.git("log", f"--format={fmt}{_RECORD}", "HEAD").stdout
    found: list[HistoryCommit] = []
    for chunk in out.split(_RECORD):
        chunk = chunk.strip("\n")
        if not chunk:
            continue
        sha, parents, subject, ids = (chunk.split(_FIELD) + ["", "", ""])[:4]
        found.append(HistoryCommit(sha, parents.split(), subject,
                                   [i.strip() for i in ids.split(",") if i.strip()], len(found)))
    return found


_REVERTS_RE = re.compile(r"^This reverts commit ([0-9a-f]{40})\.", re.MULTILINE)


def already_reverted(repo: Repository) -> dict[str, str]:
    """{reverted SHA: the commit that reverted it} for git's revert messages in HEAD's history
    (a revert that was itself reverted again does not count)."""
    if repo.head() is None:
        return {}
    out = repo.git("log", "--grep=^This reverts commit ", f"--format=%H{_FIELD}%B{_RECORD}",
                   "HEAD").stdout
    found: dict[str, str] = {}
    for chunk in reversed([c.strip("\n") for c in out.split(_RECORD) if c.strip("\n")]):
        sha, _, body = chunk.partition(_FIELD)  # oldest first: a later revert wins
        for target in _REVERTS_RE.findall(body):
            if target in found.values():  # reverting the revert brings the work back
                found = {k: v for k, v in found.items() if v != target}
            else:
                found[target] = sha
    return found


def commit_of(repo: Repository, ref: str) -> str | None:
    """The full SHA of commit ``ref`` when the object exists (in history or not)."""
    try:
        return repo.git("rev-parse", "--verify", "-q", f"{ref}^{{commit}}").stdout.strip() or None
    except GitError:
        return None


def subject_of(repo: Repository, sha: str) -> str:
    return repo.git("log", "-1", "--format=%s", sha).stdout.strip()


def files_of(repo: Repository, sha: str) -> list[str]:
    """The paths a commit changed (against its first parent; all of them for a root commit)."""
    out = repo.git("diff-tree", "--no-commit-id", "-r", "--name-only", "-z", "--root",
                   "--no-renames", sha).stdout
    return [p for p in out.split("\0") if p]


def dirty(repo: Repository, paths: list[str]) -> list[str]:
    """Which of ``paths`` differ from HEAD in the index or the working tree (or are
    untracked files where a revert would write). Reads without refreshing the index, so
    the index file is not rewritten."""
    if not paths:
        return []
    out = repo.git("--no-optional-locks", "status", "--porcelain", "-z", "--untracked-files=all",
                   "--", *[f":(literal){p}" for p in paths]).stdout
    return sorted({entry[3:] for entry in out.split("\0") if len(entry) > 3})


def operation_in_progress(repo: Repository) -> str | None:
    """A merge, revert, cherry-pick or rebase under way in the work tree, or unmerged paths."""
    for ref, what in (("MERGE_HEAD", "a merge"), ("REVERT_HEAD", "a revert"),
                      ("CHERRY_PICK_HEAD", "a cherry-pick"), ("REBASE_HEAD", "a rebase")):
        with contextlib.suppress(GitError):
            if repo.git("rev-parse", "-q", "--verify", ref).stdout.strip():
                return what
    if repo.git("ls-files", "-u").stdout.strip():
        return "a merge conflict (unmerged paths)"
    return None


@dataclass
class TrialRevert:
    """What reverting a list of commits did in the scratch worktree."""

    #: the commit the branch would fast-forward to (HEAD when nothing but bookkeeping changed)
    tip: str
    #: (reverted SHA, its revert commit's SHA), newest first
    made: list[tuple[str, str]] = field(default_factory=list)
    #: commits that changed only the tool's own files (nothing left for git to revert)
    bookkeeping_only: list[str] = field(default_factory=list)
    #: the commit that did not revert cleanly and the paths in conflict (then ``tip`` is HEAD)
    conflict: tuple[str, list[str]] | None = None


def trial_revert(repo: Repository, shas: list[str], *, own: Callable[[str], bool],
                 trailers: list[str]) -> TrialRevert:
    """Revert ``shas`` (newest first) in a scratch worktree on a detached HEAD: one commit
    each, with ``git revert``'s own message (``Revert "<subject>"`` / ``This reverts commit
    <sha>.``) and ``trailers``; files for which ``own(path)`` is true keep their HEAD
    content. The user's work tree is not touched."""
    head = repo.head()
    if head is None:
        raise GitError("the branch has no commits yet")
    scratch = Path(tempfile.mkdtemp(prefix="conductor-revert-"))
    tree = scratch / "tree"
    result = TrialRevert(tip=head)
    try:
        repo.git("worktree", "add", "--detach", "--quiet", str(tree), head)
        work = Repository(tree)
        for sha in shas:
            proc_ok = True
            try:
                work.git("revert", "--no-commit", sha)
            except GitError:
                proc_ok = False
            changed = files_of(repo, sha)
            for path in [p for p in changed if own(p)]:
                _keep_head(work, path)
            unmerged = sorted({line.split("\t", 1)[1] for line in
                               work.git("ls-files", "-u").stdout.splitlines() if "\t" in line})
            if unmerged or (not proc_ok and not _anything_staged(work)
                            and not all(own(p) for p in changed)):
                result.conflict = (sha, unmerged or changed)
                with contextlib.suppress(GitError):
                    work.git("revert", "--abort")
                result.made, result.tip = [], head
                return result
            if not _anything_staged(work):
                result.bookkeeping_only.append(sha)
                _quit(work)
                continue
            subject = subject_of(repo, sha)
            message = f'Revert "{subject}"\n\nThis reverts commit {sha}.'
            args = ["commit", "--quiet", "-m", message]
            for trailer in trailers:
                args += ["--trailer", trailer]
            work.git(*args)
            _quit(work)
            new = work.git("rev-parse", "HEAD").stdout.strip()
            result.made.append((sha, new))
            result.tip = new
        return result
    finally:
        with contextlib.suppress(GitError):
            repo.git("worktree", "remove", "--force", str(tree))
        with contextlib.suppress(GitError):
            repo.git("worktree", "prune")
        shutil.rmtree(scratch, ignore_errors=True)


def _keep_head(work: Repository, path: str) -> None:
    """The path as HEAD has it (or absent, when HEAD has none), in index and work tree."""
    try:
        work.git("cat-file", "-e", f"HEAD:{path}", literal=True)
        in_head = True
    except GitError:
        in_head = False
    if in_head:
        work.git("checkout", "HEAD", "--", path, literal=True)
    else:
        with contextlib.suppress(GitError):
            work.git("rm", "-q", "--cached", "-f", "--ignore-unmatch", "--", path, literal=True)
        with contextlib.suppress(OSError):
            os.unlink(work.top / path)


def _anything_staged(work: Repository) -> bool:
    try:
        work.git("diff", "--cached", "--quiet")
        return False
    except GitError:
        return True


def _quit(work: Repository) -> None:
    """Forget a single revert's state (the commit was made, or there was nothing to make)."""
    with contextlib.suppress(GitError):
        work.git("revert", "--quit")


def fast_forward(repo: Repository, tip: str) -> None:
    """Move the checked-out branch to ``tip`` (a descendant of HEAD) with a fast-forward,
    which updates only the files the reverts changed and keeps other local changes."""
    repo.git("merge", "--ff-only", "--quiet", tip)
