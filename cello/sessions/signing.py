"""Signed, timestamped values for cookies (itsdangerous), with key rotation.

The first of the secret keys signs; every key verifies, so a key can be replaced without
logging everyone out: put the new key first, keep the old one after it until the sessions it
signed have expired (``max_age``), then drop it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from itsdangerous import BadData, URLSafeTimedSerializer


class JsonCodec:
    """Compact JSON, refusing NaN and infinities (what no other JSON reader would take)."""

    @staticmethod
    def dumps(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)

    @staticmethod
    def loads(text: str | bytes) -> Any:
        return json.loads(text)


def secret_keys(secret_key: str | bytes | Sequence[str | bytes]) -> list[str | bytes]:
    """The keys as a list, newest first; a clear error for none or an empty one."""
    keys = [secret_key] if isinstance(secret_key, (str, bytes)) else list(secret_key)
    if not keys or any(not isinstance(key, (str, bytes)) or not key for key in keys):
        raise ValueError("secret_key must be a non-empty string (or a list of them, the first one signing)")
    return keys


class Signer:
    """Dumps a JSON value into a signed, timestamped, URL-safe string, and back."""

    def __init__(self, keys: Sequence[str | bytes], salt: str, max_age: int) -> None:
        # itsdangerous signs with the last key of the list: ours signs with the first.
        newest_last = [key.encode("utf-8") if isinstance(key, str) else key for key in reversed(keys)]
        self._serializer = URLSafeTimedSerializer(newest_last, salt=salt, serializer=JsonCodec)
        self.max_age = max_age

    def dumps(self, value: Any) -> str:
        text = self._serializer.dumps(value)
        return text if isinstance(text, str) else text.decode("ascii")

    def loads(self, text: str) -> Any:
        """The value, or None when ``text`` is not one of ours: tampered with, signed by an
        unknown key, older than ``max_age``, or not even readable."""
        try:
            return self._serializer.loads(text, max_age=self.max_age)
        except (BadData, ValueError, TypeError, UnicodeError):
            return None
