"""Response compression: gzip, and brotli when the `brotli` package is installed.

The encoding is negotiated from `Accept-Encoding` q-values; only compressible media types
are touched, never twice, and streaming bodies are compressed chunk by chunk with a sync
flush after each so that every chunk (an SSE event, say) still reaches the client at once.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from cello.middleware.cors import add_vary
from cello.request import Request
from cello.response import Response

try:  # brotli is optional: `pip install brotli`
    import brotli as _brotli

    _HAS_BROTLI = True
except ImportError:  # pragma: no cover - depends on the environment
    _brotli = None
    _HAS_BROTLI = False

_COMPRESSIBLE_PREFIXES = ("text/",)
_COMPRESSIBLE_TYPES = frozenset(
    {
        "application/json",
        "application/javascript",
        "application/xml",
        "application/xhtml+xml",
        "application/rss+xml",
        "application/atom+xml",
        "application/wasm",
        "image/svg+xml",
    }
)


_VERDICTS: dict[str, bool] = {}


def is_compressible(content_type: str | None) -> bool:
    if not content_type:
        return False
    verdict = _VERDICTS.get(content_type)
    if verdict is None:
        verdict = _is_compressible(content_type)
        if len(_VERDICTS) < 512:
            _VERDICTS[content_type] = verdict
    return verdict


def _is_compressible(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return (
        media.startswith(_COMPRESSIBLE_PREFIXES)
        or media in _COMPRESSIBLE_TYPES
        or media.endswith("+json")
        or media.endswith("+xml")
    )


def parse_accept_encoding(header: str) -> dict[str, float]:
    """``gzip;q=0.5, br`` -> {"gzip": 0.5, "br": 1.0}; malformed q-values count as 0."""
    weights: dict[str, float] = {}
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        if not name:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:
                    q = 0.0
        weights[name] = q
    return weights


def choose_encoding(header: str | None, available: tuple[str, ...]) -> str | None:
    if not header:
        return None
    weights = parse_accept_encoding(header)
    wildcard = weights.get("*", 0.0)
    best: str | None = None
    best_q = 0.0
    for encoding in available:  # in server preference order: ties keep the earlier one
        q = weights.get(encoding, wildcard)
        if q > best_q:
            best, best_q = encoding, q
    return best


class _Compressor:
    def __init__(self, encoding: str, level: int) -> None:
        self.encoding = encoding
        self._gzip: Any = None
        self._br: Any = None
        if encoding == "br":
            self._br = _brotli.Compressor(quality=min(level, 11))
        else:
            self._gzip = zlib.compressobj(level, zlib.DEFLATED, 31)

    def chunk(self, data: bytes) -> bytes:
        if self._br is not None:
            return bytes(self._br.process(data)) + bytes(self._br.flush())
        return bytes(self._gzip.compress(data) + self._gzip.flush(zlib.Z_SYNC_FLUSH))

    def finish(self) -> bytes:
        if self._br is not None:
            return bytes(self._br.finish())
        return bytes(self._gzip.flush(zlib.Z_FINISH))

    def whole(self, data: bytes) -> bytes:
        if self._br is not None:
            return bytes(self._br.process(data)) + bytes(self._br.finish())
        return bytes(self._gzip.compress(data) + self._gzip.flush(zlib.Z_FINISH))


@dataclass(frozen=True)
class CompressionPolicy:
    min_size: int = 1024
    level: int = 6
    brotli: bool = True

    @property
    def available(self) -> tuple[str, ...]:
        return ("br", "gzip") if (self.brotli and _HAS_BROTLI) else ("gzip",)

    def after(self, request: Request, response: Response) -> None:
        if response.status < 200 or response.status in (204, 206, 304):
            return
        headers = response.raw_headers()
        # The content type comes first in responses Cello builds: skip the scan then.
        if headers and headers[0][0] == "content-type":
            content_type: str | None = headers[0][1]
        else:
            content_type = response.content_type()
        if not is_compressible(content_type):
            return
        if len(headers) == 1:
            # Only the content type so far (the common case): no Vary, no Content-Encoding.
            headers.append(("vary", "Accept-Encoding"))
        else:
            add_vary(response, "Accept-Encoding")
            if response.find_header("content-encoding") >= 0:
                return  # already encoded (by the handler or an inner middleware): never twice
        if response.idle_filler is not None:
            # An event stream: the server writes keep-alive comments between chunks, which
            # cannot enter a compressed stream. Event streams go uncompressed.
            return
        streaming = response.body_chunks is not None
        if not streaming and len(response.body_bytes) < self.min_size:
            return
        encoding = choose_encoding(request.header(b"accept-encoding"), self.available)
        if encoding is None:
            return
        compressor = _Compressor(encoding, self.level)
        if streaming:
            assert response.body_chunks is not None
            response.body_chunks = _compress_stream(response.body_chunks, compressor)
            if "content-length" in response.headers:
                del response.headers["content-length"]
        else:
            response.body_bytes = compressor.whole(response.body_bytes)
        response.set_header("content-encoding", encoding)
        etag = response.headers.get("etag")
        if etag is not None and not etag.startswith("W/"):
            # The representation changed: a strong validator of the identity body would lie.
            response.set_header("etag", "W/" + etag)


async def _compress_stream(chunks: AsyncIterator[bytes], compressor: _Compressor) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            out = compressor.chunk(chunk)
            if out:
                yield out
        tail = compressor.finish()
        if tail:
            yield tail
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
