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

bench: setup
	$(PY) benchmarks/bench_workspace.py

lint: setup
	.venv/bin/ruff check .

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
