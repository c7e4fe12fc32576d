"""How a page mounts its browser-side behaviour: one call of a hook from `assets/`.

Each module in `assets/` (the room's scrolling, search, mentions, awareness, unread) exports a
React hook that wires its part of the page once mounted. The components mount it through a
Var whose JS expression is the hook's result, so it runs in the page's component with the
options it is given: constants as JSON, state Vars as their live values (the hook sees each
new value on the next render).
"""

import json
from collections.abc import Mapping
from typing import Any

from reflex.event import EventHandler
from reflex.vars import Var, VarData
from reflex_base.utils.format import format_event_handler
from reflex_base.utils.imports import ImportVar


def event_name(handler: EventHandler | Any) -> str:
    """The full name the browser sends an event by (`eventLoop.addEvents`)."""
    return format_event_handler(handler)


def hook_result(
    name: str, module: str, hook: str, options: Mapping[str, object], var_type: type = str
) -> Var:
    """`const <name> = <hook>({...options})`, imported from `module`, as a Var."""
    parts: list[str] = []
    state_vars: list[Var] = []
    for key, value in options.items():
        if isinstance(value, Var):
            parts.append(f"{json.dumps(key)}: {value!s}")
            state_vars.append(value)
        else:
            parts.append(f"{json.dumps(key)}: {json.dumps(value)}")
    call = f"const {name} = {hook}({{{', '.join(parts)}}});"
    return Var(
        _js_expr=name,
        _var_type=var_type,
        _var_data=VarData.merge(
            *(var._get_all_var_data() for var in state_vars),
            VarData(imports={module: [ImportVar(tag=hook)]}, hooks={call: None}),
        ),
    )
