"""Refunds against the real database: every cause writes one refund, with the right lines and
amounts; a unit is never refunded twice; the payment system's reports are idempotent."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from config.errors import InvalidInput, InvalidTransition
from notifications.models import Notification, NotificationEvent
from orders import services
from orders.models import EventType, Fulfillment, OrderEvent, OrderLine
from orders.services import CustomerIn, LineIn, PickIn, order_place
from returns.exceptions import AlreadyRefunded, RefundAlreadyCompleted, RefundAlreadyFailed, UnknownRefund
from returns.models import Refund, RefundCause, RefundLine, RefundStatus
from returns.services import refund_complete, refund_fail, refund_request
from stores.models import Role
from tests.factories import make_staff
from tests.orders.conftest import pickup, place, ship


def _lines(refund):
    return [(rl.order_line.sku.code, rl.quantity, rl.amount) for rl in refund.lines.order_by("pk")]


def _refunded(order):
    return dict(OrderLine.objects.filter(order=order).values_list("sku__code", "refunded_quantity"))


def _place_priced(net, *lines, currency="USD", fulfillment=None):
    with transaction.atomic():
        return order_place(
            channel="web",
            customer=CustomerIn(email="usd@example.com", name="Sam"),
            fulfillment=fulfillment or ship(),
            lines=[LineIn(sku=code, quantity=q, unit_price=Decimal(price)) for code, q, price in lines],
            currency=currency,
        ).order


# --- Causes ----------------------------------------------------------------------------------------


def test_order_cancel_refunds_every_unit_once(net, refund_hook):
    order = place(("TEE-0", 2), ("TEE-1", 1))
    services.order_cancel(number=order.number, reason="customer changed their mind")
    (refund,) = Refund.objects.filter(order=order)
    assert refund.cause == RefundCause.ORDER_CANCELLED
    assert refund.status == RefundStatus.REQUESTED
    assert (refund.amount, refund.currency) == (Decimal("5940"), "JPY")
    assert refund.reason == "customer changed their mind"
    assert _lines(refund) == [("TEE-0", 2, Decimal("3960")), ("TEE-1", 1, Decimal("1980"))]
    assert _refunded(order) == {"TEE-0": 2, "TEE-1": 1}
    # The timeline: cancelled, then the refund; the webhook in the same transaction.
    types = list(OrderEvent.objects.filter(order=order).values_list("type", flat=True))
    assert types.index(EventType.CANCELLED) < types.index(EventType.REFUND_REQUESTED)
    ev = OrderEvent.objects.get(order=order, type=EventType.REFUND_REQUESTED)
    assert ev.data["refund"] == refund.pk
    assert ev.data["amount"] == "5940.00"
    assert ev.data["cause"] == "order_cancelled"
    assert ev.data["lines"] == [
        {"sku": "TEE-0", "quantity": 2, "amount": "3960.00"},
        {"sku": "TEE-1", "quantity": 1, "amount": "1980.00"},
    ]
    (hook,) = Notification.objects.filter(webhook_event="refund.requested")
    assert hook.webhook_endpoint == refund_hook
    assert hook.context["data"]["refund"] == refund.pk
    assert hook.context["data"]["order"] == order.number
    assert hook.context["data"]["amount"] == "5940.00"
    assert hook.context["data"]["currency"] == "JPY"


def test_fulfillment_cancel_refunds_its_units(net, picker):
    order = place(("TEE-0", 2))
    f = order.fulfillments.get()
    services.fulfillment_cancel(fulfillment_id=f.pk, user=picker, reason="damaged in the warehouse")
    (refund,) = Refund.objects.filter(order=order)
    assert refund.cause == RefundCause.FULFILLMENT_CANCELLED
    assert refund.requested_by == picker
    assert _lines(refund) == [("TEE-0", 2, Decimal("3960"))]
    assert _refunded(order) == {"TEE-0": 2}


def test_short_pick_nobody_fills_refunds_the_cancelled_units_only(net, associate):
    order = place(("TEE-0", 2), ("TEE-1", 1), fulfillment=pickup())  # only Shibuya may fill it
    f = order.fulfillments.get()
    services.fulfillment_pick(fulfillment_id=f.pk, picks=[PickIn("TEE-0", 1)], user=associate)
    (refund,) = Refund.objects.filter(order=order)
    assert refund.cause == RefundCause.SHORT_PICK
    assert _lines(refund) == [("TEE-0", 1, Decimal("1980"))]
    assert _refunded(order) == {"TEE-0": 1, "TEE-1": 0}
    types = list(OrderEvent.objects.filter(order=order).values_list("type", flat=True))
    assert types.index(EventType.LINE_CANCELLED) < types.index(EventType.REFUND_REQUESTED)


def test_short_pick_that_is_rerouted_refunds_nothing(net, picker):
    order = place(("TEE-0", 4))  # the warehouse; the missing units go to a store
    f = order.fulfillments.get()
    services.fulfillment_pick(fulfillment_id=f.pk, picks=[PickIn("TEE-0", 1)], user=picker)
    assert Fulfillment.objects.filter(order=order).count() == 2
    assert not Refund.objects.exists()


def test_short_pick_of_everything_refunds_once(net, associate):
    order = place(("TEE-0", 1), fulfillment=pickup())
    f = order.fulfillments.get()
    services.fulfillment_pick(fulfillment_id=f.pk, picks=[PickIn("TEE-0", 0)], user=associate)
    assert Fulfillment.objects.get(pk=f.pk).status == "cancelled"
    (refund,) = Refund.objects.filter(order=order)
    assert (refund.cause, _lines(refund)) == (RefundCause.SHORT_PICK, [("TEE-0", 1, Decimal("1980"))])


def test_order_cancel_after_a_partial_cancel_refunds_only_the_rest(net, associate):
    order = place(("TEE-0", 2), ("TEE-1", 1), fulfillment=pickup())
    f = order.fulfillments.get()
    services.fulfillment_pick(fulfillment_id=f.pk, picks=[PickIn("TEE-0", 1)], user=associate)
    services.order_cancel(number=order.number, reason="customer cancelled")
    first, rest = Refund.objects.filter(order=order).order_by("pk")
    assert _lines(first) == [("TEE-0", 1, Decimal("1980"))]
    assert rest.cause == RefundCause.ORDER_CANCELLED
    assert _lines(rest) == [("TEE-0", 1, Decimal("1980")), ("TEE-1", 1, Decimal("1980"))]
    assert rest.amount == Decimal("3960")
    assert _refunded(order) == {"TEE-0": 2, "TEE-1": 1}


def test_the_pickup_expiry_sweep_gets_its_refund_from_the_cancellation_services(net):
    """The sweep cancels through order_cancel / fulfillment_cancel, naming the cause (the sweep
    itself: tests/orders/test_pickup_window.py)."""
    whole = place(("TEE-0", 1), fulfillment=pickup(), email="w@example.com")
    services.order_cancel(number=whole.number, reason="not collected in time", refund_cause="pickup_expired")
    one = place(("TEE-1", 1), fulfillment=pickup(), email="o@example.com")
    services.fulfillment_cancel(
        fulfillment_id=one.fulfillments.get().pk,
        reason="not collected in time",
        refund_cause="pickup_expired",
    )
    assert [r.cause for r in Refund.objects.order_by("pk")] == ["pickup_expired", "pickup_expired"]
    assert [r.order_id for r in Refund.objects.order_by("pk")] == [whole.pk, one.pk]


def test_amounts_in_a_currency_with_cents(net):
    order = _place_priced(net, ("TEE-0", 3, "19.99"), ("TEE-1", 1, "0.05"))
    services.order_cancel(number=order.number)
    (refund,) = Refund.objects.all()
    assert _lines(refund) == [("TEE-0", 3, Decimal("59.97")), ("TEE-1", 1, Decimal("0.05"))]
    assert refund.amount == Decimal("60.02") == sum(rl.amount for rl in refund.lines.all())
    assert refund.currency == "USD"


# --- Never twice -----------------------------------------------------------------------------------


def test_a_unit_is_never_refunded_twice(net):
    order = place(("TEE-0", 2))
    line = order.lines.get()
    refund_request(order=order, lines=[(line, 1)], reason="one", cause=RefundCause.ORDER_CANCELLED)
    refund_request(order=order, lines=[(line.pk, 1)], reason="two", cause=RefundCause.ORDER_CANCELLED)
    with pytest.raises(AlreadyRefunded) as exc:
        refund_request(order=order, lines=[(line, 1)], reason="three", cause=RefundCause.ORDER_CANCELLED)
    assert exc.value.http_status == 409
    assert exc.value.details == {"order": order.number, "sku": "TEE-0", "requested": 1, "refundable": 0}
    assert Refund.objects.count() == 2
    assert _refunded(order) == {"TEE-0": 2}


def test_a_refused_refund_undoes_the_cancellation_that_caused_it(net, picker):
    """Whatever path cancels units already refunded fails as a whole: no cancel, no second refund."""
    order = place(("TEE-0", 2))
    refund_request(order=order, lines=[(order.lines.get(), 2)], reason="x", cause="order_cancelled")
    f = order.fulfillments.get()
    with pytest.raises(AlreadyRefunded):
        services.fulfillment_cancel(fulfillment_id=f.pk, user=picker)
    assert Fulfillment.objects.get(pk=f.pk).status == "pending"
    assert OrderLine.objects.get(order=order).cancelled_quantity == 0
    assert Refund.objects.count() == 1


def test_the_database_refuses_more_refunded_units_than_bought(net):
    order = place(("TEE-0", 2))
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderLine.objects.filter(order=order).update(refunded_quantity=F("quantity") + 1)


def test_refund_request_checks_its_lines(net):
    order = place(("TEE-0", 2), email="a@example.com")
    other = place(("TEE-1", 1), email="b@example.com")
    with pytest.raises(InvalidInput):
        refund_request(order=order, lines=[(other.lines.get(), 1)], reason="", cause="order_cancelled")
    with pytest.raises(InvalidInput):
        refund_request(order=order, lines=[(order.lines.get(), -1)], reason="", cause="order_cancelled")
    assert refund_request(order=order, lines=[(order.lines.get(), 0)], reason="", cause="x") is None
    assert not Refund.objects.exists()
    assert not OrderEvent.objects.filter(type=EventType.REFUND_REQUESTED).exists()


def test_the_refund_its_event_and_webhook_roll_back_with_the_cancellation(net, refund_hook):
    order = place(("TEE-0", 1))
    before = Notification.objects.count()

    seen = {}

    def cancel_then_fail():
        with transaction.atomic():
            services.order_cancel(number=order.number)
            seen["refunds"] = Refund.objects.count()
            seen["hooks"] = Notification.objects.filter(webhook_event="refund.requested").count()
            raise RuntimeError("the caller's transaction fails after the cancellation")

    with pytest.raises(RuntimeError):
        cancel_then_fail()
    assert seen == {"refunds": 1, "hooks": 1}  # written inside the transaction...

    assert not Refund.objects.exists()  # ...and gone with it
    assert not RefundLine.objects.exists()
    assert not OrderEvent.objects.filter(type=EventType.REFUND_REQUESTED).exists()
    assert Notification.objects.count() == before
    assert _refunded(order) == {"TEE-0": 0}


def test_the_refund_webhook_is_sent_only_to_subscribers(
    net, loopback_webhooks, django_capture_on_commit_callbacks
):
    from notifications.services import webhook_register

    owner = make_staff(role=Role.STOREFRONT)
    with django_capture_on_commit_callbacks(execute=True):
        webhook_register(owner=owner, url="http://127.0.0.1:9/orders", events=["order.*"])
    order = place(("TEE-0", 1))
    services.order_cancel(number=order.number)
    assert Refund.objects.count() == 1
    assert not Notification.objects.filter(webhook_event__startswith="refund.").exists()


# --- The payment system reports back --------------------------------------------------------------


@pytest.fixture
def refund(net):
    order = place(("TEE-0", 1))
    services.order_cancel(number=order.number)
    return Refund.objects.get(order=order)


def test_complete_is_idempotent_per_reference(refund, refund_hook):
    done = refund_complete(refund_id=refund.pk, reference="pay_123")
    assert (done.status, done.reference) == (RefundStatus.COMPLETED, "pay_123")
    assert done.completed_at is not None
    again = refund_complete(refund_id=refund.pk, reference="pay_123")
    assert (again.status, again.reference, again.completed_at) == ("completed", "pay_123", done.completed_at)
    assert OrderEvent.objects.filter(type=EventType.REFUND_COMPLETED).count() == 1
    (hook,) = Notification.objects.filter(webhook_event="refund.completed")
    assert hook.context["data"]["reference"] == "pay_123"
    # The customer hears that the money is on its way back.
    told = Notification.objects.filter(event=NotificationEvent.REFUND_ISSUED)
    assert told.count() == 1
    assert told.get().context["amount"] == "1980.00"
    with pytest.raises(RefundAlreadyCompleted):
        refund_complete(refund_id=refund.pk, reference="pay_456")
    with pytest.raises(RefundAlreadyCompleted):
        refund_fail(refund_id=refund.pk, reason="card expired")
    refund.refresh_from_db()
    assert (refund.status, refund.reference, refund.failure_reason) == ("completed", "pay_123", "")


def test_fail_is_idempotent_per_reason_and_final(refund, refund_hook):
    failed = refund_fail(refund_id=refund.pk, reason="card expired")
    assert (failed.status, failed.failure_reason) == (RefundStatus.FAILED, "card expired")
    assert refund_fail(refund_id=refund.pk, reason="card expired").status == "failed"
    assert OrderEvent.objects.filter(type=EventType.REFUND_FAILED).count() == 1
    assert Notification.objects.filter(webhook_event="refund.failed").count() == 1
    with pytest.raises(RefundAlreadyFailed):
        refund_fail(refund_id=refund.pk, reason="another reason")
    with pytest.raises(RefundAlreadyFailed):
        refund_complete(refund_id=refund.pk, reference="pay_123")
    refund.refresh_from_db()
    assert (refund.status, refund.reference) == ("failed", "")
    # The units stay refunded: the money is owed, not the goods.
    assert refund.order.lines.get().refunded_quantity == 1


def test_complete_and_fail_need_a_reference_and_a_reason(refund):
    with pytest.raises(InvalidInput):
        refund_complete(refund_id=refund.pk, reference="  ")
    with pytest.raises(InvalidInput):
        refund_fail(refund_id=refund.pk, reason="")
    with pytest.raises(UnknownRefund):
        refund_complete(refund_id=refund.pk + 1000, reference="x")
    assert Refund.objects.get(pk=refund.pk).status == "requested"


def test_complete_only_refunds_of_orders_the_user_sees(refund, net):
    elsewhere = make_staff(role=Role.MANAGER, locations=[net.osaka])
    with pytest.raises(UnknownRefund):
        refund_complete(refund_id=refund.pk, reference="x", user=elsewhere)
    here = make_staff(role=Role.MANAGER, locations=[net.wh])
    assert refund_complete(refund_id=refund.pk, reference="x", user=here).status == "completed"


def test_an_already_cancelled_order_writes_no_second_refund(refund):
    with pytest.raises(InvalidTransition):
        services.order_cancel(number=refund.order.number)
    assert Refund.objects.count() == 1


def test_line_amounts_round_to_the_currency():
    """Prices are checked at placement to have the currency's decimals, so this only bites for data
    from elsewhere: half up to the minor unit, always written with two decimals."""
    from returns.services import line_amounts

    jpy = line_amounts(
        currency="JPY",
        lines=[(OrderLine(unit_price=Decimal("333.50")), 1), (OrderLine(unit_price=Decimal("0.49")), 3)],
    )
    assert [str(a) for a in jpy] == ["334.00", "1.00"]
    usd = line_amounts(currency="USD", lines=[(OrderLine(unit_price=Decimal("19.99")), 3)])
    assert [str(a) for a in usd] == ["59.97"]
