"""A browser stand-in for Reflex 0.10.1: speaks the frontend's socket.io protocol, renders nothing.

Benchmarks connect hundreds of these to a running app from one process; tests use them to
see which clients receive which deltas. Each client is one TCP connection, one `wsproto`
state machine and one asyncio task (its read loop): no threads, no HTTP session. (The
python-socketio `AsyncClient` would need aiohttp, which the project does not install; the
Socket.IO packets are still encoded and decoded by python-socketio's own `Packet`.)

The wire protocol, as `reflex_base/.templates/web/utils/state.js` (browser) and
`reflex/app.py` (`EventNamespace`, server) implement it:

- One websocket per tab: `ws://host:port/_event/?token=<tab token>&EIO=4&transport=websocket`
  (Engine.IO path `/_event`, transport websocket only, no polling, no upgrade), socket.io
  namespace `/_event`. The token is a UUID the tab keeps in sessionStorage; the server links
  it to the socket, and answers `new_token` if another socket already holds it (a duplicated
  tab), which the tab adopts. The browser offers the Reflex version as the websocket
  subprotocol (the server only logs a mismatch).
- The boot event rides in the socket.io CONNECT packet's auth: `{"event": <hydrate event>,
  "state_schema": <compiled state schema hash>}`. The server answers `state_mismatch` when
  the schema is not its own (a browser reloads), enqueues the event, then acks the CONNECT.
- An event is `{"name": "<state full name>.<handler>", "payload": {...}, "router_data":
  {"pathname": "/rooms/2", "asPath": "/rooms/2?x=1", "query": {"x": "1", "room_id": "2"}}}`
  (`payload` left out when empty). `query` merges the URL's search params with the route's
  dynamic params (`useParams`): Reflex reads `room_id` from it. The server adds the headers,
  client IP, sid and token itself. Both directions use the socket.io event name `event`.
- The boot event is `reflex___state____state.hydrate_and_load` with payload
  `{"vars": {<cookie var's full state key>: <cookie value>}, "hashes": initialStateHashes}`:
  cookies reach the state as client-storage vars, not through the Cookie header. `hashes`
  (first connect only) lets the server leave out vars still at their compiled defaults. The
  page's on_load handlers then run server side, ending with `is_hydrated = True`.
- The server emits `event` with `{"delta": {<state full name>: {<var>_rx_state_: value}},
  "events": [...]}`; `events` are frontend events, e.g. `{"name": "_redirect", "payload":
  {"path": "/login?next=/rooms/2", "external": false, "replace": true, ...}}`.

The compiled frontend (`.web/utils/context.jsx`) supplies what the browser bundle knows:
the initial state and its hashes, the state schema and the cookie names of `rx.Cookie`
vars; the route patterns come from the compiled page files (`.web/app/routes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, urlsplit

from socketio import packet as sio_packet
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.utilities import LocalProtocolError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WEB_DIR = PROJECT_ROOT / ".web"

EVENT_ENDPOINT = "/_event"  # both the Engine.IO path and the socket.io namespace
ROOT_STATE = "reflex___state____state"
HYDRATE_EVENT = f"{ROOT_STATE}.hydrate_and_load"
UPDATE_VARS_EVENT = (
    f"{ROOT_STATE}.reflex___state____update_vars_internal_state.update_vars_internal"
)
ON_LOAD_INTERNAL_EVENT = f"{ROOT_STATE}.reflex___state____on_load_internal_state.on_load_internal"
FIELD_MARKER = "_rx_state_"  # Reflex appends it to every var name in deltas
IS_HYDRATED = f"is_hydrated{FIELD_MARKER}"
STREAM_BATCHES = f"stream_batches{FIELD_MARKER}"
REDIRECT = "_redirect"
USER_AGENT = "StreamChat-ReflexClient/1 (wsproto)"
READ_SIZE = 65536

# Engine.IO v4 packet types (text), the first character of each websocket message.
EIO_OPEN, EIO_CLOSE, EIO_PING, EIO_PONG, EIO_MESSAGE = "0", "1", "2", "3", "4"


class Update(NamedTuple):
    """One `event` message from the server, as `(time, delta, events)`."""

    time: float  # time.monotonic() when its bytes were read
    delta: dict[str, dict[str, Any]]
    events: list[dict[str, Any]]


# What the compiled frontend knows


@dataclass(frozen=True)
class Frontend:
    """What the compiled browser bundle sends and starts from; `Frontend()` knows nothing.

    Without it a client still works: no `hashes` (the server sends the full state, as on a
    reconnect), no `state_schema`, cookies only by full state key, no route params.
    """

    initial_state: Mapping[str, Mapping[str, Any]] | None = None
    initial_state_hashes: Sequence[str] | None = None
    state_schema: str | None = None
    cookie_vars: Mapping[str, str] | None = None  # cookie name -> var's full state key
    routes: Sequence[str] = ()  # React Router patterns: "/rooms/:room_id", "/files/*"
    reflex_version: str | None = None

    @classmethod
    def load(cls, web_dir: Path = WEB_DIR) -> Frontend:
        """Reads `web_dir`'s last compile; cached until `context.jsx` changes."""
        context = web_dir / "utils" / "context.jsx"
        try:
            mtime = context.stat().st_mtime_ns
        except FileNotFoundError:
            return cls(routes=_routes_from_pages(web_dir))
        return _load_frontend(web_dir, mtime)


def _const(source: str, name: str) -> Any:
    match = re.search(rf"^export const {name} = (.*)$", source, re.MULTILINE)
    return json.loads(match.group(1)) if match else None


@functools.lru_cache(maxsize=4)
def _load_frontend(web_dir: Path, _mtime: int) -> Frontend:
    source = (web_dir / "utils" / "context.jsx").read_text()
    storage = _const(source, "clientStorage") or {}
    cookie_vars = {
        (options.get("name") or state_key): state_key
        for state_key, options in (storage.get("cookies") or {}).items()
    }
    try:
        version = json.loads((web_dir / "reflex.json").read_text()).get("version")
    except (FileNotFoundError, ValueError):
        version = None
    return Frontend(
        initial_state=_const(source, "initialState"),
        initial_state_hashes=_const(source, "initialStateHashes"),
        state_schema=_const(source, "stateSchema"),
        cookie_vars=cookie_vars,
        routes=_routes_from_pages(web_dir),
        reflex_version=version,
    )


def _split_route_stem(stem: str) -> list[str]:
    """`[rooms].$[room_id]` -> `["[rooms]", "$[room_id]"]`: dots inside brackets stay."""
    parts, current, depth = [], "", 0
    for char in stem:
        if char == "." and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += {"[": 1, "]": -1}.get(char, 0)
        current += char
    parts.append(current)
    return parts


def route_from_page_file(stem: str) -> str | None:
    """A page file's stem, as Reflex names them for React Router's flat routes -> pattern.

    `[rooms].$[room_id]._index` -> `/rooms/:room_id`; the 404 page gives None.
    """
    if stem == "_index":
        return "/"
    segments = []
    for part in _split_route_stem(stem.removesuffix("._index")):
        if part == "$":
            segments.append("*")
        elif part.startswith("($[") and part.endswith("])"):
            segments.append(f":{part[3:-2]}?")
        elif part.startswith("$[") and part.endswith("]"):
            segments.append(f":{part[2:-1]}")
        else:
            segments.append(part.replace("[", "").replace("]", ""))
    if segments == ["404"]:
        return None
    return "/" + "/".join(segments)


def _routes_from_pages(web_dir: Path) -> tuple[str, ...]:
    pages = web_dir / "app" / "routes"
    if not pages.is_dir():
        return ()
    routes = (route_from_page_file(page.name.removesuffix(".jsx")) for page in pages.glob("*.jsx"))
    return tuple(sorted({route for route in routes if route}))


def match_route(routes: Iterable[str], pathname: str) -> dict[str, Any] | None:
    """The dynamic params `useParams` gives for `pathname` (React Router's ranking, simplified:
    more static segments win, then more dynamic ones). A splat comes back as
    `{"splat": [segments]}`, as the browser's event loop sends it."""
    path_parts = [part for part in pathname.split("/") if part]
    best: tuple[tuple[int, int], dict[str, Any]] | None = None
    for route in routes:
        route_parts = [part for part in route.split("/") if part]
        params: dict[str, Any] = {}
        static = dynamic = 0
        matched = len(path_parts) <= len(route_parts) or "*" in route_parts
        for index, part in enumerate(route_parts):
            if not matched:
                break
            if part == "*":
                params["splat"] = path_parts[index:]
                break
            if index >= len(path_parts):
                matched = part.startswith(":") and part.endswith("?")
            elif part.startswith(":"):
                params[part[1:].removesuffix("?")] = path_parts[index]
                dynamic += 1
            elif part == path_parts[index]:
                static += 1
            else:
                matched = False
        if matched and (best is None or (static, dynamic) > best[0]):
            best = ((static, dynamic), params)
    return best[1] if best else None


def var_key(var: str) -> str:
    return var if var.endswith(FIELD_MARKER) else var + FIELD_MARKER


def handler_name(handler: Any) -> str:
    """`"<state full name>.<handler>"` as is, or a Reflex `EventHandler` named as compiled."""
    if isinstance(handler, str):
        return handler
    from reflex_base.utils.format import format_event_handler

    return format_event_handler(handler)


class ReflexClient:
    """One browser tab: connects, hydrates a page, sends events and records every update.

    `updates` holds every `event` message as `Update(time, delta, events)`; `state` is the
    merged store the browser's reducers would hold (compiled initial state + deltas);
    `events` the frontend events received, as `(time, event)`, recorded, not executed
    (except `_redirect` with `follow_redirects=True`, which navigates like the browser).
    """

    _MISSING: Any = object()

    def __init__(
        self,
        *,
        frontend: Frontend | None = None,
        follow_redirects: bool = False,
        compression: bool = True,
        token: str | None = None,
    ) -> None:
        self.frontend = Frontend.load() if frontend is None else frontend
        self.token = token or str(uuid.uuid4())
        self.follow_redirects = follow_redirects
        self.compression = compression  # offer permessage-deflate, as browsers do
        self.updates: list[Update] = []
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.state: dict[str, dict[str, Any]] = {
            name: dict(values) for name, values in (self.frontend.initial_state or {}).items()
        }
        self.cookies: dict[str, str] = {}
        self.base_url = ""
        self.path = "/"
        self.sid: str | None = None  # the socket.io session id in the namespace
        self.connected_at: float | None = None
        self.hydrated_at: float | None = None
        self.state_mismatch: dict[str, Any] | None = None
        self.disconnected = False
        self.disconnect_reason: str | None = None
        self.navigation_errors: list[BaseException] = []  # redirects followed that failed
        self._ws: WSConnection | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._namespace_connected: asyncio.Future[None] | None = None
        self._message_parts: list[str] = []
        self._waiters: list[tuple[Callable[[ReflexClient], bool], asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    # Connecting and closing

    async def connect(
        self,
        base_url: str,
        path: str = "/",
        cookies: Mapping[str, str] | None = None,
        *,
        timeout: float = 30.0,
    ) -> None:
        """Opens the tab's socket with `path`'s boot event; returns once the server acked it.

        `cookies` are browser cookies by name (`{"stream_chat_session": token}`): those that
        back `rx.Cookie` vars go into the hydrate event as client-storage vars, and all of
        them into the handshake's Cookie header, as a same-origin page sends them. The ack
        comes once the hydrate is enqueued; `wait_hydrated()` waits for the page's on_load.
        """
        if self._ws is not None:
            raise RuntimeError("ReflexClient.connect called twice")
        self.base_url = base_url.rstrip("/")
        self.path = path
        self.cookies = dict(cookies or {})
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._namespace_connected = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._open()
                await self._namespace_connected
        except BaseException:
            await self._abort()
            raise
        self.connected_at = time.monotonic()

    async def _open(self) -> None:
        url = urlsplit(self.base_url)
        secure = url.scheme in ("https", "wss")
        host = url.hostname or "127.0.0.1"
        port = url.port or (443 if secure else 80)
        reader, self._writer = await asyncio.open_connection(host, port, ssl=secure or None)
        headers = [("Origin", f"{'https' if secure else 'http'}://{url.netloc}")]
        headers.append(("User-Agent", USER_AGENT))
        if self.cookies:
            jar: SimpleCookie = SimpleCookie()
            for name, value in self.cookies.items():
                jar[name] = value
            cookie = "; ".join(f"{morsel.key}={morsel.coded_value}" for morsel in jar.values())
            headers.append(("Cookie", cookie))
        target = f"{EVENT_ENDPOINT}/?token={quote(self.token)}&EIO=4&transport=websocket"
        request = Request(
            host=url.netloc,
            target=target,
            extra_headers=headers,
            subprotocols=[self.frontend.reflex_version] if self.frontend.reflex_version else [],
            extensions=[PerMessageDeflate()] if self.compression else [],
        )
        self._writer.write(self._ws.send(request))  # type: ignore[union-attr]
        self._read_task = asyncio.get_running_loop().create_task(self._read_loop(reader))

    async def close(self) -> None:
        """Disconnects like `socket.disconnect()`: the namespace, then the websocket."""
        for task in list(self._tasks):
            task.cancel()
        if not self.disconnected and self._namespace_connected is not None:
            with contextlib.suppress(ConnectionError, LocalProtocolError):
                disconnect = sio_packet.Packet(sio_packet.DISCONNECT, namespace=EVENT_ENDPOINT)
                self._send_socketio(disconnect)
                self._send_frame(CloseConnection(code=1000))
                if self._writer is not None:
                    await self._writer.drain()
        self._set_disconnected("io client disconnect")
        await self._abort()

    async def _abort(self) -> None:
        if self._read_task is not None and not self._read_task.done():
            self._read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._read_task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()

    async def __aenter__(self) -> ReflexClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # The wire: websocket frames, Engine.IO and Socket.IO packets

    def _send_frame(self, event: Any) -> None:
        if self._writer is None or self._ws is None or self._writer.is_closing():
            raise ConnectionError("the client is not connected")
        self._writer.write(self._ws.send(event))

    def _send_socketio(self, pkt: sio_packet.Packet) -> None:
        self._send_frame(TextMessage(data=EIO_MESSAGE + pkt.encode()))

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        reason = "transport close"
        try:
            while (data := await reader.read(READ_SIZE)) and self._handle_bytes(
                data, time.monotonic()
            ):
                pass
            if self._ws is not None and self._ws.state is ConnectionState.CLOSED:
                reason = "io server disconnect"
        except (ConnectionError, OSError, LocalProtocolError) as error:
            reason = f"transport error: {error!r}"
        except Exception as error:  # a bug here must end the client, not hang its waiters
            reason = f"client error: {error!r}"
        finally:
            self._set_disconnected(reason)

    def _handle_bytes(self, data: bytes, now: float) -> bool:
        """Feeds the websocket; False once the connection is over."""
        assert self._ws is not None
        self._ws.receive_data(data)
        for event in self._ws.events():
            if isinstance(event, TextMessage):
                self._message_parts.append(event.data)
                if event.message_finished:
                    message = "".join(self._message_parts)
                    self._message_parts.clear()
                    self._handle_engineio(message, now)
            elif isinstance(event, Ping):
                self._send_frame(event.response())
            elif isinstance(event, AcceptConnection):
                pass  # the server's Engine.IO OPEN packet follows
            elif isinstance(event, RejectConnection):
                self._fail_connect(ConnectionError(f"websocket refused: {event.status_code}"))
                return False
            elif isinstance(event, CloseConnection):
                with contextlib.suppress(LocalProtocolError):
                    self._send_frame(event.response())
                return False
        return True

    def _handle_engineio(self, message: str, now: float) -> None:
        kind, body = message[:1], message[1:]
        if kind == EIO_MESSAGE:
            self._handle_socketio(sio_packet.Packet(encoded_packet=body), now)
        elif kind == EIO_PING:
            self._send_frame(TextMessage(data=EIO_PONG + body))
        elif kind == EIO_OPEN:
            # Socket.IO v5 CONNECT with the auth payload: the hydrate rides in it.
            auth: dict[str, Any] = {"event": self._boot_event(first=True)}
            if self.frontend.state_schema is not None:
                auth["state_schema"] = self.frontend.state_schema
            self._send_socketio(
                sio_packet.Packet(sio_packet.CONNECT, data=auth, namespace=EVENT_ENDPOINT)
            )
        elif kind == EIO_CLOSE:
            self._send_frame(CloseConnection(code=1000))

    def _handle_socketio(self, pkt: sio_packet.Packet, now: float) -> None:
        if pkt.namespace != EVENT_ENDPOINT:
            return
        if pkt.packet_type == sio_packet.EVENT and isinstance(pkt.data, list) and pkt.data:
            name, *args = pkt.data
            if name == "event" and args and isinstance(args[0], dict):
                self._on_update(args[0], now)
            elif name == "new_token" and args:
                self.token = str(args[0])
            elif name == "state_mismatch" and args:
                self.state_mismatch = args[0]
                self._wake_waiters()
        elif pkt.packet_type == sio_packet.CONNECT:
            self.sid = (pkt.data or {}).get("sid")
            if self._namespace_connected is not None and not self._namespace_connected.done():
                self._namespace_connected.set_result(None)
        elif pkt.packet_type == sio_packet.CONNECT_ERROR:
            self._fail_connect(ConnectionError(f"socket.io connect refused: {pkt.data!r}"))
        elif pkt.packet_type == sio_packet.DISCONNECT:
            self._set_disconnected("io server disconnect")

    def _fail_connect(self, error: Exception) -> None:
        if self._namespace_connected is not None and not self._namespace_connected.done():
            self._namespace_connected.set_exception(error)

    def _set_disconnected(self, reason: str) -> None:
        if self.disconnected:
            return
        self.disconnected = True
        self.disconnect_reason = reason
        self._fail_connect(ConnectionError(f"disconnected before connecting: {reason}"))
        self._wake_waiters()
        error = ConnectionError(f"disconnected: {reason}")
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(error)

    # Sending

    def router_data(self, path: str | None = None) -> dict[str, Any]:
        """`withRouterData`: pathname, asPath and query (search params + route params)."""
        url = urlsplit(path or self.path)
        pathname = url.path or "/"
        as_path = pathname + (f"?{url.query}" if url.query else "")
        as_path += f"#{url.fragment}" if url.fragment else ""
        data: dict[str, Any] = {"pathname": pathname, "asPath": as_path}
        query: dict[str, Any] = dict(parse_qsl(url.query, keep_blank_values=True))
        query.update(match_route(self.frontend.routes, pathname) or {})
        if query:
            data["query"] = query
        return data

    def _client_storage_vars(self) -> dict[str, str]:
        known = self.frontend.cookie_vars or {}
        storage = {}
        for name, value in self.cookies.items():
            if name in known:
                storage[known[name]] = value
            elif "." in name and name.endswith(FIELD_MARKER):
                storage[name] = value  # already a var's full state key
        return storage

    def _boot_event(self, first: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        if storage := self._client_storage_vars():
            payload["vars"] = storage
        if first and self.frontend.initial_state_hashes is not None:
            payload["hashes"] = list(self.frontend.initial_state_hashes)
        return self.event(HYDRATE_EVENT, payload)

    def event(self, handler: Any, payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The event a browser on the current path would send (`ReflexEvent` + router data)."""
        event: dict[str, Any] = {"name": handler_name(handler)}
        if payload:
            event["payload"] = dict(payload)
        event["router_data"] = self.router_data()
        return event

    async def send_event(self, handler: Any, payload: Mapping[str, Any] | None = None) -> float:
        """Emits an event like a browser tab on the current path; returns the send time.

        `handler` is `"<state full name>.<handler name>"` or a Reflex `EventHandler`.
        """
        if self.disconnected or self.sid is None:
            raise ConnectionError("the client is not connected")
        sent_at = time.monotonic()
        self._send_socketio(
            sio_packet.Packet(
                sio_packet.EVENT,
                data=["event", self.event(handler, payload)],
                namespace=EVENT_ENDPOINT,
                binary=False,
            )
        )
        assert self._writer is not None
        await self._writer.drain()
        return sent_at

    async def navigate(self, path: str) -> float:
        """A client-side navigation (`onLoadInternalEvent`): cookies as vars, then on_load."""
        self.path = path
        self.hydrated_at = None
        self.state.setdefault(ROOT_STATE, {})[IS_HYDRATED] = False
        sent_at = time.monotonic()
        if storage := self._client_storage_vars():
            await self.send_event(UPDATE_VARS_EVENT, {"vars": storage})
        await self.send_event(ON_LOAD_INTERNAL_EVENT)
        return sent_at

    # Receiving

    def _on_update(self, update: Mapping[str, Any], now: float) -> None:
        received = Update(now, update.get("delta") or {}, list(update.get("events") or []))
        self.updates.append(received)
        # As applyClientStorageDelta: a delta that says "not hydrated" writes no cookies.
        writes_storage = received.delta.get(ROOT_STATE, {}).get(IS_HYDRATED, True)
        for state_name, values in received.delta.items():
            self.state.setdefault(state_name, {}).update(values)
            if writes_storage:
                self._store_cookies(state_name, values)
        if self.hydrated_at is None and self.hydrated:
            self.hydrated_at = now
        for event in received.events:
            self.events.append((now, event))
            if self.follow_redirects and event.get("name") == REDIRECT:
                self._follow(event.get("payload") or {})
        self._wake_waiters()

    def _store_cookies(self, state_name: str, values: Mapping[str, Any]) -> None:
        """The server writes `rx.Cookie` vars into the browser's cookies."""
        for name, state_key in (self.frontend.cookie_vars or {}).items():
            owner, _, var = state_key.rpartition(".")
            if owner == state_name and var in values:
                self.cookies[name] = str(values[var])

    def _follow(self, payload: Mapping[str, Any]) -> None:
        path = payload.get("path")
        if not path or payload.get("external"):
            return
        url = urlsplit(path)
        if url.scheme:
            if f"{url.scheme}://{url.netloc}" != self.base_url:
                return
            path = url.path + (f"?{url.query}" if url.query else "")
        task = asyncio.get_running_loop().create_task(self.navigate(path))
        self._tasks.add(task)
        task.add_done_callback(self._navigation_done)

    def _navigation_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self.navigation_errors.append(error)

    # Waiting and reading

    @property
    def hydrated(self) -> bool:
        return self.state.get(ROOT_STATE, {}).get(IS_HYDRATED) is True

    async def wait_for(
        self, predicate: Callable[[ReflexClient], bool], timeout: float = 10.0
    ) -> Update | None:
        """Waits until `predicate(client)` holds (checked on each update); returns the last one."""
        if predicate(self):
            return self.updates[-1] if self.updates else None
        if self.disconnected:
            raise ConnectionError(f"disconnected: {self.disconnect_reason}")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            last = repr(self.updates[-1]) if self.updates else "none"
            raise TimeoutError(
                f"not true within {timeout} s on {self.path} after {len(self.updates)} "
                f"updates; the last: {last[:2000]}"
            ) from None
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)

    async def wait_hydrated(self, timeout: float = 10.0) -> Update | None:
        return await self.wait_for(lambda client: client.hydrated, timeout)

    def _wake_waiters(self) -> None:
        last = self.updates[-1] if self.updates else None
        for predicate, future in self._waiters:
            if future.done():
                continue
            try:
                if predicate(self):
                    future.set_result(last)
            except Exception as error:
                future.set_exception(error)

    def state_value(self, state_full_name: str, var: str, default: Any = _MISSING) -> Any:
        """The var's current value; `var` with or without Reflex's `_rx_state_` suffix."""
        try:
            return self.state[state_full_name][var_key(var)]
        except KeyError:
            if default is self._MISSING:
                raise KeyError(f"{state_full_name}: {var_key(var)} never received") from None
            return default

    def deltas_for(self, state_full_name: str) -> list[tuple[float, dict[str, Any]]]:
        """Every part of a delta this client received for one state, with its arrival time."""
        return [
            (update.time, update.delta[state_full_name])
            for update in self.updates
            if state_full_name in update.delta
        ]

    def stream_batches(self, state_full_name: str, stream: str | None = None) -> list[Any]:
        """Every non-empty `stream_batches_rx_state_` value received for the state, in order.

        Without `stream`: the values as sent (`{stream name: Batch}`); with it: that stream's
        `Batch` dicts (`{"seq", "epoch", "ops"}`).
        """
        batches: list[Any] = []
        for _, values in self.deltas_for(state_full_name):
            value = values.get(STREAM_BATCHES)
            if not value:
                continue
            if stream is None:
                batches.append(value)
            elif stream in value:
                batches.append(value[stream])
        return batches

    def redirects(self) -> list[str]:
        """The paths of the `_redirect` events received, in order."""
        return [
            (event.get("payload") or {}).get("path", "")
            for _, event in self.events
            if event.get("name") == REDIRECT
        ]


async def connect_many(
    base_url: str,
    path: str,
    cookies: Sequence[Mapping[str, str] | None],
    *,
    frontend: Frontend | None = None,
    concurrency: int | None = None,
    hydrate_timeout: float | None = 30.0,
    **client_options: Any,
) -> list[ReflexClient]:
    """One connected (and, unless `hydrate_timeout` is None, hydrated) client per cookie jar.

    At most `concurrency` handshakes at a time (all at once by default). On any failure
    every client is closed again and the first error raised.
    """
    frontend = Frontend.load() if frontend is None else frontend
    gate = asyncio.Semaphore(concurrency or len(cookies) or 1)
    clients = [ReflexClient(frontend=frontend, **client_options) for _ in cookies]

    async def open_one(client: ReflexClient, jar: Mapping[str, str] | None) -> None:
        async with gate:
            await client.connect(base_url, path, jar)
        if hydrate_timeout is not None:
            await client.wait_hydrated(hydrate_timeout)

    results = await asyncio.gather(
        *(open_one(client, jar) for client, jar in zip(clients, cookies, strict=True)),
        return_exceptions=True,
    )
    errors = [result for result in results if isinstance(result, BaseException)]
    if errors:
        await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)
        raise errors[0]
    return clients
