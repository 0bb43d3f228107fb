"""Rate limits (cello/ratelimit): over the network on every server variant with the memory
store, on a real Redis shared by workers and instances, and the counting logic on its own.

The test app (tests/apps/ratelimit_app.py) keys most limits by an ``X-Client`` header, so each
test spends budgets of its own on servers the session shares. Windows are aligned on the
clock: a test that must not straddle a window's end first waits for room in the current one.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.redis import RedisServer
from support.servers import RunningServer, start_server

from cello import App, Blueprint, Request, RouteError
from cello.ratelimit import RateLimit, RateLimitStores, parse_rate
from cello.ratelimit.memory import MemoryCounters
from cello.ratelimit.window import Rate, hit
from cello.testing import TestClient

APP = "tests/apps/ratelimit_app.py"
HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after")


def _client() -> dict[str, str]:
    return {"x-client": uuid.uuid4().hex}


def _window_room(period: float, need: float) -> None:
    """Return once at least ``need`` seconds are left in the current window of ``period``."""
    left = period - time.time() % period
    if left < need:
        time.sleep(left + 0.02)


def _window_start(period: float, into: float = 0.05) -> None:
    """Sleep until ``into`` seconds after the start of the next window of ``period``."""
    time.sleep(period - time.time() % period + into)


def _sleep_until_into(period: float, into: float) -> None:
    """Sleep until ``into`` seconds into the current window (which must be ahead)."""
    delay = into - time.time() % period
    assert delay > 0, f"too late in the window for this step ({time.time() % period:.3f}s)"
    time.sleep(delay)


def _limited(response: httpx.Response, limit: int, remaining: int) -> None:
    assert response.headers["ratelimit-limit"] == str(limit), response.headers
    assert response.headers["ratelimit-remaining"] == str(remaining), response.headers


# -- the scenarios, run on each variant (memory store) and on Redis ----------------------------


def _fixed_window(url: str) -> None:
    with httpx.Client(base_url=url) as http:
        me, other = _client(), _client()
        _window_start(2)
        for n in range(3):
            response = http.get("/fixed", headers=me)
            assert response.status_code == 200
            _limited(response, 3, 2 - n)
            assert response.json()["remaining"] == 2 - n  # request.state.rate_limit
            assert 1 <= int(response.headers["ratelimit-reset"]) <= 2
            assert "retry-after" not in response.headers
        refused = http.get("/fixed", headers=me)
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/json")
        assert refused.json() == {"error": "Too Many Requests: more than 3 per 2 seconds", "status": 429}
        _limited(refused, 3, 0)
        retry = int(refused.headers["retry-after"])
        assert 1 <= retry <= 2
        assert 1 <= int(refused.headers["ratelimit-reset"]) <= 2
        # Another client has a budget of its own; a request without a key is not limited.
        _limited(http.get("/fixed", headers=other), 3, 2)
        for _ in range(5):
            free = http.get("/fixed")
            assert free.status_code == 200
            assert not any(name in free.headers for name in HEADERS)
        # Neither is a route without a limit.
        assert not any(name in http.get("/free", headers=me).headers for name in HEADERS)
        time.sleep(retry)
        again = http.get("/fixed", headers=me)
        assert again.status_code == 200
        _limited(again, 3, 2)


def _sliding_window(url: str) -> None:
    """4 per 2 s, sliding: the previous window's 4 weigh 4 * (2 - t) / 2 at t s into the next."""
    with httpx.Client(base_url=url) as http:
        me = _client()
        _window_start(2)
        assert [http.get("/sliding", headers=me).status_code for _ in range(5)] == [200] * 4 + [429]
        # 0.1 s into the next window the old 4 still weigh 3: one more, where a fixed window
        # would allow 4 again.
        _window_start(2, 0.1)
        allowed = http.get("/sliding", headers=me)
        assert allowed.status_code == 200
        _limited(allowed, 4, 0)
        refused = http.get("/sliding", headers=me)
        assert refused.status_code == 429
        # Allowed again once the old weight is below 3: at 0.5 s into the window.
        assert refused.headers["retry-after"] == "1"
        # 1.1 s in, they weigh 1: with the 1 counted here, two more.
        _sleep_until_into(2, 1.1)
        assert [http.get("/sliding", headers=me).status_code for _ in range(3)] == [200, 200, 429]


def _fixed_window_edge(url: str) -> None:
    """The burst a fixed window allows at its edge: 3 at the end of one, 3 at the start of the next."""
    with httpx.Client(base_url=url) as http:
        me = _client()
        _window_start(2, 1.7)
        assert [http.get("/fixed", headers=me).status_code for _ in range(4)] == [200, 200, 200, 429]
        _window_start(2, 0.05)
        assert [http.get("/fixed", headers=me).status_code for _ in range(4)] == [200, 200, 200, 429]


def _scopes_are_independent(url: str) -> None:
    with httpx.Client(base_url=url) as http:
        me = _client()
        _window_room(10, 2)
        # The blueprint's 4 are one budget for its routes.
        codes = [http.get(path, headers=me).status_code for path in ("/api/a", "/api/b", "/api/a", "/api/b")]
        assert codes == [200] * 4
        for path in ("/api/a", "/api/b"):
            refused = http.get(path, headers=me)
            assert refused.status_code == 429
            assert refused.json()["error"] == "Too Many Requests: more than 4 per 10 seconds"
        # A route's own limit is another budget, even for the same client.
        _limited(http.get("/fixed", headers=me), 3, 2)
        # A route with a limit inside a limited blueprint: both count; the headers describe
        # the one closest to refusing.
        you = _client()
        own = http.get("/api/own", headers=you)
        assert own.status_code == 200
        _limited(own, 1, 0)
        refused = http.get("/api/own", headers=you)
        assert refused.status_code == 429
        assert refused.json()["error"] == "Too Many Requests: more than 1 per 10 seconds"
        # The blueprint counted both (it is checked first), so 2 of its 4 are left.
        _limited(http.get("/api/a", headers=you), 4, 1)


def _app_limit(url: str) -> None:
    """The app's limit spans every route, blueprints and 404s included."""
    with httpx.Client(base_url=url) as http:
        me = {"x-app-client": uuid.uuid4().hex}
        _window_room(5, 2)
        _limited(http.get("/free", headers=me), 3, 2)
        missing = http.get("/no/such/page", headers=me)
        assert missing.status_code == 404
        _limited(missing, 3, 1)
        _limited(http.get("/api/a", headers=me), 3, 0)
        refused = http.get("/free", headers=me)
        assert refused.status_code == 429
        assert refused.json() == {"error": "Too Many Requests: more than 3 per 5 seconds", "status": 429}
        assert 1 <= int(refused.headers["retry-after"]) <= 5


def _methods_share_a_route_budget(url: str) -> None:
    with httpx.Client(base_url=url) as http:
        me = _client()
        _window_room(10, 2)
        assert http.get("/form", headers=me).status_code == 200
        assert http.post("/form", headers=me, content=b"x=1").status_code == 200
        assert http.get("/form", headers=me).status_code == 429
        assert http.post("/form", headers=me).status_code == 429


def _error_answers_carry_the_headers(url: str) -> None:
    """An error the handler raises is limited like any answer; an app's own 429 handler keeps
    Retry-After and the RateLimit headers."""
    with httpx.Client(base_url=url) as http:
        me = _client()
        _window_room(10, 2)
        teapot = http.get("/teapot", headers=me)
        assert teapot.status_code == 418
        _limited(teapot, 1, 0)
        refused = http.get("/teapot", headers=me)
        assert refused.status_code == 429
        assert refused.json() == {"custom": True}
        _limited(refused, 1, 0)
        assert 1 <= int(refused.headers["retry-after"]) <= 10


def _default_key_is_the_address(url: str) -> None:
    with httpx.Client(base_url=url) as http:
        _window_start(1)
        first = http.get("/by-address")
        assert first.json() == {"client": "127.0.0.1"}
        _limited(first, 2, 1)
        # The X-Client header means nothing to this limit: same address, same budget.
        _limited(http.get("/by-address", headers=_client()), 2, 0)
        refused = http.get("/by-address", headers=_client())
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"


SCENARIOS = {
    "fixed_window": _fixed_window,
    "sliding_window": _sliding_window,
    "fixed_window_edge": _fixed_window_edge,
    "scopes_are_independent": _scopes_are_independent,
    "app_limit": _app_limit,
    "methods_share_a_route_budget": _methods_share_a_route_budget,
    "error_answers_carry_the_headers": _error_answers_carry_the_headers,
    "default_key_is_the_address": _default_key_is_the_address,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_memory_store(scenario: str, variant: tuple[str, str], serve_app: Callable[..., RunningServer]) -> None:
    server = serve_app(APP, *variant)
    SCENARIOS[scenario](server.url)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_redis_store(scenario: str, redis_server: RedisServer, serve_app: Callable[..., RunningServer]) -> None:
    """The same behaviour from the Lua script as from the memory store."""
    env = {"CELLO_TEST_RATE_LIMIT_STORE": redis_server.url}
    server = serve_app(APP, "httptools", "interpreted", env=env)
    SCENARIOS[scenario](server.url)


# -- Redis: shared by workers and instances, and when it goes away -----------------------------


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own, which it may kill and start again."""
    server = RedisServer().start()
    yield server
    server.stop()


def test_one_budget_across_two_instances_with_two_workers_each(redis_server: RedisServer) -> None:
    env = {"CELLO_TEST_RATE_LIMIT_STORE": redis_server.url}
    servers = [start_server(APP, "httptools", "interpreted", "--workers", "2", env=env) for _ in range(2)]
    try:
        me = _client()
        _window_room(3600, 30)
        allowed: list[httpx.Response] = []
        for n in range(30):
            # A connection per request: the kernel spreads them over each instance's workers.
            response = httpx.get(servers[n % 2].url + "/shared", headers=me)
            assert response.status_code in (200, 429)
            if response.status_code == 200:
                allowed.append(response)
        assert len(allowed) == 10  # "10/hour", whichever process answered
        assert sorted(int(r.headers["ratelimit-remaining"]) for r in allowed) == list(range(10))
        assert len({r.json()["pid"] for r in allowed}) >= 2
        for server in servers:
            assert "memory:// counts in each process" not in server.output()
    finally:
        for server in servers:
            server.stop()


def test_memory_store_with_several_workers_warns_at_start_up() -> None:
    server = start_server(APP, "httptools", "interpreted", "--workers", "2")
    try:
        deadline = time.monotonic() + 10
        while "memory:// counts in each process" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "with --workers 2 a client gets up to 2 times its limit" in server.output()
        assert "rate_limit_store" in server.output()
    finally:
        server.stop()


def test_redis_down_lets_requests_through_and_says_so(own_redis: RedisServer) -> None:
    server = start_server(APP, "h11", "interpreted", env={"CELLO_TEST_RATE_LIMIT_STORE": own_redis.url})
    try:
        me = _client()
        with httpx.Client(base_url=server.url) as http:
            _window_room(10, 5)
            _limited(http.get("/api/a", headers=me), 4, 3)
            own_redis.kill()
            for _ in range(8):  # twice the limit: nothing is counted, nothing refused
                response = http.get("/api/a", headers=me)
                assert response.status_code == 200
                assert not any(name in response.headers for name in HEADERS)
            output = server.output()
            assert f"rate limits: Redis at {own_redis.url} is unreachable" in output
            assert output.count("is unreachable") == 1  # said once, not per request
            own_redis.start()
            time.sleep(1.1)  # past the pause after a failure
            _window_room(10, 2)
            back = http.get("/api/a", headers=me)
            assert back.status_code == 200
            assert "ratelimit-remaining" in back.headers  # a new Redis: counting starts afresh
            assert "limits apply" in server.output()
    finally:
        server.stop()


# -- configuration ----------------------------------------------------------------------------

BAD_LIMITS = ["", "10", "ten/second", "0/second", "-1/second", "10/fortnight", "10/0seconds", "10/minute/hour", "10/"]


@pytest.mark.parametrize("text", BAD_LIMITS)
def test_a_bad_limit_is_refused_where_it_is_declared(text: str) -> None:
    app = App()
    with pytest.raises(ValueError, match=f"rate limit {text!r}"):
        app.enable_rate_limit(text)
    with pytest.raises(ValueError, match=f"rate limit {text!r}"):
        Blueprint("/x").enable_rate_limit(text)
    with pytest.raises(RouteError, match=f"route '/x'.*rate limit {text!r}"):
        app.get("/x", rate_limit=text)(lambda request: "x")


@pytest.mark.parametrize(
    ("text", "amount", "period"),
    [
        ("100/minute", 100, 60),
        ("10/second", 10, 1),
        ("1000/hour", 1000, 3600),
        ("5/10seconds", 5, 10),
        ("5/10 seconds", 5, 10),
        ("2 per day", 2, 86400),
        ("3/2Minutes", 3, 120),
    ],
)
def test_limits_as_written(text: str, amount: int, period: int) -> None:
    rate = parse_rate(text)
    assert (rate.amount, rate.period) == (amount, period)


def test_other_bad_settings() -> None:
    with pytest.raises(ValueError, match="strategy is 'fixed' or 'sliding', not 'leaky'"):
        RateLimit("1/second", strategy="leaky")
    with pytest.raises(ValueError, match="rate limit store 'mongodb://...': unsupported"):
        RateLimit("1/second", store="mongodb://user:secret@db")
    with pytest.raises(ValueError, match="rate limit store 'redis://:\\*\\*\\*@127.0.0.1:6379/zero'"):
        App(rate_limit_store="redis://:hunter2@127.0.0.1:6379/zero")
    with pytest.raises(RouteError, match="option 'rate_limit' does not apply to a websocket route"):
        App().websocket("/ws", rate_limit="1/second")(lambda ws: None)  # type: ignore[call-arg]
    with pytest.raises(RouteError, match="rate_limit takes a string"):
        App().get("/x", rate_limit=10)(lambda request: "x")  # type: ignore[arg-type]


def test_limits_added_after_the_first_request_apply_and_counters_survive_rebuilds() -> None:
    app = App()

    @app.get("/")
    def index(request: Request) -> str:
        return "ok"

    client = TestClient(app)
    assert "ratelimit-limit" not in client.get("/").headers
    app.enable_rate_limit("2/hour", key=lambda request: "everyone")
    assert client.get("/").headers["ratelimit-remaining"] == "1"
    app.debug = True  # rebuilds every endpoint: the memory counters are kept
    assert client.get("/").headers["ratelimit-remaining"] == "0"
    assert client.get("/").status_code == 429


# -- the counting logic on its own --------------------------------------------------------------

times = st.lists(st.floats(min_value=0, max_value=20, allow_nan=False), min_size=1, max_size=60).map(sorted)
rates = st.builds(
    lambda amount, period: Rate(amount, period, f"{amount}/{period}s"), st.integers(1, 5), st.integers(1, 4)
)


def _run(rate: Rate, sliding: bool, moments: list[float]) -> list[tuple[float, bool, float]]:
    """(time, allowed, retry_after) of each request of one client."""
    stored = current = previous = 0
    out = []
    for now in moments:
        got, stored, current, previous = hit(rate, sliding, 1000.0 + now, stored, current, previous)
        assert 0 <= got.remaining <= rate.amount
        assert 0 <= got.reset <= 2 * rate.period
        out.append((now, got.allowed, got.retry_after))
    return out


@settings(max_examples=300, deadline=None)
@given(rates, st.booleans(), times)
def test_no_window_ever_allows_more_than_the_limit(rate: Rate, sliding: bool, moments: list[float]) -> None:
    per_window: dict[int, int] = {}
    for now, allowed, _ in _run(rate, sliding, moments):
        if allowed:
            window = math.floor((1000.0 + now) / rate.period)
            per_window[window] = per_window.get(window, 0) + 1
    assert all(count <= rate.amount for count in per_window.values())


@settings(max_examples=300, deadline=None)
@given(rates, times)
def test_a_fixed_window_refuses_exactly_past_the_limit(rate: Rate, moments: list[float]) -> None:
    per_window: dict[int, int] = {}
    for now, allowed, _ in _run(rate, False, moments):
        window = math.floor((1000.0 + now) / rate.period)
        assert allowed == (per_window.get(window, 0) < rate.amount)
        if allowed:
            per_window[window] = per_window.get(window, 0) + 1


@settings(max_examples=300, deadline=None)
@given(rates, st.booleans(), times)
def test_retry_after_is_when_a_request_is_allowed_again(rate: Rate, sliding: bool, moments: list[float]) -> None:
    """A refused client that waits Retry-After seconds (and sends nothing meanwhile) gets in."""
    stored = current = previous = 0
    for now in moments:
        got, stored, current, previous = hit(rate, sliding, 1000.0 + now, stored, current, previous)
        if not got.allowed:
            later = 1000.0 + now + int(got.retry_after_header())
            assert hit(rate, sliding, later, stored, current, previous)[0].allowed
            # And not before the exact moment (when there is a moment before it to try).
            if got.retry_after > 0.01:
                assert not hit(rate, sliding, 1000.0 + now + got.retry_after * 0.5, stored, current, previous)[
                    0
                ].allowed


@settings(max_examples=200, deadline=None)
@given(rates, st.booleans(), times)
def test_the_whole_budget_is_back_at_reset(rate: Rate, sliding: bool, moments: list[float]) -> None:
    stored = current = previous = 0
    for now in moments:
        got, stored, current, previous = hit(rate, sliding, 1000.0 + now, stored, current, previous)
    after = hit(rate, sliding, 1000.0 + moments[-1] + math.ceil(got.reset), stored, current, previous)[0]
    assert after.allowed and after.remaining == rate.amount - 1


@settings(max_examples=200, deadline=None)
@given(rates, st.booleans(), times)
def test_the_memory_store_counts_as_the_model_does(rate: Rate, sliding: bool, moments: list[float]) -> None:
    """MemoryCounters inlines window.hit for speed: the same outcomes, request by request."""
    counters = MemoryCounters(rate, sliding)
    stored = current = previous = 0
    for now in moments:
        model, stored, current, previous = hit(rate, sliding, 1000.0 + now, stored, current, previous)
        got = counters.hit("client", 1000.0 + now)
        assert (got.allowed, got.remaining, got.reset, got.retry_after) == (
            model.allowed,
            model.remaining,
            model.reset,
            model.retry_after,
        )


def test_the_memory_store_forgets_idle_clients_and_stays_bounded(caplog: pytest.LogCaptureFixture) -> None:
    counters = MemoryCounters(parse_rate("1/second"), sliding=False, max_keys=5000)
    for n in range(3000):
        counters.hit(f"old-{n}", 100.0)
    # Two windows later the old keys count nothing: the next sweep drops them.
    for n in range(3000):
        counters.hit(f"new-{n}", 102.5)
    assert len(counters) <= 3000 + 1
    with caplog.at_level(logging.WARNING, "cello.ratelimit"):
        for n in range(20000):
            counters.hit(f"flood-{n}", 103.0)
    assert len(counters) <= 5000
    assert "forgetting the oldest" in caplog.text
    assert caplog.text.count("forgetting the oldest") == 1
    # The newest are still counted: the client just seen is refused a second request.
    assert not counters.hit("flood-19999", 103.1).allowed


def test_stores_are_made_once_per_url_and_report_whether_they_are_shared() -> None:
    stores = RateLimitStores("memory://")
    limit = RateLimit("1/second")
    assert stores.counters("a", limit) is stores.counters("a", limit)
    assert stores.counters("a", limit) is not stores.counters("b", limit)
    assert stores.process_local
    assert not RateLimitStores("redis://127.0.0.1:1/0").process_local
