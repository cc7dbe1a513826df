"""Notes about a return: what the customer said to the help desk, the chat, the call centre or the
store, so that nobody at the desk asks twice. The rules are an order note's (orders.services.notes)."""

from __future__ import annotations

from django.db import transaction

from orders import transitions as order_transitions
from orders.models import EventType, OrderEvent
from orders.services.notes import note_input

from ..exceptions import UnknownReturn
from ..models import Return, ReturnNote
from ..selectors import visible_returns
from .policy import acting


@transaction.atomic
def return_note_add(*, number: str, text: str, channel: str, user=None, author_name: str = "") -> ReturnNote:
    """Add a note to the return `user` may see (returns.selectors.visible_returns; 404 otherwise).
    400 for empty or too long text, an unknown channel or a too long author name. A NOTE_ADDED
    event (with the return's number) goes in the order's timeline, in the same transaction.

    Takes no lock: a note changes nothing another writer reads."""
    text, author_name = note_input(text=text, channel=channel, author_name=author_name)
    who = acting(user)
    number = (number or "").strip().upper()
    ret = visible_returns(Return.objects.select_related("order"), who).filter(number=number).first()
    if ret is None:
        raise UnknownReturn(f"Unknown return {number!r}.", details={"return": number})
    note = ReturnNote.objects.create(ret=ret, text=text, channel=channel, author=who, author_name=author_name)
    order_transitions.record_events(
        [
            OrderEvent(
                order=ret.order,
                type=EventType.NOTE_ADDED,
                actor=who,
                channel=channel,
                reason=text[:255],
                data={
                    "note": note.pk,
                    "return": ret.number,
                    **({"author_name": author_name} if author_name else {}),
                },
            )
        ]
    )
    return note
