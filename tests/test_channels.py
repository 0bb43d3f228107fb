"""app.channels on both brokers, in-process memory:// and a real Redis: delivery, order,
isolation, bounded queues, clean unsubscription; and a chat room over the network on every
server variant with each broker. Redis going away and coming back: tests/test_channels_redis.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets
from support.redis import RedisServer
from support.servers import RunningServer

from cello import App, ChannelError, ChannelMessage
from cello.channels import Channels, Subscription


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _receive(subscription: Any, count: int) -> list[ChannelMessage]:
    return [await asyncio.wait_for(subscription.__anext__(), 5) for _ in range(count)]


async def _settle(channels: Channels, marks: Subscription) -> None:
    """Return once every message published so far has reached this process's subscribers.

    A broker delivers in publishing order: when a mark published now arrives on ``marks`` (a
    subscription to "mark"), everything published before it has been handed out too (memory://
    does so at once, Redis in the background)."""
    await channels.publish("mark", "settled")
    assert [m.data for m in await _receive(marks, 1)] == ["settled"]


async def _gone_from_redis(server: RedisServer | None, *names: str) -> None:
    """Redis no longer has this process subscribed to ``names`` (unsubscribing is sent later)."""
    if server is None:
        return
    for _ in range(100):
        if not any(server.subscribers(name) for name in names):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still subscribed in Redis: {server.channels()}")


def _redis(broker_url: str, request: pytest.FixtureRequest) -> RedisServer | None:
    return None if broker_url == "memory://" else request.getfixturevalue("redis_server")


def test_messages_arrive_as_they_were_sent(broker_url: str) -> None:
    async def scenario() -> None:
        channels = Channels(broker_url)
        sent: list[Any] = ["text", b"\x00bytes", "", b"", {"n": 1, "list": [1, 2]}, [1, "a"], 3.5, None, "é ✓"]
        async with channels.subscribe("a") as messages:
            for data in sent:
                await channels.publish("a", data)
            received = await _receive(messages, len(sent))
        await channels.close()
        assert [m.data for m in received] == sent
        assert [type(m.data) for m in received] == [type(d) for d in sent]
        assert all(m.channel == "a" for m in received)
        # A JSON value is a copy: a subscriber cannot change what another one receives.
        assert received[4].data is not sent[4]

    run(scenario())


def test_every_subscriber_gets_each_message_once_in_order(broker_url: str) -> None:
    async def scenario() -> None:
        channels = Channels(broker_url)
        async with channels.subscribe("room") as first, channels.subscribe("room", "other") as second:
            async with channels.subscribe("mark") as marks:
                for n in range(100):
                    await channels.publish("room", n)
                await channels.publish("other", "x")
                await channels.publish("nobody", "y")
                await _settle(channels, marks)
                assert [m.data for m in await _receive(first, 100)] == list(range(100))
                got = await _receive(second, 101)
                assert [m.data for m in got] == [*range(100), "x"]
                assert got[-1].channel == "other"
                await _settle(channels, marks)
                assert not first._queue and not second._queue  # each message once, nothing else
                await channels.publish("room", "last")
                assert [m.data for m in await _receive(first, 1)] == ["last"]
        await channels.close()

    run(scenario())


def test_a_publisher_reaches_subscribers_of_another_app_only_through_a_shared_broker(broker_url: str) -> None:
    """Two Channels on one URL stand for two workers: Redis joins them, memory:// does not."""

    async def scenario() -> None:
        here, there = Channels(broker_url), Channels(broker_url)
        async with there.subscribe("room") as theirs, here.subscribe("room") as ours:
            await here.publish("room", "hello")
            assert [m.data for m in await _receive(ours, 1)] == ["hello"]
            if here.shared_between_processes:
                assert [m.data for m in await _receive(theirs, 1)] == ["hello"]
            else:
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(theirs.__anext__(), 0.2)
        await here.close()
        await there.close()

    run(scenario())


def test_leaving_the_block_unsubscribes_and_leaves_nothing_behind(
    broker_url: str, request: pytest.FixtureRequest
) -> None:
    redis = _redis(broker_url, request)

    async def scenario() -> None:
        channels = Channels(broker_url)
        async with channels.subscribe("a", "b") as messages, channels.subscribe("b") as other:
            assert channels._broker.channel_count() == 2
            if redis is not None:
                assert (redis.subscribers("a"), redis.subscribers("b")) == (1, 1)  # one connection for all
        assert channels._broker.channel_count() == 0
        await _gone_from_redis(redis, "a", "b")
        await channels.publish("a", "after")
        # Iteration after the block ends at once: it never waits for a message that cannot come.
        assert [m async for m in messages] == []
        assert [m async for m in other] == []
        await channels.close()

    run(scenario())


def test_a_slow_subscriber_drops_its_oldest_messages_and_never_blocks_the_publisher(
    broker_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        channels = Channels(broker_url, max_queue=10)
        async with channels.subscribe("feed") as slow, channels.subscribe("feed") as fast:
            async with channels.subscribe("mark") as marks:
                for n in range(25):
                    await channels.publish("feed", n)  # returns at once: nobody is waited for
                    if n < 10:
                        assert [m.data for m in await _receive(fast, 1)] == [n]
                await _settle(channels, marks)
                assert [m.data for m in await _receive(slow, 10)] == list(range(15, 25))
                assert slow.dropped == 15
                assert [m.data for m in await _receive(fast, 10)] == list(range(15, 25))
                assert fast.dropped == 5
        await channels.close()

    with caplog.at_level("WARNING", logger="cello.channels"):
        run(scenario())
    warnings = [r.getMessage() for r in caplog.records if r.name == "cello.channels"]
    assert len(warnings) == 2 and "dropping the oldest" in warnings[0]


def test_bad_messages_channels_and_urls_are_refused(broker_url: str) -> None:
    async def scenario() -> None:
        channels = Channels(broker_url)
        with pytest.raises(ChannelError, match="str, bytes or JSON-able, not object"):
            await channels.publish("a", object())
        with pytest.raises(ChannelError, match="non-empty str"):
            await channels.publish("", "x")
        with pytest.raises(ChannelError, match="one or more"):
            async with channels.subscribe():
                pass
        await channels.close()

    run(scenario())


def test_broker_urls() -> None:
    with pytest.raises(ValueError, match="unsupported broker; supported: memory://, redis://"):
        App(channels="rabbit://localhost")
    with pytest.raises(ValueError, match="channels URL 'redis://:\\*\\*\\*@localhost:1/x'"):
        App(channels="redis://:secret@localhost:1/x")  # a bad db number; the password never shown
    assert App().channels.url == "memory://"
    app = App(channels="redis://user:secret@127.0.0.1:6390/2")
    assert app.channels.url == "redis://user:***@127.0.0.1:6390/2"
    assert app.channels.shared_between_processes


def test_cello_channels_in_the_environment_wins_over_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELLO_CHANNELS", "redis://127.0.0.1:6390/0")
    assert App(channels="memory://").channels.url == "redis://127.0.0.1:6390/0"
    monkeypatch.setenv("CELLO_CHANNELS", "")
    assert App().channels.url == "memory://"


def test_app_shutdown_closes_the_broker(broker_url: str, request: pytest.FixtureRequest) -> None:
    redis = _redis(broker_url, request)

    async def scenario() -> None:
        app = App(channels=broker_url)
        async with app.channels.subscribe("a"):
            assert app.channels._broker.channel_count() == 1
            await app.shutdown()
            assert app.channels._broker.channel_count() == 0
            await _gone_from_redis(redis, "a")

    run(scenario())


# -- over the network ---------------------------------------------------------------------


def test_a_chat_room_over_websockets_and_http(
    serve_app: Callable[..., RunningServer], variant: tuple[str, str], broker_url: str
) -> None:
    # The server takes its broker from the environment, as a deployment would.
    server = serve_app("tests/apps/channels_app.py", *variant, env={"CELLO_CHANNELS": broker_url})
    url = server.url.replace("http://", "ws://")

    async def scenario() -> None:
        async with websockets.connect(f"{url}/rooms/1") as ada, websockets.connect(f"{url}/rooms/1") as bob:
            async with websockets.connect(f"{url}/rooms/2") as elsewhere:
                for client in (ada, bob, elsewhere):
                    assert "joined" in json.loads(await asyncio.wait_for(client.recv(), 5))
                await ada.send("hi")
                for client in (ada, bob):
                    got = json.loads(await asyncio.wait_for(client.recv(), 5))
                    assert got == {"channel": "room:1", "data": {"text": "hi"}}
                async with httpx.AsyncClient(base_url=server.url) as http:
                    response = await http.post("/rooms/2", json={"from": "http"})
                assert (response.status_code, response.json()) == (200, {"published": True})
                got = json.loads(await asyncio.wait_for(elsewhere.recv(), 5))
                assert got == {"channel": "room:2", "data": {"from": "http"}}
                # Room 1 heard nothing of room 2.
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(bob.recv(), 0.3)

    run(scenario())
