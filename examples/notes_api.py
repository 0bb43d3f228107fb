"""A typed CRUD API for notes, documented with OpenAPI: msgspec models validate the input and
encode the output, and the same annotations describe the API at /openapi.json and /docs.

Run it with `python examples/notes_api.py` (or `cello serve examples/notes_api.py`), then:

    curl localhost:8000/notes
    curl -X POST localhost:8000/notes -H 'Content-Type: application/json' \\
         -d '{"title": "Groceries", "tags": ["home"]}'
    curl localhost:8000/notes/1
    curl -X PUT localhost:8000/notes/1 -d '{"title": "Groceries", "body": "eggs, milk", "tags": []}'
    curl -X DELETE localhost:8000/notes/1
    open http://localhost:8000/docs

Bad input answers 422 naming every problem, e.g. `curl 'localhost:8000/notes?limit=0'`; an
unknown id answers 404. The notes live in memory, in one process.
"""

from __future__ import annotations

import itertools
import threading
from typing import Annotated

import msgspec

from cello import App, Header, HTTPException, Query

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=30, pattern=r"^[a-z0-9-]+$")]


class NoteIn(msgspec.Struct, kw_only=True):
    """What a client sends to create or replace a note."""

    title: Title
    body: Annotated[str, msgspec.Meta(max_length=10_000)] = ""
    tags: Annotated[list[Tag], msgspec.Meta(max_length=10)] = []


class Note(NoteIn, kw_only=True):
    """A stored note."""

    id: int


class NotePage(msgspec.Struct, kw_only=True):
    """One page of notes, and how many match in all."""

    items: list[Note]
    total: int


class NoteStore:
    """Notes by id, safe to share between the loop and threaded handlers."""

    def __init__(self) -> None:
        self._notes: dict[int, Note] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, data: NoteIn) -> Note:
        with self._lock:
            note = Note(id=next(self._ids), title=data.title, body=data.body, tags=list(data.tags))
            self._notes[note.id] = note
            return note

    def get(self, note_id: int) -> Note:
        note = self._notes.get(note_id)
        if note is None:
            raise HTTPException(404, f"No note {note_id}")
        return note

    def replace(self, note_id: int, data: NoteIn) -> Note:
        with self._lock:
            self.get(note_id)
            note = Note(id=note_id, title=data.title, body=data.body, tags=list(data.tags))
            self._notes[note_id] = note
            return note

    def remove(self, note_id: int) -> None:
        with self._lock:
            self.get(note_id)
            del self._notes[note_id]

    def search(self, q: str | None, tag: str | None) -> list[Note]:
        notes = sorted(self._notes.values(), key=lambda note: note.id)
        if q:
            needle = q.casefold()
            notes = [n for n in notes if needle in n.title.casefold() or needle in n.body.casefold()]
        if tag:
            notes = [n for n in notes if tag in n.tags]
        return notes


app = App()
store = NoteStore()


@app.post("/notes", status=201)
def create_note(note: NoteIn) -> Note:
    """Create a note.

    The new note gets the next id; the answer is the stored note.
    """
    return store.add(note)


@app.get("/notes")
def list_notes(
    q: Annotated[str | None, Query(max_length=100, description="Text the title or body contains")] = None,
    tag: Annotated[Tag | None, Query(description="Only notes with this tag")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
    client: Annotated[str | None, Header("x-client", max_length=64, description="Who is asking")] = None,
) -> NotePage:
    """List notes, oldest first, a page at a time."""
    found = store.search(q, tag)
    return NotePage(items=found[offset : offset + limit], total=len(found))


@app.get("/notes/{id:int}")
def get_note(id: int) -> Note:
    """Read one note."""
    return store.get(id)


@app.put("/notes/{id:int}")
def replace_note(id: int, note: NoteIn) -> Note:
    """Replace a note's title, body and tags."""
    return store.replace(id, note)


@app.delete("/notes/{id:int}")
def delete_note(id: int) -> None:
    """Delete a note."""
    store.remove(id)


app.openapi(title="Notes", version="1.0", description="A typed CRUD API for notes, kept in memory.")


if __name__ == "__main__":
    app.run()
