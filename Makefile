# avbench: `make leaderboard` runs the main job, `make test` the tests.
# Both install what they need into a venv inside the repo (.venv).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.install-stamp
DATA   ?= data
PRESET ?= default
SEED   ?= 0
SUITE  ?= avbench/configs/suites/synthetic.yaml
RESULTS ?= results
STANDINS ?= standins
# the pretrained stand-ins the default suite and the feature-file writers need (docs/pretrained.md)
STANDIN_NAMES := image-resnet18 audio-resnet18 text-encoder image-vit audio-transformer
DATASETS := vggsound flickr avsbench ave vegas ego4d epic_sounds spoken_captions ade20k_prompted

.PHONY: install test test-slow lint leaderboard leaderboard-generation synth standins bench clean

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

# Each stand-in is trained once per (name, seed, code version): `avbench pretrain` skips a
# directory whose card is current and retrains a stale or damaged one.
standins: install
	@for n in $(STANDIN_NAMES); do \
	  $(BIN)/avbench pretrain $$n --out $(STANDINS)/$$n --seed 0 || exit 1; \
	done

# Each dataset is written once per (preset, seed): a stamp marks a finished write.
# AVE and VEGAS feature files are computed by the stand-ins, hence the dependency.
synth: standins
	@for d in $(DATASETS); do \
	  stamp=$(DATA)/$$d/.synth-$(PRESET)-seed$(SEED); \
	  if [ -f $$stamp ]; then echo "$(DATA)/$$d: $(PRESET) seed $(SEED) already written"; continue; fi; \
	  $(BIN)/avbench synth $$d --root $(DATA)/$$d --preset $(PRESET) --seed $(SEED) --standins $(STANDINS) || exit 1; \
	  touch $$stamp; \
	done

# Train and evaluate the synthetic suite, then write leaderboards/ (tables even if a job failed).
leaderboard: synth
	$(BIN)/avbench benchmark --suite $(SUITE) --results $(RESULTS); status=$$?; \
	$(BIN)/avbench leaderboard --results $(RESULTS) --out leaderboards || exit 1; \
	exit $$status

# AV-LDM (issue 17) in its own suite, results and tables (docs/avldm.md, "Suite"): one job
# (fit + generating the test clips under five audio conditions) is longer than the room left
# in `make leaderboard`'s 30 minutes.
# AV-sim and the `retrieved` condition use the MC3 that `make leaderboard` trained (its fit
# record under results/); without it they are recorded as not computed.
leaderboard-generation: synth
	$(BIN)/avbench pretrain mel-autoencoder --out $(STANDINS)/mel-autoencoder --seed 0
	@test -f results/_work/synthetic/mc3.ego4d.seed0/fit.json || echo "note: no results/_work/synthetic/mc3.ego4d.seed0/fit.json (run make leaderboard first): AV-sim and the retrieved condition will not be computed, and results written now are kept on later runs until avbench benchmark --overwrite always"
	$(BIN)/avbench benchmark --suite avbench/configs/suites/generation.yaml --results $(RESULTS)-generation; \
	status=$$?; \
	$(BIN)/avbench leaderboard --results $(RESULTS)-generation --out leaderboards/generation || exit 1; \
	exit $$status

bench: install
	$(BIN)/python benchmarks/perf/loader.py
	$(BIN)/python benchmarks/perf/metrics.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
