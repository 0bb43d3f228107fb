"""Path parameter value semantics: the one definition of what each converter accepts.

Every check is exception-free (a failed ``int()`` costs microseconds once compiled), and
the generated dispatch module inlines copies of these functions; the equivalence tests
hold the copies to this definition.
"""

from __future__ import annotations

import uuid
from typing import Final

from cello.routing.pattern import CATCHALL, FLOAT, INT, UUID

# 18 digits always fit a signed 64-bit integer, so compiled code stays on machine ints.
INT_MAX_DIGITS: Final = 18
# Bounds the parse cost of hostile input and keeps every accepted float finite.
FLOAT_MAX_CHARS: Final = 64

_HEX: Final = "0123456789abcdefABCDEF"


def is_int(s: str) -> bool:
    # isdigit() alone accepts "١" and "²"; isascii() narrows it to 0-9.
    return len(s) <= INT_MAX_DIGITS and s.isascii() and s.isdigit()


def is_float(s: str) -> bool:
    if len(s) > FLOAT_MAX_CHARS or not s.isascii():
        return False
    head, dot, tail = s.partition(".")
    if not head.isdigit():
        return False
    return not dot or tail.isdigit()


def is_uuid(s: str) -> bool:
    if len(s) != 36 or s[8] != "-" or s[13] != "-" or s[18] != "-" or s[23] != "-":
        return False
    digits = s.replace("-", "")
    # strip() empties the string only when every character is a hex digit.
    return len(digits) == 32 and not digits.strip(_HEX)


def is_str(s: str) -> bool:
    return s != ""


def convert(kind: int, segments: list[str], index: int) -> object:
    """The value of a param of ``kind`` at ``segments[index]``, already known to match."""
    if kind == INT:
        return int(segments[index])
    if kind == FLOAT:
        return float(segments[index])
    if kind == UUID:
        return uuid.UUID(segments[index])
    if kind == CATCHALL:
        return "/".join(segments[index:])
    return segments[index]
