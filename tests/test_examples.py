"""The example apps in examples/, served by `cello serve` and driven over HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from support import sse
from support.artifacts import ROOT
from support.ports import free_port, wait_for_port
from support.servers import RunningServer

ORIGIN = "http://localhost:3000"
KEY = {"x-api-key": "dev-key"}


def unique(stem: str, suffix: str) -> str:
    """A file name no other test (or earlier run on the same server) uses."""
    return f"{stem}-{uuid.uuid4().hex[:8]}{suffix}"


@pytest.fixture
def dashboard(serve_app: Callable[..., RunningServer]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=serve_app("examples/dashboard.py").url, timeout=10) as client:
        yield client


@pytest.fixture
def uploads(serve_app: Callable[..., RunningServer]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=serve_app("examples/upload.py").url, timeout=10) as client:
        yield client


# The REST API runs on both parsers and both routers (the compiled one built on demand).
@pytest.fixture(params=[("httptools", "interpreted"), ("h11", "compiled")], ids=lambda v: f"{v[0]}-{v[1]}")
def rest(serve_app: Callable[..., RunningServer], request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=serve_app("examples/rest.py", *request.param).url, timeout=10) as client:
        yield client


# -- dashboard ---------------------------------------------------------------------------------


def test_dashboard_page_reads_the_stream(dashboard: httpx.Client) -> None:
    response = dashboard.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'new EventSource("/events")' in response.text
    assert 'id="count"' in response.text


def test_dashboard_events_carry_metrics(dashboard: httpx.Client) -> None:
    response = dashboard.get("/events", params={"limit": 3})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    events, retry = sse.parse(response.text)
    assert retry == 1000
    assert [(e.type, e.last_event_id) for e in events] == [("metrics", "0"), ("metrics", "1"), ("metrics", "2")]
    payloads = [json.loads(e.data) for e in events]
    assert [p["seq"] for p in payloads] == [0, 1, 2]
    for payload in payloads:
        assert {"time", "uptime_s", "load1", "cpu_percent", "rss_mib", "clients", "orders_per_min"} <= payload.keys()
        assert payload["clients"] >= 1


def test_dashboard_resumes_after_last_event_id(dashboard: httpx.Client) -> None:
    response = dashboard.get("/events", params={"limit": 1}, headers={"last-event-id": "41"})
    events, _ = sse.parse(response.text)
    assert [e.last_event_id for e in events] == ["42"]
    assert json.loads(events[0].data)["seq"] == 42


def test_dashboard_snapshot_and_bad_query(dashboard: httpx.Client) -> None:
    assert "uptime_s" in dashboard.get("/metrics").json()
    response = dashboard.get("/events", params={"limit": "many"})
    assert (response.status_code, response.json()["error"]) == (400, "limit must be an integer")


# -- uploads ---------------------------------------------------------------------------------


def test_upload_page_has_both_forms(uploads: httpx.Client) -> None:
    page = uploads.get("/").text
    assert '<form id="classic" action="/upload" method="post" enctype="multipart/form-data">' in page
    assert 'fetch("/api/upload"' in page


def test_upload_classic_form_redirects_and_lists(uploads: httpx.Client) -> None:
    name = unique("notes", ".txt")
    response = uploads.post("/upload", files={"files": (name, b"x" * 1500, "text/plain")})
    assert response.status_code == 303
    assert response.headers["location"] == f"/?uploaded={name}"
    page = uploads.get(response.headers["location"]).text
    assert f"Uploaded {name}." in page
    assert f'<li data-name="{name}" data-size="1500">' in page
    assert "1.5 KiB" in page


def test_upload_api_saves_several_files(uploads: httpx.Client) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    first, second = unique("a", ".png"), unique("b", ".csv")
    files = [("files", (first, png, "image/png")), ("files", (second, b"a,b\n1,2\n", "text/csv"))]
    response = uploads.post("/api/upload", files=files)
    assert response.status_code == 201
    assert response.json()["saved"] == [
        {"filename": first, "size": len(png), "content_type": "image/png"},
        {"filename": second, "size": 8, "content_type": "text/csv"},
    ]
    listed = {f["filename"]: f["size"] for f in uploads.get("/api/files").json()["files"]}
    assert listed[first] == len(png) and listed[second] == 8


def test_upload_rejects_disallowed_types(uploads: httpx.Client) -> None:
    exe, disguised = unique("tool", ".exe"), unique("readme", ".txt")
    response = uploads.post("/api/upload", files={"files": (exe, b"MZ\x90\x00", "application/x-msdownload")})
    assert response.status_code == 415
    assert response.json() == {"error": f"{exe}: type application/x-msdownload is not allowed", "status": 415}
    # Declared text/plain, but the magic bytes say it is an ELF executable.
    elf = b"\x7fELF\x02\x01\x01" + b"\x00" * 60
    response = uploads.post("/api/upload", files={"files": (disguised, elf, "text/plain")})
    assert response.status_code == 415
    # The HTML form gets a page that says why.
    response = uploads.post("/upload", files={"files": (exe, b"MZ\x90\x00", "application/x-msdownload")})
    assert response.status_code == 415
    assert response.headers["content-type"].startswith("text/html")
    assert "Upload refused" in response.text
    names = {f["filename"] for f in uploads.get("/api/files").json()["files"]}
    assert exe not in names and disguised not in names


def test_upload_without_a_file(uploads: httpx.Client) -> None:
    # What a browser sends for an empty <input type="file">: a part with filename="".
    response = uploads.post("/api/upload", files={"files": ("", b"", "application/octet-stream")})
    assert (response.status_code, response.json()["error"]) == (400, "choose at least one file")


# -- REST API ----------------------------------------------------------------------------------


def test_rest_crud(rest: httpx.Client) -> None:
    response = rest.post("/api/v1/users", json={"name": "Linus", "email": "linus@example.org"}, headers=KEY)
    assert response.status_code == 201
    user = response.json()
    assert user == {"id": user["id"], "name": "Linus", "email": "linus@example.org"}
    location = response.headers["location"]
    assert location == f"/api/v1/users/{user['id']}"

    assert rest.get(location).json() == user
    assert user in rest.get("/api/v1/users", params={"limit": 500}).json()["users"]

    response = rest.patch(location, json={"name": "Linus T."}, headers=KEY)
    assert response.json() == {**user, "name": "Linus T."}
    response = rest.put(location, json={"name": "L. Torvalds", "email": "lt@example.org"}, headers=KEY)
    assert response.json() == {"id": user["id"], "name": "L. Torvalds", "email": "lt@example.org"}
    assert rest.get(location).json()["name"] == "L. Torvalds"

    response = rest.delete(location, headers=KEY)
    assert (response.status_code, response.content) == (204, b"")
    response = rest.get(location)
    assert (response.status_code, response.json()) == (404, {"error": f"no user with id {user['id']}", "status": 404})
    assert rest.delete(location, headers=KEY).status_code == 404


def test_rest_listing_and_pagination(rest: httpx.Client) -> None:
    body = rest.get("/api/v1/users", params={"limit": 1, "offset": 0}).json()
    assert body["limit"] == 1 and len(body["users"]) == 1 and body["total"] >= 2
    assert rest.get("/api/v1/users", params={"limit": -1}).status_code == 400
    assert rest.get("/api/v1").json()["resources"] == {"users": "/api/v1/users"}
    # The blueprint route "" serves the prefix itself; the trailing slash redirects.
    response = rest.get("/api/v1/users/", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (308, "/api/v1/users")


def test_rest_validation_errors(rest: httpx.Client) -> None:
    cases = [
        ({"name": "x"}, "missing field(s): email"),
        ({"name": "x", "email": "nope"}, "email must contain @"),
        ({"name": "x", "email": "a@b", "admin": True}, "unknown field(s): admin"),
        ([1, 2], "the body must be a JSON object"),
        ({"name": "", "email": "a@b"}, "name must be a non-empty string"),
    ]
    for payload, error in cases:
        response = rest.post("/api/v1/users", json=payload, headers=KEY)
        assert (response.status_code, response.json()) == (422, {"error": error, "status": 422}), payload
    response = rest.post("/api/v1/users", content=b"{not json", headers=KEY)
    assert response.status_code == 400


def test_rest_404_and_405(rest: httpx.Client) -> None:
    assert rest.get("/api/v1/users/999999").status_code == 404
    response = rest.get("/api/v1/users/abc")  # not an int: no route matches
    assert (response.status_code, response.json()["status"]) == (404, 404)
    assert rest.get("/api/v2/users").status_code == 404
    response = rest.post("/api/v1")
    assert (response.status_code, response.headers["allow"]) == (405, "GET, HEAD, OPTIONS")
    response = rest.post("/api/v1/users/1", headers=KEY)
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"


def test_rest_guard_on_writes(rest: httpx.Client) -> None:
    new = {"name": "Eve", "email": "eve@example.org"}
    response = rest.post("/api/v1/users", json=new)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "ApiKey"
    assert response.json()["error"] == "X-API-Key header required for write requests"
    response = rest.post("/api/v1/users", json=new, headers={"x-api-key": "wrong"})
    assert (response.status_code, response.json()) == (403, {"error": "Forbidden", "status": 403})
    assert rest.delete("/api/v1/users/1").status_code == 401
    assert rest.patch("/api/v1/users/1", json={"name": "x"}, headers={"x-api-key": "wrong"}).status_code == 403
    assert rest.get("/api/v1/users/1").status_code == 200  # reads stay open
    assert rest.get("/api/v1/users/1").json()["name"] == "Ada Lovelace"


def test_rest_cors(rest: httpx.Client) -> None:
    preflight = {
        "origin": ORIGIN,
        "access-control-request-method": "DELETE",
        "access-control-request-headers": "x-api-key, content-type",
    }
    response = rest.options("/api/v1/users/1", headers=preflight)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "DELETE" in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-allow-headers"] == "x-api-key, content-type"
    assert response.headers["access-control-max-age"] == "600"
    assert "Origin" in response.headers["vary"]

    response = rest.options("/api/v1/users/1", headers={**preflight, "origin": "https://evil.example"})
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    response = rest.options("/api/v1/users", headers={**preflight, "access-control-request-headers": "x-secret"})
    assert response.status_code == 403

    response = rest.get("/api/v1/users/1", headers={"origin": ORIGIN})
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-expose-headers"] == "location"
    response = rest.get("/api/v1/users/1", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers


# -- chat --------------------------------------------------------------------------------------


async def test_chat_broadcasts_to_everyone(serve_app: Callable[..., RunningServer]) -> None:
    import websockets

    server = serve_app("examples/chat.py")
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "new WebSocket(" in page.text
    base = f"ws://127.0.0.1:{server.port}/ws"
    async with websockets.connect(base + "?name=ada") as ada:
        # Her own join comes back through the room's channel: she is in it.
        assert json.loads(await ada.recv()) == {"type": "join", "name": "ada"}
        async with websockets.connect(base + "?name=grace") as grace:
            assert json.loads(await ada.recv()) == {"type": "join", "name": "grace"}
            assert json.loads(await grace.recv()) == {"type": "join", "name": "grace"}
            await grace.send("hello, room")
            await grace.send("   ")  # blank: not sent to anyone
            await ada.send("x" * 3000)
            expected = {"type": "message", "name": "grace", "text": "hello, room"}
            long = {"type": "message", "name": "ada", "text": "x" * 2000}  # cut to MAX_TEXT
            for client in (ada, grace):
                assert json.loads(await client.recv()) == expected
                assert json.loads(await client.recv()) == long
        assert json.loads(await ada.recv()) == {"type": "leave", "name": "grace"}
        async with websockets.connect(base) as guest:
            joined = json.loads(await guest.recv())
            assert joined["type"] == "join" and joined["name"].startswith("guest-")
            assert json.loads(await ada.recv()) == joined


# -- typed notes API ---------------------------------------------------------------------------


@pytest.fixture
def notes(serve_app: Callable[..., RunningServer]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=serve_app("examples/notes_api.py").url, timeout=10) as client:
        yield client


def test_notes_crud(notes: httpx.Client) -> None:
    created = notes.post("/notes", json={"title": "Groceries", "tags": ["home"]})
    assert created.status_code == 201
    note = created.json()
    assert note == {"id": note["id"], "title": "Groceries", "body": "", "tags": ["home"]}
    url = f"/notes/{note['id']}"
    assert notes.get(url).json() == note
    replaced = notes.put(url, json={"title": "Shopping", "body": "eggs"})
    assert replaced.json() == {**note, "title": "Shopping", "body": "eggs", "tags": []}
    found = notes.get("/notes", params={"q": "EGGS"}).json()
    assert note["id"] in [item["id"] for item in found["items"]]
    deleted = notes.delete(url)
    assert (deleted.status_code, deleted.content) == (204, b"")
    missing = notes.get(url)
    assert (missing.status_code, missing.json()["error"]) == (404, f"No note {note['id']}")


def test_notes_validation(notes: httpx.Client) -> None:
    invalid = notes.post("/notes", json={"title": "", "tags": ["Not A Tag"]})
    assert invalid.status_code == 422
    assert [problem["loc"] for problem in invalid.json()["detail"]] == [["body", "title"]]
    page = notes.get("/notes", params={"limit": 0, "offset": -1})
    assert page.status_code == 422
    assert [problem["loc"] for problem in page.json()["detail"]] == [["query", "limit"], ["query", "offset"]]
    assert notes.post("/notes", content=b"{", headers={"content-type": "application/json"}).status_code == 400


def test_notes_documents_itself(notes: httpx.Client) -> None:
    document = notes.get("/openapi.json").json()
    assert document["info"]["title"] == "Notes"
    assert set(document["paths"]) == {"/notes", "/notes/{id}"}
    assert notes.get("/docs").status_code == 200


def test_notes_runs_with_python(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "notes.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "examples/notes_api.py", "--port", str(port)], cwd=ROOT, stdout=sink, stderr=sink
        )
    try:
        wait_for_port(port, process)
        answer = httpx.get(f"http://127.0.0.1:{port}/notes", timeout=10)
        assert answer.json() == {"items": [], "total": 0}
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(15)
