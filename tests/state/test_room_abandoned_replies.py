"""Opening a room interrupts its replies whose worker died: the tab shows them interrupted,
with their text and a Retry, without anyone asking the assistant again."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from stream_chat import accounts, assistant, chat, repo
from stream_chat.models import Message, utcnow

from . import room_fixtures
from .room_fixtures import RoomApp, make_room, make_user

migrated_template = room_fixtures.migrated_template
room_db = room_fixtures.room_db
room_broker = room_fixtures.room_broker
room_app = room_fixtures.room_app


def _reply_left_streaming(room_id: int, user_id: int, text: str, silent_for: timedelta) -> int:
    reply = chat.create_reply(room_id, accounts.assistant_user_id(), user_id)
    assert chat.claim_reply(reply.id, "dead-worker")  # type: ignore[arg-type]
    assert chat.start_reply_text(reply.id, "dead-worker", text)  # type: ignore[arg-type]
    with repo.session() as db:
        db.execute(
            update(Message)
            .where(Message.id == reply.id)  # type: ignore[arg-type]
            .values(updated_at=utcnow() - silent_for)
        )
        db.commit()
    return reply.id  # type: ignore[return-value]


async def test_opening_the_room_shows_a_dead_workers_reply_as_interrupted(
    room_app: RoomApp,
) -> None:
    ann = make_user("Ann")
    room = make_room("general")
    chat.create_message(room.id, ann.id, "@assistant tell me")  # type: ignore[arg-type]
    silent = assistant.ABANDONED_AFTER_IDLE + timedelta(seconds=1)
    dead = _reply_left_streaming(room.id, ann.id, "Half a rep", silent)  # type: ignore[arg-type]
    other_room = make_room("random")
    elsewhere = _reply_left_streaming(other_room.id, ann.id, "Other", silent)  # type: ignore[arg-type]

    tab = room_app.tab(ann)
    await tab.connect(f"/rooms/{room.id}")
    await room_app.quiet()

    [shown] = [item for item in tab.stream.items if item["id"] == dead]
    assert (shown["status"], shown["content"], shown["error"]) == (
        chat.INTERRUPTED,
        "Half a rep",
        assistant.WORKER_WENT_AWAY,
    )
    stored = chat.get_message(dead)
    assert stored is not None and stored.status == chat.INTERRUPTED
    # Only the room being opened is swept by its page (the workers' sweeper does the rest).
    assert chat.get_message(elsewhere).status == chat.STREAMING  # type: ignore[union-attr]
