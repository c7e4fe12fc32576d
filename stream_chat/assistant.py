"""The Assistant context: replies to `@assistant`, streamed from any OpenAI-compatible server.

Plain Python, no Reflex. A page asks for a reply with `request_reply`, then runs
`generate(reply_id)` in a background event. Every member sees the reply through the room's
broadcasts: a queued row, then "thinking", then the text growing, then the final row.

* One generation per room at a time: later requests wait their turn, shown as queued.
* Each attempt has a generation id. Only the current attempt may write to the reply, and
  members drop text from any other (a stopped or replaced attempt's late chunks).
* Text is coalesced: the first text goes at once; then an update leaves when
  `flush_min_chars` of new text have gathered (but never sooner than `flush_interval` after
  the previous one), or when the oldest unsent text is `flush_max_delay` old. Each update
  carries only the new text. Every update pays ~190 bytes of websocket envelope and a
  re-render of the reply in each browser, so a fast model's text goes in a few lines at a
  time, and a slow model's within 0.1 s.
* Stop cancels the HTTP stream itself, from any worker, before or after the first token.
* Each reply answers its own question: the prompt ends at the message that asked
  (`question_id`), whenever the reply runs and however often it is retried.
* Faults: the `openai` client retries connection failures, 408, 409, 429 and 5xx before the
  stream starts (honouring Retry-After), not a server that stays silent; a stream that
  errors, stalls past the idle timeout or ends without a `finish_reason` keeps its partial
  text, marked "error" or "interrupted", with a retry. Model text is cleaned of NUL and lone
  surrogates chunk by chunk.
* A reply whose worker died (no heartbeat) is marked interrupted by a sweep that every
  worker runs, that a room's page runs on opening, and that the next request runs.
"""

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import httpx2
import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from stream_chat import accounts, chat
from stream_chat.models import Message, utcnow
from stream_chat.text import clean_text

log = logging.getLogger(__name__)

DEFAULT_SYSTEM_PROMPT = (
    "You are the assistant in a team chat room. Messages from people are prefixed with "
    "their name. Answer the latest request helpfully and concisely, in markdown."
)
HOW_TO_ENABLE = (
    "The assistant is off: set OPENAI_API_KEY, or OPENAI_BASE_URL for Ollama, vLLM or "
    "llama.cpp, and restart."
)
# A reply untouched for this long belongs to a worker that died: it is marked interrupted.
# Live workers touch their replies three times as often, from the moment they wait for
# their turn until the reply ends, the wait for the model's first byte included.
ABANDONED_AFTER_IDLE = timedelta(seconds=15)
# How often every backend worker looks for such replies, in every room.
SWEEP_INTERVAL = timedelta(seconds=5)
WORKER_WENT_AWAY = "The worker writing this reply went away."


def _heartbeat_seconds() -> float:
    return min(5.0, ABANDONED_AFTER_IDLE.total_seconds() / 3)


@dataclass(frozen=True)
class AssistantConfig:
    api_key: str | None = None
    base_url: str | None = None
    model: str = "gpt-4o-mini"
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    prompt_token_budget: int = 3000
    history_messages: int = 40
    idle_timeout: float = 30.0
    max_retries: int = 2
    requests_per_minute: int = 5
    flush_interval: float = 0.05
    flush_min_chars: int = 320
    flush_max_delay: float = 0.1
    price_per_million_prompt: float | None = None
    price_per_million_completion: float | None = None

    @property
    def available(self) -> bool:
        return bool(self.api_key or self.base_url)

    @classmethod
    def from_env(cls) -> "AssistantConfig":
        env = os.environ

        def number(name: str, default: float | None) -> float | None:
            raw = env.get(name)
            return float(raw) if raw else default

        return cls(
            api_key=env.get("OPENAI_API_KEY") or None,
            base_url=env.get("OPENAI_BASE_URL") or None,
            model=env.get("ASSISTANT_MODEL") or cls.model,
            system_prompt=env.get("ASSISTANT_SYSTEM_PROMPT") or DEFAULT_SYSTEM_PROMPT,
            prompt_token_budget=int(number("ASSISTANT_PROMPT_TOKENS", cls.prompt_token_budget)),
            idle_timeout=number("ASSISTANT_IDLE_TIMEOUT", cls.idle_timeout),  # type: ignore[arg-type]
            max_retries=int(number("ASSISTANT_MAX_RETRIES", cls.max_retries)),  # type: ignore[arg-type]
            requests_per_minute=int(number("ASSISTANT_REQUESTS_PER_MINUTE", 5)),  # type: ignore[arg-type]
            price_per_million_prompt=number("ASSISTANT_PRICE_PROMPT", None),
            price_per_million_completion=number("ASSISTANT_PRICE_COMPLETION", None),
        )

    def client(self) -> openai.AsyncOpenAI:
        """One client per configuration and event loop: building one costs ~30 ms (TLS
        context, connection pool), which would otherwise delay every reply's first token."""
        key = (self, asyncio.get_running_loop())
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = self._new_client()
        return client

    def _new_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            # Local servers (Ollama, vLLM) accept any key, but the client wants one.
            api_key=self.api_key or "not-needed",
            base_url=self.base_url,
            max_retries=self.max_retries,
            # The read timeout is the silence allowed between chunks: the idle watchdog.
            timeout=openai.Timeout(None, connect=10.0, read=self.idle_timeout, write=10.0),
            http_client=openai.DefaultAsyncHttpxClient(
                transport=_UnansweredIsFinal(httpx2.AsyncHTTPTransport())
            ),
        )

    def cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
        if self.price_per_million_prompt is None and self.price_per_million_completion is None:
            return None
        return (
            (prompt_tokens or 0) * (self.price_per_million_prompt or 0)
            + (completion_tokens or 0) * (self.price_per_million_completion or 0)
        ) / 1_000_000


class ModelDidNotAnswer(openai.APITimeoutError):
    """The model server took the request and sent no response within the read timeout."""


class _UnansweredIsFinal(httpx2.AsyncBaseTransport):
    """The `openai` client retries every timeout, so a server that takes the request and
    never answers would be waited for `max_retries + 1` times the idle timeout before the
    reply says anything. Raised here as an `openai` error, that silence is not retried (the
    client passes its own errors through). Connection failures, 408, 409, 429 and 5xx are
    still retried; a stream that has started is never retried."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        # Returns once the response headers are in; the body streams later.
        try:
            return await self._inner.handle_async_request(request)
        except httpx2.ReadTimeout as error:
            raise ModelDidNotAnswer(request=request) from error  # type: ignore[arg-type]

    async def aclose(self) -> None:
        await self._inner.aclose()


_config: AssistantConfig | None = None
_clients: dict[tuple[AssistantConfig, asyncio.AbstractEventLoop], openai.AsyncOpenAI] = {}


def config() -> AssistantConfig:
    global _config
    if _config is None:
        _config = AssistantConfig.from_env()
    return _config


def configure(replacement: AssistantConfig) -> AssistantConfig:
    """Swap the configuration (tests, benchmarks); returns the previous one."""
    global _config
    previous, _config = config(), replacement
    return previous


def usage_note(prompt_tokens: int | None, completion_tokens: int | None) -> str:
    """ "120 + 48 tokens · ≈ $0.0001" under a finished reply; empty when unknown."""
    if prompt_tokens is None and completion_tokens is None:
        return ""
    note = f"{prompt_tokens or 0:,} + {completion_tokens or 0:,} tokens"
    cost = config().cost(prompt_tokens, completion_tokens)
    return note if cost is None else f"{note} · ≈ ${cost:.4f}"


class RateLimited(chat.ChatError):
    pass


def request_reply(question: Message) -> Message:
    """A queued reply to `question` (a message just posted), shown to the room at once, or
    RateLimited. Its prompt ends at that question, however long it waits in the queue."""
    _check_rate_limit(question.sender_id)
    return chat.create_reply(
        question.room_id,
        accounts.assistant_user_id(),
        question.sender_id,
        question_id=question.id,
    )


def retry_reply(reply_id: int, user_id: int, room_id: int) -> Message:
    """Queues a failed, stopped or interrupted reply of `room_id` again (its text starts
    over), for the person who asked for it. It answers the same question, with the same
    context, whatever was posted since. A finished reply is never rewritten: a new answer
    is a new request. A retry is a request like any other: the rate limit counts it."""
    reply = chat.requested_reply(reply_id, user_id, room_id, "retry")
    if reply.status in chat.ACTIVE_STATUSES:
        raise chat.ChatError("This reply is still being written.")
    if reply.status not in chat.RETRYABLE_STATUSES:
        raise chat.ChatError(NOT_RETRYABLE)
    _check_rate_limit(user_id)
    requeued = chat.requeue_reply(reply_id, user_id)
    if requeued is None:
        # Retried from another tab in the meantime.
        raise chat.ChatError("This reply is still being written.")
    return requeued


NOT_RETRYABLE = "A finished reply is kept as it is: ask @assistant again for a new answer."


async def run_reply(reply_id: int, user_id: int, room_id: int) -> str:
    """`generate`, for the person who asked for the reply, from the room it is in."""
    chat.requested_reply(reply_id, user_id, room_id, "run")
    return await generate(reply_id)


def _check_rate_limit(user_id: int) -> None:
    settings = config()
    window_start = utcnow() - timedelta(minutes=1)
    if chat.count_assistant_requests_since(user_id, window_start) >= settings.requests_per_minute:
        raise RateLimited(
            f"You can ask the assistant {settings.requests_per_minute} times a minute. "
            "Try again in a moment."
        )


def build_prompt(room_id: int, up_to: int, settings: AssistantConfig) -> list[dict[str, str]]:
    """The system prompt and the room's messages up to the message `up_to` (the question)
    included, the newest kept within the budget."""
    budget = settings.prompt_token_budget - _estimate_tokens(settings.system_prompt)
    turns: list[dict[str, str]] = []
    for said in reversed(chat.recent_messages(room_id, settings.history_messages, up_to)):
        if said.sender_is_assistant:
            turn = {"role": "assistant", "content": said.content}
        else:
            turn = {"role": "user", "content": f"{said.sender_name}: {said.content}"}
        cost = _estimate_tokens(turn["content"])
        if cost > budget:
            break
        budget -= cost
        turns.append(turn)
    return [{"role": "system", "content": settings.system_prompt}, *reversed(turns)]


def _estimate_tokens(text: str) -> int:
    # About four characters a token for English; a budget, not a bill.
    return len(text) // 4 + 4


# Generation


async def generate(reply_id: int, settings: AssistantConfig | None = None) -> str:
    """Waits for the room's turn, streams the reply, and returns its final status."""
    settings = settings or config()
    # Let the room see the queued reply before the synchronous work below runs.
    await asyncio.sleep(0)
    attempt = _Attempt(reply_id, secrets.token_hex(6))
    async with chat.subscribe_reply(reply_id) as control:
        # Mostly the room is idle and this claim, one statement, is all the waiting there is.
        while (claim := chat.claim_reply(reply_id, attempt.generation_id)) is None:
            reply = chat.get_message(reply_id)
            if reply is None:
                return "missing"
            if reply.status in (chat.THINKING, chat.STREAMING):
                # Another run of it (a double-clicked Retry, a takeover) claimed it first.
                return "superseded"
            if reply.status != chat.QUEUED:
                return reply.status or "missing"
            if not await _wait_for_turn(reply, control):
                return chat.STOPPED
        return await _run(attempt, claim, settings, control)


async def _wait_for_turn(reply: Message, control: "chat.pubsub.Subscription") -> bool:
    """True once nothing in the room is ahead of this reply; False if it was stopped while
    queued. Ahead: a reply being written, or a queued one asked for earlier."""
    last_heartbeat = asyncio.get_running_loop().time()
    async with chat.subscribe(reply.room_id) as room:
        while True:
            now = asyncio.get_running_loop().time()
            if now - last_heartbeat >= _heartbeat_seconds():
                chat.touch_reply(reply.id)  # type: ignore[arg-type]
                last_heartbeat = now
            blocker = _ahead_of(reply, chat.active_replies(reply.room_id))
            if blocker is None:
                return True
            if utcnow() - blocker.updated_at > ABANDONED_AFTER_IDLE:
                interrupt_abandoned_replies(reply.room_id)
                continue
            stop = asyncio.ensure_future(control.next())
            change = asyncio.ensure_future(room.next())
            done, pending = await asyncio.wait(
                {stop, change},
                timeout=min(1.0, _heartbeat_seconds()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in pending:
                task.cancel()
            if stop in done:
                chat.update_reply(reply.id, status=chat.STOPPED, generation_id=None)  # type: ignore[arg-type]
                return False


def _ahead_of(reply: Message, active: list[Message]) -> Message | None:
    """The reply being written in the room, else the oldest queued one before `reply`
    (the same rule as `chat.claim_reply`'s)."""
    others = [other for other in active if other.id != reply.id]
    writing = [other for other in others if other.status != chat.QUEUED]
    earlier = [other for other in others if other.id < reply.id]  # type: ignore[operator]
    return (writing or earlier or [None])[0]


def interrupt_abandoned_replies(room_id: int | None = None) -> list[int]:
    """Marks interrupted the unfinished replies (of the room, or of every room) whose worker
    died: they have had no heartbeat for `ABANDONED_AFTER_IDLE`. Their text is kept, Retry
    is offered, and their rooms hear it. A reply being written by a live worker, in this
    process or another, is left alone. The ids of the replies interrupted."""
    return chat.interrupt_silent_replies(utcnow() - ABANDONED_AFTER_IDLE, WORKER_WENT_AWAY, room_id)


async def sweep_abandoned_replies() -> None:
    """Lifespan task of every backend worker: interrupts abandoned replies at start, then
    every `SWEEP_INTERVAL`, so that none stays "writing" longer than about
    `ABANDONED_AFTER_IDLE + SWEEP_INTERVAL` after its worker died, room open or not."""
    while True:
        try:
            interrupt_abandoned_replies()
        except Exception:
            # The database may be away for a moment: the next sweep tries again.
            log.exception("the sweep for abandoned assistant replies failed")
        await asyncio.sleep(SWEEP_INTERVAL.total_seconds())


@dataclass
class _Attempt:
    reply_id: int
    generation_id: str
    # Text not sent yet, in pieces: joining once per flush, not once per token, keeps a
    # long reply linear. `sent` is the length of the text sent so far.
    unsent: list[str] = field(default_factory=list)
    unsent_chars: int = 0
    sent: int = 0
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # Whether the 200 headers arrived: errors before that are the server's refusals.
    started: bool = False
    # Set when the reply no longer carries this attempt's generation id (it was retried
    # elsewhere): the attempt stops and must not write to the reply again.
    superseded: bool = False

    def add_text(self, text: str) -> None:
        self.unsent.append(text)
        self.unsent_chars += len(text)

    def start_text(self) -> None:
        """Sends the first text with the status "streaming", at once."""
        if not chat.start_reply_text(self.reply_id, self.generation_id, self._take_unsent()):
            self.superseded = True

    def flush(self) -> None:
        """Sends what arrived since the last flush."""
        if self.superseded or not self.unsent_chars:
            return
        offset = self.sent
        new_text = self._take_unsent()
        if not chat.append_to_reply(self.reply_id, self.generation_id, offset, new_text):
            self.superseded = True

    def _take_unsent(self) -> str:
        text = "".join(self.unsent)
        self.sent += self.unsent_chars
        self.unsent, self.unsent_chars = [], 0
        return text


async def _run(
    attempt: "_Attempt",
    claim: chat.Claim,
    settings: AssistantConfig,
    control: "chat.pubsub.Subscription",
) -> str:
    consume = asyncio.ensure_future(_consume(attempt, settings, claim))
    stop = asyncio.ensure_future(control.next())
    await asyncio.wait({consume, stop}, return_when=asyncio.FIRST_COMPLETED)
    status, error = chat.DONE, None
    if not consume.done():
        # Cancelling the task closes the HTTP response: the server sees the client go.
        consume.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consume
        status = chat.STOPPED
    else:
        stop.cancel()
        status, error = _outcome(consume, attempt, settings)
    # The text is stored and sent by the flushes; the final row carries only the status,
    # and it must be written whatever became of the last text.
    try:
        attempt.flush()
    except Exception:
        log.exception("assistant reply %s: the last text could not be stored", attempt.reply_id)
        status, error = chat.FAILED, SOMETHING_WENT_WRONG
    finished = chat.finish_reply(
        attempt.reply_id,
        attempt.generation_id,
        status=status,
        error=error,
        prompt_tokens=attempt.prompt_tokens,
        completion_tokens=attempt.completion_tokens,
        generation_id=None,
    )
    return status if finished else "superseded"


def _outcome(
    consume: "asyncio.Future[None]", attempt: _Attempt, settings: AssistantConfig
) -> tuple[str, str | None]:
    error = consume.exception()
    if error is None:
        return _finished(attempt)
    if isinstance(error, ModelDidNotAnswer):
        return chat.FAILED, f"The model server did not answer within {settings.idle_timeout:g} s."
    if isinstance(error, openai.APITimeoutError):
        if not attempt.started:
            return chat.FAILED, "The model server could not be reached (connection timeout)."
        return chat.INTERRUPTED, (
            f"The model stopped sending for {settings.idle_timeout:g} s (idle timeout)."
        )
    if isinstance(error, openai.APIStatusError):
        return chat.FAILED, f"The model server refused: {error.status_code} {_message(error)}"
    if isinstance(error, openai.APIConnectionError):
        if attempt.started:
            # A chunked response cut mid-body raises here; a closed one just ends (above).
            return chat.INTERRUPTED, "The connection to the model dropped mid-reply."
        return chat.FAILED, "The model server could not be reached."
    if isinstance(error, openai.APIError):
        return chat.FAILED, f"The model reported an error: {_message(error)}"
    log.exception("assistant reply %s failed", attempt.reply_id, exc_info=error)
    return chat.FAILED, SOMETHING_WENT_WRONG


SOMETHING_WENT_WRONG = "Something went wrong while writing this reply."
# A completion that ended with no text: why, by its finish_reason.
_NO_TEXT = {
    "content_filter": "The model's content filter withheld this reply.",
    "tool_calls": "The model asked to call a tool, which this chat does not offer.",
}


def _finished(attempt: _Attempt) -> tuple[str, str | None]:
    """The outcome of a stream that ended without an exception."""
    reason = attempt.finish_reason
    if reason is None:
        return chat.INTERRUPTED, "The connection to the model ended before the reply did."
    if not attempt.sent and not attempt.unsent_chars:
        # A blank bubble marked done would read as a reply; this one offers a retry.
        return chat.FAILED, _NO_TEXT.get(reason, "The model ended its reply without any text.")
    if reason == "length":
        return chat.DONE, "The reply reached the model's length limit."
    if reason == "content_filter":
        return chat.DONE, "The model's content filter cut this reply short."
    return chat.DONE, None


def _message(error: openai.APIError) -> str:
    body = error.body if isinstance(error.body, dict) else {}
    detail = body.get("error", body) if isinstance(body, dict) else {}
    text = detail.get("message") if isinstance(detail, dict) else None
    # The server's words are shown to the room: untrusted text like the model's.
    return clean_text(str(text or error.message))[:300]


async def _consume(attempt: _Attempt, settings: AssistantConfig, claim: chat.Claim) -> None:
    # The heartbeat starts before the request: the server may take a while to answer.
    async with _flushing(attempt, settings) as note_text:
        prompt = build_prompt(claim.room_id, claim.context_end, settings)
        stream = await open_stream(settings, prompt)
        attempt.started = True
        async with stream:
            async for chunk in stream:
                if attempt.superseded:
                    break
                _read_chunk(chunk, attempt, note_text)


def _read_chunk(
    chunk: ChatCompletionChunk, attempt: _Attempt, note_text: Callable[[str], None]
) -> None:
    """Takes what the chunk says. The client does not check the server's types, and the
    model's text is untrusted: only text that can be stored and sent is kept."""
    if chunk.usage is not None:
        attempt.prompt_tokens = _count(chunk.usage.prompt_tokens)
        attempt.completion_tokens = _count(chunk.usage.completion_tokens)
    # The usage chunk has no choices (and some servers send null).
    for choice in chunk.choices or ():
        content = choice.delta.content if choice.delta else None
        if isinstance(content, str) and (text := clean_text(content)):
            note_text(text)
        if isinstance(choice.finish_reason, str) and choice.finish_reason:
            attempt.finish_reason = choice.finish_reason


def _count(value: object) -> int | None:
    """A token count fit for an integer column, or None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31:
        return value
    return None


async def open_stream(
    settings: AssistantConfig, messages: list[dict[str, str]]
) -> openai.AsyncStream[ChatCompletionChunk]:
    """What `client.chat.completions.create(..., stream=True)` sends, without its parameter
    transform: that walks every message through a typed-dict transformer before the request
    leaves (8.5 ms for a 40-message prompt on this machine, the largest part of the app's
    time to first token), and these messages are already plain JSON. The same client does
    the rest: auth, retries with backoff, errors, SSE parsing."""
    return await settings.client().post(
        "/chat/completions",
        cast_to=ChatCompletion,
        body={
            "model": settings.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        options={"security": {"bearer_auth": True}},
        stream=True,
        stream_cls=openai.AsyncStream[ChatCompletionChunk],
    )


@contextlib.asynccontextmanager
async def _flushing(
    attempt: _Attempt, settings: AssistantConfig
) -> AsyncIterator[Callable[[str], None]]:
    """Yields `note_text(text)`, which gathers the reply's text; the text leaves as the
    module's docstring says, and a timer sends what would otherwise wait too long."""
    coalescer = _Coalescer(attempt, settings)
    consumer = asyncio.current_task()
    timer = asyncio.ensure_future(coalescer.run_timer())

    def end_stream_if_failed(done: "asyncio.Future[None]") -> None:
        # A flush or a heartbeat the database refused ends the stream at once: the reply is
        # then finished as failed, not left "streaming" with no heartbeat.
        if not done.cancelled() and done.exception() is not None and consumer is not None:
            consumer.cancel()

    timer.add_done_callback(end_stream_if_failed)
    try:
        yield coalescer.note_text
    finally:
        timer.cancel()
        # A timer that failed raises its error here, in place of the cancellation it caused.
        with contextlib.suppress(asyncio.CancelledError):
            await timer


class _Coalescer:
    def __init__(
        self,
        attempt: _Attempt,
        settings: AssistantConfig,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._attempt = attempt
        self._settings = settings
        # The loop's clock; the flush rules are tested on a clock the test moves.
        self._clock = clock or asyncio.get_running_loop().time
        self._streaming = False
        self._last_flush = 0.0
        self._pending_since: float | None = None
        # Set when the timer's next deadline may have moved earlier.
        self._deadline_moved = asyncio.Event()

    def note_text(self, text: str) -> None:
        attempt = self._attempt
        was_enough = self._enough_pending()
        attempt.add_text(text)
        if not self._streaming:
            self._streaming = True
            attempt.start_text()
            self._last_flush = self._clock()
            return
        if self._pending_since is None:
            self._pending_since = self._clock()
            self._deadline_moved.set()
        if self._enough_pending():
            if self._clock() - self._last_flush >= self._settings.flush_interval:
                self._flush()
            elif not was_enough:
                self._deadline_moved.set()

    async def run_timer(self) -> None:
        """Flushes text that is due, and beats the reply's heart: alive even while the model
        sends chunks without text."""
        heartbeat = _heartbeat_seconds()
        last_beat = self._clock()
        while not self._attempt.superseded:
            now = self._clock()
            due = self._flush_due()
            if due is not None and now >= due:
                self._flush()
                continue
            if now - last_beat >= heartbeat:
                chat.touch_reply(self._attempt.reply_id)
                last_beat = now
            wake_at = last_beat + heartbeat if due is None else min(due, last_beat + heartbeat)
            self._deadline_moved.clear()
            # Not `wait_for`: on Python 3.11 it can swallow the cancellation that ends this.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, wake_at - now)):
                    await self._deadline_moved.wait()

    def _enough_pending(self) -> bool:
        return self._attempt.unsent_chars >= self._settings.flush_min_chars

    def _flush_due(self) -> float | None:
        if self._pending_since is None:
            return None
        due = self._pending_since + self._settings.flush_max_delay
        if self._enough_pending():
            due = min(due, self._last_flush + self._settings.flush_interval)
        return due

    def _flush(self) -> None:
        self._attempt.flush()
        self._last_flush, self._pending_since = self._clock(), None
