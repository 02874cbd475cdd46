# msc-screen — see README.md. Everything installs into .venv/ with plain venv + pip, pinned by
# constraints.txt so a fresh machine gets what CI tested.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS := server,batch,dev
PYTEST_ARGS ?=

.PHONY: install system-deps lint typecheck test test-fast demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)

# System packages the tests need (Chromium, a JRE, PostgreSQL server binaries); each script
# installs with apt-get when missing and running as root, and otherwise says what to do.
system-deps:
	@for s in scripts/ensure-*.sh; do [ -f "$$s" ] && bash "$$s" || exit 1; done

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

test: install system-deps lint
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test-fast: install lint
	$(BIN)/pytest -n 2 --dist loadgroup -m "not slow" $(PYTEST_ARGS)

demo: install
	$(BIN)/msc-screen demo

bench: install
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info demo-data
