"""Cross-site request forgery protection for form posts (``app.enable_csrf()``).

What is checked: unsafe requests (POST, PUT, PATCH, DELETE) whose body a page on another
site could make a browser send without asking first, that is with a form's content type
(``application/x-www-form-urlencoded``, ``multipart/form-data``, ``text/plain``) or none.
They must carry a token of the session (``csrf_token(request)``), in the ``csrf_token`` form
field or the ``X-CSRF-Token`` header. A request with another content type (``application/json``, say)
is not checked: a browser sends such a request cross-origin only after a CORS preflight,
which the app's CORS policy refuses unless it trusts that origin (docs/sessions.md).

The check runs as a guard of each unsafe route, added when the endpoints are built: GET
routes and routes declared with ``csrf=False`` carry none. An upload's token is read once the
multipart body is in (the endpoint streams it to spooled files first); a ``stream=True``
route reads its body itself, so its token must come in the header.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from typing import TYPE_CHECKING, Final

from cello.errors import HTTPException
from cello.sessions.session import CSRF_KEY

if TYPE_CHECKING:
    from cello.request import Request

FIELD: Final = "csrf_token"
HEADER: Final = b"x-csrf-token"
FORBIDDEN: Final = "Forbidden: CSRF token missing or invalid"
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Bodies a cross-site form or a no-cors fetch can send without a preflight ("" = no type).
_UNGUARDED_TYPES: Final = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain", ""})
# Bytes of the session's secret, and characters of a masked token (base64 of mask + secret).
_SIZE: Final = 32
_TOKEN_LENGTH: Final = 88
_FORM_TYPES: Final = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def csrf_token(request: Request) -> str:
    """A CSRF token for this session: put it in forms as a hidden ``csrf_token`` field, or send
    it in the ``X-CSRF-Token`` header.

    The session keeps one secret (made on first use); each call returns it masked with fresh
    random bytes, so a page never shows the same token twice and a compressed response cannot
    leak it byte by byte (BREACH). Every token of the session stays valid with it.
    """
    secret = _secret(request)
    if secret is None:
        secret = secrets.token_bytes(_SIZE)
        request.session[CSRF_KEY] = base64.urlsafe_b64encode(secret).decode("ascii")
    mask = secrets.token_bytes(_SIZE)
    return base64.urlsafe_b64encode(mask + bytes(a ^ b for a, b in zip(mask, secret))).decode("ascii")


def _secret(request: Request) -> bytes | None:
    stored = request.session.get(CSRF_KEY)
    if not isinstance(stored, str):
        return None
    try:
        secret = base64.urlsafe_b64decode(stored)
    except (ValueError, TypeError):
        return None
    return secret if len(secret) == _SIZE else None


def _needs_check(request: Request) -> bool:
    return request.method in UNSAFE_METHODS and request.content_type() in _UNGUARDED_TYPES


def _verify(request: Request, sent: str | None) -> None:
    secret = _secret(request)
    unmasked = None
    if sent and secret is not None and len(sent) == _TOKEN_LENGTH:
        try:
            raw = base64.urlsafe_b64decode(sent)
        except (ValueError, TypeError):
            raw = b""
        if len(raw) == 2 * _SIZE:
            unmasked = bytes(a ^ b for a, b in zip(raw[:_SIZE], raw[_SIZE:]))
    if unmasked is None or secret is None or not hmac.compare_digest(unmasked, secret):
        raise HTTPException(403, FORBIDDEN)


def check(request: Request) -> None:
    """The guard of a route whose body is received before the chain runs."""
    if not _needs_check(request):
        return
    sent = request.header(HEADER)
    if sent is None and request.content_type() in _FORM_TYPES:
        # Parsed once and kept: the handler's own request.form() gets the same FormData.
        sent = request.form().get(FIELD)
    _verify(request, sent)


def check_header(request: Request) -> None:
    """The guard of a ``stream=True`` route: the body is the handler's, the token is in the header."""
    if _needs_check(request):
        _verify(request, request.header(HEADER))


def check_before_upload(request: Request) -> None:
    """The guard of a route's multipart variant: a token in the header is checked now, before
    the upload is read; without one, ``check_upload`` looks in the form once it is in."""
    if _needs_check(request):
        sent = request.header(HEADER)
        if sent is not None:
            _verify(request, sent)


def check_upload(request: Request) -> None:
    """Called with the multipart form received, before the handler."""
    if not _needs_check(request) or request.header(HEADER) is not None:
        return
    form = request.form_data
    _verify(request, form.get(FIELD) if form is not None else None)
