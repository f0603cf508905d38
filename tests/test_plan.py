"""Unit tests of conductor_magics.workspace.plan: parsing plan.md and one-byte edits."""

from __future__ import annotations

from pathlib import Path

import pytest

from conductor_magics.errors import TaskNotFound, WorkspaceFormatError
from conductor_magics.workspace.plan import (
    Plan,
    Task,
    parse_plan,
    read_plan,
    set_mark_bytes,
    write_task_state,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "example_notebooks" / "storage-conductor"


def parse(text: str | bytes) -> Plan:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return parse_plan(data, "plan.md")


def names(tasks) -> list[str]:
    return [t.name for t in tasks]


def differing(a: bytes, b: bytes) -> list[int]:
    assert len(a) == len(b), "an edit changed the file's length"
    return [i for i in range(len(a)) if a[i] != b[i]]


def only_task(plan: Plan, number: str) -> Task:
    return plan.find(number)


# -- phases ------------------------------------------------------------------------------


def test_phase_heading_with_bold_and_checkpoint_reports_plain_title():
    plan = parse("## **Phase 2 — Setup** [checkpoint: abc1234]\n\n- [ ] one\n")
    assert len(plan.phases) == 1
    phase = plan.phases[0]
    assert phase.title == "Phase 2 — Setup"
    assert phase.checkpoint == "abc1234"
    assert phase.level == 2
    assert phase.line == 1
    # Numbered from its heading (issue 10, item 16b), first in file order.
    assert phase.number == 2 and phase.index == 0
    assert not phase.implicit


def test_phase_heading_with_emoji_is_a_phase_with_the_emoji_dropped():
    plan = parse("# 🚀 Phase 1: Schema Design\n- [ ] a\n### ✅ **Stage 2** — Go\n- [ ] b\n")
    assert [p.title for p in plan.phases] == ["Phase 1: Schema Design", "Stage 2 — Go"]
    assert [p.level for p in plan.phases] == [1, 3]
    assert [p.checkpoint for p in plan.phases] == [None, None]


@pytest.mark.parametrize("word", ["Phase", "Stage", "Milestone", "Step", "PHASE", "phase"])
@pytest.mark.parametrize("level", [1, 2, 3])
def test_phase_words_and_levels(word, level):
    plan = parse(f"{'#' * level} {word} 1: Things\n\n- [ ] task\n")
    assert [p.title for p in plan.phases] == [f"{word} 1: Things"]
    assert plan.phases[0].level == level
    assert names(plan.phases[0].tasks) == ["task"]


def test_level_four_phase_heading_is_not_a_phase():
    plan = parse("## Phase 1: A\n- [ ] a\n#### Phase 2: B\n- [ ] b\n")
    assert [p.title for p in plan.phases] == ["Phase 1: A"]
    # the task under the #### heading still belongs to the enclosing phase
    assert names(plan.phases[0].tasks) == ["a", "b"]


def test_level_four_phase_heading_alone_gives_implicit_phase_only():
    plan = parse("#### Phase 1: A\n- [ ] a\n")
    assert len(plan.phases) == 1
    assert plan.phases[0].implicit
    assert plan.phases[0].title != "Phase 1: A"


def test_heading_that_merely_mentions_phase_is_not_a_phase():
    plan = parse("## Overview of the phase plan\n- [ ] a\n## Steps to follow\n- [ ] b\n")
    assert all(p.implicit for p in plan.phases)


def test_non_phase_heading_at_same_level_ends_the_phase():
    plan = parse("## Phase 1\n- [ ] a\n## Notes for later\n- [ ] stray\n")
    assert names(plan.phases[0].tasks) == ["a"]
    assert names(plan.loose_tasks) == ["stray"]


@pytest.mark.parametrize("closing", ["Acceptance Criteria", "Checklist", "acceptance criteria"])
def test_closing_heading_ends_a_phase_even_when_nested(closing):
    plan = parse(f"## Phase 1\n- [ ] a\n### {closing}\n- [ ] crit one\n- [x] crit two\n")
    assert names(plan.phases[0].tasks) == ["a"]
    assert names(plan.loose_tasks) == ["crit one", "crit two"]
    assert plan.counts()["tasks_total"] == 1
    assert [t.number for t in plan.loose_tasks] == ["0.1", "0.2"]


def test_tasks_before_the_first_phase_are_loose():
    plan = parse("# Plan\n- [ ] early\n## Phase 1\n- [ ] a\n")
    assert names(plan.loose_tasks) == ["early"]
    assert names(plan.phases[0].tasks) == ["a"]


def test_plan_without_phase_headings_is_one_implicit_phase():
    plan = parse("# Implementation plan\n\n- [ ] a\n  - [x] a1\n- [x] b\n")
    assert len(plan.phases) == 1
    phase = plan.phases[0]
    assert phase.implicit
    assert phase.number == 1
    assert [t.number for t in phase.items()] == ["1.1", "1.1.1", "1.2"]
    assert all(t.phase_number == 1 for t in phase.items())
    assert plan.loose_tasks == []
    assert phase.counts() == {"tasks_total": 2, "tasks_done": 1, "subtasks_total": 1, "subtasks_done": 1}


def test_plan_without_tasks_or_phases_is_empty():
    plan = parse("# Nothing here\n\nJust prose.\n")
    assert plan.phases == []
    assert plan.loose_tasks == []
    assert plan.next_task() is None


# -- tasks -------------------------------------------------------------------------------


@pytest.mark.parametrize("bullet", ["-", "*", "+", "1.", "1)", "7."])
def test_bullets(bullet):
    plan = parse(f"## Phase 1\n\n{bullet} [ ] the task\n")
    assert names(plan.phases[0].tasks) == ["the task"]


@pytest.mark.parametrize(
    ("mark", "state"),
    [(" ", "todo"), ("x", "done"), ("X", "done"), ("~", "in_progress"), ("-", "skipped"),
     ("!", "blocked")],
)
def test_marks(mark, state):
    plan = parse(f"## Phase 1\n- [{mark}] the task\n")
    task = plan.phases[0].tasks[0]
    assert task.mark == mark
    assert task.state == state
    assert task.closed == (state in ("done", "skipped"))
    # the offset points at the mark byte
    assert plan.data[task.mark_offset:task.mark_offset + 1] == mark.encode()


def test_list_items_without_checkbox_are_not_tasks():
    plan = parse("## Phase 1\n- plain item\n- [ ] real\n- [?] odd mark\n- [] empty\n")
    assert names(plan.phases[0].tasks) == ["real"]


def test_nested_subtasks_are_numbered_by_path():
    plan = parse(
        "## Phase 1\n"
        "- [ ] a\n"
        "- [ ] b\n"
        "- [x] c\n"
        "  - [ ] c one\n"
        "  - [x] c two\n"
        "  - [ ] c three\n"
        "    - [x] deep\n"
        "## Phase 2\n"
        "1. [ ] d\n"
        "   1. [ ] d one\n"
    )
    numbered = {t.number: t for t in plan.items()}
    assert list(numbered) == ["1.1", "1.2", "1.3", "1.3.1", "1.3.2", "1.3.3", "1.3.3.1", "2.1", "2.1.1"]
    assert numbered["1.3.3.1"].name == "deep"
    assert numbered["1.3.3.1"].depth == 2
    assert numbered["1.3.1"].depth == 1
    assert numbered["2.1.1"].phase_number == 2
    assert names(numbered["1.3"].children) == ["c one", "c two", "c three"]
    assert plan.phases[0].counts() == {
        "tasks_total": 3, "tasks_done": 1, "subtasks_total": 4, "subtasks_done": 2,
    }
    assert plan.counts() == {"tasks_total": 4, "tasks_done": 1, "subtasks_total": 5, "subtasks_done": 2}


def test_checkbox_items_under_a_plain_item_are_top_level_tasks():
    plan = parse("## Phase 1\n- Group heading\n  - [ ] inside\n")
    assert names(plan.phases[0].tasks) == ["inside"]
    assert plan.phases[0].tasks[0].number == "1.1"


def test_tab_indented_subtask():
    plan = parse("## Phase 1\n- [ ] a\n\t- [ ] b\n")
    parent = plan.phases[0].tasks[0]
    assert names(parent.children) == ["b"]
    assert parent.children[0].number == "1.1.1"


@pytest.mark.parametrize(
    ("text", "name", "sha"),
    [
        ("Create table abc1234", "Create table", "abc1234"),
        ("Create table (abc1234)", "Create table", "abc1234"),
        ("Create table [abc1234]", "Create table", "abc1234"),
        ("Create table `abc1234`", "Create table", "abc1234"),
        ("Create table 0123456789abcdef0123456789abcdef01234567",
         "Create table", "0123456789abcdef0123456789abcdef01234567"),
        ("Seed 1000000 rows", "Seed 1000000 rows", None),
        ("Seed rows 1000000", "Seed rows 1000000", None),
        ("Add deadbeefcafe index", "Add deadbeefcafe index", None),
        ("Task: Add the index", "Task: Add the index", None),
        ("Use **bold** and `code` text", "Use bold and code text", None),
        # A trailing parenthesis with a SHA and prose is a commit note (issue 10, 16c) …
        ("Task: Build the thing 01b3180 (original commit, refactored in e9d5635)",
         "Task: Build the thing", "01b3180"),
        ("Build the thing (abc1234) (reverted in e9d5635, redone in 7c0ffee)",
         "Build the thing", "abc1234"),
        ("Build the thing (01b3180, e9d5635)", "Build the thing", "01b3180"),
        ("Build the thing (see e9d5635 for details)", "Build the thing", "e9d5635"),
        ("Build 01b3180 (original commit, refactored in e9d5635) (a1b2c3d)", "Build", "a1b2c3d"),
        # … and a parenthesis without one is part of the name.
        ("Add index (customer_id, created_at)", "Add index (customer_id, created_at)", None),
        ("Add index (customer_id, created_at) abc1234",
         "Add index (customer_id, created_at)", "abc1234"),
        ("Seed (1000000 rows)", "Seed (1000000 rows)", None),
        ("Add index (a1b2c3d4e5) on orders", "Add index (a1b2c3d4e5) on orders", None),
    ],
)
def test_task_names_and_trailing_sha(text, name, sha):
    plan = parse(f"## Phase 1\n- [x] {text}\n")
    task = plan.phases[0].tasks[0]
    assert task.name == name
    assert task.sha == sha


def test_tasks_in_code_fences_and_html_comments_are_ignored():
    plan = parse(
        "## Phase 1\n"
        "\n"
        "```markdown\n"
        "- [ ] fenced fake\n"
        "## Phase 9: fenced heading\n"
        "```\n"
        "\n"
        "~~~\n"
        "* [x] tilde fake\n"
        "~~~\n"
        "\n"
        "<!--\n"
        "- [ ] commented fake\n"
        "## Phase 8: commented heading\n"
        "-->\n"
        "\n"
        "- [ ] real one\n"
        "\n"
        "<!-- - [ ] inline comment fake -->\n"
        "\n"
        "    - [ ] indented code fake\n"
        "\n"
        "- [x] real two\n"
    )
    assert [p.title for p in plan.phases] == ["Phase 1"]
    assert names(plan.items()) == ["real one", "real two"]
    assert plan.loose_tasks == []


def test_task_lines_are_reported():
    plan = parse("# Plan\n\n## Phase 1\n\nProse.\n\n- [ ] a\n  - [ ] b\n")
    assert [t.line for t in plan.items()] == [7, 8]
    assert plan.phases[0].line == 3


# -- find and next ----------------------------------------------------------------------

FIND_PLAN = (
    "## Phase 1: Schema\n"
    "- [x] Task: Declare the orders table\n"
    "- [ ] Declare the orders table indexes\n"
    "  - [ ] Add the customer index\n"
    "- [ ] Mirror the models\n"
    "## Phase 2: Migrations\n"
    "- [ ] Initialise Alembic\n"
    "- [ ] Create the initial revision\n"
)


def test_find_by_number():
    plan = parse(FIND_PLAN)
    assert plan.find("1.2").name == "Declare the orders table indexes"
    assert plan.find("1.2.1").name == "Add the customer index"
    assert plan.find(" 2.2 ").name == "Create the initial revision"


def test_find_by_exact_text_wins_over_substring():
    plan = parse(FIND_PLAN)
    # "declare the orders table" is a substring of two names but the exact name of one
    # (after its "Task:" prefix)
    assert plan.find("declare the orders table").number == "1.1"
    assert plan.find("TASK: DECLARE THE ORDERS TABLE").number == "1.1"


def test_find_by_unique_substring():
    plan = parse(FIND_PLAN)
    assert plan.find("alembic").number == "2.1"
    assert plan.find("customer   index").number == "1.2.1"


def test_find_ambiguous_lists_candidates():
    plan = parse(FIND_PLAN)
    with pytest.raises(TaskNotFound) as info:
        plan.find("orders")
    message = str(info.value)
    assert "matches 2 tasks" in message
    assert "1.1" in message and "1.2" in message
    assert "Declare the orders table indexes" in message


def test_find_not_found():
    plan = parse(FIND_PLAN)
    with pytest.raises(TaskNotFound, match="no task matches 'backup'"):
        plan.find("backup")
    with pytest.raises(TaskNotFound, match="no task 3.1"):
        plan.find("3.1")
    with pytest.raises(TaskNotFound):
        plan.find("   ")


def test_next_task_prefers_in_progress():
    plan = parse("## Phase 1\n- [x] a\n- [ ] b\n## Phase 2\n- [~] c\n")
    assert plan.next_task().name == "c"


def test_next_task_is_first_todo_skipping_blocked_and_closed():
    plan = parse("## Phase 1\n- [x] a\n- [!] b\n- [-] c\n  - [ ] c1\n- [ ] d\n")
    assert plan.next_task().number == "1.3.1"
    plan = parse("## Phase 1\n- [x] a\n- [!] b\n- [-] c\n- [ ] d\n")
    assert plan.next_task().name == "d"


def test_next_task_none_when_everything_is_closed_or_blocked():
    plan = parse("## Phase 1\n- [x] a\n- [!] b\n- [-] c\n")
    assert plan.next_task() is None


def test_phase_finished_and_lookup():
    plan = parse("## Phase 1\n- [x] a\n- [-] b\n## Phase 2\n- [x] c\n  - [ ] c1\n## Phase 3\n")
    assert [p.finished for p in plan.phases] == [True, False, False]
    assert plan.phase(2).title == "Phase 2"
    with pytest.raises(TaskNotFound, match="no phase 4"):
        plan.phase(4)


def test_example_plans_parse():
    orders = read_plan(EXAMPLE / "storages" / "orders_db" / "plan.md")
    assert len(orders.phases) == 8
    assert orders.phases[0].title == "Phase 1: Schema Design"
    # the SQL in the fenced block of phase 1 contributes no task
    assert orders.phases[0].counts() == {
        "tasks_total": 5, "tasks_done": 0, "subtasks_total": 5, "subtasks_done": 0,
    }
    events = read_plan(EXAMPLE / "storages" / "customer_events" / "plan.md")
    assert [p.title for p in events.phases] == [
        "Phase 1: Schema Design", "Phase 2: Migration Setup", "Phase 3: Data Integrity",
    ]
    assert events.next_task().number == "1.1"
    assert events.find("1.1.2").name.startswith("Require valid JSON")


# -- errors -------------------------------------------------------------------------------


def test_invalid_utf8_reports_the_line():
    data = b"## Phase 1\n- [ ] a\n- [ ] caf\xe9\n"
    with pytest.raises(WorkspaceFormatError) as info:
        parse_plan(data, "some/plan.md")
    assert info.value.line == 3
    assert info.value.path == Path("some/plan.md")
    assert "UTF-8" in info.value.message


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_invalid_utf8_line_with_any_line_ending(eol):
    data = b"\xef\xbb\xbf## Phase 1" + eol + b"- [ ] a" + eol + eol + b"- [ ] \xff" + eol
    with pytest.raises(WorkspaceFormatError) as info:
        parse_plan(data, "plan.md")
    assert info.value.line == 4


def test_missing_plan_is_a_format_error(tmp_path):
    with pytest.raises(WorkspaceFormatError, match="missing"):
        read_plan(tmp_path / "plan.md")


def test_set_mark_refuses_a_stale_offset():
    plan = parse("## Phase 1\n- [ ] a\n")
    task = plan.phases[0].tasks[0]
    with pytest.raises(WorkspaceFormatError):
        set_mark_bytes(b"## Phase 1\nabcdefgh\n", task, "done")


# -- one-byte edits -----------------------------------------------------------------------

EDIT_CASES = {
    "crlf": b"## Phase 1\r\n\r\n- [ ] a\r\n  - [ ] b\r\n- [ ] c\r\n",
    "mixed": b"## Phase 1\n\r\n- [ ] a\r\n  - [ ] b\n- [ ] c\r\n",
    "lone_cr": b"## Phase 1\r\r- [ ] a\r  - [ ] b\r- [ ] c\r",
    "bom": b"\xef\xbb\xbf## Phase 1\n\n- [ ] a\n  - [ ] b\n- [ ] c\n",
    "tabs": b"## Phase 1\n- [ ] a\n\t- [ ] b\n- [ ] c\n",
    "trailing_spaces": b"## Phase 1   \n- [ ] a  \n  - [ ] b \t\n- [ ] c   \n",
    "no_final_newline": b"## Phase 1\n- [ ] a\n  - [ ] b\n- [ ] c",
    "non_ascii": "## Phase 1 — Schéma ✓\n\nÜber 日本語 prose 🚀.\n\n- [ ] a\n  - [ ] b\n- [ ] c\n".encode(),
    "non_ascii_bom_crlf": "\ufeff# Plän\r\n## Phase 1 — ü\r\n- [ ] a ünïcode\r\n  - [ ] b 🚀\r\n- [ ] c\r\n".encode(),
    "numbered": b"## Phase 1\n1. [ ] a\n   1. [ ] b\n2. [ ] c\n",
}


@pytest.mark.parametrize("case", sorted(EDIT_CASES))
@pytest.mark.parametrize("number", ["1.1", "1.1.1", "1.2"])
@pytest.mark.parametrize("state", ["done", "in_progress", "skipped", "blocked"])
def test_set_mark_bytes_changes_exactly_one_byte(case, number, state):
    data = EDIT_CASES[case]
    plan = parse(data)
    assert [t.number for t in plan.items()] == ["1.1", "1.1.1", "1.2"]
    task = plan.find(number)
    new = set_mark_bytes(data, task, state)
    assert differing(data, new) == [task.mark_offset]
    again = parse(new)
    assert again.find(number).state == state
    others = [(t.number, t.name, t.state) for t in again.items() if t.number != number]
    before = [(t.number, t.name, t.state) for t in plan.items() if t.number != number]
    assert others == before
    # and back to todo restores the original bytes
    assert set_mark_bytes(new, again.find(number), "todo") == data


def test_set_mark_bytes_uppercase_x_to_done_writes_lowercase():
    data = b"## Phase 1\n- [X] a\n"
    plan = parse(data)
    new = set_mark_bytes(data, plan.phases[0].tasks[0], "done")
    assert new == b"## Phase 1\n- [x] a\n"


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "plan.md"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(EDIT_CASES))
def test_write_task_state_changes_one_byte_on_disk(tmp_path, case):
    data = EDIT_CASES[case]
    path = write(tmp_path, data)
    key = read_plan(path).find("1.1.1").key
    new_plan, task, before = write_task_state(path, key, "done")
    assert before == "todo"
    assert task.number == "1.1.1"
    assert task.state == "done"
    on_disk = path.read_bytes()
    assert on_disk == new_plan.data
    assert differing(data, on_disk) == [task.mark_offset]
    # no temporary file is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.md"]


def test_write_task_state_same_state_writes_nothing(tmp_path):
    data = b"## Phase 1\n- [x] a\n"
    path = write(tmp_path, data)
    mtime = path.stat().st_mtime_ns
    plan = read_plan(path)
    _plan, task, before = write_task_state(path, plan.phases[0].tasks[0].key, "done")
    assert before == "done"
    assert task.state == "done"
    assert path.read_bytes() == data
    assert path.stat().st_mtime_ns == mtime


def test_write_task_state_finds_task_after_a_line_was_inserted_above(tmp_path):
    data = b"## Phase 1\n\n- [ ] a\n- [ ] b\n  - [ ] b one\n- [ ] c\n"
    path = write(tmp_path, data)
    plan = read_plan(path)
    key = plan.find("b one").key
    old_line = plan.find("b one").line
    # Meanwhile someone edits the file in JupyterLab: a line and a task appear above.
    edited = b"## Phase 1\n\nA note written in the editor.\n\n- [ ] new first task\n- [ ] a\n- [ ] b\n  - [ ] b one\n- [ ] c\n"
    path.write_bytes(edited)
    new_plan, task, before = write_task_state(path, key, "done")
    assert before == "todo"
    assert task.name == "b one"
    assert task.line == old_line + 3
    on_disk = path.read_bytes()
    assert differing(edited, on_disk) == [task.mark_offset]
    assert b"A note written in the editor." in on_disk
    assert new_plan.find("b one").state == "done"
    assert [t.state for t in new_plan.items() if t.name != "b one"] == ["todo"] * 4


def test_write_task_state_with_duplicate_names_uses_the_ordinal(tmp_path):
    data = b"## Phase 1\n- [ ] Run tests\n- [ ] Run tests\n## Phase 2\n- [ ] Run tests\n"
    path = write(tmp_path, data)
    plan = read_plan(path)
    second = plan.find("1.2")
    assert second.key.ordinal == 1
    new_plan, task, _ = write_task_state(path, second.key, "done")
    assert [t.state for t in new_plan.items()] == ["todo", "done", "todo"]
    assert task.number == "1.2"


def test_write_task_state_when_task_was_removed(tmp_path):
    path = write(tmp_path, b"## Phase 1\n- [ ] a\n- [ ] b\n")
    key = read_plan(path).find("b").key
    path.write_bytes(b"## Phase 1\n- [ ] a\n")
    with pytest.raises(TaskNotFound, match="no longer in the plan"):
        write_task_state(path, key, "done")
    assert path.read_bytes() == b"## Phase 1\n- [ ] a\n"


def test_write_task_state_after_phase_rename_uses_unique_path(tmp_path):
    path = write(tmp_path, b"## Phase 1: Old\n- [ ] a\n")
    key = read_plan(path).find("a").key
    path.write_bytes(b"## Phase 1: New name\n- [ ] a\n")
    new_plan, task, _ = write_task_state(path, key, "done")
    assert task.state == "done"
    assert path.read_bytes() == b"## Phase 1: New name\n- [x] a\n"
    assert new_plan.phases[0].title == "Phase 1: New name"


def test_plan_updated_in_place_matches_a_fresh_parse(tmp_path):
    path = tmp_path / "plan.md"
    path.write_bytes(b"## Phase 1: A\n- [ ] one\n  - [ ] sub\n- [~] two\n## Phase 2: B\n- [ ] three\n")
    plan = read_plan(path)
    for number, state in (("1.1.1", "done"), ("1.2", "skipped"), ("2.1", "blocked"), ("1.1.1", "todo")):
        plan, _task, _before = write_task_state(path, plan.find(number).key, state, plan)
        fresh = read_plan(path)
        assert plan.data == fresh.data == path.read_bytes()
        assert [(t.number, t.mark, t.mark_offset) for t in plan.items()] == \
               [(t.number, t.mark, t.mark_offset) for t in fresh.items()]
        assert plan.counts() == fresh.counts()


def test_workspace_lock_is_reentrant_within_a_thread(tmp_path):
    from conductor_magics.workspace.files import workspace_lock

    with workspace_lock(tmp_path, timeout=2), workspace_lock(tmp_path, timeout=2):
        pass  # a nested acquire would time out if the lock were not re-entrant


# -- phase numbers from the headings (issue 10, 16b) ---------------------------------------------


@pytest.mark.parametrize(
    ("headings", "numbers", "by_heading"),
    [
        (["Phase 0: Setup", "Phase 1: Schema", "Phase 2: Core"], [0, 1, 2], True),
        (["Phase 1: Schema", "Phase 2: Core"], [1, 2], True),
        (["Phase 1", "Phase 3", "Phase 7"], [1, 3, 7], True),
        (["Stage 0 — Setup", "Stage 1 — Go"], [0, 1], True),
        # not consistently numbered: by position from 1
        (["Phase 0: Setup", "Phase Cleanup"], [1, 2], False),
        (["Phase 0: A", "Phase 0: B"], [1, 2], False),
        (["Phase 2: A", "Phase 1: B"], [1, 2], False),
        (["Phase 1.5: A", "Phase 2: B"], [1, 2], False),
        (["Phase 2a: A", "Phase 3: B"], [1, 2], False),
    ],
)
def test_phases_are_numbered_by_their_headings_when_consistent(headings, numbers, by_heading):
    plan = parse("".join(f"## {h}\n\n- [ ] t\n  - [ ] s\n\n" for h in headings))
    assert [p.number for p in plan.phases] == numbers
    assert [p.index for p in plan.phases] == list(range(len(headings)))
    assert plan.numbered_by_heading == by_heading
    assert [t.number for t in plan.items()] == [x for n in numbers for x in (f"{n}.1", f"{n}.1.1")]
    assert [t.phase_index for t in plan.items()] == [i for i in range(len(numbers)) for _ in (1, 2)]
    for phase in plan.phases:
        assert plan.phase(phase.number) is phase
        assert plan.find(f"{phase.number}.1.1").phase_number == phase.number


def test_phase_label_uses_the_heading_only_when_it_names_the_number():
    plan = parse("## Phase 0: Setup\n- [ ] a\n## Phase 1: Core\n- [ ] b\n")
    assert [p.label for p in plan.phases] == ["Phase 0: Setup", "Phase 1: Core"]
    plan = parse("## Phase 0: Setup\n- [ ] a\n## Phase Core\n- [ ] b\n")
    assert [p.label for p in plan.phases] == ["phase 1 'Phase 0: Setup'", "phase 2 'Phase Core'"]
    plan = parse("## Phase 10: Docs\n- [ ] a\n## Phase 10: Again\n- [ ] b\n")
    assert plan.phases[0].label == "phase 1 'Phase 10: Docs'"


def test_missing_phase_names_the_numbers_there_are():
    plan = parse("## Phase 0: Setup\n- [ ] a\n## Phase 1: Core\n- [ ] b\n")
    with pytest.raises(TaskNotFound, match=r"no phase 2 \(it has 2: 0, 1\)") as caught:
        plan.phase(2)
    assert "as their headings number them" in str(caught.value.hint)
