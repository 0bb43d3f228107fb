"""Exceptions the server raises into handlers.

(Kept out of the modules compiled with mypyc: it cannot compile subclasses of OSError.)
"""

from __future__ import annotations


class ClientDisconnect(ConnectionError):
    """The client went away before the whole request body arrived."""
