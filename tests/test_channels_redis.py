"""Channels on a real Redis across processes: several `cello serve` instances with several
workers each form one room; Redis going away makes publishing fail with a clear error and
subscriptions come back by themselves when it returns; nothing is left behind in Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.redis import RedisServer
from support.servers import RunningServer, start_server

from cello import BrokerUnavailable, ChannelError
from cello.channels import Channels, redis_broker

CHAT = "tests/apps/channels_app.py"


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own, which it may kill and start again."""
    server = RedisServer().start()
    yield server
    server.stop()


@asynccontextmanager
async def joined(url: str, count: int) -> AsyncIterator[list[Any]]:
    """``count`` WebSocket clients of ``url``, each past its "joined" frame (subscribed)."""
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(websockets.connect(url)) for _ in range(count)]
        for client in clients:
            assert "joined" in json.loads(await asyncio.wait_for(client.recv(), 10))
        yield clients


async def _frames(client: Any, count: int, timeout: float = 10) -> list[Any]:
    return [json.loads(await asyncio.wait_for(client.recv(), timeout)) for _ in range(count)]


async def _quiet(client: Any, seconds: float = 0.3) -> bool:
    """Nothing more arrives for ``seconds``: each message came once."""
    try:
        await asyncio.wait_for(client.recv(), seconds)
    except asyncio.TimeoutError:
        return True
    return False


def _workers_of(server: RunningServer) -> int:
    return server.output().count("Cello serving on")


def test_one_room_across_two_instances_with_two_workers_each(own_redis: RedisServer) -> None:
    redis_server = own_redis
    flags = ("--workers", "2", "--channels", redis_server.url)
    servers = [start_server(CHAT, "httptools", "interpreted", *flags) for _ in range(2)]
    try:

        async def scenario() -> None:
            urls = [s.url.replace("http://", "ws://") + "/rooms/lobby" for s in servers]
            async with joined(urls[0], 4) as first, joined(urls[1], 4) as second:
                everyone = first + second
                for n, client in enumerate(everyone):
                    await client.send(f"hello {n}")
                for client in everyone:
                    got = await _frames(client, len(everyone))
                    # Every message once; one sender's messages in order (here one each).
                    assert sorted(frame["data"]["text"] for frame in got) == sorted(
                        f"hello {n}" for n in range(len(everyone))
                    )
                async with httpx.AsyncClient(base_url=servers[1].url) as http:
                    response = await http.post("/rooms/lobby", json={"from": "http"})
                    assert response.status_code == 200
                    for n in range(20):  # one publisher's order holds across processes
                        await http.post("/rooms/lobby", json={"n": n})
                for client in everyone:
                    got = await _frames(client, 21)
                    assert got[0]["data"] == {"from": "http"}
                    assert [frame["data"]["n"] for frame in got[1:]] == list(range(20))
                    assert await _quiet(client, 0.1)
            # The clients are gone: so are the subscriptions, in every worker.
            await _until(lambda: redis_server.subscribers("room:lobby") == 0)

        asyncio.run(scenario())
        for server in servers:
            # Two workers each, sharing the broker: no "reaches only the process" warning.
            assert "reaches only the process" not in server.output()
    finally:
        for server in servers:
            server.stop()
    # Shut down cleanly: no connection of theirs is left open in Redis.
    assert _clients(redis_server) == 1  # this check's own


def test_memory_broker_with_several_workers_warns_at_start_up() -> None:
    server = start_server(CHAT, "httptools", "interpreted", "--workers", "2")
    try:
        deadline = time.monotonic() + 10
        while "reaches only the process" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "--channels redis://" in server.output()
    finally:
        server.stop()


def test_redis_going_away_and_coming_back_under_load(own_redis: RedisServer) -> None:
    server = start_server(CHAT, "h11", "interpreted", "--workers", "2", "--channels", own_redis.url)
    try:

        async def scenario() -> int:
            url = server.url.replace("http://", "ws://") + "/rooms/storm"
            async with joined(url, 4) as clients, httpx.AsyncClient(base_url=server.url) as http:
                statuses: list[int] = []
                stop = asyncio.Event()

                async def load() -> None:
                    n = 0
                    while not stop.is_set():
                        response = await http.post("/rooms/storm", json={"n": n})
                        statuses.append(response.status_code)
                        if response.status_code == 503:
                            body = response.json()
                            assert body == {
                                "error": "Service Unavailable: the channels broker cannot be reached",
                                "status": 503,
                            }
                        n += 1

                # Workers holding subscriptions: the kernel spreads the clients between the two.
                holders = own_redis.subscribers("room:storm")
                assert holders in (1, 2)
                publisher = asyncio.create_task(load())
                await asyncio.sleep(0.3)
                own_redis.kill()
                await _until(lambda: 503 in statuses)
                await asyncio.sleep(0.3)
                own_redis.start()
                # Publishing works again, and the subscribers hear it without reconnecting.
                await _until(lambda: statuses[-1] == 200 and own_redis.subscribers("room:storm") == holders)
                stop.set()
                await publisher
                assert statuses.count(200) > 5 and set(statuses) == {200, 503}
                for client in clients:  # drain what was delivered under load
                    while not await _quiet(client, 0.2):
                        pass
                await http.post("/rooms/storm", json={"after": True})
                for client in clients:
                    assert (await _frames(client, 1))[0]["data"] == {"after": True}
                return holders

        holders = asyncio.run(scenario())
        log = server.output()
        assert log.count("lost the connection to Redis") == holders  # once per worker that subscribed
        assert log.count("is back; subscribed again to 1 channel(s)") == holders
        assert "cannot publish: Redis at" in log and "publishing to Redis at" in log
        assert "Traceback" not in log
    finally:
        server.stop()


def test_in_process_outage(own_redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        channels = Channels(own_redis.url)
        async with channels.subscribe("news") as news:
            await channels.publish("news", "before")
            assert (await asyncio.wait_for(news.__anext__(), 5)).data == "before"
            own_redis.kill()
            with pytest.raises(BrokerUnavailable) as failed:
                await channels.publish("news", "lost")
            assert isinstance(failed.value, ChannelError) and failed.value.status == 503
            assert f"Redis at {own_redis.url} is unreachable" in str(failed.value)
            with pytest.raises(BrokerUnavailable, match="cannot subscribe: Redis at"):
                async with channels.subscribe("other"):
                    pass
            assert channels._broker.channel_count() == 1  # the refused subscription left nothing
            own_redis.start()
            await _until(lambda: own_redis.subscribers("news") == 1)
            await channels.publish("news", "after")
            assert (await asyncio.wait_for(news.__anext__(), 5)).data == "after"
        await channels.close()

    with caplog.at_level(logging.WARNING, logger="cello.channels"):
        asyncio.run(scenario())
    lines = [r.getMessage() for r in caplog.records if r.name == "cello.channels"]
    assert any("lost the connection to Redis" in line for line in lines)
    assert any("is back; subscribed again to 1 channel(s)" in line for line in lines)


def test_a_silent_redis_is_noticed_by_the_heartbeat(
    own_redis: RedisServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A partition closes no socket: the subscriber connection pings when Redis has been silent
    for HEARTBEAT seconds, and gives it up when the answer does not come either."""
    monkeypatch.setattr(redis_broker, "HEARTBEAT", 0.2)

    async def scenario() -> None:
        channels = Channels(own_redis.url)
        async with channels.subscribe("news") as news:
            own_redis.pause()
            try:
                await _until(lambda: any("lost the connection" in r.getMessage() for r in caplog.records), 5)
            finally:
                own_redis.resume()
            await _until(lambda: any("is back;" in r.getMessage() for r in caplog.records), 5)
            await channels.publish("news", "after")
            assert (await asyncio.wait_for(news.__anext__(), 5)).data == "after"
        await channels.close()

    with caplog.at_level(logging.WARNING, logger="cello.channels"):
        asyncio.run(scenario())
    assert any("no answer to PING in 0.4 s" in r.getMessage() for r in caplog.records)


def test_subscribing_when_redis_was_never_there_fails_fast(own_redis: RedisServer) -> None:
    own_redis.kill()

    async def scenario() -> None:
        channels = Channels(own_redis.url)
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="cannot subscribe"):
            async with channels.subscribe("x"):
                pass
        assert time.monotonic() - started < 2
        await channels.close()

    asyncio.run(scenario())


def test_foreign_publishers_reach_subscribers_as_bytes(redis_server: RedisServer) -> None:
    import redis

    async def scenario() -> None:
        channels = Channels(redis_server.url)
        async with channels.subscribe("feed") as feed:
            with redis.Redis.from_url(redis_server.url) as client:
                client.publish("feed", "from another program")
            message = await asyncio.wait_for(feed.__anext__(), 5)
            assert (message.channel, message.data) == ("feed", b"from another program")
        await channels.close()

    asyncio.run(scenario())


async def _until(condition: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def _clients(server: RedisServer) -> int:
    import redis

    with redis.Redis.from_url(server.url) as client:
        return len(client.client_list())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 3)), min_size=1, max_size=30))
def test_redis_is_subscribed_to_exactly_the_channels_with_local_subscribers(
    redis_server: RedisServer, steps: list[tuple[bool, int]]
) -> None:
    """Whatever the order of subscriptions opening and closing, concurrently, Redis ends up
    subscribed to the channels that still have a subscriber here, and to nothing else."""

    async def scenario() -> None:
        channels = Channels(redis_server.url)
        open_now: list[tuple[str, Any]] = []

        async def open_one(name: str) -> None:
            context = channels.subscribe(name)
            await context.__aenter__()
            open_now.append((name, context))

        pending = []
        for opening, n in steps:
            if opening or not open_now:
                pending.append(asyncio.create_task(open_one(f"churn:{n}")))
            else:
                await open_now.pop(n % len(open_now))[1].__aexit__(None, None, None)
                if n == 1:
                    await asyncio.sleep(0)  # the unsubscribing starts: a close now comes mid-way
            if n == 0:
                await asyncio.gather(*pending)  # sometimes let them finish, sometimes race on
                pending.clear()
        await asyncio.gather(*pending)
        wanted = {name for name, _ in open_now}

        def settled() -> bool:
            return {c for c in redis_server.channels() if c.startswith("churn:")} == wanted

        await _until(settled, timeout=5)
        for _, context in open_now:
            await context.__aexit__(None, None, None)
        await _until(lambda: not [c for c in redis_server.channels() if c.startswith("churn:")], timeout=5)
        await channels.close()

    asyncio.run(scenario())


def test_the_chat_example_and_sse_streams_across_instances_and_workers(own_redis: RedisServer) -> None:
    """examples/chat.py as deployed: two instances with two workers each, one Redis. Every
    WebSocket client hears everyone, and SSE streams of another app on the same Redis too."""
    flags = ("--workers", "2", "--channels", own_redis.url)
    chats = [start_server("examples/chat.py", "httptools", "interpreted", *flags) for _ in range(2)]
    feeds = [start_server(CHAT, "h11", "interpreted", *flags) for _ in range(2)]
    try:

        async def scenario() -> None:
            async with AsyncExitStack() as stack:
                people = []
                for n in range(8):  # four per instance; the kernel spreads them over the workers
                    url = chats[n % 2].url.replace("http://", "ws://") + f"/ws?name=p{n}"
                    client = await stack.enter_async_context(websockets.connect(url))
                    # Its own "join" comes back through Redis: it is in the room.
                    while (event := json.loads(await asyncio.wait_for(client.recv(), 10)))["name"] != f"p{n}":
                        assert event["type"] == "join"
                    people.append(client)
                for n, client in enumerate(people):
                    await client.send(f"hello from p{n}")
                for client in people:
                    heard = []
                    while len(heard) < len(people):
                        event = json.loads(await asyncio.wait_for(client.recv(), 10))
                        if event["type"] == "message":
                            heard.append((event["name"], event["text"]))
                    assert sorted(heard) == [(f"p{m}", f"hello from p{m}") for m in range(8)]
                    assert await _quiet(client, 0.1)
            # Everyone left: the room's channel is gone from Redis.
            await _until(lambda: own_redis.subscribers("chat:lobby") == 0)

            async with httpx.AsyncClient(timeout=10) as http:
                async with AsyncExitStack() as stack:
                    streams = [
                        await stack.enter_async_context(http.stream("GET", f"{server.url}/sse/news"))
                        for server in feeds
                        for _ in range(2)
                    ]
                    lines = [stream.aiter_lines() for stream in streams]
                    for stream_lines in lines:
                        assert await asyncio.wait_for(anext(stream_lines), 10) == ": subscribed"
                    response = await http.post(
                        f"{feeds[0].url}/live/news", content="extra!", headers={"content-type": "text/plain"}
                    )
                    assert response.status_code == 200
                    for stream_lines in lines:  # each of the four streams, on every worker, once
                        received = [await asyncio.wait_for(anext(stream_lines), 10) for _ in range(3)]
                        assert received == ["", "data: extra!", ""]
            await _until(lambda: own_redis.subscribers("live:news") == 0)

        asyncio.run(scenario())
    finally:
        for server in chats + feeds:
            server.stop()
    for server in chats + feeds:
        assert "Traceback" not in server.output()


def test_the_release_notes_chat_snippet_across_instances_and_workers(own_redis: RedisServer) -> None:
    """The seed's /ws/chat (an echo per connection) behaves the same on every process."""
    flags = ("--workers", "2", "--channels", own_redis.url)
    servers = [start_server("tests/apps/ws.py", "httptools", "interpreted", *flags) for _ in range(2)]
    try:

        async def scenario() -> None:
            for n in range(8):
                url = servers[n % 2].url.replace("http://", "ws://") + "/ws/chat"
                async with websockets.connect(url) as client:
                    await client.send(f"hi {n}")
                    assert await asyncio.wait_for(client.recv(), 10) == f"Echo: hi {n}"

        asyncio.run(scenario())
    finally:
        for server in servers:
            server.stop()
