"""Short state names for the states whose name rides in every streamed chunk.

Reflex names a state after its module and class (`stream_chat___state___messages____messages_state`)
and prefixes it with every parent's name. The room's broadcasts are keyed by the messages
state's full name, so each streamed token paid about 165 bytes of name. These states are
few and app-wide, so a short hand-picked name cannot collide.
"""

import reflex as rx
from reflex.state import _override_base_method


class ShortNamed(rx.State, mixin=True):
    """Mix in and set `__state_name__`; subclasses without their own keep Reflex's naming.

    A dunder, because Reflex turns other class attributes of a state into vars.
    """

    # Reflex 0.10.1 has no public hook for state names; `get_name` is what every lookup
    # (substate paths, the compiled frontend, Redis keys) goes through. The version is pinned.
    @classmethod
    @_override_base_method
    def get_name(cls) -> str:
        return cls.__dict__.get("__state_name__") or super().get_name()
