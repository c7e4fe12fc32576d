"""The sidebar's counts as the browser derives them (assets/unread.js, run in Node): the
summary, new messages and reads applied in every order end in the same counts."""

import itertools
import json

from tests.support.node import run_node

ME, BOB = 1, 2
# Room 7: the server counted two of Bob's messages after position 10 (ids 11 and 12, one
# mentioning me); then Bob posts 13 (a mention), I post 14, Bob posts 15; I read up to 13 in
# another tab, which the server answers with its count after 13 (15 only).
SUMMARY = {
    "kind": "summary",
    "user_id": ME,
    "rooms": [
        {
            "room_id": 7,
            "last_read": 10,
            "unread": 2,
            "mentions": 1,
            "newest": 12,
            "first_unread": 11,
        },
        {
            "room_id": 8,
            "last_read": 0,
            "unread": 0,
            "mentions": 0,
            "newest": 0,
            "first_unread": None,
        },
    ],
}


def posted(message_id: int, sender: int, mentioned: list[int]) -> dict:
    return {
        "kind": "posted",
        "room_id": 7,
        "message_id": message_id,
        "sender_id": sender,
        "sender_name": "Bob",
        "mentioned": mentioned,
    }


NEWS = [
    posted(12, BOB, [ME]),  # already counted by the summary: heard late, counted once
    posted(13, BOB, [ME]),
    posted(14, ME, []),
    posted(15, BOB, []),
]
READ = {
    "kind": "read",
    "room": {
        "room_id": 7,
        "last_read": 13,
        "unread": 1,
        "mentions": 0,
        "newest": 15,
        "first_unread": 15,
    },
}


def counts(orders: list[list[dict]], open_room: int | None = None) -> list[dict]:
    script = f"""
    import {{ UnreadStore }} from "../../assets/unread.js";
    const results = [];
    for (const order of {json.dumps(orders)}) {{
      const store = new UnreadStore();
      store.setOpenRoom({json.dumps(open_room)});
      const mentions = [];
      for (const news of order) {{
        const mention = store.apply(news);
        if (mention) mentions.push(mention.message_id);
      }}
      const snapshot = store.getSnapshot();
      results.push({{ byRoom: snapshot.byRoom, total: snapshot.total, mentions }});
    }}
    console.log(JSON.stringify(results));
    """
    return run_node(script)


def test_the_summary_and_new_messages_in_any_order_count_each_message_once() -> None:
    orders = [list(order) for order in itertools.permutations([SUMMARY, *NEWS])]
    results = counts(orders)
    # 11, 12 and 13 and 15 are Bob's past position 10; 12 and 13 mention me.
    assert {json.dumps(r["byRoom"], sort_keys=True) for r in results} == {
        json.dumps(
            {"7": {"label": "4", "mentions": "2"}, "8": {"label": "", "mentions": ""}},
            sort_keys=True,
        )
    }
    assert {r["total"] for r in results} == {4}


def test_a_read_from_another_tab_in_any_order_leaves_what_is_after_it() -> None:
    orders = [[SUMMARY, *order] for order in itertools.permutations([*NEWS, READ])]
    results = counts(orders)
    assert {r["byRoom"]["7"]["label"] for r in results} == {"1"}
    assert {r["byRoom"]["7"]["mentions"] for r in results} == {""}


def test_a_stale_read_never_moves_the_position_back() -> None:
    behind = {"kind": "read", "room": {**READ["room"], "last_read": 9, "unread": 50, "newest": 60}}
    [result] = counts([[SUMMARY, READ, behind]])
    assert result["byRoom"]["7"]["label"] == "1"


def test_the_open_room_shows_no_badge_but_counts_in_the_total() -> None:
    [result] = counts([[SUMMARY, *NEWS]], open_room=7)
    assert result["byRoom"]["7"] == {"label": "", "mentions": ""}
    assert result["total"] == 4


def test_only_a_new_mention_of_me_by_someone_else_is_one_to_notify_of() -> None:
    mine = posted(16, ME, [ME])
    [result] = counts([[SUMMARY, *NEWS, mine, posted(13, BOB, [ME])]])
    # 12 was already counted (no second notification), 13 heard once, 16 is my own.
    assert result["mentions"] == [13]


def test_a_hundred_unread_show_as_99_plus() -> None:
    summary = {**SUMMARY, "rooms": [{**SUMMARY["rooms"][0], "unread": 99}]}
    [result] = counts([[summary, posted(13, BOB, [])]])
    assert result["byRoom"]["7"]["label"] == "99+"


def test_what_the_open_tab_has_shown_clears_at_once() -> None:
    script = f"""
    import {{ UnreadStore }} from "../../assets/unread.js";
    const store = new UnreadStore();
    store.setOpenRoom(7);
    for (const news of {json.dumps([SUMMARY, *NEWS])}) store.apply(news);
    store.markSeen(13);
    const partly = store.getSnapshot().total;
    store.markSeen(15);
    store.markSeen(12);
    console.log(JSON.stringify([partly, store.getSnapshot().total]));
    """
    # Up to 13 seen: 15 is left; then all of it; an older id moves nothing back.
    assert run_node(script) == [1, 0]
