"""Sessions, CSRF protection and flashed messages (``app.enable_sessions``, ``app.enable_csrf``).

``request.session`` is a dict saved when it changed: signed into the cookie itself
(``store="cookie"``, the default) or kept in Redis with a signed id in the cookie
(``store="redis://..."``). See docs/sessions.md.

The functions templates need (``csrf_token``, ``get_flashed_messages``) take the request.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, Union

from cello.headers import check_cookie_attribute, check_cookie_name
from cello.sessions.cookie import CookieSessions, SessionCookie
from cello.sessions.csrf import csrf_token
from cello.sessions.session import Session
from cello.sessions.signing import Signer, secret_keys

if TYPE_CHECKING:
    from cello.request import Request
    from cello.response import Response

__all__ = ["Session", "SessionStore", "create_store", "csrf_token", "get_flashed_messages", "template_context"]

SecretKey = Union[str, bytes, Sequence[Union[str, bytes]]]
DEFAULT_MAX_AGE = 14 * 24 * 3600


class SessionStore(Protocol):
    """What the app installs: the loader of ``request.session``, an after-hook that saves it,
    a shutdown hook, and for a store that must read before the handler, a before-hook."""

    def load(self, request: Request) -> Session: ...

    def before_handler(self) -> Callable[[Request], Awaitable[None]] | None: ...

    def save(self, request: Request, response: Response) -> Any: ...

    async def close(self) -> None: ...


def create_store(
    secret_key: SecretKey,
    store: str,
    cookie_name: str,
    max_age: int,
    same_site: str | None,
    secure: bool | None,
    http_only: bool,
    domain: str | None,
    path: str,
) -> SessionStore:
    """The store ``app.enable_sessions`` installs (the defaults are that method's alone);
    every argument is checked here, at start-up."""
    keys = secret_keys(secret_key)
    if type(max_age) is not int or max_age <= 0:
        raise ValueError(f"max_age is a number of seconds > 0, not {max_age!r}")
    if same_site is not None and same_site.lower() not in ("lax", "strict", "none"):
        raise ValueError(f"same_site must be 'lax', 'strict', 'none' or None, not {same_site!r}")
    if same_site is not None and same_site.lower() == "none" and secure is False:
        raise ValueError("same_site='none' needs a Secure cookie: browsers refuse it otherwise (leave secure=None)")
    cookie = SessionCookie(cookie_name, max_age, same_site, secure, http_only, domain, path)
    # Refuse a bad name or attribute now rather than on the first response that sets it.
    check_cookie_name(cookie_name)
    check_cookie_attribute("path", path)
    if domain:
        check_cookie_attribute("domain", domain)
    if store == "cookie":
        return CookieSessions(Signer(keys, "cello.session", max_age), cookie)
    if store.startswith(("redis://", "rediss://", "unix://")):
        # redis-py is optional (cello-framework[redis]): only a Redis store imports it.
        from cello.sessions.redis_store import RedisSessions

        return RedisSessions(store, Signer(keys, "cello.session.id", max_age), cookie)
    raise ValueError(f"store must be 'cookie' or a redis:// URL, not {store!r}")


def get_flashed_messages(
    request: Request, with_categories: bool = False, category_filter: Iterable[str] = ()
) -> list[Any]:
    """The messages ``request.flash`` kept, oldest first, taken out of the session (Flask's
    semantics: later calls in the same request see them too). ``with_categories=True`` gives
    ``(category, message)`` pairs; ``category_filter`` keeps only those categories."""
    flashed = request.session.pop_flashes()
    wanted = set(category_filter)
    if wanted:
        flashed = [item for item in flashed if item[0] in wanted]
    if with_categories:
        return list(flashed)
    return [message for _, message in flashed]


def template_context(request: Request | None) -> dict[str, Any]:
    """What every template sees once sessions are on: ``session``, ``csrf_token()`` and
    ``get_flashed_messages(...)`` for the request being answered (nothing outside a request)."""
    if request is None:
        return {}
    return {
        "session": request.session,
        "csrf_token": functools.partial(csrf_token, request),
        "get_flashed_messages": functools.partial(get_flashed_messages, request),
    }
