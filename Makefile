# Two commands, each sets itself up from a fresh clone (only python3 and pip needed):
#   make demo   - the main job: the default convergence study (jinit compare)
#   make test   - lint (ruff check, ruff format --check, mypy) and the whole pytest suite
# Inner loop: make test-fast (pytest -m "not slow": the catalog and the model tools).
# Both run pytest on one process per core (pytest-xdist, at most 4); WORKERS=0 runs serially.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest -q -n $(WORKERS) --maxprocesses 4 --dist loadfile

.PHONY: demo test test-fast lint format bench tour clean

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/jinit compare --out runs/demo --force

tour: $(STAMP)
	$(BIN)/jinit tour

test: $(STAMP) lint
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) runs .pytest_cache
