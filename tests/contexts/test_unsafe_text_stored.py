"""NUL and lone surrogates in every text field the contexts store, on SQLite and PostgreSQL.

The rule (stream_chat/text.py) is to strip them. PostgreSQL refused NUL in a message, an edit,
a name or an email with a DataError, and neither database's driver could encode a lone
surrogate; both ended as Reflex's generic error toast.
"""

import pytest

from stream_chat import accounts, chat

PASSWORD = "correct horse battery staple"
UNSAFE = ["\x00", "\ud800", "\udfff", "\ud83d"]


@pytest.mark.parametrize("bad", UNSAFE)
def test_a_message_and_its_edit_are_stored_stripped(make_user, make_room, fetch, bad):
    user, room = make_user(), make_room()
    message = chat.create_message(room.id, user.id, f"he{bad}llo{bad}")
    assert message.content == "hello"
    chat.update_message(message.id, user.id, f"{bad}edited", room_id=room.id)
    assert fetch("SELECT content FROM messages") == [("edited",)]


@pytest.mark.parametrize("bad", UNSAFE)
def test_a_message_of_nothing_but_unsafe_characters_is_empty(make_user, make_room, bad):
    user, room = make_user(), make_room()
    with pytest.raises(chat.InvalidMessage, match="cannot be empty"):
        chat.create_message(room.id, user.id, f" {bad}{bad} ")


@pytest.mark.parametrize("bad", UNSAFE)
def test_a_room_name_and_description_are_stored_stripped(db, fetch, bad):
    chat.create_room(f"ops{bad}", f"on{bad} call")
    assert fetch("SELECT name, description FROM rooms") == [("ops", "on call")]


@pytest.mark.parametrize("bad", UNSAFE)
def test_a_name_and_an_email_are_stored_stripped(db, fetch, bad):
    user = accounts.register_user(f"ali{bad}ce@example.com", PASSWORD, f"Ali{bad}ce")
    assert fetch("SELECT email, name FROM users") == [("alice@example.com", "Alice")]
    assert accounts.get_user_by_email(f"alice@exa{bad}mple.com").id == user.id
    assert accounts.authenticate(f"{bad}alice@example.com", PASSWORD).id == user.id


@pytest.mark.parametrize("bad", UNSAFE)
def test_a_password_with_unsafe_characters_is_refused_or_does_not_match(db, count_rows, bad):
    with pytest.raises(accounts.RegistrationError) as refused:
        accounts.register_user("bob@example.com", f"{PASSWORD}{bad}")
    assert refused.value.errors == {
        "password": "A password cannot contain NUL or broken Unicode characters."
    }
    assert count_rows("users") == 0

    accounts.register_user("alice@example.com", PASSWORD)
    assert accounts.authenticate("alice@example.com", f"{PASSWORD}{bad}") is None
    assert accounts.authenticate("nobody@example.com", f"{PASSWORD}{bad}") is None


@pytest.mark.parametrize("bad", UNSAFE)
def test_a_session_token_with_unsafe_characters_is_nobody_s(db, bad):
    user = accounts.register_user("alice@example.com", PASSWORD)
    token = accounts.create_session_token(user)
    assert accounts.get_user_by_session_token(token + bad) is None
    accounts.delete_session_token(token + bad)
    assert accounts.get_user_by_session_token(token).id == user.id
