"""The REST handlers: request → the shared parser's argv → ``commands.run`` → JSON.

No plan logic lives here: what a route may do, and what it refuses, is decided by the
session exactly as for the CLI and the magics (same locks, same one-byte edits). This
module only checks the request's shape, maps the one exception tree onto HTTP statuses
once (:data:`STATUS_FOR`) and, for ``status``, answers ``304`` when no file it reads
has changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path, PurePath
from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from traitlets import Unicode
from traitlets.config import Configurable

from ..commands import parse, run
from ..errors import (
    BadDatabaseURL,
    ChecksFailed,
    ComponentNotFound,
    ConductorError,
    DatabaseError,
    DatabaseUnavailable,
    GateClosed,
    TaskChanged,
    TaskNotFound,
    WorkspaceFormatError,
    WorkspaceNotFound,
)
from ..session import ACTIONS, Session
from ..workspace import Component, Workspace
from ..workspace.intents import interrupted_advise

#: error class → HTTP status; the first match wins, so subclasses come before their bases
STATUS_FOR: tuple[tuple[type[ConductorError], int], ...] = (
    (TaskChanged, 409),          # the mark is no longer what the client saw
    (ComponentNotFound, 404),
    (TaskNotFound, 404),
    (WorkspaceNotFound, 404),
    (GateClosed, 423),           # a locked phase (or a gate that refuses: TDD, open tasks)
    (ChecksFailed, 422),         # checks ran and failed (and were not waived)
    (WorkspaceFormatError, 422),  # a workspace file cannot be read as what it should be
    (DatabaseUnavailable, 503),  # locked or lost database: retry later
    (BadDatabaseURL, 400),
    (DatabaseError, 502),
)

API = "conductor/api"


class Conductor(Configurable):
    """Server-side settings (``c.Conductor.root`` in jupyter_server_config.py; the same
    names as the ``%conductor`` magics' settings)."""

    root = Unicode(None, allow_none=True, config=True,
                   help="Project folder holding storage-conductor/ (default: $CONDUCTOR_ROOT, "
                        "else the server's root directory and the folders above it).")
    user = Unicode(None, allow_none=True, config=True,
                   help="Name recorded on verifications (default: git user.name, else the OS user).")


def status_for(exc: ConductorError) -> int:
    """The HTTP status of an error: :data:`STATUS_FOR`, else 400 for bad input (exit code
    2) and 422 for a refusal (exit code 1)."""
    for cls, code in STATUS_FOR:
        if isinstance(exc, cls):
            return code
    return 400 if exc.exit_code == 2 else 422


class BadRequest(ConductorError):
    """The request's JSON body does not have the route's shape."""


def relative_posix(path: Path | None, root_dir: Path) -> str | None:
    """``path`` relative to the server's root directory (POSIX), or None when outside it."""
    if path is None:
        return None
    try:
        return PurePath(Path(path).resolve().relative_to(root_dir)).as_posix()
    except ValueError:
        return None


def status_fingerprint(workspace: Workspace) -> str:
    """A tag that changes whenever anything ``status`` reads may have changed: name, size,
    mtime and inode (atomic replaces change it) of every file directly in the workspace
    and in each component folder, and whether an ``advise --apply`` intent's process is
    gone. Taken BEFORE the status is computed, so a change racing the computation gives
    the next poll a new tag rather than a stale body a matching one."""
    digest = hashlib.sha1(str(workspace.dir).encode())
    folders = [workspace.dir, *(workspace.storages_dir / i for i in workspace.folder_ids())]
    for folder in folders:
        digest.update(b"\0dir\0" + os.fsencode(folder))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat()
            except OSError:
                continue  # gone since the listing: the next poll sees the new listing
            digest.update(f"\0{entry.name}\0{st.st_mtime_ns}\0{st.st_size}\0{st.st_ino}".encode())
        if folder != workspace.dir:
            digest.update(b"\0advise-interrupted" if interrupted_advise(folder) else b"\0")
    return digest.hexdigest()[:32]


class ConductorHandler(APIHandler):
    """Shared by every route: the settings, the session, the error mapping."""

    auth_resource = "contents"  # the routes read and write files of the contents root

    @property
    def conductor(self) -> Conductor:
        return self.settings["conductor"]

    @property
    def root_dir(self) -> Path:
        return self.settings["conductor_root_dir"]

    def open_session(self) -> Session:
        """The workspace found as everywhere else: ``c.Conductor.root``, else
        ``$CONDUCTOR_ROOT``, else the server's root directory and the folders above it."""
        return Session.open(root=self.conductor.root or None, cwd=self.root_dir,
                            user=self.conductor.user or None)

    def json_body(self, allowed: set[str]) -> dict[str, Any]:
        """The request's JSON object; unknown keys are refused (a misspelt key never
        silently does something else)."""
        try:
            body = json.loads(self.request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("the request body is not JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise BadRequest(f"unknown field(s): {', '.join(unknown)}",
                             hint="allowed: " + ", ".join(sorted(allowed)))
        return body

    async def conduct(self, build: Any) -> Any:
        """Run ``build(session) -> argv`` through the shared parser and runner in a worker
        thread (git commits and database checks must not stall the server)."""
        def work():
            session = self.open_session()
            return run(parse(build(session)), session)

        return await asyncio.to_thread(work)

    def reply(self, data: Any) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(data, ensure_ascii=False, default=str))

    def fail(self, exc: ConductorError) -> None:
        """``{"error": "one line", …}`` with the status of :func:`status_for`; ``file`` is
        relative to the root directory when it is inside it (the panel opens it there)."""
        self.set_status(status_for(exc))
        self.reply({"error": " ".join(str(exc).split()), "kind": type(exc).__name__,
                    "file": relative_posix(exc.path, self.root_dir), "line": exc.line})

    async def answer(self, build: Any) -> None:
        """Run a command and reply with its result's JSON, or with its error."""
        try:
            result = await self.conduct(build)
        except ConductorError as exc:
            return self.fail(exc)
        except (OSError, UnicodeDecodeError) as exc:
            # As the CLI's last resort: one line naming the file, never a traceback.
            return self.fail(_file_error(exc))
        self.reply(result.to_json())


def _file_error(exc: OSError | UnicodeDecodeError) -> ConductorError:
    if isinstance(exc, UnicodeDecodeError):
        return WorkspaceFormatError(f"a file is not valid UTF-8 (byte {exc.start}: {exc.reason})",
                                    hint="save it as UTF-8")
    error = ConductorError((exc.strerror or str(exc)).lower(), path=exc.filename,
                           hint="check the file's permissions and type, then retry")
    error.exit_code = 1
    return error


class StatusHandler(ConductorHandler):
    """``conductor status --json``, tagged so a poll that finds nothing new costs a few
    ``stat`` calls and an empty 304."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        try:
            session, tag = await asyncio.to_thread(self._tag)
        except ConductorError as exc:
            return self.fail(exc)
        self.set_header("Etag", f'"{tag}"')
        if self.check_etag_header():
            self.set_status(304)
            return self.finish()
        try:
            result = await asyncio.to_thread(lambda: run(parse(["status"]), session))
        except ConductorError as exc:
            self.clear_header("Etag")
            return self.fail(exc)
        self.reply(result.to_json())

    def _tag(self) -> tuple[Session, str]:
        session = self.open_session()
        return session, status_fingerprint(session.workspace)


class WorkspaceHandler(ConductorHandler):
    """Where the workspace is, so the panel can open its files in the editor:
    ``{"workspace": "<relative POSIX path>" | null, "path": "<absolute>" | null,
    "components": [ids], "files": {id: {"plan", "spec", "verification"}}}``. ``workspace``
    (and ``files``) are null/empty when it is outside the root directory or not found."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        try:
            data = await asyncio.to_thread(self._describe)
        except ConductorError as exc:
            return self.fail(exc)
        self.reply(data)

    def _describe(self) -> dict[str, Any]:
        try:
            workspace = self.open_session().workspace
        except WorkspaceNotFound:
            return {"workspace": None, "path": None, "components": [], "files": {}}
        try:
            components = workspace.components()
        except ConductorError:
            # tracks.md unreadable: the folders still name the components (status says why)
            components = [Component(workspace, i, None, None) for i in workspace.folder_ids()]
        relative = relative_posix(workspace.dir, self.root_dir)
        files = {} if relative is None else {
            c.id: {"plan": relative_posix(c.plan_path, self.root_dir),
                   "spec": relative_posix(c.spec_path, self.root_dir),
                   "verification": relative_posix(c.verification_path, self.root_dir)}
            for c in components}
        return {"workspace": relative, "path": str(workspace.dir),
                "components": [c.id for c in components], "files": files}


class PlanHandler(ConductorHandler):
    """``conductor plan <id> --json``."""

    @tornado.web.authenticated
    @authorized
    async def get(self, storage_id: str) -> None:
        await self.answer(lambda session: ["plan", "--", _known(session, storage_id)])


class TaskHandler(ConductorHandler):
    """``conductor task ACTION <id> TASK --expect MARK`` (``expect`` is optional)."""

    @tornado.web.authenticated
    @authorized
    async def post(self, storage_id: str) -> None:
        try:
            body = self.json_body({"action", "task", "expect"})
            action, task, expect = body.get("action"), body.get("task"), body.get("expect")
            if action not in ACTIONS:
                raise BadRequest(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
            if not isinstance(task, str) or not task.strip():
                raise BadRequest("task must be a task number such as \"1.2\" (or its text)")
            if expect is not None and not isinstance(expect, str):
                raise BadRequest("expect must be the mark the client saw, such as \"[ ]\"")
        except ConductorError as exc:
            return self.fail(exc)
        options = [f"--expect={expect}"] if expect is not None else []
        await self.answer(lambda session: ["task", action, *options, "--",
                                           _known(session, storage_id), task.strip()])


class VerifyHandler(ConductorHandler):
    """``conductor verify <id> --phase N [--run-checks] [--waive CHECK=REASON…]
    [--confirm NOTE]``: without ``confirm`` the gate (and the checks) are only shown."""

    @tornado.web.authenticated
    @authorized
    async def post(self, storage_id: str) -> None:
        try:
            argv = self._argv(self.json_body({"phase", "run_checks", "waive", "confirm"}))
        except ConductorError as exc:
            return self.fail(exc)
        await self.answer(lambda session: [*argv, "--", _known(session, storage_id)])

    @staticmethod
    def _argv(body: dict[str, Any]) -> list[str]:
        argv = ["verify"]
        phase = body.get("phase")
        if phase is not None:
            if isinstance(phase, bool) or not isinstance(phase, int) or phase < 0:
                raise BadRequest(f"phase must be a phase number, got {phase!r}")
            argv.append(f"--phase={phase}")
        run_checks = body.get("run_checks", False)
        if not isinstance(run_checks, bool):
            raise BadRequest("run_checks must be true or false")
        if run_checks:
            argv.append("--run-checks")
        waive = body.get("waive") or {}
        if not isinstance(waive, dict):
            raise BadRequest("waive must be an object {\"CHECK\": \"reason\"}")
        for check, reason in waive.items():
            if not check.strip() or "=" in check:
                raise BadRequest(f"waive: {check!r} is not a check name")
            if not isinstance(reason, str) or not reason.strip():
                raise BadRequest(f"waiving {check} needs a written reason",
                                 hint="say why the failure is acceptable")
            argv.append(f"--waive={check}={reason}")
        confirm = body.get("confirm")
        if confirm is not None:
            if not isinstance(confirm, str):
                raise BadRequest("confirm must be the verification note (text)")
            argv.append(f"--confirm={confirm}")
        return argv


def _known(session: Session, storage_id: str) -> str:
    """The id, once the workspace has it (404 otherwise): the task parser would otherwise
    read an unknown id as the first word of the task's text."""
    return session.workspace.component(storage_id).id


def setup_handlers(serverapp) -> None:
    """Register the routes under the server's base URL, with the settings they read."""
    web_app = serverapp.web_app
    contents_root = getattr(serverapp.contents_manager, "root_dir", None) or serverapp.root_dir
    web_app.settings["conductor"] = Conductor(parent=serverapp)
    web_app.settings["conductor_root_dir"] = Path(os.path.expanduser(contents_root)).resolve()
    base = url_path_join(web_app.settings["base_url"], API)
    component = r"/(?P<storage_id>[^/]+)"
    web_app.add_handlers(".*$", [
        (url_path_join(base, "status"), StatusHandler),
        (url_path_join(base, "workspace"), WorkspaceHandler),
        (url_path_join(base, "plan") + component, PlanHandler),
        (url_path_join(base, "task") + component, TaskHandler),
        (url_path_join(base, "verify") + component, VerifyHandler),
    ])
