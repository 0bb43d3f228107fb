"""Running blocking iterators without blocking the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import TypeVar, Union

T = TypeVar("T")

_DONE = object()


async def iterate_in_threadpool(iterable: Iterable[T]) -> AsyncIterator[T]:
    """Advance a sync iterator in the default executor, one item per step.

    A sync generator may sleep or block between items (a sync SSE source does); running
    each step in a thread keeps the loop free. Closing this async generator closes the
    sync one, so its ``finally`` runs when the client goes away.
    """
    iterator = iter(iterable)
    loop = asyncio.get_running_loop()
    try:
        while True:
            item = await loop.run_in_executor(None, next, iterator, _DONE)
            if item is _DONE:
                return
            yield item  # type: ignore[misc]
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def _to_bytes(chunk: bytes | str) -> bytes:
    return chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)


# What Response.stream accepts: chunks produced asynchronously, or by a (blocking) iterator.
ChunkSource = Union[AsyncIterable[bytes | str], Iterable[bytes | str]]


async def as_byte_stream(chunks: ChunkSource) -> AsyncIterator[bytes]:
    """The chunks as bytes (str encoded as UTF-8), a sync source advanced in a worker thread."""
    source: AsyncIterable[bytes | str]
    if isinstance(chunks, AsyncIterable):
        source = chunks
    else:
        source = iterate_in_threadpool(chunks)
    try:
        async for chunk in source:
            yield _to_bytes(chunk)
    finally:
        close = getattr(source, "aclose", None)
        if close is not None:
            await close()
