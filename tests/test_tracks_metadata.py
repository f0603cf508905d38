"""tracks.md, status words, metadata.json and workflow.md: lenient reads, minimal writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conductor_magics.errors import WorkspaceFormatError
from conductor_magics.workspace.metadata import (
    edited_text,
    parse_metadata,
    read_metadata,
    update_metadata,
)
from conductor_magics.workspace.status import (
    BLOCKED,
    CANCELLED,
    COMPLETED,
    IN_PROGRESS,
    PLANNING,
    REVERTED,
    can_transition,
    parse_status,
)
from conductor_magics.workspace.tracks import (
    edited_tracks_bytes,
    parse_tracks,
    read_tracks,
    update_track,
)
from conductor_magics.workspace.workflow import (
    AUTOMATIC,
    NO_COMMITS,
    PER_PHASE,
    PER_TASK,
    SCHEMA_FIRST,
    TDD,
    VERSIONED,
    WorkflowPreferences,
    parse_workflow,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "example_notebooks" / "storage-conductor"
MOMENT = datetime(2026, 12, 24, 8, 30, 15, tzinfo=UTC)
TRACKS = Path("tracks.md")


def tracks(text: str | bytes):
    data = text.encode("utf-8") if isinstance(text, str) else text
    return parse_tracks(data, TRACKS)


def changed_lines(a: bytes, b: bytes) -> list[int]:
    la, lb = a.split(b"\n"), b.split(b"\n")
    assert len(la) == len(lb)
    return [i + 1 for i, (x, y) in enumerate(zip(la, lb, strict=True)) if x != y]


# -- status words ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("Planning", PLANNING), ("planning", PLANNING), ("PLANNING", PLANNING),
        ("In Progress", IN_PROGRESS), ("in progress", IN_PROGRESS), ("in_progress", IN_PROGRESS),
        ("IN-PROGRESS", IN_PROGRESS), ("In_Progress", IN_PROGRESS), ("**In Progress**", IN_PROGRESS),
        ("🟡 in_progress", IN_PROGRESS), ("  In   Progress ", IN_PROGRESS),
        ("Completed", COMPLETED), ("completed", COMPLETED), ("✅ **Completed**", COMPLETED),
        ("Blocked", BLOCKED), ("Cancelled", CANCELLED), ("canceled", CANCELLED),
        ("Reverted", REVERTED), ("REVERTED", REVERTED),
    ],
)
def test_parse_status(text, status):
    assert parse_status(text) == status


@pytest.mark.parametrize("text", [None, "", "   ", "Someday", "progressive", "**?**"])
def test_parse_status_unknown(text):
    assert parse_status(text) is None


def test_transitions():
    assert can_transition(PLANNING, IN_PROGRESS)
    assert can_transition(IN_PROGRESS, COMPLETED)
    assert can_transition(COMPLETED, COMPLETED)
    assert can_transition(None, COMPLETED)
    # Planning → Completed only happens through `complete`, which checks every gate first.
    assert can_transition(PLANNING, COMPLETED)
    assert not can_transition(CANCELLED, COMPLETED)
    assert not can_transition(CANCELLED, IN_PROGRESS)


# -- tracks.md: table form ------------------------------------------------------------------


def test_example_tracks():
    parsed = read_tracks(EXAMPLE / "tracks.md")
    assert parsed.form == "table"
    assert parsed.problems == []
    assert [(r.id, r.status, r.title) for r in parsed.rows] == [
        ("orders_db", PLANNING, "Orders database"),
        ("customer_events", PLANNING, "Customer event log"),
    ]
    assert [r.line for r in parsed.rows] == [7, 8]
    assert parsed.row("orders_db").value("backend") == "PostgreSQL"
    assert parsed.row("orders_db").updated == datetime(2026, 11, 10, tzinfo=UTC)


@pytest.mark.parametrize("id_header", ["Storage ID", "ID", "Track ID", "**Storage ID**", "storage_id"])
def test_id_header_names(id_header):
    parsed = tracks(f"| {id_header} | Status |\n|---|---|\n| orders_db | Planning |\n")
    assert [r.id for r in parsed.rows] == ["orders_db"]
    assert parsed.problems == []


def test_columns_in_any_order_with_decorated_cells():
    text = (
        "# Tracks\n"
        "\n"
        "| Updated Date | Status | Title | Track ID | Backend |\n"
        "|:--|:-:|--|--:|---|\n"
        "| 2026-01-02 | **In Progress** | *Orders* | `orders_db` | PostgreSQL |\n"
        "| 2026-01-03T10:00:00Z | 🟢 completed | Events | [events](./storages/events/) | SQLite |\n"
        "| 2026-01-04 | in_progress | Cache | [](storages/cache_db/) | Redis |\n"
        "|  |  |  |  |  |\n"
        "| - | - | - | - | - |\n"
        "| 2026-01-05 | Blocked | Audit | audit | SQLite |\n"
    )
    parsed = tracks(text)
    assert parsed.problems == []
    assert [(r.id, r.status, r.title, r.line) for r in parsed.rows] == [
        ("orders_db", IN_PROGRESS, "Orders", 5),
        ("events", COMPLETED, "Events", 6),
        ("cache_db", IN_PROGRESS, "Cache", 7),
        ("audit", BLOCKED, "Audit", 10),
    ]
    assert parsed.row("events").updated == datetime(2026, 1, 3, 10, tzinfo=UTC)
    assert parsed.row("orders_db").value("backend") == "PostgreSQL"


def test_unknown_status_word_parses_as_none():
    parsed = tracks("| ID | Status |\n|---|---|\n| a | Someday |\n")
    assert parsed.rows[0].status is None
    assert parsed.rows[0].status_text == "Someday"


def test_missing_status_column_is_reported_with_the_header_line():
    parsed = tracks("# Tracks\n\nIntro.\n\n| Storage ID | Title |\n|---|---|\n| a | A |\n")
    codes = [(p.code, p.line, p.severity) for p in parsed.problems]
    assert codes == [("tracks-no-status-column", 5, "error")]
    assert "Status" in parsed.problems[0].message
    assert parsed.problems[0].path == TRACKS


def test_table_in_code_fence_is_ignored():
    parsed = tracks(
        "```\n| ID | Status |\n|---|---|\n| fake | Planning |\n```\n\n"
        "| ID | Status |\n|---|---|\n| real | Planning |\n"
    )
    assert [r.id for r in parsed.rows] == ["real"]


def test_unrelated_table_is_not_a_registry():
    parsed = tracks("| Column | Meaning |\n|---|---|\n| a | b |\n")
    assert parsed.rows == []
    assert parsed.form is None
    assert parsed.problems == []


# -- tracks.md: list form -------------------------------------------------------------------

LIST_FORM = (
    "# Project Tracks\n"
    "\n"
    "---\n"
    "\n"
    "- [~] **Track: Orders database**\n"
    "  *Link: [./storages/orders_db/](./storages/orders_db/)*\n"
    "\n"
    "---\n"
    "\n"
    "- [ ] **Track: Customer events**\n"
    "  Link: storages/customer_events/\n"
    "- [x] **Track: Old cache**\n"
    "  *Link: [./tracks/old_cache/](./tracks/old_cache/)*\n"
    "- [!] **Track: Audit**\n"
    "  Link: storages/audit/\n"
    "- [-] **Track: Dropped**\n"
    "  Link: storages/dropped/\n"
)


def test_list_form_marks_to_statuses():
    parsed = tracks(LIST_FORM)
    assert parsed.form == "list"
    assert parsed.problems == []
    assert [(r.id, r.status, r.title, r.line) for r in parsed.rows] == [
        ("orders_db", IN_PROGRESS, "Orders database", 5),
        ("customer_events", PLANNING, "Customer events", 10),
        ("old_cache", COMPLETED, "Old cache", 12),
        ("audit", BLOCKED, "Audit", 14),
        ("dropped", CANCELLED, "Dropped", 16),
    ]


def test_list_form_without_link_is_a_problem():
    parsed = tracks("- [ ] **Track: Orphan**\n  no link here\n\n- [ ] **Track: Good**\n  Link: storages/good/\n")
    assert [r.id for r in parsed.rows] == ["good"]
    assert [(p.code, p.line) for p in parsed.problems] == [("tracks-no-link", 1)]


def test_list_form_edit_changes_only_the_mark():
    data = LIST_FORM.encode()
    new = edited_tracks_bytes(data, TRACKS, "customer_events", status=IN_PROGRESS, updated=MOMENT)
    assert len(new) == len(data)
    diff = [i for i in range(len(data)) if data[i] != new[i]]
    assert len(diff) == 1
    assert new[diff[0]:diff[0] + 1] == b"~"
    assert tracks(new).row("customer_events").status == IN_PROGRESS
    new = edited_tracks_bytes(data, TRACKS, "orders_db", status=COMPLETED)
    assert tracks(new).row("orders_db").status == COMPLETED
    assert b"- [x] **Track: Orders database**" in new


# -- tracks.md: edits ---------------------------------------------------------------------------


def test_edit_changes_only_status_word_and_updated_cell():
    data = (EXAMPLE / "tracks.md").read_bytes()
    new = edited_tracks_bytes(data, TRACKS, "customer_events", status=IN_PROGRESS, updated=MOMENT)
    assert changed_lines(data, new) == [8]
    old_line = data.split(b"\n")[7]
    new_line = new.split(b"\n")[7]
    assert old_line == b"| customer_events | Customer event log | relational | SQLite | Planning | 2026-11-05 | 2026-11-06 |"
    assert new_line == b"| customer_events | Customer event log | relational | SQLite | In Progress | 2026-11-05 | 2026-12-24 |"


def test_edit_keeps_decoration_style_and_timestamp_shape():
    text = (
        "| Status | ID | Updated Date | Notes |\n"
        "|---|---|---|---|\n"
        "| **Planning** | `a` | 2026-01-01T10:00:00Z | keep   this |\n"
        "| in_progress | b | 2026-01-01 | x |\n"
        "| PLANNING | c | 2026-01-01T10:00:00.5+00:00 | y |\n"
    )
    data = text.encode()
    new = edited_tracks_bytes(data, TRACKS, "a", status=IN_PROGRESS, updated=MOMENT)
    assert new.decode().splitlines()[2] == "| **In Progress** | `a` | 2026-12-24T08:30:15Z | keep   this |"
    assert changed_lines(data, new) == [3]
    new = edited_tracks_bytes(data, TRACKS, "b", status=COMPLETED, updated=MOMENT)
    assert new.decode().splitlines()[3] == "| completed | b | 2026-12-24 | x |"
    new = edited_tracks_bytes(data, TRACKS, "c", status=IN_PROGRESS, updated=MOMENT)
    assert new.decode().splitlines()[4] == "| IN PROGRESS | c | 2026-12-24T08:30:15.000000+00:00 | y |"


def test_edit_with_crlf_and_bom_is_byte_identical_elsewhere():
    data = (
        "\ufeff# Tracks — Überblick\r\n"
        "\r\n"
        "| Storage ID | Status | Updated Date |   \r\n"
        "|---|---|---|\r\n"
        "| a | Planning | 2026-01-01 |\r\n"
        "| b | Planning | 2026-01-01 |\r\n"
        "trailing prose without newline"
    ).encode()
    new = edited_tracks_bytes(data, TRACKS, "b", status=IN_PROGRESS, updated=MOMENT)
    expected = data.replace(b"| b | Planning | 2026-01-01 |", b"| b | In Progress | 2026-12-24 |")
    assert new == expected
    assert new.count(b"\r\n") == data.count(b"\r\n")


def test_edit_of_unknown_row_or_same_values_changes_nothing():
    data = (EXAMPLE / "tracks.md").read_bytes()
    assert edited_tracks_bytes(data, TRACKS, "nope", status=COMPLETED, updated=MOMENT) == data
    assert edited_tracks_bytes(data, TRACKS, "orders_db", status=PLANNING) == data


def test_update_track_writes_the_file(tmp_path):
    path = tmp_path / "tracks.md"
    data = (EXAMPLE / "tracks.md").read_bytes()
    path.write_bytes(data)
    assert update_track(path, "orders_db", status=IN_PROGRESS, updated=MOMENT)
    assert read_tracks(path).row("orders_db").status == IN_PROGRESS
    assert changed_lines(data, path.read_bytes()) == [7]
    assert not update_track(path, "orders_db", status=IN_PROGRESS)
    assert not update_track(tmp_path / "absent.md", "orders_db", status=IN_PROGRESS)


# -- tracks.md: Status cells holding checkbox marks (issue 10, 16a) -----------------------------

CHECKBOX_TABLE = (
    "| Status | Track ID | Title | Created | Updated |\n"
    "| ------ | -------- | ----- | ------- | ------- |\n"
    "| [x] | done_one | Done | 2026-01-01 | 2026-01-02 |\n"
    "| [ ] | todo_one | Todo | 2026-01-01 | 2026-01-02 |\n"
    "| [~] | wip_one | Wip | 2026-01-01 | 2026-01-02 |\n"
    "| `[!]` | stuck_one | Stuck | 2026-01-01 | 2026-01-02 |\n"
    "| **[-]** | dropped_one | Dropped | 2026-01-01 | 2026-01-02 |\n"
    "| [X] | caps_one | Caps | 2026-01-01 | 2026-01-02 |\n"
    "| [x] Completed | both_one | Both | 2026-01-01 | 2026-01-02 |\n"
    "| [ ] |  |  |  |  |\n"
)


def test_checkbox_status_cells_parse_as_statuses():
    parsed = tracks(CHECKBOX_TABLE)
    assert parsed.problems == []
    assert [(r.id, r.status) for r in parsed.rows] == [
        ("done_one", COMPLETED), ("todo_one", PLANNING), ("wip_one", IN_PROGRESS),
        ("stuck_one", BLOCKED), ("dropped_one", CANCELLED), ("caps_one", COMPLETED),
        ("both_one", COMPLETED),
    ]


@pytest.mark.parametrize(
    ("storage_id", "status", "cell"),
    [
        ("todo_one", IN_PROGRESS, "[~]"), ("todo_one", COMPLETED, "[x]"),
        ("wip_one", BLOCKED, "[!]"), ("wip_one", CANCELLED, "[-]"),
        ("done_one", PLANNING, "[ ]"), ("stuck_one", IN_PROGRESS, "`[~]`"),
        ("dropped_one", PLANNING, "**[ ]**"), ("caps_one", IN_PROGRESS, "[~]"),
        ("both_one", IN_PROGRESS, "[~] In Progress"),
        # Reverted has no mark: the word, so the row reads back as Reverted.
        ("done_one", REVERTED, "Reverted"),
    ],
)
def test_checkbox_status_cell_is_written_back_as_a_checkbox(storage_id, status, cell):
    data = CHECKBOX_TABLE.encode()
    new = edited_tracks_bytes(data, TRACKS, storage_id, status=status)
    (line,) = changed_lines(data, new)
    assert new.decode().splitlines()[line - 1].startswith(f"| {cell} | {storage_id} |")
    assert tracks(new).row(storage_id).status == status
    if status != REVERTED and storage_id != "both_one":
        assert len(new) == len(data)  # one character: the table keeps its width


# -- metadata.json -----------------------------------------------------------------------------


def write_json(tmp_path: Path, text: str, name: str = "metadata.json") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_example_metadata():
    meta = read_metadata(EXAMPLE / "storages" / "orders_db" / "metadata.json")
    assert meta.id == "orders_db"
    assert meta.status == PLANNING
    assert meta.updated == datetime(2026, 11, 10, 16, 30, tzinfo=UTC)
    assert meta.created == datetime(2026, 11, 2, 9, tzinfo=UTC)
    assert meta.get("backend") == "postgresql"
    assert meta.line_of("status") == 7


def test_update_example_metadata_is_minimal(tmp_path):
    original = (EXAMPLE / "storages" / "orders_db" / "metadata.json").read_text()
    path = write_json(tmp_path, original)
    meta = update_metadata(path, {"status": IN_PROGRESS, "updated": MOMENT})
    expected = original.replace('"status": "Planning"', '"status": "In Progress"').replace(
        '"updated": "2026-11-10T16:30:00Z"', '"updated": "2026-12-24T08:30:15Z"')
    assert path.read_text() == expected
    assert meta.status == IN_PROGRESS
    assert list(json.loads(path.read_text())) == list(json.loads(original))


def test_gemini_style_keys(tmp_path):
    original = (
        '{\n'
        '    "track_id": "orders_db_20261102",\n'
        '    "type": "feature",\n'
        '    "status": "in_progress",\n'
        '    "created_at": "2026-11-02T09:00:00Z",\n'
        '    "updated_at": "2026-11-10T16:30:00Z",\n'
        '    "description": "Orders database",\n'
        '    "custom": {"owner": "data-team", "tags": ["a", "b"]}\n'
        '}\n'
    )
    path = write_json(tmp_path, original)
    meta = read_metadata(path)
    assert meta.id == "orders_db_20261102"
    assert meta.key_for("id") == "track_id"
    assert meta.status == IN_PROGRESS
    assert meta.updated == datetime(2026, 11, 10, 16, 30, tzinfo=UTC)
    assert meta.created == datetime(2026, 11, 2, 9, tzinfo=UTC)
    assert meta.get("title") == "Orders database"
    update_metadata(path, {"status": COMPLETED, "updated": MOMENT})
    expected = original.replace('"status": "in_progress"', '"status": "completed"').replace(
        '"updated_at": "2026-11-10T16:30:00Z"', '"updated_at": "2026-12-24T08:30:15Z"')
    assert path.read_text() == expected
    assert "updated" not in json.loads(path.read_text())


@pytest.mark.parametrize("indent", ["  ", "    ", "\t"])
@pytest.mark.parametrize("final_newline", ["\n", ""])
def test_update_keeps_indent_order_unknown_keys_and_final_newline(tmp_path, indent, final_newline):
    body = [
        '"zeta": 1',
        '"id": "orders_db"',
        '"status": "Planning"',
        '"nested": {\n' + indent * 2 + '"x": [1, 2, 3]\n' + indent + "}",
        '"updated": "2026-11-10T16:30:00Z"',
        '"alpha": null',
    ]
    original = "{\n" + ",\n".join(indent + line for line in body) + "\n}" + final_newline
    path = write_json(tmp_path, original)
    update_metadata(path, {"status": IN_PROGRESS, "updated": MOMENT})
    expected = original.replace('"Planning"', '"In Progress"').replace(
        "2026-11-10T16:30:00Z", "2026-12-24T08:30:15Z")
    assert path.read_text() == expected


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        (
            '{\n  "id": "a",\n  "status": "Planning"\n}\n',
            '{\n  "id": "a",\n  "status": "In Progress",\n  "updated": "2026-12-24T08:30:15Z"\n}\n',
        ),
        (
            '{\n\t"id": "a",\n\t"status": "Planning",\n\t"created": "2026-01-01"\n}',
            '{\n\t"id": "a",\n\t"status": "In Progress",\n\t"created": "2026-01-01",\n\t"updated": "2026-12-24"\n}',
        ),
        (
            '{"id": "a", "status": "Planning"}',
            '{"id": "a", "status": "In Progress", "updated": "2026-12-24T08:30:15Z"}',
        ),
        (
            '{\r\n    "id": "a",\r\n    "status": "Planning"\r\n}\r\n',
            '{\r\n    "id": "a",\r\n    "status": "In Progress",\r\n    "updated": "2026-12-24T08:30:15Z"\r\n}\r\n',
        ),
    ],
    ids=["two-space", "tab-date-only", "one-line", "crlf"],
)
def test_missing_updated_key_is_added(tmp_path, original, expected):
    path = write_json(tmp_path, original)
    meta = update_metadata(path, {"status": IN_PROGRESS, "updated": MOMENT})
    assert path.read_bytes().decode("utf-8") == expected
    assert meta.updated is not None
    assert json.loads(expected)["updated"] == meta.get("updated")


def test_one_line_object_update_in_place(tmp_path):
    original = '{"id": "a", "status": "Planning", "updated": "2026-01-01T00:00:00Z", "x": 1}\n'
    path = write_json(tmp_path, original)
    update_metadata(path, {"status": IN_PROGRESS, "updated": MOMENT})
    assert path.read_text() == (
        '{"id": "a", "status": "In Progress", "updated": "2026-12-24T08:30:15Z", "x": 1}\n')


def test_update_with_bom_and_non_ascii_keeps_both(tmp_path):
    original = '{\n  "id": "a",\n  "title": "Données clients",\n  "status": "Planning"\n}\n'
    path = tmp_path / "metadata.json"
    path.write_bytes(b"\xef\xbb\xbf" + original.encode())
    update_metadata(path, {"status": IN_PROGRESS})
    expected = original.replace("Planning", "In Progress")
    assert path.read_bytes() == b"\xef\xbb\xbf" + expected.encode()


def test_update_without_changes_keeps_the_file(tmp_path):
    original = '{\n  "id": "a",\n  "status": "In Progress"\n}\n'
    path = write_json(tmp_path, original)
    update_metadata(path, {"status": IN_PROGRESS})
    assert path.read_text() == original


def test_edited_text_does_not_touch_equal_values():
    meta = parse_metadata('{"status": "Planning", "updated": "2026-12-24T08:30:15Z"}', Path("m"))
    assert edited_text(meta, {"updated": MOMENT}) == meta.text


def test_invalid_json_reports_the_line(tmp_path):
    path = write_json(tmp_path, '{\n  "id": "a",\n  "status": "Planning",\n}\n')
    with pytest.raises(WorkspaceFormatError) as info:
        read_metadata(path)
    assert info.value.line == 4
    assert info.value.path == path
    assert "invalid JSON" in info.value.message
    with pytest.raises(WorkspaceFormatError):
        update_metadata(path, {"status": IN_PROGRESS})
    assert path.read_text() == '{\n  "id": "a",\n  "status": "Planning",\n}\n'


def test_top_level_must_be_an_object(tmp_path):
    with pytest.raises(WorkspaceFormatError, match="JSON object"):
        read_metadata(write_json(tmp_path, '["a"]\n'))


def test_invalid_utf8_metadata_reports_the_line(tmp_path):
    path = tmp_path / "metadata.json"
    path.write_bytes(b'{\n  "id": "a",\n  "title": "caf\xe9"\n}\n')
    with pytest.raises(WorkspaceFormatError) as info:
        read_metadata(path)
    assert info.value.line == 3


# -- workflow.md --------------------------------------------------------------------------------


def test_example_workflow():
    prefs = parse_workflow((EXAMPLE / "workflow.md").read_text())
    assert prefs.testing == SCHEMA_FIRST
    assert prefs.migrations == VERSIONED
    assert prefs.commits == PER_TASK
    assert prefs.conventional_commits is True
    assert prefs.source_lines == {"testing": 8, "migrations": 9, "commits": 10, "conventional_commits": 11}


def test_workflow_key_lines():
    prefs = parse_workflow(
        "# Workflow\n"
        "- **Testing approach:** TDD\n"
        "- **Migration strategy:** automatic (create_all)\n"
        "* __Commit strategy__: after each phase\n"
        "- **Commit messages:** free-form\n"
    )
    assert isinstance(prefs, WorkflowPreferences)
    assert prefs.tdd
    assert prefs.testing == TDD
    assert prefs.migrations == AUTOMATIC
    assert prefs.commits == PER_PHASE
    assert prefs.conventional_commits is False
    assert prefs.source_lines == {"testing": 2, "migrations": 3, "commits": 4, "conventional_commits": 5}
    assert prefs.to_json()["testing"] == TDD


def test_workflow_key_lines_without_list_or_bold():
    prefs = parse_workflow("Testing: test-driven\nCommits: none\nMigrations: Alembic revisions\n")
    assert (prefs.testing, prefs.commits, prefs.migrations) == (TDD, NO_COMMITS, VERSIONED)


def test_workflow_prose_only_fallback():
    prefs = parse_workflow(
        "# Workflow\n\nWe practise test-driven development (TDD) throughout.\n"
        "Commit the changes after each task, using Conventional Commits.\n"
    )
    assert prefs.testing == TDD
    assert prefs.commits == PER_TASK
    assert prefs.conventional_commits is True
    assert prefs.source_lines == {}
    prefs = parse_workflow("# Workflow\n\nWe design the schema first. Commit after every phase.\n")
    assert prefs.testing == SCHEMA_FIRST
    assert prefs.commits == PER_PHASE


@pytest.mark.parametrize("text", [None, "", "# Workflow\n\nNothing specific.\n"])
def test_workflow_defaults(text):
    prefs = parse_workflow(text)
    assert prefs == WorkflowPreferences()
    assert (prefs.testing, prefs.migrations, prefs.commits, prefs.conventional_commits) == (
        SCHEMA_FIRST, VERSIONED, NO_COMMITS, True)
    assert not prefs.tdd
