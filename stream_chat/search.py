"""The Search context: full-text search of messages, newest first, with safe snippets.

Plain Python, no Reflex. The index is the database's own (migration 0004): SQLite's FTS5
table `messages_search`, kept in step by triggers, or PostgreSQL's generated
`messages.search_vector` with its GIN index. Both hold only searchable messages: people's
messages and finished assistant replies, never a reply still queued, thinking or streaming.

The query language, parsed here and never handed to the database as it was typed:

* words, all of which must match (in any order), case- and accent-insensitively;
* `"a phrase"` in double quotes: those words next to each other, in that order (a quote left
  open runs to the end of the query);
* the last word (or the phrase's last word) also matches as a prefix, so results follow
  typing, unless the query ends with a closing quote or the word is a single character;
* everything that is not a letter or a digit separates words: `-`, `*`, `:`, `^`, `(`,
  `OR`-style operators are not operators here, just text.

From the parsed words this module builds the FTS5 MATCH string or the tsquery text itself,
each word quoted, and binds it as a parameter. A query with no words is an `InvalidSearch`;
one that matches nothing is an empty page.

Snippets are data, not markup: `(text, is_match)` segments cut from the message's stored
text, which the page renders as text.
"""

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    column,
    literal_column,
    table,
    text,
)
from sqlalchemy.orm import joinedload
from sqlmodel import Session, col, func, select

from stream_chat import mentions, repo
from stream_chat.chat import (
    ACTIVE_STATUSES,
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    ChatError,
    NotAuthorized,
    RoomNotFound,
    parse_id,
)
from stream_chat.models import SEARCH_INDEX_TABLE, SEARCH_VECTOR_COLUMN, Message, Room, User
from stream_chat.text import clean_text

MAX_QUERY_LENGTH = 200
MAX_TERMS = 16
# A one-letter prefix would match most of the index and gains the reader nothing.
PREFIX_MIN_LENGTH = 2
SNIPPET_LENGTH = 160
# PostgreSQL: how many of the newest rows are walked before the GIN index is read for the
# older matches (see _postgres_rows).
WALKED_ROWS = 5000
SNIPPET_LEAD = 40  # characters shown before the first match, when the message is longer
ELLIPSIS = "…"

# Letters and digits, as FTS5's unicode61 tokenizer and the PostgreSQL configuration (over
# the content with its punctuation replaced by spaces) split words; a double quote.
_TOKEN = re.compile(r'"|[^\W_]+')
_WORD = re.compile(r"[^\W_]+")
_SPACES = re.compile(r"\s+")

# The PostgreSQL text search configuration of migration 0004.
_POSTGRES_CONFIG = "stream_chat_search"
_FTS: Table = table(SEARCH_INDEX_TABLE, column("rowid"))
# Not a reply still queued, thinking or streaming (the index skips those too).
_FINISHED = col(Message.status).is_(None) | col(Message.status).not_in(ACTIVE_STATUSES)


class InvalidSearch(ChatError):
    pass


class Term(NamedTuple):
    """One word, or a quoted phrase's words; `prefix`: its last word matches as a prefix."""

    words: tuple[str, ...]
    prefix: bool


class Segment(NamedTuple):
    """A piece of a snippet: matching words are their own segments, `is_match` True."""

    text: str
    is_match: bool


@dataclass(frozen=True)
class SearchHit:
    message: Message  # with its sender loaded
    room_name: str
    snippet: tuple[Segment, ...]


@dataclass(frozen=True)
class SearchPage:
    hits: list[SearchHit]
    # Pass as `before_id` for the next (older) page; None when this page is the last.
    next_before_id: int | None


def parse_query(query: object) -> tuple[Term, ...]:
    """The terms of a query as the reader typed it, or InvalidSearch saying what is wrong."""
    if not isinstance(query, str):
        raise InvalidSearch("Type the words to search for.")
    typed = unicodedata.normalize("NFKC", clean_text(query)).strip()
    if not typed:
        raise InvalidSearch("Type the words to search for.")
    if len(typed) > MAX_QUERY_LENGTH:
        raise InvalidSearch(f"A search can be at most {MAX_QUERY_LENGTH} characters.")
    terms: list[tuple[str, ...]] = []
    phrase: list[str] | None = None
    ends_with_closing_quote = False
    for token in _TOKEN.findall(typed):
        ends_with_closing_quote = False
        if token != '"':
            if phrase is None:
                terms.append((token,))
            else:
                phrase.append(token)
        elif phrase is None:
            phrase = []
        else:
            if phrase:
                terms.append(tuple(phrase))
            phrase, ends_with_closing_quote = None, True
    if phrase:
        terms.append(tuple(phrase))
    if not terms:
        raise InvalidSearch("Search for words or numbers: this search has none.")
    if sum(len(words) for words in terms) > MAX_TERMS:
        raise InvalidSearch(f"A search can have at most {MAX_TERMS} words.")
    last_is_prefix = not ends_with_closing_quote and len(terms[-1][-1]) >= PREFIX_MIN_LENGTH
    return tuple(
        Term(words, prefix=last_is_prefix and n == len(terms) - 1) for n, words in enumerate(terms)
    )


def fts5_match(terms: Sequence[Term]) -> str:
    """The FTS5 MATCH string: every term a quoted string (a phrase), so that nothing typed
    is read as an FTS5 operator, column filter or prefix; implicit AND between them."""
    return " ".join(
        '"' + " ".join(term.words).replace('"', '""') + '"' + ("*" if term.prefix else "")
        for term in terms
    )


def tsquery_text(terms: Sequence[Term]) -> str:
    """The `to_tsquery` text: every word a quoted lexeme, phrases joined by `<->`."""

    def lexeme(word: str, prefix: bool) -> str:
        quoted = word.replace("\\", "\\\\").replace("'", "''")
        return f"'{quoted}'" + (":*" if prefix else "")

    return " & ".join(
        "("
        + " <-> ".join(
            lexeme(word, term.prefix and n == len(term.words) - 1)
            for n, word in enumerate(term.words)
        )
        + ")"
        for term in terms
    )


def search_messages(
    user_id: int | str,
    query: object,
    *,
    room_id: int | str | None = None,
    before_id: int | str | None = None,
    limit: int = PAGE_SIZE,
) -> SearchPage:
    """The newest `limit` messages matching `query` that `user_id` may read, in one room or
    in all (`room_id` None), below the id `before_id` for the next pages. Newest first.

    InvalidSearch for a query with no words or a malformed page cursor; RoomNotFound for an
    unknown room; NotAuthorized for an unknown user."""
    terms = parse_query(query)
    # Ids from a URL or an event payload may be strings, or not ids at all.
    below = parse_id(before_id)
    if before_id is not None and below is None:
        raise InvalidSearch("That page of results is not available any more.")
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    with repo.session() as db:
        reader_id = parse_id(user_id)
        if reader_id is None or db.get(User, reader_id) is None:
            raise NotAuthorized("Log in to search.")
        room = parse_id(room_id)
        if room_id is not None and (room is None or db.get(Room, room) is None):
            raise RoomNotFound()
        # Every user may read every room today; a room membership check tightens here.
        searchable: list[ColumnElement[bool]] = [_FINISHED]
        if room is not None:
            searchable.append(col(Message.room_id) == room)
        if below is not None:
            searchable.append(col(Message.id) < below)
        if db.get_bind().dialect.name == "sqlite":
            rows = _sqlite_rows(db, terms, searchable, limit + 1)
        else:
            rows = _postgres_rows(db, terms, searchable, limit + 1)
    hits = [
        SearchHit(message, room_name, snippet(mentions.as_read(message.content), terms))
        for message, room_name in rows[:limit]
    ]
    more = len(rows) > limit
    return SearchPage(hits, hits[-1].message.id if more else None)


def _rows_with_senders() -> Select[tuple[Message, str]]:
    return (
        select(Message, Room.name)
        .options(joinedload(Message.sender))  # type: ignore[arg-type]
        .join(Room, col(Room.id) == col(Message.room_id))
    )


def _sqlite_rows(
    db: Session, terms: Sequence[Term], searchable: list[ColumnElement[bool]], limit: int
) -> Sequence[Row[tuple[Message, str]]]:
    # Joined from the index and ordered by its rowid, so that FTS5 walks its match list
    # newest first and the scan stops at the page's end, however common the words.
    match = literal_column(SEARCH_INDEX_TABLE).op("MATCH")(fts5_match(terms))
    query = (
        _rows_with_senders()
        .join(_FTS, _FTS.c.rowid == col(Message.id))
        .where(match, *searchable)
        .order_by(_FTS.c.rowid.desc())
        .limit(limit)
    )
    return db.exec(query).all()  # type: ignore[call-overload]


def _postgres_rows(
    db: Session, terms: Sequence[Term], searchable: list[ColumnElement[bool]], limit: int
) -> Sequence[Row[tuple[Message, str]]]:
    """The newest `limit` matches, first among the newest WALKED_ROWS rows, then the rest.

    PostgreSQL's planner chooses between walking the rows newest first (a common word finds a
    page within a few hundred) and reading every match from the GIN index (a rare word) by its
    estimate of how many rows match. It has no statistics for a prefix (`deplo:*`, the last
    word of nearly every query) and guesses 2 % of the table, which sent a rare word through
    a million rows (1.1 s measured). So the context bounds the walk itself: the newest
    WALKED_ROWS rows of the room (or of all rooms) newest first, then, if the page is not full,
    the older ones through the GIN index only. The planner switches last until the
    transaction ends."""
    match = _postgres_match(terms)
    ids = col(Message.id)
    scope = [condition for condition in searchable if condition is not _FINISHED]
    floor_query = select(ids).where(*scope).order_by(ids.desc()).offset(WALKED_ROWS).limit(1)
    # The floor, and the switches for the walk, in one round trip.
    floor = db.execute(
        select(floor_query.scalar_subquery(), *_planner(seqscan="off", bitmapscan="off"))
    ).first()[0]  # type: ignore[index]
    newest_first = _rows_with_senders().where(match, *searchable).order_by(ids.desc())
    walked = newest_first.where(ids > floor) if floor is not None else newest_first
    rows = list(db.exec(walked.limit(limit)).all())  # type: ignore[call-overload]
    if floor is None or len(rows) == limit:
        return rows
    db.execute(select(*_planner(bitmapscan="on", indexscan="off")))
    older = newest_first.where(ids <= floor).limit(limit - len(rows))
    return rows + list(db.exec(older).all())  # type: ignore[call-overload]


def _planner(**switches: str) -> list[ColumnElement[str]]:
    """Planner switches (`enable_<name>`) set until the transaction ends, as columns to
    select."""
    return [func.set_config(f"enable_{name}", value, True) for name, value in switches.items()]


def _postgres_match(terms: Sequence[Term]) -> ColumnElement[bool]:
    vector = literal_column(f"messages.{SEARCH_VECTOR_COLUMN}")
    tsquery = text(f"to_tsquery('{_POSTGRES_CONFIG}'::regconfig, :tsquery)").bindparams(
        tsquery=tsquery_text(terms)
    )
    return vector.op("@@")(tsquery)


# Snippets


def fold(word: str) -> str:
    """A word as the index compares it: without accents, case-folded."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


class _Matcher:
    def __init__(self, terms: Iterable[Term]) -> None:
        self.exact: set[str] = set()
        self.prefixes: list[str] = []
        for term in terms:
            *others, last = (fold(word) for word in term.words)
            self.exact.update(others)
            if term.prefix:
                self.prefixes.append(last)
            else:
                self.exact.add(last)

    def matches(self, word: str) -> bool:
        folded = fold(word)
        return folded in self.exact or any(folded.startswith(p) for p in self.prefixes)


def snippet(
    content: str, terms: Sequence[Term], length: int = SNIPPET_LENGTH
) -> tuple[Segment, ...]:
    """About `length` characters of `content` around its first matching word, as segments:
    each matching word is its own segment with `is_match` True. Whitespace runs read as one
    space; a cut end is marked with an ellipsis."""
    matcher = _Matcher(terms)
    words = list(_WORD.finditer(content))
    matching = [word for word in words if matcher.matches(word.group())]
    start = 0
    if matching and len(content) > length:
        start = max(0, matching[0].start() - SNIPPET_LEAD)
        # Begin at a word's start, not in the middle of one.
        start = next((w.start() for w in words if w.start() >= start), start)
    end = min(len(content), start + length)
    if end < len(content):
        # End after a whole word.
        end = max((w.end() for w in words if start < w.end() <= end), default=end)
    segments: list[Segment] = []
    if start > 0:
        segments.append(Segment(ELLIPSIS, False))
    position = start
    for word in matching:
        if word.start() < start or word.end() > end:
            continue
        _add(segments, content[position : word.start()], False)
        _add(segments, word.group(), True)
        position = word.end()
    _add(segments, content[position:end], False)
    if end < len(content):
        _add(segments, ELLIPSIS, False)
    if segments and not segments[0].is_match:
        segments[0] = Segment(segments[0].text.lstrip(), False)
    if segments and not segments[-1].is_match:
        segments[-1] = Segment(segments[-1].text.rstrip(), False)
    return tuple(segment for segment in segments if segment.text)


def _add(segments: list[Segment], piece: str, is_match: bool) -> None:
    piece = _SPACES.sub(" ", piece)
    if not piece:
        return
    if segments and segments[-1].is_match == is_match and not is_match:
        segments[-1] = Segment(segments[-1].text + piece, False)
    else:
        segments.append(Segment(piece, is_match))
