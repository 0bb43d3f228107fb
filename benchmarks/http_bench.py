"""HTTP throughput: Cello vs uvicorn+Starlette (httptools), side by side in one run.

    .venv/bin/python benchmarks/http_bench.py [--seconds 5] [--runs 3]

Installs the peers into benchmarks/.venv-peers, builds the Cello app's router, then for
each endpoint runs every server in turn (interleaved, repeated) with wrk pinned to the
other CPU, and prints req/s and p99 medians with the ratio to uvicorn+Starlette.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from common import (
    HERE,
    ROOT,
    Server,
    WrkResult,
    ensure_apt_tool,
    ensure_peers,
    machine_facts,
    median_result,
    rounds,
    table,
    uvicorn_argv,
    wrk_figure,
)

ENDPOINTS = {"GET /": "/", "GET /users/{id}": "/users/42"}


def servers(peer_python: str) -> list[Server]:
    cello = str(ROOT / ".venv" / "bin" / "cello") if (ROOT / ".venv").exists() else "cello"
    build = str(HERE / "build")
    return [
        Server("cello serve (compiled, httptools)", [cello, "serve", "--out", build, "--port", "{port}", "--no-logs"]),
        Server(
            "uvicorn + starlette (httptools)",
            uvicorn_argv(peer_python, "starlette_app:app"),
            cwd=HERE / "apps",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()

    wrk = ensure_apt_tool("wrk")
    peer_python = str(ensure_peers(["uvicorn", "starlette", "httptools", "uvloop"]))
    cello = ROOT / ".venv" / "bin" / "cello"
    subprocess.run(
        [str(cello), "build", "benchmarks/apps/cello_app.py", "--out", str(HERE / "build")], cwd=ROOT, check=True
    )

    results: dict[tuple[str, str], list[WrkResult]] = {}
    all_servers = servers(peer_python)

    def measure(run: int, server: Server, port: int) -> None:
        for label, path in ENDPOINTS.items():
            url = f"http://127.0.0.1:{port}{path}"
            result = wrk_figure(wrk, url, args.seconds, 1.0 if run == 0 else 0.0, connections=args.connections)
            results.setdefault((server.name, label), []).append(result)
            print(f"run {run + 1} {server.name:40} {label:16} {result.rps:10.0f} req/s", flush=True)

    rounds(all_servers, args.runs, measure)

    baseline = all_servers[1].name
    rows = []
    for label in ENDPOINTS:
        base = median_result(results[(baseline, label)]).rps
        for server in all_servers:
            med = median_result(results[(server.name, label)])
            rows.append(
                [label, server.name, f"{med.rps:,.0f}", f"{med.p99_ms:.2f}", f"{med.rps / base:.2f}x", str(med.errors)]
            )
    print()
    print(
        f"Machine: {machine_facts()}; wrk -t1 -c{args.connections} -d{args.seconds}s, median of {args.runs} runs;"
        " server on CPU 0, wrk on CPU 1"
    )
    print(table(["endpoint", "server", "req/s", "p99 ms", "vs uvicorn+starlette", "errors"], rows))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
