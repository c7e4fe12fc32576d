"""The Mentions context: how a message names someone, and whom it names.

Plain Python, no Reflex. A mention of a person is written `@**Ada Lovelace|3**` (Zulip's
syntax): the name is there for whoever reads the composer or the edit box, the id is what
counts. So a mention stays one when the message is edited (it is ordinary text), works for
names with spaces, and is never ambiguous: two people may share a name, a name may be the
start of another's, and a user's name may change, but an id names one person. The
autocomplete inserts it (`mention_text`); typed by hand it counts the same.

The assistant is asked with `@assistant` (a word, case-insensitive, not inside another word
nor an address): the one rule for "this message asks the assistant", which
`mentions_assistant` applies.

Only the message's text counts, read as the browser renders it (CommonMark with GitHub's
tables and strikethrough, by markdown-it): a mention inside a code span or a code block is
code someone quoted, not a mention. The browser's half, which highlights mentions as
`react-markdown` renders them, is `assets/mentions.js`; both recognise the same shape: `@`
(not after a letter, digit, `_` or `@`), then a strong span holding only `name|id`.
"""

import re
from dataclasses import dataclass
from typing import TypedDict

from markdown_it import MarkdownIt
from markdown_it.token import Token
from sqlmodel import col, func, select

from stream_chat import repo
from stream_chat.models import Message, User
from stream_chat.text import clean_text

ASSISTANT_KEYWORD = "@assistant"
_ASSISTANT = re.compile(r"(?<![\w@])@assistant(?!\w)", re.IGNORECASE)
# What a strong span holds in a mention: a name without `|` nor `*`, `|`, the user's id.
_NAMED_ID = re.compile(r"(?P<name>[^|*\n]*[^|*\s][^|*\n]*)\|(?P<id>[1-9][0-9]{0,9})")
# Ids are PostgreSQL integers: a larger number names nobody.
_MAX_ID = 2**31 - 1
# Characters markdown would read as syntax inside a name (emphasis, code, links, escapes,
# HTML, math, table cells) and the mention's own delimiters: left out of the inserted name.
_NOT_IN_NAME = re.compile(r"[*_`~\[\]()<>\\|$&#!\n\r\t]+")
_MAX_NAME = 80

_parser = MarkdownIt("commonmark").enable(["table", "strikethrough"])


@dataclass(frozen=True)
class Mentions:
    user_ids: frozenset[int]
    assistant: bool


def mention_name(name: str) -> str:
    """The name as a mention shows it: the user's name without markdown's syntax."""
    shown = " ".join(_NOT_IN_NAME.sub(" ", clean_text(name)).split())[:_MAX_NAME].strip()
    return shown or "someone"


def mention_text(user_id: int, name: str) -> str:
    """What the autocomplete inserts for this user: `@**Ada Lovelace|3**`."""
    return f"@**{mention_name(name)}|{user_id}**"


def find_mentions(content: object) -> Mentions:
    """Whom `content` mentions (ids, unchecked: a mention of an id nobody has names
    nobody), and whether it asks the assistant. Code spans and blocks do not count."""
    if not isinstance(content, str):
        return Mentions(frozenset(), False)
    user_ids: set[int] = set()
    assistant = False
    for token in _parser.parse(clean_text(content)):
        if token.type != "inline" or not token.children:
            continue
        children = token.children
        for at, child in enumerate(children):
            if child.type != "text":
                continue
            assistant = assistant or _ASSISTANT.search(child.content) is not None
            if (user_id := _mentioned_at(children, at)) is not None:
                user_ids.add(user_id)
    return Mentions(frozenset(user_ids), assistant)


def _mentioned_at(children: list[Token], at: int) -> int | None:
    """The id when `children[at]` is the text ending in `@` of a mention."""
    text = children[at].content
    if not text.endswith("@") or (len(text) > 1 and re.match(r"[\w@]", text[-2])):
        return None
    following = [token.type for token in children[at + 1 : at + 4]]
    if following != ["strong_open", "text", "strong_close"]:
        return None
    named = _NAMED_ID.fullmatch(children[at + 2].content)
    if named is None or int(named["id"]) > _MAX_ID:
        return None
    return int(named["id"])


_MENTION_MARKUP = re.compile(r"@\*\*(?P<name>[^|*\n]+)\|[1-9][0-9]{0,9}\*\*")


def as_read(content: str) -> str:
    """`content` as plain text reads it, outside the rendered message (a search snippet,
    a notification): `@**Ada Lovelace|3**` becomes `@Ada Lovelace`."""
    return _MENTION_MARKUP.sub(lambda found: "@" + found["name"], content)


def mentioned_user_ids(content: object) -> set[int]:
    return set(find_mentions(content).user_ids)


def mentions_assistant(content: object) -> bool:
    return find_mentions(content).assistant


# Whom the autocomplete offers


class Candidate(TypedDict):
    """A person the composer's autocomplete offers, JSON-ready."""

    id: int
    name: str
    mention: str
    # Posted in the room lately: offered first.
    recent: bool


# The room's newest messages read for "who posted lately" (a backward range scan of the
# room's index), and the most people offered (the browser filters them as one types).
RECENT_MESSAGES = 300
MAX_CANDIDATES = 500


def candidates(room_id: int, viewer_id: int) -> list[Candidate]:
    """The people one may mention in the room: whoever posted there lately first (the most
    recent first), then everyone else by name; never the viewer, never the assistant (it is
    `@assistant`). Every user of the app may read every room today, so all are offered."""
    with repo.session() as db:
        newest = (
            select(col(Message.sender_id), col(Message.id))
            .where(Message.room_id == room_id)
            .order_by(col(Message.id).desc())
            .limit(RECENT_MESSAGES)
            .subquery()
        )
        recent_ids = list(
            db.exec(
                select(newest.c.sender_id)
                .group_by(newest.c.sender_id)
                .order_by(func.max(newest.c.id).desc())
            ).all()
        )
        people = db.exec(
            select(User.id, User.name)
            .where(col(User.is_assistant).is_(False), User.id != viewer_id)
            .order_by(col(User.name), col(User.id))
            .limit(MAX_CANDIDATES)
        ).all()
        recent_people = (
            db.exec(
                select(User.id, User.name).where(
                    col(User.id).in_(recent_ids),
                    col(User.is_assistant).is_(False),
                    User.id != viewer_id,
                )
            ).all()
            if recent_ids
            else []
        )
    names = dict(people) | dict(recent_people)
    rank = {user_id: place for place, user_id in enumerate(recent_ids)}
    recent = sorted((i for i in names if i in rank), key=rank.__getitem__)
    others = [i for i, _ in people if i not in rank]
    return [
        {"id": i, "name": names[i], "mention": mention_text(i, names[i]), "recent": i in rank}
        for i in [*recent, *others][:MAX_CANDIDATES]
    ]
