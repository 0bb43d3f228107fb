"""Middleware cost: hello world bare, with CORS + compression, and with file access logging too;
with --set ops, the operations features (metrics, request ids, tracing, rate limits, JSON logs).

    .venv/bin/python benchmarks/middleware_bench.py [--set middleware|ops|ops-line] [--seconds 5] [--runs 3]
                                                    [--baseline DIR]

The payload is under compression's min_size, as in a typical small JSON API answer; the
requests carry an allowed Origin and Accept-Encoding so that both middleware do their work.
--baseline DIR also serves the bare app from another checkout (its compiled modules built in
place: `git worktree add ../base REV && cd ../base && ../main/.venv/bin/python setup.py
build_ext --inplace`) with this venv, so "off is as fast as before" is measured in the same run.
Every variant is started first and warmed up; then each run measures them in turn, seconds
apart (the order rotating), and each figure is the median over the runs.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    ROOT,
    Server,
    WrkResult,
    ensure_apt_tool,
    machine_facts,
    median_result,
    run_wrk,
    side_by_side,
    table,
    tree_cpu_seconds,
)

SETS = {
    "middleware": {"bare": "", "cors+compression": "cors,compression", "cors+compression+file log": "cors,compression,logging"},
    "ops": {
        "all off": "",
        "metrics": "metrics",
        "request ids": "request_id",
        "metrics + request ids": "metrics,request_id",
        "tracing (no SDK)": "tracing",
        "rate limit (memory)": "rate_limit",
        "all on (+ JSON file log)": "metrics,request_id,tracing,rate_limit,json_logs",
    },
    # Issue 21's line (metrics + request ids >= 85% of all off), alone: fewer variants per run,
    # so that each run's figures are taken closer together.
    "ops-line": {"all off": "", "metrics": "metrics", "request ids": "request_id", "metrics + request ids": "metrics,request_id"},
}  # fmt: skip

HEADERS_LUA = """
wrk.headers["Origin"] = "https://bench.example"
wrk.headers["Accept-Encoding"] = "gzip, br"
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--set", choices=SETS, default="middleware")
    parser.add_argument("--baseline", type=Path, metavar="DIR", help="also the bare app of another checkout")
    args = parser.parse_args()
    variants = SETS[args.set]
    base_name = next(iter(variants))
    wrk = ensure_apt_tool("wrk")
    cello = str(ROOT / ".venv" / "bin" / "cello")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "headers.lua"
        script.write_text(HEADERS_LUA)
        logfile = str(Path(tmp) / "access.log")
        servers = [
            Server(
                name,
                [cello, "serve", "benchmarks/apps/cello_middleware.py", "--port", "{port}", "--no-logs"],
                env={"CELLO_BENCH_MIDDLEWARE": middleware, "CELLO_BENCH_LOGFILE": logfile},
            )
            for name, middleware in variants.items()
        ]
        if args.baseline is not None:
            checkout = args.baseline.resolve()
            revision = subprocess.run(
                ["git", "-C", str(checkout), "describe", "--always"], capture_output=True, text=True
            )
            name = f"{base_name}, at {revision.stdout.strip() or checkout.name}"
            argv = [sys.executable, "-m", "cello", "serve", "benchmarks/apps/cello_middleware.py", "--port", "{port}"]
            servers.insert(1, Server(name, [*argv, "--no-logs"], cwd=checkout, env={"PYTHONPATH": str(checkout)}))
        results: dict[str, list[WrkResult]] = {server.name: [] for server in servers}
        cpu_us: dict[str, list[float]] = {server.name: [] for server in servers}

        def measure(run: int, server: Server, port: int) -> None:
            url = f"http://127.0.0.1:{port}/"
            if run < 0:
                run_wrk(wrk, url, 1.0, script=str(script))  # warm-up: figures dropped
                return
            assert server.process is not None
            used = tree_cpu_seconds(server.process.pid)
            result = run_wrk(wrk, url, args.seconds, script=str(script))
            used = tree_cpu_seconds(server.process.pid) - used
            # wrk runs whole seconds; the server's CPU time over the requests it answered.
            per_request = 1e6 * used / (result.rps * max(1, round(args.seconds)))
            results[server.name].append(result)
            cpu_us[server.name].append(per_request)
            print(f"run {run + 1} {server.name:36} {result.rps:10.0f} req/s {per_request:6.1f} us CPU/req", flush=True)

        side_by_side(servers, args.runs, measure)
    base = median_result(results[base_name]).rps
    base_cpu = statistics.median(cpu_us[base_name])
    base_runs = [result.rps for result in results[base_name]]
    rows = []
    for name, found in results.items():
        med = median_result(found)
        cpu = statistics.median(cpu_us[name])
        rows.append(
            [
                name,
                f"{med.rps:,.0f}",
                f"{med.p99_ms:.2f}",
                f"{100 * med.rps / base:.0f}%",
                # Each run's figure over the base's of the same run (seconds apart), the median.
                f"{100 * statistics.median(r.rps / b for r, b in zip(found, base_runs)):.0f}%",
                f"{cpu:.1f}",
                f"{100 * base_cpu / cpu:.0f}%",
            ]
        )
    print()
    print(f"Machine: {machine_facts()}; wrk -t1 -c64 -d{args.seconds}s, median of {args.runs}; server CPU 0, wrk CPU 1")
    print(
        f"Run by run: the median of each run's figure over that of {base_name} in the same run. "
        "Server CPU/req: the server's user + system CPU time over the requests it answered (time stolen by the"
        " hypervisor is not in it); its speed column is that of all off over it, the throughput a saturated"
        " core would give."
    )
    header = ["variant", "req/s", "p99 ms", f"of {base_name}", "run by run", "server CPU us/req", "speed by CPU"]
    print(table(header, rows))
    print(f"\nCommand: `python benchmarks/middleware_bench.py {shlex.join(sys.argv[1:])}`")


if __name__ == "__main__":
    main()
