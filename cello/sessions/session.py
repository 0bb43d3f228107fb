"""``request.session``: a dict that knows whether it changed.

The store saves a session only when it changed, so a route that reads it (or never touches
it) sends no ``Set-Cookie`` and writes nothing to Redis. Changes are seen through the mapping
methods (``session["k"] = v``, ``del``, ``pop``, ``update``, ``setdefault``, ``clear``); a value
mutated in place (``session["cart"].append(3)``) is not, as in Flask: set
``session.modified = True`` after such a change.

This module imports nothing of Cello: ``cello.request`` refers to it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

# Keys Cello itself keeps in the session.
CSRF_KEY = "_csrf_token"
FLASHES_KEY = "_flashes"


class Session(MutableMapping[str, Any]):
    """The session of one request. Values must be JSON-serialisable (the stores keep JSON).

    ``new`` is true when the request brought no valid session (no cookie, or one that was
    tampered with, expired or unreadable). ``regenerate()`` asks for a new session id when
    saved (do it at login: see docs/sessions.md, "Session fixation").
    """

    __slots__ = ("_data", "sid", "new", "modified", "regenerated", "_flashed")

    def __init__(self, data: Mapping[str, Any] | None = None, sid: str | None = None, new: bool = True) -> None:
        self._data: dict[str, Any] = dict(data) if data else {}
        # The server-side id (Redis store); None for the cookie store and new sessions.
        self.sid = sid
        self.new = new
        self.modified = False
        self.regenerated = False
        # This request's flashed messages, once get_flashed_messages() took them out.
        self._flashed: list[tuple[str, str]] | None = None

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value
        self.modified = True

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self.modified = True

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def clear(self) -> None:
        """Forget everything (logout): the cookie is deleted, and a later value starts a
        session under a new id."""
        self._data.clear()
        self.modified = True
        self.regenerated = True

    def regenerate(self) -> None:
        """Keep the data under a new session id and a new CSRF token (call it at login, so
        that an id planted by an attacker before the login is worth nothing after it)."""
        self._data.pop(CSRF_KEY, None)
        self.modified = True
        self.regenerated = True

    def to_dict(self) -> dict[str, Any]:
        """A copy of the data, as the store saves it."""
        return dict(self._data)

    # -- flashed messages (request.flash / get_flashed_messages) -------------------------

    def flash(self, message: str, category: str = "message") -> None:
        """Keep ``message`` for the next request that reads the flashed messages."""
        flashes = self._data.get(FLASHES_KEY)
        if not isinstance(flashes, list):
            flashes = []
        self[FLASHES_KEY] = [*flashes, [category, message]]

    def pop_flashes(self) -> list[tuple[str, str]]:
        """``(category, message)`` pairs flashed so far, taken out of the session on the first
        call; later calls in the same request give the same list (Flask's semantics)."""
        flashed = self._flashed
        if flashed is None:
            stored = self.pop(FLASHES_KEY, None) if FLASHES_KEY in self._data else None
            flashed = []
            if isinstance(stored, list):
                for item in stored:
                    if isinstance(item, list) and len(item) == 2:
                        flashed.append((str(item[0]), str(item[1])))
            self._flashed = flashed
        return flashed

    def __repr__(self) -> str:
        flags = " modified" if self.modified else ""
        return f"<Session {self._data!r}{flags}>"
