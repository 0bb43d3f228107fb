"""examples/notes_site.py over the network on both parsers: templates with url_for, a
signed-cookie session with login, CSRF on every form, flashed messages, work after the
response and security headers."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx
import pytest
from support.servers import RunningServer

SITE = "examples/notes_site.py"


def _token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_the_notes_site(serve_app: Callable[..., RunningServer], http: str) -> None:
    server = serve_app(SITE, http)
    with httpx.Client(base_url=server.url) as client:
        home = client.get("/")
        assert (home.status_code, home.headers["location"]) in {(302, "/login"), (303, "/login")}
        login = client.get("/login")
        assert login.status_code == 200 and login.headers["content-type"] == "text/html; charset=utf-8"
        assert login.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'self'" in login.headers["content-security-policy"]
        token = _token(login.text)

        # A form post without the token is refused, with the JSON error body.
        refused = client.post("/login", data={"user": "ada", "password": "lovelace"})
        assert refused.status_code == 403
        assert refused.json() == {"error": "Forbidden: CSRF token missing or invalid", "status": 403}

        wrong = client.post("/login", data={"user": "ada", "password": "nope", "csrf_token": token})
        assert wrong.status_code == 401 and "Unknown user or wrong password." in wrong.text

        before = client.cookies.get("session")
        ok = client.post("/login", data={"user": "ada", "password": "lovelace", "csrf_token": _token(wrong.text)})
        assert (ok.status_code, ok.headers["location"]) == (303, "/")
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert client.cookies.get("session") != before  # regenerated at login

        page = client.get("/")
        assert "Welcome, ada." in page.text and "<h1>ada's notes</h1>" in page.text
        assert "Welcome, ada." not in client.get("/").text  # a flashed message shows once

        added = client.post(
            "/notes", data={"text": "<script>x()</script> three words", "csrf_token": _token(page.text)}
        )
        assert added.status_code == 303
        page = client.get("/")
        assert "Note saved." in page.text
        assert "&lt;script&gt;x()&lt;/script&gt; three words" in page.text and "<script>x()" not in page.text
        note_id = int(re.search(r"/notes/(\d+)/delete", page.text).group(1))  # type: ignore[union-attr]

        # The words were counted after the response that added the note.
        deadline = time.monotonic() + 5
        while (words := client.get(f"/notes/{note_id}/words").json()["words"]) is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert words == 3

        gone = client.post(f"/notes/{note_id}/delete", data={"csrf_token": _token(page.text)})
        assert gone.status_code == 303 and "Note deleted." in client.get("/").text
        assert client.get(f"/notes/{note_id}/words").status_code == 404

        out = client.post("/logout", data={"csrf_token": _token(client.get("/").text)})
        assert (out.status_code, out.headers["location"]) == (303, "/login")
        assert client.get(f"/notes/{note_id}/words").status_code == 401

    # Another client cannot use ada's notes without her session.
    with httpx.Client(base_url=server.url) as stranger:
        assert stranger.get("/notes/1/words").status_code == 401
