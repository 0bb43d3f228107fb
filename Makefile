# `make demo` and `make test` each set up .venv from nothing, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NATIVE := $(VENV)/.native
# The server modules setup.py compiles with mypyc (cello/_native.py lists them).
NATIVE_SOURCES := $(wildcard cello/server/*.py) cello/_native.py setup.py

.PHONY: demo test venv native build-test-artifacts typecheck bench clean

# Installed pure first (quick); `native` then compiles the runtime with the venv's own mypyc.
$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	CELLO_COMPILE=0 $(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The compiled runtime, rebuilt whenever a compiled module's source changes (a stale one
# would not be used anyway: cello/_native.py falls back to the sources, with a warning).
$(NATIVE): $(STAMP) $(NATIVE_SOURCES)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(NATIVE)

venv: $(NATIVE)

native: $(NATIVE)

demo: $(NATIVE)
	$(BIN)/cello build examples/hello.py --out build
	$(BIN)/cello serve --out build --host 127.0.0.1 --port 8000

# The whole suite on the compiled runtime, then again on the pure-Python fallback.
test: $(NATIVE)
	@# Browser tests use Debian's Chromium; without it (or without apt) they skip, saying so.
	@command -v chromium >/dev/null 2>&1 || (DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "chromium unavailable: browser tests will be skipped"
	$(BIN)/python -m mypy cello codegen
	$(MAKE) build-test-artifacts
	$(BIN)/cello --version
	$(BIN)/python -m pytest -q
	CELLO_PURE_PYTHON=1 $(BIN)/cello --version
	CELLO_PURE_PYTHON=1 $(BIN)/python -m pytest -q

# Compile the routes of every test app, as a user's CI would before shipping: the HTTP
# suites then run against these artifacts and against the interpreted router.
build-test-artifacts: $(STAMP)
	$(BIN)/python tests/apputil.py

typecheck: $(STAMP)
	$(BIN)/python -m mypy cello codegen

bench: $(NATIVE)
	$(BIN)/python benchmarks/http_bench.py

clean:
	rm -rf build .pytest_cache .mypy_cache .hypothesis
	find cello -name '*.so' -delete
	rm -f cello/_native.json $(NATIVE)
