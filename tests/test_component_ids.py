"""One component-id rule on every command, in the CLI (in process) and the magics:
``--id ID`` everywhere, the positional id where a command had one, resolved by one
function (explicit > the active component > the only component > one line listing
the known ids, exit 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers.notebook import run_cell
from IPython.core.error import UsageError

from conductor_magics.cli import main

WORKSPACE_FORMS = [
    ["next", "{id}"], ["next", "--id", "{id}"],
    ["plan", "{id}"], ["plan", "--id", "{id}"],
    ["implement", "--id", "{id}"], ["context", "--id", "{id}", "spec"],
    ["context", "{id}", "spec"], ["verify", "--id", "{id}", "--phase", "1"],
]
ENGINE_FORMS = [["integrity", "{id}"], ["integrity", "--id", "{id}"], ["crud", "--id", "{id}"],
                ["schema", "show", "{id}"], ["schema", "show", "--id", "{id}"],
                ["migrate", "current", "--id", "{id}"]]
#: (``task done ID TASK`` stays: its first word is an id only when a component has it)
OTHER_FORMS = [["test", "t1", "--passed", "--id", "{id}"], ["task", "done", "--id", "{id}", "1.1"],
               ["complete", "--id", "{id}"], ["revert", "task", "--id", "{id}", "1.1"]]


def cli(project: Path, capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["--root", str(project), *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def fill(form: list[str], storage_id: str) -> list[str]:
    return [word.replace("{id}", storage_id) for word in form]


@pytest.mark.parametrize("form", WORKSPACE_FORMS + [["integrity", "--id", "{id}"]],
                         ids=lambda f: " ".join(f))
def test_the_positional_and_id_name_the_same_component(project: Path, capsys, form):
    # customer_events is not the active component (orders_db is): only the id picks it
    code, out, err = cli(project, capsys, *fill(form, "customer_events"), "--json")
    assert code in (0, 1), err
    data = json.loads(out)
    assert data.get("id", data.get("summary", "").split(":")[0]) == "customer_events", data


@pytest.mark.parametrize("form", WORKSPACE_FORMS + ENGINE_FORMS + OTHER_FORMS,
                         ids=lambda f: " ".join(f))
def test_an_unknown_id_is_one_line_listing_the_known_ids(project: Path, capsys, form):
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    code, out, err = cli(project, capsys, *fill(form, "nope"))
    assert code == 2, (out, err)
    assert out == "" and err.count("\n") == 1, err
    assert "no component 'nope'" in err
    assert "known components: orders_db, customer_events" in err
    assert {p: p.read_bytes() for p in project.rglob("*") if p.is_file()} == before


def test_two_different_ids_are_refused(project: Path, capsys):
    for argv in (["next", "orders_db", "--id", "customer_events"],
                 ["integrity", "orders_db", "--id", "customer_events"],
                 ["task", "done", "orders_db", "1.1", "--id", "customer_events"]):
        code, out, err = cli(project, capsys, *argv)
        assert code == 2 and err.count("\n") == 1, (argv, err)
        assert "two component ids: 'orders_db' and --id customer_events" in err


def _completed(project: Path, keep: list[str]) -> None:
    """Only ``keep`` stay, every one of them Completed: none is active."""
    workspace = project / "storage-conductor"
    tracks = workspace / "tracks.md"
    lines = []
    for line in tracks.read_text(encoding="utf-8").splitlines(keepends=True):
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 2 and cells[1] in ("orders_db", "customer_events"):
            if cells[1] not in keep:
                shutil.rmtree(workspace / "storages" / cells[1])
                continue
            line = line.replace("| Planning |", "| Completed |")
        lines.append(line)
    tracks.write_text("".join(lines), encoding="utf-8")
    for storage_id in keep:
        metadata = workspace / "storages" / storage_id / "metadata.json"
        data = json.loads(metadata.read_text(encoding="utf-8"))
        data["status"] = "Completed"
        metadata.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def test_without_an_active_component_the_only_one_is_meant(project: Path, capsys):
    _completed(project, ["customer_events"])
    code, out, err = cli(project, capsys, "plan", "--json")
    assert code == 0, err
    assert json.loads(out)["id"] == "customer_events"


def test_without_an_active_component_several_are_one_line_listing_them(project: Path, capsys):
    _completed(project, ["orders_db", "customer_events"])
    for argv in (["plan"], ["next"], ["crud"], ["test", "t1", "--passed"]):
        code, out, err = cli(project, capsys, *argv)
        assert code == 2 and err.count("\n") == 1, (argv, err)
        assert "no component is In Progress or Planning" in err
        assert "known components: orders_db, customer_events" in err


def test_the_magics_take_the_same_ids(ip, project: Path):
    ip.run_line_magic("reload_ext", "conductor_magics")
    for line in ("%conductor plan --id customer_events", "%conductor plan customer_events",
                 "%conductor integrity --id customer_events"):
        cap, result = run_cell(ip, line)
        assert result.success, (line, cap.stderr)
        text = "".join(o.data.get("text/plain", "") for o in cap.outputs) + cap.stdout
        assert "customer_events" in text, line
    for line in ("%conductor plan --id nope", "%conductor crud --id nope",
                 "%conductor next nope"):
        cap, result = run_cell(ip, line)
        assert isinstance(result.error_in_exec, UsageError), line
        message = str(result.error_in_exec)
        assert "no component 'nope'" in message and "\n" not in message
        assert "known components: orders_db, customer_events" in message
    cap, result = run_cell(ip, "%conductor next orders_db --id customer_events")
    assert isinstance(result.error_in_exec, UsageError)
    assert "two component ids" in str(result.error_in_exec)
