"""Middleware cost: hello world bare, with CORS + compression, and with file access logging too.

    .venv/bin/python benchmarks/middleware_bench.py [--seconds 5] [--runs 3]

The payload is under compression's min_size, as in a typical small JSON API answer; the
requests carry an allowed Origin and Accept-Encoding so that both middleware do their work.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, Server, WrkResult, ensure_apt_tool, machine_facts, median_result, rounds, table, wrk_figure  # noqa: E402

VARIANTS = {"bare": "", "cors+compression": "cors,compression", "cors+compression+file log": "cors,compression,logging"}

HEADERS_LUA = """
wrk.headers["Origin"] = "https://bench.example"
wrk.headers["Accept-Encoding"] = "gzip, br"
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    wrk = ensure_apt_tool("wrk")
    cello = str(ROOT / ".venv" / "bin" / "cello")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "headers.lua"
        script.write_text(HEADERS_LUA)
        results: dict[str, list[WrkResult]] = {name: [] for name in VARIANTS}
        servers = [
            Server(
                name,
                [cello, "serve", "benchmarks/apps/cello_middleware.py", "--port", "{port}", "--no-logs"],
                env={"CELLO_BENCH_MIDDLEWARE": middleware, "CELLO_BENCH_LOGFILE": str(Path(tmp) / "access.log")},
            )
            for name, middleware in VARIANTS.items()
        ]

        def measure(run: int, server: Server, port: int) -> None:
            url = f"http://127.0.0.1:{port}/"
            result = wrk_figure(wrk, url, args.seconds, 1.0 if run == 0 else 0.0, script=str(script))
            results[server.name].append(result)
            print(f"run {run + 1} {server.name:28} {result.rps:10.0f} req/s", flush=True)

        rounds(servers, args.runs, measure)
    base = median_result(results["bare"]).rps
    rows = []
    for name in VARIANTS:
        med = median_result(results[name])
        rows.append([name, f"{med.rps:,.0f}", f"{med.p99_ms:.2f}", f"{100 * med.rps / base:.0f}%"])
    print()
    print(f"Machine: {machine_facts()}; wrk -t1 -c64 -d{args.seconds}s, median of {args.runs}; server CPU 0, wrk CPU 1")
    print(table(["variant", "req/s", "p99 ms", "of bare"], rows))


if __name__ == "__main__":
    main()
