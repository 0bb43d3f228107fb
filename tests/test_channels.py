"""app.channels on the in-process broker (memory://): delivery, order, isolation, bounded
queues, clean unsubscription; and a chat room over the network on every server variant."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets
from support.servers import RunningServer

from cello import App, ChannelError, ChannelMessage
from cello.channels import Channels


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _receive(subscription: Any, count: int) -> list[ChannelMessage]:
    return [await asyncio.wait_for(subscription.__anext__(), 5) for _ in range(count)]


def test_messages_arrive_as_they_were_sent() -> None:
    async def scenario() -> None:
        channels = Channels()
        sent: list[Any] = ["text", b"\x00bytes", {"n": 1, "list": [1, 2]}, [1, "a"], 3.5, None]
        async with channels.subscribe("a") as messages:
            for data in sent:
                await channels.publish("a", data)
            received = await _receive(messages, len(sent))
        assert [m.data for m in received] == sent
        assert [type(m.data) for m in received] == [type(d) for d in sent]
        assert all(m.channel == "a" for m in received)
        # A JSON value is a copy: a subscriber cannot change what another one receives.
        assert received[2].data is not sent[2]

    run(scenario())


def test_every_subscriber_gets_each_message_once_in_order() -> None:
    async def scenario() -> None:
        channels = Channels()
        async with channels.subscribe("room") as first, channels.subscribe("room", "other") as second:
            for n in range(100):
                await channels.publish("room", n)
            await channels.publish("other", "x")
            await channels.publish("nobody", "y")
            assert [m.data for m in await _receive(first, 100)] == list(range(100))
            got = await _receive(second, 101)
            assert [m.data for m in got] == [*range(100), "x"]
            assert got[-1].channel == "other"
            assert first._queue == second._queue  # both drained, nothing else arrived
            await channels.publish("room", "last")
            assert [m.data for m in await _receive(first, 1)] == ["last"]

    run(scenario())


def test_leaving_the_block_unsubscribes_and_leaves_nothing_behind() -> None:
    async def scenario() -> None:
        channels = Channels()
        async with channels.subscribe("a", "b") as messages:
            assert channels._broker.channel_count() == 2
        assert channels._broker.channel_count() == 0
        await channels.publish("a", "after")
        # Iteration after the block ends at once: it never waits for a message that cannot come.
        assert [m async for m in messages] == []

    run(scenario())


def test_a_slow_subscriber_drops_its_oldest_messages_and_never_blocks_the_publisher(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        channels = Channels(max_queue=10)
        async with channels.subscribe("feed") as slow, channels.subscribe("feed") as fast:
            for n in range(25):
                await channels.publish("feed", n)  # returns at once: nobody is waited for
                if n < 10:
                    assert [m.data for m in await _receive(fast, 1)] == [n]
            assert [m.data for m in await _receive(slow, 10)] == list(range(15, 25))
            assert slow.dropped == 15
            assert [m.data for m in await _receive(fast, 10)] == list(range(15, 25))
            assert fast.dropped == 5

    with caplog.at_level("WARNING", logger="cello.channels"):
        run(scenario())
    warnings = [r.getMessage() for r in caplog.records if r.name == "cello.channels"]
    assert len(warnings) == 2 and "dropping the oldest" in warnings[0]


def test_bad_messages_channels_and_urls_are_refused() -> None:
    async def scenario() -> None:
        channels = Channels()
        with pytest.raises(ChannelError, match="str, bytes or JSON-able, not object"):
            await channels.publish("a", object())
        with pytest.raises(ChannelError, match="non-empty str"):
            await channels.publish("", "x")
        with pytest.raises(ChannelError, match="one or more"):
            async with channels.subscribe():
                pass

    run(scenario())
    with pytest.raises(ValueError, match="unsupported broker; supported: memory://"):
        App(channels="rabbit://localhost")
    assert App().channels.url == "memory://"


def test_app_shutdown_closes_the_broker() -> None:
    async def scenario() -> None:
        app = App()
        async with app.channels.subscribe("a"):
            assert app.channels._broker.channel_count() == 1
            await app.shutdown()
            assert app.channels._broker.channel_count() == 0

    run(scenario())


# -- over the network ---------------------------------------------------------------------


def test_a_chat_room_over_websockets_and_http(
    serve_app: Callable[..., RunningServer], variant: tuple[str, str]
) -> None:
    server = serve_app("tests/apps/channels_app.py", *variant)
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
