"""The session cookie's attributes, and the store that keeps the whole session in it.

``CookieSessions`` signs the session's JSON into the cookie (itsdangerous): nothing is kept on
the server, so any worker or instance with the same secret key reads it. It is read on the
first ``request.session`` of a request, not before: a route that never touches the session
pays for the endpoint handing the loader to the request and an after-hook that finds nothing
loaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cello.middleware.cors import add_vary
from cello.sessions.session import Session
from cello.sessions.signing import Signer

if TYPE_CHECKING:
    from cello.request import Request
    from cello.response import Response

log = logging.getLogger("cello.sessions")

# What browsers keep of one cookie (name, '=', value), as Flask/Werkzeug count it: RFC 6265
# asks them for at least 4096 bytes, and a larger one is dropped without a word.
MAX_COOKIE_SIZE = 4093


@dataclass(frozen=True)
class SessionCookie:
    """How the session cookie is set: ``secure=None`` sets ``Secure`` on HTTPS requests."""

    name: str
    max_age: int
    same_site: str | None
    secure: bool | None
    http_only: bool
    domain: str | None
    path: str

    def set(self, request: Request, response: Response, value: str, max_age: int | None = None) -> None:
        secure = request.scheme == "https" if self.secure is None else self.secure
        response.set_cookie(
            self.name,
            value,
            max_age=self.max_age if max_age is None else max_age,
            path=self.path,
            domain=self.domain,
            secure=secure,
            httponly=self.http_only,
            samesite=self.same_site,
        )

    def delete(self, request: Request, response: Response) -> None:
        # With the same attributes: a browser lets no plain-HTTP response replace a Secure
        # cookie, and matches name, domain and path to find the one to delete.
        self.set(request, response, "", max_age=0)


def json_error(exc: Exception) -> TypeError:
    return TypeError(f"request.session holds a value that is not JSON-serialisable: {exc}")


class CookieSessions:
    """The session signed into the cookie itself (``store="cookie"``)."""

    def __init__(self, signer: Signer, cookie: SessionCookie) -> None:
        self.signer = signer
        self.cookie = cookie

    def before_handler(self) -> None:
        """Nothing to do before the handler: ``load`` reads the cookie on first use."""
        return None

    def load(self, request: Request) -> Session:
        """What ``request.session`` calls on first use."""
        value = request.cookies.get(self.cookie.name)
        if value:
            data = self.signer.loads(value)
            if isinstance(data, dict):
                return Session(data, new=False)
        return Session()

    def save(self, request: Request, response: Response) -> None:
        """After the handler and the other after-hooks, before the response head is written."""
        session = request.loaded_session
        if session is None:
            return
        # The response depends on the cookie: shared caches must not hand it to someone else.
        add_vary(response, "Cookie")
        if not session.modified:
            return
        if not session:
            if not session.new:
                self.cookie.delete(request, response)
            return
        try:
            value = self.signer.dumps(session.to_dict())
        except (TypeError, ValueError) as exc:
            raise json_error(exc) from None
        size = len(self.cookie.name) + 1 + len(value)
        if size > MAX_COOKIE_SIZE:
            # Sent anyway, the browser would drop it silently and keep the old one: say it
            # here instead, loudly, and leave the old cookie (and session) in place.
            largest = sorted(session, key=lambda key: len(repr(session[key])), reverse=True)[:3]
            log.error(
                "session not saved: the %r cookie would be %d bytes, over the %d browsers keep "
                "(largest keys: %s); keep less in it, or use the Redis store",
                self.cookie.name,
                size,
                MAX_COOKIE_SIZE,
                ", ".join(largest),
            )
            return
        self.cookie.set(request, response, value)

    async def close(self) -> None:
        """Nothing to close: the app's shutdown hooks call every store's."""
