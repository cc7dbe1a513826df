"""A day's work at every demo store, for `load_demo`: pickups to pick, ready, arrived (curbside and
in person), overdue and expiring today, a few already collected, with notes from customers and the
call centre. So the associates' Pickups page has work on it right after `make demo`.

Everything goes through the services (order_place, fulfillment_start / _ready / _collect,
order_customer_arrived, order_note_add), as the API and the admin would, so stock, ledger,
timeline and outbox agree (`inventory_audit` stays clean). Only the clock is faked afterwards:
"overdue" and "expiring today" move a few timestamps back (`created_at`, `pickup_expires_at`),
which no service does, so that the day looks like a day. Idempotent: a store that already has
demo-day orders is left alone.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from inventory.exceptions import InsufficientStock
from inventory.selectors import location_stock
from orders.models import Fulfillment, Order
from orders.selectors import free_compartments
from orders.services import (
    CustomerIn,
    FulfillmentIn,
    LineIn,
    fulfillment_collect,
    fulfillment_ready,
    fulfillment_start,
    locker_load,
    order_customer_arrived,
    order_note_add,
    order_place,
)
from stores.models import Location, LocationKind, PickupPoint

DOMAIN = "demo-day.example"
NAMES = [
    "Aiko Tanaka", "Haruto Sato", "Yui Suzuki", "Ren Takahashi", "Mei Watanabe", "Sota Ito",
    "Hina Yamamoto", "Riku Nakamura", "Sakura Kobayashi", "Yuto Kato", "Mio Yoshida", "Kaito Yamada",
]  # fmt: skip
CUSTOMER_NOTES = [
    "My husband will collect",
    "Gift-wrap please",
    "",
    "",
    "Coming after work, around 19:00",
    "",
]
PRICES = {"apparel": "2990", "accessories": "4990", "beauty": "1980", "footwear": "8990", "home": "1490"}

# What each store's day holds: (what happens to the order, how many).
DAY = [
    ("to_pick", 3),
    ("overdue", 1),
    ("picking", 1),
    ("ready", 3),
    ("expiring_today", 1),
    ("arrived_curbside", 1),
    ("arrived_in_person", 1),
    ("collected", 1),
    ("in_locker", 1),  # where the store has a locker bank; otherwise it waits at the counter
    ("in_transit", 2),  # ship to store: the store has none, a warehouse sends it
]


def demo_day(*, associate_for) -> int:
    """Orders placed for the day at every active demo store offering pickup (0 when already there).
    `associate_for(store)` is the user acting at that store (the demo's associates, or the manager)."""
    made = 0
    stores = Location.objects.filter(kind=LocationKind.STORE, offers_pickup=True, is_active=True).order_by(
        "code"
    )
    rng = random.Random(20261130)
    for n, store in enumerate(stores):
        if Order.objects.filter(pickup_location=store, contact_email__endswith=f"@{DOMAIN}").exists():
            continue
        made += _store_day(store, associate_for(store), rng, offset=n)
    return made


def _stocked(store: Location, rng: random.Random) -> list[tuple[str, str]]:
    """(SKU code, category) with at least 3 available at the store, shuffled."""
    rows = [
        (level.sku.code, level.sku.category)
        for level in location_stock(location=store)
        if level.available >= 3
    ]
    rng.shuffle(rows)
    return rows


def _lacking(store: Location, rng: random.Random) -> list[tuple[str, str]]:
    """(SKU code, category) the store has none of (a warehouse may)."""
    rows = [
        (level.sku.code, level.sku.category)
        for level in location_stock(location=store)
        if level.available == 0
    ]
    rng.shuffle(rows)
    return rows


def _store_day(store: Location, user, rng: random.Random, *, offset: int) -> int:
    skus, lacking = _stocked(store, rng), _lacking(store, rng)
    made = 0
    for what, count in DAY:
        for _ in range(count):
            pool = lacking if what == "in_transit" else skus
            if len(pool) < 2:
                break
            picks = [pool.pop() for _ in range(1 if what == "in_transit" else rng.choice([1, 1, 2]))]
            name = NAMES[(offset * 3 + made) % len(NAMES)]
            try:
                with transaction.atomic():
                    f = _place(store, name, picks, what, n=offset * 100 + made, rng=rng)
                    _work(f, what, user)
            except InsufficientStock:  # in transit: no warehouse has it either
                continue
            made += 1
    return made


def _place(store: Location, name: str, picks, what: str, *, n: int, rng: random.Random) -> Fulfillment:
    method = "curbside" if what == "arrived_curbside" or (what == "ready" and n % 3 == 0) else "pickup"
    placed = order_place(
        channel=rng.choice(["web", "web", "app", "marketplace"]),
        customer=CustomerIn(
            email=f"{name.split()[0].lower()}.{n}@{DOMAIN}", phone=f"090-{1000 + n:04d}-{5678:04d}", name=name
        ),
        fulfillment=FulfillmentIn(method=method, location=store.code),
        lines=[
            LineIn(sku=code, quantity=1, unit_price=Decimal(PRICES.get(cat, "1990"))) for code, cat in picks
        ],
        currency="JPY",
        note=rng.choice(CUSTOMER_NOTES),
    )
    return placed.order.fulfillments.exclude(method="to_store").get()


def _work(f: Fulfillment, what: str, user) -> None:
    now = timezone.now()
    if what in ("to_pick", "in_transit"):
        return
    if what == "overdue":
        Fulfillment.objects.filter(pk=f.pk).update(created_at=now - dt.timedelta(hours=3))
        Order.objects.filter(pk=f.order_id).update(created_at=now - dt.timedelta(hours=3))
        return
    fulfillment_start(fulfillment_id=f.pk, user=user, channel="admin")
    if what == "picking":
        return
    f = fulfillment_ready(fulfillment_id=f.pk, user=user, channel="admin")
    if what == "expiring_today":
        Fulfillment.objects.filter(pk=f.pk).update(pickup_expires_at=now + dt.timedelta(hours=2))
        order_note_add(
            number=f.order.number,
            text="Customer called: may be late, asked us to keep it until closing.",
            channel="phone",
            user=None,
            author_name="Call centre",
        )
    elif what == "arrived_curbside":
        order_customer_arrived(number=f.order.number, note="Blue van, bay 3", user=user, channel="admin")
    elif what == "arrived_in_person":
        order_customer_arrived(number=f.order.number, user=user, channel="admin")
    elif what == "in_locker":
        free = next((c for c in _free_compartments(f.location) if c), None)
        if free is not None:
            locker_load(
                fulfillment_id=f.pk,
                locker=free.pickup_point.code,
                compartment=free.label,
                user=user,
                channel="admin",
            )
    elif what == "collected":
        fulfillment_collect(fulfillment_id=f.pk, pickup_code=f.pickup_code, user=user, channel="admin")


def _free_compartments(store: Location):
    for bank in PickupPoint.objects.filter(store=store, is_active=True).order_by("code"):
        yield free_compartments(locker=bank).select_related("pickup_point").first()
