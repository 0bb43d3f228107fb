# `make demo` and `make test` each set up .venv from nothing, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv build-test-artifacts typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/cello build examples/hello.py --out build
	$(BIN)/cello serve --out build --host 127.0.0.1 --port 8000

test: $(STAMP)
	@# Browser tests use Debian's Chromium; without it (or without apt) they skip, saying so.
	@command -v chromium >/dev/null 2>&1 || (DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "chromium unavailable: browser tests will be skipped"
	$(BIN)/python -m mypy cello codegen
	$(MAKE) build-test-artifacts
	$(BIN)/python -m pytest -q

# Compile the routes of every test app, as a user's CI would before shipping: the HTTP
# suites then run against these artifacts and against the interpreted router.
build-test-artifacts: $(STAMP)
	$(BIN)/python tests/apputil.py

typecheck: $(STAMP)
	$(BIN)/python -m mypy cello codegen

bench: $(STAMP)
	$(BIN)/python benchmarks/http_bench.py

clean:
	rm -rf build .pytest_cache .mypy_cache .hypothesis
