"""The WebSocket opening handshake (RFC 6455 4.2): the checks on an upgrade request, the
permessage-deflate negotiation (RFC 7692), and the server's answer (the 101, or a refusal).

Functions of header values only: no transport, no connection state. The HTTP layer has
already checked the request line, ``Upgrade`` and ``Connection`` (it marks such a request
``request.upgrade``); what is left here is WebSocket-specific.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import TYPE_CHECKING, Final

from websockets.exceptions import InvalidHeader, NegotiationError
from websockets.extensions import Extension
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.headers import build_extension, parse_extension

from cello.headers import check_header_value
from cello.response import Response, error_response
from cello.server.http import wire

if TYPE_CHECKING:
    from cello.request import Request

ACCEPT_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handshake:
    """What the server needs from a client's opening handshake, or why it is refused."""

    __slots__ = ("status", "reason", "headers", "key", "extensions")

    def __init__(self) -> None:
        # 0: acceptable; else the status of the refusal.
        self.status = 0
        self.reason = ""
        # Headers for a refusal (426 names the version the server speaks).
        self.headers: dict[str, str] = {}
        self.key = b""
        # Sec-WebSocket-Extensions offers, one per entry.
        self.extensions: list[str] = []


def check_handshake(request: Request) -> Handshake:
    """Check the WebSocket-specific fields of an upgrade request (RFC 6455 4.2.1); the
    request line, Upgrade and Connection were checked by the HTTP layer."""
    result = Handshake()
    headers = request.headers
    version = headers.get("sec-websocket-version")
    if version is None or version.strip() != "13":
        result.status = 426
        result.reason = "Unsupported WebSocket version (this server speaks 13)"
        result.headers = {"Sec-WebSocket-Version": "13", "Upgrade": "websocket"}
        return result
    keys = headers.get_all("sec-websocket-key")
    key = keys[0].strip().encode("latin-1") if len(keys) == 1 else b""
    if not _valid_key(key):
        result.status = 400
        result.reason = "Missing or invalid Sec-WebSocket-Key"
        return result
    result.key = key
    for value in headers.get_all("sec-websocket-extensions"):
        result.extensions.extend(offer.strip() for offer in value.split(",") if offer.strip())
    return result


def refusal(handshake: Handshake | None) -> Response:
    """The answer to a request the application upgraded but that is no WebSocket handshake
    (``None``: not even an upgrade request), or whose handshake ``check_handshake`` refused."""
    if handshake is None:
        return error_response(400, "Bad Request: not a WebSocket handshake")
    response = error_response(handshake.status, handshake.reason)
    for name, value in handshake.headers.items():
        response.set_header(name, value)
    return response


def _valid_key(key: bytes) -> bool:
    if len(key) != 24:
        return False
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        return False


def accept_token(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + ACCEPT_GUID).digest())


def negotiate_deflate(offers: list[str]) -> tuple[Extension | None, str]:
    """The first acceptable permessage-deflate offer: the extension and its response header
    value, or (None, "")."""
    factory = ServerPerMessageDeflateFactory()
    for offer in offers:
        try:
            parsed = parse_extension(offer)
        except InvalidHeader:
            continue
        for name, params in parsed:
            if name != factory.name:
                continue
            try:
                response, extension = factory.process_request_params(params, [])
            except NegotiationError:
                continue
            return extension, build_extension([(name, response)])
    return None, ""


def handshake_response(
    key: bytes, subprotocol: str | None, extensions: str, headers: list[tuple[str, str]], server: bytes
) -> bytes:
    """The 101 response. ``server`` is the ready-made Server line (or b"")."""
    lines = [
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ",
        accept_token(key),
        b"\r\n",
    ]
    if subprotocol:
        check_header_value("sec-websocket-protocol", subprotocol)
        lines.append(b"sec-websocket-protocol: " + subprotocol.encode("latin-1") + b"\r\n")
    if extensions:
        lines.append(b"sec-websocket-extensions: " + extensions.encode("latin-1") + b"\r\n")
    extra: list[tuple[str, str]] = []
    for name, value in headers:
        check_header_value(name, value)
        if name.lower() not in _HANDSHAKE_FIELDS:
            extra.append((name, value))
    if extra:
        lines.append(wire.render_headers(extra))
    lines.append(server)
    lines.append(b"\r\n")
    return b"".join(lines)


# Fields of the 101 the server writes itself (after-hooks may have set some on the marker).
_HANDSHAKE_FIELDS: Final = frozenset(
    {
        "upgrade", "connection", "sec-websocket-accept", "sec-websocket-protocol",
        "sec-websocket-extensions", "content-length", "content-type", "transfer-encoding", "server",
    }
)  # fmt: skip
