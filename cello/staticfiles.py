"""Files from disk: validators, conditional requests, single ranges, and static directories.

A file is streamed in chunks, never read whole. ``FileResponse.for_request`` applies the
request's ``If-None-Match`` / ``If-Modified-Since`` (304) and ``Range`` (206/416) before
the response leaves the handler chain.
"""

from __future__ import annotations

import email.utils
import mimetypes
import os
import re
import stat as stat_module
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from cello.errors import HTTPException
from cello.response import BINARY, Deferred, Renderer, Response, register_builder

if TYPE_CHECKING:
    from cello.request import Request

CHUNK = 256 * 1024


def http_date(timestamp: float) -> str:
    return email.utils.format_datetime(datetime.fromtimestamp(timestamp, timezone.utc), usegmt=True)


def parse_http_date(text: str) -> float | None:
    """Seconds since the epoch of an HTTP-date (any of RFC 9110's three forms), or None for
    anything else: an absurd year or offset is not a date, not an error."""
    try:
        parsed = email.utils.parsedate_to_datetime(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    except (ValueError, OverflowError):
        return None


def _attachment(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


async def read_range(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        f.seek(start)
        remaining = length
        while remaining > 0:
            chunk = f.read(min(CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk


class FileResponse(Deferred):
    """A file streamed from disk, with ``Content-Length``, ``Last-Modified`` and ``ETag``."""

    __slots__ = ("path", "size", "mtime", "etag")

    def __init__(
        self,
        path: str | os.PathLike[str],
        filename: str | None = None,
        content_type: str | None = None,
        status: int = 200,
    ) -> None:
        file_path = Path(path)
        info = file_path.stat()
        if not stat_module.S_ISREG(info.st_mode):
            raise HTTPException(404, "Not Found")
        guessed = mimetypes.guess_type(filename or file_path.name)[0]
        kind = content_type or guessed or BINARY
        if kind.startswith("text/") and "charset" not in kind:
            kind += "; charset=utf-8"
        super().__init__(None, status, None, kind)
        self.path = file_path
        self.size = info.st_size
        self.mtime = info.st_mtime
        self.etag = f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
        self._headers.append(("content-length", str(self.size)))
        self._headers.append(("last-modified", http_date(self.mtime)))
        self._headers.append(("etag", self.etag))
        self._headers.append(("accept-ranges", "bytes"))
        if filename is not None:
            self.set_header("content-disposition", _attachment(filename))
        self.body_chunks = read_range(file_path, 0, self.size)

    def finish(self, request: Request, renderer: Renderer | None) -> Response:
        return self.for_request(request)

    def for_request(self, request: Request) -> Response:
        """Answer 304, 206 or 416 where the request's validators and Range call for it."""
        if self.status != 200 or request.method not in ("GET", "HEAD"):
            return self
        if self._not_modified(request):
            return self._replace(304, None)
        range_header = request.headers.get("range")
        if range_header is None or not self._if_range_holds(request):
            return self
        parsed = _parse_range(range_header, self.size)
        if parsed is None:
            return self  # not a single byte range we understand: send the whole file
        if parsed == (-1, -1):
            response = self._replace(416, None)
            response.set_header("content-range", f"bytes */{self.size}")
            response.set_header("content-length", "0")
            return response
        start, end = parsed
        response = self._replace(206, read_range(self.path, start, end - start + 1))
        response.set_header("content-range", f"bytes {start}-{end}/{self.size}")
        response.set_header("content-length", str(end - start + 1))
        return response

    def _not_modified(self, request: Request) -> bool:
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None:
            tags = [tag.strip() for tag in if_none_match.split(",")]
            weak_self = self.etag
            return "*" in tags or any(tag.removeprefix("W/") == weak_self for tag in tags)
        since = request.headers.get("if-modified-since")
        if since is not None:
            timestamp = parse_http_date(since)
            # Not a date: ignored, as RFC 9110 §13.1.3 asks.
            return timestamp is not None and int(self.mtime) <= timestamp
        return False

    def _if_range_holds(self, request: Request) -> bool:
        if_range = request.headers.get("if-range")
        if if_range is None:
            return True
        if if_range.startswith('"') or if_range.startswith("W/"):
            return if_range == self.etag
        return if_range == http_date(self.mtime)

    def _replace(self, status: int, chunks: AsyncIterator[bytes] | None) -> Response:
        # The whole-file iterator was never started, so it holds no open file: drop it.
        response = Response(None, status)
        response._headers = [
            (name, value) for name, value in self._headers if name not in ("content-length", "content-type")
        ]
        if status == 206:
            response._headers.insert(0, ("content-type", self.content_type() or BINARY))
        response.body_chunks = chunks
        return response


# RFC 9110 §14.1.2: one byte range (several are answered with the whole file). ASCII digits
# only: str.isdigit() would take '²' or '٣', which int() refuses or reads as another number.
_BYTE_RANGE = re.compile(r"bytes[ \t]*=[ \t]*([0-9]*)-([0-9]*)[ \t]*", re.IGNORECASE)
# More digits than this is past the end of any file: compared without building huge ints.
_MAX_DIGITS = 18


register_builder("file", FileResponse)


def _position(digits: str) -> int:
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= _MAX_DIGITS else 10**_MAX_DIGITS


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """A single ``bytes=`` range -> (start, end) inclusive; (-1, -1) if unsatisfiable;
    None if the header is not a single valid byte range (RFC 9110: ignore it, send the file)."""
    match = _BYTE_RANGE.fullmatch(header)
    if match is None:
        return None
    first, last = match.groups()
    if first == "":
        if last == "":
            return None
        suffix = _position(last)
        if suffix == 0 or size == 0:
            return (-1, -1)
        return (max(0, size - suffix), size - 1)
    start = _position(first)
    end = _position(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        return (-1, -1)
    return (start, min(end, size - 1))


class StaticFiles:
    """Serves files below ``directory`` for ``app.static(prefix, directory)``.

    The router gives the percent-decoded rest of the path. Whatever leads to a file (symlinks,
    a directory's index), the file that is finally opened must lie below the root, else 404,
    like a missing file. Also 404: ``..``, NUL, backslashes, a file asked for with a trailing
    slash (``notes.txt/``: only a directory has one), and hidden files and directories
    (``.env``, ``.git/``) unless ``dotfiles=True``.
    """

    def __init__(self, directory: str | os.PathLike[str], index: str = "index.html", dotfiles: bool = False) -> None:
        self.root = Path(directory).resolve()
        self.index = index
        self.dotfiles = dotfiles
        if not self.root.is_dir():
            raise ValueError(f"static directory {directory!r} does not exist")

    def resolve(self, relative: str) -> Path | None:
        if "\x00" in relative or "\\" in relative:
            return None
        segments = relative.split("/")
        parts = [part for part in segments if part not in ("", ".")]
        if ".." in parts:
            return None
        try:
            real = self.root.joinpath(*parts).resolve(strict=True)
            if real.is_dir():
                real = (real / self.index).resolve(strict=True)
            elif segments[-1] in ("", "."):
                return None
        except (OSError, RuntimeError):
            return None
        # The one check, on the file that will be opened, wherever the path and its links led.
        if not real.is_relative_to(self.root) or not real.is_file():
            return None
        if not self.dotfiles and any(part.startswith(".") for part in real.relative_to(self.root).parts):
            return None
        return real

    def __call__(self, request: Request) -> Response:
        found = self.resolve(str(request.params.get("path", "")))
        if found is None:
            raise HTTPException(404, f"Not Found: {request.method} {request.path}")
        return FileResponse(found).for_request(request)
