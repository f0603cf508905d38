# The two commands a new machine needs: `make demo` and `make test`.
# Each installs what it needs first (.ci/bootstrap.sh: .venv, pip and apt packages).
PY := .venv/bin/python

.PHONY: setup demo test binder-check bench lint clean

setup:
	@bash .ci/bootstrap.sh

demo: setup
	$(PY) example_notebooks/run_demo.py

test: setup
	@bash .ci/test.sh
	@$(PY) binder/check.py

# The Binder demo built and launched the way repo2docker would, without Docker: binder/
# linted, a fresh venv, postBuild and start as a non-root user, every example notebook
# run, the Jupyter extensions listed (about 5 minutes; binder/check.py says how).
binder-check: setup
	@$(PY) binder/check.py

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
