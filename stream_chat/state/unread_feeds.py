"""The sidebar's live unread data: what the rooms' activity and a user's reads send to tabs.

Two kinds of topic feed (`room_feed.TopicFeed`) per worker: the rooms' activity, one for all
the tabs here (every new message, one event, the same for every tab: each page counts it or
not, as it knows whose tab it is and how far that user has read), and one per user with a tab
here (their reads, and the summary a tab starts from, read when it joins). The updates set
the rooms state's `unread_news` var in the browser only (`assets/unread.js` reads each one
as it lands): the server's value stays empty, like the streams' batches, so nothing per tab
grows and no tab's state is locked per message.
"""

from functools import partial
from typing import Any

from reflex.state import StateUpdate
from reflex_base.constants.state import FIELD_MARKER

from stream_chat import chat, unread
from stream_chat.state.room_feed import FeedSpec, TopicFeed

UNREAD_VAR = "unread_news"
ACTIVITY_KEY = chat.ACTIVITY_TOPIC


def summary(user_id: int) -> dict[str, Any]:
    """The user's unread state in every room: what a tab's sidebar starts from."""
    room_ids = [room.id for room in chat.list_rooms() if room.id is not None]
    rooms = unread.check_unread_summary(user_id, room_ids)
    return {"kind": "summary", "user_id": user_id, "rooms": [room.as_json() for room in rooms]}


def _news(state_name: str, news: dict[str, Any]) -> StateUpdate:
    return StateUpdate(delta={state_name: {UNREAD_VAR + FIELD_MARKER: news}})


def unread_feeds(user_id: int, state_name: str) -> list[FeedSpec]:
    """The feeds a tab of `user_id` follows for its sidebar; `state_name` is the full name
    of the state holding `unread_news`."""

    def activity() -> TopicFeed:
        return TopicFeed(ACTIVITY_KEY, chat.subscribe_activity, partial(_news, state_name))

    def reads() -> TopicFeed:
        return TopicFeed(
            unread.reads_topic(user_id),
            partial(unread.subscribe_reads, user_id),
            partial(_news, state_name),
            greeting=lambda: _news(state_name, summary(user_id)),
        )

    return [(ACTIVITY_KEY, activity), (unread.reads_topic(user_id), reads)]
