"""A live dashboard: the server pushes metrics over Server-Sent Events, a page shows them.

Run it with `cello serve examples/dashboard.py` and open http://127.0.0.1:8000/.

- `GET /` is the page: plain HTML and JavaScript, reading the stream with `EventSource`.
- `GET /events` streams a `metrics` event every 0.5 s until the client goes away
  (`?limit=N` ends the stream after N events, handy with `curl -N`).
- `GET /metrics` is one snapshot as JSON.

A reconnecting `EventSource` sends `Last-Event-ID`; the stream carries on from there.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator

from cello import App, HTTPException, Request, Response, SseEvent, SseStream

INTERVAL = 0.5  # seconds between two events

app = App(sse_keepalive=15)

STARTED = time.monotonic()
STATE = {"clients": 0, "sent": 0}
_cpu = {"wall": time.monotonic(), "cpu": time.process_time()}


def _rss_mib() -> float:
    """Resident memory of this process in MiB (Linux /proc; 0.0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024), 1)
    except (OSError, ValueError, IndexError):
        return 0.0


def _cpu_percent() -> float:
    """This process's CPU use since the previous call."""
    wall, cpu = time.monotonic(), time.process_time()
    elapsed = wall - _cpu["wall"]
    used = cpu - _cpu["cpu"]
    _cpu.update(wall=wall, cpu=cpu)
    return round(100.0 * used / elapsed, 1) if elapsed > 0 else 0.0


def metrics(seq: int) -> dict[str, object]:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return {
        "seq": seq,
        "time": time.strftime("%H:%M:%S"),
        "uptime_s": round(time.monotonic() - STARTED, 1),
        "load1": round(load, 2),
        "cpu_percent": _cpu_percent(),
        "rss_mib": _rss_mib(),
        "clients": STATE["clients"],
        "events_sent": STATE["sent"],
        # A made-up business metric, so that something moves on an idle machine.
        "orders_per_min": round(40 + 15 * random.random(), 1),
    }


def _positive_int(value: str | None, what: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise HTTPException(400, f"{what} must be an integer") from None
    if number < 0:
        raise HTTPException(400, f"{what} must not be negative")
    return number


@app.get("/events")
async def events(request: Request) -> SseStream:
    limit = _positive_int(request.query.get("limit"), "limit")
    last_id = _positive_int(request.headers.get("last-event-id"), "Last-Event-ID")
    first = 0 if last_id is None else last_id + 1

    async def stream() -> AsyncIterator[SseEvent]:
        STATE["clients"] += 1
        try:
            seq = first
            while limit is None or seq - first < limit:
                if seq > first:
                    await asyncio.sleep(INTERVAL)
                STATE["sent"] += 1
                yield SseEvent(metrics(seq), event="metrics", id=str(seq), retry=1000)
                seq += 1
        finally:  # runs as soon as the browser tab closes
            STATE["clients"] -= 1

    return SseStream(stream())


@app.get("/metrics")
def snapshot(request: Request) -> dict[str, object]:
    return metrics(STATE["sent"])


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Cello live dashboard</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem; background: #f6f7f9; color: #222; }
  h1 { font-size: 1.4rem; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: 1rem; }
  .card { background: white; border-radius: 8px; padding: 1rem; box-shadow: 0 1px 3px #0002; }
  .card .label { font-size: .8rem; color: #666; text-transform: uppercase; }
  .card .value { font-size: 1.6rem; font-variant-numeric: tabular-nums; }
  #status.live { color: #16803c; } #status.down { color: #b42318; }
</style>
</head>
<body>
<h1>Cello live dashboard</h1>
<p>Connection: <strong id="status">connecting&hellip;</strong>
   &middot; events received: <strong id="count">0</strong>
   &middot; last update: <span id="updated">never</span></p>
<div class="grid" id="metrics">
  <div class="card"><div class="label">uptime (s)</div><div class="value" id="m-uptime_s">&ndash;</div></div>
  <div class="card"><div class="label">load (1 min)</div><div class="value" id="m-load1">&ndash;</div></div>
  <div class="card"><div class="label">server CPU %</div><div class="value" id="m-cpu_percent">&ndash;</div></div>
  <div class="card"><div class="label">memory (MiB)</div><div class="value" id="m-rss_mib">&ndash;</div></div>
  <div class="card"><div class="label">clients</div><div class="value" id="m-clients">&ndash;</div></div>
  <div class="card"><div class="label">orders / min</div><div class="value" id="m-orders_per_min">&ndash;</div></div>
  <div class="card"><div class="label">event #</div><div class="value" id="m-seq">&ndash;</div></div>
</div>
<script>
  const status = document.getElementById("status");
  const count = document.getElementById("count");
  let received = 0;
  const source = new EventSource("/events");
  source.onopen = () => { status.textContent = "live"; status.className = "live"; };
  source.onerror = () => { status.textContent = "reconnecting\\u2026"; status.className = "down"; };
  source.addEventListener("metrics", (event) => {
    const data = JSON.parse(event.data);
    received += 1;
    count.textContent = String(received);
    document.getElementById("updated").textContent = data.time;
    for (const [key, value] of Object.entries(data)) {
      const cell = document.getElementById("m-" + key);
      if (cell) cell.textContent = String(value);
    }
  });
</script>
</body>
</html>
"""


@app.get("/")
def index(request: Request) -> Response:
    return Response.html(PAGE)


if __name__ == "__main__":
    app.run()
