"""Reflex configuration. Every setting has an embedded default: SQLite, no Redis, no LLM.

REFLEX_REDIS_URL (read by Reflex itself) switches state and pub/sub to Redis. Only the app's
own origins may open the websocket or read responses with credentials (Reflex would allow
any); ALLOWED_ORIGINS lists others, see `settings.allowed_origins`. The backend and the dev
frontend listen on loopback only unless REFLEX_BACKEND_HOST / DEV_FRONTEND_HOST say otherwise.
"""

import reflex as rx

from stream_chat import settings
from stream_chat.dev_frontend import LoopbackDevFrontend

config = rx.Config(
    app_name="stream_chat",
    db_url=settings.database_url(),
    backend_host="127.0.0.1",
    cors_allowed_origins=settings.allowed_origins(),
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[
        rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", radius="medium")),
        LoopbackDevFrontend(),
    ],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
