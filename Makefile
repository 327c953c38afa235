# avbench: `make leaderboard` runs the main job, `make test` the tests.
# Both install what they need into a venv inside the repo (.venv).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.install-stamp
DATA   ?= data
PRESET ?= default
SEED   ?= 0
DATASETS := vggsound flickr avsbench ave vegas ego4d

.PHONY: install test test-slow lint leaderboard synth bench clean

install: $(STAMP)

# Reinstall only when the package metadata changes (fast no-op otherwise).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q -n 2 --timeout 900

test-slow: install
	$(BIN)/python -m pytest -q -m slow --timeout 3600

lint: install
	$(BIN)/ruff check avbench tests benchmarks

synth: install
	@for d in $(DATASETS); do \
	  $(BIN)/avbench synth $$d --root $(DATA)/$$d --preset $(PRESET) --seed $(SEED) || exit 1; \
	done

leaderboard: synth
	@echo "The benchmark runner lands with issue 5; synthetic data written to $(DATA)/."

bench: install
	$(BIN)/python benchmarks/perf/loader.py
	$(BIN)/python benchmarks/perf/metrics.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
