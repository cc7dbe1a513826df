"""Order events heard through orders.hooks become customer notifications (in the same transaction)."""

import pytest
from django.core import mail
from django.db import transaction

from notifications.models import Notification, NotificationEvent
from orders import hooks
from orders.models import EventType, FulfillmentStatus, OrderEvent

from .conftest import make_order

pytestmark = pytest.mark.django_db


def emit(order, type_, **kw):
    ev = OrderEvent.objects.create(order=order, type=type_, **kw)
    hooks.emit([ev])
    return ev


def test_placed_event_confirms_the_order_in_the_customers_language(customer, store, sku):
    customer.language = "en"
    customer.save()
    order = make_order(customer, location=store, sku=sku, quantity=2)
    ev = emit(order, EventType.PLACED, to_status="placed")
    (n,) = Notification.objects.filter(event=NotificationEvent.ORDER_CONFIRMED)
    assert n.dedupe_key == f"order-event:{ev.pk}:email"
    assert n.order == order
    assert n.customer == customer
    from notifications.services import notification_deliver

    notification_deliver(notification_id=n.pk)
    assert mail.outbox[0].subject == f"Order {order.number} confirmed"
    assert "Black tee M x 2" in mail.outbox[0].body
    assert "1980.00 JPY" in mail.outbox[0].body


def test_shipped_carries_carrier_and_tracking(customer, warehouse):
    order = make_order(customer, location=warehouse)
    f = order.fulfillments.get()
    f.carrier, f.tracking_number = "Yamato", "1234-5678-9012"
    f.save()
    emit(
        order, EventType.FULFILLMENT_STATUS_CHANGED, fulfillment=f, from_status="packed", to_status="shipped"
    )
    (n,) = Notification.objects.filter(event=NotificationEvent.ORDER_SHIPPED)
    assert n.context["carrier"] == "Yamato"
    assert n.context["tracking_number"] == "1234-5678-9012"


def test_ready_for_pickup_has_code_store_and_hours(customer, store):
    store.opening_hours = {"mon": ["10:00", "20:00"], "sun": None}
    store.save()
    order = make_order(customer, location=store, method="pickup")
    f = order.fulfillments.get()
    f.pickup_code = "483920"
    f.save()
    emit(
        order,
        EventType.FULFILLMENT_STATUS_CHANGED,
        fulfillment=f,
        from_status="picking",
        to_status=FulfillmentStatus.READY_FOR_PICKUP,
    )
    (n,) = Notification.objects.filter(event=NotificationEvent.READY_FOR_PICKUP)
    assert n.context["pickup_code"] == "483920"
    assert n.context["store_name"] == "Shibuya"
    assert n.context["store_hours"] == "Mon 10:00-20:00, Sun closed"
    from notifications.services import notification_render

    body = notification_render(n).body
    assert "483920" in body
    assert "Shibuya" in body
    assert "受取コード" in body


def test_other_fulfillment_moves_notify_nobody(customer, warehouse):
    order = make_order(customer, location=warehouse)
    f = order.fulfillments.get()
    emit(
        order, EventType.FULFILLMENT_STATUS_CHANGED, fulfillment=f, from_status="pending", to_status="picking"
    )
    emit(order, EventType.CLAIMED, fulfillment=f)
    emit(order, EventType.ROUTED)
    assert Notification.objects.count() == 0


def test_cancelled_and_line_cancelled(customer, warehouse, sku):
    customer.language = "ko"
    customer.save()
    order = make_order(customer, location=warehouse, sku=sku)
    emit(
        order,
        EventType.LINE_CANCELLED,
        reason="short pick",
        data={"lines": [{"sku": sku.code, "quantity": 1}]},
    )
    emit(order, EventType.CANCELLED, from_status="placed", to_status="cancelled", reason="customer asked")
    line, whole = Notification.objects.order_by("id")
    assert line.event == NotificationEvent.LINE_CANCELLED
    assert line.context["lines"] == [{"sku": sku.code, "name": "Black tee M", "quantity": 1}]
    assert whole.event == NotificationEvent.ORDER_CANCELLED
    from notifications.services import notification_render

    assert "Black tee M x 1" in notification_render(line).body
    assert "customer asked" in notification_render(whole).body


def test_sms_and_email_when_the_customer_wants_both(customer, warehouse):
    customer.notify_channels = ["email", "sms"]
    customer.save()
    order = make_order(customer, location=warehouse)
    emit(order, EventType.PLACED)
    assert sorted(Notification.objects.values_list("channel", flat=True)) == ["email", "sms"]


def test_emitting_the_same_events_twice_makes_no_second_row(customer, warehouse):
    order = make_order(customer, location=warehouse)
    ev = emit(order, EventType.PLACED)
    hooks.emit([ev])
    assert Notification.objects.count() == 1


def test_a_rolled_back_order_change_leaves_no_notification(customer, warehouse):
    order = make_order(customer, location=warehouse)

    def change_that_fails():
        with transaction.atomic():
            emit(order, EventType.PLACED)
            raise RuntimeError("routing failed after the event")

    with pytest.raises(RuntimeError):
        change_that_fails()
    assert Notification.objects.count() == 0
