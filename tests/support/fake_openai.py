"""A real OpenAI-compatible streaming server on 127.0.0.1, run in its own process, for tests.

The server speaks hand-written HTTP/1.1 over ``asyncio.start_server`` (stdlib only), so it
reproduces the wire protocol byte for byte: chunked SSE bodies, keep-alive, retry headers, and
abrupt connection closes. It runs as a child process (this file run as a script), so the app
under test and the fake never share an event loop.

Usage from a test::

    with FakeOpenAI() as fake:
        fake.script(HttpError(429, "slow down", retry_after=0.2), Stream(["Hel", "lo"]))
        client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="test")
        ...
        [first, second] = fake.requests()
        assert second.retry_count == 1

Scripted responses are consumed one per ``POST /v1/chat/completions`` request, in order; when
the queue is empty the default response (``set_default``) answers. Every request is logged with
its headers, JSON body, arrival time and how it ended (``completed``, ``client_disconnected`` or
``server_closed``), plus how many SSE events/tokens were written before that.

Control is JSON over HTTP on the same server, under ``/_control/...`` (never logged).

Protocol notes (checked against openai 3.52 / httpx2):

* SSE bodies use ``transfer-encoding: chunked`` by default, like api.openai.com, vLLM and
  Ollama. If such a connection is closed mid-body, the client raises ``openai.APIConnectionError``
  ("incomplete chunked read"). Only a close-delimited body (``framing="close"``: no length, no
  chunking, ``connection: close``) or a cleanly terminated body (``Drop(end_cleanly=True)``)
  makes the client's iteration end silently with no ``finish_reason``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Self

HOST = "127.0.0.1"
MAX_SLEEP = 120.0  # every server-side pause is clamped to this
IDLE_TIMEOUT = 120.0  # keep-alive connections idle longer than this are closed
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
PARENT_POLL = 0.5

Framing = Literal["chunked", "close"]


# --------------------------------------------------------------------------- scripted responses


@dataclass
class Stream:
    """A normal streamed completion (or a plain completion when the request has ``stream: false``).

    ``delay`` is the pause before each content token, ``first_delay`` the pause before the first
    byte of the body (after the 200 headers). ``tokens_per_second`` overrides ``delay``.
    ``usage``: ``True`` computes it, a dict is sent as is, ``False`` sends no usage chunk; the
    chunk is only sent when the request asked for ``stream_options.include_usage``.
    ``keepalive_every`` sends ``: keepalive`` comment lines during every pause.
    ``echo`` appends, after ``tokens``, the content of the request's last user message: a
    model that says which question it was asked. ``tool_calls`` is sent as one delta (with
    no content) before the finish chunk, as a model that answers with tool calls does.
    ``headers_delay`` longer than the client's read timeout is a server that accepts the
    request and never answers.
    """

    tokens: list[str]
    delay: float = 0.0
    first_delay: float = 0.0
    usage: bool | dict[str, int] = True
    finish_reason: str = "stop"
    usage_choices: Literal["empty", "null"] = "empty"
    tokens_per_second: float | None = None
    keepalive_every: float | None = None
    headers_delay: float = 0.0  # pause before the 200 status line (time to first byte)
    framing: Framing = "chunked"
    headers: dict[str, str] = field(default_factory=dict)
    echo: bool = False
    tool_calls: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.tokens_per_second:
            self.delay = 1.0 / self.tokens_per_second


@dataclass
class HttpError:
    """An error before streaming: ``status`` + ``{"error": {message, type, param, code}}``."""

    status: int
    message: str
    retry_after: float | None = None
    retry_after_ms: int | None = None
    should_retry: bool | None = None
    type: str | None = None  # default derived from the status
    code: str | None = None  # default derived from the status
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class MidStreamError:
    """Streams ``tokens_before`` then ``data: {"error": {...}}``; the body then ends cleanly."""

    tokens_before: list[str]
    message: str = "The server had an error while processing your request."
    type: str = "server_error"
    code: str | None = None
    delay: float = 0.0
    framing: Framing = "chunked"


@dataclass
class Stall:
    """Streams ``tokens_before`` then sends no byte for ``stall_for`` seconds, then closes."""

    tokens_before: list[str]
    stall_for: float
    delay: float = 0.0
    framing: Framing = "chunked"


@dataclass
class Drop:
    """Streams ``tokens_before`` then closes the TCP connection: no finish_reason, no [DONE].

    With the default chunked framing the body is left incomplete, which the openai client reports
    as ``APIConnectionError``. ``framing="close"`` (close-delimited body) or ``end_cleanly=True``
    (terminating chunk sent first) make the client's iteration end silently instead.
    """

    tokens_before: list[str]
    delay: float = 0.0
    framing: Framing = "chunked"
    end_cleanly: bool = False


Response = Stream | HttpError | MidStreamError | Stall | Drop
RESPONSE_KINDS: dict[str, type] = {
    cls.__name__: cls for cls in (Stream, HttpError, MidStreamError, Stall, Drop)
}
DEFAULT_RESPONSE = Stream(["Hello", " from", " the", " fake", " server", "."])


def response_to_json(response: Response) -> dict[str, Any]:
    if type(response).__name__ not in RESPONSE_KINDS:
        raise TypeError(f"not a scripted response: {response!r}")
    return {"kind": type(response).__name__, **asdict(response)}


def response_from_json(data: dict[str, Any]) -> Response:
    data = dict(data)
    cls = RESPONSE_KINDS[data.pop("kind")]
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


# --------------------------------------------------------------------------- request log records


@dataclass
class RequestEnd:
    outcome: Literal["completed", "client_disconnected", "server_closed"]
    events_sent: int  # SSE `data:` events written (role chunk, tokens, finish, usage, [DONE])
    tokens_sent: int  # content tokens written
    time: float  # wall clock (time.time())
    monotonic: float  # time.monotonic(): comparable across processes on one machine
    detail: str = ""


@dataclass
class RequestRecord:
    index: int
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or None
    arrived: float
    arrived_monotonic: float
    response_kind: str | None = None
    status: int | None = None
    end: RequestEnd | None = None

    @property
    def retry_count(self) -> int | None:
        value = self.headers.get("x-stainless-retry-count")
        return int(value) if value is not None else None

    @property
    def disconnected(self) -> bool:
        return self.end is not None and self.end.outcome == "client_disconnected"

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", []) if isinstance(self.body, dict) else []

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestRecord:
        data = dict(data)
        end = data.pop("end", None)
        return cls(**data, end=RequestEnd(**end) if end else None)


# --------------------------------------------------------------------------- the handle (parent)


class FakeOpenAIError(RuntimeError):
    pass


class FakeOpenAI:
    """Starts and stops the fake server process and talks to its control API."""

    def __init__(self, startup_timeout: float = 15.0) -> None:
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    # lifecycle ----------------------------------------------------------

    def start(self) -> Self:
        if self.process is not None:
            raise FakeOpenAIError("already started")
        self.process = subprocess.Popen(
            [sys.executable, "-u", str(Path(__file__).resolve()), "--parent-pid", str(os.getpid())],
            stdin=subprocess.PIPE,  # EOF on it means the parent died: the server exits
            stdout=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )
        line: list[bytes] = []
        reader = threading.Thread(
            target=lambda: line.append(self.process.stdout.readline()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(self.startup_timeout)
        text = line[0].decode().strip() if line else ""
        if not text.startswith("READY "):
            self.stop()
            raise FakeOpenAIError(f"fake OpenAI server did not start: {text!r}")
        self.port = int(text.split()[1])
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def url(self) -> str:
        if self.port is None:
            raise FakeOpenAIError("not started")
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as ``openai.AsyncOpenAI(base_url=...)``."""
        return f"{self.url}/v1"

    # control --------------------------------------------------------------

    def _control(self, path: str, payload: Any = None, timeout: float = 10.0) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            f"{self.url}/_control/{path}",
            data=data,
            method="POST" if data is not None else "GET",
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            raise FakeOpenAIError(f"{path}: {err.code} {err.read().decode()}") from err

    def script(self, *responses: Response) -> None:
        """Queues responses for the next chat-completion requests, in order."""
        self._control("script", {"responses": [response_to_json(r) for r in responses]})

    def set_default(self, response: Response) -> None:
        """The response used when the script queue is empty."""
        self._control("default", {"response": response_to_json(response)})

    def pending(self) -> int:
        """How many scripted responses are still queued."""
        return self._control("state")["pending"]

    def reset(self) -> None:
        """Clears the queue and the log, and restores the default response."""
        self._control("reset", {})

    def requests(self) -> list[RequestRecord]:
        """The log of API requests (not control requests), oldest first."""
        return [RequestRecord.from_json(r) for r in self._control("requests")["requests"]]

    def _wait(self, condition: str, timeout: float, **params: Any) -> RequestRecord | None:
        result = self._control(
            "wait", {"condition": condition, "timeout": timeout, **params}, timeout=timeout + 10
        )
        if not result["ok"]:
            raise TimeoutError(
                f"fake OpenAI: {condition} {params} not seen in {timeout} s; "
                f"log: {json.dumps(result['requests'])}"
            )
        record = result.get("request")
        return RequestRecord.from_json(record) if record else None

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RequestRecord]:
        """Waits until at least ``count`` requests have arrived."""
        self._wait("count", timeout, count=count)
        return self.requests()

    def wait_for_end(self, index: int = -1, timeout: float = 5.0) -> RequestRecord:
        """Waits until request ``index`` (negative counts from the end) has ended, any way."""
        record = self._wait("ended", timeout, index=index)
        assert record is not None
        return record

    def wait_for_disconnect(self, timeout: float = 2.0, index: int | None = None) -> RequestRecord:
        """Waits until a request (``index``, or any) ended with the client disconnecting.

        Blocks the calling thread: from async code, use ``wait_for_disconnect_async`` so the
        event loop can keep closing the client's connection meanwhile.
        """
        record = self._wait("disconnect", timeout, index=index)
        assert record is not None
        return record

    async def wait_for_disconnect_async(
        self, timeout: float = 2.0, index: int | None = None
    ) -> RequestRecord:
        return await asyncio.to_thread(self.wait_for_disconnect, timeout, index)

    async def wait_for_end_async(self, index: int = -1, timeout: float = 5.0) -> RequestRecord:
        return await asyncio.to_thread(self.wait_for_end, index, timeout)

    async def requests_async(self) -> list[RequestRecord]:
        return await asyncio.to_thread(self.requests)


# --------------------------------------------------------------------------- the server (child)


class ClientGone(Exception):
    """The client closed the connection."""


def _words(value: Any) -> int:
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(
            _words(part.get("text", "") if isinstance(part, dict) else part) for part in value
        )
    return 0


def _last_question(record: RequestRecord) -> str:
    """The content of the request's last user message ("" when there is none)."""
    users = [m for m in record.messages if isinstance(m, dict) and m.get("role") == "user"]
    content = users[-1].get("content") if users else ""
    return content if isinstance(content, str) else ""


def _reason(status: int) -> str:
    return {
        200: "OK",
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        408: "Request Timeout",
        409: "Conflict",
        411: "Length Required",
        413: "Payload Too Large",
        422: "Unprocessable Entity",
        429: "Too Many Requests",
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
        504: "Gateway Timeout",
    }.get(status, "Status")


def _error_defaults(status: int) -> tuple[str, str | None]:
    if status == 401:
        return "invalid_request_error", "invalid_api_key"
    if status == 404:
        return "invalid_request_error", "model_not_found"
    if status == 429:
        return "requests", "rate_limit_exceeded"
    if status >= 500:
        return "server_error", None
    return "invalid_request_error", None


class Connection:
    """One client TCP connection: buffered reading, EOF watching, framed writing."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer = bytearray()
        self.read_task: asyncio.Task[bytes] | None = None
        self.eof = False
        self.framing: Framing = "chunked"

    # reading ------------------------------------------------------------

    def _ensure_read(self) -> asyncio.Task[bytes]:
        if self.read_task is None:
            self.read_task = asyncio.ensure_future(self.reader.read(65536))
        return self.read_task

    def _take_read(self) -> None:
        """Moves a finished read into the buffer; EOF or reset marks the client gone."""
        task = self.read_task
        if task is None or not task.done():
            return
        self.read_task = None
        try:
            data = task.result()
        except (ConnectionError, OSError):
            data = b""
        if data:
            self.buffer += data
        else:
            self.eof = True

    async def _fill(self, timeout: float) -> bool:
        if self.eof:
            return False
        done, _ = await asyncio.wait({self._ensure_read()}, timeout=timeout)
        if not done:
            return False
        self._take_read()
        return not self.eof

    async def read_head(self) -> bytes | None:
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if len(self.buffer) > MAX_HEADER_BYTES or not await self._fill(IDLE_TIMEOUT):
                return None
        head = bytes(self.buffer[:end])
        del self.buffer[: end + 4]
        return head

    async def read_exactly(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            if not await self._fill(IDLE_TIMEOUT):
                return None
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    async def read_line(self) -> bytes | None:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > MAX_HEADER_BYTES or not await self._fill(IDLE_TIMEOUT):
                return None
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    def check_gone(self) -> None:
        """Raises ClientGone if the client closed its side (non-blocking)."""
        self._ensure_read()
        self._take_read()
        if self.eof or self.writer.is_closing():
            raise ClientGone

    async def pause(self, seconds: float, keepalive_every: float | None = None) -> None:
        """Sleeps up to ``seconds`` (clamped), returning early with ClientGone on disconnect."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(max(seconds, 0.0), MAX_SLEEP)
        keepalive = keepalive_every if keepalive_every and keepalive_every > 0 else None
        next_keepalive = loop.time() + keepalive if keepalive else math.inf
        while True:
            self.check_gone()
            now = loop.time()
            if now >= deadline:
                return
            if now >= next_keepalive:
                await self.write_body(b": keepalive\n\n")
                next_keepalive = now + keepalive  # type: ignore[operator]
                continue
            step = min(deadline, next_keepalive) - now
            await asyncio.wait({self._ensure_read()}, timeout=step)

    # writing ------------------------------------------------------------

    async def write_raw(self, data: bytes) -> None:
        if self.writer.is_closing():
            raise ClientGone
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, OSError) as err:
            raise ClientGone from err

    async def write_head(self, status: int, headers: list[tuple[str, str]]) -> None:
        lines = [f"HTTP/1.1 {status} {_reason(status)}"]
        lines += [f"{name}: {value}" for name, value in headers]
        await self.write_raw(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async def write_body(self, data: bytes) -> None:
        if self.framing == "chunked":
            data = b"%x\r\n%s\r\n" % (len(data), data)
        await self.write_raw(data)

    async def end_body(self) -> None:
        if self.framing == "chunked":
            await self.write_raw(b"0\r\n\r\n")

    async def close(self) -> None:
        if self.read_task is not None:
            self.read_task.cancel()
            self.read_task = None
        with contextlib.suppress(Exception):
            self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)


class Server:
    def __init__(self) -> None:
        self.queue: list[Response] = []
        self.default: Response = DEFAULT_RESPONSE
        self.log: list[RequestRecord] = []
        self.changed = asyncio.Condition()
        self.connections: set[asyncio.Task[None]] = set()

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    # connection loop ----------------------------------------------------

    async def handle_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.connections.add(task)
        conn = Connection(reader, writer)
        try:
            keep_open = True
            while keep_open:
                keep_open = await self.handle_request(conn)
        except ClientGone:
            pass
        except Exception as err:
            print(f"fake_openai: connection error: {err!r}", file=sys.stderr)
        finally:
            await conn.close()
            if task is not None:
                self.connections.discard(task)

    async def handle_request(self, conn: Connection) -> bool:
        head = await conn.read_head()
        if head is None:
            return False
        arrived, arrived_monotonic = time.time(), time.monotonic()
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = request_line.split(" ", 2)
        except ValueError:
            return False
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        raw = await self.read_body(conn, headers)
        if raw is None:
            return False
        path = target.split("?", 1)[0]
        conn.framing = "chunked"

        if path.startswith("/_control/"):
            return await self.handle_control(conn, method, path, raw)

        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = RequestRecord(
            index=len(self.log),
            method=method,
            path=path,
            headers=headers,
            body=body,
            arrived=arrived,
            arrived_monotonic=arrived_monotonic,
        )
        self.log.append(record)
        await self.notify()
        state = {"events": 0, "tokens": 0, "aborted": 0}
        outcome: Literal["completed", "client_disconnected", "server_closed"] = "completed"
        keep_open = True
        detail = ""
        try:
            keep_open = await self.route(conn, record, state)
            if state["aborted"]:
                outcome = "server_closed"  # Stall or Drop: the server hung up on purpose
        except ClientGone:
            outcome, keep_open = "client_disconnected", False
        except Exception as err:  # a bug in the fake: report it, close the connection
            outcome, keep_open, detail = "server_closed", False, repr(err)
            print(f"fake_openai: error handling {path}: {err!r}", file=sys.stderr)
        record.end = RequestEnd(
            outcome=outcome,
            events_sent=state["events"],
            tokens_sent=state["tokens"],
            time=time.time(),
            monotonic=time.monotonic(),
            detail=detail,
        )
        await self.notify()
        return keep_open and headers.get("connection", "").lower() != "close"

    async def read_body(self, conn: Connection, headers: dict[str, str]) -> bytes | None:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = bytearray()
            while True:
                size_line = await conn.read_line()
                if size_line is None:
                    return None
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while await conn.read_line() not in (b"", None):
                        pass  # trailers
                    return bytes(body)
                chunk = await conn.read_exactly(size + 2)
                if chunk is None or len(body) + size > MAX_BODY_BYTES:
                    return None
                body += chunk[:-2]
        length = int(headers.get("content-length", "0") or "0")
        if length > MAX_BODY_BYTES:
            return None
        return await conn.read_exactly(length) if length else b""

    # responses ----------------------------------------------------------

    async def send_json(
        self,
        conn: Connection,
        status: int,
        payload: Any,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        data = json.dumps(payload).encode()
        headers = [
            ("content-type", "application/json"),
            ("content-length", str(len(data))),
            ("x-request-id", f"req_{uuid.uuid4().hex}"),
            *(extra or []),
        ]
        await conn.write_head(status, headers)
        await conn.write_raw(data)

    async def route(self, conn: Connection, record: RequestRecord, state: dict[str, int]) -> bool:
        if record.path == "/v1/models" and record.method == "GET":
            record.status = 200
            await self.send_json(conn, 200, {"object": "list", "data": MODELS})
            return True
        if record.path != "/v1/chat/completions":
            record.status = 404
            await self.send_error(conn, HttpError(404, f"Unknown path {record.path}", code=None))
            return True
        if record.method != "POST":
            record.status = 405
            await self.send_error(conn, HttpError(405, f"Method {record.method} not allowed"))
            return True
        response = self.queue.pop(0) if self.queue else self.default
        record.response_kind = type(response).__name__
        if not record.headers.get("authorization", "").startswith("Bearer "):
            record.status = 401
            await self.send_error(conn, HttpError(401, "You didn't provide an API key."))
            return True
        if not isinstance(record.body, dict) or not isinstance(record.body.get("messages"), list):
            record.status = 400
            await self.send_error(conn, HttpError(400, "Invalid body: 'messages' is required."))
            return True
        if isinstance(response, HttpError):
            record.status = response.status
            await self.send_error(conn, response)
            return True
        if not record.body.get("stream"):
            return await self.send_plain(conn, record, response, state)
        return await self.send_stream(conn, record, response, state)

    async def send_error(self, conn: Connection, error: HttpError) -> None:
        default_type, default_code = _error_defaults(error.status)
        extra: list[tuple[str, str]] = []
        if error.retry_after is not None:
            value = error.retry_after
            extra.append(("retry-after", str(int(value)) if value == int(value) else str(value)))
        if error.retry_after_ms is not None:
            extra.append(("retry-after-ms", str(error.retry_after_ms)))
        if error.should_retry is not None:
            extra.append(("x-should-retry", "true" if error.should_retry else "false"))
        extra += list(error.headers.items())
        payload = {
            "error": {
                "message": error.message,
                "type": error.type or default_type,
                "param": None,
                "code": error.code if error.code is not None else default_code,
            }
        }
        await self.send_json(conn, error.status, payload, extra)

    async def send_plain(
        self, conn: Connection, record: RequestRecord, response: Response, state: dict[str, int]
    ) -> bool:
        """A non-streaming request: a chat.completion object, or the scripted failure."""
        if isinstance(response, Stall | Drop):
            if isinstance(response, Stall):
                await conn.pause(response.stall_for)
            state["aborted"] = 1
            return False
        if isinstance(response, MidStreamError):
            record.status = 500
            await self.send_error(conn, HttpError(500, response.message, type=response.type))
            return True
        assert isinstance(response, Stream)
        await conn.pause(response.headers_delay + response.first_delay)
        completion = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": record.model or "gpt-fake",
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "".join(response.tokens),
                        "refusal": None,
                    },
                    "logprobs": None,
                    "finish_reason": response.finish_reason,
                }
            ],
            "usage": self.usage(record, response),
        }
        record.status = 200
        await self.send_json(conn, 200, completion)
        return True

    def usage(self, record: RequestRecord, response: Stream) -> dict[str, int]:
        if isinstance(response.usage, dict):
            return response.usage
        prompt = sum(_words(m.get("content")) for m in record.messages if isinstance(m, dict))
        completion = len(response.tokens)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    async def send_stream(
        self, conn: Connection, record: RequestRecord, response: Response, state: dict[str, int]
    ) -> bool:
        assert not isinstance(response, HttpError)
        include_usage = bool((record.body.get("stream_options") or {}).get("include_usage"))
        chunk_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        model = record.model or "gpt-fake"
        keepalive = response.keepalive_every if isinstance(response, Stream) else None

        def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
            payload: dict[str, Any] = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                payload["usage"] = None
            payload.update(extra)
            return b"data: " + json.dumps(payload).encode() + b"\n\n"

        async def event(data: bytes, token: bool = False) -> None:
            await conn.write_body(data)
            state["events"] += 1
            state["tokens"] += int(token)

        if isinstance(response, Stream) and response.headers_delay:
            await conn.pause(response.headers_delay)
        conn.framing = response.framing
        headers = [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
            ("x-request-id", f"req_{uuid.uuid4().hex}"),
        ]
        if conn.framing == "chunked":
            headers.append(("transfer-encoding", "chunked"))
        else:
            headers.append(("connection", "close"))
        if isinstance(response, Stream):
            headers += list(response.headers.items())
        record.status = 200
        await conn.write_head(200, headers)

        if isinstance(response, Stream):
            await conn.pause(response.first_delay, keepalive)
            tokens = response.tokens + ([_last_question(record)] if response.echo else [])
        else:
            tokens = response.tokens_before
        delay = response.delay if not isinstance(response, HttpError) else 0.0
        await event(chunk({"role": "assistant", "content": "", "refusal": None}))
        for token in tokens:
            await conn.pause(delay, keepalive)
            await event(chunk({"content": token}), token=True)

        if isinstance(response, Stream):
            if response.tool_calls:
                await event(chunk({"content": None, "tool_calls": response.tool_calls}))
            await event(chunk({}, response.finish_reason))
            if include_usage and response.usage is not False:
                usage_choices = [] if response.usage_choices == "empty" else None
                await event(chunk(None, choices=usage_choices, usage=self.usage(record, response)))
            await event(b"data: [DONE]\n\n")
        elif isinstance(response, MidStreamError):
            error = {
                "message": response.message,
                "type": response.type,
                "param": None,
                "code": response.code,
            }
            await event(b"data: " + json.dumps({"error": error}).encode() + b"\n\n")
        elif isinstance(response, Stall):
            await conn.pause(response.stall_for)
            state["aborted"] = 1
            return False
        elif isinstance(response, Drop):
            if response.end_cleanly:
                await conn.end_body()
            state["aborted"] = 1
            return False

        if conn.framing == "close":
            return False
        await conn.end_body()
        # A client that stops reading right after [DONE] and closes still counts as completed.
        return True

    # control --------------------------------------------------------------

    async def handle_control(self, conn: Connection, method: str, path: str, raw: bytes) -> bool:
        command = path.removeprefix("/_control/")
        payload = json.loads(raw) if raw else {}
        status, result = 200, None
        if command == "script" and method == "POST":
            self.queue.extend(response_from_json(r) for r in payload["responses"])
            result = {"pending": len(self.queue)}
        elif command == "default" and method == "POST":
            self.default = response_from_json(payload["response"])
            result = {"ok": True}
        elif command == "reset" and method == "POST":
            self.queue.clear()
            self.log.clear()
            self.default = DEFAULT_RESPONSE
            result = {"ok": True}
        elif command == "state":
            result = {"pending": len(self.queue), "requests": len(self.log)}
        elif command == "requests":
            result = {"requests": [asdict(r) for r in self.log]}
        elif command == "wait" and method == "POST":
            result = await self.wait(payload)
        elif command == "health":
            result = {"ok": True, "pid": os.getpid()}
        else:
            status, result = 404, {"error": f"unknown control {method} {path}"}
        await self.send_json(conn, status, result)
        return True

    def _find(self, payload: dict[str, Any]) -> RequestRecord | None:
        condition, index = payload["condition"], payload.get("index")
        if condition == "count":
            return self.log[-1] if len(self.log) >= payload["count"] else None
        candidates = self.log
        if index is not None:
            try:
                candidates = [self.log[index]]
            except IndexError:
                return None
        for record in candidates:
            if condition == "ended" and record.end is not None:
                return record
            if condition == "disconnect" and record.disconnected:
                return record
        return None

    async def wait(self, payload: dict[str, Any]) -> dict[str, Any]:
        timeout = min(float(payload.get("timeout", 5.0)), MAX_SLEEP)

        async def until_found() -> RequestRecord:
            async with self.changed:
                while (found := self._find(payload)) is None:
                    await self.changed.wait()
                return found

        try:
            record = await asyncio.wait_for(until_found(), timeout)
        except TimeoutError:
            return {"ok": False, "requests": [asdict(r) for r in self.log]}
        return {"ok": True, "request": asdict(record)}


MODELS = [
    {"id": name, "object": "model", "created": 1700000000, "owned_by": "fake-openai"}
    for name in ("gpt-4o-mini", "gpt-4o", "gpt-fake")
]


def _watch_parent(parent_pid: int) -> None:
    """Exits the process when stdin reaches EOF or the parent is gone."""

    def on_stdin_eof() -> None:
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass
        os._exit(0)

    def poll_parent() -> None:
        while True:
            time.sleep(PARENT_POLL)
            if os.getppid() != parent_pid:
                os._exit(0)

    threading.Thread(target=on_stdin_eof, daemon=True).start()
    threading.Thread(target=poll_parent, daemon=True).start()


async def serve() -> None:
    server = Server()
    tcp = await asyncio.start_server(server.handle_connection, HOST, 0)
    port = tcp.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {port}", flush=True)
    async with tcp:
        await stop.wait()
        tcp.close()
        for task in list(server.connections):
            task.cancel()


def main(argv: list[str]) -> None:
    parent_pid = int(argv[argv.index("--parent-pid") + 1]) if "--parent-pid" in argv else None
    if parent_pid is not None:
        _watch_parent(parent_pid)
    asyncio.run(serve())
    os._exit(0)  # skip interpreter teardown: the watcher threads are still blocked


if __name__ == "__main__":
    main(sys.argv[1:])
