"""Helpers for the Assistant tests: seed data, a recorder of a room's broadcasts, bounded waits."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from stream_chat import accounts, assistant, chat, pubsub, repo
from stream_chat.models import Message, Room, User, utcnow

WAIT = 5.0  # the bound on every wait for an event, a status or a task

# --------------------------------------------------------------------------- seed data

_numbers = itertools.count(1)


@dataclass
class Seed:
    room: Room
    other_room: Room
    alice: User
    bob: User
    bot: User
    messages: list[Message]

    @property
    def question(self) -> Message:
        """Alice's `@assistant` message, the room's last one."""
        return self.messages[-1]


def make_user(name: str) -> User:
    n = next(_numbers)
    user = User(email=f"user{n}@example.com", name=name, hashed_password="not-a-hash")
    with repo.session() as session:
        session.add(user)
        session.commit()
        session.refresh(user)
    return user


def ask(room_id: int, user_id: int, text: str = "@assistant what do you think?") -> Message:
    """Posts `text` and asks for a reply to it, as the composer does; returns the reply."""
    return assistant.request_reply(chat.create_message(room_id, user_id, text))


def reply_with_status(room_id: int, requester_id: int, status: str, content: str) -> Message:
    """An assistant reply left in `status` with `content` (an earlier or concurrent one),
    to the room's last message."""
    [question] = chat.last_messages(room_id, 1) or [None]
    reply = chat.create_reply(
        room_id,
        accounts.assistant_user().id,  # type: ignore[arg-type]
        requester_id,
        question_id=question.id if question else None,
    )
    updated = chat.update_reply(reply.id, status=status, content=content)
    assert updated is not None
    return updated


def seed_rooms() -> Seed:
    """Two rooms, Alice and Bob, and a short conversation with one earlier assistant reply."""
    room = chat.create_room("general")
    other_room = chat.create_room("random")
    alice, bob = make_user("Alice"), make_user("Bob")
    messages = [
        chat.create_message(room.id, alice.id, "Hi all"),  # type: ignore[arg-type]
        chat.create_message(room.id, bob.id, "Hello Alice"),  # type: ignore[arg-type]
        reply_with_status(room.id, bob.id, chat.DONE, "An earlier answer."),  # type: ignore[arg-type]
        chat.create_message(room.id, alice.id, "@assistant summarize the thread please"),  # type: ignore[arg-type]
    ]
    chat.create_message(other_room.id, bob.id, "Over in the other room")  # type: ignore[arg-type]
    return Seed(room, other_room, alice, bob, accounts.assistant_user(), messages)


def age_reply(reply_id: int, seconds: float) -> None:
    """Makes the reply look untouched for `seconds` (its worker died that long ago)."""
    with repo.session() as db:
        stored = db.get(Message, reply_id)
        assert stored is not None
        stored.updated_at = utcnow() - timedelta(seconds=seconds)
        db.add(stored)
        db.commit()


def row(reply_id: int) -> Message:
    """The reply as stored now."""
    message = chat.get_message(reply_id)
    assert message is not None
    return message


# --------------------------------------------------------------------------- broadcasts


def says_status(event: dict[str, Any]) -> bool:
    """Whether the event says what a reply now is: a whole row, a patch of its status fields,
    or the first text with the status that comes with it."""
    return event["kind"] in ("created", "updated", "patched") or "fields" in event


@dataclass
class Recorded:
    at: float  # time.monotonic() when the recorder received it
    event: dict[str, Any]

    @property
    def reply(self) -> dict[str, Any]:
        """The reply's fields this event carries: the whole row, or the status fields."""
        return self.event["fields"] if "fields" in self.event else self.event["message"]


def event_reply_id(event: dict[str, Any]) -> int | None:
    if event["kind"] in ("appended", "patched"):
        return event["message_id"]
    if "message" in event:
        return event["message"]["id"]
    return None


def describe(event: dict[str, Any]) -> tuple[Any, ...]:
    fields = event["fields"] if "fields" in event else event.get("message", {})
    status = fields.get("status", "")
    if event["kind"] == "appended":
        return ("appended", status, event["message_id"], event["offset"], event["text"])
    return (event["kind"], status, event_reply_id(event))


@dataclass
class RoomRecorder:
    """Every event published on a room's topic, with the monotonic time it arrived."""

    room_id: int
    _events: list[Recorded] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _subscription: pubsub.Subscription | None = None

    async def pump(self, subscription: pubsub.Subscription) -> None:
        while True:
            event = await subscription.next()
            self._events.append(Recorded(time.monotonic(), event))
            self._changed.set()

    @property
    def events(self) -> list[Recorded]:
        """Everything published so far, including what the pump has not picked up yet."""
        if self._subscription is not None:
            for event in self._subscription.drain():
                self._events.append(Recorded(time.monotonic(), event))
        return self._events

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = WAIT
    ) -> Recorded:
        """The first recorded event matching, waiting for it up to `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for recorded in self.events:
                        if predicate(recorded.event):
                            return recorded
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"no matching event in {timeout} s; room {self.room_id} saw: "
                f"{[describe(r.event) for r in self.events]}"
            ) from None

    async def wait_status(self, reply_id: int, status: str, timeout: float = WAIT) -> Recorded:
        return await self.wait_for(
            lambda e: (
                says_status(e)
                and event_reply_id(e) == reply_id
                and Recorded(0, e).reply["status"] == status
            ),
            timeout,
        )

    async def wait_text(self, reply_id: int, length: int = 1, timeout: float = WAIT) -> Recorded:
        """The first appended event after which the reply has at least `length` characters."""
        return await self.wait_for(
            lambda e: (
                e["kind"] == "appended"
                and e["message_id"] == reply_id
                and e["offset"] + len(e["text"]) >= length
            ),
            timeout,
        )

    def of(self, reply_id: int) -> list[Recorded]:
        """The events about one reply, in the order received."""
        return [r for r in self.events if event_reply_id(r.event) == reply_id]

    def appended(self, reply_id: int) -> list[Recorded]:
        return [r for r in self.of(reply_id) if r.event["kind"] == "appended"]

    def updates(self, reply_id: int) -> list[Recorded]:
        return [r for r in self.of(reply_id) if says_status(r.event)]

    def index_of(self, recorded: Recorded) -> int:
        return next(i for i, r in enumerate(self.events) if r is recorded)

    def timeline(self, reply_id: int) -> list[tuple[str, str]]:
        """(kind, status) per event; an appended event without a status right after another
        appended event is left out (how the text is split depends on timing)."""
        steps: list[tuple[str, str]] = []
        for recorded in self.of(reply_id):
            kind, status = describe(recorded.event)[:2]
            if kind == "appended" and not status and steps and steps[-1][0] == "appended":
                continue
            steps.append((kind, status))
        return steps

    def describe_all(self) -> list[tuple[Any, ...]]:
        return [describe(r.event) for r in self.events]


# --------------------------------------------------------------------------- waits


async def generate(reply_id: int, timeout: float = 10.0) -> str:
    """Runs the reply's generation as the page's background event would, bounded."""
    return await asyncio.wait_for(assistant.generate(reply_id), timeout)


async def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout} s")
        await asyncio.sleep(0.01)


async def wait_stop_listener(reply_id: int) -> None:
    """Until the reply's generation listens for stops (a stop sent earlier would be lost)."""
    await wait_until(lambda: pubsub.broker().subscriber_count(chat.reply_topic(reply_id)) > 0)
