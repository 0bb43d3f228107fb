"""The opening handshake alone (cello/server/websocket/handshake.py): the bytes of an upgrade
request in, the server's decision out (the 101's bytes, or the refusal), without a socket."""

from __future__ import annotations

import json

import pytest

from cello.request import WireRequest
from cello.response import Response
from cello.server.websocket.handshake import (
    accept_token,
    check_handshake,
    handshake_response,
    negotiate_deflate,
    refusal,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 1.3's example


def upgrade_request(*fields: str) -> bytes:
    lines = ["GET /chat HTTP/1.1", "Host: server.example.com", "Upgrade: websocket", "Connection: Upgrade", *fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def decide(
    raw: bytes, subprotocol: str | None = None, headers: list[tuple[str, str]] | None = None
) -> bytes | Response:
    """What the server answers to this request once the application accepts it: the 101's bytes,
    or the refusal (the HTTP layer has checked the request line, Upgrade and Connection)."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    fields = [line.split(b":", 1) for line in head[1:]]
    request = WireRequest(
        "GET", "/chat", "", [(name, value.strip()) for name, value in fields], None, "http", "1.1", True
    )
    handshake = check_handshake(request)
    if handshake.status:
        return refusal(handshake)
    _, extensions = negotiate_deflate(handshake.extensions)
    return handshake_response(handshake.key, subprotocol, extensions, headers or [], b"")


def test_rfc_example_is_accepted() -> None:
    answer = decide(upgrade_request(f"Sec-WebSocket-Key: {KEY}", "Sec-WebSocket-Version: 13", "Origin: http://a"))
    assert answer == (
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
        b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )
    assert accept_token(KEY.encode()) == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("version", [None, "8", "13, 8", ""])
def test_other_versions_get_426_naming_13(version: str | None) -> None:
    fields = [f"Sec-WebSocket-Key: {KEY}"] + ([f"Sec-WebSocket-Version: {version}"] if version is not None else [])
    answer = decide(upgrade_request(*fields))
    assert isinstance(answer, Response) and answer.status == 426
    assert answer.headers["sec-websocket-version"] == "13" and answer.headers["upgrade"] == "websocket"
    assert json.loads(answer.body())["error"] == "Unsupported WebSocket version (this server speaks 13)"


@pytest.mark.parametrize(
    "keys",
    [
        [],
        ["bm90IDE2IGJ5dGVz"],  # base64 of 12 bytes
        ["dGhlIHNhbXBsZSBub25jZQ"],  # 22 characters
        ["dGhlIHNhbXBsZSBub25jZQ=!"],  # not base64
        [KEY, KEY],  # two keys
    ],
)
def test_missing_or_invalid_key_gets_400(keys: list[str]) -> None:
    answer = decide(upgrade_request("Sec-WebSocket-Version: 13", *(f"Sec-WebSocket-Key: {key}" for key in keys)))
    assert isinstance(answer, Response) and answer.status == 400
    assert json.loads(answer.body()) == {"error": "Missing or invalid Sec-WebSocket-Key", "status": 400}


def test_not_a_handshake_gets_400() -> None:
    answer = refusal(None)
    assert answer.status == 400
    assert json.loads(answer.body()) == {"error": "Bad Request: not a WebSocket handshake", "status": 400}


def test_deflate_offer_is_answered() -> None:
    answer = decide(
        upgrade_request(
            f"Sec-WebSocket-Key: {KEY}",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Extensions: x-webkit-deflate-frame, permessage-deflate; client_max_window_bits",
        )
    )
    assert isinstance(answer, bytes)
    assert b"\r\nsec-websocket-extensions: permessage-deflate\r\n" in answer


def test_subprotocol_and_extra_headers() -> None:
    request = upgrade_request(f"Sec-WebSocket-Key: {KEY}", "Sec-WebSocket-Version: 13")
    answer = decide(request, "chat", [("X-Extra", "1"), ("Content-Length", "0"), ("Upgrade", "other")])
    assert isinstance(answer, bytes)
    lines = answer.split(b"\r\n")
    assert b"sec-websocket-protocol: chat" in lines and b"X-Extra: 1" in lines
    # The fields the server writes itself are not taken from the application's headers.
    assert b"Content-Length: 0" not in lines and b"Upgrade: other" not in lines
    with pytest.raises(ValueError):
        decide(request, "chat\r\nx: y")
