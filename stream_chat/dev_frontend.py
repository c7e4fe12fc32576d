"""Binds the dev frontend (`reflex run`'s react-router dev server) to loopback by default.

Reflex starts it with `react-router dev --host`, which listens on every interface and has no
setting of its own. This plugin rewrites that script at each compile to name the host:
`DEV_FRONTEND_HOST` (default 127.0.0.1; `0.0.0.0` exposes it on the network).
"""

import json
import os
from typing import Unpack

import reflex as rx
from reflex_base.plugins.base import PreCompileContext

DEV_SERVER_COMMAND = "react-router dev"


def dev_frontend_host() -> str:
    return os.environ.get("DEV_FRONTEND_HOST") or "127.0.0.1"


def _bind_dev_script(package_json: str) -> str:
    package = json.loads(package_json)
    package["scripts"]["dev"] = f"{DEV_SERVER_COMMAND} --host {dev_frontend_host()}"
    return json.dumps(package, indent=2)


class LoopbackDevFrontend(rx.plugins.Plugin):
    def pre_compile(self, **context: Unpack[PreCompileContext]) -> None:
        context["add_modify_task"]("package.json", _bind_dev_script)
