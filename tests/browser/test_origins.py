"""Only the app's own origins may open the websocket or read responses with credentials.

Reflex's default (`cors_allowed_origins=("*",)`) let any page open the websocket, and the
HTTP responses echoed any `Origin` with `Access-Control-Allow-Credentials: true`. Checked
against the production app the browser tests use (served on 127.0.0.1:<port>).
"""

import http.client
from urllib.parse import urlsplit

import pytest

from tests.support.servers import AppServer

pytestmark = pytest.mark.browser

FOREIGN = "http://evil.example"


def request(server: AppServer, path: str, origin: str, **headers: str) -> http.client.HTTPResponse:
    url = urlsplit(server.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    connection.request("GET", path, headers={"Origin": origin, **headers})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def websocket_handshake(server: AppServer, origin: str) -> int:
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    path = "/_event/?EIO=4&transport=websocket&token=origin-test"
    return request(server, path, origin, **upgrade).status


def test_the_websocket_refuses_a_foreign_origin(app_server: AppServer) -> None:
    own = f"http://{urlsplit(app_server.base_url).netloc}"
    assert websocket_handshake(app_server, own) == 101
    assert websocket_handshake(app_server, FOREIGN) == 403
    assert websocket_handshake(app_server, own.replace("127.0.0.1", "localhost")) == 101


def test_http_responses_do_not_share_credentials_with_a_foreign_origin(
    app_server: AppServer,
) -> None:
    own = f"http://{urlsplit(app_server.base_url).netloc}"
    mine = request(app_server, "/ping", own)
    assert mine.getheader("Access-Control-Allow-Origin") == own
    assert mine.getheader("Access-Control-Allow-Credentials") == "true"
    theirs = request(app_server, "/ping", FOREIGN)
    assert theirs.getheader("Access-Control-Allow-Origin") is None
