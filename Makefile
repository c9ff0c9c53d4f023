# Churn: the two set-up commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHURN_HOME ?= .churn
DEMO := $(CHURN_HOME)/demo
export CHURN_HOME

.PHONY: run install demo train serve test quality bench lint ui clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,dask]'
	touch $(STAMP)

install: $(STAMP)

## run: install, make demo data, train the champion, serve it on http://127.0.0.1:8000
run: $(STAMP) $(CHURN_HOME)/.demo-trained
	$(BIN)/churn serve

$(DEMO)/accounts.parquet: | $(STAMP)
	$(BIN)/churn demo-data --out $(DEMO)

$(CHURN_HOME)/.demo-trained: $(DEMO)/accounts.parquet
	$(BIN)/churn train --data $(DEMO)
	touch $@

demo: $(STAMP)
	$(BIN)/churn demo-data --out $(DEMO)

train: $(STAMP)
	$(BIN)/churn train --data $(DEMO)

serve: $(STAMP)
	$(BIN)/churn serve

# pytest exits 5 when it collected no tests: that is a failure, never a pass.
PYTEST = $(BIN)/python -m pytest -q
define run_pytest
	$(PYTEST) $(1); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$status
endef

## browser: Debian's headless Chromium for the HTML tests (skipped with a reason where it
## cannot be installed: not root, no package registry)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	    echo "browser: not root and no sudo: Chromium not installed, browser tests will skip" >&2; exit 0; fi; \
	  { $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	    || echo "browser: apt-get could not install chromium: browser tests will skip" >&2; }

## test: the fast suite (under ~10 minutes)
test: $(STAMP) browser
	@$(call run_pytest,-m "not quality")

## quality: slower quality floors (several seeds, real data sets)
quality: $(STAMP)
	@$(call run_pytest,-m quality)

bench: $(STAMP)
	$(BIN)/python bench/features.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/serve.py

lint: $(STAMP)
	$(BIN)/ruff check features training models service tests bench
	$(BIN)/ruff format --check features training models service tests bench

ui: $(STAMP)
	$(BIN)/churn ui

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
