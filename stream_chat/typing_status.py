"""Typing context: "Ada is typing…". Plain Python; nothing is stored anywhere.

A tab says "typing" at most once every `TYPING_REFRESH` seconds while keys are pressed, and
"stopped" when its draft is sent, cleared or left idle for `TYPING_IDLE` seconds (the
browser half, `assets/awareness.js`, keeps those times). Each notice is one signal on the
room's topic, so it reaches every worker's feed of the room, which coalesces the room's
notices into one update per `room_feed.AWARENESS_INTERVAL` (0.6 s) per tab at most; a receiver
drops a typist not refreshed for `TYPING_EXPIRES` seconds (a tab that closed mid-word).

The shape follows Zulip's `zerver/actions/typing.py`: `check_typing` validates every id
the client sent, `do_typing` emits one event through `_send`.
"""

from typing import Any

from stream_chat import chat, pubsub

TYPING_KIND = "typing"
TYPING_REFRESH = 5.0
TYPING_IDLE = 5.0
TYPING_EXPIRES = 15.0


class NotInRoom(chat.NotAuthorized):
    def __init__(self) -> None:
        super().__init__("You can only type in the room you have open.")


def check_typing(open_room_id: int, room_id: object, is_typing: object) -> int:
    """The room the caller may say they are typing in: the one their tab has open (which
    the tab found when it opened it); `is_typing` must be a boolean. Returns the room's id."""
    if not isinstance(is_typing, bool):
        raise chat.ChatError("A typing notice is either typing or stopped.")
    parsed = chat.parse_id(room_id)  # type: ignore[arg-type]
    if parsed is None or parsed != open_room_id:
        raise NotInRoom()
    return parsed


def do_typing(room_id: int, user_id: int, user_name: str, is_typing: bool) -> None:
    _send(room_id, {"kind": TYPING_KIND, "user_id": user_id, "name": user_name, "on": is_typing})


def _send(room_id: int, event: dict[str, Any]) -> None:
    pubsub.broker().signal(chat.room_topic(room_id), event)
