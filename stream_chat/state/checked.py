"""What a client sends is checked before any handler or state var sees it.

A browser is not the only client of the websocket: any event may carry any JSON. Reflex
0.10.1 does not check an event's payload against the handler's annotations (it converts
what it can and passes the rest through as it came), so an int where a form was expected
reached `form.get(...)` and the user saw Reflex's generic "An error occurred" toast. And a
lone surrogate stored in a var could never be sent again (the websocket encodes UTF-8), so
the tab's stored state was poisoned: every later load of that token closed the socket.

`CheckedInput`, mixed into every state of the app, closes both at the root:

* every event handler's arguments are validated against its annotations (pydantic, lax as
  JSON is) before the handler runs; a mismatch is answered with a toast that says which
  field was wrong, and the state is left as it was;
* every string that reaches a handler, and every string stored in a var of these states,
  has NUL and lone surrogates stripped (`stream_chat.text.clean_text`, the app's one rule).

`answer_unexpected_error` is the app's backend exception handler: whatever still fails is
logged with its traceback and the user gets a short neutral note, never the generic one.
"""

import functools
import inspect
import logging
import typing
from collections.abc import Callable
from typing import Any

import reflex as rx
from pydantic import TypeAdapter, ValidationError
from reflex.event import EventHandler, EventSpec
from reflex.state import _override_base_method

from stream_chat.state.toasts import error_toast
from stream_chat.text import clean_text, has_unsafe

log = logging.getLogger(__name__)

NOT_UNDERSTOOD = "That request was not understood"
UNEXPECTED_ERROR = "Something went wrong on the server. Nothing was changed; please try again."

# What each pydantic error type means to the person who sent the value.
_EXPECTED = {
    "string_type": "must be text",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "dict_type": "must be a set of fields",
    "list_type": "must be a list",
    "missing": "is missing",
}


def clean_strings(value: Any) -> Any:
    """`value` with `clean_text` applied to every string in it, through lists and dicts;
    the same object when there was nothing to clean."""
    if isinstance(value, str):
        return clean_text(value) if has_unsafe(value) else value
    if isinstance(value, list):
        cleaned = [clean_strings(item) for item in value]
        return value if all(a is b for a, b in zip(cleaned, value, strict=True)) else cleaned
    if isinstance(value, dict):
        cleaned_pairs = {clean_strings(key): clean_strings(item) for key, item in value.items()}
        unchanged = list(cleaned_pairs.items()) == list(value.items())
        return value if unchanged else cleaned_pairs
    return value


def refusal(error: ValidationError, argument: str) -> str:
    """One sentence naming the first wrong field and what it must be."""
    first = error.errors()[0]
    location = [part for part in first["loc"] if isinstance(part, str)]
    field = location[-1] if location else argument
    return f"{NOT_UNDERSTOOD}: `{field}` {_EXPECTED.get(first['type'], 'has the wrong type')}."


def checked(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` behind a check of its arguments: validated and cleaned, or refused with a toast."""
    signature = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    adapters = {
        name: TypeAdapter(hints.get(name, Any))
        for name in list(signature.parameters)[1:]  # after `self`
    }

    def arguments(state: Any, args: tuple, kwargs: dict) -> dict[str, Any] | EventSpec:
        try:
            bound = signature.bind(state, *args, **kwargs)
        except TypeError:
            return error_toast(f"{NOT_UNDERSTOOD}.")
        values = {}
        for name, value in list(bound.arguments.items())[1:]:
            try:
                values[name] = clean_strings(adapters[name].validate_python(value))
            except ValidationError as error:
                return error_toast(refusal(error, name))
        return values

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def checked_coroutine(state: Any, *args: Any, **kwargs: Any) -> Any:
            values = arguments(state, args, kwargs)
            if isinstance(values, EventSpec):
                return values
            return await fn(state, **values)

        return checked_coroutine

    @functools.wraps(fn)
    def checked_call(state: Any, *args: Any, **kwargs: Any) -> Any:
        values = arguments(state, args, kwargs)
        if isinstance(values, EventSpec):
            return values
        return fn(state, **values)

    return checked_call


class CheckedInput(rx.State, mixin=True):
    """Mix into every state: its handlers check their arguments, its vars hold clean text."""

    # Reflex 0.10.1 builds every handler of a state class (its own and its mixins') through
    # this one classmethod; wrapping the function here covers handlers added later too.
    @classmethod
    @_override_base_method
    def _create_event_handler(
        cls, fn: Any, event_handler_cls: type[EventHandler] = EventHandler
    ) -> EventHandler:
        return super()._create_event_handler(checked(fn), event_handler_cls)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self).__fields__:
            value = clean_strings(value)
        super().__setattr__(name, value)


def answer_unexpected_error(exception: Exception) -> EventSpec:
    """The app's backend exception handler: the traceback goes to the log, not to the user."""
    log.error("event handler failed", exc_info=exception)
    return rx.toast.error(UNEXPECTED_ERROR, id="backend_error")
