"""Refund races on PostgreSQL: real threads, real connections, real row locks."""

import pytest

from orders import services
from orders.models import OrderLine
from returns.exceptions import AlreadyRefunded, RefundAlreadyCompleted
from returns.models import Refund, RefundCause
from returns.services import refund_complete, refund_request
from tests.factories import LocationFactory, SkuFactory, stock
from tests.orders.conftest import pickup, place
from tests.orders.test_concurrency import run_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def order():
    store = LocationFactory(code="TKY-SHIBUYA", offers_pickup=True)
    sku = SkuFactory(code="RACE")
    stock(store, sku, 10)
    return place(("RACE", 3), fulfillment=pickup("TKY-SHIBUYA"))


def test_two_paths_refunding_the_same_units_one_wins(order):
    """Eight callers each refund all 3 units at once: the guarded UPDATE lets exactly one through."""
    line = OrderLine.objects.get(order=order)

    def refund(i):
        try:
            refund_request(
                order=order, lines=[(line.pk, 3)], reason=f"path {i}", cause=RefundCause.ORDER_CANCELLED
            )
            return "ok"
        except AlreadyRefunded:
            return "409"

    results = run_threads(8, refund)
    assert sorted(results) == ["409"] * 7 + ["ok"]
    assert Refund.objects.count() == 1
    assert OrderLine.objects.get(pk=line.pk).refunded_quantity == 3


def test_units_are_shared_out_never_over_refunded(order):
    """Eight callers refund 1 unit each of a line of 3: exactly three refunds."""
    line = OrderLine.objects.get(order=order)

    def refund(i):
        try:
            refund_request(
                order=order, lines=[(line.pk, 1)], reason=f"path {i}", cause=RefundCause.SHORT_PICK
            )
            return "ok"
        except AlreadyRefunded:
            return "409"

    results = run_threads(8, refund)
    assert results.count("ok") == 3
    assert Refund.objects.count() == 3
    assert OrderLine.objects.get(pk=line.pk).refunded_quantity == 3


def test_order_cancel_racing_a_fulfillment_cancel_refunds_once(order):
    f = order.fulfillments.get()

    def cancel(i):
        try:
            if i % 2:
                services.order_cancel(number=order.number)
            else:
                services.fulfillment_cancel(fulfillment_id=f.pk)
            return "ok"
        except Exception as exc:  # the loser: 409 invalid_transition (already cancelled)
            return getattr(exc, "code", repr(exc))

    results = run_threads(6, cancel)
    assert results.count("ok") == 1
    assert set(results) - {"ok"} == {"invalid_transition"}
    (refund,) = Refund.objects.filter(order=order)
    assert [(rl.quantity, str(rl.amount)) for rl in refund.lines.all()] == [(3, "5940.00")]
    assert OrderLine.objects.get(order=order).refunded_quantity == 3


def test_racing_completions_with_two_references_one_wins(order):
    services.order_cancel(number=order.number)
    refund = Refund.objects.get(order=order)

    def complete(i):
        try:
            refund_complete(refund_id=refund.pk, reference=f"pay_{i % 2}")
            return f"ok {i % 2}"
        except RefundAlreadyCompleted:
            return "409"

    results = run_threads(8, complete)
    winner = Refund.objects.get(pk=refund.pk).reference
    assert results.count(f"ok {winner[-1]}") == 4  # the same reference again: 200 each time
    assert results.count("409") == 4
