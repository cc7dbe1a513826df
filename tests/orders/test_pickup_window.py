"""Issue 10, parts 2 and 3: the pickup window (the store's calendar), the reminder (once), the one
extension by the store's staff, and the expiry sweep that cancels what nobody collected through the
cancellation services (stock released at once, back-in-stock alerts, the customer told)."""

import datetime as dt
import zoneinfo

import pytest
from django.core.management import call_command
from django.utils import timezone

from config.errors import Forbidden, InvalidInput
from inventory.models import StockLevel
from inventory.selectors import ledger_mismatches
from notifications.models import Notification, NotificationEvent, RestockAlert
from notifications.services import back_in_stock_subscribe, webhook_register
from orders import services
from orders.exceptions import InvalidTransition
from orders.models import EventType, Fulfillment, FulfillmentStatus, Order, OrderEvent, OrderStatus
from orders.services.pickups import AlreadyExtended
from orders.services.window import last_day, pickup_deadlines
from returns.models import Refund, RefundCause, RefundStatus
from stores.models import Role
from tests.factories import LocationFactory, SkuFactory, make_staff, stock
from tests.orders.conftest import pickup, place

pytestmark = pytest.mark.django_db

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
F = "/api/v1/fulfillments/"


def ready(associate, *, sku="TEE-0", quantity=1, store="TKY-SHIBUYA", email="a@example.com") -> Fulfillment:
    f = place((sku, quantity), fulfillment=pickup(store), email=email).fulfillments.get()
    services.fulfillment_start(fulfillment_id=f.pk, user=associate)
    return services.fulfillment_ready(fulfillment_id=f.pk, user=associate)


def overdue(f: Fulfillment, *, by=dt.timedelta(minutes=1)) -> Fulfillment:
    Fulfillment.objects.filter(pk=f.pk).update(pickup_expires_at=timezone.now() - by)
    f.refresh_from_db()
    return f


def level(location, sku_code) -> StockLevel:
    return StockLevel.objects.get(location=location, sku__code=sku_code)


# --- The window ---------------------------------------------------------------------------------


def test_the_window_ends_at_midnight_after_its_last_day_in_the_stores_timezone():
    store = LocationFactory.build(timezone="Asia/Tokyo", pickup_window_days=7, pickup_reminder_days=2)
    # 23:30 in Tokyo on 30 November is still 30 November there: the last day is 7 December.
    ready_at = dt.datetime(2026, 11, 30, 23, 30, tzinfo=TOKYO)
    d = pickup_deadlines(location=store, ready_at=ready_at)
    assert d.expires_at == dt.datetime(2026, 12, 8, 0, 0, tzinfo=TOKYO)
    assert d.expires_at == dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC)
    assert last_day(location=store, expires_at=d.expires_at) == dt.date(2026, 12, 7)
    assert d.remind_at == dt.datetime(2026, 12, 6, 0, 0, tzinfo=TOKYO)
    # 15:30 UTC on 30 November is already 1 December in Tokyo.
    d = pickup_deadlines(location=store, ready_at=dt.datetime(2026, 11, 30, 15, 30, tzinfo=dt.UTC))
    assert last_day(location=store, expires_at=d.expires_at) == dt.date(2026, 12, 8)


def test_the_window_follows_the_stores_timezone_across_a_dst_change():
    store = LocationFactory.build(timezone="America/New_York", pickup_window_days=7, pickup_reminder_days=0)
    d = pickup_deadlines(location=store, ready_at=dt.datetime(2026, 10, 30, 12, 0, tzinfo=dt.UTC))
    # Ends at midnight local time on 7 November (EST, UTC-5, after the change on 1 November).
    assert d.expires_at == dt.datetime(2026, 11, 7, 5, 0, tzinfo=dt.UTC)
    assert d.remind_at is None  # the store sends no reminder


def test_no_reminder_when_the_window_is_shorter_than_the_reminder():
    store = LocationFactory.build(timezone="Asia/Tokyo", pickup_window_days=1, pickup_reminder_days=2)
    d = pickup_deadlines(location=store, ready_at=dt.datetime(2026, 11, 30, 10, 0, tzinfo=TOKYO))
    assert d.expires_at == dt.datetime(2026, 12, 2, 0, 0, tzinfo=TOKYO)
    assert d.remind_at is None


def test_ready_sets_the_window_from_the_stores_settings(net, associate):
    net.shibuya.pickup_window_days, net.shibuya.pickup_reminder_days = 3, 1
    net.shibuya.save()
    f = ready(associate)
    expected = pickup_deadlines(location=net.shibuya, ready_at=f.ready_at)
    assert (f.pickup_expires_at, f.pickup_remind_at) == (expected.expires_at, expected.remind_at)
    assert f.pickup_reminded_at is None
    assert f.pickup_extended_at is None
    assert (f.pickup_expires_at - f.ready_at) <= dt.timedelta(days=4)
    assert (f.pickup_expires_at - f.ready_at) > dt.timedelta(days=3)
    event = OrderEvent.objects.filter(fulfillment=f, to_status="ready_for_pickup").get()
    assert event.data["pickup_expires_at"] == f.pickup_expires_at.astimezone(dt.UTC).isoformat()


def test_the_window_is_in_the_order_responses(net, associate, storefront):
    f = ready(associate)
    Order.objects.filter(pk=f.order_id).update(placed_by=storefront.user)
    body = storefront.get(f"/api/v1/orders/{f.order.number}/").json()
    assert body["fulfillments"][0]["pickup_expires_at"] is not None
    assert body["fulfillments"][0]["pickup_extended_at"] is None


# --- The reminder -------------------------------------------------------------------------------


def reminders(f) -> list[Notification]:
    return list(Notification.objects.filter(order_id=f.order_id, event=NotificationEvent.PICKUP_REMINDER))


def test_a_due_reminder_is_sent_once_with_the_code_and_the_last_day(net, associate):
    f = ready(associate)
    Fulfillment.objects.filter(pk=f.pk).update(pickup_remind_at=timezone.now() - dt.timedelta(seconds=1))
    assert services.pickup_reminders_send() == 1
    f.refresh_from_db()
    assert f.pickup_reminded_at is not None
    sent = reminders(f)
    assert len(sent) == 1
    assert sent[0].recipient == "a@example.com"
    day = last_day(location=net.shibuya, expires_at=f.pickup_expires_at).isoformat()
    assert sent[0].context["expires_at"] == day
    assert sent[0].context["store_code"] == "TKY-SHIBUYA"
    events = OrderEvent.objects.filter(fulfillment=f, type=EventType.PICKUP_REMINDED)
    assert events.count() == 1
    assert events.get().channel == "system"
    # Run again (beat, a second worker): nothing more.
    assert services.pickup_reminders_send() == 0
    assert len(reminders(f)) == 1


def test_no_reminder_before_it_is_due_nor_after_collection_or_expiry(net, associate):
    not_due = ready(associate, email="b@example.com")
    collected = ready(associate, email="c@example.com")
    expired = ready(associate, email="d@example.com")
    past = timezone.now() - dt.timedelta(seconds=1)
    Fulfillment.objects.filter(pk__in=[collected.pk, expired.pk]).update(pickup_remind_at=past)
    Fulfillment.objects.filter(pk=expired.pk).update(pickup_expires_at=past)
    services.fulfillment_collect(
        fulfillment_id=collected.pk, pickup_code=collected.pickup_code, user=associate
    )
    assert services.pickup_reminders_send() == 0
    assert not Notification.objects.filter(event=NotificationEvent.PICKUP_REMINDER).exists()
    assert Fulfillment.objects.get(pk=not_due.pk).pickup_reminded_at is None


def test_reminders_go_in_batches(net, associate):
    fs = [ready(associate, email=f"r{i}@example.com") for i in range(3)]
    Fulfillment.objects.filter(pk__in=[f.pk for f in fs]).update(pickup_remind_at=timezone.now())
    assert services.pickup_reminders_send(batch_size=2) == 3
    assert Notification.objects.filter(event=NotificationEvent.PICKUP_REMINDER).count() == 3


def test_the_beat_tasks_are_scheduled(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"orders.tasks.send_pickup_reminders", "orders.tasks.expire_pickups"} <= tasks


# --- The extension ------------------------------------------------------------------------------


def test_the_stores_associate_extends_once_with_a_reason(net, associate):
    from tests.orders.test_notes import api_client

    f = ready(associate)
    before = f.pickup_expires_at
    client = api_client(associate)
    r = client.post(f"{F}{f.pk}/extend/", {"days": 3, "reason": "customer in hospital"}, format="json")
    assert r.status_code == 200, r.json()
    f.refresh_from_db()
    assert f.pickup_expires_at == before + dt.timedelta(days=3)
    assert r.json()["pickup_expires_at"] is not None
    assert r.json()["pickup_extended_at"] is not None
    event = OrderEvent.objects.get(fulfillment=f, type=EventType.PICKUP_EXTENDED)
    assert event.actor == associate
    assert event.reason == "customer in hospital"
    assert event.data["days"] == 3
    assert event.data["from"] == before.astimezone(dt.UTC).isoformat()
    # Once only.
    r = client.post(f"{F}{f.pk}/extend/", {"days": 1, "reason": "again"}, format="json")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "already_extended"
    f.refresh_from_db()
    assert f.pickup_expires_at == before + dt.timedelta(days=3)
    assert OrderEvent.objects.filter(fulfillment=f, type=EventType.PICKUP_EXTENDED).count() == 1


def test_the_customer_is_told_the_new_last_day_when_the_window_is_extended(net, associate):
    from notifications.services import notification_render

    f = ready(associate, email="ext@example.com")
    old_day = last_day(location=net.shibuya, expires_at=f.pickup_expires_at)
    services.fulfillment_extend_pickup(
        fulfillment_id=f.pk, days=3, reason="customer in hospital", user=associate
    )
    f.refresh_from_db()
    new_day = last_day(location=net.shibuya, expires_at=f.pickup_expires_at)
    assert new_day == old_day + dt.timedelta(days=3)
    (told,) = Notification.objects.filter(order_id=f.order_id, event=NotificationEvent.PICKUP_EXTENDED)
    assert told.recipient == "ext@example.com"
    assert told.context["expires_at"] == new_day.isoformat()
    assert told.context["previous_last_day"] == old_day.isoformat()
    assert told.context["store_code"] == "TKY-SHIBUYA"
    body = notification_render(told).body
    assert new_day.isoformat() in body
    assert told.context["pickup_code"] in body
    assert "hospital" not in body  # the staff's reason stays in the timeline
    # Refused extensions tell the customer nothing.
    with pytest.raises(AlreadyExtended):
        services.fulfillment_extend_pickup(fulfillment_id=f.pk, days=1, reason="again", user=associate)
    with pytest.raises(InvalidInput):
        services.fulfillment_extend_pickup(fulfillment_id=f.pk, days=0, reason="x", user=associate)
    assert Notification.objects.filter(event=NotificationEvent.PICKUP_EXTENDED).count() == 1


def test_the_reminder_moves_with_the_extension_unless_it_was_sent(net, associate):
    f = ready(associate)
    services.fulfillment_extend_pickup(fulfillment_id=f.pk, days=2, reason="asked by phone", user=associate)
    f2 = Fulfillment.objects.get(pk=f.pk)
    assert f2.pickup_remind_at == f.pickup_remind_at + dt.timedelta(days=2)
    g = ready(associate, email="g@example.com")
    Fulfillment.objects.filter(pk=g.pk).update(pickup_remind_at=timezone.now())
    assert services.pickup_reminders_send() == 1
    services.fulfillment_extend_pickup(fulfillment_id=g.pk, days=2, reason="asked by phone", user=associate)
    Fulfillment.objects.filter(pk=g.pk).update(pickup_remind_at=timezone.now())
    assert services.pickup_reminders_send() == 0  # reminded once, extension or not


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"days": 0, "reason": "x"}, "days"),
        ({"days": 8, "reason": "x"}, "days"),  # over OMS_PICKUP_EXTENSION_MAX_DAYS (7)
        ({"days": "two", "reason": "x"}, "days"),
        ({"days": 2}, "reason"),
        ({"days": 2, "reason": "  "}, "reason"),
        ({"days": 2, "reason": "r" * 256}, "reason"),
    ],
)
def test_bad_extensions_are_400_and_change_nothing(net, associate, body, field):
    from tests.orders.test_notes import api_client

    f = ready(associate)
    r = api_client(associate).post(f"{F}{f.pk}/extend/", body, format="json")
    assert r.status_code == 400
    assert field in str(r.json()["error"]["details"])
    g = Fulfillment.objects.get(pk=f.pk)
    assert (g.pickup_expires_at, g.pickup_extended_at) == (f.pickup_expires_at, None)


def test_extension_is_for_the_stores_staff_and_a_waiting_fulfillment(net, associate, api_client_for):
    f = ready(associate)
    body = {"days": 1, "reason": "x"}
    elsewhere = api_client_for(Role.ASSOCIATE, [net.osaka])
    assert elsewhere.post(f"{F}{f.pk}/extend/", body, format="json").status_code == 404
    assert api_client_for(Role.STOREFRONT).post(f"{F}{f.pk}/extend/", body, format="json").status_code == 403
    with pytest.raises(Forbidden):
        services.fulfillment_extend_pickup(
            fulfillment_id=f.pk,
            days=1,
            reason="x",
            user=make_staff(role=Role.ASSOCIATE, locations=[net.osaka]),
        )
    pending = place(("TEE-1", 1), fulfillment=pickup(), email="p@example.com").fulfillments.get()
    with pytest.raises(InvalidTransition):
        services.fulfillment_extend_pickup(fulfillment_id=pending.pk, days=1, reason="x", user=associate)
    with pytest.raises(InvalidInput):
        services.fulfillment_extend_pickup(fulfillment_id=f.pk, days=True, reason="x", user=associate)
    services.fulfillment_extend_pickup(fulfillment_id=f.pk, days=7, reason="x", user=associate)
    with pytest.raises(AlreadyExtended):
        services.fulfillment_extend_pickup(fulfillment_id=f.pk, days=1, reason="x", user=associate)


# --- The expiry sweep ---------------------------------------------------------------------------


def test_an_overdue_pickup_is_cancelled_released_and_the_customer_told(net, associate):
    f = overdue(ready(associate, quantity=2))
    assert level(net.shibuya, "TEE-0").reserved == 2
    assert services.pickups_expire() == 1
    order = Order.objects.get(pk=f.order_id)
    assert order.status == OrderStatus.CANCELLED
    assert Fulfillment.objects.get(pk=f.pk).status == FulfillmentStatus.CANCELLED
    lvl = level(net.shibuya, "TEE-0")
    assert (lvl.on_hand, lvl.reserved) == (3, 0)
    cancelled = OrderEvent.objects.get(order=order, type=EventType.CANCELLED)
    assert cancelled.data["cause"] == "pickup_expired"
    assert cancelled.data["fulfillment"] == f.pk
    assert cancelled.channel == "system"
    assert cancelled.actor is None
    assert cancelled.reason.startswith("not collected: pickup window ended ")
    told = Notification.objects.filter(order=order, event=NotificationEvent.PICKUP_EXPIRED)
    assert told.count() == 1
    assert told.get().context["store_code"] == "TKY-SHIBUYA"
    # Not also the generic "order cancelled" message.
    assert not Notification.objects.filter(order=order, event=NotificationEvent.ORDER_CANCELLED).exists()
    assert ledger_mismatches() == []
    # Twice: nothing more.
    assert services.pickups_expire() == 0
    assert OrderEvent.objects.filter(order=order, type=EventType.CANCELLED).count() == 1


@pytest.fixture
def refund_hook(db, settings, django_capture_on_commit_callbacks):
    """A storefront's webhook endpoint subscribed to the refund events (tests/returns/conftest.py)."""
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "WEBHOOK_ALLOW_LOOPBACK": True}
    owner = make_staff(role=Role.STOREFRONT)
    with django_capture_on_commit_callbacks(execute=True):  # drops the cached endpoint list
        return webhook_register(owner=owner, url="http://127.0.0.1:9/refunds", events=["refund.*"])


def test_an_expired_pickup_is_refunded_with_its_cause_and_the_timeline_says_so(net, associate, refund_hook):
    from tests.orders.test_notes import api_client

    f = overdue(ready(associate, quantity=2))
    assert services.pickups_expire() == 1
    order = Order.objects.get(pk=f.order_id)
    (refund,) = Refund.objects.filter(order=order)
    assert refund.cause == RefundCause.PICKUP_EXPIRED
    cancelled = OrderEvent.objects.get(order=order, type=EventType.CANCELLED)
    assert refund.reason == cancelled.reason
    assert refund.reason.startswith("not collected: pickup window ended ")
    assert refund.status == RefundStatus.REQUESTED
    assert [(rl.order_line.sku.code, rl.quantity) for rl in refund.lines.all()] == [("TEE-0", 2)]
    assert dict(order.lines.values_list("sku__code", "refunded_quantity")) == {"TEE-0": 2}
    # The timeline (as the store's staff read it): cancelled, then the refund, both by the sweep.
    r = api_client(associate).get(f"/api/v1/orders/{order.number}/events/")
    assert r.status_code == 200
    body = r.json()
    events = body["results"] if isinstance(body, dict) else body
    types = [e["type"] for e in events]
    assert types.index(EventType.CANCELLED) < types.index(EventType.REFUND_REQUESTED)
    requested = next(e for e in events if e["type"] == EventType.REFUND_REQUESTED)
    assert requested["data"]["cause"] == "pickup_expired"
    assert requested["data"]["refund"] == refund.pk
    assert requested["reason"] == refund.reason
    assert requested["channel"] == "system"
    assert requested["actor"] is None
    # And the payment system is told, in the sweep's transaction.
    (hook,) = Notification.objects.filter(webhook_event="refund.requested")
    assert hook.context["data"]["cause"] == "pickup_expired"
    assert hook.context["data"]["refund"] == refund.pk
    # A second sweep refunds nothing more.
    assert services.pickups_expire() == 0
    assert Refund.objects.filter(order=order).count() == 1


def test_pickups_within_their_window_or_extended_or_collected_stay(net, associate):
    waiting = ready(associate, email="w@example.com")
    extended = ready(associate, email="e@example.com")
    services.fulfillment_extend_pickup(fulfillment_id=extended.pk, days=2, reason="x", user=associate)
    collected = ready(associate, email="c@example.com")
    services.fulfillment_collect(
        fulfillment_id=collected.pk, pickup_code=collected.pickup_code, user=associate
    )
    Fulfillment.objects.filter(pk=collected.pk).update(
        pickup_expires_at=timezone.now() - dt.timedelta(days=1)
    )
    assert services.pickups_expire() == 0
    statuses = dict(Fulfillment.objects.values_list("pk", "status"))
    assert statuses[waiting.pk] == statuses[extended.pk] == FulfillmentStatus.READY_FOR_PICKUP
    assert statuses[collected.pk] == FulfillmentStatus.COLLECTED


def test_an_extended_window_expires_at_its_new_end(net, associate):
    f = ready(associate)
    services.fulfillment_extend_pickup(fulfillment_id=f.pk, days=1, reason="x", user=associate)
    f.refresh_from_db()
    assert services.pickups_expire(now=f.pickup_expires_at - dt.timedelta(seconds=1)) == 0
    assert services.pickups_expire(now=f.pickup_expires_at) == 1
    assert OrderEvent.objects.get(order_id=f.order_id, type=EventType.CANCELLED).data["extended"] is True


def test_the_released_units_alert_back_in_stock_subscribers(net, associate):
    sku = SkuFactory(code="LAST-ONE")
    stock(net.shibuya, sku, 1)
    f = overdue(ready(associate, sku="LAST-ONE"))
    back_in_stock_subscribe(sku=sku, location=net.shibuya, email="waiting@example.com")
    assert not RestockAlert.objects.exists()
    assert services.pickups_expire() == 1
    alert = RestockAlert.objects.get(sku=sku, location=net.shibuya)
    assert alert.available == 1
    assert Fulfillment.objects.get(pk=f.pk).status == FulfillmentStatus.CANCELLED


def test_batches_cancel_every_overdue_pickup(net, associate):
    stock(net.shibuya, SkuFactory(code="MANY"), 50)
    fs = [overdue(ready(associate, sku="MANY", email=f"m{i}@example.com")) for i in range(7)]
    keep = ready(associate, sku="MANY", email="keep@example.com")
    assert services.pickups_expire(batch_size=3) == 7
    assert set(Fulfillment.objects.filter(status="cancelled").values_list("pk", flat=True)) == {
        f.pk for f in fs
    }
    assert Fulfillment.objects.get(pk=keep.pk).status == FulfillmentStatus.READY_FOR_PICKUP
    assert level(net.shibuya, "MANY").reserved == 1
    assert ledger_mismatches() == []
    call_command("inventory_audit")


def test_with_another_live_fulfillment_only_the_expired_one_is_cancelled_and_its_lines_told(net, associate):
    f = ready(associate, quantity=2)
    # A second pickup fulfillment of the same order (as a re-routed short pick makes), still pending.
    other = Fulfillment.objects.create(order_id=f.order_id, location=net.osaka, method="pickup")
    overdue(f)
    assert services.pickups_expire() == 1
    assert Fulfillment.objects.get(pk=f.pk).status == FulfillmentStatus.CANCELLED
    assert Fulfillment.objects.get(pk=other.pk).status == FulfillmentStatus.PENDING
    order = Order.objects.get(pk=f.order_id)
    assert order.status != OrderStatus.CANCELLED
    assert order.lines.get().cancelled_quantity == 2
    line_event = OrderEvent.objects.get(order=order, type=EventType.LINE_CANCELLED)
    assert line_event.data["cause"] == "pickup_expired"
    assert line_event.data["lines"] == [{"sku": "TEE-0", "quantity": 2}]
    assert Notification.objects.filter(order=order, event=NotificationEvent.LINE_CANCELLED).count() == 1
    assert level(net.shibuya, "TEE-0").reserved == 0
    # Only the expired fulfillment's units are refunded, and the refund says why.
    (refund,) = Refund.objects.filter(order=order)
    assert refund.cause == RefundCause.PICKUP_EXPIRED
    assert refund.reason == line_event.reason
    assert [(rl.order_line.sku.code, rl.quantity) for rl in refund.lines.all()] == [("TEE-0", 2)]
    requested = OrderEvent.objects.get(order=order, type=EventType.REFUND_REQUESTED)
    assert requested.data["cause"] == "pickup_expired"


def test_the_task_runs_the_sweep(net, associate):
    from orders.tasks import expire_pickups, send_pickup_reminders

    overdue(ready(associate))
    assert expire_pickups.apply().get() == 1
    assert send_pickup_reminders.apply().get() == 0
