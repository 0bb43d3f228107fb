# `make demo` and `make test` each set up .venv from nothing, then run. The demo installs
# Cello and what `cello build` compiles with (the `build` extra); the tests add their tools.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
NATIVE := $(VENV)/.native
# The modules setup.py compiles with mypyc, read from cello/_native.py's COMPILED (it imports
# nothing from cello), so that editing any of them rebuilds the compiled runtime.
NATIVE_SOURCES := $(shell $(PYTHON) -c "import sys; sys.path.insert(0, 'cello'); from _native import COMPILED; print(' '.join(m.replace('.', '/') + '.py' for m in COMPILED))") cello/_native.py setup.py

.PHONY: demo test test-all venv native build-test-artifacts typecheck lint bench clean

# Installed pure first (quick); `native` then compiles the runtime with the venv's own mypyc.
$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	CELLO_COMPILE=0 $(BIN)/python -m pip install --quiet -e '.[build]'
	touch $(STAMP)

# The test tools, on top. Reinstalling the package this way leaves it pure Python, so the
# compiled runtime is redone after it (the stamp is a prerequisite of $(NATIVE) once it exists).
$(TEST_STAMP): $(STAMP)
	CELLO_COMPILE=0 $(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

# The compiled runtime, rebuilt whenever a compiled module's source changes (a stale one
# would not be used anyway: cello/_native.py falls back to the sources, with a warning).
$(NATIVE): $(STAMP) $(NATIVE_SOURCES) $(wildcard $(TEST_STAMP))
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(NATIVE)

venv: $(NATIVE)

native: $(NATIVE)

demo: $(NATIVE)
	$(BIN)/cello build examples/hello.py --out build
	$(BIN)/cello serve --out build --host 127.0.0.1 --port 8000

# The whole suite on the compiled runtime, then again on the pure-Python fallback. `native`
# runs in a second make, which sees the test stamp just written (after `make demo`, say).
test: $(TEST_STAMP)
	$(MAKE) --no-print-directory native
	@# Browser tests use Debian's Chromium; without it (or without apt) they skip, saying so.
	@command -v chromium >/dev/null 2>&1 || (DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "chromium unavailable: browser tests will be skipped"
	@# The channel tests need a real Redis (Debian's); the tests start and stop their own servers.
	@command -v redis-server >/dev/null 2>&1 || (DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null)
	@# The TechEmpower app's tests need a real PostgreSQL (Debian's); they start a throwaway cluster.
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || (DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-contrib >/dev/null)
	$(BIN)/python -m mypy cello codegen
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) build-test-artifacts
	$(BIN)/cello --version
	$(BIN)/python -m pytest -q
	CELLO_PURE_PYTHON=1 $(BIN)/cello --version
	CELLO_PURE_PYTHON=1 $(BIN)/python -m pytest -q

# The suite on every supported Python, each in its own .venv-3.X, with its own compiled test
# artifacts (build/tests-3.X) and mypy cache. Interpreters: pyenv's, else python3.X on PATH.
# Every version runs even when one fails; the summary says which failed and how long each took.
PYTHONS := 3.10 3.11 3.12 3.13
# The browser tests drive Chromium, not the interpreter: one Python runs them.
BROWSER_PYTHON := 3.11

test-all:
	@mkdir -p build && rm -f build/test-all.times
	@failed=""; for v in $(PYTHONS); do $(MAKE) --no-print-directory test-py$$v || failed="$$failed $$v"; done; \
	cat build/test-all.times; test -z "$$failed" || { echo "test-all failed on:$$failed"; exit 1; }

test-py%:
	@mkdir -p build; py=$$(ls -d $(HOME)/.pyenv/versions/$*.*/bin/python 2>/dev/null | sort -V | tail -n 1); \
	test -n "$$py" || py=$$(command -v python$* || true); \
	test -n "$$py" || { echo "test-all: no Python $* (pyenv install $*, or put python$* on PATH)" >&2; \
		echo "Python $*: MISSING" >> build/test-all.times; exit 1; }; \
	echo "== Python $* ($$py)"; start=$$(date +%s); venv=.venv-$*; \
	run() { CELLO_TEST_BUILD=build/tests-$* "$$@"; }; \
	{ test -x $$venv/bin/python || $$py -m venv $$venv; } && \
	{ test $$venv/.installed -nt pyproject.toml || { $$venv/bin/python -m pip install --quiet --upgrade pip && \
		CELLO_COMPILE=0 $$venv/bin/python -m pip install --quiet -e '.[test]' && touch $$venv/.installed; }; } && \
	{ test $$venv/.native -nt $$(ls -t $(NATIVE_SOURCES) | head -n 1) || { \
		$$venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e . && touch $$venv/.native; }; } && \
	$$venv/bin/cello --version && \
	$$venv/bin/python -m mypy --cache-dir .mypy_cache/py$* cello codegen && \
	run $$venv/bin/python tests/support/artifacts.py && \
	run $$venv/bin/python -m pytest -q -p no:cacheprovider $(if $(filter $(BROWSER_PYTHON),$*),,--ignore tests/test_browser.py); \
	status=$$?; echo "Python $*: $$( [ $$status = 0 ] && echo passed || echo FAILED ) in $$(( $$(date +%s) - start )) s" >> build/test-all.times; \
	exit $$status

# Compile the routes of every test app, as a user's CI would before shipping: the HTTP
# suites then run against these artifacts and against the interpreted router.
build-test-artifacts: $(TEST_STAMP)
	$(BIN)/python tests/support/artifacts.py

typecheck: $(STAMP)
	$(BIN)/python -m mypy cello codegen

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(TEST_STAMP)
	$(MAKE) --no-print-directory native
	$(BIN)/python benchmarks/http_bench.py

clean:
	rm -rf build .pytest_cache .mypy_cache .hypothesis
	find cello -name '*.so' -delete
	rm -f cello/_native.json $(NATIVE)
