"""A static web server with the SPA fallback a static deploy needs (nginx's
`try_files $uri $uri/ /__spa-fallback.html`), on loopback, for the static-deploy test.

Run as a script: `python -m tests.support.static_site ROOT PORT`.
"""

import sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO

FALLBACK = "/__spa-fallback.html"


class FallbackHandler(SimpleHTTPRequestHandler):
    def send_head(self) -> BinaryIO | None:
        target = Path(self.translate_path(self.path))
        if not (target.is_file() or (target / "index.html").is_file()):
            self.path = FALLBACK
        return super().send_head()


def serve(root: Path, port: int) -> None:
    handler = partial(FallbackHandler, directory=str(root))
    with ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]))
