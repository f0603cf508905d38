"""Browser tests of the Conductor side panel (labextension/) over the server extension.

A real JupyterLab (with the built lab extension and ``conductor_magics.server``) and
Debian's Chromium driven by Python Playwright, as in test_browser.py. The lab loads the
bundle from ``conductor_magics/labextension`` (built here with ``jlpm`` when missing or
older than its sources) through a ``labextensions/`` folder in the test's Jupyter data
dir, and the server extension through a config file in the test's config dir, so the
tests do not depend on how the package is installed.

``test_panel_ticks_and_follows_the_cli``: open the panel by its tab, a tick is one
byte of plan.md, a tick from the CLI appears within 5 s, a refused tick reverts, a lint
finding made on disk appears within 5 s as a file:line link that opens the file there.
``test_panel_opens_plan_md_and_reloads_it``: a task click opens plan.md at its line;
the editor reloads a change on disk, and warns instead when it has unsaved edits.
``test_panel_gate_and_task_cell``: the Verify dialog records the verdict, the next
phase unlocks in the panel and in the notebook's checklist; a task cell is inserted
from the panel's context menu.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from helpers.browser_lab import Lab, kernel_idle, start_lab, wait_for_kernel

REPO = Path(__file__).resolve().parent.parent
SOURCES = REPO / "labextension"
BUNDLE = REPO / "conductor_magics" / "labextension"
EXAMPLE = REPO / "example_notebooks" / "storage-conductor"
PANEL = "#conductor-panel"
CLI_DEADLINE = 5.0  # seconds for a change made elsewhere to show in the panel

# the browser tests share one worker: two Chromiums and two JupyterLabs at once overload 2 cores
pytestmark = pytest.mark.xdist_group("browser")


# --------------------------------------------------------------------------- the bundle


def _newest_source() -> float:
    files = [SOURCES / "package.json", *SOURCES.glob("src/*"), *SOURCES.glob("style/*"),
             *SOURCES.glob("schema/*")]
    return max(f.stat().st_mtime for f in files if f.is_file())


def build_labextension() -> Path:
    """The built lab extension; built with ``jlpm`` when missing or older than its sources.

    Fails (never skips) when Node.js is missing, naming what to install.
    """
    built = BUNDLE / "package.json"
    if built.is_file() and built.stat().st_mtime >= _newest_source():
        return BUNDLE
    if shutil.which("node") is None:
        where = " (CI=true: the CI image must provide it)" if os.environ.get("CI") else ""
        pytest.fail(f"{BUNDLE} is missing and Node.js is not installed to build it{where}: "
                    "apt-get install -y nodejs npm, then run `jlpm install && jlpm build:prod` "
                    "in labextension/", pytrace=False)
    bin_dir = Path(sys.executable).parent
    jlpm = shutil.which("jlpm", path=str(bin_dir)) or shutil.which("jlpm")
    if jlpm is None:
        pytest.fail(f"jlpm (from jupyterlab) is not in {bin_dir} or on PATH: "
                    "pip install jupyterlab", pytrace=False)
    # build:labextension runs the Python `jupyter-builder` from this venv.
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    for step in (["install"], ["build:prod"]):
        done = subprocess.run([jlpm, *step], cwd=SOURCES, env=env, capture_output=True,
                              text=True, timeout=900, check=False)
        if done.returncode != 0:
            pytest.fail(f"`jlpm {' '.join(step)}` in {SOURCES} failed ({done.returncode}):\n"
                        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}", pytrace=False)
    assert built.is_file(), f"the build did not write {built}"
    return BUNDLE


def prepare_home(home: Path) -> None:
    """The test's Jupyter folders: the built bundle as a lab extension and the server
    extension enabled (settings are changed through the settings API, as a user would)."""
    bundle = build_labextension()
    extensions = home / "data" / "labextensions"
    extensions.mkdir(parents=True, exist_ok=True)
    (extensions / "conductor-magics").symlink_to(bundle, target_is_directory=True)
    config = home / "config" / "jupyter_server_config.d"
    config.mkdir(parents=True, exist_ok=True)
    (config / "conductor_magics.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {"conductor_magics.server": True}}}))


@pytest.fixture
def panel_lab(tmp_path: Path):
    """JupyterLab with the panel and the server extension over a copy of the example."""
    root = tmp_path / "lab-project"
    root.mkdir()
    shutil.copytree(EXAMPLE, root / "storage-conductor")
    home = tmp_path / "lab-home"
    prepare_home(home)
    server = start_lab(root, home)
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- helpers


def component_dir(lab: Lab, storage_id: str = "orders_db") -> Path:
    return lab.root_dir / "storage-conductor" / "storages" / storage_id


def cli(lab: Lab, *argv: str) -> dict:
    """``conductor --root ROOT --json ARGV`` in a subprocess; its JSON answer."""
    done = subprocess.run([sys.executable, "-m", "conductor_magics.cli", "--root", str(lab.root_dir),
                           "--json", *argv], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"conductor {' '.join(argv)} failed: {done.stdout}{done.stderr}"
    return json.loads(done.stdout)


def open_panel(page, lab: Lab, load: bool = True):
    """Open the Conductor panel by clicking its tab in the left bar (after loading
    JupyterLab when ``load``)."""
    from playwright.sync_api import expect

    if load:
        page.goto(lab.url("lab"))
    tab = page.locator('.jp-SideBar .lm-TabBar-tab[data-id="conductor-panel"]')
    expect(tab).to_be_visible(timeout=60_000)
    if "lm-mod-current" not in (tab.get_attribute("class") or ""):
        tab.click()
    panel = page.locator(PANEL)
    expect(panel).to_be_visible()
    expect(panel.locator('.jp-conductor-component[data-component="orders_db"]')).to_be_visible(
        timeout=30_000)
    return panel


def box(panel, ref: str):
    return panel.locator(f'.jp-conductor-plan input[data-task-ref="{ref}"]')


def wait_for_change(path: Path, before: bytes, timeout: float = 20.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = path.read_bytes()
        if data != before:
            time.sleep(0.2)  # an atomic rename: re-read once it settled
            return path.read_bytes()
        time.sleep(0.05)
    return before


def one_byte(before: bytes, after: bytes, old: bytes, new: bytes) -> str:
    """The one line whose one byte changed from ``old`` to ``new``."""
    assert len(after) == len(before), f"plan.md changed length: {len(before)} -> {len(after)}"
    differing = [i for i in range(len(before)) if before[i] != after[i]]
    assert len(differing) == 1, f"plan.md differs in {len(differing)} bytes: {differing[:10]}"
    index = differing[0]
    assert (before[index:index + 1], after[index:index + 1]) == (old, new)
    return after[after.rfind(b"\n", 0, index) + 1:after.find(b"\n", index)].decode()


def notifications(page) -> str:
    return " | ".join(page.locator(".Toastify__toast").all_inner_texts())


def screenshot(page, tmp_path: Path, name: str) -> None:
    from playwright.sync_api import Error

    try:
        page.screenshot(path=str(tmp_path / name), full_page=True)
        print(f"screenshot: {tmp_path / name}")
    except Error as error:
        print(f"no screenshot {name}: {error}")


# --------------------------------------------------------------------------- the tests


def test_panel_ticks_and_follows_the_cli(panel_lab: Lab, browser_page, tmp_path: Path) -> None:
    """Open by its tab; a tick is one byte; a CLI tick shows within 5 s; a refused tick
    reverts; a lint finding shows within 5 s as a file:line link to the file at that line."""
    from playwright.sync_api import expect

    page, lab = browser_page, panel_lab
    plan_path = component_dir(lab) / "plan.md"
    polls: list[tuple[float, int]] = []  # (when, HTTP status) of every status poll
    page.on("response", lambda r: polls.append((time.monotonic(), r.status))
            if "/conductor/api/status" in r.url else None)
    try:
        started = time.monotonic()
        panel = open_panel(page, lab)
        print(f"panel open: {time.monotonic() - started:.1f} s")
        orders = panel.locator('.jp-conductor-component[data-component="orders_db"]')
        expect(orders).to_contain_text("Phase 1: Schema Design")
        expect(orders).to_contain_text("0/38")
        expect(panel.locator('.jp-conductor-component[data-component="customer_events"]')).to_be_visible()
        expect(page.locator("#conductor-status")).to_have_text("orders_db · Phase 1 · 0/38")

        # Phase 3 is locked (schema-first): disabled boxes and the reason.
        phase3 = panel.locator('.jp-conductor-phase[data-phase="3"]')
        expect(phase3).to_have_class(re.compile(r"\bjp-mod-locked\b"))
        expect(phase3.locator(".jp-conductor-lock-reason")).to_contain_text("Phase 1")
        expect(box(panel, "3.1.1")).to_be_disabled()
        # The current task is highlighted.
        expect(panel.locator('.jp-conductor-task.jp-mod-current[data-task="1.1"]')).to_have_count(1)

        # A tick in the panel: exactly one byte of plan.md, " " -> "x".
        before = plan_path.read_bytes()
        box(panel, "1.1.1").click()
        after = wait_for_change(plan_path, before)
        line = one_byte(before, after, b" ", b"x")
        assert line.startswith("  - [x] Name every primary key"), line
        expect(box(panel, "1.1.1")).to_be_checked()
        expect(page.locator("#conductor-status")).to_have_text("orders_db · Phase 1 · 0/38")

        # A tick from the CLI shows in the panel within 5 s.
        expect(box(panel, "1.1.2")).not_to_be_checked()
        cli(lab, "task", "done", "orders_db", "1.1.2")
        ticked = time.monotonic()
        expect(box(panel, "1.1.2")).to_be_checked(timeout=CLI_DEADLINE * 1000)
        print(f"CLI tick shown after {time.monotonic() - ticked:.2f} s")
        cli(lab, "task", "done", "orders_db", "1.1")
        expect(page.locator("#conductor-status")).to_have_text("orders_db · Phase 1 · 1/38",
                                                               timeout=CLI_DEADLINE * 1000)

        # A refused tick: the panel still shows [ ] while the CLI ticked the task (the
        # poll is held back), so the server refuses (409); the box reverts, and says why.
        page.route("**/conductor/api/status*", lambda route: route.abort())
        expect(box(panel, "1.2.1")).not_to_be_checked()
        cli(lab, "task", "done", "orders_db", "1.2.1")
        before = plan_path.read_bytes()
        box(panel, "1.2.1").click()
        expect(page.locator(".Toastify__toast").filter(has_text="1.2.1")).to_be_visible(timeout=10_000)
        text = notifications(page)
        assert "was not marked done" in text, text
        assert plan_path.read_bytes() == before, "a refused tick changed plan.md"
        page.unroute("**/conductor/api/status*")
        expect(box(panel, "1.2.1")).to_be_checked(timeout=CLI_DEADLINE * 1000)  # the truth

        # A lint finding made on disk (a task outside any phase) shows within 5 s as
        # plan.md:LINE, a link that opens plan.md at that line.
        expect(panel.locator(".jp-conductor-lint")).to_have_count(0)  # the example is clean
        lines = plan_path.read_text(encoding="utf-8").splitlines(keepends=True)
        heading = next(i for i, text in enumerate(lines) if text.startswith("## Phase 1"))
        lines.insert(heading, "- [ ] Task: a stray task before any phase\n")
        plan_path.write_text("".join(lines), encoding="utf-8")
        written = time.monotonic()
        finding = panel.locator('.jp-conductor-lint .jp-conductor-problem[data-code="task-outside-phase"]')
        location = f"storage-conductor/storages/orders_db/plan.md:{heading + 1}"
        expect(finding.locator(".jp-conductor-problem-location")).to_have_text(
            location, timeout=CLI_DEADLINE * 1000)
        print(f"lint finding shown after {time.monotonic() - written:.2f} s")
        expect(finding).to_contain_text("a stray task before any phase")
        finding.locator(".jp-conductor-problem-location").click()
        expect(page.locator('.lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel',
                            has_text="plan.md")).to_have_count(1, timeout=30_000)
        expect(page.locator(".jp-StatusBar-Widget", has_text=re.compile(rf"Ln {heading + 1}, Col 1"))
               ).to_have_count(1, timeout=10_000)
        # Closed again: an open plan.md editor keeps the poll going (the hidden-panel check).
        page.locator('#jp-main-dock-panel .lm-TabBar-tab', has_text="plan.md").locator(
            ".lm-TabBar-tabCloseIcon").click()
        expect(page.locator(".jp-FileEditor")).to_have_count(0)
        # Fixed on disk: the finding goes away.
        plan_path.write_text("".join(lines[:heading] + lines[heading + 1:]), encoding="utf-8")
        expect(panel.locator(".jp-conductor-lint")).to_have_count(0, timeout=CLI_DEADLINE * 1000)

        # The four commands are in the palette.
        page.keyboard.press("Control+Shift+C")
        palette = page.locator(".lm-CommandPalette")
        expect(palette).to_be_visible()
        page.keyboard.type("Conductor")
        for command in ("open-panel", "refresh", "insert-task-cell", "open-plan"):
            expect(palette.locator(f'.lm-CommandPalette-item[data-command="conductor:{command}"]')
                   ).to_have_count(1)
        page.keyboard.press("Escape")

        # Settings → status bar off: the item is gone after a reload.
        settings = json.dumps({"showStatusBar": False})
        request = urllib.request.Request(
            lab.url("lab/api/settings/conductor-magics:statusbar"), method="PUT",
            data=json.dumps({"raw": settings}).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status in (200, 204)
        page.reload()
        expect(page.locator(f"{PANEL} .jp-conductor-component")).to_have_count(2, timeout=60_000)
        expect(page.locator("#conductor-status")).to_have_count(1)  # registered, not shown
        expect(page.locator("#conductor-status")).to_be_hidden()
        assert any(status == 304 for _, status in polls), f"no 304 among the polls: {polls}"

        # Hidden panel, no status bar: the poll stops; shown again, it polls at once.
        tab = page.locator('.jp-SideBar .lm-TabBar-tab[data-id="conductor-panel"]')
        tab.click()
        expect(page.locator(PANEL)).to_be_hidden()
        # wait_for_timeout, not sleep: Playwright stamps responses as it processes them.
        page.wait_for_timeout(1000)  # a poll already under way may still answer
        hidden_at = time.monotonic()
        page.wait_for_timeout(5000)
        assert not [t for t, _ in polls if t > hidden_at], "the panel polled while hidden"
        tab.click()
        expect(page.locator(PANEL)).to_be_visible()
        shown_at = time.monotonic()
        deadline = shown_at + CLI_DEADLINE
        while time.monotonic() < deadline and not [t for t, _ in polls if t > shown_at]:
            page.wait_for_timeout(100)
        assert [t for t, _ in polls if t > shown_at], "no poll after the panel was shown again"
    finally:
        screenshot(page, tmp_path, "panel-ticks.png")


def test_panel_opens_plan_md_and_reloads_it(panel_lab: Lab, browser_page, tmp_path: Path) -> None:
    """A task click opens plan.md at its line; the editor follows the file unless it has edits."""
    from playwright.sync_api import expect

    page, lab = browser_page, panel_lab
    plan_path = component_dir(lab) / "plan.md"
    try:
        panel = open_panel(page, lab)
        task = panel.locator('.jp-conductor-task[data-task="2.2"] > .jp-conductor-task-row '
                             '.jp-conductor-task-name')
        task.click()
        editor = page.locator('.jp-FileEditor').first
        expect(editor).to_be_visible(timeout=30_000)
        expect(page.locator('.lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel',
                            has_text="plan.md")).to_have_count(1)
        # The cursor is on the task's line (the status bar's "Ln 66, Col 1").
        plan = cli(lab, "plan", "orders_db")
        line = next(t["line"] for p in plan["plan"]["phases"] for t in p["tasks"] if t["number"] == "2.2")
        expect(page.locator(".jp-StatusBar-Widget", has_text=re.compile(rf"Ln {line}, Col 1"))
               ).to_have_count(1, timeout=10_000)

        # Changed on disk (the CLI), no unsaved edits: the editor reloads.
        content = editor.locator(".cm-content")
        expect(content).to_contain_text("- [ ] Task: Create the initial Alembic revision")
        cli(lab, "task", "done", "orders_db", "2.2.1")
        expect(content).to_contain_text("- [x] Compare the autogenerated revision",
                                        timeout=CLI_DEADLINE * 1000)

        # Unsaved edits: a change on disk gives a warning and the editor keeps the edits.
        editor.locator(".cm-line", has_text="Create the initial Alembic revision").click()
        page.keyboard.press("End")
        page.keyboard.type(" my unsaved line")
        expect(content).to_contain_text("my unsaved line")
        cli(lab, "task", "done", "orders_db", "2.1.1")
        warning = page.locator(".Toastify__toast", has_text="unsaved edits")
        expect(warning).to_be_visible(timeout=CLI_DEADLINE * 1000 + 2000)
        expect(content).to_contain_text("my unsaved line")
        expect(content).to_contain_text("- [ ] Read the database URL")
        assert "my unsaved line" not in plan_path.read_text()
    finally:
        screenshot(page, tmp_path, "panel-editor.png")


NOTEBOOK = "implement.ipynb"


def write_notebook(root: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("%load_ext conductor_magics"),
                      nbformat.v4.new_code_cell("%conductor implement orders_db")]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, root / NOTEBOOK)


def run_all_and_wait(page, lab: Lab, cells: int, timeout: float = 120.0) -> None:
    """Run every cell through the Run menu and wait for numbered prompts and an idle kernel."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
    prompts_js = """() => Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell'))
        .map(c => (c.querySelector('.jp-InputArea-prompt')?.textContent || '').trim())"""
    deadline = time.monotonic() + timeout
    prompts: list[str] = []
    while time.monotonic() < deadline:
        prompts = page.evaluate(prompts_js)
        if (len(prompts) >= cells and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts[:cells])
                and kernel_idle(lab)):
            return
        time.sleep(0.3)
    raise AssertionError(f"the notebook did not run: prompts {prompts}\n{lab.log()[-3000:]}")


def test_panel_gate_and_task_cell(panel_lab: Lab, browser_page, tmp_path: Path) -> None:
    """Verify a finished phase through the dialog: the verdict is recorded and phase 3 unlocks
    in the panel and in the notebook's checklist; insert a task cell from the panel."""
    from playwright.sync_api import expect

    page, lab = browser_page, panel_lab
    component = component_dir(lab)
    verification = component / "verification.json"
    write_notebook(lab.root_dir)
    try:
        page.goto(lab.notebook_url(NOTEBOOK))
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(state="visible", timeout=60_000)
        wait_for_kernel(lab)
        page.locator(".jp-NotebookPanel .jp-Notebook").first.click(position={"x": 5, "y": 5})
        run_all_and_wait(page, lab, cells=2)
        checklist = page.locator(".conductor-checklist").last
        expect(checklist).to_be_visible(timeout=30_000)
        expect(checklist.locator(".conductor-phase-3")).to_have_class(
            re.compile(r"\bconductor-locked\b"))

        panel = open_panel(page, lab, load=False)
        # Phase 1 finished from the CLI, all but its last task, then that one in the panel.
        for ref in ["1.1.1", "1.1.2", "1.1", "1.2.1", "1.2.2", "1.2", "1.3.1", "1.3", "1.4"]:
            cli(lab, "task", "done", "orders_db", ref)
        expect(box(panel, "1.4")).to_be_checked(timeout=CLI_DEADLINE * 1000)
        box(panel, "1.5").click()
        phase1 = panel.locator('.jp-conductor-phase[data-phase="1"]')
        verify = phase1.locator(".jp-conductor-verify")
        expect(verify).to_be_visible(timeout=10_000)
        verify.click()

        dialog = page.locator(".jp-Dialog.jp-conductor-gate-dialog")
        expect(dialog).to_be_visible()
        confirm = dialog.locator(".jp-Dialog-button.jp-mod-accept")
        failed = dialog.locator('.jp-conductor-check[data-check="declared schema exists"]')
        expect(failed).to_be_visible(timeout=60_000)  # the checks ran
        expect(failed.locator(".jp-conductor-check-status")).to_have_text("fail")
        expect(failed.locator(".jp-conductor-check-seconds")).to_have_text(re.compile(r"^\d+\.\d\d s$"))
        note = f"browser test: schema reviewed in the panel {time.time_ns()}"
        dialog.locator(".jp-conductor-gate-note textarea").fill(note)
        # A failed check not waived keeps Confirm disabled; a waiver needs its reason.
        expect(confirm).to_be_disabled()
        failed.locator(".jp-conductor-waive").check()
        expect(confirm).to_be_disabled()
        reason = "schema.sql comes with phase 2 in this example"
        failed.locator(".jp-conductor-waive-reason").fill(reason)
        expect(confirm).to_be_enabled()
        screenshot(page, tmp_path, "gate-dialog.png")
        confirm.click()

        deadline, verdicts = time.monotonic() + 60, []
        while time.monotonic() < deadline and not verdicts:
            if verification.is_file():
                verdicts = [r for r in json.loads(verification.read_text())
                            if r.get("phase") == 1 and r.get("note") == note]
            time.sleep(0.2)
        assert len(verdicts) == 1, f"no phase-1 verdict with the note; {notifications(page)}"
        assert verdicts[0]["verdict"] == "verified"
        assert verdicts[0]["waivers"] == {"declared schema exists": reason}

        phase3 = panel.locator('.jp-conductor-phase[data-phase="3"]')
        expect(phase3).not_to_have_class(re.compile(r"\bjp-mod-locked\b"), timeout=CLI_DEADLINE * 1000)
        expect(box(panel, "3.1.1")).to_be_enabled()
        expect(phase1).to_have_class(re.compile(r"\bjp-mod-verified\b"))
        expect(checklist.locator(".conductor-phase-3")).not_to_have_class(
            re.compile(r"\bconductor-locked\b"), timeout=15_000)

        # Insert a task cell for 3.2 from the panel's context menu.
        cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
        count = cells.count()
        panel.locator('.jp-conductor-task[data-task="3.2"] > .jp-conductor-task-row').click(
            button="right")
        page.locator('.lm-Menu-item[data-command="conductor:insert-task-cell"]').click()
        expect(cells).to_have_count(count + 1)
        sources = page.evaluate("""() => Array.from(document.querySelectorAll(
            '.jp-NotebookPanel .jp-Notebook .jp-Cell .cm-content')).map(n => n.innerText)""")
        inserted = [s for s in sources if s.startswith("%%conductor task orders_db 3.2")]
        assert len(inserted) == 1, sources
    finally:
        screenshot(page, tmp_path, "panel-gate.png")
