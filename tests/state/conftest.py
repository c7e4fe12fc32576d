"""Fixtures for the Reflex state tests: the real event processor over a real state manager.

`EventHarness` wires `reflex_base.event.processor.BaseStateEventProcessor` the way Reflex's own
unit tests do (upstream `tests/units/conftest.py`): a root `EventContext` whose `emit_delta_impl`
records what would be sent to the browser. Events go through `enqueue` and the processor's queue
task, locking, background-task proxies and `chain_updates`, exactly as in the running app; only
the websocket is replaced by a list.

The `harness` fixture runs every test twice: over `StateManagerMemory` (the default) and over
`StateManagerRedis` (what `REFLEX_REDIS_URL` selects), which pickles each touched substate
after every lock and loads it again for the next one. The Redis runs use database 15 of
127.0.0.1:6379 (override with STREAM_CHAT_TEST_REDIS_URL), delete their own keys, leave the
server's configuration alone, and are skipped when nothing listens there.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from reflex.event import Event
from reflex.istate.manager import StateManager
from reflex.istate.manager.memory import StateManagerMemory
from reflex.istate.manager.redis import StateManagerRedis
from reflex.istate.manager.token import BaseStateToken
from reflex.state import BaseState, State, StateUpdate
from reflex_base.event.context import EventContext
from reflex_base.event.processor import BaseStateEventProcessor
from reflex_base.utils import format as rx_format

from stream_chat.streams.binding import BATCHES_VAR, StreamsState

REDIS_URL = os.environ.get("STREAM_CHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# The key under which a substate's batches travel in a delta (Reflex 0.10.1 var marker).
BATCHES_KEY = BATCHES_VAR + "_rx_state_"


def streams_substates(root: BaseState) -> Iterator[BaseState]:
    """Every substate of `root` (at any depth) that mixes in StreamsState."""
    for substate in root.substates.values():
        if isinstance(substate, StreamsState):
            yield substate
        yield from streams_substates(substate)


def leftovers(root: BaseState) -> dict[str, Any]:
    """What the server still holds for the streams of `root`: pending ops or a non-empty var.

    Empty when every StreamsState substate has pruned its ops and `stream_batches` is `{}`.
    """
    found: dict[str, Any] = {}
    for substate in streams_substates(root):
        recorder = substate._stream_recorder
        if recorder.has_pending():
            found[substate.get_full_name()] = repr(recorder)
        value = substate.get_value(BATCHES_VAR)
        if value != {}:
            found[substate.get_full_name() + "." + BATCHES_VAR] = value
    return found


@dataclass
class Emitted:
    """One delta as the browser received it, and what the server held at that moment."""

    delta: dict[str, dict[str, Any]]
    # leftovers(root) while the delta was being emitted (state lock still held). Only known
    # with the memory manager, whose tree is the live one; None with Redis.
    leftovers_at_emit: dict[str, Any] | None
    # Whatever the test's probe returned at emit time (see EventHarness.probe).
    probe: Any = None


@dataclass
class EventHarness:
    """One client (token) talking to a started BaseStateEventProcessor."""

    processor: BaseStateEventProcessor
    state_manager: StateManager
    token: str
    # The live tree with the memory manager; None with Redis (each lock loads a fresh one).
    live_root: State | None
    emitted: list[Emitted] = field(default_factory=list)
    probe: Callable[[], Any] | None = None
    # leftovers() of the stored tree after each event finished.
    leftovers_after_event: list[dict[str, Any]] = field(default_factory=list)
    # Other tokens whose Redis keys the test created (shared-state link tokens).
    extra_tokens: list[str] = field(default_factory=list)

    async def send(self, handler: Any, **payload: Any) -> None:
        """Enqueue one event (as the browser would) and wait for it and its chain to finish."""
        event = Event(name=rx_format.format_event_handler(handler), payload=payload)
        future = await self.processor.enqueue(self.token, event)
        await future.wait_all()
        # Surfaces a handler exception (the backend exception handler re-raises it).
        future.result()
        self.leftovers_after_event.append(leftovers(await self.stored_root()))

    async def stored_root(self) -> State:
        """The client's state tree as the state manager holds it between events."""
        return await self.state_manager.get_state(BaseStateToken(ident=self.token, cls=State))

    def batches(self, state_cls: type[BaseState]) -> list[dict[str, Any]]:
        """The `stream_batches` values that reached the browser for `state_cls`, in order."""
        name = state_cls.get_full_name()
        return [
            e.delta[name][BATCHES_KEY]
            for e in self.emitted
            if name in e.delta and e.delta[name].get(BATCHES_KEY)
        ]

    async def stored_substate(self, state_cls: type[BaseState]) -> Any:
        root = await self.stored_root()
        return root.get_substate(state_cls.get_full_name().split("."))


def _redis_reachable() -> bool:
    from redis.connection import parse_url

    kwargs = parse_url(REDIS_URL)
    try:
        with socket.create_connection(
            (kwargs.get("host", "127.0.0.1"), kwargs.get("port", 6379)), timeout=1
        ):
            return True
    except OSError:
        return False


async def _make_state_manager(kind: str) -> StateManager:
    if kind == "memory":
        return StateManagerMemory()
    if not _redis_reachable():
        pytest.skip(f"no Redis at {REDIS_URL}")
    from redis.asyncio import Redis

    return StateManagerRedis(
        redis=Redis.from_url(REDIS_URL),
        # Reflex would otherwise CONFIG SET notify-keyspace-events on the shared server. The
        # notifications only wake lock waiters, and these tests never contend for a lock.
        _redis_notify_keyspace_events_enabled=True,
    )


@pytest.fixture(params=["memory", "redis"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[EventHarness]:
    state_manager = await _make_state_manager(request.param)

    def raise_backend_exception(ex: Exception) -> None:
        raise ex

    processor = BaseStateEventProcessor(
        backend_exception_handler=raise_backend_exception, graceful_shutdown_timeout=1
    )
    token = str(uuid.uuid4())
    # Routing data as the browser sends it on connect. With it in place the processor does not
    # rehydrate the tree before each event (which needs a compiled app and its on_load table).
    async with state_manager.modify_state(BaseStateToken(ident=token, cls=State)) as root:
        root.router_data = {
            "pathname": "/",
            "query": {},
            "token": token,
            "sid": "test-sid",
            "headers": {},
            "ip": "127.0.0.1",
        }
        root._clean()
    live_root = root if isinstance(state_manager, StateManagerMemory) else None
    box: dict[str, EventHarness] = {}

    async def emit_delta(emit_token: str, delta: Mapping[str, Mapping[str, Any]]) -> None:
        assert emit_token == token
        h = box["harness"]
        # Through the wire encoding (the websocket sends StateUpdate JSON), so the recorded
        # delta cannot alias anything the server keeps mutating afterwards.
        wire = json.loads(rx_format.json_dumps(StateUpdate(delta=delta)))
        h.emitted.append(
            Emitted(
                delta=wire["delta"],
                leftovers_at_emit=leftovers(h.live_root) if h.live_root is not None else None,
                probe=h.probe() if h.probe is not None else None,
            )
        )

    processor._root_context = EventContext(
        token="",
        state_manager=state_manager,
        enqueue_impl=processor.enqueue_many,
        emit_delta_impl=emit_delta,
    )
    harness = box["harness"] = EventHarness(
        processor=processor, state_manager=state_manager, token=token, live_root=live_root
    )
    try:
        async with processor:
            yield harness
    finally:
        if isinstance(state_manager, StateManagerRedis):
            for owner in (token, *harness.extra_tokens):
                keys = [key async for key in state_manager.redis.scan_iter(match=f"{owner}*")]
                if keys:
                    await state_manager.redis.delete(*keys)
        await state_manager.close()
        if isinstance(state_manager, StateManagerRedis):
            await state_manager.redis.aclose()
