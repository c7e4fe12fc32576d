"""The Accounts context: users, passwords and session tokens.

Passwords are hashed with Argon2id (argon2-cffi). Session tokens are random, handed to the
browser once, and stored only as their SHA-256 digest, so a leaked database holds no usable
token. Plain Python, no Reflex.
"""

import contextlib
import hashlib
import secrets
import weakref
from collections.abc import AsyncIterator
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, func, select

from stream_chat import pubsub, repo, throttle
from stream_chat.models import User, UserToken, utcnow
from stream_chat.text import clean_text, has_unsafe

MAX_EMAIL_LENGTH = 160  # users.email
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
SESSION_VALIDITY = timedelta(days=60)
SESSION_CONTEXT = "session"
# A login ticket carries a verified login from the page's event handler to the HTTP route
# that sets the HttpOnly session cookie: one use, within a minute.
LOGIN_TICKET_CONTEXT = "login"
LOGIN_TICKET_VALIDITY = timedelta(seconds=60)

_hasher = PasswordHasher()
# Verified against when the email is unknown, so that a miss costs as much time as a wrong
# password and response times do not reveal which emails have accounts.
_DUMMY_HASH = _hasher.hash("not-a-real-password-but-a-timing-guard")


class RegistrationError(Exception):
    """What is wrong with each field, keyed by field name, ready to show beside the form."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


class TooManyAttempts(Exception):
    """Logins for this account or from this address are paused; the message says how long."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"Too many attempts. {throttle.wait_note(wait)}")
        self.wait = wait


def normalize_email(email: str) -> str:
    # The same normalization as register_user's (email_validator turns an IDNA domain into
    # Unicode, NFC-normalizes), so that logging in with the address one registered with works.
    address = clean_text(email).strip()
    with contextlib.suppress(EmailNotValidError):
        address = validate_email(address, check_deliverability=False).normalized
    return address.lower()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def register_user(email: str, password: str, name: str = "") -> User:
    errors: dict[str, str] = {}
    address = normalize_email(email)
    try:
        address = validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        errors["email"] = str(error)
    else:
        if len(address) > MAX_EMAIL_LENGTH:
            # Valid addresses go up to 254 characters; PostgreSQL would refuse with a DataError.
            errors["email"] = f"Use at most {MAX_EMAIL_LENGTH} characters."
    if has_unsafe(password):
        # Stripping would change the secret behind the user's back: refused instead.
        errors["password"] = "A password cannot contain NUL or broken Unicode characters."
    elif len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = f"Use at least {MIN_PASSWORD_LENGTH} characters."
    elif len(password) > MAX_PASSWORD_LENGTH:
        errors["password"] = f"Use at most {MAX_PASSWORD_LENGTH} characters."
    if errors:
        raise RegistrationError(errors)

    user = User(
        email=address,
        name=(clean_text(name).strip() or address.split("@")[0])[:80],
        hashed_password=hash_password(password),
    )
    with repo.session() as db:
        db.add(user)
        try:
            db.commit()
        except IntegrityError as error:
            raise RegistrationError(
                {"email": "An account with this email already exists."}
            ) from error
        db.refresh(user)
    return user


def get_user_by_email(email: str) -> User | None:
    with repo.session() as db:
        return db.exec(select(User).where(User.email == normalize_email(email))).first()


def get_user(user_id: int) -> User | None:
    with repo.session() as db:
        return db.get(User, user_id)


def authenticate(email: str, password: str) -> User | None:
    """The user whose email and password these are, or None (without saying which was wrong)."""
    user = get_user_by_email(email)
    if has_unsafe(password):
        # No account can have such a password (registration refuses it), and Argon2 cannot
        # encode a lone surrogate: a plain mismatch, after the same work as any other.
        password = ""
    try:
        _hasher.verify(user.hashed_password if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return user


def log_in(email: str, password: str, client_address: str | None) -> User | None:
    """`authenticate`, throttled per account and per client address (see `throttle`):
    TooManyAttempts while either is locked, without checking the password at all."""
    account = normalize_email(email)
    if wait := throttle.login_wait(account, client_address):
        raise TooManyAttempts(wait)
    user = authenticate(email, password)
    if user is None:
        if wait := throttle.login_failed(account, client_address):
            raise TooManyAttempts(wait)
        return None
    throttle.login_succeeded(account)
    return user


ASSISTANT_EMAIL = "assistant@streamchat.invalid"


def assistant_user() -> User:
    """The user whose name the assistant's replies carry, created on first use.

    Its password hash is not a hash of anything, so nobody can log in as it.
    """
    with repo.session() as db:
        user = db.exec(select(User).where(User.email == ASSISTANT_EMAIL)).first()
        if user is not None:
            return user
        user = User(email=ASSISTANT_EMAIL, name="Assistant", hashed_password="!", is_assistant=True)
        db.add(user)
        try:
            db.commit()
        except IntegrityError:
            # Another worker created it first.
            db.rollback()
            return db.exec(select(User).where(User.email == ASSISTANT_EMAIL)).one()
        db.refresh(user)
        return user


# Per database (tests and benchmarks switch databases): the assistant's user, once created,
# never changes, and every reply is sent by it.
_assistant_ids: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()


def assistant_user_id() -> int:
    """The id of `assistant_user()`, read from the database once."""
    engine = repo.engine()
    if engine not in _assistant_ids:
        _assistant_ids[engine] = assistant_user().id  # type: ignore[assignment]
    return _assistant_ids[engine]


def count_users() -> int:
    with repo.session() as db:
        return db.exec(
            select(func.count()).select_from(User).where(col(User.is_assistant).is_(False))
        ).one()


# Session tokens


def _digest(token: str) -> str:
    # A crafted token may hold a lone surrogate: it gets a digest nobody has, not an error.
    return hashlib.sha256(token.encode(errors="surrogatepass")).hexdigest()


def create_session_token(user: User) -> str:
    return _create_token(user, SESSION_CONTEXT)


def _create_token(user: User, context: str) -> str:
    token = secrets.token_urlsafe(32)
    with repo.session() as db:
        db.add(UserToken(user_id=user.id, token_hash=_digest(token), context=context))  # type: ignore[arg-type]
        db.commit()
    return token


def create_login_ticket(user: User) -> str:
    """A one-use ticket for `user`, to be swapped for a session token by `redeem_login_ticket`
    within `LOGIN_TICKET_VALIDITY`. Only for a user that `authenticate` (or registration)
    has just vouched for."""
    return _create_token(user, LOGIN_TICKET_CONTEXT)


def redeem_login_ticket(ticket: str | None) -> str | None:
    """A new session token for the ticket's user, or None (unknown, used or stale ticket).
    The ticket is spent in the same transaction, so it works once."""
    if not ticket:
        return None
    spend = (
        delete(UserToken)
        .where(
            col(UserToken.token_hash) == _digest(ticket),
            col(UserToken.context) == LOGIN_TICKET_CONTEXT,
        )
        .returning(col(UserToken.user_id), col(UserToken.inserted_at))
    )
    with repo.session() as db:
        spent = db.exec(spend).first()  # type: ignore[call-overload]
        db.commit()
    if spent is None or spent.inserted_at <= utcnow() - LOGIN_TICKET_VALIDITY:
        return None
    user = get_user(spent.user_id)
    return create_session_token(user) if user is not None else None


def get_user_by_session_token(token: str | None) -> User | None:
    """The token's user, or None when the token is unknown, revoked or older than 60 days."""
    if not token:
        return None
    query = (
        select(User)
        .join(UserToken)
        .where(
            UserToken.token_hash == _digest(token),
            UserToken.context == SESSION_CONTEXT,
            col(UserToken.inserted_at) > utcnow() - SESSION_VALIDITY,
        )
    )
    with repo.session() as db:
        return db.exec(query).first()


def session_user_id(token: str | None) -> int | None:
    """The token's user id, or None: what every state-changing event checks, so one indexed
    lookup of the token's digest, no user row."""
    if not token:
        return None
    query = select(UserToken.user_id).where(
        UserToken.token_hash == _digest(token),
        UserToken.context == SESSION_CONTEXT,
        col(UserToken.inserted_at) > utcnow() - SESSION_VALIDITY,
    )
    with repo.session() as db:
        return db.exec(query).first()


def delete_session_token(token: str | None) -> None:
    """Log out: the token stops working everywhere at once, and every tab of the session,
    on every worker, is told (`subscribe_session`)."""
    if not token:
        return
    with repo.session() as db:
        db.exec(delete(UserToken).where(col(UserToken.token_hash) == _digest(token)))  # type: ignore[call-overload]
        db.commit()
    pubsub.broker().publish(session_topic(session_key(token)), {"kind": "revoked"})


def session_key(token: str) -> str:
    """What names a session outside the cookie (its topic, a worker's list of its tabs):
    the token's digest, never the token."""
    return _digest(token)


def session_topic(key: str) -> str:
    return f"session:{key}"


@contextlib.asynccontextmanager
async def subscribe_session(key: str) -> AsyncIterator[pubsub.Subscription]:
    """The session's events from now on: `{"kind": "revoked"}` when it is logged out."""
    async with pubsub.broker().subscribe(session_topic(key)) as subscription:
        yield subscription
