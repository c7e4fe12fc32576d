"""Configuration read from the environment, with embedded defaults that need no services.

Plain Python (no Reflex import): the contexts, the seeds and `rxconfig.py` all read it.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The folder for everything the app writes at run time (the SQLite database, uploads).

    `STREAM_CHAT_DATA_DIR`, or `data/` in the project. It is created on first use. It must
    stay outside the folders `reflex run` watches for code changes (the Makefile limits the
    watcher to the code): SQLite's `-wal`/`-shm` files there would reload the dev backend on
    every write.
    """
    folder = Path(os.environ.get("STREAM_CHAT_DATA_DIR") or PROJECT_ROOT / "data").absolute()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def database_url() -> str:
    # An absolute SQLite path so that the app, the seeds and the migrations agree whatever
    # directory they are started from.
    return os.environ.get("DATABASE_URL") or f"sqlite:///{data_dir() / 'stream_chat.db'}"


def redis_url() -> str | None:
    return os.environ.get("REFLEX_REDIS_URL") or None


def test_pages_enabled() -> bool:
    """The test suite's own pages (/_stream_lab) are mounted only when asked for."""
    return os.environ.get("STREAM_CHAT_TEST_PAGES") == "1"


# Where `reflex run` serves the pages and the backend unless told otherwise.
DEFAULT_FRONTEND_PORT, DEFAULT_BACKEND_PORT = "3000", "8000"


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL (a path or a trailing slash would never match a
    browser's Origin header); anything else, such as "*", as it is."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url.strip()


def allowed_origins() -> tuple[str, ...]:
    """The origins whose pages may open the websocket, and read HTTP responses with
    credentials: exactly those in ALLOWED_ORIGINS (comma-separated) when it is set, else the
    app's own. Those are the frontend's and the backend's ports on localhost and 127.0.0.1
    (`reflex run` passes its ports to the backend as REFLEX_FRONTEND_PORT and
    REFLEX_BACKEND_PORT) and the origins of REFLEX_DEPLOY_URL and REFLEX_API_URL."""
    configured = os.environ.get("ALLOWED_ORIGINS", "").strip()
    if configured:
        return tuple(_origin(entry) for entry in configured.split(",") if entry.strip())
    ports = (
        os.environ.get("REFLEX_FRONTEND_PORT") or DEFAULT_FRONTEND_PORT,
        os.environ.get("REFLEX_BACKEND_PORT") or DEFAULT_BACKEND_PORT,
    )
    own = [f"http://{host}:{port}" for port in ports for host in ("localhost", "127.0.0.1")]
    own += [
        _origin(url)
        for name in ("REFLEX_DEPLOY_URL", "REFLEX_API_URL")
        if (url := os.environ.get(name))
    ]
    return tuple(dict.fromkeys(own))
