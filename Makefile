# Two commands on a fresh machine: `make demo` and `make test`. Both create and use .venv.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
BASE   := $(VENV)/.stamp-base
DEV    := $(VENV)/.stamp-dev
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: demo test lint typecheck web bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# setup.py and the C source: a changed kernel is rebuilt by the editable install.
$(BASE): pyproject.toml setup.py src/becomingone/core/_fused.c | $(BIN)/python
	$(PIP) -e .
	touch $@

$(DEV): pyproject.toml setup.py src/becomingone/core/_fused.c scripts/install-system.sh | $(BIN)/python
	bash scripts/install-system.sh
	$(PIP) -e '.[dev,text]'
	touch $(BASE) $@

demo: $(BASE)
	@echo "== 1/4  KAIROS on a recorded stream: becomingone analyze examples/buried.csv"
	$(BIN)/becomingone analyze examples/buried.csv --band 3 8 --rows 16 --plot out/analyze.png
	@echo "== 2/4  a living cell for 20 s on the synthetic source: becomingone up"
	rm -rf out/demo-cell
	$(BIN)/becomingone up --duration 20 --summary --data-dir out/demo-cell
	$(BIN)/becomingone witness verify --data-dir out/demo-cell
	@echo "== 3/4  16 cells phase-lock on a fractal topology: becomingone cluster --serve"
	@echo "        watch it live for 30 s: dashboard at http://127.0.0.1:8790/"
	$(BIN)/becomingone cluster --nodes 16 --topology fractal --cells full --duration 30 --plot out/cluster.png --serve 127.0.0.1:8790
	@echo "== 4/4  Choir: choir up serves while the command line posts, submits and votes"
	bash scripts/demo-choir.sh $(BIN) out/demo-choir

lint: $(DEV)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(DEV)
	$(BIN)/mypy

# The dashboard: type-check web/, rebuild it, fail if the shipped bundle differs (needs Node).
web: $(DEV)
	bash scripts/check-web.sh

test: lint typecheck web
	$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

bench: $(BASE)
	$(BIN)/python bench/kairos.py
	$(BIN)/python bench/cell.py
	$(BIN)/python bench/sim.py
	$(BIN)/python bench/cluster.py
	$(BIN)/python bench/nats_bus.py
	$(BIN)/python bench/storage.py
	$(BIN)/python bench/nats_cluster.py
	$(BIN)/python bench/glyphs.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/choir.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/consensus.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache web/node_modules
