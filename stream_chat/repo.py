"""The one place that owns the database engine (Phoenix's `Repo`).

Contexts open sessions here. Tests point it at another database with `configure`.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from stream_chat import settings

_engine: Engine | None = None


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    # SQLite ignores FOREIGN KEY constraints unless asked on every connection, and WAL lets
    # the app read while the seeds or another process write. In WAL mode NORMAL sync is the
    # usual choice: commits stop waiting for fsync, and the database stays consistent (a
    # power cut may lose the last commits, not corrupt anything).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def build_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _enable_sqlite_foreign_keys)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def engine() -> Engine:
    global _engine
    if _engine is None:
        _engine = build_engine(settings.database_url())
    return _engine


def configure(url: str) -> Engine:
    """Switch to another database (tests, benchmarks); disposes the previous engine."""
    global _engine
    if _engine is not None:
        _engine.dispose()
    _engine = build_engine(url)
    return _engine


@contextmanager
def session() -> Iterator[Session]:
    # expire_on_commit=False: contexts return loaded rows that callers read after the
    # session has closed.
    with Session(engine(), expire_on_commit=False) as db:
        yield db
