"""Request-head rules shared by both parser backends: limits, framing, keep-alive.

llhttp (httptools) and h11 disagree on what they accept. Everything the two backends must
answer identically is decided here, from what either parser hands over:

* :class:`HeadValidator` sees every header field as ``(name, value)`` bytes, whichever parser
  produced it, and decides limits (431), framing (Content-Length / Transfer-Encoding), Host
  (and an absolute-form target's authority), HTTP version, keep-alive and ``Expect``.
* :func:`parse_raw_head` checks the raw head bytes for the shapes llhttp refuses but h11
  accepts (obs-fold, bare LF, control characters, unknown methods...) and feeds the fields to
  a HeadValidator. Only the h11 adapter needs it: llhttp already refuses each of these shapes
  itself (the conformance tests run every shape on both backends).
* :class:`ChunkedFraming` checks a chunked body's framing and bounds before either parser
  reads it (neither bounds chunk extensions or trailers, and they disagree on details).

No I/O and no clock here: tests drive these with bytes.
"""

from __future__ import annotations

import re
from typing import Final

from cello.server.config import ServerConfig

# The methods llhttp accepts in an HTTP/1.x request line. h11 accepts any token, so the h11
# adapter checks against this set to refuse exactly what llhttp refuses.
KNOWN_METHODS: Final = frozenset(
    {
        "DELETE", "GET", "HEAD", "POST", "PUT", "CONNECT", "OPTIONS", "TRACE", "COPY", "LOCK",
        "MKCOL", "MOVE", "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "BIND", "REBIND", "UNBIND",
        "ACL", "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE",
        "UNSUBSCRIBE", "PATCH", "PURGE", "MKCALENDAR", "LINK", "UNLINK", "SOURCE", "QUERY",
    }
)  # fmt: skip

_KNOWN_METHOD_BYTES: Final = frozenset(m.encode("ascii") for m in KNOWN_METHODS)
# What an unfinished request line may start with: llhttp matches the method as it comes and
# refuses at the first byte no method can have there (a TLS ClientHello, say), so the h11
# adapter must not wait for the end of the line.
_METHOD_PREFIXES: Final = frozenset(m[:i] for m in _KNOWN_METHOD_BYTES for i in range(1, len(m) + 1))


def method_start_ok(line: bytes) -> bool:
    """Whether the start of an unfinished request line can still be a known method."""
    space = line.find(b" ")
    if space < 0:
        return line in _METHOD_PREFIXES
    return line[:space] in _KNOWN_METHOD_BYTES


# RFC 9110 7.2 and RFC 3986 3.2.2: Host = uri-host [":" port], where uri-host is an IP literal
# in brackets, an IPv4 address or a reg-name (unreserved, percent-encoded and sub-delims
# characters). The common shapes (a name or an address, perhaps a port) are checked without
# the regex: the characters below, at most one colon, digits after it.
_HOST_CHARS: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:"
_HOST = re.compile(
    rb"(?:\[(?:[0-9A-Fa-f:.]+|v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+)\]"
    rb"|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?"
)


def valid_host(value: bytes) -> bool:
    """Whether ``value`` is a valid Host: an empty one is (RFC 9110 7.2)."""
    if not value.translate(None, _HOST_CHARS):
        colon = value.find(b":")
        return colon < 0 or colon == len(value) - 1 or value[colon + 1 :].isdigit()
    return _HOST.fullmatch(value) is not None


# Bytes of a head (request line + fields + whitespace) buffered before giving up with 431, whatever
# the fields look like: bounds memory when a single field never ends.
HEAD_SLACK: Final = 4096


def head_buffer_limit(config: ServerConfig) -> int:
    return config.max_request_line + config.max_header_size + HEAD_SLACK


_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# A target of visible ASCII (llhttp refuses controls, space and non-ASCII there). One space
# between the parts, as RFC 9112 3 writes it: llhttp also takes runs of spaces, but other servers
# refuse them (a proxy in front may split such a line differently), so the httptools adapter
# refuses them too (HttptoolsParser._check_line).
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")
# The target forms llhttp accepts for methods other than CONNECT: origin-form ("/p"), asterisk-form
# and absolute-form ("scheme://authority/p", no fragment in the authority).
_TARGET = re.compile(
    rb"[/*][\x21-\x7e]*"
    rb"|[A-Za-z]+://[\x21-\x22\x24-\x2e\x30-\x3e\x40-\x7e]*(?:[/?][\x21-\x7e]*)?"  # no # / ? in authority
)
# Field value: visible characters, SP, HT and obs-text; never other controls (NUL, CR, LF, DEL...).
_FIELD_LINE = re.compile(rb"(" + _TOKEN + rb"):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*")


def parse_raw_head(head: bytes, validator: HeadValidator, complete: bool = True) -> list[tuple[bytes, bytes]] | None:
    """The header fields of a raw head, fed to ``validator`` in order; None if it must be refused
    (``validator.status``/``reason`` say why).

    ``head`` runs from the request line to the blank line that ends it, both included; with
    ``complete=False``, it is the start of a head up to the end of its last complete line (so
    that a bad line is refused as soon as it arrives, as llhttp does). Checks are made in the
    order llhttp meets them (request line first, then each field as it comes), so that both
    backends give the same status when a head has several faults.
    """
    lines = head.split(b"\r\n")
    request_line = lines[0]
    match = _REQUEST_LINE.fullmatch(request_line)
    if match is None:
        if len(request_line) > validator.max_request_line:
            validator.fail(414, "Request line too long")
        elif b"\n" in request_line or b"\r" in request_line:
            validator.fail(400, "Invalid line ending")
        else:
            validator.fail(400, "Invalid request line")
        return None
    if not validator.check_request_line(len(match.group(1)), len(match.group(2))):
        return None
    method = match.group(1).decode("ascii")
    if method not in KNOWN_METHODS:
        validator.fail(400, "Invalid method")
        return None
    if method != "CONNECT" and _TARGET.fullmatch(match.group(2)) is None:
        validator.fail(400, "Invalid request target")
        return None
    # A well-formed head ends with CRLF CRLF: the split leaves two empty strings at the end
    # (one for the start of a head cut after a CRLF).
    last = len(lines) - (2 if complete else 1)
    fields: list[tuple[bytes, bytes]] = []
    for index in range(1, last):
        line = lines[index]
        field = _FIELD_LINE.fullmatch(line)
        if field is None:
            if line[:1] == b" " or line[:1] == b"\t":
                validator.fail(400, "Obsolete line folding is not accepted")
            elif b"\n" in line or b"\r" in line:
                validator.fail(400, "Invalid line ending")
            else:
                validator.fail(400, "Invalid header field")
            return None
        name = field.group(1)
        value = field.group(2)
        if len(name) == 17 and name.lower() == b"transfer-encoding" and line.rstrip(b" ").endswith(b"\t"):
            # llhttp refuses a tab after the Transfer-Encoding value; so must h11's side.
            validator.fail(400, "Invalid Transfer-Encoding")
            return None
        fields.append((name, value))
        if not validator.add_field(name, value):
            return None
    if complete:
        if last < 1 or lines[last] or lines[last + 1]:
            validator.fail(400, "Invalid line ending")
            return None
    elif lines[last]:
        validator.fail(400, "Invalid line ending")  # the last line ended with a bare LF
        return None
    return fields


# A chunk-size line: at most 16 hex digits, leading zeros included (every 64-bit size fits; h11
# stops at 20, llhttp counts none, so an endless run of zeros needs a bound), then chunk
# extensions as llhttp takes them: ";name", ";name=", ";name=token", ';name="quoted"'.
_CHUNK_SIZE_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})(?:;" + _TOKEN + rb"(?:=(?:" + _TOKEN + rb'|"[^"\x00-\x08\x0a-\x1f\x7f]*")?)?)*\r\n'
)
# A chunk-size line (size and extensions, without CRLF) longer than this is refused, as Go does:
# neither parser would bound one (llhttp reads extensions without keeping them, for ever).
_MAX_CHUNK_LINE: Final = 4096

_SIZE: Final = 0
_DATA: Final = 1
_DATA_END: Final = 2
_TRAILER: Final = 3
_DONE: Final = 4


class ChunkedFraming:
    """Checks the framing of a chunked body as its bytes go by (it does not decode them).

    Both adapters run a chunked body's bytes through this before their parser sees them, so
    that both refuse the same bodies, and early: h11 accepts what llhttp refuses (bare LF,
    whitespace after the size), and neither bounds every part (llhttp buffers an endless trailer
    line and reads an endless chunk extension; neither counts trailer fields). The trailer
    section gets the head's limits: ``max_header_size`` bytes (lines as sent, with their CRLF;
    the blank line that ends it not counted) and ``max_header_count`` fields; a field that
    frames the message (Content-Length, Transfer-Encoding) is refused there, as llhttp does.
    """

    __slots__ = (
        "state", "remaining", "line", "status", "error", "trailer_bytes", "trailer_count",
        "max_trailer_bytes", "max_trailer_count",
    )  # fmt: skip

    def __init__(self, config: ServerConfig) -> None:
        self.max_trailer_bytes = config.max_header_size
        self.max_trailer_count = config.max_header_count
        self.state = _SIZE
        self.remaining = 0
        self.line = b""
        self.status = 0
        self.error = ""
        self.trailer_bytes = 0
        self.trailer_count = 0

    def reset(self) -> None:
        self.state = _SIZE
        self.remaining = 0
        self.line = b""
        self.trailer_bytes = 0
        self.trailer_count = 0

    @property
    def done(self) -> bool:
        return self.state == _DONE

    def _fail(self, status: int, reason: str) -> int:
        self.status = status
        self.error = reason
        return -1

    def feed(self, data: bytes) -> int:
        """How many bytes of ``data`` belong to the body (all of them until it ends); -1 when
        it is malformed or too large (``status`` and ``error`` say why)."""
        pos = 0
        end = len(data)
        while pos < end and self.state != _DONE:
            state = self.state
            if state == _DATA:
                take = min(self.remaining, end - pos)
                pos += take
                self.remaining -= take
                if self.remaining == 0:
                    self.state = _DATA_END
            elif state == _DATA_END:
                line = self.line + data[pos : pos + 2 - len(self.line)]
                pos += len(line) - len(self.line)
                if line != b"\r\n"[: len(line)]:
                    return self._fail(400, "Malformed request: bad chunk end")
                if len(line) == 2:
                    line = b""
                    self.state = _SIZE
                self.line = line
            else:
                newline = data.find(b"\n", pos)
                if newline < 0:
                    # An unfinished line is refused as soon as it cannot end within the limit
                    # (its CRLF still to come), so that how the input is split never matters.
                    self.line += data[pos:]
                    pos = end
                    if not self._room(len(self.line) + 1):
                        return -1
                    continue
                line = self.line + data[pos : newline + 1]
                self.line = b""
                pos = newline + 1
                if not self._room(len(line)) or not self._line(line):
                    return -1
        return pos

    def _room(self, size: int) -> bool:
        """Whether a line of ``size`` bytes (with its CRLF) is within the limits."""
        if self.state == _SIZE:
            if size - 2 > _MAX_CHUNK_LINE:
                self._fail(400, "Malformed request: chunk-size line too long")
                return False
        elif size > 2 and self.trailer_bytes + size > self.max_trailer_bytes:  # (not the blank line)
            self._fail(431, "Request trailer fields too large")
            return False
        return True

    def _line(self, line: bytes) -> bool:
        if self.state == _SIZE:
            match = _CHUNK_SIZE_LINE.fullmatch(line)
            if match is None:
                self._fail(400, "Malformed request: bad chunk size")
                return False
            size = int(match.group(1), 16)
            if size == 0:
                self.state = _TRAILER
            else:
                self.remaining = size
                self.state = _DATA
            return True
        if line == b"\r\n":
            self.state = _DONE
            return True
        field = _FIELD_LINE.fullmatch(line[:-2]) if line.endswith(b"\r\n") else None
        if field is None:
            self._fail(400, "Malformed request: bad trailer field")
            return False
        name = field.group(1).lower()
        if name == b"content-length" or name == b"transfer-encoding":
            self._fail(400, "Malformed request: framing field in the trailer section")
            return False
        self.trailer_bytes += len(line)
        self.trailer_count += 1
        if self.trailer_count > self.max_trailer_count:
            self._fail(431, "Too many trailer fields")
            return False
        return True


def _is_digits(value: bytes) -> bool:
    # bytes.isdigit is ASCII-only, unlike str.isdigit; 18 digits always fit in an int64.
    return 0 < len(value) <= 18 and value.isdigit()


class HeadValidator:
    """Collects what the server needs from one request head and refuses bad ones.

    One instance per connection, ``begin()`` per request (no allocation per request).
    Methods return False once the head must be refused; ``status``/``reason`` say why.
    """

    __slots__ = (
        "max_request_line",
        "max_header_size",
        "max_header_count",
        "status",
        "reason",
        "field_count",
        "field_bytes",
        "host_count",
        "last_host",
        "content_length",
        "content_length_count",
        "transfer_encoding",
        "transfer_encoding_count",
        "chunked",
        "connection_close",
        "connection_keep_alive",
        "connection_upgrade",
        "upgrade",
        "upgrade_websocket",
        "websocket",
        "expect_continue",
        "expect_other",
        "keep_alive",
        "rare",
    )

    def __init__(self, config: ServerConfig) -> None:
        self.max_request_line = config.max_request_line
        self.max_header_size = config.max_header_size
        self.max_header_count = config.max_header_count
        self.status = 0
        self.reason = ""
        self.field_count = 0
        self.field_bytes = 0
        self.host_count = 0
        # The last Host value found valid on this connection: a client sends the same one on
        # every request, so it is checked once.
        self.last_host = b""
        self.chunked = False
        self.keep_alive = False
        # A field other than Host was looked at: begin() has more to reset.
        self.rare = False
        self._reset_rare()

    def begin(self) -> None:
        # (status and reason need no reset: after a refusal the connection reads nothing more.)
        self.field_count = 0
        self.field_bytes = 0
        self.host_count = 0
        if self.rare:
            self.rare = False
            self._reset_rare()

    def _reset_rare(self) -> None:
        """The facts that only fields other than Host set (most requests leave them alone)."""
        # Declared body length; 0 when absent. Meaningless when ``chunked``.
        self.content_length = 0
        self.content_length_count = 0
        self.transfer_encoding = b""
        self.transfer_encoding_count = 0
        self.connection_close = False
        self.connection_keep_alive = False
        self.connection_upgrade = False
        self.upgrade = False
        self.upgrade_websocket = False
        # A WebSocket opening handshake (RFC 6455 4.1: GET, HTTP/1.1, Upgrade: websocket,
        # Connection: upgrade); decided in finish().
        self.websocket = False
        self.expect_continue = False
        self.expect_other = False

    def fail(self, status: int, reason: str) -> bool:
        self.status = status
        self.reason = reason
        return False

    def check_request_line(self, method_length: int, target_length: int) -> bool:
        # method SP target SP "HTTP/1.1"
        if method_length + target_length + 10 > self.max_request_line:
            return self.fail(414, "Request line too long")
        return True

    def add_field(self, name: bytes, value: bytes) -> bool:
        """One header field; ``value`` without surrounding whitespace."""
        self.field_count += 1
        self.field_bytes += len(name) + len(value) + 4
        if self.field_count > self.max_header_count:
            return self.fail(431, "Too many header fields")
        if self.field_bytes > self.max_header_size:
            return self.fail(431, "Request header fields too large")
        size = len(name)
        if size == 4:
            if name.lower() == b"host":
                self.host_count += 1
                if value != self.last_host:
                    if not valid_host(value):
                        return self.fail(400, "Invalid Host header")
                    self.last_host = value
        # Only these lengths can name another field the server looks at; skip lower() otherwise.
        elif size == 6 or size == 7 or size == 10 or size == 14 or size == 17:
            return self._special_field(name.lower(), value)
        return True

    def _special_field(self, name: bytes, value: bytes) -> bool:
        self.rare = True
        if name == b"content-length":
            self.content_length_count += 1
            if self.content_length_count > 1:
                return self.fail(400, "Duplicate Content-Length")
            if not _is_digits(value):
                return self.fail(400, "Invalid Content-Length")
            self.content_length = int(value)
        elif name == b"transfer-encoding":
            self.transfer_encoding_count += 1
            self.transfer_encoding = value
        elif name == b"connection":
            self._connection_tokens(value.lower())
        elif name == b"expect":
            if value.lower() == b"100-continue":
                self.expect_continue = True
            else:
                # Refused in finish(): a malformed field after this one is a 400, as with llhttp.
                self.expect_other = True
        elif name == b"upgrade":
            self.upgrade = True
            for token in value.lower().split(b","):
                if token.strip() == b"websocket":
                    self.upgrade_websocket = True
        return True

    def _connection_tokens(self, value: bytes) -> None:
        if value == b"keep-alive":
            self.connection_keep_alive = True
        elif value == b"close":
            self.connection_close = True
        else:
            for token in value.split(b","):
                token = token.strip()
                if token == b"close":
                    self.connection_close = True
                elif token == b"keep-alive":
                    self.connection_keep_alive = True
                elif token == b"upgrade":
                    self.connection_upgrade = True

    def take_authority(self, target: bytes, headers: list[tuple[bytes, bytes]]) -> bool:
        """For an absolute-form target ("http://host:8080/p"), put its authority in place of the
        Host field (RFC 9112 3.2.2: the server ignores Host then). Called only for targets that
        do not start with "/"; "*" and a CONNECT target are left alone."""
        start = target.find(b"://")
        if start < 0:
            return True
        start += 3
        end = len(target)
        for separator in (b"/", b"?", b"#"):
            found = target.find(separator, start, end)
            if found >= 0:
                end = found
        authority = target[start:end]
        # An http(s) URI must have a host (RFC 9110 4.2.1); userinfo ("user@") is refused too.
        if not authority or authority[0] == 58 or not valid_host(authority):
            return self.fail(400, "Invalid request target")
        for index in range(len(headers)):
            name = headers[index][0]
            if len(name) == 4 and name.lower() == b"host":
                headers[index] = (name, authority)
                return True
        headers.append((b"Host", authority))
        return True

    def finish(self, method: str, http_version: str) -> bool:
        """After the last field: the rules that need the whole head."""
        http11 = http_version == "1.1"
        if not http11 and http_version != "1.0":
            # 400 rather than 505: llhttp refuses HTTP/1.2 or HTTP/3.0 as malformed before we can
            # see them, so 400 is the only answer both backends can give for every version.
            return self.fail(400, "Unsupported HTTP version")
        if self.host_count > 1:
            return self.fail(400, "Multiple Host headers")
        if http11 and self.host_count == 0:
            return self.fail(400, "Missing Host header")
        if self.expect_other:
            return self.fail(417, "Unsupported expectation")
        self.chunked = False
        if self.transfer_encoding_count:
            if self.content_length_count:
                return self.fail(400, "Content-Length with Transfer-Encoding")
            if not http11:
                return self.fail(400, "Transfer-Encoding in an HTTP/1.0 request")
            if self.transfer_encoding_count > 1 or self.transfer_encoding.lower() != b"chunked":
                return self.fail(400, "Unsupported Transfer-Encoding")
            self.chunked = True
        if http11:
            keep_alive = not self.connection_close
            # Both headers matter here: llhttp calls it an upgrade only with both.
            if self.upgrade and self.connection_upgrade:
                keep_alive = False
                self.websocket = self.upgrade_websocket and method == "GET"
        else:
            keep_alive = self.connection_keep_alive and not self.connection_close
            self.expect_continue = False  # RFC 9110 10.1.1: ignore 100-continue from HTTP/1.0
        if method == "CONNECT":
            keep_alive = False
        self.keep_alive = keep_alive
        if self.expect_continue and not self.chunked and self.content_length == 0:
            self.expect_continue = False
        return True


def split_target(target: bytes) -> tuple[str, str]:
    """``(raw_path, query_string)`` of a request target, both still percent-encoded."""
    text = target.decode("latin-1")
    if "#" in text:
        # Fragments are never meant for the server; llhttp and h11 let them through.
        text = text[: text.index("#")]
    mark = text.find("?")
    if mark >= 0:
        path = text[:mark]
        query = text[mark + 1 :]
    else:
        path = text
        query = ""
    if not path.startswith("/"):
        path = _origin_path(path)
    return path, query


def _origin_path(path: str) -> str:
    # absolute-form (``http://host/p``) keeps its path; ``*`` and authority-form stay as sent.
    lowered = path[:8].lower()
    if lowered.startswith("http://") or lowered.startswith("https://"):
        start = path.find("/", path.index("//") + 2)
        return path[start:] if start >= 0 else "/"
    return path
