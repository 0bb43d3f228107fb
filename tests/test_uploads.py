"""Multipart uploads over the network: shapes, limits, malformed bodies, cleanup."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.servers import RunningServer

from cello import HTTPException
from cello.forms import DEFAULT_LIMITS, parse_form

APP = "tests/apps/uploads.py"
KiB = 1024
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def server(serve_app: Callable[..., RunningServer], variant: tuple[str, str]) -> RunningServer:
    return serve_app(APP, *variant)


@pytest.fixture
def client(server: RunningServer) -> httpx.Client:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client  # type: ignore[misc]


def clean(client: httpx.Client) -> None:
    """No temporary file is left in the upload temp dir, and none is held open."""
    deadline = time.monotonic() + 5
    state = client.get("/state").json()
    while state != {"tmp": [], "open_deleted_files": 0} and time.monotonic() < deadline:
        time.sleep(0.05)
        state = client.get("/state").json()
    assert state == {"tmp": [], "open_deleted_files": 0}


def multipart(parts: list[tuple[str, str]], boundary: str = "BOUNDARY", end: bool = True) -> bytes:
    """A raw multipart body from (headers, content) pairs, CRLF line ends."""
    body = b""
    for headers, content in parts:
        body += f"--{boundary}\r\n{headers}\r\n\r\n".encode() + content.encode("latin-1") + b"\r\n"
    if end:
        body += f"--{boundary}--\r\n".encode()
    return body


def post_raw(client: httpx.Client, path: str, body: bytes, boundary: str = "BOUNDARY") -> httpx.Response:
    return client.post(path, content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"})


# -- the contract's examples ----------------------------------------------------------------


def test_seed_example(client: httpx.Client) -> None:
    files = [("a", ("one.txt", b"first", "text/plain")), ("b", ("two.bin", b"\x00\x01", "application/octet-stream"))]
    response = client.post("/upload", data={"name": "ada"}, files=files)
    assert response.json() == {"uploaded": 2, "name": "ada"}
    clean(client)


def test_existing_cello_form_style(client: httpx.Client) -> None:
    response = client.post("/avatar", data={"name": "grace"}, files={"avatar": ("me.png", PNG, "image/png")})
    assert response.status_code == 201
    assert response.json() == {"name": "grace", "size": len(PNG), "saved": "avatar.png"}
    response = client.post("/avatar", files={"avatar": ("x.exe", b"MZ", "application/x-msdownload")})
    assert response.status_code == 415
    assert response.json()["status"] == 415
    response = client.post("/avatar", data={"name": "nobody"})
    assert (response.status_code, response.json()["error"]) == (400, "avatar file is required")
    clean(client)


# -- shapes ----------------------------------------------------------------------------------


def test_fields_files_repeated_names(client: httpx.Client) -> None:
    files = [
        ("f", ("a.txt", b"A", "text/plain")),
        ("f", ("b.txt", b"BB", "text/plain")),
        ("g", ("c.txt", b"", "text/plain")),
    ]
    body = client.post("/echo", data={"x": ["1", "2"], "y": "z"}, files=files).json()
    assert body["fields"] == {"x": ["1", "2"], "y": ["z"]}
    assert [(f["field"], f["filename"], f["size"], f["content"]) for f in body["files"]] == [
        ("f", "a.txt", 1, "A"),
        ("f", "b.txt", 2, "BB"),
        ("g", "c.txt", 0, ""),
    ]
    assert body["file_names"] == ["f", "g"]


def test_content_type_guessed_and_detected(client: httpx.Client) -> None:
    body = multipart(
        [
            ('Content-Disposition: form-data; name="p"; filename="photo.jpg"', PNG.decode("latin-1")),
            ('Content-Disposition: form-data; name="q"; filename="notes.txt"', "just text"),
        ]
    )
    files = post_raw(client, "/echo", body).json()["files"]
    assert (files[0]["content_type"], files[0]["detected_type"], files[0]["extension"]) == (
        "image/jpeg",
        "image/png",
        "jpg",
    )
    assert (files[1]["content_type"], files[1]["detected_type"]) == ("text/plain", None)


@pytest.mark.parametrize(
    ("raw_name", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Windows\\system.ini", "system.ini"),
        ("..", "upload"),
        ("a\x01b\x7fc.txt", "abc.txt"),
        (".hidden", "hidden"),
        ("résumé ✓.pdf", "résumé ✓.pdf"),
    ],
)
def test_hostile_and_unicode_filenames(client: httpx.Client, raw_name: str, safe: str) -> None:
    header = f'Content-Disposition: form-data; name="f"; filename="{raw_name}"'
    body = multipart([(header, "x")]).replace(header.encode("latin-1", "replace"), header.encode("utf-8"))
    files = post_raw(client, "/echo", body).json()["files"]
    assert files[0]["filename"] == safe
    if "\\" not in raw_name:  # python-multipart itself drops an IE-style "C:\\dir\\" prefix
        assert files[0]["raw_filename"] == raw_name


def test_sync_threaded_handler(client: httpx.Client) -> None:
    files = [("f", ("a", b"x" * 100, "text/plain")), ("f", ("b", b"y" * 5, "text/plain"))]
    assert client.post("/threaded", data={"k": "v"}, files=files).json() == {"fields": {"k": "v"}, "sizes": [100, 5]}


def test_blueprint_route(client: httpx.Client) -> None:
    response = client.put("/bp/doc", files={"doc": ("d.txt", b"doc!", "text/plain")})
    assert response.json() == {"filename": "d.txt", "size": 4}


def test_spooled_to_disk_and_cleaned(client: httpx.Client) -> None:
    data = bytes(range(256)) * (6 * 1024)  # 1.5 MiB: past the 1 MiB in-memory spool
    assert client.post("/big", files={"f": ("big.bin", data, "application/octet-stream")}).json() == {
        "total": len(data)
    }
    clean(client)


# -- limits at and past their edge ----------------------------------------------------------


@pytest.mark.parametrize(("size", "status"), [(64 * KiB, 200), (64 * KiB + 1, 413)])
def test_file_size_limit(client: httpx.Client, size: int, status: int) -> None:
    response = client.post("/echo", files={"f": ("f.bin", b"x" * size, "application/octet-stream")})
    assert response.status_code == status
    if status == 413:
        assert response.json()["error"] == "Payload Too Large: file exceeds max_file_size (64 KiB)"
    clean(client)


@pytest.mark.parametrize(("size", "status"), [(1024, 200), (1025, 413)])
def test_field_size_limit(client: httpx.Client, size: int, status: int) -> None:
    response = client.post("/echo", files={"f": (None, b"v" * size)})
    assert response.status_code == status
    if status == 413:
        assert response.json()["error"] == "Payload Too Large: form field exceeds max_form_field_size (1 KiB)"


@pytest.mark.parametrize(("count", "status"), [(20, 200), (21, 413)])
def test_part_count_limit(client: httpx.Client, count: int, status: int) -> None:
    body = multipart([(f'Content-Disposition: form-data; name="k{i}"', "v") for i in range(count)])
    response = post_raw(client, "/echo", body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    if status == 413:
        assert response.json()["error"] == "Payload Too Large: form exceeds max_form_parts (20 parts)"


def test_urlencoded_field_flood_is_refused_at_once(client: httpx.Client) -> None:
    # 1.5 million fields (6 MB, within max_body_size): refused by counting, not by parsing them
    # all first, so it costs about what any refused body of that size costs.
    urlencoded = {"content-type": "application/x-www-form-urlencoded"}
    flood = b"a=1&" * 1_500_000

    def timed(headers: dict[str, str]) -> tuple[httpx.Response, float]:
        started = time.perf_counter()
        response = client.post("/echo", content=flood, headers=headers)
        return response, time.perf_counter() - started

    _, baseline = timed({"content-type": "text/plain"})  # refused with 415 without parsing
    response, elapsed = timed(urlencoded)
    assert (response.status_code, response.json()) == (
        413,
        {"error": "Payload Too Large: form exceeds max_form_parts (20 parts)", "status": 413},
    )
    assert elapsed < 3 * baseline + 0.5, f"{elapsed:.2f}s against {baseline:.2f}s for a body refused unread"


form_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)


@settings(max_examples=200, deadline=None)
@given(fields=st.lists(st.tuples(form_text, form_text), max_size=30), limit=st.integers(1, 25))
def test_urlencoded_field_limit_property(fields: list[tuple[str, str]], limit: int) -> None:
    # Up to the limit a body parses to exactly its fields; past it, 413 naming the option.
    limits = dataclasses.replace(DEFAULT_LIMITS, max_form_parts=limit)
    body = urlencode(fields).encode()
    if len(fields) > limit:
        with pytest.raises(HTTPException) as refused:
            parse_form("application/x-www-form-urlencoded", body, limits)
        assert (refused.value.status, refused.value.detail) == (
            413,
            f"Payload Too Large: form exceeds max_form_parts ({limit} parts)",
        )
        return
    form = parse_form("application/x-www-form-urlencoded", body, limits)
    parsed = [(name, value) for name in form.field_names() for value in form.get_all(name)]
    assert sorted(parsed) == sorted(fields)


def test_part_header_size_limit(client: httpx.Client) -> None:
    ok = multipart([('Content-Disposition: form-data; name="a"\r\nX-Pad: ' + "p" * 900, "v")])
    assert post_raw(client, "/echo", ok).status_code == 200
    too_big = multipart([('Content-Disposition: form-data; name="a"\r\nX-Pad: ' + "p" * 1100, "v")])
    response = post_raw(client, "/echo", too_big)
    assert (response.status_code, response.json()["error"]) == (
        413,
        "Payload Too Large: part header exceeds max_part_header_size (1 KiB)",
    )
    headers = "\r\n".join(['Content-Disposition: form-data; name="a"'] + [f"X-{i}: v" for i in range(16)])
    response = post_raw(client, "/echo", multipart([(headers, "v")]))
    assert (response.status_code, response.json()["error"]) == (
        413,
        "Payload Too Large: part exceeds max_part_headers (16 headers)",
    )


# -- malformed bodies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(multipart([('Content-Disposition: form-data; name="a"', "v")], end=False), id="no-final-boundary"),
        pytest.param(b'--BOUNDARY\r\nContent-Disposition: form-data; name="a"\r\n\r\ntrunc', id="truncated-part"),
        pytest.param(multipart([("Content-Type: text/plain", "v")]), id="no-disposition"),
        pytest.param(multipart([("Content-Disposition form-data", "v")]), id="bad-header-line"),
        pytest.param(b"not multipart at all", id="garbage"),
    ],
)
def test_malformed_bodies_are_400(client: httpx.Client, body: bytes) -> None:
    response = post_raw(client, "/echo", body)
    assert response.status_code == 400
    assert response.json()["status"] == 400
    clean(client)


def test_missing_boundary_is_400(client: httpx.Client) -> None:
    response = client.post("/echo", content=b"x", headers={"content-type": "multipart/form-data"})
    assert response.status_code == 400


def test_disconnect_mid_upload_leaves_nothing(server: RunningServer, client: httpx.Client) -> None:
    head = (
        b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\n"
        b"Content-Length: 5000000\r\n\r\n"
    )
    part = b'--B\r\nContent-Disposition: form-data; name="f"; filename="f.bin"\r\n\r\n' + b"z" * (2 * 1024 * 1024)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head + part)
        time.sleep(0.3)
    clean(client)
    assert client.get("/state").status_code == 200


# -- round trip against a reference encoder (httpx) -----------------------------------------

names = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters='"\\%'), min_size=1, max_size=10
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.lists(st.tuples(names, st.text(max_size=50)), max_size=5),
    files=st.lists(st.tuples(names, names, st.binary(max_size=3000)), max_size=4),
)
def test_round_trip_property(
    client: httpx.Client, fields: list[tuple[str, str]], files: list[tuple[str, str, bytes]]
) -> None:
    if not fields and not files:
        return
    data: dict[str, list[str]] = {}
    for key, value in fields:
        data.setdefault(key, []).append(value)
    upload = [(field, (filename, content, "application/octet-stream")) for field, filename, content in files]
    if not upload:
        upload = [("__pad", ("pad.bin", b"", "application/octet-stream"))]
    body = client.post("/echo", data=data, files=upload).json()
    expected_fields = {key: [v.replace("\r\n", "\n").replace("\r", "\n") for v in vals] for key, vals in data.items()}
    got_fields = {
        key: [v.replace("\r\n", "\n").replace("\r", "\n") for v in vals] for key, vals in body["fields"].items()
    }
    assert got_fields == expected_fields
    got = [(f["field"], f["raw_filename"], f["content"].encode("latin-1")) for f in body["files"]]
    assert got == [(field, filename, content) for field, (filename, content, _) in upload]


def peak_rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_200_mb_upload_is_streamed(serve_app: Callable[..., RunningServer]) -> None:
    server = serve_app(APP, "httptools", "interpreted")
    size = 200 * 1024 * 1024
    head = b'--B\r\nContent-Disposition: form-data; name="f"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    tail = b"\r\n--B--\r\n"

    def body():  # type: ignore[no-untyped-def]
        yield head
        block = b"\xab" * (1024 * 1024)
        for _ in range(size // len(block)):
            yield block
        yield tail

    with httpx.Client(base_url=server.url, timeout=120) as client:
        client.get("/state")
        before = peak_rss_kib(server.process.pid)
        response = client.post(
            "/huge",
            content=body(),
            headers={
                "content-type": "multipart/form-data; boundary=B",
                "content-length": str(len(head) + size + len(tail)),
            },
        )
        assert response.json() == {"size": size}
        grown_mib = (peak_rss_kib(server.process.pid) - before) / 1024
        assert grown_mib < 30, f"peak RSS grew by {grown_mib:.1f} MiB"
        clean(client)
