"""Workspace benchmarks: plan.md parsing, ticking a task, `status` over many components.

Run from the repository root::

    .venv/bin/python benchmarks/bench_workspace.py            # full run (about a minute)
    .venv/bin/python benchmarks/bench_workspace.py --quick    # fewer repetitions
    .venv/bin/python benchmarks/bench_workspace.py --profile  # also cProfile parse_plan

All data is generated in a temporary folder that is removed afterwards. A readable
table goes to stdout and the figures (with machine information) are written as JSON
to ``--out`` (default ``benchmarks/results/workspace.json``).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import io
import json
import os
import platform
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from anywhere without installing
    sys.path.insert(0, str(REPO))

from markdown_it import MarkdownIt  # noqa: E402

from conductor_magics.session import Session  # noqa: E402
from conductor_magics.workspace import Workspace, parse_plan, read_plan  # noqa: E402
from conductor_magics.workspace.files import atomic_write_bytes, workspace_lock  # noqa: E402
from conductor_magics.workspace.plan import set_mark_bytes, write_task_state  # noqa: E402

PHASE_TOPICS = [
    "Schema Design", "Migration Setup", "Core Implementation (CRUD)", "Indexing & Query Performance",
    "Data Integrity", "Backup & Recovery", "Testing", "Documentation",
]
VERBS = ["Create", "Add", "Write", "Verify", "Seed", "Benchmark", "Document", "Review", "Define", "Check"]
NOUNS = ["orders table", "customer index", "FK to accounts", "CHECK on amount", "migration script",
         "backup job", "restore drill", "CRUD smoke test", "EXPLAIN plan", "partition scheme"]
FIXED_EPOCH = "2026-11-01T09:00:00+00:00"
# The same CommonMark parser plan.py uses, for splitting parse time into its parts.
_MD = MarkdownIt("commonmark")
_MD_BLOCK = MarkdownIt("commonmark").disable("inline")


# -- data generation ----------------------------------------------------------------------

def generate_plan(phases: int, tasks_per_phase: int, seed: int = 1) -> bytes:
    """A plan.md: ``phases`` × ``tasks_per_phase`` top-level tasks, a third with 1-2
    sub-tasks, some done (with a commit SHA), plus prose, code fences and comments.
    No phase is fully done, so no phase gate locks a later phase."""
    rng = random.Random(seed)
    out = ["# Implementation Plan: benchmark component\n", "\n",
           "Prose before the first phase. It mentions `plan.md` and **emphasis**.\n", "\n"]
    for p in range(1, phases + 1):
        topic = PHASE_TOPICS[(p - 1) % len(PHASE_TOPICS)]
        out.append(f"## Phase {p}: {topic} (batch {p})\n\n")
        out.append(f"Goal of phase {p}: make the {topic.lower()} step reproducible.\n\n")
        for t in range(1, tasks_per_phase + 1):
            mark = "x" if (t % 7 == 3) else " "
            name = f"{rng.choice(VERBS)} {rng.choice(NOUNS)} #{p}-{t}"
            sha = f" ({rng.getrandbits(28):07x}a)" if mark == "x" else ""
            out.append(f"- [{mark}] Task: {name}{sha}\n")
            if t % 3 == 0:
                for s in range(1, rng.choice((1, 2)) + 1):
                    out.append(f"    - [ ] Sub-task {s}: check `{name}` on SQLite and PostgreSQL\n")
            if t % 25 == 0:
                out.append("\n```sql\n-- a fence is opaque\n- [ ] not a task\n"
                           f"CREATE INDEX ix_{p}_{t} ON orders (customer_id, created_at);\n```\n\n")
            if t % 40 == 0:
                out.append("\n<!-- reviewer note: - [x] not a task either -->\n\n"
                           "Some prose explaining *why* the next tasks matter, with a "
                           "[link](https://example.com) and a long line " + "lorem ipsum " * 8 + "\n\n")
        out.append("\n")
    out.append("## Notes\n\n- [ ] a loose checklist item after a closing heading\n")
    return "".join(out).encode("utf-8")


def write_component(storages: Path, cid: str, title: str, status: str, plan: bytes) -> None:
    folder = storages / cid
    folder.mkdir(parents=True)
    meta = {"id": cid, "title": title, "type": "feature", "storage_type": "relational",
            "backend": "sqlite", "status": status, "created": FIXED_EPOCH, "updated": FIXED_EPOCH}
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    (folder / "plan.md").write_bytes(plan)
    (folder / "spec.md").write_text(f"# Spec: {title}\n\nStore the {title} data.\n", encoding="utf-8")


def write_workspace(root: Path, components: list[tuple[str, str, str, bytes]]) -> Path:
    """A project folder with storage-conductor/ holding the given components."""
    ws = root / "storage-conductor"
    (ws / "storages").mkdir(parents=True)
    for name in ("product.md", "tech-stack.md", "workflow.md", "storage-standards.md",
                 "storage-template.md"):
        (ws / name).write_text(f"# {name}\n\nBenchmark context.\n", encoding="utf-8")
    rows = ["# Tracks\n\n",
            "| Storage ID | Title | Storage Type | Backend | Status | Created Date | Updated Date |\n",
            "|---|---|---|---|---|---|---|\n"]
    for cid, title, status, plan in components:
        rows.append(f"| {cid} | {title} | relational | sqlite | {status} | 2026-11-01 | 2026-11-01 |\n")
        write_component(ws / "storages", cid, title, status, plan)
    (ws / "tracks.md").write_text("".join(rows), encoding="utf-8")
    return root


# -- timing helpers -----------------------------------------------------------------------

def summarise(samples: list[float]) -> dict:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered) + 0.5) - 1))]
    return {"n": len(samples), "median_s": statistics.median(samples), "p95_s": p95,
            "min_s": ordered[0], "max_s": ordered[-1], "mean_s": statistics.fmean(samples)}


def repeat(fn: Callable[[int], object], reps: int, warmup: int = 1) -> dict:
    """Time ``fn(i)`` ``reps`` times (after ``warmup`` untimed calls); GC runs between calls."""
    for i in range(warmup):
        fn(-1 - i)
    samples = []
    for i in range(reps):
        gc.collect()
        start = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - start)
    return summarise(samples)


# -- benchmarks ---------------------------------------------------------------------------

def bench_plan(tmp: Path, reps: int, phases: int, per_phase: int) -> dict:
    data = generate_plan(phases, per_phase)
    root = write_workspace(tmp / "plan-bench", [("big-plan", "Big plan", "Planning", data)])
    ws = Workspace(root / "storage-conductor")
    plan_path = ws.storages_dir / "big-plan" / "plan.md"
    plan = parse_plan(data, plan_path)
    counts = plan.counts()
    shape = {"bytes": len(data), "lines": data.count(b"\n"), "phases": len(plan.phases), **counts}

    # Distinct open top-level tasks to tick, spread over the phases (warm-ups use their own).
    todo = [t for t in plan.items() if t.depth == 0 and t.state == "todo"]
    rng = random.Random(7)
    picks = rng.sample(todo, k=min(len(todo), 4 * reps + 8))
    queue = iter(picks)

    results: dict[str, dict] = {}
    results["parse_plan (bytes -> Plan)"] = repeat(lambda i: parse_plan(data, plan_path), reps)
    text = data.decode("utf-8")
    results["  of which markdown-it tokens (MarkdownIt.parse)"] = repeat(lambda i: _MD.parse(text), reps)
    results["  of which markdown-it block rules only"] = repeat(lambda i: _MD_BLOCK.parse(text), reps)
    results["read_plan (read file + parse)"] = repeat(lambda i: read_plan(plan_path), reps)
    one = picks[0]
    results["Plan.find by number"] = repeat(lambda i: plan.find(one.number), reps)
    results["set_mark_bytes (one-byte tick in memory)"] = repeat(
        lambda i: set_mark_bytes(data, one, "done"), reps)
    results["atomic_write_bytes plan.md (temp+fsync+replace)"] = repeat(
        lambda i: atomic_write_bytes(plan_path, data), reps)
    results["workspace lock acquire+release"] = repeat(lambda i: _lock_cycle(ws.dir), reps)

    def tick_write_task_state(_i: int) -> None:
        task = next(queue)
        with ws.lock():
            write_task_state(plan_path, task.key, "done")

    results["write_task_state (re-read, parse, write)"] = repeat(tick_write_task_state, reps)

    session = Session(ws, user="bench")

    def tick_session(_i: int) -> None:
        task = next(queue)
        result = session.task("done", task.number)
        assert result.changed, task.number

    results["Session.task('done') end to end"] = repeat(tick_session, reps)
    final = read_plan(plan_path)
    return {"shape": shape, "timings": results, "ticked_ok": final.counts()["tasks_done"]
            == counts["tasks_done"] + 2 * (reps + 1)}


def _lock_cycle(ws_dir: Path) -> None:
    with workspace_lock(ws_dir):
        pass


def bench_memory(tmp: Path, phases: int, per_phase: int) -> dict:
    data = generate_plan(phases, per_phase)
    gc.collect()
    tracemalloc.start()
    plan = parse_plan(data, "plan.md")
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del plan
    # Peak RSS in a fresh interpreter (the package + the file read), then after parsing.
    source = tmp / "memory-plan.md"
    source.write_bytes(data)
    code = (
        "import resource, sys\n"
        "def peak():\n"
        "    # VmHWM is the peak RSS of this address space; ru_maxrss would carry over the\n"
        "    # parent's high-water mark across fork+exec on Linux.\n"
        "    try:\n"
        "        for line in open('/proc/self/status'):\n"
        "            if line.startswith('VmHWM:'):\n"
        "                return int(line.split()[1])\n"
        "    except OSError:\n"
        "        pass\n"
        "    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from conductor_magics.workspace.plan import parse_plan\n"
        f"data = open({str(source)!r}, 'rb').read()\n"
        "before = peak()\n"
        "plan = parse_plan(data, 'plan.md')\n"
        "after = peak()\n"
        "print(before, after)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before_kib, after_kib = (int(x) for x in out.stdout.split())
    return {"plan_bytes": len(data),
            "tracemalloc_peak_bytes": peak, "tracemalloc_retained_bytes": current,
            "peak_rss_before_parse_kib": before_kib, "peak_rss_after_parse_kib": after_kib,
            "peak_rss_delta_kib": after_kib - before_kib}


def component_plan(index: int) -> bytes:
    """~40 tasks: 4 phases × 10 tasks, a third with sub-tasks."""
    return generate_plan(4, 10, seed=index)


def bench_status(tmp: Path, reps: int, cli_reps: int, n_components: int) -> dict:
    statuses = ["Planning", "In Progress", "Completed", "Blocked"]
    comps = [(f"comp-{i:03d}", f"Component {i}", statuses[i % len(statuses)], component_plan(i))
             for i in range(n_components)]
    root = write_workspace(tmp / "status-bench", comps)
    session = Session.open(root=root, user="bench")
    report = session.status()
    shape = {"components": len(report.components),
             "tasks_per_component": report.components[0].plan.counts()["tasks_total"],
             "subtasks_per_component": report.components[0].plan.counts()["subtasks_total"],
             "problems": len(report.problems) + sum(len(c.problems) for c in report.components)}
    results = {
        "Session.status()": repeat(lambda i: session.status(), reps),
        "Session.status().to_json()": repeat(lambda i: session.status().to_json(), reps),
    }
    py = sys.executable
    script = shutil.which("conductor", path=str(Path(py).parent)) or ""
    env = {k: v for k, v in os.environ.items() if k != "CONDUCTOR_ROOT"}
    env["PYTHONPATH"] = str(REPO)

    def run(cmd: list[str]) -> Callable[[int], None]:
        def call(_i: int) -> None:
            proc = subprocess.run(cmd, capture_output=True, env=env, cwd=tmp)
            if proc.returncode not in (0, 1):
                raise RuntimeError(f"{cmd} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
        return call

    cli_cmd = [script, "--root", str(root), "status", "--json"] if script else \
        [py, "-m", "conductor_magics.cli", "--root", str(root), "status", "--json"]
    probe = subprocess.run(cli_cmd, capture_output=True, env=env, cwd=tmp)
    parsed = json.loads(probe.stdout)
    shape["cli_exit_code"] = probe.returncode
    shape["cli_json_bytes"] = len(probe.stdout)
    shape["cli_json_components"] = len(parsed.get("components", [])) if isinstance(parsed, dict) else None
    results["CLI `conductor --root DIR status --json` (wall)"] = repeat(run(cli_cmd), cli_reps)
    results["baseline: python -c pass (interpreter start-up)"] = repeat(run([py, "-c", "pass"]), cli_reps)
    results["baseline: python -c 'import conductor_magics.cli'"] = repeat(
        run([py, "-c", "import conductor_magics.cli"]), cli_reps)
    return {"shape": shape, "timings": results, "cli_command": " ".join(
        ["conductor" if c == script else c for c in cli_cmd[:1]] + ["--root", "DIR", "status", "--json"])}


def bench_cli_tick(tmp: Path, cli_reps: int, phases: int, per_phase: int) -> dict:
    """`conductor task done` as a subprocess (what a user at a terminal waits for) in a
    10-task plan and in a 5,000-task plan, and the plan refresh the panel and widget run:
    `Session.plan()` + `to_json()` in process, `conductor plan ID --json` as a subprocess.
    Each timed tick ticks a different open task."""
    big = generate_plan(phases, per_phase)
    small = generate_plan(1, 10)
    root = write_workspace(tmp / "cli-tick", [("small-plan", "Small plan", "In Progress", small),
                                              ("big-plan", "Big plan", "In Progress", big)])
    py = sys.executable
    script = shutil.which("conductor", path=str(Path(py).parent)) or ""
    base = [script] if script else [py, "-m", "conductor_magics.cli"]
    env = {k: v for k, v in os.environ.items() if k != "CONDUCTOR_ROOT"}
    env["PYTHONPATH"] = str(REPO)
    results: dict[str, dict] = {}
    shape: dict = {}
    queues: dict[str, Iterator[str]] = {}
    for cid, data in (("small-plan", small), ("big-plan", big)):
        plan = parse_plan(data, "plan.md")
        todo = [t.number for t in plan.items() if t.depth == 0 and t.state == "todo"]
        queues[cid] = iter(random.Random(11).sample(todo, k=min(len(todo), cli_reps + 2)))
        shape[cid] = plan.counts()["tasks_total"]

    def conductor(*words: str) -> None:
        proc = subprocess.run([*base, "--root", str(root), *words], capture_output=True, env=env, cwd=tmp)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(words)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")

    def open_task(cid: str) -> str:
        """An open task to tick; the small plan runs out of them: one is unticked (untimed)."""
        number = next(queues[cid], None)
        if number is None:
            conductor("task", "undo", cid, "1.1")
            number = "1.1"
        return number

    # Interleaved pairs (small, big / big, small alternately): the machine's drift over the
    # run hits both plans alike, and each pair's difference is one estimate of the extra.
    samples: dict[str, list[float]] = {cid: [] for cid in queues}
    for cid in queues:
        conductor("task", "done", cid, open_task(cid))  # warm-up: the plan cache is made here
    for i in range(cli_reps):
        for cid in (("small-plan", "big-plan") if i % 2 == 0 else ("big-plan", "small-plan")):
            number = open_task(cid)
            gc.collect()
            start = time.perf_counter()
            conductor("task", "done", cid, number)
            samples[cid].append(time.perf_counter() - start)
    for cid in queues:
        results[f"CLI `conductor task done ID N` in a {shape[cid]:,}-task plan (wall)"] = summarise(samples[cid])
    small_s = results[f"CLI `conductor task done ID N` in a {shape['small-plan']:,}-task plan (wall)"]
    big_s = results[f"CLI `conductor task done ID N` in a {shape['big-plan']:,}-task plan (wall)"]
    pairs = [b - a for a, b in zip(samples["small-plan"], samples["big-plan"], strict=True)]
    extra = {"median_extra_s": big_s["median_s"] - small_s["median_s"],
             "min_extra_s": big_s["min_s"] - small_s["min_s"],
             "paired_median_extra_s": statistics.median(pairs)}

    session = Session.open(root=root, user="bench")
    results["Session.plan(big).to_json() (panel/widget refresh, in process)"] = repeat(
        lambda i: session.plan("big-plan").to_json(), cli_reps * 3)

    def cli_plan(_i: int) -> None:
        proc = subprocess.run([*base, "--root", str(root), "plan", "big-plan", "--json"],
                              capture_output=True, env=env, cwd=tmp)
        if proc.returncode != 0:
            raise RuntimeError(f"plan --json exited {proc.returncode}: {proc.stderr.decode()[-500:]}")

    results["CLI `conductor plan big --json` (wall)"] = repeat(cli_plan, cli_reps)
    return {"shape": shape, "timings": results, "tick_extra_for_5000_tasks": extra}


def bench_large(tmp: Path) -> dict:
    """`status` on a ~50 MB plan and over a 10,000-component tracks.md (wall time and peak
    RSS of a fresh interpreter: first call, then a second one), and the same at a tenth of
    the size with tracemalloc on (its peak; tracemalloc itself slows the run several-fold
    and costs memory per allocation, so it is not used at full size)."""
    out: dict[str, dict] = {}
    per_phase = 100
    unit = len(generate_plan(1, per_phase))
    for label, megabytes in (("5 MB plan", 5), ("50 MB plan", 50)):
        phases = max(1, (megabytes * 2**20) // unit)
        big = generate_plan(phases, per_phase)
        root = write_workspace(tmp / f"large-plan-{megabytes}", [("huge-plan", "Huge plan", "In Progress", big)])
        out[f"status with a {label}"] = {"plan_bytes": len(big), "tasks": phases * per_phase,
                                         **_measure_status(root, tracemalloc_on=megabytes == 5)}
        shutil.rmtree(root, ignore_errors=True)
    for n in (1_000, 10_000):
        comps = [(f"c{i:05d}", f"Component {i}", "Planning", generate_plan(1, 3, seed=i))
                 for i in range(n)]
        root = write_workspace(tmp / f"large-tracks-{n}", comps)
        out[f"status over {n:,} components"] = {"components": n,
                                                 **_measure_status(root, tracemalloc_on=n == 1_000)}
        shutil.rmtree(root, ignore_errors=True)
    return out


def _measure_status(root: Path, tracemalloc_on: bool) -> dict:
    code = (
        "import json, sys, time, tracemalloc\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from conductor_magics.session import Session\n"
        "def hwm():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        "            return int(line.split()[1]) * 1024\n"
        "out = {'rss_before_bytes': hwm()}\n"
        f"trace = {tracemalloc_on!r}\n"
        "for call in ('first', 'second'):\n"
        "    session = Session.open(root=sys.argv[1], user='bench')\n"
        "    if trace:\n"
        "        tracemalloc.start()\n"
        "    start = time.perf_counter()\n"
        "    session.status().to_json()\n"
        "    out[call + '_call_s'] = time.perf_counter() - start\n"
        "    if trace:\n"
        "        out[call + '_call_tracemalloc_peak_bytes'] = tracemalloc.get_traced_memory()[1]\n"
        "        tracemalloc.stop()\n"
        "    out[call + '_call_peak_rss_bytes'] = hwm()\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout)


def profile_parse(phases: int, per_phase: int, top: int = 25) -> str:
    data = generate_plan(phases, per_phase)
    profiler = cProfile.Profile()
    profiler.enable()
    parse_plan(data, "plan.md")
    profiler.disable()
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf)
    stats.sort_stats("cumulative").print_stats(top)
    buf.write("\n--- by internal time ---\n")
    stats.sort_stats("tottime").print_stats(top)
    return buf.getvalue()


# -- output -------------------------------------------------------------------------------

def fmt_s(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:8.3f} s "
    if seconds >= 1e-3:
        return f"{seconds * 1e3:8.2f} ms"
    return f"{seconds * 1e6:8.1f} us"


def table(title: str, timings: dict[str, dict]) -> str:
    width = max(len(k) for k in timings) + 2
    lines = [title, f"{'operation':<{width}}{'n':>4}  {'median':>11}  {'p95':>11}  {'min':>11}",
             "-" * (width + 46)]
    for name, s in timings.items():
        lines.append(f"{name:<{width}}{s['n']:>4}  {fmt_s(s['median_s']):>11}  "
                     f"{fmt_s(s['p95_s']):>11}  {fmt_s(s['min_s']):>11}")
    return "\n".join(lines)


def machine_info() -> dict:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "tempdir": tempfile.gettempdir(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "workspace.json",
                        help="where to write the JSON results")
    parser.add_argument("--reps", type=int, help="repetitions for in-process timings")
    parser.add_argument("--cli-reps", type=int,
                        help="repetitions of each subprocess timing (default 10; quick 3)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile parse_plan on the big plan (always done when it is slow)")
    parser.add_argument("--only", action="append", choices=("plan", "memory", "status", "cli_tick", "large"),
                        help="run only these parts (repeatable); default: all but large")
    args = parser.parse_args(argv)
    only = set(args.only or ("plan", "memory", "status", "cli_tick"))

    reps = args.reps or (5 if args.quick else 30)
    status_reps = max(3, reps // 3)
    cli_reps = args.cli_reps or (3 if args.quick else 10)
    phases, per_phase, n_components = 50, 100, 200

    results: dict = {"machine": machine_info(), "mode": "quick" if args.quick else "full",
                     "config": {"plan_phases": phases, "plan_tasks_per_phase": per_phase,
                                "reps": reps, "status_reps": status_reps, "cli_reps": cli_reps,
                                "status_components": n_components}}
    tmp = Path(tempfile.mkdtemp(prefix="conductor-bench-"))
    try:
        print(f"generating data in {tmp} ...", flush=True)
        if "plan" in only:
            results["plan"] = bench_plan(tmp, reps, phases, per_phase)
            shape = results["plan"]["shape"]
            print(f"\nplan.md: {shape['bytes']:,} bytes, {shape['lines']:,} lines, {shape['phases']} phases, "
                  f"{shape['tasks_total']:,} tasks, {shape['subtasks_total']:,} sub-tasks")
            print(table("(a) plan.md with 5,000 tasks", results["plan"]["timings"]))

        if "memory" in only:
            results["memory"] = mem = bench_memory(tmp, phases, per_phase)
            print("\n(c) memory of parse_plan on the 5,000-task plan")
            print(f"tracemalloc peak during parse : {mem['tracemalloc_peak_bytes'] / 2**20:8.1f} MiB")
            print(f"retained by the Plan object   : {mem['tracemalloc_retained_bytes'] / 2**20:8.1f} MiB")
            print(f"peak RSS before / after parse : {mem['peak_rss_before_parse_kib'] / 1024:8.1f} / "
                  f"{mem['peak_rss_after_parse_kib'] / 1024:.1f} MiB (fresh interpreter, VmHWM)")

        if "status" in only:
            results["status"] = bench_status(tmp, status_reps, cli_reps, n_components)
            shape = results["status"]["shape"]
            print(f"\nworkspace: {shape['components']} components × {shape['tasks_per_component']} tasks "
                  f"(+{shape['subtasks_per_component']} sub-tasks); CLI exit {shape['cli_exit_code']}, "
                  f"{shape['cli_json_bytes']:,} bytes of JSON")
            print(table("(b) status over 200 components", results["status"]["timings"]))

        if "cli_tick" in only:
            results["cli_tick"] = bench_cli_tick(tmp, cli_reps, phases, per_phase)
            extra = results["cli_tick"]["tick_extra_for_5000_tasks"]
            print(table("\n(d) a tick from the CLI, and the plan refresh", results["cli_tick"]["timings"]))
            print(f"a tick in the 5,000-task plan costs {extra['median_extra_s'] * 1e3:.1f} ms more "
                  f"(medians; min {extra['min_extra_s'] * 1e3:.1f} ms; median of interleaved pairs "
                  f"{extra['paired_median_extra_s'] * 1e3:.1f} ms) than in the 10-task plan")

        if "large" in only:
            results["large"] = bench_large(tmp)
            print("\n(e) status on very large inputs (fresh interpreter; RSS = VmHWM)")
            for name, fig in results["large"].items():
                traced = (f", tracemalloc peak {fig['first_call_tracemalloc_peak_bytes'] / 2**20:.0f} MiB"
                          if "first_call_tracemalloc_peak_bytes" in fig else "")
                print(f"{name}: first call {fig['first_call_s']:.2f} s{traced}, peak RSS "
                      f"{fig['first_call_peak_rss_bytes'] / 2**20:.0f} MiB; second call "
                      f"{fig['second_call_s']:.2f} s")

        parse_median = results.get("plan", {}).get("timings", {}).get(
            "parse_plan (bytes -> Plan)", {}).get("median_s", 0.0)
        if args.profile or parse_median > 0.5:
            text = profile_parse(phases, per_phase)
            results["parse_profile_top"] = text.splitlines()[:80]
            print("\ncProfile of parse_plan (5,000 tasks)\n" + text)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
