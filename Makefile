# The two commands a new machine needs: `make demo` and `make test`.
# Each installs what it needs first (.ci/bootstrap.sh: .venv, pip and apt packages).
PY := .venv/bin/python

.PHONY: setup demo test bench lint clean

setup:
	@bash .ci/bootstrap.sh

demo: setup
	$(PY) example_notebooks/run_demo.py

test: setup
	@bash .ci/test.sh

# Every benchmark; each writes benchmarks/results/<name>.json (about 15 minutes in all).
bench: setup
	$(PY) benchmarks/bench_workspace.py
	$(PY) benchmarks/bench_harness.py --postgres
	$(PY) benchmarks/bench_seed.py
	$(PY) benchmarks/bench_advisor.py
	$(PY) benchmarks/bench_backup.py

lint: setup
	.venv/bin/ruff check .

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
