"""Text written into a generated module's comments and docstrings."""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` safe inside a comment or docstring of the generated module."""
    if text.isprintable() and '"""' not in text and "\\" not in text:
        return text
    return ascii(text)
