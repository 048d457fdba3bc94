# The README's commands. `make test` is what CI runs (.ci/run): every test. `make test-fast`
# leaves out the tests marked slow (whole jobs, services, real processes) for iterating.
PYTHON ?= python3

.PHONY: install example test test-fast lint bench

install:
	$(PYTHON) -m pip install -q -e '.[dev]'

example: install
	mlpilot run examples/churn.csv --target Churn --max-runtime 120 --output runs/churn-example
	mlpilot leaderboard runs/churn-example --top 10

lint:
	ruff check src tests benchmarks
	ruff format --check src tests benchmarks
	mypy
	lint-imports

# Two workers, each taking whole files (module fixtures are built once), the longest files
# first (tests/conftest.py): the slow tests spend much of their time waiting on services,
# subprocesses and job budgets. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2

test: install lint
	$(PYTHON) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25

test-fast: install lint
	$(PYTHON) -m pytest -q -m "not slow"

bench: install
	bash benchmarks/run_bench.sh 60
