"""The Redis broker keeps each database's rooms to itself: Redis shares pub/sub channels
between all of a server's databases, so two deployments on one Redis must not hear each
other (a message of one would show in the other's room of the same id)."""

import asyncio

import pytest
import redis

from stream_chat.pubsub import RedisBroker

SERVER = "redis://127.0.0.1:6379"


def _reachable() -> bool:
    try:
        return bool(redis.Redis.from_url(SERVER, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(not _reachable(), reason="no Redis at 127.0.0.1:6379")


async def test_a_broker_hears_its_own_database_only() -> None:
    ours, same_database, other_database = (
        RedisBroker(f"{SERVER}/13"),
        RedisBroker(f"{SERVER}/13"),
        RedisBroker(f"{SERVER}/14"),
    )
    async with (
        same_database.subscribe("room:1") as heard_here,
        other_database.subscribe("room:1") as heard_elsewhere,
    ):
        ours.publish("room:1", {"kind": "created", "text": "for database 13"})
        ours.signal("room:1", {"kind": "typing"})
        event = await asyncio.wait_for(heard_here.next(), 5)
        signal = await asyncio.wait_for(heard_here.next(), 5)
        # The other database's listener would have had it by now: both listen on one loop
        # and Redis sends a message to all its pattern subscribers together.
        await asyncio.sleep(0.2)
        assert heard_elsewhere.drain() == []
    assert event["text"] == "for database 13"
    assert "seq" in event
    assert signal == {"kind": "typing"}
