"""Form bodies: urlencoded and multipart, with uploaded files in spooled temporary files.

Multipart bodies are parsed incrementally by python-multipart: :class:`MultipartReceiver`
is fed chunks as they arrive, so a file part is written to its temporary file piece by
piece and never held whole in memory.
"""

from __future__ import annotations

import dataclasses
import mimetypes
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import AsyncIterator, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import parse_qsl

import filetype
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from cello.config import Config
from cello.datastructures import MultiDict
from cello.errors import HTTPException, format_size, too_large

_SPOOL_SIZE = 1024 * 1024


@dataclass(frozen=True)
class FormLimits:
    """A route's form limits; each field is the App option (and route option) of that name."""

    max_file_size: int
    max_form_field_size: int
    max_form_parts: int
    max_part_header_size: int
    max_part_headers: int


FORM_OPTIONS = tuple(field.name for field in dataclasses.fields(FormLimits))


def limits_from(settings: Any, overrides: Mapping[str, Any] | None = None) -> FormLimits:
    """FormLimits from the App's Config, with a route's own options of the same names on top."""
    overrides = overrides or {}
    return FormLimits(
        **{name: int(overrides[name]) if name in overrides else getattr(settings, name) for name in FORM_OPTIONS}
    )


# Config's defaults, for a form parsed outside any app's route (a Request built in a test).
DEFAULT_LIMITS = limits_from(Config())


def multipart_body_limit(
    settings: Any, limits: FormLimits, overrides: Mapping[str, Any] | None = None
) -> tuple[int, str]:
    """The body limit of a multipart upload, and the option(s) it comes from (for the 413).

    A route's own ``max_body_size`` caps the whole body. Otherwise the body may carry one file
    at ``max_file_size`` plus ``max_body_size`` for the rest of the form: raising the file
    limit is enough to accept larger files, and the default body limit never hides it.
    """
    if overrides and "max_body_size" in overrides:
        return int(overrides["max_body_size"]), "max_body_size"
    return limits.max_file_size + int(settings.max_body_size), "max_file_size + max_body_size"


# RFC 2046 §5.1.1: a boundary is 1 to 70 characters. Longer ones are refused (400) rather than
# handed to the parser, which has its own, larger cap.
MAX_BOUNDARY_LENGTH = 70


def _too_many_parts(limits: FormLimits) -> HTTPException:
    """Multipart parts and urlencoded fields count against the same limit."""
    return HTTPException(413, too_large("form", "max_form_parts", f"{limits.max_form_parts} parts"))


_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def sanitize_filename(raw: str) -> str:
    """Keep the last path component, drop control characters and leading dots."""
    name = raw.replace("\\", "/").split("/")[-1]
    name = unicodedata.normalize("NFC", _UNSAFE.sub("", name)).strip()
    name = name.lstrip(".").strip()
    return name or "upload"


class UploadedFile:
    """One uploaded file, spooled to memory up to 1 MiB and to disk beyond."""

    def __init__(
        self,
        name: str,
        filename: str,
        content_type: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.raw_filename = filename
        self.filename = sanitize_filename(filename)
        self.content_type = content_type or mimetypes.guess_type(self.filename)[0] or "application/octet-stream"
        self.headers: dict[str, str] = dict(headers or {})
        self._file: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(
            max_size=_SPOOL_SIZE, mode="w+b"
        )
        self._size = 0
        self._head = b""

    def _write(self, data: bytes | memoryview) -> None:
        if len(self._head) < 262:
            self._head += bytes(data[: 262 - len(self._head)])
        self._file.write(data)
        self._size += len(data)

    def _finish(self) -> None:
        self._file.seek(0)

    def size(self) -> int:
        return self._size

    @property
    def detected_type(self) -> str | None:
        """The media type the content's magic bytes say, whatever the client claimed."""
        kind = filetype.guess(self._head)
        return kind.mime if kind is not None else None

    def extension(self) -> str:
        """The extension of the sanitised file name, lower-cased, without the dot."""
        return os.path.splitext(self.filename)[1].lstrip(".").lower()

    async def read(self, size: int = -1) -> bytes:
        return self.read_sync(size)

    def read_sync(self, size: int = -1) -> bytes:
        return self._file.read(size)

    async def seek(self, offset: int) -> None:
        self._file.seek(offset)

    def open(self) -> IO[bytes]:
        """The underlying binary file object, rewound."""
        self._file.seek(0)
        return self._file

    def save(self, path: str | os.PathLike[str]) -> str:
        """Copy the upload to ``path`` in chunks. A directory gets the sanitised file name."""
        target = os.fspath(path)
        if os.path.isdir(target):
            target = os.path.join(target, self.filename)
        position = self._file.tell()
        self._file.seek(0)
        with open(target, "wb") as out:
            shutil.copyfileobj(self._file, out, 256 * 1024)
        self._file.seek(position)
        return target

    def close(self) -> None:
        self._file.close()

    def __repr__(self) -> str:
        return f"<UploadedFile {self.name}={self.filename!r} {self.content_type} {self._size} bytes>"


class UploadedFiles(list[UploadedFile]):
    """``request.files()``: a list, usable as ``await request.files()`` too (like FormData)."""

    def __await__(self) -> Generator[Any, None, UploadedFiles]:
        if False:  # pragma: no cover - makes this a generator without suspending
            yield None
        return self


class FormData(Mapping[str, str]):
    """Text fields as a read-only mapping (last value wins) plus the uploaded files.

    Usable as ``request.form()`` and ``await request.form()``.
    """

    def __init__(self, fields: list[tuple[str, str]] | None = None, files: list[UploadedFile] | None = None) -> None:
        self._fields = MultiDict(fields or [])
        self._files: list[UploadedFile] = files or []

    def __getitem__(self, key: str) -> str:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __await__(self) -> Generator[Any, None, FormData]:
        if False:  # pragma: no cover - makes this a generator without suspending
            yield None
        return self

    def get_or(self, key: str, default: str) -> str:
        return self._fields.get(key, default)

    def get_all(self, key: str) -> list[str]:
        return self._fields.get_all(key)

    def get_file(self, key: str) -> UploadedFile | None:
        for upload in self._files:
            if upload.name == key:
                return upload
        return None

    def get_files(self, key: str) -> list[UploadedFile]:
        return [upload for upload in self._files if upload.name == key]

    @property
    def files(self) -> dict[str, UploadedFile]:
        found: dict[str, UploadedFile] = {}
        for upload in self._files:
            found.setdefault(upload.name, upload)
        return found

    def all_files(self) -> UploadedFiles:
        return UploadedFiles(self._files)

    def field_names(self) -> list[str]:
        return list(self._fields)

    def file_names(self) -> list[str]:
        return list(dict.fromkeys(upload.name for upload in self._files))

    def to_dict(self) -> dict[str, str]:
        return dict(self._fields)

    def close(self) -> None:
        for upload in self._files:
            upload.close()

    def __repr__(self) -> str:
        return f"FormData({dict(self._fields)!r}, files={self._files!r})"


class MultipartReceiver:
    """Feeds a multipart body, chunk by chunk, into fields and spooled files within limits."""

    def __init__(self, boundary: bytes, limits: FormLimits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._fields: list[tuple[str, str]] = []
        self._files: list[UploadedFile] = []
        self._parts = 0
        self._header_field = b""
        self._header_value = b""
        self._part_headers: dict[str, str] = {}
        self._field_name = ""
        self._field_data = bytearray()
        self._upload: UploadedFile | None = None
        self._ended = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_end": self._on_end,
            },
            max_header_count=limits.max_part_headers,
            max_header_size=limits.max_part_header_size,
        )

    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except (MultipartParseError, ValueError) as exc:
            self.discard()
            # python-multipart enforces the part-header limits itself: a size, not a malformed body.
            if "Maximum header size" in str(exc):
                size = format_size(self._limits.max_part_header_size)
                raise HTTPException(413, too_large("part header", "max_part_header_size", size)) from None
            if "Maximum header count" in str(exc):
                count = f"{self._limits.max_part_headers} headers"
                raise HTTPException(413, too_large("part", "max_part_headers", count)) from None
            raise HTTPException(400, f"Malformed multipart body: {exc}") from None
        except HTTPException:
            self.discard()
            raise

    def finish(self) -> FormData:
        self._parser.finalize()
        if not self._ended:
            self.discard()
            raise HTTPException(400, "Malformed multipart body: missing final boundary")
        return FormData(self._fields, self._files)

    def discard(self) -> None:
        """Delete every temporary file: nothing survives a failed upload."""
        for upload in self._files:
            upload.close()
        if self._upload is not None:
            self._upload.close()
        self._files = []
        self._upload = None

    # -- parser callbacks ---------------------------------------------------------------

    def _on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > self._limits.max_form_parts:
            raise _too_many_parts(self._limits)
        self._part_headers = {}
        self._field_data = bytearray()
        self._upload = None

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        name = self._header_field.decode("latin-1").strip().lower()
        # latin-1 keeps the bytes as they are: filenames are decoded as UTF-8 below.
        self._part_headers[name] = self._header_value.decode("latin-1").strip()
        self._header_field = b""
        self._header_value = b""

    def _on_headers_finished(self) -> None:
        disposition, options = parse_options_header(self._part_headers.get("content-disposition", ""))
        if disposition != b"form-data" or b"name" not in options:
            raise HTTPException(400, "Malformed multipart body: part without a form-data name")
        self._field_name = options[b"name"].decode("utf-8", "replace")
        content_type = self._part_headers.get("content-type")
        if b"filename" in options:
            self._upload = UploadedFile(
                self._field_name,
                options[b"filename"].decode("utf-8", "replace"),
                content_type,
                {k: v.encode("latin-1").decode("utf-8", "replace") for k, v in self._part_headers.items()},
            )

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        upload = self._upload
        if upload is not None:
            if upload._size + (end - start) > self._limits.max_file_size:
                raise HTTPException(413, too_large("file", "max_file_size", format_size(self._limits.max_file_size)))
            # A view, not a slice: file data is written without another copy.
            upload._write(memoryview(data)[start:end])
        else:
            if len(self._field_data) + (end - start) > self._limits.max_form_field_size:
                size = format_size(self._limits.max_form_field_size)
                raise HTTPException(413, too_large("form field", "max_form_field_size", size))
            self._field_data += data[start:end]

    def _on_part_end(self) -> None:
        upload = self._upload
        if upload is not None:
            upload._finish()
            self._files.append(upload)
            self._upload = None
        else:
            self._fields.append((self._field_name, self._field_data.decode("utf-8", "replace")))

    def _on_end(self) -> None:
        self._ended = True


def multipart_boundary(content_type_header: str) -> bytes:
    _, options = parse_options_header(content_type_header)
    boundary = options.get(b"boundary")
    if not boundary:
        raise HTTPException(400, "Malformed multipart body: no boundary in Content-Type")
    if len(boundary) > MAX_BOUNDARY_LENGTH:
        raise HTTPException(
            400, f"Malformed multipart body: boundary longer than {MAX_BOUNDARY_LENGTH} characters (RFC 2046)"
        )
    return boundary


async def receive_multipart(
    content_type_header: str, chunks: AsyncIterator[bytes], limits: FormLimits = DEFAULT_LIMITS
) -> FormData:
    """Parse a multipart body as it arrives; file parts go to their spooled files chunk by chunk."""
    receiver = MultipartReceiver(multipart_boundary(content_type_header), limits)
    try:
        async for chunk in chunks:
            receiver.feed(chunk)
        return receiver.finish()
    except BaseException:
        # A limit, a malformed part, a disconnect: no temporary file survives.
        receiver.discard()
        raise


def parse_form(content_type_header: str, body: bytes, limits: FormLimits | None = None) -> FormData:
    """Parse a whole buffered body (the streaming path feeds a MultipartReceiver instead)."""
    if limits is None:
        limits = DEFAULT_LIMITS
    media = content_type_header.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        receiver = MultipartReceiver(multipart_boundary(content_type_header), limits)
        receiver.feed(body)
        return receiver.finish()
    if media in ("application/x-www-form-urlencoded", ""):
        # Counted before anything is decoded: a body of a million tiny fields costs one scan.
        # Every piece between "&"s counts, empty ones too (as parse_qsl's max_num_fields does).
        if body.count(b"&") >= limits.max_form_parts:
            raise _too_many_parts(limits)
        text = body.decode("utf-8", "replace")
        return FormData(parse_qsl(text, keep_blank_values=True))
    raise HTTPException(415, f"Unsupported form content type: {media}")
