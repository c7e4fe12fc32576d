"""Topic broadcasting for the contexts: in-process by default, Redis across workers.

Only the contexts use this module; pages subscribe through `chat.subscribe`. Plain Python.

Every event published on a topic gets the topic's next sequence number, in the field
`seq`, in the order subscribers receive it: a member who knows the last number it has seen
can tell a missed event from a repeated one.

* `LocalBroker` fans each published event out to the subscriptions of this process.
Besides numbered events, a topic carries *signals* (`signal`): ephemeral facts such as who is
typing or who came online, delivered to the same subscribers without a number (no `seq`),
never stored, and not worth a resync if one is lost (each is superseded by the next, or
expires). Their subscribers tell them apart by their `kind`.

* `RedisBroker` publishes through Redis. Each process runs one listener on the pattern
  `streamchat:*` that hands what it hears to a `LocalBroker`, so a room with a thousand
  open tabs in one worker costs that worker one Redis subscription, not a thousand. Redis
  delivers a channel's messages to every listener in the order it accepted them, which is
  what makes every member see the same order across workers.
"""

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any, Protocol

import redis
import redis.asyncio

from stream_chat.backends import ChosenBackend

Event = dict[str, Any]
CHANNEL_PREFIX = "streamchat:"
SEQ_PREFIX = "streamchat-seq:"
log = logging.getLogger(__name__)


class Subscription:
    """One subscriber's queue of events, consumed on the event loop that created it."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Event] = asyncio.Queue()

    def deliver(self, event: Event) -> None:
        """Safe from any thread: the contexts may publish from a worker thread."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._queue.put_nowait(event)
        else:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    async def next(self) -> Event:
        return await self._queue.get()

    def drain(self) -> list[Event]:
        """Whatever else is already waiting, so a burst is applied in one state update."""
        events: list[Event] = []
        while not self._queue.empty():
            events.append(self._queue.get_nowait())
        return events


class Broker(Protocol):
    def publish(self, topic: str, event: Event) -> int: ...

    def signal(self, topic: str, event: Event) -> None: ...

    def current_seq(self, topic: str) -> int: ...

    def subscribe(self, topic: str) -> contextlib.AbstractAsyncContextManager[Subscription]: ...

    def subscriber_count(self, topic: str) -> int: ...


class LocalBroker:
    def __init__(self) -> None:
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._seq: dict[str, int] = {}
        self._lock = threading.RLock()

    def publish(self, topic: str, event: Event) -> int:
        with self._lock:
            seq = self._seq[topic] = self._seq.get(topic, 0) + 1
            self.deliver(topic, {**event, "seq": seq})
        return seq

    def signal(self, topic: str, event: Event) -> None:
        self.deliver(topic, event)

    def deliver(self, topic: str, event: Event) -> None:
        """Hands an already numbered event (or a signal) to this process's subscribers."""
        with self._lock:
            subscriptions = list(self._subscriptions.get(topic, ()))
        for subscription in subscriptions:
            subscription.deliver(event)

    def current_seq(self, topic: str) -> int:
        with self._lock:
            return self._seq.get(topic, 0)

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[Subscription]:
        subscription = Subscription(topic)
        with self._lock:
            self._subscriptions.setdefault(topic, set()).add(subscription)
        try:
            yield subscription
        finally:
            with self._lock:
                remaining = self._subscriptions.get(topic, set())
                remaining.discard(subscription)
                if not remaining:
                    self._subscriptions.pop(topic, None)

    def subscriber_count(self, topic: str) -> int:
        with self._lock:
            return len(self._subscriptions.get(topic, ()))

    def publish_everywhere(self, event: Event) -> None:
        with self._lock:
            subscriptions = [sub for subs in self._subscriptions.values() for sub in subs]
        for subscription in subscriptions:
            subscription.deliver(event)


RESYNC: Event = {"kind": "resync"}
# In a Redis message's number field: a signal.
UNNUMBERED = "-"


# Numbering and publishing in one script: Redis runs it atomically, so the numbers are in
# the order every listener receives the messages, whichever worker published them.
_PUBLISH_NUMBERED = """
local seq = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', KEYS[2], seq .. ' ' .. ARGV[1])
return seq
"""


class RedisBroker:
    def __init__(self, url: str) -> None:
        self._url = url
        self._publisher = redis.Redis.from_url(url)
        # Channels, unlike keys, are shared by all of a server's databases: naming the
        # database keeps two deployments on one Redis (staging and production, or two test
        # runs) from hearing each other's rooms.
        database = self._publisher.connection_pool.connection_kwargs.get("db", 0)
        self._channels = f"{CHANNEL_PREFIX}{database}:"
        self._publish_numbered = self._publisher.register_script(_PUBLISH_NUMBERED)
        self._local = LocalBroker()
        self._listeners: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    def publish(self, topic: str, event: Event) -> int:
        # Synchronous on purpose: the contexts are synchronous, and a publish returns once
        # Redis has ordered the message, so one sender's messages keep their order.
        keys = [SEQ_PREFIX + topic, self._channels + topic]
        return int(self._publish_numbered(keys=keys, args=[json.dumps(event)]))

    def signal(self, topic: str, event: Event) -> None:
        # The number's place says "none": listeners hand it on without a `seq`.
        self._publisher.publish(self._channels + topic, UNNUMBERED + " " + json.dumps(event))

    def current_seq(self, topic: str) -> int:
        return int(self._publisher.get(SEQ_PREFIX + topic) or 0)

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[Subscription]:
        await self._ensure_listener()
        async with self._local.subscribe(topic) as subscription:
            yield subscription

    def subscriber_count(self, topic: str) -> int:
        return self._local.subscriber_count(topic)

    async def _ensure_listener(self) -> None:
        loop = asyncio.get_running_loop()
        listener = self._listeners.get(loop)
        if listener is None or listener.done():
            ready = loop.create_future()
            self._listeners[loop] = loop.create_task(self._listen(ready))
            await ready
        # A listener is subscribed before it is stored as running: nothing published after
        # this returns can be missed.

    async def _listen(self, ready: asyncio.Future[None]) -> None:
        while True:
            client = redis.asyncio.Redis.from_url(self._url)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.psubscribe(self._channels + "*")
                    if ready.done():
                        # Back after an outage: whatever was published meanwhile is lost to
                        # this worker, so every subscriber re-reads from the database.
                        self._local.publish_everywhere(RESYNC)
                    else:
                        ready.set_result(None)
                    async for message in pubsub.listen():
                        if message["type"] != "pmessage":
                            continue
                        topic = message["channel"].decode()[len(self._channels) :]
                        seq, _, body = message["data"].decode().partition(" ")
                        event = json.loads(body)
                        if seq != UNNUMBERED:
                            event["seq"] = int(seq)
                        self._local.deliver(topic, event)
            except (redis.RedisError, OSError) as error:
                log.warning("Redis pub/sub listener lost its connection (%s); retrying", error)
                if not ready.done():
                    ready.set_exception(error)
                    return
                await asyncio.sleep(0.5)
            finally:
                await client.aclose()


_brokers: ChosenBackend[Broker] = ChosenBackend(LocalBroker, RedisBroker)


def broker() -> Broker:
    return _brokers.get()


def use_broker(replacement: Broker) -> Broker:
    """Swap the broker (tests); returns the previous one."""
    return _brokers.use(replacement)
