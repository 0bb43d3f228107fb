"""One semantics, three executions: the plan interpreter, the generated .py and the
mypyc-compiled module must return exactly the same (code, params) for every request."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.segments import SEGMENT_VALUES
from test_plan import METHODS, paths_for, tables

from cello.codegen.compile import CompileError, check_toolchain, compile_modules
from cello.codegen.generate import generate_source, module_name
from cello.routing import InterpretedRouter, Route, RouteTable, build_plan
from cello.routing.loader import load_compiled

Dispatch = Callable[[str, str], tuple[int, tuple[object, ...]]]


def exec_generated(routes: list[Route], fingerprint: str = "0" * 64) -> Dispatch:
    source = generate_source(routes, fingerprint)
    module = ModuleType(module_name(fingerprint))
    exec(compile(source, f"<{module.__name__}>", "exec"), module.__dict__)
    dispatch: Dispatch = module.dispatch
    return dispatch


def same(expected: tuple[int, tuple[object, ...]], got: tuple[int, tuple[object, ...]]) -> bool:
    # Equal values of equal types: 5 == 5.0 must not pass for an int param.
    return expected == got and [type(v) for v in expected[1]] == [type(v) for v in got[1]]


def assert_same(interpreted: Dispatch, other: Dispatch, probes: list[tuple[str, str]], label: str) -> None:
    for method, path in probes:
        want = interpreted(method, path)
        got = other(method, path)
        assert same(want, got), f"{label}: {method} {path!r}: interpreter {want}, {got}"


# -- random tables (also used where hypothesis cannot drive: the compiled batch) -------------

WORDS = ["a", "b", "users", "items", "5", "1.5", "x", "%C3%A9", "12345678-1234-1234-1234-1234567890ab"]
PARAMS = ["{p}", "{p:int}", "{p:float}", "{p:uuid}", "{p:str}"]
CATCHALLS = ["{*rest}", "{rest:path}", "*rest"]


def random_pattern(rng: random.Random, words: list[str]) -> str:
    texts: list[str] = []
    for i in range(rng.randint(1, 4)):
        if rng.random() < 0.55:
            texts.append(rng.choice(words))
        else:
            texts.append(rng.choice(PARAMS).replace("{p", "{p" + str(i)))
    if rng.random() < 0.2:
        texts.append(rng.choice(CATCHALLS))
    elif rng.random() < 0.15:
        texts.append("")  # trailing slash
    return "/" + "/".join(texts)


def random_table(rng: random.Random, size: int) -> list[Route]:
    # Many distinct words at some levels make fan-outs; many routes make split functions.
    words = WORDS + [f"w{k}" for k in range(rng.choice([0, 5, 20]))]
    table = RouteTable()
    seen: set[tuple[str, str]] = set()
    while len(table) < size:
        pattern = random_pattern(rng, words)
        method = rng.choice(METHODS)
        if (method, pattern) in seen:
            continue
        seen.add((method, pattern))
        try:
            table.add(method, pattern, None, "gen.py:1")
        except ValueError:
            continue  # same shape as an earlier pattern
    return table.routes()


def random_paths(rng: random.Random, routes: list[Route], count: int) -> list[tuple[str, str]]:
    probes: list[tuple[str, str]] = []
    for _ in range(count):
        route = rng.choice(routes)
        segs: list[str] = []
        for seg in route.pattern.segments:
            if seg.kind == 0 and rng.random() < 0.8:
                segs.append(seg.value)
            elif seg.kind == 5:
                segs.extend(rng.choice(SEGMENT_VALUES) for _ in range(rng.randint(0, 3)))
            else:
                segs.append(rng.choice(SEGMENT_VALUES))
        mutation = rng.randint(0, 9)
        if mutation == 1:
            segs.append(rng.choice(SEGMENT_VALUES))
        elif mutation == 2 and segs:
            segs.pop()
        elif mutation == 3:
            segs.insert(rng.randint(0, len(segs)), "")
        elif mutation == 4 and segs:
            i = rng.randrange(len(segs))
            segs[i] = "".join(f"%{b:02X}" for b in segs[i].encode())
        path = "/" + "/".join(segs)
        if rng.random() < 0.02:
            path = path[1:]
        method = rng.choice([route.method, route.method, "HEAD", "PUT", rng.choice(METHODS)])
        probes.append((method, path))
    return probes


# -- interpreter vs generated .py: hypothesis, >= 500 tables ------------------------------


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[Route], list[tuple[str, str]]]:
    if draw(st.integers(0, 9)) == 0:
        # Now and then a big table: fan-outs and subtrees split into functions.
        rng = random.Random(draw(st.integers(0, 2**32)))
        routes = random_table(rng, draw(st.sampled_from([60, 150, 300])))
        return routes, random_paths(rng, routes, 200)
    routes = draw(tables())
    methods = st.sampled_from(METHODS + ["PUT"]) | st.sampled_from([r.method for r in routes])
    return routes, draw(st.lists(st.tuples(methods, paths_for(routes)), min_size=1, max_size=30))


TABLES_CHECKED: list[int] = []


@settings(max_examples=550, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_generated_py_matches_interpreter(case: tuple[list[Route], list[tuple[str, str]]]) -> None:
    routes, probes = case
    interpreted = InterpretedRouter(build_plan(routes)).dispatch
    assert_same(interpreted, exec_generated(routes), probes, "generated .py")
    TABLES_CHECKED.append(len(routes))


def test_enough_tables_were_checked() -> None:
    # Runs after the property test (file order): hypothesis must not have stopped early.
    if TABLES_CHECKED:
        assert len(TABLES_CHECKED) >= 500


# -- interpreter vs compiled: one mypyc batch of >= 50 tables ------------------------------

BATCH = 56
SIZES = [1, 2, 3, 5, 8, 12, 20, 30, 45, 70]
# The batch's mypyc run (in the setup of whichever test comes first) takes 60-80 s on two
# cores, and went past the suite's 120 s in `make test-all` beside a benchmark run.
batch_timeout = pytest.mark.timeout(360)


@pytest.fixture(scope="module")
def compiled_batch(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[list[Route], str, Path, Path]]:
    try:
        check_toolchain()
    except CompileError as exc:
        pytest.skip(str(exc))
    out = tmp_path_factory.mktemp("batch")
    rng = random.Random(20240611)
    batch: list[tuple[list[Route], str, Path]] = []
    for i in range(BATCH):
        size = SIZES[i % len(SIZES)] if i < BATCH - 3 else [120, 250, 400][i - (BATCH - 3)]
        routes = random_table(rng, size)
        fingerprint = uuid.UUID(int=rng.getrandbits(128)).hex * 2
        py = out / f"{module_name(fingerprint)}.py"
        py.write_text(generate_source(routes, fingerprint), "utf-8")
        batch.append((routes, fingerprint, py))
    # -O0: the C optimiser does not change what mypyc generated, and the batch stays quick.
    sos = compile_modules([py for _, _, py in batch], out, opt_level="0")
    return [(routes, fp, py, so) for (routes, fp, py), so in zip(batch, sos)]


@batch_timeout
def test_compiled_batch_matches_interpreter(compiled_batch: list[tuple[list[Route], str, Path, Path]]) -> None:
    assert len(compiled_batch) >= 50
    rng = random.Random(7)
    for routes, fingerprint, py, so in compiled_batch:
        interpreted = InterpretedRouter(build_plan(routes)).dispatch
        compiled = load_compiled(so, fingerprint, len(routes))
        assert compiled.dispatch is not None and compiled.compiled, compiled.reason
        generated = load_compiled(py, fingerprint, len(routes))
        assert generated.dispatch is not None and not generated.compiled, generated.reason
        probes = random_paths(rng, routes, 400)
        assert_same(interpreted, compiled.dispatch, probes, f"compiled {so.name}")
        assert_same(interpreted, generated.dispatch, probes[:100], f"loaded {py.name}")


@batch_timeout
def test_compiled_405_codes_decode_with_the_plan(compiled_batch: list[tuple[list[Route], str, Path, Path]]) -> None:
    routes, fingerprint, _, so = compiled_batch[-1]
    plan = build_plan(routes)
    compiled = load_compiled(so, fingerprint, len(routes)).dispatch
    assert compiled is not None
    seen = 0
    for method, path in random_paths(random.Random(3), routes, 2000):
        code = compiled(method, path)[0]
        if code <= -2:
            seen += 1
            assert plan.allow(code) == InterpretedRouter(plan).allow(code)
            assert all(t.lookup.get(method) is None for t in plan.terminals_of(code))
    assert seen > 0
