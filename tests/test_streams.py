"""SSE, streaming responses and static files over the network."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import sse
from support.http import exchange, get
from support.servers import RunningServer

from cello import Request, SseEvent
from cello.staticfiles import FileResponse

APP = "tests/apps/streams.py"


@pytest.fixture
def server(serve_app: Callable[..., RunningServer], variant: tuple[str, str]) -> RunningServer:
    return serve_app(APP, *variant)


@pytest.fixture
def client(server: RunningServer) -> httpx.Client:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client  # type: ignore[misc]


def raw(server: RunningServer, data: bytes, read_until: bytes | None = None, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks += chunk
            if read_until is not None and read_until in chunks:
                break
    return chunks


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


# -- SSE ---------------------------------------------------------------------------------


def test_seed_example_events(client: httpx.Client) -> None:
    response = client.get("/events")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["transfer-encoding"] == "chunked"
    events, _ = sse.parse(response.text)
    assert [(e.type, e.data) for e in events] == [("update", f"tick {i}") for i in range(100)]


def test_each_event_flushed_at_once(client: httpx.Client) -> None:
    started = time.monotonic()
    with client.stream("GET", "/sse/slow") as response:
        first = next(response.iter_text())
        elapsed = time.monotonic() - started
        assert "data: first" in first
    # The second event comes a second later: the first did not wait for it.
    assert elapsed < 0.9


@pytest.mark.native_only(reason="`cello serve` writes the keep-alive comments itself (App's sse_keepalive)")
def test_keepalive_comments_while_idle(client: httpx.Client) -> None:
    with client.stream("GET", "/sse/slow") as response:
        text = "".join(response.iter_text())
    assert ": keep-alive\n\n" in text  # sse_keepalive=0.2 and a 1 s gap
    events, _ = sse.parse(text)
    assert [e.data for e in events] == ["first", "second"]


def test_sync_generator_and_json_data(client: httpx.Client) -> None:
    events, _ = sse.parse(client.get("/sse/sync").text)
    assert [(e.data, e.last_event_id) for e in events] == [('{"n":0}', "0"), ('{"n":1}', "1"), ('{"n":2}', "2")]


def test_collected_stream(client: httpx.Client) -> None:
    events, retry = sse.parse(client.get("/sse/collected").text)
    assert [(e.type, e.data) for e in events] == [
        ("message", "one"),
        ("named", "two"),
        ("message", '{"three":3}'),
        ("ml", "multi\nline"),
    ]
    assert retry == 1500


def test_last_event_id_readable(client: httpx.Client) -> None:
    events, _ = sse.parse(client.get("/sse/last-id", headers={"last-event-id": "41"}).text)
    assert events[0].data == "41"


def test_forged_event_field_ends_stream_without_forging(client: httpx.Client) -> None:
    with client.stream("GET", "/sse/bad") as response:
        try:
            text = "".join(response.iter_text())
        except httpx.HTTPError:
            text = ""
    assert "evil" not in text


def test_disconnect_runs_finally(server: RunningServer, client: httpx.Client) -> None:
    before = client.get("/stats").json()["finally"]
    reply = raw(server, b"GET /sse/forever HTTP/1.1\r\nHost: x\r\n\r\n", read_until=b"event 1")
    assert b"data: event 1" in reply
    assert wait_until(lambda: client.get("/stats").json()["finally"] == before + 1)
    assert wait_until(lambda: client.get("/stats").json()["open"] == 0)


@pytest.mark.native_only(reason="the server's capacity and App's max_connections, which only `cello serve` enforces")
def test_thousand_concurrent_sse_streams(server: RunningServer, client: httpx.Client) -> None:
    async def open_streams() -> tuple[int, int]:
        async def one() -> asyncio.StreamWriter | None:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /sse/forever HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            seen = b""
            while b"data: event 0" not in seen:
                chunk = await reader.read(4096)
                if not chunk:
                    return None
                seen += chunk
            return writer

        writers = await asyncio.gather(*(one() for _ in range(1000)))
        async with httpx.AsyncClient() as stats_client:
            open_now = (await stats_client.get(server.url + "/stats")).json()["open"]
        for writer in writers:
            if writer is not None:
                writer.close()
        return sum(1 for w in writers if w is not None), open_now

    assert asyncio.run(open_streams()) == (1000, 1000)
    # Every client closed with its event loop: every generator finishes.
    assert wait_until(lambda: client.get("/stats").json()["open"] == 0, timeout=20)


# -- streaming responses ---------------------------------------------------------------------


def test_backpressure_with_slow_reader(server: RunningServer, client: httpx.Client) -> None:
    client.post("/stats/reset")
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET /stream/endless HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(1000)
        time.sleep(1.0)  # read nothing for a second
        produced = client.get("/stats").json()["produced"]
    # Without backpressure an endless producer would have queued gigabytes by now.
    assert produced < 32 * 1024 * 1024
    assert wait_until(lambda: client.get("/stats").json()["finally"] >= 1)


def test_returning_async_generator_streams(client: httpx.Client) -> None:
    response = client.get("/stream/gen")
    assert response.text == "ab"
    assert response.headers["transfer-encoding"] == "chunked"


# -- files -----------------------------------------------------------------------------------

DATA = bytes(range(256)) * 40  # tests/apps/streams.py's data.bin


def test_static_file_and_validators(client: httpx.Client) -> None:
    response = client.get("/static/hello.txt")
    assert response.status_code == 200
    assert response.text == "hello static world\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == "19"
    etag = response.headers["etag"]
    modified = response.headers["last-modified"]
    assert client.get("/static/hello.txt", headers={"if-none-match": etag}).status_code == 304
    not_modified = client.get("/static/hello.txt", headers={"if-modified-since": modified})
    assert (not_modified.status_code, not_modified.content) == (304, b"")
    assert client.get("/static/hello.txt", headers={"if-none-match": '"other"'}).status_code == 200


def test_directory_index(client: httpx.Client) -> None:
    assert client.get("/static/").text == "<h1>index</h1>"
    assert client.get("/static/sub/").text == "<h1>sub</h1>"
    assert client.get("/static/sub").status_code == 200


@pytest.mark.parametrize(
    ("header", "status", "body_range", "content_range"),
    [
        ("bytes=0-9", 206, (0, 10), "bytes 0-9/10240"),
        ("bytes=10000-", 206, (10000, 10240), "bytes 10000-10239/10240"),
        ("bytes=-5", 206, (10235, 10240), "bytes 10235-10239/10240"),
        ("bytes=10240-", 416, None, "bytes */10240"),
        ("bytes=0-1,5-6", 200, (0, 10240), None),
        ("bytes=-0", 416, None, "bytes */10240"),
        ("bytes=20-10", 200, (0, 10240), None),  # invalid: ignored (RFC 9110 §14.1.1)
        ("items=0-9", 200, (0, 10240), None),
        # Thousands of digits: past the end (416), or the rest of the file (206).
        ("bytes=" + "9" * 5000 + "-", 416, None, "bytes */10240"),
        ("bytes=0-" + "9" * 5000, 206, (0, 10240), "bytes 0-10239/10240"),
        ("bytes=-" + "9" * 5000, 206, (0, 10240), "bytes 0-10239/10240"),
        ("bytes=" + "0" * 5000 + "1-2", 206, (1, 3), "bytes 1-2/10240"),
    ],
)
def test_ranges(
    client: httpx.Client, header: str, status: int, body_range: tuple[int, int] | None, content_range: str | None
) -> None:
    response = client.get("/static/data.bin", headers={"range": header})
    assert response.status_code == status
    if body_range is not None:
        assert response.content == DATA[body_range[0] : body_range[1]]
    assert response.headers.get("content-range") == content_range


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"range", b"bytes=\xb2-"),  # '\xb2' is str.isdigit() but not int()
        (b"range", b"bytes=\xd9\xa3-"),  # an Arabic-Indic digit, in UTF-8
        (b"if-modified-since", b"Mon, 01 Jan 99999 00:00:00 GMT"),
        (b"if-modified-since", b"Mon, 01 Jan " + b"9" * 30 + b" 00:00:00 GMT"),
        (b"if-modified-since", b"Mon, 01 Jan 2030 00:00:00 +" + b"9" * 30),
        (b"if-modified-since", b"Mon, 01 Jan 2030 99:00:00 GMT"),
    ],
)
def test_invalid_range_or_date_is_ignored(server: RunningServer, name: bytes, value: bytes) -> None:
    """RFC 9110 §14.2, §13.1.3: a Range or If-Modified-Since that does not parse is ignored."""
    (r,), _ = exchange(
        server.url,
        get("/static/data.bin", extra=f"{name.decode()}: {value.decode('latin-1')}\r\nConnection: close\r\n"),
    )
    assert (r.status, r.header("content-range"), r.body) == (200, None, DATA)


# Values a client can send for the validators: anything a head can carry (latin-1, no controls
# but HTAB), and near-misses of the forms the server parses (digits that are not ASCII, numbers
# past every limit, impossible dates and offsets).
_field = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f") | st.just("\t"), max_size=40
)
_number = st.one_of(
    st.just(""),
    st.integers(0, 10**30).map(str),
    st.text(st.sampled_from("0123456789\xb2\xb3\xb9"), min_size=1, max_size=25),
)
_range = st.builds(
    "{}={}-{}{}".format,
    st.sampled_from(["bytes", "Bytes", "bits"]),
    _number,
    _number,
    st.sampled_from(["", " ", ",1-2"]),
)
_date = st.builds(
    "{}, {} {} {} {} {}".format,
    st.sampled_from(["Mon", "Sunday", "Xyz"]),
    st.integers(-1, 40).map(str) | _number,
    st.sampled_from(["Jan", "Dec", "Foo"]),
    st.integers(0, 10**30).map(str) | _number,
    st.sampled_from(["00:00:00", "23:59:59", "99:99:99", "1:2", "1.2.3"]),
    st.sampled_from(["GMT", "UTC", "+0000", "-2359", "+2400", "+" + "9" * 30, "-" + "9" * 30, "EST", ""]),
)
_etag = st.sampled_from(['"x"', 'W/"x"', "*", '"x", W/"y"', ""])
_conditionals = st.fixed_dictionaries(
    {},
    optional={
        "range": _range | _field,
        "if-modified-since": _date | _field,
        "if-none-match": _etag | _field,
        "if-range": _etag | _date | _field,
    },
)


def check_file_answer(status: int, content_range: str | None, body: bytes | None) -> None:
    """What a GET of data.bin may answer, whatever its validators and Range say."""
    assert status in (200, 206, 304, 416), status
    if status == 206:
        assert content_range is not None
        first, last = content_range.removeprefix("bytes ").removesuffix("/10240").split("-")
        assert body is None or body == DATA[int(first) : int(last) + 1]
    elif status == 416:
        assert content_range == "bytes */10240"
    elif status == 200 and body is not None:
        assert body == DATA


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(headers=_conditionals)
def test_conditional_and_range_headers_never_fail(server: RunningServer, headers: dict[str, str]) -> None:
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "Connection: close\r\n"
    (r,), _ = exchange(server.url, get("/static/data.bin", extra=extra))
    check_file_answer(r.status, r.header("content-range"), r.body)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("files") / "data.bin"
    path.write_bytes(DATA)
    return path


@settings(max_examples=1500, deadline=None)
@given(headers=_conditionals)
def test_file_response_answers_any_validators(data_file: Path, headers: dict[str, str]) -> None:
    # The same property in-process, where thousands of cases take a second.
    response = FileResponse(data_file).for_request(Request("GET", "/data.bin", headers=headers))
    check_file_answer(response.status, response.headers.get("content-range"), None)


def test_download_with_filename(client: httpx.Client) -> None:
    response = client.get("/download")
    assert (
        response.headers["content-disposition"]
        == "attachment; filename=\"gr__e.txt\"; filename*=UTF-8''gr%C3%BC%C3%9Fe.txt"
    )


@pytest.mark.parametrize(
    "target",
    [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E/%2E%2E/pyproject.toml",
        "/static/sub/../../secret.txt",
        "/static//etc/passwd",
        "/static/%2Fetc%2Fpasswd",
        "/static/hello.txt%00.html",
        "/static/escape",
        "/static/..%5Csecret.txt",
        "/static/linked/",  # a directory whose index.html is a symlink out of the root
        "/static/linked",
        "/dotted/linked/",
    ],
)
def test_static_never_escapes_root(server: RunningServer, target: str) -> None:
    reply = raw(server, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 404 "), reply[:200]
    assert b"top secret" not in reply and b"root:" not in reply


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/static/.env", 404),
        ("/static/.well-known/security.txt", 404),
        ("/static/env-link.txt", 404),  # a visible name linked to a hidden file
        ("/dotted/.env", 200),
        ("/dotted/.well-known/security.txt", 200),
        ("/dotted/env-link.txt", 200),
    ],
)
def test_hidden_files_only_with_dotfiles(client: httpx.Client, target: str, status: int) -> None:
    response = client.get(target)
    assert response.status_code == status
    if status == 404:
        assert response.json() == {"error": f"Not Found: GET {target}", "status": 404}


def test_file_with_trailing_slash_is_not_found(client: httpx.Client) -> None:
    # Only a directory has a trailing slash (as nginx and Starlette answer).
    assert client.get("/static/hello.txt/").status_code == 404
    assert client.get("/static/hello.txt").status_code == 200


# -- the encoder, against the spec parser ------------------------------------------------------

field_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=20)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40),
            st.one_of(st.none(), field_text.filter(lambda s: s != "")),
            st.one_of(st.none(), field_text),
        ),
        max_size=8,
    )
)
def test_events_round_trip_through_spec_parser(items: list[tuple[str, str | None, str | None]]) -> None:
    wire = "".join(SseEvent(data, event=event, id=id_).to_sse_string() for data, event, id_ in items)
    events, _ = sse.parse(wire)
    expected_ids: list[str] = []
    last = ""
    for _, _, id_ in items:
        if id_ is not None:
            last = id_
        expected_ids.append(last)
    normalised = [data.replace("\r\n", "\n").replace("\r", "\n") for data, _, _ in items]
    assert [(e.type, e.data, e.last_event_id) for e in events] == [
        (event or "message", data, eid) for (_, event, _), data, eid in zip(items, normalised, expected_ids)
    ]


@pytest.mark.parametrize("field", ["event", "id"])
@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\r\nb"])
def test_newlines_in_fields_refused(field: str, value: str) -> None:
    with pytest.raises(ValueError):
        SseEvent("x", **{field: value})  # type: ignore[arg-type]


def test_event_factories_and_attribute_reads() -> None:
    event = SseEvent.data({"a": 1})
    assert event.data == {"a": 1}
    assert SseEvent.with_event("tick", "x").event == "tick"
    assert SseEvent("x", id=3).to_sse_string() == "id: 3\ndata: x\n\n"
