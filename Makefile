# Two commands that work on a fresh machine (Python 3.10+; npm for the Azurite tests):
#   make start   run the reference app on funcemu (embedded store under .funcemu/)
#   make test    run the whole test suite
# Each bootstraps what it needs once: .venv (pip install -e '.[dev]') and node_modules (npm ci).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.funcemu-installed
NPM_STAMP := node_modules/.funcemu-installed
ARGS ?=
PYTEST_ARGS ?=

.PHONY: start test bootstrap clean

start: $(PY_STAMP)
	$(BIN)/funcemu start $(ARGS)

test: $(PY_STAMP) $(NPM_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bootstrap: $(PY_STAMP) $(NPM_STAMP)

$(PY_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --no-input -e '.[dev]'
	touch $@

# Azurite (the Azure Storage emulator) comes from npm. Without npm the Azure Storage tests are skipped.
$(NPM_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund && touch $@; \
	else \
		echo "npm not found: Azurite is not installed and the Azure Storage tests will be skipped"; \
	fi

clean:
	rm -rf $(VENV) node_modules .funcemu
