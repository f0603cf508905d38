"""The server extension's REST routes, served by a real jupyter_server (pytest-jupyter).

Each test gets a fresh ServerApp with the extension enabled the way the wheel enables it
(``jpserver_extensions: {"conductor_magics": true}``) and a copy of the example workspace.
Responses are compared with the CLI's ``--json`` output on the same files: the routes are
an edge over the same façade, not a second implementation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jupyter_server.utils import url_path_join

# pytest-jupyter's fixtures, for this module only: its autouse fixtures (an event loop per
# test, a ServerApp clean-up) must not reach the rest of the suite, which a
# ``pytest_plugins`` line would do.
from pytest_jupyter.jupyter_server import *  # noqa: F403
from traitlets.config import Config

from conductor_magics.cli import main as cli_main
from conductor_magics.session import Session

ROUTES = [  # (method, path, body) of every route, for the authentication tests
    ("GET", "status", None),
    ("GET", "workspace", None),
    ("GET", "plan/orders_db", None),
    ("POST", "task/orders_db", {"action": "done", "task": "1.1", "expect": "[ ]"}),
    ("POST", "verify/orders_db", {"phase": 1, "confirm": "reviewed"}),
]


@pytest.fixture
def where(request) -> str:
    """Where the workspace is relative to the server (indirect parameter): ``root`` (the
    root dir is the project), ``below`` (the root dir is a folder inside it), ``configured``
    (c.Conductor.root), ``env`` ($CONDUCTOR_ROOT) or ``none``."""
    return getattr(request, "param", "root")


@pytest.fixture
def jp_root_dir(project: Path, tmp_path: Path, where: str, monkeypatch) -> Path:
    monkeypatch.delenv("CONDUCTOR_ROOT", raising=False)
    monkeypatch.delenv("CONDUCTOR_DATABASE_URL", raising=False)
    if where == "root":
        return project
    folder = project / "notebooks" if where == "below" else tmp_path / "elsewhere"
    folder.mkdir()
    if where == "env":
        monkeypatch.setenv("CONDUCTOR_ROOT", str(project))
    return folder


@pytest.fixture
def jp_server_config(project: Path, where: str) -> Config:
    return Config({
        "ServerApp": {"jpserver_extensions": {"conductor_magics": True}},
        "Conductor": {"root": str(project), "user": "panel-user"} if where == "configured"
                     else {"user": "panel-user"},
    })


@pytest.fixture
def api(jp_fetch, jp_asyncio_loop):
    """``api(method, path, body=None, headers=None)`` → the tornado response (never raises
    for a status code)."""
    def call(method: str, path: str, body=None, headers=None):
        kwargs = {"method": method, "raise_error": False, "headers": headers}
        if method == "POST":
            kwargs["body"] = body if isinstance(body, str | bytes) else json.dumps(body or {})
        return jp_asyncio_loop.run_until_complete(jp_fetch("conductor", "api", path, **kwargs))
    return call


@pytest.fixture
def anonymous(jp_serverapp, http_server_client, jp_base_url, jp_asyncio_loop):
    """``anonymous(method, path, body, headers)``: a request with the given headers only
    (no token unless the test adds one)."""
    def call(method: str, path: str, body=None, headers=None):
        url = url_path_join(jp_base_url, "conductor/api", path)
        kwargs = {"method": method, "raise_error": False, "headers": headers or {}}
        if method == "POST":
            kwargs["body"] = json.dumps(body or {})
        return jp_asyncio_loop.run_until_complete(http_server_client.fetch(url, **kwargs))
    return call


def body(response) -> dict:
    return json.loads(response.body)


def cli_json(capsys, *argv: str) -> dict:
    capsys.readouterr()
    code = cli_main([*argv, "--json"])
    out = capsys.readouterr().out
    assert code in (0, 1), out
    return json.loads(out)


def plan_bytes(project: Path, storage_id: str = "orders_db") -> bytes:
    return (project / "storage-conductor" / "storages" / storage_id / "plan.md").read_bytes()


def finish_phase_one(project: Path) -> None:
    """Every task and sub-task of orders_db's Phase 1 done (through the session)."""
    session = Session.open(root=project, user="tester")
    for ref in ("1.1", "1.1.1", "1.1.2", "1.2", "1.2.1", "1.2.2", "1.3", "1.3.1", "1.4", "1.5"):
        session.task("done", ref, "orders_db")


# ------------------------------------------------------------------------------ reading


def test_status_is_the_cli_json(api, project, capsys):
    response = api("GET", "status")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert body(response) == cli_json(capsys, "status", "--root", str(project))
    assert [c["id"] for c in body(response)["components"]] == ["orders_db", "customer_events"]


def test_status_etag_answers_304_until_a_file_changes(api, project):
    first = api("GET", "status")
    tag = first.headers["Etag"]
    assert tag.startswith('"') and len(tag) > 10
    again = api("GET", "status", headers={"If-None-Match": tag})
    assert again.code == 304
    assert again.body == b""
    assert api("GET", "status", headers={"If-None-Match": '"something-else"'}).code == 200

    # a tick from elsewhere (a terminal) changes plan.md: the same tag now gets the new body
    Session.open(root=project, user="tester").task("done", "1.1", "orders_db")
    changed = api("GET", "status", headers={"If-None-Match": tag})
    assert changed.code == 200
    assert changed.headers["Etag"] != tag
    orders = next(c for c in body(changed)["components"] if c["id"] == "orders_db")
    assert orders != next(c for c in body(first)["components"] if c["id"] == "orders_db")
    assert api("GET", "status", headers={"If-None-Match": changed.headers["Etag"]}).code == 304


def test_workspace_names_the_folder_relative_to_the_root_dir(api, project):
    data = body(api("GET", "workspace"))
    assert data["workspace"] == "storage-conductor"
    assert data["components"] == ["orders_db", "customer_events"]
    assert data["files"]["orders_db"]["plan"] == "storage-conductor/storages/orders_db/plan.md"
    for paths in data["files"].values():
        for relative in paths.values():
            assert (project / relative).parent.is_dir()
    assert (project / data["files"]["orders_db"]["spec"]).is_file()


@pytest.mark.parametrize("where", ["below", "configured", "env"], indirect=True)
def test_the_workspace_is_found_as_everywhere_else(api, project, jp_root_dir, where, capsys):
    # above the root dir (walking up), from c.Conductor.root, or from $CONDUCTOR_ROOT
    assert jp_root_dir != project
    status = api("GET", "status")
    assert status.code == 200
    assert body(status) == cli_json(capsys, "status", "--root", str(project))
    data = body(api("GET", "workspace"))
    # outside the root dir the editor cannot open its files: no relative path
    assert data["workspace"] is None and data["files"] == {}
    assert data["path"] == str((project / "storage-conductor").resolve())
    assert data["components"] == ["orders_db", "customer_events"]


@pytest.mark.parametrize("where", ["none"], indirect=True)
def test_no_workspace_is_404_for_status_and_null_for_workspace(api):
    status = api("GET", "status")
    assert status.code == 404
    assert "storage-conductor" in body(status)["error"]
    assert body(api("GET", "workspace")) == {"workspace": None, "path": None, "components": [],
                                              "files": {}}


def test_plan_is_the_cli_json(api, project, capsys):
    response = api("GET", "plan/orders_db")
    assert response.code == 200
    assert body(response) == cli_json(capsys, "plan", "orders_db", "--root", str(project))
    assert body(api("GET", "plan/customer_events"))["id"] == "customer_events"


def test_plan_of_an_unknown_or_unsafe_id_is_404(api):
    for storage_id in ("nope", "..", "a%2F..%2Fb"):
        response = api("GET", f"plan/{storage_id}")
        assert response.code == 404, storage_id
        assert set(body(response)) >= {"error"}
        assert "\n" not in body(response)["error"]


# ------------------------------------------------------------------------------ tasks


def test_a_tick_through_the_route_changes_plan_md_by_one_byte(api, project):
    before = plan_bytes(project)
    response = api("POST", "task/orders_db", {"action": "done", "task": "1.1", "expect": "[ ]"})
    assert response.code == 200, response.body
    result = body(response)
    assert result["task"]["number"] == "1.1"
    assert (result["before"], result["after"], result["changed"]) == ("todo", "done", True)
    after = plan_bytes(project)
    assert len(after) == len(before)
    differing = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert len(differing) == 1
    assert (before[differing[0]:differing[0] + 1], after[differing[0]:differing[0] + 1]) == (b" ", b"x")
    # and back: undo with the mark the panel now shows
    response = api("POST", "task/orders_db", {"action": "undo", "task": "1.1", "expect": "[x]"})
    assert response.code == 200 and body(response)["after"] == "todo"
    assert plan_bytes(project) == before


def test_every_task_action_through_the_route(api, project):
    marks = {"start": "~", "skip": "-", "block": "!", "done": "x", "undo": " "}
    shown = "[ ]"
    for action, mark in marks.items():
        response = api("POST", "task/orders_db", {"action": action, "task": "1.2", "expect": shown})
        assert response.code == 200, (action, response.body)
        line = plan_bytes(project).decode().splitlines()[body(response)["task"]["line"] - 1]
        assert line.lstrip().startswith(f"- [{mark}] Task: Declare the order_items"), line
        shown = f"[{mark}]"


def test_a_stale_expect_is_409_and_writes_nothing(api, project):
    Session.open(root=project, user="tester").task("done", "1.1", "orders_db")  # elsewhere
    before = plan_bytes(project)
    response = api("POST", "task/orders_db", {"action": "done", "task": "1.1", "expect": "[ ]"})
    assert response.code == 409
    error = body(response)
    assert "1.1" in error["error"] and "[x]" in error["error"]
    assert error["kind"] == "TaskChanged"
    assert error["file"] == "storage-conductor/storages/orders_db/plan.md" and error["line"] > 0
    assert plan_bytes(project) == before


@pytest.mark.parametrize("payload", [
    {"action": "run", "task": "1.1"},                      # runs code: not over REST
    {"action": "finish", "task": "1.1"},
    {"task": "1.1"},
    {"action": "done"},
    {"action": "done", "task": "  "},
    {"action": "done", "task": 1.1},
    {"action": "done", "task": "1.1", "expect": "[?]"},     # refused by the session
    {"action": "done", "task": "1.1", "expect": True},
    {"action": "done", "task": "1.1", "force": True},       # unknown field
    "not json",
    [1, 2],
])
def test_bad_task_requests_are_400_and_change_nothing(api, project, payload):
    before = plan_bytes(project)
    response = api("POST", "task/orders_db", payload if isinstance(payload, str) else payload)
    assert response.code == 400, (payload, response.body)
    assert body(response)["error"]
    assert plan_bytes(project) == before


def test_unknown_component_or_task_is_404(api, project):
    before = plan_bytes(project)
    unknown_id = api("POST", "task/nope", {"action": "done", "task": "1.1", "expect": "[ ]"})
    assert unknown_id.code == 404 and "nope" in body(unknown_id)["error"]
    unknown_task = api("POST", "task/orders_db", {"action": "done", "task": "9.9", "expect": "[ ]"})
    assert unknown_task.code == 404 and "9.9" in body(unknown_task)["error"]
    assert api("POST", "verify/nope", {"phase": 1}).code == 404
    unknown_phase = api("POST", "verify/orders_db", {"phase": 99, "confirm": "ok"})
    assert unknown_phase.code == 404 and "99" in body(unknown_phase)["error"]
    assert plan_bytes(project) == before


def test_a_task_of_a_locked_phase_is_423_until_the_gate_is_verified(api, project):
    before = plan_bytes(project)
    locked = api("POST", "task/orders_db", {"action": "done", "task": "3.1", "expect": "[ ]"})
    assert locked.code == 423
    assert "locked" in body(locked)["error"] and body(locked)["kind"] == "GateClosed"
    assert plan_bytes(project) == before
    finish_phase_one(project)
    verified = api("POST", "verify/orders_db", {"phase": 1, "confirm": "schema reviewed"})
    assert verified.code == 200, verified.body
    unlocked = api("POST", "task/orders_db", {"action": "done", "task": "3.1", "expect": "[ ]"})
    assert unlocked.code == 200 and body(unlocked)["after"] == "done"


# ------------------------------------------------------------------------------ verify


def test_verify_without_confirm_shows_the_gate_like_the_cli(api, project, capsys):
    finish_phase_one(project)
    response = api("POST", "verify/orders_db", {"phase": 1})
    assert response.code == 200
    gate = body(response)
    assert gate == cli_json(capsys, "verify", "orders_db", "--phase", "1", "--root", str(project))
    assert gate["recorded"] is None and gate["phase"]["finished"] is True
    assert not (project / "storage-conductor/storages/orders_db/verification.json").exists()


def test_verify_with_checks_waivers_and_confirm_records_the_verdict(api, project):
    finish_phase_one(project)
    log = project / "storage-conductor/storages/orders_db/verification.json"
    checks = body(api("POST", "verify/orders_db", {"phase": 1, "run_checks": True}))
    failed = [c["check"] for c in checks["checks"] if c["status"] == "fail"]
    assert failed == ["declared schema exists"]  # no schema.sql in the example
    assert checks["recorded"] is None and not log.exists()

    # a failed check blocks the verdict unless it is waived with a written reason
    refused = api("POST", "verify/orders_db", {"phase": 1, "run_checks": True, "confirm": "ok"})
    assert refused.code == 422 and "declared schema exists" in body(refused)["error"]
    no_reason = api("POST", "verify/orders_db", {"phase": 1, "run_checks": True,
                                                 "waive": {failed[0]: "  "}, "confirm": "ok"})
    assert no_reason.code == 400 and "reason" in body(no_reason)["error"]
    assert not log.exists()

    recorded = api("POST", "verify/orders_db", {
        "phase": 1, "run_checks": True, "waive": {failed[0]: "declared in the ORM models"},
        "confirm": "schema reviewed with the team"})
    assert recorded.code == 200, recorded.body
    verdict = body(recorded)
    assert verdict["verified"] is True
    assert verdict["recorded"]["note"] == "schema reviewed with the team"
    assert verdict["recorded"]["by"] == "panel-user"  # c.Conductor.user
    records = json.loads(log.read_text(encoding="utf-8"))
    records = records if isinstance(records, list) else records.get("records", records)
    assert any(r.get("verdict") == "verified" and r.get("waivers") ==
               {failed[0]: "declared in the ORM models"} for r in records)


@pytest.mark.parametrize("payload", [
    {"phase": "1"}, {"phase": True}, {"phase": -1}, {"run_checks": "yes"},
    {"waive": ["CHECK"]}, {"waive": {"A=B": "reason"}}, {"waive": {"CHECK": 3}},
    {"confirm": 5}, {"confirm": "   "}, {"phase": 1, "by": "someone"},
])
def test_bad_verify_requests_are_400_and_record_nothing(api, project, payload):
    finish_phase_one(project)
    response = api("POST", "verify/orders_db", payload)
    assert response.code == 400, (payload, response.body)
    assert not (project / "storage-conductor/storages/orders_db/verification.json").exists()


def test_verify_with_open_tasks_is_refused(api, project):
    response = api("POST", "verify/orders_db", {"phase": 1, "confirm": "too early"})
    assert response.code == 423 and "open task" in body(response)["error"]


# ------------------------------------------------------------------------------ authentication


@pytest.mark.parametrize(("method", "path", "payload"), ROUTES)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "token wrong-token"}],
                         ids=["no-token", "wrong-token"])
def test_every_route_refuses_a_request_without_the_token(anonymous, api, project, method, path,
                                                         payload, headers):
    if path.startswith("verify"):
        finish_phase_one(project)  # so that the authenticated request below may confirm
    before = plan_bytes(project)
    response = anonymous(method, path, payload, headers)
    assert response.code in (401, 403), (path, response.code)
    assert b"orders_db" not in response.body
    assert plan_bytes(project) == before
    assert not (project / "storage-conductor/storages/orders_db/verification.json").exists()
    # the same request with the token goes through (the refusal was the token's doing)
    assert api(method, path, payload).code == 200
