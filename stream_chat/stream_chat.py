"""The Reflex app: routes, their guards and their loaders."""

import reflex as rx

from stream_chat import assistant, collector, presence, settings
from stream_chat.pages.auth import login_page, register_page
from stream_chat.pages.rooms import room_page, rooms_index_page
from stream_chat.session_routes import session_api
from stream_chat.state.checked import answer_unexpected_error
from stream_chat.state.messages import MessagesState
from stream_chat.state.rooms import RoomsState
from stream_chat.state.session import SessionState

# Toasts at the top: at the bottom right they covered the composer's Send button. The session
# cookie is HttpOnly: set and cleared by the session routes, not by page scripts.
app = rx.App(
    backend_exception_handler=answer_unexpected_error,
    toaster=rx.toast.provider(position="top-center"),
    api_transformer=session_api,
)
app.register_lifespan_task(collector.settle_heap)
app.register_lifespan_task(assistant.sweep_abandoned_replies)
app.register_lifespan_task(presence.keep_tabs_alive)

app.add_page(lambda: rx.fragment(), route="/", on_load=rx.redirect("/rooms", replace=True))
app.add_page(
    login_page,
    route="/login",
    title="Log in · StreamChat",
    on_load=SessionState.redirect_if_logged_in,
)
app.add_page(
    register_page,
    route="/register",
    title="Create an account · StreamChat",
    on_load=SessionState.redirect_if_logged_in,
)
app.add_page(
    rooms_index_page,
    route="/rooms",
    title="Rooms · StreamChat",
    on_load=[SessionState.require_user, RoomsState.open_index],
)
app.add_page(
    room_page,
    route="/rooms/[room_id]",
    title="StreamChat",
    on_load=[SessionState.require_user, MessagesState.enter_room],
)

if settings.test_pages_enabled():
    from stream_chat.testing.stream_lab import StreamLabState, stream_lab_page

    app.add_page(stream_lab_page, route="/_stream_lab", on_load=StreamLabState.load)
