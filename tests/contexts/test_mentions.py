"""The Mentions context: the syntax, whom a text mentions, and whom the autocomplete offers."""

from collections.abc import Callable

import pytest

from stream_chat import accounts, chat, mentions
from stream_chat.models import Room, User


@pytest.mark.parametrize(
    ("content", "ids"),
    [
        ("@**Ada Lovelace|3** can you look?", {3}),
        ("cc @**Ada Lovelace|3**, @**Alan Turing|12** and @**Ada Lovelace|3**", {3, 12}),
        # Names with spaces, accents, other scripts, apostrophes.
        ("@**Grace Brewster Murray Hopper|7**", {7}),
        ("merci @**José Ñúñez|8** 你好 @**李雷|9**", {8, 9}),
        ("@**Sinéad O'Connor|10**!", {10}),
        # At the start of a line, in a list, a quote, a heading, a table, a link's text.
        ("first line\n@**Ada|3** second", {3}),
        ("- @**Ada|3**\n- @**Alan|4**", {3, 4}),
        ("> @**Ada|3** said so", {3}),
        ("# @**Ada|3**", {3}),
        ("| who |\n|---|\n| @**Ada|3** |", set()),  # `|` splits a table cell: no mention
        ("[@**Ada|3**](https://example.com)", {3}),
        # Followed by punctuation or a letter.
        ("(@**Ada|3**)", {3}),
        ("@**Ada|3**s", {3}),
        # Entities are text: the name reads "<b>", as the browser shows it.
        ("@**&lt;b&gt;|3**", {3}),
        # `__` makes the same strong span as `**`, in the browser too.
        ("@__Ada|3__", {3}),
    ],
)
def test_mentions_are_found(content: str, ids: set[int]) -> None:
    assert mentions.mentioned_user_ids(content) == ids


@pytest.mark.parametrize(
    "content",
    [
        # Not the syntax: no id, a name only, a malformed id, no name, nothing but spaces.
        "@Ada Lovelace",
        "@**Ada Lovelace**",
        "@**Ada Lovelace|**",
        "@**Ada Lovelace|abc**",
        "@**Ada Lovelace|0**",
        "@**Ada Lovelace|03**",
        "@**|3**",
        "@**   |3**",
        "@** Ada|3 **",
        "@*Ada|3*",
        "@**Ada\nLovelace|3**",
        # An id past PostgreSQL's integers names nobody.
        "@**Ada|2147483648**",
        "@**Ada|99999999999**",
        # Inside a word or an address, or after another @.
        "ada@**Ada|3**",
        "@@**Ada|3**",
        "x_@**Ada|3**",
        # Quoted code is not a mention.
        "`@**Ada|3**`",
        "``a `@**Ada|3**` b``",
        "```\n@**Ada|3**\n```",
        "~~~python\nprint('@**Ada|3**')\n~~~",
        "    @**Ada|3** (indented code)",
        # Escaped: the reader sees the stars, not a mention.
        "@\\*\\*Ada|3\\*\\*",
        # HTML inside the name makes it something else (and is never rendered).
        "@**<img src=x onerror=alert(1)>|3**",
        # Markdown inside the name makes it something else.
        "@**_Ada_|3**",
        "@**`Ada`|3**",
    ],
)
def test_what_is_not_a_mention(content: str) -> None:
    assert mentions.mentioned_user_ids(content) == set()


def test_code_does_not_hide_the_mentions_around_it() -> None:
    content = (
        "`@**Ada|3**` is how you write it; @**Alan|4** try:\n```\n@**Grace|5**\n```\n@**Ken|6**"
    )
    assert mentions.mentioned_user_ids(content) == {4, 6}


@pytest.mark.parametrize(
    "content",
    [None, 3, ["@**Ada|3**"], {"content": "@**Ada|3**"}, b"@**Ada|3**", "", "\x00", "\ud800"],
)
def test_odd_input_mentions_nobody(content: object) -> None:
    assert mentions.mentioned_user_ids(content) == set()
    assert mentions.mentions_assistant(content) is False


def test_as_read_shows_each_mention_by_its_name_and_leaves_the_rest() -> None:
    text = "@**Ada Lovelace|3** and @**Alan|12**, not **bold|x** nor @**Nobody|0**"
    assert mentions.as_read(text) == "@Ada Lovelace and @Alan, not **bold|x** nor @**Nobody|0**"


def test_nul_and_lone_surrogates_are_read_as_stored() -> None:
    # The contexts strip them before storing: what is mentioned is what the room will read.
    assert mentions.mentioned_user_ids("@**Ada\x00 Lovelace|3**\ud800") == {3}
    assert mentions.mentions_assistant("@assis\x00tant") is True


def test_a_long_text_full_of_near_misses_is_read_quickly_enough_to_matter_not() -> None:
    content = ("@**a|1** " * 400) + ("*" * 3000) + ("`" * 500)
    assert mentions.mentioned_user_ids(content) == {1}


@pytest.mark.parametrize(
    ("content", "asks"),
    [
        ("@assistant what is a monad?", True),
        ("hey @Assistant, sum this", True),
        ("@ASSISTANT.", True),
        ("(@assistant)", True),
        ("line one\n@assistant line two", True),
        ("no mention here", False),
        ("mail me@assistant.example", False),
        ("@assistants are nice", False),
        ("@@assistant", False),
        ("@assistanté", False),
        # Quoting the keyword does not ask.
        ("write `@assistant` to ask it", False),
        ("```\n@assistant\n```", False),
    ],
)
def test_the_assistant_rule(content: str, asks: bool) -> None:
    assert mentions.mentions_assistant(content) is asks


def test_a_message_may_mention_people_and_ask_the_assistant() -> None:
    found = mentions.find_mentions("@assistant summarise for @**Ada Lovelace|3**")
    assert found == mentions.Mentions(frozenset({3}), True)


@pytest.mark.parametrize(
    ("name", "inserted"),
    [
        ("Ada Lovelace", "@**Ada Lovelace|3**"),
        ("  Ada   Lovelace ", "@**Ada Lovelace|3**"),
        ("Ada **bold** | pipe", "@**Ada bold pipe|3**"),
        ("`code` [link](x) <b>", "@**code link x b|3**"),
        ("_under_ ~strike~ $math$ \\ & #", "@**under strike math|3**"),
        ("***", "@**someone|3**"),
        ("", "@**someone|3**"),
        ("nul\x00 here\ud800", "@**nul here|3**"),
        ("x" * 200, f"@**{'x' * 80}|3**"),
    ],
)
def test_the_inserted_mention(name: str, inserted: str) -> None:
    assert mentions.mention_text(3, name) == inserted
    # Whatever the name, what is inserted is a mention of that user.
    assert mentions.mentioned_user_ids(f"hi {inserted} there") == {3}


def test_an_inserted_mention_survives_editing_around_it() -> None:
    original = f"{mentions.mention_text(3, 'Ada Lovelace')} can you review?"
    edited = f"Morning! {original.replace('review', 'look at')} Thanks, and @assistant too"
    assert mentions.find_mentions(edited) == mentions.Mentions(frozenset({3}), True)
    # Editing the mention's name keeps whom it mentions (the id); breaking its shape drops it.
    assert mentions.mentioned_user_ids(edited.replace("Ada Lovelace", "Ada")) == {3}
    assert mentions.mentioned_user_ids(edited.replace("|3**", "**")) == set()


# Whom the autocomplete offers


def test_candidates_offer_recent_posters_first_then_everyone_by_name(
    db: str, make_user: Callable[..., User], make_room: Callable[..., Room]
) -> None:
    viewer = make_user("Viewer")
    zed, bob, cy = make_user("Zed"), make_user("Bob"), make_user("Cy")
    make_user("Ada")
    room, elsewhere = make_room(), make_room()
    chat.create_message(room.id, bob.id, "first")  # type: ignore[arg-type]
    chat.create_message(room.id, zed.id, "later")  # type: ignore[arg-type]
    chat.create_message(room.id, viewer.id, "mine")  # type: ignore[arg-type]
    chat.create_message(elsewhere.id, cy.id, "not here")  # type: ignore[arg-type]
    offered = mentions.candidates(room.id, viewer.id)  # type: ignore[arg-type]
    assert [c["name"] for c in offered] == ["Zed", "Bob", "Ada", "Cy"]
    assert [c["recent"] for c in offered] == [True, True, False, False]
    assert offered[0] == {
        "id": zed.id,
        "name": "Zed",
        "mention": f"@**Zed|{zed.id}**",
        "recent": True,
    }


def test_candidates_leave_out_the_assistant_and_the_viewer(
    db: str, make_user: Callable[..., User], make_room: Callable[..., Room]
) -> None:
    viewer, other = make_user("Viewer"), make_user("Other")
    room = make_room()
    assistant_id = accounts.assistant_user_id()
    reply = chat.create_reply(room.id, assistant_id, viewer.id)  # type: ignore[arg-type]
    chat.update_reply(reply.id, status=chat.DONE, content="hello")  # type: ignore[arg-type]
    offered = mentions.candidates(room.id, viewer.id)  # type: ignore[arg-type]
    assert [c["id"] for c in offered] == [other.id]


def test_candidates_are_bounded(
    db: str,
    make_user: Callable[..., User],
    make_room: Callable[..., Room],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mentions, "MAX_CANDIDATES", 3)
    people = [make_user(f"User {i:02}") for i in range(6)]
    room = make_room()
    chat.create_message(room.id, people[5].id, "recent")  # type: ignore[arg-type]
    offered = mentions.candidates(room.id, people[0].id)  # type: ignore[arg-type]
    assert [c["name"] for c in offered] == ["User 05", "User 01", "User 02"]
