"""WebSocket fan-out through Redis: Cello vs Starlette + broadcaster (uvicorn), one run.

    .venv/bin/python benchmarks/fanout.py [--subscribers 1000] [--messages 1000] [--window 8]
        [--only cello|starlette] [--quick] [--cello-broker redis|memory]

The script starts its own ``redis-server`` (no persistence, 127.0.0.1, a free port) and
runs each server in turn against it, with ``--workers 2``: ``cello serve
apps/fanout_cello.py --channels redis://...`` and uvicorn + Starlette + broadcaster
(``apps/fanout_starlette.py``, ``Broadcast("redis://...")``). Both apps are the same chat
room: a WebSocket client of /ws/{room} first gets ``hello <worker pid>`` and then every
message published to the room; POST /publish/{room} publishes its body (text).

The subscribers (all in one room, spread by the kernel over the workers) are lean
raw-socket clients on uvloop, in ``--client-processes`` processes (one by default: a
busy process reads several frames per read, so it costs less CPU per message than two):
the HTTP upgrade by hand, then server frames parsed and counted. Before them, 8 warm-up
subscribers join one at a time until every worker has one, get 10 messages (the server
must deliver) and stay to the end, so that the room never empties. One publisher (this process) POSTs
``--messages`` messages of ``--size`` bytes, ``"<seq> <monotonic ns> xxx..."``, one
request at a time and at most ``--window`` messages on their way (published, not yet
received by every subscriber): as fast as the server delivers, with bounded queues. A
message that has not reached every subscriber ``--timeout`` seconds after it was sent
stops holding the window and is counted lost if it never arrives.

Figures: delivered messages/s (frames received by all subscribers / time from the first
publish to the last frame), p50/p99 publish-to-receive latency over every message of
``--sample`` subscribers, messages lost (of messages × subscribers), the server's CPU
time per delivered message (its whole process tree, from /proc; steadier than messages/s
on a busy machine), and memory per idle subscriber: the RSS of the server's process tree
(master and workers) with the subscribers connected and idle, minus before they
connected (with the warm-up subscribers only), divided by their number. Nothing is pinned: the servers, Redis and the clients
share the machine's cores.

``--cello-broker memory`` runs Cello on one worker with its in-process ``memory://``
broker instead (no Redis between publisher and subscribers).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import (  # noqa: E402
    Server,
    ensure_apt_tool,
    ensure_peers,
    machine_facts,
    rounds,
    table,
    tree_cpu_seconds,
    tree_rss_kib,
    uvicorn_argv,
)
from support.redis import RedisServer  # noqa: E402
from support.websocket import OP_PONG, encode_frame  # noqa: E402

# broadcaster 0.3.1 misses every message with redis-py 8 (its listener starts before the
# subscription is recorded and stops for good), so redis-py stays below 8.
PEERS = ["uvicorn", "starlette", "broadcaster[redis]", "redis<8", "websockets", "uvloop", "httptools"]
ROOM = "bench"
OP_TEXT, OP_CLOSE, OP_PING = 0x1, 0x8, 0x9
WARM_SUBSCRIBERS, WARM_MESSAGES = 8, 10


# -- The servers ------------------------------------------------------------------------


def servers(peer_python: str, redis_url: str, workers: int, cello_broker: str, logs: Path) -> list[tuple[Server, int]]:
    """The servers, each with its number of worker processes."""
    cello = [sys.executable, "-m", "cello", "serve", "benchmarks/apps/fanout_cello.py", "--port", "{port}"]
    cello += ["--no-logs", "--out", str(HERE / "build" / "none")]
    if cello_broker == "redis":
        cello_name = f"cello serve, Redis, {workers} workers"
        cello += ["--workers", str(workers), "--channels", redis_url]
        cello_env = {"CELLO_CHANNELS": redis_url}
    else:
        cello_name = "cello serve, memory://, 1 worker"
        cello_env = {}
    return [
        (
            Server(cello_name, cello, env=cello_env, cpu=None, log=logs / "cello.log"),
            workers if cello_broker == "redis" else 1,
        ),
        (
            Server(
                f"uvicorn + starlette + broadcaster, Redis, {workers} workers",
                uvicorn_argv(peer_python, "fanout_starlette:app", "--workers", str(workers)),
                cwd=HERE / "apps",
                env={"BROADCAST_URL": redis_url},
                cpu=None,
                log=logs / "starlette.log",
            ),
            workers,
        ),
    ]


# -- The subscribers (run in their own processes: fanout.py _subscribers ...) -------------


class Room:
    """What one subscriber process has seen: its subscribers' frames, counted per message."""

    def __init__(self, size: int, messages: int) -> None:
        self.size = size
        self.counts = [0] * messages
        self.unexpected = 0
        self.dropped_connections = 0
        self.last_ns = 0
        self.latencies = array("q")
        self.pids: Counter[int] = Counter()
        self._complete: list[bytes] = []

    def complete(self, seq: int) -> None:
        """Every subscriber of this process has message ``seq``: tell the publisher (once a
        loop iteration, so a burst of completions is one line)."""
        if not self._complete:
            asyncio.get_running_loop().call_soon(self._report)
        self._complete.append(b"%d" % seq)

    def _report(self) -> None:
        sys.stdout.buffer.write(b"done " + b" ".join(self._complete) + b"\n")
        sys.stdout.buffer.flush()
        self._complete.clear()


class Subscriber(asyncio.Protocol):
    """One WebSocket subscriber: upgrade by hand, then count the server's (unmasked) frames.

    A data message is ``<seq> <monotonic ns> padding``; ``sampled`` subscribers also record
    each one's latency, taking the clock once per read.
    """

    def __init__(self, room: Room, path: bytes, sampled: bool, greeted: asyncio.Future[int]) -> None:
        self.room = room
        self.path = path
        self.sampled = sampled
        self.greeted = greeted
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False
        self.pid = 0
        self.frames = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16))
        transport.write(  # type: ignore[attr-defined]
            b"GET " + self.path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.greeted.done():
            self.greeted.set_exception(ConnectionError(f"closed before the hello message ({exc})"))
        self.room.dropped_connections += 1

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        room = self.room
        room.last_ns = now
        if self.buffer:
            data = self.buffer + data
            self.buffer = b""
        pos = 0
        if not self.upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = data
                return
            if not data.startswith(b"HTTP/1.1 101"):
                if not self.greeted.done():
                    self.greeted.set_exception(ConnectionError(f"upgrade refused: {data[:120]!r}"))
                return
            self.upgraded = True
            pos = end + 4
        size = len(data)
        counts = room.counts
        while size - pos >= 2:
            length = data[pos + 1]  # no mask bit: server frames are unmasked
            if length < 126:
                start = pos + 2
            elif length == 126:
                if size - pos < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            else:
                if size - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > size:
                break
            head = data[pos]
            if head == 0x80 | OP_TEXT and 48 <= data[start] <= 57:  # a digit: a data message
                space = data.find(b" ", start, end)
                seq = int(data[start:space])
                if seq < len(counts):  # the warm-up subscribers count only theirs
                    self.frames += 1
                    got = counts[seq] + 1
                    counts[seq] = got
                    if got == room.size:
                        room.complete(seq)
                if self.sampled:
                    room.latencies.append(now - int(data[space + 1 : data.find(b" ", space + 1, end)]))
            elif head == 0x80 | OP_TEXT and data.startswith(b"hello ", start):
                pid = int(data[start + 6 : end])
                room.pids[pid] += 1
                self.pid = pid
                if not self.greeted.done():
                    self.greeted.set_result(pid)
            elif head == 0x80 | OP_TEXT and data.startswith(b"w", start):
                pass  # a warm-up message
            elif head == 0x80 | OP_PING:
                self.transport.write(encode_frame(OP_PONG, data[start:end]))  # type: ignore[union-attr]
            elif head != 0x80 | OP_CLOSE:
                room.unexpected += 1
            pos = end
        if pos < size:
            self.buffer = data[pos:]


async def subscribers_main(port: int, count: int, messages: int, sampled: int, workers: int, latency_file: str) -> None:
    """Connect ``count`` subscribers, say ``ready {pid: subscribers}``, count frames until
    ``stop`` arrives on stdin, then write the latencies to ``latency_file`` and say
    ``stats {...}``.

    The first subscribers join one at a time, until ``workers`` server processes have
    greeted one (more than ``count`` if need be, at most 100 in all), then 64 at a time:
    broadcaster 0.3 loses the first subscribers of a channel that join a process at the
    same moment (each replaces the others), and a lone first join in each worker keeps
    the figures about fan-out rather than that race.
    """
    loop = asyncio.get_running_loop()
    room = Room(count, messages)
    path = f"/ws/{ROOM}".encode()
    subscribers: list[Subscriber] = []
    gate = asyncio.Semaphore(64)

    async def connect(index: int) -> None:
        greeted: asyncio.Future[int] = loop.create_future()
        async with gate:
            _, subscriber = await loop.create_connection(
                lambda: Subscriber(room, path, index < sampled, greeted), "127.0.0.1", port
            )
            subscribers.append(subscriber)
            await asyncio.wait_for(greeted, 60)

    index = 0
    while len(room.pids) < workers and index < 100:
        await connect(index)
        index += 1
    await asyncio.gather(*(connect(i) for i in range(index, count)))
    room.size = len(subscribers)
    sys.stdout.write("ready " + json.dumps(dict(room.pids)) + "\n")
    sys.stdout.flush()

    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while (await stdin.readline()).strip() not in (b"stop", b""):
        pass
    with open(latency_file, "wb") as out:
        room.latencies.tofile(out)
    by_pid: Counter[int] = Counter()
    for subscriber in subscribers:
        by_pid[subscriber.pid] += subscriber.frames
    stats = {
        "frames": sum(by_pid.values()),
        "frames_by_pid": by_pid,
        "silent": sum(1 for subscriber in subscribers if not subscriber.frames),
        "last_ns": room.last_ns,
        "unexpected": room.unexpected,
        "dropped_connections": room.dropped_connections,
    }
    for subscriber in subscribers:
        if subscriber.transport is not None:
            subscriber.transport.abort()
    sys.stdout.write("stats " + json.dumps(stats) + "\n")
    sys.stdout.flush()


def run_subscribers(argv: list[str]) -> None:
    port, count, messages, sampled, workers = (int(a) for a in argv[:5])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    main = subscribers_main(port, count, messages, sampled, workers, argv[5])
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


# -- The publisher and the run (this process) --------------------------------------------


class Subscribers:
    """The subscriber processes of one run, seen from the publisher."""

    def __init__(self) -> None:
        self.processes: list[asyncio.subprocess.Process] = []
        self.latency_files: list[str] = []
        self.readers: list[asyncio.Task[None]] = []
        self.pids: Counter[int] = Counter()
        self.stats: list[dict[str, int]] = []
        self.outstanding: dict[int, int] = {}  # seq -> monotonic ns it was sent
        self.completions: Counter[int] = Counter()
        self.progress = asyncio.Event()

    @classmethod
    async def start(
        cls, port: int, count: int, processes: int, messages: int, sampled: int, workers: int, tmp: Path
    ) -> Subscribers:
        """The subscriber processes, connected and greeted; each starts once the one before is
        ready, so that only the first joins a worker for the first time."""
        group = cls()
        processes = max(1, min(processes, count))
        for index in range(processes):
            share = count // processes + (1 if index < count % processes else 0)
            sample = sampled // processes + (1 if index < sampled % processes else 0)
            handle, latency_file = tempfile.mkstemp(prefix="latencies-", suffix=".bin", dir=tmp)
            os.close(handle)
            group.latency_files.append(latency_file)
            process = await asyncio.create_subprocess_exec(
                sys.executable, str(Path(__file__).resolve()), "_subscribers", str(port), str(share),
                str(messages), str(sample), str(workers), latency_file,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )  # fmt: skip
            group.processes.append(process)
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 120)
            if not line.startswith(b"ready "):
                await group.stop()
                raise RuntimeError(f"subscribers did not connect (exit code {process.returncode}): {line!r}")
            group.pids.update({int(pid): n for pid, n in json.loads(line[6:]).items()})
        group.readers = [asyncio.create_task(group._read(p)) for p in group.processes]
        return group

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        wanted = len(self.processes)
        async for line in process.stdout:
            if line.startswith(b"done "):
                for word in line[5:].split():
                    seq = int(word)
                    self.completions[seq] += 1
                    if self.completions[seq] == wanted:
                        self.outstanding.pop(seq, None)
                        self.progress.set()
            elif line.startswith(b"stats "):
                self.stats.append(json.loads(line[6:]))

    async def stop(self) -> None:
        for process in self.processes:
            if process.stdin is not None and process.returncode is None:
                process.stdin.write(b"stop\n")
                await process.stdin.drain()
        for process in self.processes:
            try:
                await asyncio.wait_for(process.wait(), 30)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
        if self.readers:
            await asyncio.gather(*self.readers)

    def latencies_ns(self) -> array[int]:
        samples = array("q")
        for name in self.latency_files:
            with open(name, "rb") as data:
                samples.frombytes(data.read())
        return samples


class Publisher:
    """A keep-alive HTTP connection POSTing to /publish/{room}, one request at a time (so the
    messages are published in order). A connection the server closed while idle (its
    keep-alive timeout: the publisher waits for the window) is opened again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.head = (
            f"POST /publish/{ROOM} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain; charset=utf-8\r\n".encode()
        )
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> None:
        request = b"%sContent-Length: %d\r\n\r\n%s" % (self.head, len(body), body)
        for attempt in (1, 2):
            if self.reader is None or self.writer is None or self.reader.at_eof():
                self.close()
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            reader = self.reader
            self.writer.write(request)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                break
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                # Nothing came back: the server had closed the idle connection.
                self.close()
                if attempt == 2 or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                    raise
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            await reader.readexactly(int(lower[at + 17 : lower.index(b"\r\n", at + 2)]))
        if not 200 <= status < 300:
            raise RuntimeError(f"publish answered {head.splitlines()[0]!r}")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def message(seq: int, size: int) -> tuple[int, bytes]:
    sent = time.monotonic_ns()
    text = b"%d %d " % (seq, sent)
    return sent, text + b"x" * (size - len(text))


async def publish_all(
    publisher: Publisher, group: Subscribers, messages: int, window: int, size: int, timeout: float
) -> tuple[int, int, int]:
    """Publish up to ``messages`` with at most ``window`` on their way: (first send ns,
    messages published, messages timed out). Publishing stops early once ``window``
    messages have timed out: subscribers that get nothing would stall every message."""
    outstanding = group.outstanding
    timed_out = 0
    limit = int(timeout * 1e9)
    first = 0

    async def wait_for_room(most: int) -> None:
        nonlocal timed_out
        while len(outstanding) > most:
            group.progress.clear()
            try:
                await asyncio.wait_for(group.progress.wait(), 0.2)
            except asyncio.TimeoutError:
                pass
            now = time.monotonic_ns()
            for seq, sent in list(outstanding.items()):
                if now - sent > limit:
                    del outstanding[seq]
                    timed_out += 1

    published = 0
    while published < messages and timed_out < window:
        await wait_for_room(window - 1)
        sent, body = message(published, size)
        outstanding[published] = sent
        first = first or sent
        await publisher.post(body)
        published += 1
    await wait_for_room(0)
    return first, published, timed_out


@dataclass
class Result:
    workers: dict[int, int]  # worker pid -> subscribers it serves
    rate: float
    published: int
    published_rate: float
    p50_ms: float
    p99_ms: float
    lost: int
    timed_out: int
    silent: int  # subscribers that received no message at all
    dropped_connections: int
    cpu_us: float
    client_cpu_us: float
    kib_per_subscriber: float
    seconds: float


async def fanout(server: Server, port: int, workers: int, args: argparse.Namespace, tmp: Path) -> Result:
    assert server.process is not None
    pid = server.process.pid
    publisher = Publisher(port)
    # A few subscribers join first, in every worker, and stay to the end: their messages
    # check that the server delivers at all, and the room never empties (broadcaster 0.3 may miss the
    # messages of a room that a worker left and joins again: its Redis listener stops when
    # the last channel goes and can miss the next subscription).
    warm = await Subscribers.start(port, WARM_SUBSCRIBERS, 1, WARM_MESSAGES, 0, workers, tmp)
    try:
        _, _, timed_out = await publish_all(publisher, warm, WARM_MESSAGES, args.window, args.size, args.timeout)
        if timed_out:
            raise RuntimeError(f"{server.name}: {timed_out} warm-up messages did not reach the first subscribers")
        await asyncio.sleep(1.0)
        base = tree_rss_kib(pid)
        # Every worker has subscribers in the room by now: these join all at once.
        group = await Subscribers.start(
            port, args.subscribers, args.client_processes, args.messages, args.sample, 1, tmp
        )
        try:
            await asyncio.sleep(1.0)
            per_subscriber = (tree_rss_kib(pid) - base) / args.subscribers
            for _ in range(20):
                await publisher.post(b"w" * args.size)  # warm-up for all: counted by nobody
            await asyncio.sleep(1.0)
            clients = [p.pid for p in group.processes]
            cpu, client_cpu = tree_cpu_seconds(pid), sum(map(tree_cpu_seconds, clients))
            first, published, timed_out = await publish_all(
                publisher, group, args.messages, args.window, args.size, args.timeout
            )
            cpu = tree_cpu_seconds(pid) - cpu
            client_cpu = sum(map(tree_cpu_seconds, clients)) - client_cpu
        finally:
            await group.stop()
    finally:
        await warm.stop()
        publisher.close()
    frames = sum(s["frames"] for s in group.stats)
    last = max(s["last_ns"] for s in group.stats)
    seconds = max(last - first, 1) / 1e9
    samples = sorted(group.latencies_ns())

    def percentile(q: float) -> float:
        return samples[min(len(samples) - 1, int(q * len(samples)))] / 1e6 if samples else float("nan")

    return Result(
        workers=dict(group.pids),
        rate=frames / seconds,
        published=published,
        published_rate=published / seconds,
        p50_ms=percentile(0.50),
        p99_ms=percentile(0.99),
        lost=published * args.subscribers - frames,
        timed_out=timed_out,
        silent=sum(s["silent"] for s in group.stats),
        dropped_connections=sum(s["dropped_connections"] for s in group.stats),
        cpu_us=cpu / max(frames, 1) * 1e6,
        client_cpu_us=client_cpu / max(frames, 1) * 1e6,
        kib_per_subscriber=per_subscriber,
        seconds=seconds,
    )


def main() -> None:
    if sys.argv[1:2] == ["_subscribers"]:
        run_subscribers(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=None, help="WebSocket subscribers (default 1000)")
    parser.add_argument("--messages", type=int, default=None, help="messages published (default 1000)")
    parser.add_argument("--window", type=int, default=8, help="messages on their way at most (default 8)")
    parser.add_argument("--size", type=int, default=100, help="message size in bytes, < 126 (default 100)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a message counts as lost")
    parser.add_argument("--sample", type=int, default=100, help="subscribers whose every latency is kept")
    parser.add_argument("--client-processes", type=int, default=1, help="processes the subscribers run in (default 1)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    parser.add_argument("--only", choices=["cello", "starlette"], help="run one server")
    parser.add_argument("--cello-broker", choices=["redis", "memory"], default="redis",
                        help="memory: Cello on one worker with its in-process broker (default redis)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a smoke check: 200 subscribers, 200 messages")
    args = parser.parse_args()
    args.subscribers = args.subscribers or (200 if args.quick else 1000)
    args.messages = args.messages or (200 if args.quick else 1000)
    args.sample = min(args.sample, args.subscribers)
    if not 30 <= args.size < 126:
        parser.error("--size is between 30 and 125 bytes (a timestamped message in a 2-byte frame header)")

    import uvloop

    peer_python = str(ensure_peers(PEERS))
    with tempfile.TemporaryDirectory(prefix="fanout-") as name:
        tmp = Path(name)
        # Debian's package installs it where support.redis looks for it (/usr/bin).
        ensure_apt_tool("redis-server")
        redis = RedisServer().start()
        try:
            chosen = {
                server.name: (server, workers)
                for server, workers in servers(peer_python, redis.url, args.workers, args.cello_broker, tmp)
                if args.only is None or (args.only == "cello") == server.name.startswith("cello")
            }
            results: dict[str, Result] = {}

            def measure(run: int, server: Server, port: int) -> None:
                result = uvloop.run(fanout(server, port, chosen[server.name][1], args, tmp))
                results[server.name] = result
                print(
                    f"{server.name}: {result.rate:,.0f} delivered msg/s, {result.published:,} messages published "
                    f"in {result.seconds:.1f}s ({result.published_rate:,.1f}/s), p50 {result.p50_ms:.1f} ms, "
                    f"p99 {result.p99_ms:.1f} ms, lost {result.lost:,}, timed out {result.timed_out}, "
                    f"silent subscribers {result.silent}, subscribers per worker pid {result.workers}, "
                    f"CPU µs/msg: server {result.cpu_us:.1f}, subscriber processes {result.client_cpu_us:.1f}",
                    flush=True,
                )
                if result.published < args.messages:
                    print(f"  stopped early: {result.timed_out} messages did not reach every subscriber", flush=True)

            rounds([server for server, _ in chosen.values()], 1, measure, timeout=30)
        finally:
            redis.stop()

    cello = next((r for n, r in results.items() if n.startswith("cello")), None)
    peer = next((r for n, r in results.items() if not n.startswith("cello")), None)
    rows = []
    for name, result in results.items():
        spread = " / ".join(str(n) for n in sorted(result.workers.values(), reverse=True))
        rows.append(
            [
                name,
                spread,
                f"{result.rate:,.0f}",
                f"{result.rate / peer.rate:.2f}x" if peer is not None else "n/a",
                f"{result.p50_ms:.1f}",
                f"{result.p99_ms:.1f}",
                f"{result.lost:,} of {result.published * args.subscribers:,}"
                + (f" ({result.dropped_connections} connections closed)" if result.dropped_connections else ""),
                f"{result.cpu_us:.1f}",
                f"{result.kib_per_subscriber:.1f}",
            ]
        )
    print()
    print(
        f"Machine: {machine_facts()}; {args.subscribers:,} WebSocket subscribers in one room, "
        f"{args.messages:,} messages of {args.size} bytes, at most {args.window} on their way; "
        f"one run, nothing pinned (servers, Redis and clients share the cores)"
    )
    print(
        table(
            [
                "server",
                "subscribers per worker",
                "delivered msgs/s",
                "vs Starlette",
                "p50 latency (ms)",
                "p99 latency (ms)",
                "messages lost",
                "server CPU µs/msg",
                "KiB per idle subscriber",
            ],
            rows,
        )
    )
    if cello is not None and peer is not None:
        print()
        print(
            f"Cello / Starlette: {cello.rate / peer.rate:.2f}x delivered msgs/s, "
            f"p99 {cello.p99_ms:.1f} vs {peer.p99_ms:.1f} ms, "
            f"server CPU per message {cello.cpu_us / peer.cpu_us:.2f}x"
        )


if __name__ == "__main__":
    main()
