"""Returns for `load_demo`: at every store that takes returns, online orders already delivered or
collected, with returns in progress (asked online, one by the call centre) and notes the help desk
wrote, plus one return by mail on its way to a warehouse. So the associates' Returns desk has work
on it right after `make demo`.

Everything goes through the services (order_place, the fulfillment steps, return_request,
return_note_add), as the API would, so stock, ledger, timeline and outbox agree. Idempotent: a
store that already has demo returns is left alone.
"""

from __future__ import annotations

import random
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction

from inventory.exceptions import InsufficientStock
from orders.models import NoteChannel
from orders.services import (
    CustomerIn,
    FulfillmentIn,
    LineIn,
    fulfillment_pack,
    fulfillment_pick,
    fulfillment_ship,
    fulfillment_start,
    order_place,
)
from returns.models import Return
from returns.services import ReturnLineIn, return_note_add, return_request
from stores.models import Location, LocationKind

DOMAIN = "demo-returns.example"
NAMES = ["Yui Suzuki", "Sota Ito", "Hina Yamamoto", "Riku Nakamura", "Mio Yoshida", "Kaito Yamada"]
NOTES = [
    "Customer called: the sleeve seam came open after one wash.",
    "Chat: wants the same in a larger size; will bring it on Saturday.",
    "Customer called: lost the box, still has the tags on.",
]
REASONS = ["wrong_size", "not_as_described", "defective", "changed_mind"]


def demo_returns(*, skus: list[tuple[str, str]]) -> int:
    """Returns in progress at every active store that takes returns (0 when already there).
    `skus`: (code, category) of returnable demo SKUs the warehouses have."""
    storefront = get_user_model().objects.get(username="storefront")
    stores = Location.objects.filter(kind=LocationKind.STORE, accepts_returns=True, is_active=True).order_by(
        "code"
    )
    rng = random.Random(20261130)
    made = 0
    for n, store in enumerate(stores):
        if Return.objects.filter(
            expected_location=store, order__contact_email__endswith=f"@{DOMAIN}"
        ).exists():
            continue
        for k in range(3):
            if _one(store, storefront, rng, skus, n=n * 10 + k, note=NOTES[k] if k < 2 else ""):
                made += 1
    if made:
        _one(None, storefront, rng, skus, n=999, note=NOTES[2], mail=True)
    return made


def _one(store, storefront, rng, skus, *, n: int, note: str, mail: bool = False) -> bool:
    name = NAMES[n % len(NAMES)]
    email = f"{name.split()[0].lower()}.{n}@{DOMAIN}"
    picks = rng.sample(skus, 2)
    try:
        with transaction.atomic():
            order = order_place(
                channel="web",
                customer=CustomerIn(email=email, phone=f"080-{2000 + n:04d}-{4321:04d}", name=name),
                fulfillment=FulfillmentIn(
                    method="ship",
                    address={
                        "line1": "1-1 Marunouchi",
                        "city": "Tokyo",
                        "postal_code": "100-0005",
                        "country": "JP",
                        "latitude": 35.681,
                        "longitude": 139.767,
                    },
                ),
                lines=[LineIn(sku=code, quantity=1, unit_price=Decimal("2990")) for code, _ in picks],
                currency="JPY",
                user=storefront,
            ).order
            for f in order.fulfillments.order_by("pk"):  # the warehouse ships it: delivered
                fulfillment_start(fulfillment_id=f.pk)
                fulfillment_pick(fulfillment_id=f.pk, picks=[])
                fulfillment_pack(fulfillment_id=f.pk)
                fulfillment_ship(
                    fulfillment_id=f.pk, carrier="Yamato", tracking_number=f"DEMO-{order.number}"
                )
            ret = return_request(
                order_number=order.number,
                lines=[
                    ReturnLineIn(sku=code, quantity=1, reason=rng.choice(REASONS))
                    for code, _ in picks[: 1 + n % 2]
                ],
                method="mail" if mail else "in_store",
                email=email,
                location=None if mail else store.code,
                note="" if n % 3 else "Bought as a gift, wrong size",
                user=storefront,
                channel="phone" if n % 4 == 1 else "web",
            )
            if note:
                return_note_add(
                    number=ret.number,
                    text=note,
                    channel=NoteChannel.PHONE,
                    user=storefront,
                    author_name="Help desk",
                )
    except InsufficientStock:
        return False
    return True
