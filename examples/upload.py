"""File uploads: a plain HTML form and a JavaScript `fetch` variant, both multipart.

Run it with `cello serve examples/upload.py` and open http://127.0.0.1:8000/.

- `GET /` is the page: the files uploaded so far (name and size), a classic
  `<form enctype="multipart/form-data">`, and a second form sent with `fetch`.
- `POST /upload` takes the classic form: on success it redirects back to the page (303),
  a disallowed type gets a 415 page that says why.
- `POST /api/upload` takes the same multipart body and answers JSON (201, or a 415 error).
- `GET /api/files` lists the stored files as JSON.

Files are saved in a temporary directory, removed at exit (set `$UPLOAD_DIR` to keep them).
Only a few types are accepted: the type the browser declares and, when the content has magic
bytes, the type they reveal must both be allowed (a `.txt` that is really an executable is
refused).
"""

from __future__ import annotations

import asyncio
import atexit
import html
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

from cello import App, HTTPException, Request, Response, UploadedFile

if os.environ.get("UPLOAD_DIR"):
    UPLOAD_DIR = Path(os.environ["UPLOAD_DIR"])
    UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
else:
    # A fresh directory, removed when the process that made it exits (workers are forked
    # from it and share it).
    UPLOAD_DIR = Path(tempfile.mkdtemp(prefix="cello-uploads-"))
    _owner = os.getpid()

    @atexit.register
    def _remove_upload_dir() -> None:
        if os.getpid() == _owner:
            shutil.rmtree(UPLOAD_DIR, ignore_errors=True)


ALLOWED_TYPES = {
    "text/plain",
    "text/csv",
    "text/markdown",
    "application/json",
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
}

app = App(max_file_size=5 * 1024 * 1024, max_body_size=20 * 1024 * 1024)


class UnsupportedType(Exception):
    def __init__(self, filename: str, content_type: str) -> None:
        super().__init__(f"{filename}: type {content_type} is not allowed")
        self.filename = filename
        self.content_type = content_type


def stored() -> list[tuple[str, int]]:
    """(file name, size in bytes) of every stored file, by name."""
    paths = sorted((p for p in UPLOAD_DIR.iterdir() if p.is_file()), key=lambda p: p.name.lower())
    return [(path.name, path.stat().st_size) for path in paths]


def stored_files() -> list[dict[str, object]]:
    return [{"filename": name, "size": size} for name, size in stored()]


def check_type(upload: UploadedFile) -> None:
    declared = upload.content_type.split(";")[0].strip().lower()
    detected = upload.detected_type
    if declared not in ALLOWED_TYPES:
        raise UnsupportedType(upload.filename, declared)
    if detected is not None and detected not in ALLOWED_TYPES:
        raise UnsupportedType(upload.filename, detected)


async def save_uploads(request: Request) -> list[dict[str, object]]:
    """Check every file first, then save them all: one bad file stores nothing."""
    files = [f for f in await request.files() if f.raw_filename or f.size()]  # an empty <input> sends filename=""
    if not files:
        raise HTTPException(400, "choose at least one file")
    for upload in files:
        check_type(upload)
    saved = []
    for upload in files:
        # save() copies in chunks; a worker thread keeps the event loop free meanwhile.
        await asyncio.to_thread(upload.save, UPLOAD_DIR / upload.filename)
        saved.append({"filename": upload.filename, "size": upload.size(), "content_type": upload.content_type})
    return saved


# -- JSON API (used by the page's fetch form) -----------------------------------------------


@app.post("/api/upload")
async def api_upload(request: Request) -> Response:
    try:
        saved = await save_uploads(request)
    except UnsupportedType as exc:
        raise HTTPException(415, str(exc)) from None
    return Response.json({"saved": saved, "files": stored_files()}, status=201)


@app.get("/api/files")
def api_files(request: Request) -> dict[str, object]:
    return {"files": stored_files()}


# -- HTML ------------------------------------------------------------------------------------


@app.post("/upload")
async def form_upload(request: Request) -> Response:
    try:
        saved = await save_uploads(request)
    except UnsupportedType as exc:
        return Response.html(page(error=str(exc)), status=415)
    except HTTPException as exc:
        return Response.html(page(error=str(exc.detail)), status=exc.status_code)
    names = ", ".join(str(item["filename"]) for item in saved)
    return Response.redirect(f"/?uploaded={quote(names)}", status=303)


@app.get("/")
def index(request: Request) -> Response:
    uploaded = request.query.get("uploaded")
    return Response.html(page(notice=f"Uploaded {uploaded}." if uploaded else None))


def human(size: int) -> str:
    """The same wording as the page's JavaScript: "12 bytes", "3.4 KiB", "1.2 MiB"."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"


def page(notice: str | None = None, error: str | None = None) -> str:
    files = stored()
    rows = "\n".join(
        f'<li data-name="{html.escape(name)}" data-size="{size}">'
        f'<span class="name">{html.escape(name)}</span> &mdash; <span class="size">{human(size)}</span></li>'
        for name, size in files
    )
    message = ""
    if notice:
        message = f'<p class="notice" id="notice">{html.escape(notice)}</p>'
    if error:
        message = f'<p class="error" id="error" role="alert">Upload refused: {html.escape(error)}</p>'
    accept = ",".join(sorted(ALLOWED_TYPES))
    return PAGE.format(message=message, rows=rows, accept=accept, count=len(files))


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Cello uploads</title>
<style>
  body {{ font-family: system-ui, sans-serif; margin: 2rem; max-width: 44rem; }}
  form {{ border: 1px solid #ccc; border-radius: 8px; padding: 1rem; margin: 1rem 0; }}
  .notice {{ color: #16803c; }} .error {{ color: #b42318; font-weight: bold; }}
  #files li {{ font-variant-numeric: tabular-nums; }}
</style>
</head>
<body>
<h1>Upload files</h1>
{message}
<form id="classic" action="/upload" method="post" enctype="multipart/form-data">
  <h2>Classic form</h2>
  <input type="file" name="files" id="classic-files" multiple>
  <button type="submit" id="classic-submit">Upload</button>
</form>
<form id="js-form">
  <h2>With fetch</h2>
  <input type="file" name="files" id="js-files" multiple accept="{accept}">
  <button type="submit" id="js-submit">Upload with JavaScript</button>
  <p id="js-status" aria-live="polite"></p>
</form>
<h2>Stored files (<span id="file-count">{count}</span>)</h2>
<ul id="files">
{rows}
</ul>
<script>
  function human(size) {{
    if (size < 1024) return size + " bytes";
    if (size < 1024 * 1024) return (size / 1024).toFixed(1) + " KiB";
    return (size / 1024 / 1024).toFixed(1) + " MiB";
  }}
  function render(files) {{
    const list = document.getElementById("files");
    list.replaceChildren(...files.map((f) => {{
      const item = document.createElement("li");
      item.dataset.name = f.filename;
      item.dataset.size = String(f.size);
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = f.filename;
      const size = document.createElement("span");
      size.className = "size";
      size.textContent = human(f.size);
      item.append(name, " \\u2014 ", size);
      return item;
    }}));
    document.getElementById("file-count").textContent = String(files.length);
  }}
  document.getElementById("js-form").addEventListener("submit", async (event) => {{
    event.preventDefault();
    const status = document.getElementById("js-status");
    status.className = "";
    status.textContent = "Uploading\\u2026";
    const response = await fetch("/api/upload", {{ method: "POST", body: new FormData(event.target) }});
    const body = await response.json();
    if (response.ok) {{
      status.className = "notice";
      status.textContent = "Uploaded " + body.saved.map((f) => f.filename + " (" + f.size + " bytes)").join(", ") + ".";
      render(body.files);
    }} else {{
      status.className = "error";
      status.textContent = "Upload refused (" + response.status + "): " + body.error;
    }}
  }});
</script>
</body>
</html>
"""


if __name__ == "__main__":
    app.run()
