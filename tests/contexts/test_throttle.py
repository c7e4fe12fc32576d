"""Throttles (stream_chat/throttle.py): the message token bucket and the login lockout, on
both stores (in-process, and Redis as several workers share it), then through the contexts
that apply them (`chat.post_message`, `accounts.log_in`) on SQLite and PostgreSQL.

Before them, 20 wrong passwords in a row were each answered at once and the right one was
accepted straight after; one user stored 300 messages in about a second.
"""

import socket
import uuid
from collections.abc import Iterator

import pytest
import redis

from stream_chat import accounts, chat, throttle

REDIS_URL = "redis://127.0.0.1:6379/15"
PASSWORD = "correct horse battery staple"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(throttle, "clock", fake)
    return fake


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=["local", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[throttle.Store]:
    """Each store in use as the app's; a Redis one under a prefix of its own."""
    if request.param == "local":
        chosen: throttle.Store = throttle.LocalStore()
    else:
        if not _redis_reachable():
            pytest.skip("no Redis at 127.0.0.1:6379")
        prefix = f"stream_chat_test:{uuid.uuid4().hex}:"
        chosen = throttle.RedisStore(REDIS_URL, prefix=prefix)
    previous = throttle.use_store(chosen)
    yield chosen
    throttle.use_store(previous)
    if request.param == "redis":
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


def test_a_burst_then_the_refill_rate(store, clock, monkeypatch):
    monkeypatch.setenv("MESSAGES_BURST", "3")
    monkeypatch.setenv("MESSAGES_PER_SECOND", "0.5")
    assert [throttle.message_wait(7) for _ in range(3)] == [0, 0, 0]
    assert throttle.message_wait(7) == pytest.approx(2.0)
    # A refused message took nothing: the wait only shrinks with time.
    clock.advance(1.5)
    assert throttle.message_wait(7) == pytest.approx(0.5)
    clock.advance(0.5)
    assert throttle.message_wait(7) == 0
    assert throttle.message_wait(7) == pytest.approx(2.0)
    # Another user has a bucket of their own; a long pause refills only up to the burst.
    assert throttle.message_wait(8) == 0
    clock.advance(3600)
    assert [throttle.message_wait(7) for _ in range(4)][-1] == pytest.approx(2.0)


def test_logins_lock_after_the_free_attempts_with_a_doubling_wait(store, clock, monkeypatch):
    monkeypatch.setenv("LOGIN_FREE_ATTEMPTS", "3")
    monkeypatch.setenv("LOGIN_LOCKOUT_SECONDS", "10")
    monkeypatch.setenv("LOGIN_MAX_LOCKOUT_SECONDS", "35")
    email = "alice@example.com"
    assert [throttle.login_failed(email, "10.0.0.1") for _ in range(3)] == [0, 0, 0]
    assert throttle.login_wait(email, "10.0.0.1") == 0
    assert throttle.login_failed(email, "10.0.0.1") == 10
    assert throttle.login_wait(email, "10.0.0.2") == 10  # the account, from anywhere
    clock.advance(4)
    assert throttle.login_wait(email, None) == 6
    clock.advance(6)
    assert throttle.login_wait(email, None) == 0
    assert throttle.login_failed(email, None) == 20
    clock.advance(20)
    assert throttle.login_failed(email, None) == 35  # 40, capped
    # A success clears the account.
    throttle.login_succeeded(email)
    assert throttle.login_wait(email, None) == 0
    assert throttle.login_failed(email, None) == 0


def test_an_address_is_locked_across_accounts(store, clock, monkeypatch):
    monkeypatch.setenv("LOGIN_FREE_ATTEMPTS_PER_ADDRESS", "4")
    for n in range(4):
        assert throttle.login_failed(f"user{n}@example.com", "10.0.0.9") == 0
    assert throttle.login_failed("user5@example.com", "10.0.0.9") == 10
    assert throttle.login_wait("someone@example.com", "10.0.0.9") == 10
    assert throttle.login_wait("someone@example.com", "10.0.0.8") == 0
    # Logging in to one's own account does not reset the address.
    throttle.login_succeeded("user0@example.com")
    assert throttle.login_wait("user0@example.com", "10.0.0.9") == 10


def test_failures_are_forgotten_after_the_longest_lockout(store, clock, monkeypatch):
    monkeypatch.setenv("LOGIN_FREE_ATTEMPTS", "2")
    monkeypatch.setenv("LOGIN_MAX_LOCKOUT_SECONDS", "2")
    email = "bob@example.com"
    assert [throttle.login_failed(email, None) for _ in range(2)] == [0, 0]
    if isinstance(store, throttle.RedisStore):
        # Redis forgets by expiry, on its own clock: set past the longest lockout.
        client, key = redis.Redis.from_url(REDIS_URL), store._prefix + f"login:account:{email}"
        assert 2 <= client.ttl(key) <= 3
        client.delete(key)
    else:
        clock.advance(3)
    assert throttle.login_failed(email, None) == 0


def test_wait_notes_round_up_to_whole_seconds():
    assert throttle.wait_note(0.2) == "Try again in 1 s."
    assert throttle.wait_note(39.1) == "Try again in 40 s."


# Through the contexts


def test_post_message_refuses_past_the_limit_and_stores_nothing(
    store, clock, monkeypatch, make_user, make_room, count_rows
):
    monkeypatch.setenv("MESSAGES_BURST", "5")
    monkeypatch.setenv("MESSAGES_PER_SECOND", "0.25")
    user, room = make_user(), make_room()
    for n in range(5):
        chat.post_message(room.id, user.id, f"message {n}")
    with pytest.raises(chat.SendingTooFast) as refused:
        chat.post_message(room.id, user.id, "one too many")
    assert str(refused.value) == "You are sending messages too fast. Try again in 4 s."
    assert count_rows("messages") == 5
    # An empty message is refused for what it is, and costs no token.
    with pytest.raises(chat.InvalidMessage):
        chat.post_message(room.id, user.id, "  ")
    clock.advance(4)
    chat.post_message(room.id, user.id, "later")
    assert count_rows("messages") == 6


def test_log_in_locks_out_guessing_even_for_the_right_password(store, clock, db):
    user = accounts.register_user("alice@example.com", PASSWORD)
    answers = []
    for _ in range(7):
        try:
            answers.append(accounts.log_in("alice@example.com", "guess", "10.0.0.1"))
        except accounts.TooManyAttempts as error:
            answers.append(str(error))
    assert answers == [None] * 5 + ["Too many attempts. Try again in 10 s."] * 2
    with pytest.raises(accounts.TooManyAttempts, match="Try again in 10 s"):
        accounts.log_in("Alice@Example.com", PASSWORD, "10.0.0.2")
    clock.advance(10)
    assert accounts.log_in("alice@example.com", PASSWORD, "10.0.0.2").id == user.id
    # The success cleared the account: a later slip is one free failure again.
    assert accounts.log_in("alice@example.com", "slip", "10.0.0.2") is None
