"""Configuration read from the environment, with embedded defaults that need no services.

Plain Python (no Reflex import): the contexts, the seeds and `rxconfig.py` all read it.
"""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# An absolute SQLite path so that the app, the seeds and the migrations agree whatever
# directory they are started from.
DEFAULT_DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'stream_chat.db'}"


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def redis_url() -> str | None:
    return os.environ.get("REFLEX_REDIS_URL") or None


def test_pages_enabled() -> bool:
    """The test suite's own pages (/_stream_lab) are mounted only when asked for."""
    return os.environ.get("STREAM_CHAT_TEST_PAGES") == "1"
