"""The Search context (stream_chat/search.py) on SQLite (FTS5) and PostgreSQL (tsvector).

Every test runs on both databases through the real migrations: the index is the database's
own, kept by triggers (SQLite) or a generated column (PostgreSQL)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_chat import chat, mentions, search
from stream_chat.chat import DONE, INTERRUPTED, STOPPED, NotAuthorized, RoomNotFound
from stream_chat.search import InvalidSearch, Segment, Term


@pytest.fixture
def random_room(make_room):
    return make_room("random")


def _post(room, user, content):
    return chat.create_message(room.id, user.id, content)


def _found(user, query, **options):
    return [hit.message.content for hit in search.search_messages(user.id, query, **options).hits]


# Parsing (no database)


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        ("deploy", (Term(("deploy",), True),)),
        ("deploy fix", (Term(("deploy",), False), Term(("fix",), True))),
        ('"deploy the fix"', (Term(("deploy", "the", "fix"), False),)),
        ('"deploy the', (Term(("deploy", "the"), True),)),
        (
            'rollback "deploy the fix" now',
            (
                Term(("rollback",), False),
                Term(("deploy", "the", "fix"), False),
                Term(("now",), True),
            ),
        ),
        ("deploy a", (Term(("deploy",), False), Term(("a",), False))),
        (
            "-deploy OR (fix*)",
            (Term(("deploy",), False), Term(("OR",), False), Term(("fix",), True)),
        ),
        ('""deploy', (Term(("deploy",), True),)),
        ("snake_case", (Term(("snake",), False), Term(("case",), True))),
    ],
)
def test_parse_query(query, terms):
    assert search.parse_query(query) == terms


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Type the words to search for."),
        ("   \n\t", "Type the words to search for."),
        ("\x00\ud800", "Type the words to search for."),
        (None, "Type the words to search for."),
        (42, "Type the words to search for."),
        (["deploy"], "Type the words to search for."),
        ('"', "Search for words or numbers: this search has none."),
        ('*** -- ^ : ( ) ""', "Search for words or numbers: this search has none."),
        ("x" * 201, "A search can be at most 200 characters."),
        (" ".join(["w"] * 17), "A search can have at most 16 words."),
    ],
)
def test_unparseable_queries_say_why(query, message):
    with pytest.raises(InvalidSearch) as refused:
        search.parse_query(query)
    assert str(refused.value) == message


def test_the_match_strings_quote_every_word():
    terms = search.parse_query('NEAR(a b) "x y" col:z*')
    assert search.fts5_match(terms) == '"NEAR" "a" "b" "x y" "col" "z"'
    assert (
        search.tsquery_text(terms) == "('NEAR') & ('a') & ('b') & ('x' <-> 'y') & ('col') & ('z')"
    )
    prefixed = search.parse_query("deploy fi")
    assert search.fts5_match(prefixed) == '"deploy" "fi"*'
    assert search.tsquery_text(prefixed) == "('deploy') & ('fi':*)"


# Snippets (no database)


def test_snippet_segments_mark_the_matching_words():
    terms = search.parse_query("deploy fri")
    segments = search.snippet("We deploy on Friday, not\n\non  Fridays.", terms)
    assert segments == (
        Segment("We ", False),
        Segment("deploy", True),
        Segment(" on ", False),
        Segment("Friday", True),
        Segment(", not on ", False),
        Segment("Fridays", True),
        Segment(".", False),
    )


def test_snippet_of_a_long_message_is_cut_around_the_first_match():
    content = " ".join(f"word{n}" for n in range(200)) + " needle " + "tail " * 100
    segments = search.snippet(content, search.parse_query("needle"))
    text = "".join(s.text for s in segments)
    assert text.startswith("…word19") or text.startswith("…word1")
    assert text.endswith("…")
    assert [s.text for s in segments if s.is_match] == ["needle"]
    assert len(text) <= search.SNIPPET_LENGTH + 2
    # Cut at whole words.
    assert text[1:].split()[0].startswith("word") and text[:-1].split()[-1] == "tail"


def test_snippet_carries_html_as_plain_text():
    segments = search.snippet("<b>deploy</b> <script>x</script>", search.parse_query("deploy"))
    assert segments == (
        Segment("<b>", False),
        Segment("deploy", True),
        Segment("</b> <script>x</script>", False),
    )


# Searching


def test_results_are_newest_first_across_rooms(alice, room, random_room):
    _post(room, alice, "deploy one")
    _post(random_room, alice, "deploy two")
    _post(room, alice, "nothing to see")
    _post(room, alice, "deploy three")
    page = search.search_messages(alice.id, "deploy")
    assert [hit.message.content for hit in page.hits] == [
        "deploy three",
        "deploy two",
        "deploy one",
    ]
    assert [hit.room_name for hit in page.hits] == ["general", "random", "general"]
    assert page.hits[0].message.sender.name == "Alice"
    assert page.next_before_id is None


def test_search_in_one_room(alice, room, random_room):
    _post(room, alice, "deploy one")
    _post(random_room, alice, "deploy two")
    assert _found(alice, "deploy", room_id=room.id) == ["deploy one"]
    assert _found(alice, "deploy", room_id=random_room.id) == ["deploy two"]


def test_a_mention_in_a_snippet_reads_as_its_name(alice, room):
    _post(room, alice, f"ask {mentions.mention_text(alice.id, 'Ada Lovelace')} about the deploy")
    [hit] = search.search_messages(alice.id, "deploy").hits
    assert "".join(segment.text for segment in hit.snippet) == "ask @Ada Lovelace about the deploy"


def test_all_words_must_match_in_any_order(alice, room):
    _post(room, alice, "the fix for the deploy")
    _post(room, alice, "deploy later")
    assert _found(alice, "deploy fix") == ["the fix for the deploy"]
    assert _found(alice, "fix deploy") == ["the fix for the deploy"]


def test_case_and_accents_do_not_matter(alice, room):
    _post(room, alice, "Meet at the Café Zürich")
    assert _found(alice, "cafe zurich") == ["Meet at the Café Zürich"]
    assert _found(alice, "CAFÉ") == ["Meet at the Café Zürich"]
    hit = search.search_messages(alice.id, "cafe")
    assert [s.text for s in hit.hits[0].snippet if s.is_match] == ["Café"]


def test_phrases_need_the_words_together_and_in_order(alice, room):
    _post(room, alice, "please deploy the fix now")
    _post(room, alice, "the fix: deploy it")
    _post(room, alice, "deploy, then the fix")
    assert _found(alice, '"deploy the fix"') == ["please deploy the fix now"]
    assert _found(alice, '"fix deploy"') == ["the fix: deploy it"]
    assert _found(alice, '"the fix"') == [
        "deploy, then the fix",
        "the fix: deploy it",
        "please deploy the fix now",
    ]


def test_the_last_word_matches_as_a_prefix(alice, room):
    _post(room, alice, "deployed")
    _post(room, alice, "deploying soon")
    _post(room, alice, "dependency")
    assert _found(alice, "deplo") == ["deploying soon", "deployed"]
    # Not the other words, and not after a closing quote.
    assert _found(alice, "deplo soon") == []
    assert _found(alice, '"deplo"') == []
    # A one-letter last word is a whole word.
    _post(room, alice, "plan b")
    assert _found(alice, "b") == ["plan b"]


def test_a_phrase_still_being_typed_matches_its_last_word_as_a_prefix(alice, room):
    _post(room, alice, "deploy the fix")
    assert _found(alice, '"deploy the fi') == ["deploy the fix"]


def test_punctuation_separates_words_on_both_databases(alice, room):
    _post(room, alice, "mail ada@streamchat.io about snake_case and v1.2.3")
    for query in ("streamchat", "snake case", "case", "ada", "v1", '"ada streamchat io"'):
        assert _found(alice, query) == ["mail ada@streamchat.io about snake_case and v1.2.3"], query


def test_an_edit_is_found_at_once_and_the_old_text_is_not(alice, room):
    message = _post(room, alice, "deploy on monday")
    chat.update_message(message.id, alice.id, "release on tuesday", room_id=room.id)
    assert _found(alice, "monday") == []
    assert _found(alice, "tuesday") == ["release on tuesday"]


def test_a_deleted_message_is_never_found(alice, room):
    message = _post(room, alice, "deploy on monday")
    _post(room, alice, "monday again")
    chat.delete_message(message.id, alice.id, room_id=room.id)
    assert _found(alice, "monday") == ["monday again"]
    assert _found(alice, "deploy") == []


def _reply(room, alice, bot, text):
    reply = chat.create_reply(room.id, bot.id, alice.id)
    assert chat.claim_reply(reply.id, "gen-1").room_id == room.id
    assert chat.start_reply_text(reply.id, "gen-1", text[:5])
    assert chat.append_to_reply(reply.id, "gen-1", 5, text[5:])
    return reply


def test_a_reply_being_written_is_not_found_until_it_finishes(alice, room, make_user):
    bot = make_user("Assistant")
    reply = _reply(room, alice, bot, "the kubernetes answer")
    assert _found(alice, "kubernetes") == []
    assert chat.finish_reply(reply.id, "gen-1", status=STOPPED)
    assert _found(alice, "kubernetes") == ["the kubernetes answer"]
    # Retried (a stopped reply may be; a done one never is): it is being written again, and
    # not found until it is done.
    assert chat.requeue_reply(reply.id, alice.id)
    assert _found(alice, "kubernetes") == []
    assert chat.claim_reply(reply.id, "gen-2").room_id == room.id
    assert chat.start_reply_text(reply.id, "gen-2", "a helm answer")
    assert _found(alice, "helm") == []
    assert chat.finish_reply(reply.id, "gen-2", status=DONE)
    assert _found(alice, "helm") == ["a helm answer"]
    assert _found(alice, "kubernetes") == []


@pytest.mark.parametrize("status", [STOPPED, INTERRUPTED, chat.FAILED])
def test_a_reply_that_ended_early_is_found_with_its_partial_text(alice, room, make_user, status):
    bot = make_user("Assistant")
    reply = _reply(room, alice, bot, "partial kubernetes")
    assert chat.finish_reply(reply.id, "gen-1", status=status)
    assert _found(alice, "kubernetes") == ["partial kubernetes"]


def test_queued_and_thinking_replies_are_not_found(alice, room, make_user, fetch):
    bot = make_user("Assistant")
    queued = chat.create_reply(room.id, bot.id, alice.id)
    # Give it text behind the contexts' back: still not searchable while queued.
    chat.update_reply(queued.id, content="queued kubernetes")
    assert _found(alice, "kubernetes") == []
    chat.update_reply(queued.id, status=chat.THINKING)
    assert _found(alice, "kubernetes") == []
    chat.update_reply(queued.id, status=DONE)
    assert _found(alice, "kubernetes") == ["queued kubernetes"]


def test_paging_walks_every_match_newest_first(alice, room, random_room):
    ids = []
    for n in range(45):
        ids.append(_post(room if n % 3 else random_room, alice, f"match {n}").id)
        _post(room, alice, f"other {n}")
    walked, before, pages = [], None, 0
    while True:
        page = search.search_messages(alice.id, "match", before_id=before, limit=20)
        pages += 1
        walked += [hit.message.id for hit in page.hits]
        if page.next_before_id is None:
            break
        assert page.next_before_id == page.hits[-1].message.id
        before = page.next_before_id
    assert pages == 3
    assert walked == list(reversed(ids))


def test_a_last_page_of_exactly_the_limit_says_there_is_no_next(alice, room):
    for n in range(20):
        _post(room, alice, f"match {n}")
    page = search.search_messages(alice.id, "match", limit=20)
    assert len(page.hits) == 20
    assert page.next_before_id is None
    assert search.search_messages(alice.id, "match", limit=19).next_before_id is not None


def test_a_query_that_matches_nothing_is_an_empty_page(alice, room):
    _post(room, alice, "deploy")
    page = search.search_messages(alice.id, "zanzibar")
    assert (page.hits, page.next_before_id) == ([], None)


def test_the_caller_must_be_a_user(alice, room):
    with pytest.raises(NotAuthorized):
        search.search_messages(alice.id + 100, "deploy")
    with pytest.raises(NotAuthorized):
        search.search_messages("1; DROP", "deploy")  # type: ignore[arg-type]


def test_an_unknown_room_is_refused(alice, room):
    for room_id in (room.id + 100, "abc", -1):
        with pytest.raises(RoomNotFound):
            search.search_messages(alice.id, "deploy", room_id=room_id)  # type: ignore[arg-type]


@pytest.mark.parametrize("before", ["abc", -5, 2**40, True, [1]])
def test_a_malformed_page_cursor_is_refused(alice, room, before):
    with pytest.raises(InvalidSearch):
        search.search_messages(alice.id, "deploy", before_id=before)


# Injection attempts: whatever is typed is words, never SQL or index syntax.

HOSTILE_QUERIES = [
    '"',
    '"deploy',
    'deploy"',
    '""""',
    "*",
    "deploy*",
    "*deploy",
    "NEAR(deploy friday)",
    "NEAR(deploy friday, 2)",
    "deploy OR friday",
    "deploy AND NOT friday",
    "deploy NOT",
    "-deploy",
    "deploy -friday",
    "content:deploy",
    "{content}: deploy",
    "^deploy",
    "(deploy",
    "deploy)",
    "((deploy) | friday) & !x <-> y:*",
    "'); DROP TABLE messages; --",
    "' OR 1=1 --",
    "deploy\\",
    "dep\x00loy",
    "\ud800deploy\udfff",
    "deploy \x00 friday",
    "%_%",
    "deploy;",
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_hostile_queries_are_words_or_a_clear_refusal(alice, room, count_rows, query):
    _post(room, alice, "we deploy on friday")
    try:
        page = search.search_messages(alice.id, query)
    except InvalidSearch:
        return
    for hit in page.hits:
        assert hit.message.content == "we deploy on friday"
    assert count_rows("messages") == 1


def test_sql_in_a_query_is_searched_as_words(alice, room, count_rows):
    _post(room, alice, "never drop table messages in prod")
    _post(room, alice, "we deploy on friday")
    assert _found(alice, "'); DROP TABLE messages; --") == ["never drop table messages in prod"]
    assert count_rows("messages") == 2


def test_operators_are_words(alice, room):
    _post(room, alice, "we deploy on friday")
    _post(room, alice, "deploy or not")
    # "OR" is a word that must be there, not FTS5's OR; "-" does not exclude.
    assert _found(alice, "deploy OR friday") == []
    assert _found(alice, "deploy -friday") == ["we deploy on friday"]
    assert _found(alice, "deploy or") == ["deploy or not"]
    assert _found(alice, "NEAR(deploy friday)") == []
    assert _found(alice, "dep\x00loy fri\ud800day") == ["we deploy on friday"]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(query=st.text(max_size=60))
def test_any_text_is_a_page_or_a_clear_refusal(alice, room, query):
    if not search.search_messages(alice.id, "seeded").hits:
        _post(room, alice, "seeded message about deploy")
    try:
        page = search.search_messages(alice.id, query)
    except InvalidSearch as refused:
        assert str(refused)
    else:
        assert len(page.hits) <= 1


@pytest.mark.parametrize("limit", [0, -1])
def test_a_page_holds_at_least_one_and_at_most_the_maximum(alice, room, limit):
    for n in range(3):
        _post(room, alice, f"match {n}")
    # A page is never empty for want of a sensible limit, nor unbounded (SQLite: LIMIT -1).
    page = search.search_messages(alice.id, "match", limit=limit)
    assert [hit.message.content for hit in page.hits] == ["match 2"]
    assert page.next_before_id == page.hits[0].message.id
    assert search.MAX_PAGE_SIZE <= 200


@pytest.mark.parametrize("walked_rows", [1, 3, 4, 1000])
def test_matches_older_than_the_walked_rows_are_found_too(
    alice, room, random_room, monkeypatch, walked_rows
):
    """PostgreSQL walks the newest rows, then reads the older matches from the GIN index:
    with a tiny walk, every page crosses from one to the other."""
    monkeypatch.setattr(search, "WALKED_ROWS", walked_rows)
    matches = []
    for n in range(12):
        target = room if n % 4 else random_room
        message = _post(target, alice, f"match {n}" if n % 3 == 0 else f"other {n}")
        if n % 3 == 0:
            matches.append((message.id, target.id))
    newest_first = list(reversed(matches))
    for room_id in (None, room.id, random_room.id):
        expected = [i for i, r in newest_first if room_id in (None, r)]
        walked, before = [], None
        for _ in range(10):
            page = search.search_messages(
                alice.id, "match", room_id=room_id, before_id=before, limit=1
            )
            walked += [hit.message.id for hit in page.hits]
            if page.next_before_id is None:
                break
            before = page.next_before_id
        assert walked == expected, (room_id, walked_rows)
        assert (
            _found(alice, "match", room_id=room_id, limit=3)
            == [
                f"match {n}"
                for n in (9, 6, 3, 0)
                if room_id in (None, room.id if n % 4 else random_room.id)
            ][:3]
        )


def test_ids_may_come_as_strings(alice, room, random_room):
    """As they do from a URL or an event payload: PostgreSQL would refuse to compare an
    integer column with text."""
    older = _post(room, alice, "match one")
    _post(random_room, alice, "match two")
    newer = _post(room, alice, "match three")
    page = search.search_messages(
        str(alice.id), "match", room_id=str(room.id), before_id=str(newer.id)
    )
    assert [hit.message.id for hit in page.hits] == [older.id]
