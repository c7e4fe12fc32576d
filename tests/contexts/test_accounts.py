"""The Accounts context (stream_chat/accounts.py) against a real, migrated database."""

import hashlib
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from sqlmodel import select

from stream_chat import accounts, repo
from stream_chat.accounts import RegistrationError
from stream_chat.models import UserToken, utcnow

PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice(db):
    return accounts.register_user("alice@example.com", PASSWORD, "Alice")


# register_user


def test_register_creates_the_user(db, fetch):
    user = accounts.register_user("alice@example.com", PASSWORD, "  Alice Liddell ")
    assert user.id is not None
    assert (user.email, user.name) == ("alice@example.com", "Alice Liddell")
    assert accounts.count_users() == 1
    assert fetch("SELECT id, email, name FROM users") == [
        (user.id, "alice@example.com", "Alice Liddell")
    ]
    found = accounts.get_user(user.id)
    assert found is not None
    assert found.email == "alice@example.com"


def test_register_names_the_user_after_the_email_by_default(db):
    assert accounts.register_user("grace.hopper@example.com", PASSWORD).name == "grace.hopper"
    assert accounts.register_user("ada@example.com", PASSWORD, "   ").name == "ada"


def test_register_normalizes_the_email_to_lower_case(db, fetch):
    user = accounts.register_user("  Alice.Smith@Example.COM \n", PASSWORD)
    assert user.email == "alice.smith@example.com"
    assert fetch("SELECT email FROM users") == [("alice.smith@example.com",)]
    found = accounts.get_user_by_email("ALICE.SMITH@EXAMPLE.COM")
    assert found is not None
    assert found.id == user.id


@pytest.mark.parametrize(
    "again", ["alice@example.com", "Alice@Example.com", "ALICE@EXAMPLE.COM", " alice@example.com "]
)
def test_register_refuses_a_taken_email(alice, count_rows, again):
    with pytest.raises(RegistrationError) as refused:
        accounts.register_user(again, "another long password", "Impostor")
    assert set(refused.value.errors) == {"email"}
    assert "already" in refused.value.errors["email"]
    assert count_rows("users") == 1
    assert accounts.get_user(alice.id).name == "Alice"


@pytest.mark.parametrize(
    "email",
    [
        "",
        "   ",
        "alice",
        "alice@",
        "@example.com",
        "alice@example",
        "alice@@example.com",
        "a b@example.com",
        "alice@exa mple.com",
        "alice@example..com",
        "<alice@example.com>",
        "alice@example.com, bob@example.com",
    ],
)
def test_register_refuses_an_invalid_email(db, count_rows, email):
    with pytest.raises(RegistrationError) as refused:
        accounts.register_user(email, PASSWORD)
    assert set(refused.value.errors) == {"email"}
    assert refused.value.errors["email"]
    assert count_rows("users") == 0


def test_register_refuses_an_email_too_long_for_the_column(db, count_rows):
    # Valid for email_validator (64-character local part, 63-character labels) but longer
    # than users.email's 160 characters: PostgreSQL would raise a DataError.
    email = f"{'a' * 64}@{'b' * 60}.{'c' * 60}.com"
    assert len(email) == 190
    with pytest.raises(RegistrationError) as refused:
        accounts.register_user(email, PASSWORD)
    assert set(refused.value.errors) == {"email"}
    assert count_rows("users") == 0


def test_register_accepts_an_email_of_exactly_the_column_length(db, fetch):
    email = f"{'a' * 64}@{'b' * 63}.{'c' * 27}.com"
    assert len(email) == 160
    assert accounts.register_user(email, PASSWORD).email == email
    assert fetch("SELECT email FROM users") == [(email,)]


def test_register_reports_every_invalid_field_at_once(db, count_rows):
    with pytest.raises(RegistrationError) as refused:
        accounts.register_user("nope", "short")
    assert set(refused.value.errors) == {"email", "password"}
    assert count_rows("users") == 0


def test_register_refuses_a_password_of_11_characters(db, count_rows):
    with pytest.raises(RegistrationError) as refused:
        accounts.register_user("alice@example.com", "x" * 11)
    assert set(refused.value.errors) == {"password"}
    assert "12" in refused.value.errors["password"]
    assert count_rows("users") == 0


def test_register_accepts_a_password_of_12_characters(db):
    user = accounts.register_user("alice@example.com", "x" * 12)
    assert accounts.authenticate("alice@example.com", "x" * 12).id == user.id


def test_register_password_upper_bound(db, count_rows):
    with pytest.raises(RegistrationError) as refused:
        accounts.register_user("alice@example.com", "x" * 257)
    assert set(refused.value.errors) == {"password"}
    assert "256" in refused.value.errors["password"]
    assert count_rows("users") == 0
    assert accounts.register_user("alice@example.com", "x" * 256).id is not None


def test_register_stores_only_an_argon2id_hash(alice, fetch):
    [(stored,)] = fetch("SELECT hashed_password FROM users")
    assert stored != PASSWORD
    assert PASSWORD not in stored
    assert stored.startswith("$argon2id$")
    assert PasswordHasher().verify(stored, PASSWORD)
    with pytest.raises(VerifyMismatchError):
        PasswordHasher().verify(stored, PASSWORD + "!")


def test_the_same_password_hashes_differently_each_time(db, fetch):
    accounts.register_user("alice@example.com", PASSWORD)
    accounts.register_user("bob@example.com", PASSWORD)
    hashes = [row[0] for row in fetch("SELECT hashed_password FROM users")]
    assert len(set(hashes)) == 2, "hashes must be salted"


# authenticate


def test_authenticate_with_the_right_password(alice):
    user = accounts.authenticate("alice@example.com", PASSWORD)
    assert user is not None
    assert (user.id, user.email) == (alice.id, "alice@example.com")


def test_authenticate_ignores_the_case_and_spaces_of_the_email(alice):
    user = accounts.authenticate("  ALICE@Example.com ", PASSWORD)
    assert user is not None
    assert user.id == alice.id


def test_authenticate_with_the_email_exactly_as_registered(db):
    # email_validator turns an IDNA (punycode) domain into Unicode when registering: logging
    # in with the very address one registered with must still work.
    email = "Alice@xn--bcher-kva.example.com"
    user = accounts.register_user(email, PASSWORD)
    found = accounts.authenticate(email, PASSWORD)
    assert found is not None
    assert found.id == user.id


def test_authenticate_with_a_decomposed_accent_as_registered(db):
    # "José" typed with a combining accent: stored NFC-normalized, found the same way.
    email = "Jose\u0301@example.com"
    user = accounts.register_user(email, PASSWORD)
    assert user.email == "jos\u00e9@example.com"
    assert accounts.authenticate(email, PASSWORD).id == user.id
    assert accounts.authenticate("jos\u00e9@example.com", PASSWORD).id == user.id


@pytest.mark.parametrize(
    "password", [PASSWORD + "!", PASSWORD.upper(), PASSWORD[:-1], "", f" {PASSWORD}"]
)
def test_authenticate_with_a_wrong_password(alice, password):
    assert accounts.authenticate("alice@example.com", password) is None


def test_authenticate_an_unknown_email(alice):
    assert accounts.authenticate("bob@example.com", PASSWORD) is None
    assert accounts.authenticate("", PASSWORD) is None


# Session tokens


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _age_token(token: str, days: float) -> None:
    with repo.session() as session:
        row = session.exec(select(UserToken).where(UserToken.token_hash == _digest(token))).one()
        row.inserted_at = utcnow() - timedelta(days=days)
        session.add(row)
        session.commit()


def test_a_session_token_resolves_to_its_user(alice):
    token = accounts.create_session_token(alice)
    assert isinstance(token, str)
    assert len(token) >= 32
    user = accounts.get_user_by_session_token(token)
    assert user is not None
    assert (user.id, user.email) == (alice.id, "alice@example.com")


def test_tokens_are_unique_and_resolve_to_their_own_user(alice):
    bob = accounts.register_user("bob@example.com", PASSWORD, "Bob")
    alice_tokens = {accounts.create_session_token(alice) for _ in range(3)}
    bob_token = accounts.create_session_token(bob)
    assert len(alice_tokens) == 3
    assert bob_token not in alice_tokens
    for token in alice_tokens:
        assert accounts.get_user_by_session_token(token).id == alice.id
    assert accounts.get_user_by_session_token(bob_token).id == bob.id


def test_only_the_sha256_digest_of_a_token_is_stored(alice, fetch):
    token = accounts.create_session_token(alice)
    [row] = fetch("SELECT * FROM users_tokens")
    stored = row._asdict()
    assert stored["token_hash"] == _digest(token)
    assert stored["user_id"] == alice.id
    assert stored["context"] == "session"
    for column, value in stored.items():
        assert token not in str(value), f"the raw token is stored in {column}"


@pytest.mark.parametrize("token", [None, ""])
def test_no_token_is_no_user(alice, token):
    accounts.create_session_token(alice)
    assert accounts.get_user_by_session_token(token) is None


def test_an_unknown_token_is_no_user(alice):
    token = accounts.create_session_token(alice)
    assert accounts.get_user_by_session_token(token + "x") is None
    assert accounts.get_user_by_session_token(token[:-1]) is None
    # The digest itself is not a token: a leaked table does not log anyone in.
    assert accounts.get_user_by_session_token(_digest(token)) is None


def test_a_token_of_another_context_is_not_a_session(alice):
    token = "a-password-reset-token"
    with repo.session() as session:
        session.add(UserToken(user_id=alice.id, token_hash=_digest(token), context="reset"))
        session.commit()
    assert accounts.get_user_by_session_token(token) is None


def test_a_revoked_token_stops_working_and_only_that_one(alice, count_rows):
    revoked = accounts.create_session_token(alice)
    other = accounts.create_session_token(alice)
    accounts.delete_session_token(revoked)
    assert accounts.get_user_by_session_token(revoked) is None
    assert accounts.get_user_by_session_token(other).id == alice.id
    assert count_rows("users_tokens") == 1
    accounts.delete_session_token(revoked)  # Logging out twice is harmless.
    assert accounts.get_user_by_session_token(other).id == alice.id


@pytest.mark.parametrize("token", [None, ""])
def test_revoking_no_token_revokes_nothing(alice, count_rows, token):
    kept = accounts.create_session_token(alice)
    accounts.delete_session_token(token)
    assert count_rows("users_tokens") == 1
    assert accounts.get_user_by_session_token(kept).id == alice.id


def test_a_token_older_than_60_days_has_expired(alice):
    token = accounts.create_session_token(alice)
    fresh = accounts.create_session_token(alice)
    _age_token(token, days=61)
    assert accounts.get_user_by_session_token(token) is None
    assert accounts.get_user_by_session_token(fresh).id == alice.id


def test_a_token_59_days_old_still_works(alice):
    token = accounts.create_session_token(alice)
    _age_token(token, days=59)
    user = accounts.get_user_by_session_token(token)
    assert user is not None
    assert user.id == alice.id


def test_the_assistant_user_id_is_read_once_per_database(db, count_statements):
    first = accounts.assistant_user_id()
    assert first == accounts.assistant_user().id

    with count_statements() as statements:
        assert accounts.assistant_user_id() == first
    assert statements == []
