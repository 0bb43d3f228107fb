"""A small server-rendered site: log in, keep notes, see what happened.

Run it with `cello serve examples/notes_site.py` and open http://127.0.0.1:8000/ (users:
ada / lovelace, alan / turing).

- Pages are Jinja2 templates (examples/templates/notes_site/) rendered with
  `Response.template`; every link and form action comes from `url_for`.
- Logging in stores the user in a signed-cookie session (`app.enable_sessions`), after
  `regenerate()`: a session id planted before the login is worth nothing after it.
- Every form carries a CSRF token (`app.enable_csrf`); a post without it gets 403.
- After a note is added or deleted the next page shows a flashed message.
- Counting a note's words happens after the response has been written
  (`request.after_response`): the browser never waits for it.
- `app.enable_security_headers()` sets nosniff, a referrer policy, frame denial and a CSP.

The notes live in this process's memory, so they are per worker and gone at restart: a real
site keeps them in a database.
"""

from __future__ import annotations

import hmac
import itertools
import os
from dataclasses import dataclass, field
from typing import Any

from cello import App, HTTPException, Request, Response

app = App(templates="templates/notes_site")
# A development secret when none is configured: sessions do not survive a restart then.
app.enable_sessions(secret_key=os.environ.get("NOTES_SECRET_KEY") or os.urandom(32).hex())
app.enable_csrf()
app.enable_security_headers(csp="default-src 'self'; style-src 'self' 'unsafe-inline'")

# Demo users. A real site stores password hashes (hashlib.scrypt), never passwords.
USERS = {"ada": "lovelace", "alan": "turing"}
MAX_TEXT = 2000


@dataclass
class Note:
    id: int
    owner: str
    text: str
    words: int | None = None  # counted after the response that created it


@dataclass
class Notebook:
    notes: dict[int, Note] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


NOTEBOOK = Notebook()


def current_user(request: Request) -> str | None:
    user = request.session.get("user")
    return user if isinstance(user, str) and user in USERS else None


def count_words(note_id: int) -> None:
    """Background work: runs in a thread once the response has been written."""
    note = NOTEBOOK.notes.get(note_id)
    if note is not None:
        note.words = len(note.text.split())


@app.get("/")
def home(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return Response.redirect(app.url_for("login_form"))
    notes = [note for note in NOTEBOOK.notes.values() if note.owner == user]
    return Response.template("notes.html", user=user, notes=notes)


@app.get("/login")
def login_form(request: Request) -> Response:
    return Response.template("login.html")


@app.post("/login")
def login(request: Request) -> Response:
    form = request.form()
    user, password = str(form.get("user") or ""), str(form.get("password") or "")
    expected = USERS.get(user)
    if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
        request.flash("Unknown user or wrong password.", "error")
        return Response.template("login.html", status=401)
    request.session.regenerate()
    request.session["user"] = user
    request.flash(f"Welcome, {user}.")
    return Response.redirect(app.url_for("home"), status=303)


@app.post("/logout")
def logout(request: Request) -> Response:
    request.session.clear()
    return Response.redirect(app.url_for("login_form"), status=303)


@app.post("/notes")
def add_note(request: Request) -> Response:
    user = _required_user(request)
    text = str(request.form().get("text") or "").strip()[:MAX_TEXT]
    if text:
        note = Note(next(NOTEBOOK.ids), user, text)
        NOTEBOOK.notes[note.id] = note
        request.after_response(count_words, note.id)
        request.flash("Note saved.")
    else:
        request.flash("A note needs some text.", "error")
    return Response.redirect(app.url_for("home"), status=303)


@app.post("/notes/{id:int}/delete")
def delete_note(request: Request) -> Response:
    user = _required_user(request)
    note = NOTEBOOK.notes.get(request.params["id"])
    if note is None or note.owner != user:
        raise HTTPException(404, "Not Found: no such note")
    del NOTEBOOK.notes[note.id]
    request.flash("Note deleted.")
    return Response.redirect(app.url_for("home"), status=303)


@app.get("/notes/{id:int}/words")
def words(request: Request) -> dict[str, Any]:
    """How many words a note has, once counted (the background job's result)."""
    user = _required_user(request)
    note = NOTEBOOK.notes.get(request.params["id"])
    if note is None or note.owner != user:
        raise HTTPException(404, "Not Found: no such note")
    return {"id": note.id, "words": note.words}


def _required_user(request: Request) -> str:
    user = current_user(request)
    if user is None:
        raise HTTPException(401, "Unauthorized: log in first")
    return user


if __name__ == "__main__":
    app.run()
