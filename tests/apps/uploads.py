"""Multipart uploads: the seed's example, the existing-Cello form style, and tight limits."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cello import App, Blueprint, HTTPException, Request, Response

ROOT = Path(__file__).resolve().parents[2] / "build" / "tests" / "uploads"
TMP = ROOT / "tmp"
SAVED = ROOT / "saved"
for folder in (TMP, SAVED):
    folder.mkdir(parents=True, exist_ok=True)
# Spooled files that outgrow memory land here, so the tests can see that none survive.
tempfile.tempdir = str(TMP)

app = App(max_file_size=64 * 1024, max_form_field_size=1024, max_form_parts=20, max_part_header_size=1024)

SAVED_FILES: list[str] = []


def save_file(filename, content):
    SAVED_FILES.append(filename)
    (SAVED / os.path.basename(filename)).write_bytes(content)


# The seed's example, unchanged.
@app.post("/upload")
async def upload(request):
    files = await request.files()
    form = await request.form()

    for f in files:
        content = await f.read()
        save_file(f.filename, content)

    return {"uploaded": len(files), "name": form.get("name")}


ALLOWED = {"image/png", "image/jpeg", "text/plain"}


# The existing-Cello style (sync handler, form helpers, UploadedFile.save).
@app.post("/avatar")
def avatar(request: Request):
    form = request.form()
    upload = form.get_file("avatar")
    if upload is None:
        raise HTTPException(400, "avatar file is required")
    if upload.content_type not in ALLOWED:
        raise HTTPException(415, f"unsupported type {upload.content_type}")
    target = upload.save(SAVED / f"avatar.{upload.extension() or 'bin'}")
    return {"name": form.get_or("name", "anonymous"), "size": upload.size(), "saved": os.path.basename(target)}, 201


@app.post("/echo")
async def echo(request: Request) -> dict[str, object]:
    form = await request.form()
    files = []
    for f in await request.files():
        files.append(
            {
                "field": f.name,
                "filename": f.filename,
                "raw_filename": f.raw_filename,
                "content_type": f.content_type,
                "detected_type": f.detected_type,
                "size": f.size(),
                "extension": f.extension(),
                "content": (await f.read()).decode("latin-1"),
            }
        )
    return {
        "fields": {name: form.get_all(name) for name in form.field_names()},
        "files": files,
        "file_names": form.file_names(),
    }


@app.post("/threaded", threaded=True)
def threaded(request: Request) -> dict[str, object]:
    form = request.form()
    return {"fields": dict(form), "sizes": [f.size() for f in form.get_files("f")]}


@app.post("/big", max_file_size=8 * 1024 * 1024, max_body_size=600 * 1024 * 1024)
async def big(request: Request) -> dict[str, object]:
    files = await request.files()
    total = 0
    for f in files:
        while True:
            chunk = await f.read(1 << 20)
            if not chunk:
                break
            total += len(chunk)
    return {"total": total}


@app.post("/huge", max_file_size=600 * 1024 * 1024, max_body_size=600 * 1024 * 1024)
async def huge(request: Request) -> dict[str, int]:
    files = await request.files()
    return {"size": sum(f.size() for f in files)}


bp = Blueprint("/bp", name="uploads-bp")


@bp.put("/doc")
def bp_doc(request: Request) -> Response:
    upload = request.form().get_file("doc")
    assert upload is not None
    return Response.json({"filename": upload.filename, "size": upload.size()})


app.register_blueprint(bp)


@app.get("/state")
def state(request: Request) -> dict[str, object]:
    fds = os.listdir("/proc/self/fd")
    deleted = 0
    for fd in fds:
        try:
            if os.readlink(f"/proc/self/fd/{fd}").endswith("(deleted)"):
                deleted += 1
        except OSError:
            pass
    return {"tmp": sorted(os.listdir(TMP)), "open_deleted_files": deleted}
