"""WebSocket frames byte by byte, and a raw client for tests: nothing hidden.

The one frame encoder of the tests and the benchmarks (benchmarks/ put tests/ on sys.path).

    with RawWebSocket.connect(port, "/echo") as ws:
        ws.send_frame(OP_TEXT, b"hi")            # masked, final
        assert ws.recv_frame() == (True, OP_TEXT, b"hi")

It sends what a real client would not (unmasked frames, bad UTF-8, oversized frames) and
reads exactly what the server answered, including the close frame's code and reason.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import zlib
from collections.abc import Iterator

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


def frame_head(opcode: int, size: int, *, fin: bool = True, mask: bool = True, rsv1: bool = False) -> bytes:
    """A frame's first bytes up to (not including) the masking key, declaring ``size``."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    mask_bit = 0x80 if mask else 0
    if size < 126:
        return bytes((first, mask_bit | size))
    if size < 65536:
        return struct.pack("!BBH", first, mask_bit | 126, size)
    return struct.pack("!BBQ", first, mask_bit | 127, size)


def encode_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, rsv1: bool = False) -> bytes:
    """One frame; masked with a random key unless ``mask=False`` (as a server sends)."""
    head = frame_head(opcode, len(payload), fin=fin, mask=mask, rsv1=rsv1)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + mask_bytes(payload, key)


def mask_bytes(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return b""
    # XOR with the repeated key, as one big-integer operation (fast enough for MiBs).
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    value = int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")
    return value.to_bytes(len(payload), "big")


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode("utf-8")


def deflate(payload: bytes) -> bytes:
    """permessage-deflate body of one message (RFC 7692: raw deflate, sync-flushed, tail cut)."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


def handshake_request(path: str, headers: dict[str, str] | None = None, key: str | None = None) -> bytes:
    fields = {
        "Host": "test",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key or base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    fields.update(headers or {})
    lines = [f"GET {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in fields.items() if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Closed(Exception):
    """The server closed the TCP connection."""


class RawWebSocket:
    def __init__(self, sock: socket.socket, status: int, headers: dict[str, str], body: bytes, rest: bytes) -> None:
        self.sock = sock
        self.status = status
        self.headers = headers
        self.body = body
        self._buffer = rest

    @classmethod
    def connect(
        cls,
        port: int,
        path: str,
        headers: dict[str, str] | None = None,
        *,
        timeout: float = 10.0,
        extra: bytes = b"",
        request: bytes | None = None,
    ) -> RawWebSocket:
        """Open a connection and send the handshake (plus ``extra`` bytes right after it)."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        sock.sendall((request or handshake_request(path, headers)) + extra)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise Closed(f"closed during the handshake: {data!r}")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        body = b""
        if status != 101:
            length = int(fields.get("content-length", "0"))
            while len(rest) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
            body, rest = rest[:length], rest[length:]
        return cls(sock, status, fields, body, rest)

    def __enter__(self) -> RawWebSocket:
        return self

    def __exit__(self, *args: object) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, opcode: int, payload: bytes = b"", **kw: bool) -> None:
        self.sock.sendall(encode_frame(opcode, payload, **kw))

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        self.send_frame(OP_CLOSE, close_payload(code, reason))

    def _read(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed(f"connection closed with {len(self._buffer)} of {count} bytes")
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def recv_frame(self) -> tuple[bool, int, bytes]:
        """(fin, opcode, payload) of the next frame; the server never masks."""
        first, second = self._read(2)
        assert not second & 0x80, "server frames must not be masked"
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", self._read(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", self._read(8))
        return bool(first & 0x80), first & 0x0F, self._read(size)

    def recv_message(self, skip_pings: bool = True) -> tuple[int, bytes]:
        """The next data message (fragments joined) or close frame, as (opcode, payload)."""
        parts: list[bytes] = []
        kind = None
        while True:
            fin, opcode, payload = self.recv_frame()
            if opcode == OP_PING and skip_pings:
                continue
            if opcode in (OP_CLOSE, OP_PING, OP_PONG):
                return opcode, payload
            kind = opcode if kind is None else kind
            parts.append(payload)
            if fin:
                return kind, b"".join(parts)

    def recv_close(self) -> tuple[int, str]:
        """Skip to the close frame; its (code, reason)."""
        while True:
            opcode, payload = self.recv_message()
            if opcode == OP_CLOSE:
                if len(payload) < 2:
                    return 1005, ""
                return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8")

    def at_eof(self, timeout: float = 5.0) -> bool:
        """Whether the server closes the TCP connection (within ``timeout``), input drained."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True


def frames(data: bytes) -> Iterator[tuple[bool, int, bytes]]:
    """Parse unmasked frames from a byte string (for the driver's unit tests)."""
    pos = 0
    while pos < len(data):
        first, second = data[pos], data[pos + 1]
        pos += 2
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", data[pos : pos + 2])
            pos += 2
        elif size == 127:
            (size,) = struct.unpack("!Q", data[pos : pos + 8])
            pos += 8
        yield bool(first & 0x80), first & 0x0F, data[pos : pos + size]
        pos += size
