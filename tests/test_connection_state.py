"""The HTTP connection's lifecycle without sockets: ``ConnectionState`` (cello/server/http/state.py)
driven by events and a fake clock, then ``HttpProtocol`` on a fake transport (bytes in, bytes
out, the clock ticked by hand) for pipelining, keep-alive, 100-continue, lingering close and
every timeout.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.fakeapp import Endpoint, FakeApp
from support.variants import PARSERS

from cello.request import Request
from cello.response import Response
from cello.server.config import ServerConfig
from cello.server.http import state as S
from cello.server.http.protocol import HttpProtocol, ServerState
from cello.server.http.state import ConnectionState

HEAD_TIMEOUT = 10.0
BODY_TIMEOUT = 30.0
KEEP_ALIVE = 5.0
ENDPOINT = Endpoint(lambda request: Response(b""))


def new_state(min_body_rate: float = 0.0, high_water: int = 1000) -> ConnectionState:
    return ConnectionState(HEAD_TIMEOUT, BODY_TIMEOUT, KEEP_ALIVE, min_body_rate, high_water)


class Recorder:
    """Calls the state's methods and records every phase change each call makes."""

    def __init__(self, state: ConnectionState, seen: set[tuple[str, int, int]]) -> None:
        self.state = state
        self.seen = seen

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.state, name)

        def call(*args: Any) -> Any:
            reading, writing = self.state.reading, self.state.writing
            result = method(*args)
            if self.state.reading != reading:
                self.seen.add(("reading", reading, self.state.reading))
            if self.state.writing != writing:
                self.seen.add(("writing", writing, self.state.writing))
            return result

        return call


# -- scenarios (each a short life of a connection; the table test runs them all) --------------


def keep_alive_requests(r: Recorder) -> None:
    s = r.state
    assert r.bytes_received(0.0)
    assert (s.reading, s.deadline) == (S.HEAD, HEAD_TIMEOUT)
    r.head_received(False)
    assert (s.reading, s.deadline) == (S.BODY, S.NEVER)
    r.request_ended(True)
    assert s.reading == S.HEAD
    assert not s.must_wait()
    r.dispatched(True)
    assert s.keep_alive_now(False, False)
    r.finished()
    r.became_idle(1.0)
    assert (s.reading, s.writing, s.deadline) == (S.IDLE, S.IDLE, 1.0 + KEEP_ALIVE)
    # The next head comes in the same read that answered the first.
    r.head_received(False)
    assert s.reading == S.BODY
    r.request_ended(False)  # Connection: close
    assert s.reading == S.DONE and s.paused & S.PAUSE_DONE
    r.dispatched(True)
    assert not s.keep_alive_now(False, False)
    r.finished()
    r.close(2.0, True)
    assert (s.writing, s.deadline) == (S.LINGERING, 2.0 + S.LINGER)
    assert r.check_timeout(2.0 + S.LINGER - 0.1, 0) == S.KEEP
    assert not r.bytes_received(2.5)  # input is dropped while lingering
    assert r.check_timeout(2.0 + S.LINGER, 0) == S.LINGER_OVER
    assert s.writing == S.CLOSED


def streamed_response_then_lost(r: Recorder) -> None:
    s = r.state
    r.bytes_received(0.0)
    r.head_received(False)
    r.request_ended(True)
    r.dispatched(True)
    r.streaming(True)
    assert s.writing == S.STREAMING and s.event_stream
    r.stream_ended()
    assert s.writing == S.DISPATCHED
    r.streaming(False)
    r.lost()
    assert (s.reading, s.writing) == (S.DONE, S.CLOSED)


def refused_head(r: Recorder) -> None:
    s = r.state
    r.bytes_received(0.0)
    r.end_input()  # a malformed head: 400
    assert s.reading == S.DONE
    r.close(0.0, True)
    assert s.writing == S.LINGERING


def refused_body(r: Recorder) -> None:
    s = r.state
    r.bytes_received(0.0)
    r.head_received(False)
    r.start_body(0.0)
    r.end_input()  # 413
    assert s.reading == S.DONE


def idle_closed(r: Recorder) -> None:
    s = r.state
    s.deadline = HEAD_TIMEOUT  # a fresh connection
    assert r.check_timeout(HEAD_TIMEOUT, 0) == S.CLOSE  # nothing was sent: closed without a word
    r.close(HEAD_TIMEOUT, False)
    assert (s.reading, s.writing) == (S.DONE, S.CLOSED)


def dispatched_then_lost(r: Recorder) -> None:
    s = r.state
    r.bytes_received(0.0)
    r.head_received(True)
    r.dispatched(True)
    r.handed_over()  # a WebSocket took the transport
    assert s.writing == S.CLOSED


def dispatched_then_body_ended_and_idle(r: Recorder) -> None:
    s = r.state
    r.bytes_received(0.0)
    r.head_received(True)  # a streamed body: the handler runs before the body is in
    r.dispatched(True)
    r.start_body(0.0)
    r.request_ended(True)
    r.finished()
    r.became_idle(1.0)
    assert (s.reading, s.writing) == (S.IDLE, S.IDLE)


SCENARIOS = [
    keep_alive_requests,
    streamed_response_then_lost,
    refused_head,
    refused_body,
    idle_closed,
    dispatched_then_lost,
    dispatched_then_body_ended_and_idle,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_scenario(scenario: Callable[[Recorder], None]) -> None:
    seen: set[tuple[str, int, int]] = set()
    scenario(Recorder(new_state(), seen))
    for side, before, after in seen:
        table = S.READING_TRANSITIONS if side == "reading" else S.WRITING_TRANSITIONS
        assert (before, after) in table, (side, S.PHASE_NAMES[before], S.PHASE_NAMES[after])


def test_every_transition_in_the_tables_is_exercised_and_no_other() -> None:
    seen: set[tuple[str, int, int]] = set()
    for scenario in SCENARIOS:
        scenario(Recorder(new_state(), seen))
    declared = {("reading", a, b) for a, b in S.READING_TRANSITIONS}
    declared |= {("writing", a, b) for a, b in S.WRITING_TRANSITIONS}
    names = S.PHASE_NAMES
    assert {(side, names[a], names[b]) for side, a, b in seen} == {
        (side, names[a], names[b]) for side, a, b in declared
    }


# -- decisions, one at a time ------------------------------------------------------------------


def test_keep_alive_decision() -> None:
    s = new_state()
    s.dispatched(True)
    assert s.keep_alive_now(False, False)
    s.dispatched(True)
    assert not s.keep_alive_now(True, False)  # shutting down
    s.dispatched(True)
    assert not s.keep_alive_now(False, True)  # answered before its body was read
    s.dispatched(False)
    assert not s.keep_alive_now(False, False)  # the request said close (or HTTP/1.0)
    s.dispatched(True)
    s.end_input()
    assert not s.keep_alive_now(False, False)  # nothing more is read: the last response
    s.dispatched(True)
    s.queue(Request("GET", "/"), ENDPOINT, True)
    assert s.keep_alive_now(False, False)  # ...unless requests read before still wait


def test_pipeline_queue_keeps_order_and_waits_behind_the_response() -> None:
    s = new_state()
    assert not s.must_wait()
    s.dispatched(True)
    assert s.must_wait() and s.answering()
    requests = [Request("GET", f"/{i}") for i in range(3)]
    for request in requests:
        s.queue(request, ENDPOINT, True)
    s.queue_refusal(413, "too large")
    assert [q.request for q in s.pipeline] == [*requests, None]
    assert s.pipeline[-1].status == 413
    assert not s.may_feed()  # held input waits while requests do
    s.finished()
    assert s.must_wait()  # the queue is not empty
    s.pipeline.clear()
    assert not s.must_wait() and s.may_feed()


def test_write_pause_makes_requests_wait() -> None:
    s = new_state()
    s.pause(S.PAUSE_WRITE)
    assert s.must_wait() and not s.may_feed()
    assert s.reading_change(0) == S.PAUSE
    s.unpause(S.PAUSE_WRITE)
    assert not s.must_wait()
    assert s.reading_change(0) == S.RESUME


def test_read_pause_reasons_combine() -> None:
    s = new_state(high_water=100)
    assert s.reading_change(100) == S.UNCHANGED
    assert s.reading_change(101) == S.PAUSE and s.paused == S.PAUSE_HELD
    s.pause(S.PAUSE_STREAM)
    assert s.reading_change(0) == S.UNCHANGED  # still paused: the stream
    assert s.paused == S.PAUSE_STREAM
    s.unpause(S.PAUSE_STREAM)
    assert s.reading_change(0) == S.RESUME
    s.end_input()
    assert s.reading_change(0) == S.PAUSE
    s.close(0.0, True)
    assert not s.read_paused  # lingering reads (and drops) input
    assert s.reading_change(10**6) == S.UNCHANGED


def test_head_timeout() -> None:
    s = new_state()
    s.bytes_received(100.0)
    assert s.check_timeout(100.0 + HEAD_TIMEOUT - 0.01, 0) == S.KEEP
    assert s.check_timeout(100.0 + HEAD_TIMEOUT, 0) == S.REFUSE


def test_body_idle_timeout_restarts_with_each_byte() -> None:
    s = new_state()
    s.bytes_received(0.0)
    s.head_received(False)
    s.start_body(0.0)
    assert s.deadline == BODY_TIMEOUT
    s.body_received(10, 20.0)
    assert s.check_timeout(BODY_TIMEOUT + 1, 0) == S.KEEP
    assert s.check_timeout(20.0 + BODY_TIMEOUT, 0) == S.REFUSE


def test_min_body_rate_cuts_off_a_trickle() -> None:
    s = new_state(min_body_rate=100.0)  # 100 bytes/s: each byte earns 10 ms
    s.bytes_received(0.0)
    s.head_received(False)
    s.start_body(0.0)
    now = 0.0
    # A byte every second, each well within the idle timeout: the rate runs out at last.
    while s.check_timeout(now, 0) == S.KEEP:
        now += 1.0
        s.body_received(1, now)
        assert now < 100, "never timed out"
    assert BODY_TIMEOUT < now < BODY_TIMEOUT * 1.1


def test_min_body_rate_spares_a_steady_upload() -> None:
    s = new_state(min_body_rate=100.0)
    s.bytes_received(0.0)
    s.head_received(False)
    s.start_body(0.0)
    for second in range(1, 300):
        s.body_received(200, float(second))  # twice the minimum rate
        assert s.check_timeout(float(second), 0) == S.KEEP


def test_resumed_body_gets_a_fresh_idle_timeout() -> None:
    s = new_state(min_body_rate=100.0)
    s.bytes_received(0.0)
    s.head_received(False)
    s.start_body(0.0)
    s.resume_body(1000.0)  # a handler was behind: not the client's fault
    assert s.deadline == 1000.0 + BODY_TIMEOUT and s.body_due == s.deadline


def test_100_continue_has_no_deadline_until_sent() -> None:
    s = new_state()
    s.bytes_received(0.0)
    s.head_received(True)
    s.dispatched(True)
    s.start_body(0.0)
    s.wait_for_continue()
    assert s.check_timeout(10**6, 0) == S.KEEP


def test_streamed_body_timeout_only_when_the_client_is_to_blame() -> None:
    s = new_state()
    s.bytes_received(0.0)
    s.head_received(True)
    s.dispatched(True)
    s.start_body(0.0)
    assert s.check_timeout(BODY_TIMEOUT, 0) == S.REFUSE
    s.pause(S.PAUSE_STREAM)  # the handler stopped reading
    assert s.check_timeout(BODY_TIMEOUT, 0) == S.KEEP
    s.unpause(S.PAUSE_STREAM)
    assert s.check_timeout(BODY_TIMEOUT, 1) == S.KEEP  # input is held, not missing
    s.request_ended(True)
    assert s.check_timeout(BODY_TIMEOUT, 0) == S.KEEP  # a busy handler is never timed out


def test_keep_alive_timeout_closes_without_a_word() -> None:
    s = new_state()
    s.became_idle(50.0)
    assert s.check_timeout(50.0 + KEEP_ALIVE - 0.01, 0) == S.KEEP
    assert s.check_timeout(50.0 + KEEP_ALIVE, 0) == S.CLOSE


def test_linger_ends() -> None:
    s = new_state()
    s.close(7.0, True)
    assert s.check_timeout(7.0 + S.LINGER - 0.01, 0) == S.KEEP
    assert s.check_timeout(7.0 + S.LINGER, 0) == S.LINGER_OVER
    assert s.check_timeout(10**6, 0) == S.KEEP  # closed: nothing more


def test_shutdown_closes_only_an_idle_connection() -> None:
    s = new_state()
    assert s.idle_for_shutdown()
    s.bytes_received(0.0)
    assert not s.idle_for_shutdown()  # a head has begun


# -- HttpProtocol on a fake transport: bytes in, bytes out, the clock by hand ----------------


class FakeTransport:
    def __init__(self) -> None:
        self.data = bytearray()
        self.writes = 0  # calls to write/writelines: what the kernel would see as send calls
        self.eof = False
        self.closed = False
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        assert not self.eof and not self.closed, "written after write_eof/close: the bytes would be lost"
        self.data += data
        self.writes += 1

    def writelines(self, chunks: Any) -> None:
        assert not self.eof and not self.closed, "written after write_eof/close: the bytes would be lost"
        for chunk in chunks:
            self.data += chunk
        self.writes += 1

    def is_closing(self) -> bool:
        return self.closed

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Connection:
    def __init__(self, http: str, **settings: Any) -> None:
        app = FakeApp()
        for path in ("/a", "/b", "/c"):
            app.route("GET", path)(self.echo)
        app.route("POST", "/upload")(self.echo)
        app.route("GET", "/slow")(self.slow)
        app.route("GET", "/big")(self.big)
        self.loop = asyncio.new_event_loop()
        self.server = ServerState(app, ServerConfig(http=http, announce=False, **settings), self.loop)  # type: ignore[arg-type]
        self.clock = Clock()
        self.server.now = self.clock.now
        self.protocol = HttpProtocol(self.server)
        self.protocol._clock = self.clock  # type: ignore[assignment]
        self.transport = FakeTransport()
        self.protocol.connection_made(self.transport)  # type: ignore[arg-type]

    @staticmethod
    def echo(request: Any) -> Response:
        return Response(b"r:" + request.raw_path.encode() + b":" + request.body_bytes)

    @staticmethod
    def big(request: Any) -> Response:
        return Response(b"r:/big:" + b"x" * 100_000)  # past the size joined with its head

    @staticmethod
    async def slow(request: Any) -> Response:
        await asyncio.sleep(0)
        return Response(b"r:/slow:")

    def tick(self, seconds: float) -> None:
        self.clock.now += seconds
        self.server.now = self.clock.now
        self.protocol.check_timeout(self.clock.now)

    def run(self) -> None:
        for _ in range(5):
            self.loop.run_until_complete(asyncio.sleep(0))

    def send(self, data: bytes) -> None:
        self.protocol.data_received(data)

    def take(self) -> bytes:
        data = bytes(self.transport.data)
        self.transport.data.clear()
        return data

    def close(self) -> None:
        self.loop.close()


@pytest.fixture(params=PARSERS)
def conn(request: pytest.FixtureRequest) -> Iterator[Connection]:
    c = Connection(request.param)
    yield c
    c.close()


def bodies(data: bytes) -> list[bytes]:
    return re.findall(rb"\r\n\r\n(r:[^:]*:[0-9a-z]*)", data)


def get(path: str, extra: str = "", version: str = "1.1") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: t\r\n{extra}\r\n".encode()


def post(body: bytes, extra: str = "") -> bytes:
    return f"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


PIPELINE = [get("/a"), post(b"x1"), get("/b"), post(b"y22"), get("/c")] * 3
EXPECTED = [b"r:/a:", b"r:/upload:x1", b"r:/b:", b"r:/upload:y22", b"r:/c:"] * 3


@pytest.mark.parametrize("http", PARSERS)
@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=len(b"".join(PIPELINE)) - 1), max_size=12))
def test_any_split_of_pipelined_input_gives_the_same_responses_in_order(http: str, cuts: list[int]) -> None:
    data = b"".join(PIPELINE)
    c = Connection(http)
    try:
        start = 0
        for cut in sorted(set(cuts)):
            c.send(data[start:cut])
            start = cut
        c.send(data[start:])
        assert bodies(c.take()) == EXPECTED
        assert c.protocol._st.reading == S.IDLE and not c.transport.closed
    finally:
        c.close()


def test_responses_answered_in_one_read_go_out_in_one_write(conn: Connection) -> None:
    conn.send(get("/a") * 3 + get("/slow") + get("/b") + get("/c"))
    assert bodies(conn.take()) == [b"r:/a:"] * 3
    assert conn.transport.writes == 1  # the three answers of the read, together
    conn.run()  # /slow answers; /b and /c, queued behind it, are answered together
    assert bodies(conn.take()) == [b"r:/slow:", b"r:/b:", b"r:/c:"]
    assert conn.transport.writes == 3


def test_gathered_responses_keep_their_order_with_large_bodies_and_refusals(conn: Connection) -> None:
    conn.send(get("/a") + get("/big") + get("/b") + get("/c") + b"NOT HTTP\r\n\r\n")
    data = conn.take()
    assert [body[:7] for body in bodies(data)] == [b"r:/a:", b"r:/big:", b"r:/b:", b"r:/c:"]
    assert len(bodies(data)[1]) == len(b"r:/big:") + 100_000
    assert data.rindex(b"HTTP/1.1 400") > data.index(b"r:/c:")
    assert conn.transport.eof  # the refusal half-closes, after everything before it went out


def test_gathered_responses_go_out_before_the_connection_closes(conn: Connection) -> None:
    conn.send(get("/a") + get("/b", "Connection: close\r\n"))
    assert bodies(conn.take()) == [b"r:/a:", b"r:/b:"]
    assert conn.transport.eof and conn.transport.writes == 1


def test_pipelined_requests_wait_behind_a_slow_one(conn: Connection) -> None:
    conn.send(get("/slow") + get("/a") + get("/b"))
    assert conn.take() == b""
    assert [q.request.raw_path for q in conn.protocol._st.pipeline] == ["/a", "/b"]  # type: ignore[union-attr]
    conn.run()
    assert bodies(conn.take()) == [b"r:/slow:", b"r:/a:", b"r:/b:"]


def test_a_flood_is_parsed_a_slice_at_a_time(conn: Connection) -> None:
    # Hundreds of tiny requests queued behind a slow one are answered in a loop (this once
    # recursed once per request and overflowed the stack).
    conn.send(get("/slow") + get("/a") * 5000)
    held = len(conn.protocol._held) - conn.protocol._held_at
    assert 0 < len(conn.protocol._st.pipeline) <= 16 * 1024 // len(get("/a")) + 1
    assert held > 0
    conn.run()
    assert len(bodies(conn.take())) == 5001


@pytest.mark.parametrize(
    ("request_bytes", "keep"),
    [
        (get("/a"), True),
        (get("/a", "Connection: close\r\n"), False),
        (get("/a", version="1.0"), False),
        (get("/a", "Connection: keep-alive\r\n", version="1.0"), True),
    ],
)
def test_keep_alive(conn: Connection, request_bytes: bytes, keep: bool) -> None:
    conn.send(request_bytes)
    data = conn.take()
    assert bodies(data) == [b"r:/a:"]
    assert (b"connection: close" in data.lower()) is not keep
    assert conn.transport.eof is not keep
    assert (conn.protocol._st.writing == S.IDLE) is keep


def test_shutdown_closes_after_the_response_in_progress(conn: Connection) -> None:
    conn.send(get("/slow"))
    conn.server.begin_shutdown()
    assert not conn.transport.closed and not conn.transport.eof
    conn.run()
    assert b"connection: close" in conn.take().lower()
    assert conn.protocol._st.writing >= S.LINGERING


def test_shutdown_closes_an_idle_connection_at_once(conn: Connection) -> None:
    conn.send(get("/a"))
    conn.take()
    conn.server.begin_shutdown()
    assert conn.transport.closed


def test_100_continue_is_sent_before_the_body(conn: Connection) -> None:
    head = b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    conn.send(head)
    assert conn.take() == b"HTTP/1.1 100 Continue\r\n\r\n"
    conn.send(b"ok")
    assert bodies(conn.take()) == [b"r:/upload:ok"]


def test_100_continue_of_a_pipelined_request_waits_for_the_responses_before_it(conn: Connection) -> None:
    conn.send(get("/slow") + b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    assert conn.take() == b""
    assert conn.protocol._st.continue_pending
    conn.run()
    data = conn.take()
    assert data.endswith(b"HTTP/1.1 100 Continue\r\n\r\n") and bodies(data) == [b"r:/slow:"]
    conn.send(b"ok")
    assert bodies(conn.take()) == [b"r:/upload:ok"]


def test_refusal_lingers_then_closes(conn: Connection) -> None:
    conn.send(b"NOT HTTP AT ALL\r\n\r\n")
    assert conn.take().startswith(b"HTTP/1.1 400 ")
    assert conn.transport.eof and not conn.transport.closed
    assert conn.protocol._st.writing == S.LINGERING
    conn.send(b"more junk that is dropped")
    assert conn.take() == b""
    conn.tick(S.LINGER - 0.1)
    assert not conn.transport.closed
    conn.tick(0.2)
    assert conn.transport.closed


def test_head_timeout_answers_408(conn: Connection) -> None:
    conn.send(b"GET /a HTTP/1.1\r\nHo")
    conn.tick(ServerConfig().request_head_timeout - 0.5)
    assert conn.take() == b""
    conn.tick(1.0)
    assert conn.take().startswith(b"HTTP/1.1 408 ")


def test_fresh_connection_without_a_request_is_closed_at_the_head_timeout(conn: Connection) -> None:
    conn.tick(ServerConfig().request_head_timeout + 0.1)
    assert conn.transport.closed and conn.take() == b""


def test_body_idle_timeout_answers_408(conn: Connection) -> None:
    conn.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345")
    conn.tick(ServerConfig().body_idle_timeout - 0.5)
    assert conn.take() == b""
    conn.tick(1.0)
    assert conn.take().startswith(b"HTTP/1.1 408 ")


@pytest.mark.parametrize("http", PARSERS)
def test_min_body_rate_answers_408(http: str) -> None:
    c = Connection(http, body_idle_timeout=5.0, min_body_rate=100)
    try:
        c.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(20):
            c.tick(1.0)
            c.send(b"x")  # one byte a second, far below 100 bytes/s
        assert c.take().startswith(b"HTTP/1.1 408 ")
    finally:
        c.close()


def test_connection_idle_after_its_response_closes_at_the_keep_alive_timeout(conn: Connection) -> None:
    conn.send(get("/a"))
    conn.take()
    conn.tick(ServerConfig().keep_alive_timeout - 0.5)
    assert not conn.transport.closed
    conn.tick(1.0)
    assert conn.transport.closed and conn.take() == b""
