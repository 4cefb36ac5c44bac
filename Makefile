# coercion-sim: `make run` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Numba's on-disk cache lives next to the sources unless told otherwise; keep it in the venv.
export NUMBA_CACHE_DIR ?= $(CURDIR)/$(VENV)/numba-cache

.PHONY: run test test-slow lint bench check-python venv clean mutation mutation-kernel

check-python:
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 12) else 1)' || { \
	  echo "error: coercion-sim needs Python 3.12 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1)." >&2; \
	  echo "       Install 3.12 (e.g. 'pyenv install 3.12') or run 'make PYTHON=/path/to/python3.12 ...'." >&2; \
	  exit 1; }

$(PY): | check-python
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' || { \
	  echo "error: $(VENV) was made with $$($(PY) --version 2>&1); coercion-sim needs 3.12+. Remove $(VENV) and retry." >&2; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/coercion-sim scenario=rare_earth_2010 seed=1

# Lint first (seconds): the ruff rules in pyproject.toml, and the formatter's layout.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The suite runs on every core (pytest-xdist; one file per worker, so a file's shared fixtures run
# once; the longest files first, in the order tests/conftest.py gives them); PYTEST_WORKERS=1 runs it
# in one process.
PYTEST_WORKERS ?= auto
XDIST = $(if $(filter 1,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder)

test: lint
	$(PY) -m pytest -m "not slow" -q $(XDIST)

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -q $(XDIST)

bench: $(STAMP)
	$(PY) benchmarks/bench_kernel.py
	$(PY) benchmarks/bench_model.py

# Mutation testing with mutmut (not part of `make test`; configured in pyproject.toml's [tool.mutmut]).
# MUTANTS: mutant name patterns (e.g. MUTANTS='sim.world.calendar.*'); MUTATION_JOBS: parallel test processes.
# Afterwards: `.venv/bin/mutmut results` lists survivors, `.venv/bin/mutmut show NAME` shows one;
# docs/mutation.md keeps the scores and the reviewed list of survivors.
MUTANTS ?= sim.world.calendar.* sim.coercion.measures.* sim.reporting.files.* sim.policy.levers.*
MUTATION_JOBS ?= 2
mutation: $(STAMP)
	nice -n 19 $(VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) $(foreach m,$(MUTANTS),'$(m)')
	$(VENV)/bin/mutmut results

# The market kernel's mutants (sim/market/kernel.py against tests/test_market_kernel.py), run without the
# JIT in a staging copy with its own mutmut settings ([tool.coercion-sim.mutmut-kernel] in pyproject.toml).
# Results accumulate in .mutation-kernel/mutants/; `cd .mutation-kernel && ../.venv/bin/mutmut results`.
# KERNEL_MUTANTS: mutant name patterns, e.g. KERNEL_MUTANTS='sim.market.kernel.x_lu_solve*'.
KERNEL_MUTANTS ?= sim.market.kernel.*
KERNEL_STAGE := .mutation-kernel
mutation-kernel: $(STAMP)
	mkdir -p $(KERNEL_STAGE)
	rm -rf $(KERNEL_STAGE)/sim $(KERNEL_STAGE)/tests $(KERNEL_STAGE)/configs
	cp -a sim tests configs $(KERNEL_STAGE)/
	$(PY) -c 'import json, re, tomllib; \
	  text = open("pyproject.toml").read(); conf = tomllib.loads(text)["tool"]; \
	  merged = {**conf["mutmut"], **conf["coercion-sim"]["mutmut-kernel"]}; \
	  block = "[tool.mutmut]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in merged.items()); \
	  text = re.sub(r"^\[tool\.mutmut\]\n(?:[^\[].*\n|\s.*\n|\n)*", block + "\n", text, flags=re.M); \
	  open("$(KERNEL_STAGE)/pyproject.toml", "w").write(text)'
	cd $(KERNEL_STAGE) && NUMBA_DISABLE_JIT=1 nice -n 19 ../$(VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) \
	  $(foreach m,$(KERNEL_MUTANTS),'$(m)')
	cd $(KERNEL_STAGE) && ../$(VENV)/bin/mutmut results

clean:
	rm -rf $(VENV) outputs multirun mutants .mutation-kernel .pytest_cache .hypothesis

# Exploratory modelling with the EMA Workbench: minimax-regret ranking of named levers, PRIM boxes and
# feature scores on the minimal case (experiments/ema_robustness.py; 448 runs, 2-3 minutes on 2 cores).
.PHONY: ema
ema: $(STAMP)
	$(PY) experiments/ema_robustness.py
# The interactive dashboard (sim/dashboard, Mesa's SolaraViz): served on this machine only, works offline.
# `make app PORT=8800` picks another port; stop it with Ctrl-C.
.PHONY: app
PORT ?= 8765
app: $(STAMP)
	$(PY) -m sim.dashboard --port $(PORT)

# Calibration with uncertainty (sim/experiments/calibration.py, experiments/validate.py, docs/calibration.md): ABC-SMC on
# rare_earth_2010, posterior predictive bands for every shipped case, the lever comparison over posterior
# draws. Writes outputs/validation/<timestamp>/. `make validate` ~8,500 runs (about 16 min on 2 quiet
# cores); `make validate-quick` ~260 runs (about 1 min). Resume an interrupted run:
# `.venv/bin/python experiments/validate.py --resume outputs/validation/<timestamp>`.
.PHONY: validate validate-quick
VALIDATE_WORKERS ?= 2
validate: $(STAMP)
	$(PY) experiments/validate.py --budget default --workers $(VALIDATE_WORKERS) --progress always
validate-quick: $(STAMP)
	$(PY) experiments/validate.py --budget quick --workers $(VALIDATE_WORKERS) --progress always
