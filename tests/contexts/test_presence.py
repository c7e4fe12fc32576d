"""The presence store's rules, in process and in Redis (one Lua script per update): the same
operations give the same changes in both. Time is passed in, so nothing here waits."""

import socket
import uuid
from collections.abc import Iterator

import pytest
import redis

from stream_chat import presence

REDIS_URL = "redis://127.0.0.1:6379/15"
T0 = 1_800_000_000.0
TTL, AWAY = 60.0, 300.0


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=["local", "redis"])
def store(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[presence.Store]:
    monkeypatch.setenv("PRESENCE_TAB_TTL_SECONDS", str(TTL))
    monkeypatch.setenv("PRESENCE_AWAY_SECONDS", str(AWAY))
    if request.param == "local":
        yield presence.LocalStore()
        return
    if not _redis_reachable():
        pytest.skip("no Redis at 127.0.0.1:6379")
    prefix = f"stream_chat_test:{uuid.uuid4().hex}:"
    yield presence.RedisStore(REDIS_URL, prefix=prefix)
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)


def test_online_while_any_tab_is_connected(store: presence.Store) -> None:
    first = store.update(T0, [("add", "1|5|a"), ("add", "1|6|b")])
    assert first.statuses == {1: presence.ONLINE}
    assert first.roster == {(5, 1): True, (6, 1): True}
    left = store.update(T0 + 1, [("drop", "1|5|a")])
    assert left.statuses == {}
    assert left.roster == {(5, 1): False}
    assert store.roster(5) == set() and store.roster(6) == {1}
    gone = store.update(T0 + 2, [("drop", "1|6|b")])
    assert gone.statuses == {1: None}
    assert store.statuses() == {}
    # Dropping a tab twice changes nothing.
    assert store.update(T0 + 3, [("drop", "1|6|b")]) == presence.Changes({}, {})


def test_the_index_page_is_online_in_no_room(store: presence.Store) -> None:
    changes = store.update(T0, [("add", f"2|{presence.NO_ROOM}|c")])
    assert changes.statuses == {2: presence.ONLINE}
    assert changes.roster == {}


def test_a_tab_nobody_renews_expires_and_a_renewed_one_does_not(store: presence.Store) -> None:
    store.update(T0, [("add", "1|5|dead"), ("add", "2|5|live")])
    store.update(T0 + TTL / 2, [("beat", "2|5|live")])
    expired = store.update(T0 + TTL, [])
    assert expired.statuses == {1: None}
    assert expired.roster == {(5, 1): False}
    assert store.statuses() == {2: presence.ONLINE}
    assert store.roster(5) == {2}


def test_away_after_no_input_and_back_with_input(store: presence.Store) -> None:
    store.update(T0, [("add", "1|5|a"), ("add", "2|5|b")])
    for minute in range(1, 6):  # the workers renew every tab meanwhile
        store.update(T0 + 60 * minute - 1, [("beat", "1|5|a"), ("beat", "2|5|b")])
    store.update(T0 + AWAY - 10, [("input", "2")])
    away = store.update(T0 + AWAY, [("beat", "1|5|a"), ("beat", "2|5|b")])
    assert away.statuses == {1: presence.AWAY}
    assert store.statuses() == {1: presence.AWAY, 2: presence.ONLINE}
    back = store.update(T0 + AWAY + 1, [("input", "1")])
    assert back.statuses == {1: presence.ONLINE}


def test_input_of_someone_offline_brings_nobody_online(store: presence.Store) -> None:
    assert store.update(T0, [("input", "7")]) == presence.Changes({}, {})
    assert store.statuses() == {}


def test_a_renewal_after_an_outage_brings_a_live_tab_back(store: presence.Store) -> None:
    """Its worker still holds it (Redis was away longer than a lifetime): back, as away until
    the next input, since only a connection counts as input."""
    store.update(T0, [("add", "1|5|a")])
    store.update(T0 + TTL + 1, [])
    back = store.update(T0 + TTL + 2, [("beat", "1|5|a")])
    assert back.roster == {(5, 1): True}
    assert back.statuses == {1: presence.AWAY}
