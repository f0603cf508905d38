"""Index tuning and backup cells through a real IPython shell: seed, query, bench (styled
table, plot, raw samples in the kernel), advise, backup, restore."""

from __future__ import annotations

from helpers.notebook import run_cell as run
from helpers.sample_ddl import ORDER_LIST
from helpers.sample_ddl import TUNING_SCHEMA as SCHEMA


def prepared(ip):
    ip.run_line_magic("reload_ext", "conductor_magics")
    for cell in ("%conductor implement orders_db", f"%%conductor schema\n{SCHEMA}",
                 "%conductor migrate new -m 'customers and orders'", "%conductor migrate up",
                 "%conductor seed --rows 200", "%conductor seed orders --rows 8000"):
        cap, result = run(ip, cell)
        assert result.success, (cell, cap.stderr, cap.stdout)


def test_query_and_bench_cells_show_a_styled_table_a_plot_and_keep_the_samples(ip, project):
    prepared(ip)
    cap, result = run(ip, f"%%conductor query order_list\n{ORDER_LIST}")
    assert result.success, cap.stderr
    cap, result = run(ip, "%%conductor bench --repeat 10 --index 'CREATE INDEX ix_o_cs ON orders "
                          f"(customer_id, status)'\n{ORDER_LIST}")
    assert result.success, cap.stderr
    kinds = {key for output in cap.outputs for key in output.data}
    assert "image/png" in kinds, kinds  # the per-arm distribution plot
    html = "".join(o.data.get("text/html", "") for o in cap.outputs)
    assert "ix_o_cs" in html and "faster" in html
    bench = ip.user_ns["bench_result"]
    samples = bench.samples
    assert len(samples) == 2 and all(len(s) == 10 for s in samples.values())
    assert (project / "storage-conductor/storages/orders_db/benchmarks.jsonl").exists()


def test_bad_bench_cell_is_one_line_and_changes_nothing(ip, project):
    prepared(ip)
    cap, result = run(ip, "%%conductor bench --index 'CREATE TABLE x (a INT)'\nSELECT 1")
    assert not result.success
    assert "Traceback" not in cap.stdout + cap.stderr
    assert not (project / "storage-conductor/storages/orders_db/benchmarks.jsonl").exists()


def test_advise_backup_and_list_cells(ip, project):
    prepared(ip)
    run(ip, f"%%conductor query order_list\n{ORDER_LIST}")
    cap, result = run(ip, "%conductor advise")
    assert result.success, cap.stderr
    assert ip.user_ns["advise_result"].recommendations
    for cell in ("%conductor backup --label one", "%conductor backup verify one",
                 "%conductor backup list"):
        cap, result = run(ip, cell)
        assert result.success, (cell, cap.stderr)
    html = "".join(o.data.get("text/html", "") for o in cap.outputs)
    assert "one" in html
