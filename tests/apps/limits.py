"""Small body and form limits, for tests/test_body_limits.py: every runtime must answer alike."""

from __future__ import annotations

from cello import App, Request, UploadedFile

KiB = 1024

# A file limit above the body limit: uploads of up to 4 KiB must still get through.
app = App(max_body_size=1 * KiB, max_file_size=4 * KiB, max_form_parts=10)


@app.post("/echo")
def echo(request: Request) -> dict[str, int]:
    return {"size": len(request.body())}


@app.post("/stream", stream=True)
async def stream(request: Request) -> dict[str, int]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return {"size": size}


def describe(request: Request, files: list[UploadedFile]) -> dict[str, object]:
    return {"files": [[f.name, f.size()] for f in files], "fields": dict(request.form())}


# request.files() in a sync handler, as request.form() works there.
@app.post("/upload")
def upload(request: Request) -> dict[str, object]:
    return describe(request, request.files())


@app.post("/upload-async")
async def upload_async(request: Request) -> dict[str, object]:
    return describe(request, await request.files())


# A route's own max_body_size caps the whole multipart body, files included.
@app.post("/upload-capped", max_body_size=2 * KiB)
def upload_capped(request: Request) -> dict[str, object]:
    return describe(request, request.files())


# Every form limit is a route option too.
@app.post("/few-fields", max_form_parts=2)
def few_fields(request: Request) -> dict[str, object]:
    return describe(request, request.files())
