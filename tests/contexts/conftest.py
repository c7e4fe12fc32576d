"""Fixtures for the context tests: a database migrated by the real Alembic migrations.

Every test that asks for `db` runs twice: on SQLite (a fresh file per test) and on PostgreSQL
(`stream_chat_test` at 127.0.0.1:5432, migrated once per session and truncated between tests).
The PostgreSQL runs are skipped only when nothing listens on 127.0.0.1:5432.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy.pool import NullPool

from alembic import command
from stream_chat import chat, repo
from stream_chat.models import Room, User

ROOT = Path(__file__).resolve().parents[2]
PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_SERVER_URL = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}"
PG_DATABASE = "stream_chat_test"
PG_URL = f"{PG_SERVER_URL}/{PG_DATABASE}"
PG_LOCK_KEY = 0x5354_4348_4154  # Any constant shared by every session of this suite.
PG_LOCK_WAIT_SECONDS = 240  # Below pytest-timeout's 300 s, so that the error says why.
# Children first, although CASCADE would cope with any order.
TABLES = ("users_tokens", "last_reads", "messages", "rooms", "users")


def alembic_config() -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    # env.py would otherwise run logging.config.fileConfig and reset pytest's log capture.
    config.attributes["skip_logging"] = True
    # alembic.ini predates `path_separator`; "os" splits its `prepend_sys_path = .` the same
    # way and silences Alembic's deprecation warning on every command.
    config.set_main_option("path_separator", "os")
    return config


def _postgres_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=2):
            return True
    except OSError:
        return False


def _create_postgres_database() -> None:
    server = sa.create_engine(f"{PG_SERVER_URL}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": PG_DATABASE}
            ).scalar()
            if not exists:
                conn.exec_driver_sql(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        server.dispose()


def _drop_leftover_tables() -> None:
    """Whatever `downgrade base` could not remove: tables from a revision this checkout
    does not know, or from `create_all`."""
    metadata = sa.MetaData()
    with repo.engine().begin() as conn:
        metadata.reflect(conn)
        metadata.drop_all(conn)
        # And the text search configurations a migration created (only tables go above).
        leftover = conn.exec_driver_sql(
            "SELECT cfgname FROM pg_ts_config WHERE cfgnamespace = 'public'::regnamespace"
        ).scalars()
        for name in list(leftover):
            conn.exec_driver_sql(f'DROP TEXT SEARCH CONFIGURATION "{name}"')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if not _postgres_reachable():
        pytest.skip(f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT}")
    _create_postgres_database()
    # Two test sessions at once (two terminals, or `pytest` while `make test` runs) would
    # migrate and truncate under each other: a session-level advisory lock, held until this
    # session ends, makes the second one wait for the first.
    lock_engine = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with lock_engine.connect() as lock:
        lock.exec_driver_sql(f"SET lock_timeout = '{PG_LOCK_WAIT_SECONDS}s'")
        try:
            lock.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": PG_LOCK_KEY})
        except sa.exc.OperationalError as error:
            raise RuntimeError(
                f"Another test session has held {PG_DATABASE} for over "
                f"{PG_LOCK_WAIT_SECONDS} s; wait for it to finish."
            ) from error
        try:
            repo.configure(PG_URL)
            config = alembic_config()
            # A database stamped with a revision this checkout does not have cannot be
            # downgraded: its tables are dropped below.
            with contextlib.suppress(CommandError):
                command.downgrade(config, "base")
            _drop_leftover_tables()
            command.upgrade(config, "head")
            repo.engine().dispose()
            yield PG_URL
        finally:
            lock.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": PG_LOCK_KEY})
    lock_engine.dispose()


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def backend(request: pytest.FixtureRequest) -> str:
    """Session-scoped so that pytest runs all the SQLite tests, then all the PostgreSQL ones."""
    if request.param == "postgres":
        request.getfixturevalue("postgres_url")
    return request.param


@pytest.fixture
def db(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated database that `repo` points at; yields its URL."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'stream_chat_test.db'}"
        repo.configure(url)
        command.upgrade(alembic_config(), "head")
    else:
        url = PG_URL
        repo.configure(url)
        with repo.engine().begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    yield url
    repo.engine().dispose()


@pytest.fixture
def alembic_cfg() -> Config:
    return alembic_config()


@pytest.fixture
def fetch(db: str) -> Callable[..., list[sa.Row[Any]]]:
    """Runs raw SQL on the test database, bypassing the contexts: what is really stored."""

    def run(sql: str, **params: Any) -> list[sa.Row[Any]]:
        with repo.engine().connect() as conn:
            return list(conn.execute(sa.text(sql), params))

    return run


@pytest.fixture
def count_rows(fetch: Callable[..., list[sa.Row[Any]]]) -> Callable[[str], int]:
    def count(table: str) -> int:
        assert table in TABLES
        return fetch(f"SELECT COUNT(*) FROM {table}")[0][0]

    return count


@pytest.fixture
def make_user(db: str) -> Callable[..., User]:
    """Inserts a user directly (no Argon2: the chat tests do not log in)."""
    numbers = itertools.count(1)

    def make(name: str | None = None) -> User:
        n = next(numbers)
        user = User(
            email=f"user{n}@example.com", name=name or f"User {n}", hashed_password="not-a-hash"
        )
        with repo.session() as session:
            session.add(user)
            session.commit()
            session.refresh(user)
        return user

    return make


@pytest.fixture
def make_room(db: str) -> Callable[..., Room]:
    numbers = itertools.count(1)

    def make(name: str | None = None) -> Room:
        return chat.create_room(name or f"room{next(numbers)}")

    return make


@pytest.fixture
def count_statements(db: str) -> Callable[[], Any]:
    """`with count_statements() as statements:` collects every SQL statement sent to the
    engine inside the block."""

    @contextlib.contextmanager
    def counting() -> Iterator[list[str]]:
        statements: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(statement)

        engine = repo.engine()
        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)

    return counting


@pytest.fixture
def alice(make_user: Callable[..., User]) -> User:
    return make_user("Alice")


@pytest.fixture
def bob(make_user: Callable[..., User]) -> User:
    return make_user("Bob")


@pytest.fixture
def room(make_room: Callable[..., Room]) -> Room:
    """A room named general."""
    return make_room("general")
