"""Redis URLs as Cello takes them (channels and sessions): checked once, shown without password."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from redis.asyncio.connection import parse_url


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    credentials, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def check_redis_url(url: str, what: str) -> None:
    """ValueError naming ``what`` ("channels URL") for a URL redis-py cannot use, at start-up
    rather than at the first command in production."""
    try:
        parse_url(url)
        # redis-py ignores a path that is not a number; Cello would then use db 0 unasked.
        db = urlsplit(url).path.strip("/")
        if db and not (url.startswith("unix:") or db.isdigit()):
            raise ValueError(f"the database is a number (redis://host:6379/0), not {db!r}")
    except ValueError as exc:
        raise ValueError(f"{what} {redacted(url)!r}: {exc}") from None
