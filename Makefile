# Two commands: `make demo` runs the main job end to end on the built-in sample; `make test` runs the tests.
# Both create .venv from the system Python and install the project with its extras (once; quick afterwards).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install browser demo test test-fast bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"
	@touch $(STAMP)

# The report's browser test needs a headless Chromium (Debian's `chromium`): installed here when it is
# missing and we are root with apt-get; otherwise skipped with a message (the test then skips, saying why).
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium for the report's browser test (apt-get)"; \
		(apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)) \
			|| echo "browser: could not install chromium with apt-get; the report's browser test will be skipped"; \
	else echo "browser: chromium is missing and this is not root with apt-get; the report's browser test will be skipped"; fi

demo: install
	$(BIN)/rewards demo

test: install browser
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not integration and not slow"

bench: install
	@set -e; for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done
	@echo "results in docs/benchmarks.md"

clean:
	rm -rf data .pytest_cache
