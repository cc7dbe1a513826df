"""Notes about an order: what the customer said, written by the help desk, the call centre or the
store. The customer's own note at placement is `Order.customer_note` (orders/services/inputs.py)."""

from __future__ import annotations

from django.db import transaction

from config.errors import InvalidInput

from .. import transitions
from ..exceptions import UnknownOrder
from ..models import EventType, NoteChannel, Order, OrderEvent, OrderNote
from ..selectors import visible_orders
from .common import acting_user

MAX_NOTE_TEXT = 2000
MAX_AUTHOR_NAME = 100


def note_input(*, text, channel, author_name: str = "") -> tuple[str, str]:
    """A note's text and author name, checked and trimmed (400 `invalid` naming the field): the
    rules of every note, an order's or a return's (returns.services.return_note_add)."""
    text = (text or "").strip() if isinstance(text, str) else text
    if not isinstance(text, str) or not text:
        raise InvalidInput("text is required.", details={"field": "text"})
    if len(text) > MAX_NOTE_TEXT:
        raise InvalidInput(
            f"text is at most {MAX_NOTE_TEXT} characters.",
            details={"field": "text", "max_length": MAX_NOTE_TEXT, "length": len(text)},
        )
    if channel not in NoteChannel.values:
        raise InvalidInput(
            f"Unknown channel {channel!r}.", details={"field": "channel", "allowed": list(NoteChannel.values)}
        )
    author_name = (author_name or "").strip()
    if len(author_name) > MAX_AUTHOR_NAME:
        raise InvalidInput(
            f"author_name is at most {MAX_AUTHOR_NAME} characters.", details={"field": "author_name"}
        )
    return text, author_name


@transaction.atomic
def order_note_add(*, number: str, text: str, channel: str, user=None, author_name: str = "") -> OrderNote:
    """Add a note to the order `user` may see (orders.selectors.order_list: the storefront for the
    customers it serves, staff at the order's locations; otherwise 404). 400 for empty or too long
    text, an unknown channel or a too long author name. A NOTE_ADDED event goes in the timeline
    (who, when, channel, the first 255 characters as its reason) in the same transaction.

    Takes no lock: a note changes nothing another writer reads."""
    text, author_name = note_input(text=text, channel=channel, author_name=author_name)
    who = acting_user(user)
    orders = visible_orders(Order.objects.all(), user) if who is not None else Order.objects.all()
    order = orders.filter(number=number).first()
    if order is None:
        raise UnknownOrder(f"Unknown order {number!r}.", details={"order": number})
    note = OrderNote.objects.create(
        order=order, text=text, channel=channel, author=who, author_name=author_name
    )
    transitions.record_events(
        [
            OrderEvent(
                order=order,
                type=EventType.NOTE_ADDED,
                actor=who,
                channel=channel,
                reason=text[:255],
                data={"note": note.pk, **({"author_name": author_name} if author_name else {})},
            )
        ]
    )
    return note
