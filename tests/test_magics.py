"""%conductor through a real IPython shell."""

from __future__ import annotations

import json

from helpers.notebook import run_cell as run
from IPython.core.completer import provisionalcompleter
from IPython.core.error import UsageError


def html_of(cap) -> str:
    return "".join(o.data.get("text/html", "") for o in cap.outputs)


def test_status_renders_a_table_with_progress_bars_and_plain_text(ip):
    cap, result = run(ip, "%conductor status")
    assert result.success
    html = html_of(cap)
    assert "<table>" in html and 'class="bar"' in html
    assert "orders_db" in html and "customer_events" in html
    plain = cap.outputs[0].data["text/plain"]
    assert "orders_db" in plain and "0/38" in plain


def test_implement_loads_context_into_the_kernel(ip, project):
    cap, result = run(ip, "%conductor implement orders_db")
    assert result.success, cap.stderr
    loaded = ip.user_ns["conductor"]
    assert loaded.id == "orders_db"
    assert "Query Patterns" in loaded.spec
    assert loaded.workflow.commits == "per-task"
    assert len(loaded.plan.phases) == 8
    meta = json.loads((project / "storage-conductor/storages/orders_db/metadata.json").read_text())
    assert meta["status"] == "In Progress"


def test_loaded_plan_follows_edits_made_elsewhere(ip, project):
    run(ip, "%conductor implement orders_db")
    loaded = ip.user_ns["conductor"]
    assert loaded.plan.phases[0].tasks[0].state == "todo"
    run(ip, "%conductor task done 1.1")
    assert loaded.plan.phases[0].tasks[0].state == "done"


def test_variable_name_is_configurable(ip):
    ip.run_line_magic("config", "Conductor.variable = 'ctx'")
    run(ip, "%conductor implement customer_events")
    assert ip.user_ns["ctx"].id == "customer_events"
    assert "conductor" not in ip.user_ns


def test_errors_are_one_line_without_traceback(ip, project):
    plan = project / "storage-conductor/storages/orders_db/plan.md"
    before = plan.read_bytes()
    cap, result = run(ip, "%conductor task done orders_db no-such-task-anywhere")
    assert isinstance(result.error_in_exec, UsageError)
    assert "Traceback" not in cap.stderr and "Traceback" not in cap.stdout
    lines = [line for line in cap.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no task matches" in lines[0] and "plan.md" in lines[0]
    assert plan.read_bytes() == before


def test_unknown_subcommand_is_a_usage_error(ip):
    cap, result = run(ip, "%conductor frobnicate")
    assert isinstance(result.error_in_exec, UsageError)
    assert "invalid choice" in cap.stderr


def test_help_is_generated_from_the_parser(ip):
    doc = ip.find_line_magic("conductor").__doc__
    for word in ("status", "implement", "next", "context", "task", "verify", "complete", "lint", "--root"):
        assert word in doc
    cap, result = run(ip, "%conductor task --help")
    assert result.success
    assert "done" in cap.stdout and "--force" in cap.stdout


def test_cell_body_on_a_line_command_is_refused(ip):
    _cap, result = run(ip, "%%conductor status\nSELECT 1")
    assert isinstance(result.error_in_exec, UsageError)


def test_tab_completion_of_subcommands_and_ids(ip):
    with provisionalcompleter():
        subs = [c.text for c in ip.Completer.completions("%conductor im", 13)]
        ids = [c.text for c in ip.Completer.completions("%conductor implement ", 21)]
        actions = [c.text for c in ip.Completer.completions("%conductor task d", 17)]
    assert subs == ["implement"]
    assert sorted(ids) == ["customer_events", "orders_db"]
    assert actions == ["done"]


def test_gate_flow_through_magics(ip, project):
    run(ip, "%conductor implement customer_events")
    for ref in ("1.1.1", "1.1.2", "1.1", "1.2", "1.3"):
        cap, result = run(ip, f"%conductor task done customer_events {ref}")
        assert result.success, cap.stderr
    cap, result = run(ip, "%conductor task done customer_events 2.1")
    assert isinstance(result.error_in_exec, UsageError)
    assert "locked" in cap.stderr
    cap, result = run(ip, '%conductor verify customer_events --phase 1 --confirm "reviewed the DDL"')
    assert result.success, cap.stderr
    log = json.loads((project / "storage-conductor/storages/customer_events/verification.json").read_text())
    assert log[-1]["phase"] == 1 and log[-1]["by"] == "tester" and log[-1]["note"] == "reviewed the DDL"
    _cap, result = run(ip, "%conductor task done customer_events 2.1")
    assert result.success


def test_context_shows_markdown(ip):
    cap, result = run(ip, "%conductor context orders_db spec")
    assert result.success
    assert any("text/markdown" in o.data and "Query Patterns" in o.data["text/markdown"] for o in cap.outputs)


def test_lint_shows_findings(ip, project):
    (project / "storage-conductor/storages/orders_db/spec.md").unlink()
    cap, result = run(ip, "%conductor lint")
    assert result.success  # findings are shown, not raised
    assert "spec.md is missing" in html_of(cap)


def test_rich_output_can_be_turned_off(ip):
    ip.run_line_magic("config", "Conductor.rich = False")
    try:
        cap, _ = run(ip, "%conductor next orders_db")
    finally:
        ip.run_line_magic("config", "Conductor.rich = True")
    assert not cap.outputs
    assert "orders_db: next: 1.1" in cap.stdout


def test_reload_does_not_duplicate_registrations(ip):
    ip.run_line_magic("reload_ext", "conductor_magics")
    from conductor_magics.magics import Conductor

    assert sum(isinstance(c, Conductor) for c in ip.configurables) == 1
    names = [getattr(m, "__name__", "") for m in ip.Completer.custom_matchers]
    assert names.count("conductor_matcher") == 1
