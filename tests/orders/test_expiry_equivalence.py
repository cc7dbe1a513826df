"""The set-based pickup-expiry sweep writes exactly the rows the per-order path wrote.

`expiry_world()` builds the same small world every time (every shape the sweep meets: a one-line
order, a two-line order, an order with another live fulfillment, an order with a fulfillment
cancelled and refunded before, an extended window, a sold-out level with a back-in-stock
subscriber, a webhook endpoint for every event), runs the sweep and returns every row it wrote or
changed, with ids and order numbers replaced by stable names. `expiry_golden.json` is that result
produced by the per-order sweep before it became set-based (commit 3413521, `_expire_one`:
`order_cancel` / `fulfillment_cancel` one order at a time); the test requires the set-based sweep
(one batch for everything, and batches of 2) and the one-at-a-time fallback to produce the same.

Regenerate (only if the rules themselves change): EXPIRY_GOLDEN_WRITE=1 pytest this file.
"""

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from django.core.management import call_command

from inventory.models import StockLevel, StockMovement
from inventory.selectors import held_mismatches, ledger_mismatches
from notifications.models import Notification, RestockAlert
from notifications.services import back_in_stock_subscribe, webhook_register
from orders import services
from orders.models import Fulfillment, FulfillmentLine, Order, OrderEvent, OrderLine
from returns.models import Refund
from stores.models import Role
from tests.factories import LocationFactory, SkuFactory, make_staff, stock
from tests.orders.conftest import pickup, place

pytestmark = pytest.mark.django_db

GOLDEN = Path(__file__).with_name("expiry_golden.json")
EXPIRES = dt.datetime(2026, 1, 10, 15, 0, tzinfo=dt.UTC)  # midnight in Tokyo: last day 10 January
NOW = EXPIRES + dt.timedelta(hours=3)


def expiry_world(settings, on_commit, sweep) -> dict:
    """Build the world, run `sweep(now)` (it must cancel the 7 overdue fulfillments), return the rows."""
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "WEBHOOK_ALLOW_LOOPBACK": True}
    store = LocationFactory(code="EQ-STORE", name="The store", timezone="Asia/Tokyo", offers_pickup=True)
    other = LocationFactory(code="EQ-OTHER", name="The other store", offers_pickup=True)
    skus = {code: SkuFactory(code=code, name=f"Item {code}") for code in ("EQ-A", "EQ-B", "EQ-LAST")}
    stock(store, skus["EQ-A"], 20)
    stock(store, skus["EQ-B"], 20)
    stock(store, skus["EQ-LAST"], 1)
    stock(other, skus["EQ-A"], 5)
    associate = make_staff(role=Role.ASSOCIATE, locations=[store, other])
    with on_commit(execute=True):  # drops the per-process cache of active endpoints
        webhook_register(owner=make_staff(role=Role.STOREFRONT), url="http://127.0.0.1:9/hook", events=["*"])
    back_in_stock_subscribe(sku=skus["EQ-LAST"], location=store, email="waiting@example.com")

    def ready(*pairs, email):
        order = place(*pairs, fulfillment=pickup("EQ-STORE"), email=email)
        f = order.fulfillments.get()
        services.fulfillment_start(fulfillment_id=f.pk, user=associate)
        services.fulfillment_ready(fulfillment_id=f.pk, user=associate)
        return order, f

    orders, fs = [], []
    for pairs, email in [
        ((("EQ-A", 2),), "one@example.com"),  # one line, two units
        ((("EQ-A", 1), ("EQ-B", 3)), "two@example.com"),  # two lines
        ((("EQ-B", 1),), "extended@example.com"),  # extended once
        ((("EQ-LAST", 1),), "last@example.com"),  # the last unit: back in stock when released
        ((("EQ-A", 1),), "keep@example.com"),  # not overdue: untouched
    ]:
        order, f = ready(*pairs, email=email)
        orders.append(order)
        fs.append(f)
    services.fulfillment_extend_pickup(fulfillment_id=fs[2].pk, days=1, reason="asked", user=associate)
    # An order with another live fulfillment (as a re-routed short pick makes): only the expired one goes.
    order, f = ready(("EQ-A", 2), email="split@example.com")
    Fulfillment.objects.create(order=order, location=other, method="pickup")
    orders.append(order)
    fs.append(f)
    # An order one of whose fulfillments was cancelled (and refunded) before: the whole order goes.
    order, f = ready(("EQ-A", 1), ("EQ-B", 1), email="earlier@example.com")
    gone = Fulfillment.objects.create(order=order, location=store, method="pickup")
    line_b = order.lines.get(sku__code="EQ-B")
    FulfillmentLine.objects.filter(fulfillment=f, order_line=line_b).update(fulfillment=gone)
    services.fulfillment_cancel(fulfillment_id=gone.pk, reason="short", user=associate)
    orders.append(order)
    fs.append(f)
    # A second order with two lines, to make the batch's levels shared between orders.
    order, f = ready(("EQ-B", 2), ("EQ-A", 1), email="shared@example.com")
    orders.append(order)
    fs.append(f)

    overdue = [f for i, f in enumerate(fs) if i != 4]
    Fulfillment.objects.filter(pk__in=[f.pk for f in overdue]).update(pickup_expires_at=EXPIRES)
    Fulfillment.objects.filter(pk=fs[2].pk).update(
        pickup_expires_at=EXPIRES, pickup_extended_at=EXPIRES - dt.timedelta(days=1)
    )
    Fulfillment.objects.filter(pk=fs[4].pk).update(pickup_expires_at=NOW + dt.timedelta(days=2))
    marks = {
        "event": OrderEvent.objects.order_by("-pk").values_list("pk", flat=True).first(),
        "movement": StockMovement.objects.order_by("-pk").values_list("pk", flat=True).first(),
        "notification": Notification.objects.order_by("-pk").values_list("pk", flat=True).first() or 0,
        "refund": Refund.objects.order_by("-pk").values_list("pk", flat=True).first() or 0,
    }
    assert sweep(NOW) == len(overdue)
    assert sweep(NOW) == 0  # twice: nothing more
    assert ledger_mismatches() == []
    assert held_mismatches() == []
    call_command("inventory_audit")
    return _rows(orders, fs, marks, [store, other])


def _rows(orders, fs, marks, locations) -> dict:
    names = {o.number: f"O{i}" for i, o in enumerate(orders)}
    order_ix = {o.pk: i for i, o in enumerate(orders)}
    f_names = {f.pk: f"F{i}" for i, f in enumerate(fs)}
    refund_names: dict[int, str] = {}  # per order, in the order written
    for r in Refund.objects.filter(pk__gt=marks["refund"]).order_by("pk"):
        mine = [n for n in refund_names.values() if n.startswith(f"R{order_ix[r.order_id]}-")]
        refund_names[r.pk] = f"R{order_ix[r.order_id]}-{len(mine)}"
    event_ids: dict[int, str] = {}

    def clean(value, key=None):
        if isinstance(value, dict):
            return {k: clean(v, k) for k, v in sorted(value.items())}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if key == "fulfillment" and isinstance(value, int):
            return f_names.get(value, "F?")
        if key == "refund" and isinstance(value, int):
            return refund_names.get(value, "R?")
        if key == "event_id":
            return event_ids.get(value, "E?")
        if isinstance(value, str):
            for number, name in names.items():
                value = value.replace(number, name)
        return value

    events: dict[str, list] = {}
    for ev in OrderEvent.objects.filter(pk__gt=marks["event"]).order_by("pk"):
        per_order = events.setdefault(f"O{order_ix[ev.order_id]}", [])
        event_ids[ev.pk] = f"O{order_ix[ev.order_id]}-E{len(per_order)}"
        per_order.append(
            [
                ev.type,
                ev.from_status,
                ev.to_status,
                ev.actor_id,
                ev.channel,
                clean(ev.reason),
                f_names.get(ev.fulfillment_id),
                clean(ev.data),
            ]
        )
    ledger = sorted(
        [
            m.kind,
            m.location.code,
            m.sku.code,
            m.quantity,
            m.on_hand_delta,
            m.reserved_delta,
            m.held_delta,
            m.reference_type,
            clean(m.reference),
            m.reason,
            m.user_id,
        ]
        for m in StockMovement.objects.filter(pk__gt=marks["movement"]).select_related("location", "sku")
    )
    outbox = sorted(
        (
            [
                f"O{order_ix[n.order_id]}" if n.order_id else None,
                n.event,
                n.channel,
                n.recipient,
                n.webhook_event,
                n.language,
                n.status,
                clean(n.context),
            ]
            for n in Notification.objects.filter(pk__gt=marks["notification"])
        ),
        key=json.dumps,
    )
    refunds = sorted(
        (
            [
                refund_names[r.pk],
                str(r.amount),
                r.currency,
                r.reason,
                r.cause,
                r.status,
                r.requested_by_id,
                [[rl.order_line.sku.code, rl.quantity, str(rl.amount)] for rl in r.lines.order_by("pk")],
            ]
            for r in Refund.objects.filter(pk__gt=marks["refund"]).order_by("pk")
        ),
        key=json.dumps,
    )
    return clean(
        {
            "events": events,
            "ledger": ledger,
            "outbox": outbox,
            "refunds": refunds,
            "orders": [
                [names[o.number], o.status, str(o.subtotal), str(o.total)]
                for o in Order.objects.filter(pk__in=order_ix).order_by("pk")
            ],
            "order_lines": [
                [
                    names[ln.order.number],
                    ln.sku.code,
                    ln.quantity,
                    ln.cancelled_quantity,
                    ln.refunded_quantity,
                ]
                for ln in OrderLine.objects.filter(order_id__in=order_ix)
                .select_related("order", "sku")
                .order_by("pk")
            ],
            "fulfillments": sorted(
                [f_names.get(f.pk, "other"), names[f.order.number], f.location.code, f.status]
                for f in Fulfillment.objects.filter(order_id__in=order_ix).select_related("order", "location")
            ),
            "levels": sorted(
                [lv.location.code, lv.sku.code, lv.on_hand, lv.reserved, lv.held, lv.safety_stock]
                for lv in StockLevel.objects.filter(location__in=locations).select_related("location", "sku")
            ),
            "restock_alerts": sorted(
                [a.sku.code, a.location.code, a.available]
                for a in RestockAlert.objects.select_related("sku", "location")
            ),
        }
    )


def _golden() -> dict:
    return json.loads(GOLDEN.read_text())


def test_golden_was_written_by_the_per_order_sweep(settings, django_capture_on_commit_callbacks):
    """Writes the golden file when asked (run it on the per-order code); otherwise checks it is there."""
    if os.environ.get("EXPIRY_GOLDEN_WRITE"):
        rows = expiry_world(
            settings, django_capture_on_commit_callbacks, lambda now: services.pickups_expire(now=now)
        )
        GOLDEN.write_text(json.dumps(rows, indent=1, sort_keys=True, default=str) + "\n")
    assert _golden()["events"]


@pytest.mark.parametrize("batch_size", [50, 2])
def test_the_set_based_sweep_writes_what_the_per_order_sweep_wrote(
    settings, django_capture_on_commit_callbacks, batch_size
):
    rows = expiry_world(
        settings,
        django_capture_on_commit_callbacks,
        lambda now: services.pickups_expire(now=now, batch_size=batch_size),
    )
    golden = _golden()
    for key in golden:
        assert rows[key] == golden[key], key


def test_the_one_at_a_time_fallback_writes_the_same(
    settings, django_capture_on_commit_callbacks, monkeypatch
):
    """A batch whose set fails (here: made to fail once) is redone one fulfillment at a time."""
    from config.errors import Conflict
    from orders.services import pickups

    real = pickups._expire
    calls = []

    def failing_once(fs, *, now, **kw):
        calls.append(len(fs))
        if len(calls) == 1:
            real(fs, now=now, **kw)  # writes everything, then fails: the savepoint must undo it all
            raise Conflict("injected")
        return real(fs, now=now, **kw)

    monkeypatch.setattr(pickups, "_expire", failing_once)
    rows = expiry_world(
        settings,
        django_capture_on_commit_callbacks,
        lambda now: services.pickups_expire(now=now, batch_size=50),
    )
    assert calls[0] == 6  # the whole orders together; the split order's fulfillment alone, after
    assert calls[1:] == [1] * 7
    golden = _golden()
    for key in golden:
        assert rows[key] == golden[key], key
