"""Security headers on every response: HSTS (HTTPS only), nosniff, Referrer-Policy, frame
options, and optionally a Content-Security-Policy and a Permissions-Policy.

An after-hook: a header the handler (or an inner hook) set is left as it is, so one route can
loosen or tighten what the app sets. Nothing is installed until ``enable_security_headers()``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cello.headers import check_header_value
from cello.request import Request
from cello.response import Response

ONE_YEAR = 365 * 24 * 3600
HSTS_DEFAULT = f"max-age={ONE_YEAR}; includeSubDomains"


@dataclass(frozen=True)
class SecurityHeaders:
    # (lower-case name, value) for every response, then HSTS for HTTPS ones.
    always: tuple[tuple[str, str], ...]
    hsts: str | None

    @classmethod
    def create(
        cls,
        hsts: bool | str,
        content_type_options: str | None,
        referrer_policy: str | None,
        frame_options: str | None,
        csp: str | None,
        permissions_policy: str | None,
    ) -> SecurityHeaders:
        # No defaults here: enable_security_headers's are the only ones, so they cannot drift apart.
        if hsts is True:
            hsts_value: str | None = HSTS_DEFAULT
        elif hsts is False or hsts is None:
            hsts_value = None
        else:
            hsts_value = hsts
        if frame_options is not None and frame_options.upper() not in ("DENY", "SAMEORIGIN"):
            raise ValueError(f"frame_options is 'DENY', 'SAMEORIGIN' or None, not {frame_options!r}")
        wanted = {
            "x-content-type-options": content_type_options,
            "referrer-policy": referrer_policy,
            "x-frame-options": frame_options.upper() if frame_options else None,
            "content-security-policy": csp,
            "permissions-policy": permissions_policy,
        }
        always = tuple((name, value) for name, value in wanted.items() if value)
        for name, value in (*always, ("strict-transport-security", hsts_value or "")):
            # Refused here, at start-up, rather than on every response.
            check_header_value(name, value)
        return cls(always, hsts_value)

    def after(self, request: Request, response: Response) -> None:
        headers = response.raw_headers()
        present = {name.lower() for name, _ in headers}
        for name, value in self.always:
            if name not in present:
                headers.append((name, value))
        # Over plain HTTP the header means nothing (RFC 6797 §7.2): browsers ignore it there.
        if self.hsts is not None and request.scheme == "https" and "strict-transport-security" not in present:
            headers.append(("strict-transport-security", self.hsts))
