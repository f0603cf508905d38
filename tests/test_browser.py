"""Browser tests: the example notebook in a real JupyterLab, driven by a real Chromium.

``test_notebook_runs_in_lab`` checks only the infrastructure (server, browser, kernel,
Run All, no error output), so a failure there is told apart from a widget failure in
``test_plan_checklist_and_gate_in_lab``: tick a task in the rendered plan checklist (one
byte of plan.md), see the next phase locked, confirm the phase-3 gate in its widget.
Both fail, never skip, when Chromium or JupyterLab is missing (run ``bash .ci/bootstrap.sh``).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
from helpers.browser_lab import Lab, kernel_idle, wait_for_kernel

# Under pytest-xdist both tests run on the same worker: one JupyterLab + Chromium at a time.
pytestmark = pytest.mark.xdist_group("browser")

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "example_notebooks"
NOTEBOOK = "getting_started.ipynb"
STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
RUN_ALL_TIMEOUT = 180.0

# Prompt text of every code cell, e.g. ["[1]:", "[*]:", "[ ]:"].
PROMPTS_JS = """() => Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell'))
    .map(cell => (cell.querySelector('.jp-InputArea-prompt')?.textContent || '').trim())"""


def copy_example(root: Path) -> Path:
    """The example workspace and the getting-started notebook in the lab's project folder."""
    shutil.copytree(EXAMPLES / "storage-conductor", root / "storage-conductor")
    shutil.copy2(EXAMPLES / NOTEBOOK, root / NOTEBOOK)
    return root / "storage-conductor" / "storages" / "orders_db"


def open_notebook(page, lab: Lab, relative: str) -> None:
    """Open a notebook and wait until its kernel is connected and idle."""
    page.goto(lab.notebook_url(relative))
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(state="visible", timeout=60_000)
    wait_for_kernel(lab)
    # The notebook panel must be the current widget for the Run menu to act on it.
    page.locator(".jp-NotebookPanel .jp-Notebook").first.click(position={"x": 5, "y": 5})


def run_all(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()


def wait_until_executed(page, lab: Lab, count: int | None = None,
                        timeout: float = RUN_ALL_TIMEOUT) -> list[str]:
    """Wait until every code cell has a numbered prompt and the kernel is idle.

    ``[*]`` marks a queued or running cell; an error aborts the rest of the queue and
    leaves ``[ ]`` prompts behind, reported here with the error outputs.
    """
    deadline = time.monotonic() + timeout
    prompts: list[str] = []
    while time.monotonic() < deadline:
        prompts = page.evaluate(PROMPTS_JS)
        running = any("*" in p for p in prompts)
        if prompts and not running and kernel_idle(lab):
            # Settle: the kernel may be idle for a moment between two queued cells.
            time.sleep(0.5)
            again = page.evaluate(PROMPTS_JS)
            if again == prompts and kernel_idle(lab):
                unrun = [i for i, p in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", p)]
                assert not unrun, (
                    f"code cells {unrun} did not run (prompts {prompts}); "
                    f"error outputs:\n{error_outputs(page)}")
                if count is not None:
                    numbers = [int(p[1:-2]) for p in prompts]
                    assert max(numbers) >= count, f"only {max(numbers)} executions, expected {count}"
                return prompts
        time.sleep(0.5)
    raise AssertionError(f"cells still running after {timeout:.0f} s: {prompts}\n"
                         f"error outputs:\n{error_outputs(page)}\nserver log:\n{lab.log()[-3000:]}")


def error_outputs(page) -> str:
    texts = page.locator(STDERR).all_inner_texts()
    return "\n---\n".join(t for t in texts if is_error(t))


def is_error(text: str) -> bool:
    return "Traceback" in text or bool(re.search(r"^\w*(Error|Exception)\b", text, re.M))


def screenshot(page, tmp_path: Path, name: str) -> Path | None:
    """A PNG of the page in the test's tmp folder, kept for debugging (never masks a failure)."""
    from playwright.sync_api import Error

    path = tmp_path / name
    try:
        page.screenshot(path=str(path), full_page=True)
    except Error as error:
        print(f"no screenshot {name}: {error}")
        return None
    print(f"screenshot: {path}")
    return path


def test_notebook_runs_in_lab(lab: Lab, browser_page, tmp_path: Path) -> None:
    """Infrastructure only: lab starts, the notebook opens, Run All runs every cell cleanly."""
    page = browser_page
    copy_example(lab.root_dir)
    started = time.monotonic()
    open_notebook(page, lab, NOTEBOOK)
    run_all(page)
    try:
        prompts = wait_until_executed(page, lab)
    finally:
        screenshot(page, tmp_path, "smoke.png")
    assert len(prompts) >= 20
    errors = error_outputs(page)
    assert not errors, f"error outputs after Run All:\n{errors}"
    print(f"Run All: {len(prompts)} code cells in {time.monotonic() - started:.1f} s")


# --------------------------------------------------------------------------- the widgets


def css_number(number: str) -> str:
    return number.replace(".", "-")


def phase_task_numbers(plan: bytes, phase: int) -> list[str]:
    """Task numbers of one phase as plan.md numbers them (3.1, 3.1.1, 3.2, …)."""
    numbers, in_phase, top, sub = [], False, 0, 0
    for line in plan.decode("utf-8").splitlines():
        heading = re.match(r"## Phase (\d+)\b", line)
        if heading:
            in_phase = int(heading.group(1)) == phase
            continue
        item = re.match(r"( *)- \[.\] ", line)
        if in_phase and item:
            if item.group(1):
                sub += 1
                numbers.append(f"{phase}.{top}.{sub}")
            else:
                top, sub = top + 1, 0
                numbers.append(f"{phase}.{top}")
    return numbers


def wait_for_change(path: Path, before: bytes, timeout: float = 20.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = path.read_bytes()
        if data != before:
            time.sleep(0.2)  # let an atomic rename settle, then re-read once
            return path.read_bytes()
        time.sleep(0.1)
    return before


def assert_one_byte_tick(before: bytes, after: bytes, number: str, message: str) -> None:
    assert after != before, f"ticking {number} in the widget did not change plan.md; widget says: {message!r}"
    assert len(after) == len(before), (
        f"ticking {number} changed plan.md's length ({len(before)} -> {len(after)} bytes)")
    differing = [i for i in range(len(before)) if before[i] != after[i]]
    assert len(differing) == 1, f"ticking {number} changed {len(differing)} bytes at {differing[:10]}"
    index = differing[0]
    assert (before[index:index + 1], after[index:index + 1]) == (b" ", b"x"), (
        f"ticking {number} changed byte {index} from {before[index:index + 1]!r} to {after[index:index + 1]!r}")
    line = after[after.rfind(b"\n", 0, index) + 1:after.find(b"\n", index)].decode()
    assert re.match(r" *- \[x\] ", line), f"the changed byte is not a task box: {line!r}"


def tick_in_widget(checklist, plan_path: Path, number: str) -> None:
    """Click a task's checkbox in the rendered checklist; plan.md must change by one byte."""
    from playwright.sync_api import expect

    box = checklist.locator(f".conductor-task-{css_number(number)} input[type='checkbox']")
    expect(box).to_have_count(1)
    expect(box).not_to_be_checked()
    before = plan_path.read_bytes()
    box.click()
    after = wait_for_change(plan_path, before)
    message = " | ".join(checklist.locator(".conductor-message").all_inner_texts())
    assert_one_byte_tick(before, after, number, message)
    expect(box).to_be_checked(timeout=10_000)


def add_cell_and_run(page, lab: Lab, source: str):
    """Append a code cell after the last one, type ``source`` and run it (Ctrl+Enter, which
    does not add another empty cell below)."""
    from playwright.sync_api import expect

    cells = page.locator(".jp-Notebook .jp-Cell")
    before = cells.count()
    executions = max(int(p[1:-2]) for p in page.evaluate(PROMPTS_JS) if re.fullmatch(r"\[\d+\]:", p))
    cells.last.locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    expect(cells).to_have_count(before + 1)
    new_cell = cells.nth(before)
    expect(new_cell).to_have_class(re.compile(r"\bjp-mod-selected\b"))
    page.keyboard.press("Enter")
    page.keyboard.type(source)
    expect(new_cell.locator(".cm-content")).to_have_text(source)
    page.keyboard.press("Control+Enter")
    expect(new_cell.locator(".jp-InputArea-prompt")).to_have_text(f"[{executions + 1}]:", timeout=60_000)
    wait_until_executed(page, lab, count=executions + 1)
    return new_cell


def test_plan_checklist_and_gate_in_lab(lab: Lab, browser_page, tmp_path: Path) -> None:
    """Tick tasks in the rendered plan checklist, see phase 4 locked, confirm phase 3's gate."""
    from playwright.sync_api import expect

    page = browser_page
    component = copy_example(lab.root_dir)
    plan_path = component / "plan.md"
    verification_path = component / "verification.json"
    try:
        open_notebook(page, lab, NOTEBOOK)
        run_all(page)
        wait_until_executed(page, lab)

        # The checklist of the `%conductor plan` cell near the end: phases 1-2 verified, 3 open.
        checklist = page.locator(".conductor-checklist").last
        expect(checklist).to_be_visible(timeout=30_000)
        expect(checklist.locator(".conductor-phase-3")).to_have_count(1)
        expect(checklist.locator(".conductor-phase-3")).not_to_have_class(
            re.compile(r"\bconductor-locked\b"))

        tick_in_widget(checklist, plan_path, "3.1.1")

        # Every other phase-3 task, sub-tasks before their parent; one byte per click.
        numbers = phase_task_numbers(plan_path.read_bytes(), 3)
        assert "3.1.1" in numbers and len(numbers) >= 5, numbers
        shown = checklist.locator(".conductor-phase-3 .conductor-task")
        expect(shown).to_have_count(len(numbers))
        rest = sorted((n for n in numbers if n != "3.1.1"),
                      key=lambda n: (int(n.split(".")[1]), -n.count(".")))
        for number in rest:
            tick_in_widget(checklist, plan_path, number)
        assert all(line.startswith(("- [x]", "  - [x]"))
                   for line in plan_path.read_text().split("## Phase 3", 1)[1]
                   .split("## Phase 4", 1)[0].splitlines() if line.lstrip().startswith("- ["))

        # Phase 3 is finished but not verified, so phase 4 is locked and says why.
        phase4 = checklist.locator(".conductor-phase-4")
        expect(phase4).to_have_class(re.compile(r"\bconductor-locked\b"), timeout=15_000)
        expect(phase4.locator(".conductor-lock-reason")).to_contain_text(
            re.compile(r"phase 3\b", re.I))
        phase4.scroll_into_view_if_needed()
        screenshot(page, tmp_path, "phase4-locked.png")

        # The gate for phase 3 in a new cell: a note, Confirm, and the verdict is written.
        cell = add_cell_and_run(page, lab, "%conductor verify --phase 3")
        gate = cell.locator(".conductor-gate")
        expect(gate).to_be_visible(timeout=30_000)
        note = f"browser test: CRUD reviewed in JupyterLab {time.time_ns()}"
        textarea = gate.locator(".conductor-note textarea")
        textarea.click()
        textarea.fill(note)
        expect(textarea).to_have_value(note)
        plan_before = plan_path.read_bytes()
        gate.locator(".conductor-confirm").click()

        deadline = time.monotonic() + 30
        verdicts: list[dict] = []
        while time.monotonic() < deadline and not verdicts:
            if verification_path.is_file():
                try:
                    records = json.loads(verification_path.read_text())
                except ValueError:  # written atomically, but be tolerant of a partial read
                    records = []
                verdicts = [r for r in records if r.get("kind") == "verification"
                            and r.get("phase") == 3 and r.get("note") == note]
            if not verdicts:
                time.sleep(0.2)
        gate_text = gate.inner_text()
        assert len(verdicts) == 1, (
            f"no phase-3 verdict with the note in {verification_path}; the gate shows:\n{gate_text}")
        assert verdicts[0]["verdict"] == "verified"

        plan_after = wait_for_change(plan_path, plan_before, timeout=10)
        heading = next(line for line in plan_after.decode().splitlines()
                       if line.startswith("## Phase 3"))
        assert re.search(r"\[(checkpoint|verified): [^\]]+\]", heading), (
            f"phase 3's heading has no annotation: {heading!r}")
        # Phase 4 unlocks in the checklist once the gate is confirmed.
        expect(phase4).not_to_have_class(re.compile(r"\bconductor-locked\b"), timeout=15_000)
        errors = error_outputs(page)
        assert not errors, f"error outputs:\n{errors}"
    finally:
        screenshot(page, tmp_path, "acceptance.png")
