"""Body and form limits answer alike wherever an app runs: `cello serve` on both parsers,
uvicorn and hypercorn (through cello.asgi), and the in-process TestClient.

Each case goes as raw bytes to the servers (so a declared length can come without its body,
and a chunked body without its end: the answer must not wait for more) and through httpx to
the TestClient. Every variant must give the same status and the same JSON body.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec
from typing import Any

import httpx
import pytest
from support.artifacts import ROOT
from support.http import Reader, connect
from support.servers import RunningServer
from support.variants import ASGI_SERVERS, PARSERS
from test_uploads import multipart

from cello.testing import TestClient

APP = "tests/apps/limits.py"
KiB = 1024


def _variant(name: str) -> Any:
    if name in ASGI_SERVERS:
        missing = find_spec(name) is None
        return pytest.param(name, marks=pytest.mark.skipif(missing, reason=f"{name} is in the test extra"))
    return name


VARIANTS = [_variant(name) for name in (*PARSERS, *ASGI_SERVERS, "testclient")]


@dataclass
class Case:
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    # Sent with Transfer-Encoding: chunked; to a server without the last chunk if open_ended
    # (the answer must come as soon as the body is past the limit).
    chunks: list[bytes] | None = None
    open_ended: bool = False
    # A Content-Length sent without its body.
    declared: int | None = None

    def raw(self) -> bytes:
        head = f"POST {self.path} HTTP/1.1\r\nHost: test\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in self.headers.items())
        if self.chunks is not None:
            body = b"".join(b"%x\r\n%b\r\n" % (len(chunk), chunk) for chunk in self.chunks)
            if not self.open_ended:
                body += b"0\r\n\r\n"
            return f"{head}Transfer-Encoding: chunked\r\n\r\n".encode() + body
        if self.declared is not None:
            return f"{head}Content-Length: {self.declared}\r\n\r\n".encode()
        return f"{head}Content-Length: {len(self.body)}\r\n\r\n".encode() + self.body

    def send(self, client: httpx.Client) -> httpx.Response:
        if self.chunks is not None:
            return client.post(self.path, headers=self.headers, content=iter(self.chunks))
        if self.declared is not None:
            return client.post(self.path, headers={**self.headers, "content-length": str(self.declared)})
        return client.post(self.path, headers=self.headers, content=self.body)


def form_data(boundary: str = "B") -> dict[str, str]:
    return {"content-type": f"multipart/form-data; boundary={boundary}"}


def files(*sizes: int, boundary: str = "B") -> bytes:
    parts = [
        (f'Content-Disposition: form-data; name="f{i}"; filename="f{i}.bin"', "x" * size)
        for i, size in enumerate(sizes)
    ]
    return multipart([*parts, ('Content-Disposition: form-data; name="k"', "v")], boundary)


def pieces(data: bytes, size: int = KiB) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


URLENCODED = {"content-type": "application/x-www-form-urlencoded"}


def too_large(message: str) -> tuple[int, dict[str, Any]]:
    return 413, {"error": f"Payload Too Large: {message}", "status": 413}


BODY = too_large("body exceeds max_body_size (1 KiB)")
UPLOAD = too_large("body exceeds max_file_size + max_body_size (5 KiB)")
LONG_BOUNDARY = (
    400,
    {"error": "Malformed multipart body: boundary longer than 70 characters (RFC 2046)", "status": 400},
)

CASES: dict[str, tuple[Case, tuple[int, Any]]] = {
    # max_body_size: the declared length, a body growing past it, buffered or streamed.
    "declared": (Case("/echo", declared=2 * KiB), BODY),
    "declared-stream": (Case("/stream", declared=2 * KiB), BODY),
    "chunked": (Case("/echo", chunks=[b"x" * 512] * 3, open_ended=True), BODY),
    "chunked-stream": (Case("/stream", chunks=[b"x" * 512] * 3, open_ended=True), BODY),
    "at-limit": (Case("/echo", body=b"x" * KiB), (200, {"size": KiB})),
    "at-limit-stream": (Case("/stream", chunks=[b"x" * 512] * 2), (200, {"size": KiB})),
    # An upload's body limit follows max_file_size: one 4 KiB file passes a 1 KiB max_body_size,
    # and request.files() works in a sync handler as it does awaited.
    "file-at-limit": (
        Case("/upload", form_data(), files(4 * KiB)),
        (200, {"files": [["f0", 4 * KiB]], "fields": {"k": "v"}}),
    ),
    "file-at-limit-await": (
        Case("/upload-async", form_data(), files(4 * KiB)),
        (200, {"files": [["f0", 4 * KiB]], "fields": {"k": "v"}}),
    ),
    "file-past-limit": (
        Case("/upload", form_data(), files(4 * KiB + 1)),
        too_large("file exceeds max_file_size (4 KiB)"),
    ),
    "upload-declared": (Case("/upload", form_data(), files(2 * KiB, 2 * KiB, 2 * KiB)), UPLOAD),
    "upload-chunked": (
        Case("/upload", form_data(), chunks=pieces(files(2 * KiB, 2 * KiB, 2 * KiB)), open_ended=True),
        UPLOAD,
    ),
    # A route's own max_body_size caps the whole upload.
    "upload-capped": (
        Case("/upload-capped", form_data(), files(3 * KiB)),
        too_large("body exceeds max_body_size (2 KiB)"),
    ),
    # max_form_parts counts urlencoded fields too.
    "fields-at-limit": (
        Case("/upload", URLENCODED, b"&".join([b"a=1"] * 10)),
        (200, {"files": [], "fields": {"a": "1"}}),
    ),
    "fields-past-limit": (
        Case("/upload", URLENCODED, b"&".join([b"a=1"] * 11)),
        too_large("form exceeds max_form_parts (10 parts)"),
    ),
    "route-fields-past-limit": (
        Case("/few-fields", URLENCODED, b"a=1&b=2&c=3"),
        too_large("form exceeds max_form_parts (2 parts)"),
    ),
    # RFC 2046 boundaries: 70 characters at most.
    "boundary-70": (
        Case("/upload", form_data("b" * 70), files(1, boundary="b" * 70)),
        (200, {"files": [["f0", 1]], "fields": {"k": "v"}}),
    ),
    "boundary-71": (Case("/upload", form_data("b" * 71), files(1, boundary="b" * 71)), LONG_BOUNDARY),
    "boundary-300": (Case("/upload", form_data("b" * 300), files(1, boundary="b" * 300)), LONG_BOUNDARY),
}


def _load_app() -> Any:
    spec = importlib.util.spec_from_file_location("limits_app", ROOT / APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


@pytest.fixture(scope="module")
def test_client() -> Iterator[TestClient]:
    with TestClient(_load_app()) as client:
        yield client


@pytest.fixture(params=VARIANTS)
def answer(
    request: pytest.FixtureRequest, serve_app: Callable[..., RunningServer]
) -> Callable[[Case], tuple[int, Any]]:
    """Sends a case to the variant under test and gives back its (status, JSON body)."""
    if request.param == "testclient":
        client: TestClient = request.getfixturevalue("test_client")

        def in_process(case: Case) -> tuple[int, Any]:
            response = case.send(client)
            return response.status_code, response.json()

        return in_process
    server = serve_app(APP, request.param)

    def over_socket(case: Case) -> tuple[int, Any]:
        with connect(server.url) as sock:
            sock.sendall(case.raw())
            response = Reader(sock).response()
        return response.status, response.json()

    return over_socket


@pytest.mark.parametrize("name", list(CASES))
def test_same_answer_everywhere(answer: Callable[[Case], tuple[int, Any]], name: str) -> None:
    case, expected = CASES[name]
    assert answer(case) == expected
