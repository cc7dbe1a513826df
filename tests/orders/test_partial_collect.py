"""Partial collection (issue 10): the customer takes part of a pickup; the rest is released to the
store's stock, cancelled and refunded, in the collect's one transaction. Services, API, admin."""

from decimal import Decimal

import pytest

from config.errors import InvalidInput
from inventory.models import MovementKind, StockLevel, StockMovement
from inventory.selectors import ledger_mismatches
from notifications.models import RestockAlert
from notifications.services import back_in_stock_subscribe
from orders import services
from orders.exceptions import DuplicateLine, InvalidTransition, NothingTaken, WrongPickupCode
from orders.models import EventType, Fulfillment, FulfillmentLine, Order, OrderEvent, OrderLine, OrderStatus
from orders.services import TakenIn
from returns.models import Refund, RefundCause, RefundLine
from stores.models import Role
from tests.factories import SkuFactory, stock
from tests.orders.conftest import pickup, place
from tests.orders.test_admin import act, login

pytestmark = pytest.mark.django_db

F = "/api/v1/fulfillments/"


def ready(associate, *pairs, email="a@example.com") -> Fulfillment:
    """A pickup at Shibuya (3 of each TEE in stock, 1980 JPY a unit), ready at the counter."""
    f = place(*(pairs or (("TEE-0", 2), ("TEE-1", 1))), fulfillment=pickup(), email=email).fulfillments.get()
    services.fulfillment_start(fulfillment_id=f.pk, user=associate)
    return services.fulfillment_ready(fulfillment_id=f.pk, user=associate)


def level(net, code) -> tuple[int, int, int]:
    lv = StockLevel.objects.with_available().get(location=net.shibuya, sku__code=code)
    return lv.on_hand, lv.reserved, lv.available


def snapshot(f: Fulfillment) -> dict:
    """Everything a collect may write."""
    g = Fulfillment.objects.get(pk=f.pk)
    return {
        "fulfillment": (g.status, g.pickup_code_attempts, g.collected_at),
        "order": tuple(Order.objects.filter(pk=f.order_id).values_list("status", "subtotal", "total")),
        "levels": sorted(StockLevel.objects.values_list("pk", "on_hand", "reserved")),
        "movements": StockMovement.objects.count(),
        "fulfillment_lines": sorted(FulfillmentLine.objects.values_list("pk", "quantity", "picked_quantity")),
        "order_lines": sorted(OrderLine.objects.values_list("pk", "cancelled_quantity", "refunded_quantity")),
        "refunds": Refund.objects.count(),
        "events": OrderEvent.objects.count(),
    }


def taken(*pairs) -> list[TakenIn]:
    return [TakenIn(sku=s, quantity=q) for s, q in pairs]


# --- The service ---------------------------------------------------------------------------------


def test_a_partial_hand_over_commits_releases_cancels_and_refunds_exactly(net, associate):
    f = ready(associate)
    assert level(net, "TEE-0") == (3, 2, 1)
    assert level(net, "TEE-1") == (3, 1, 2)
    before = OrderEvent.objects.filter(order_id=f.order_id).count()
    moves_before = StockMovement.objects.count()

    out = services.fulfillment_collect(
        fulfillment_id=f.pk, pickup_code=f.pickup_code, lines=taken(("TEE-0", 1)), user=associate
    )

    assert out.status == "collected"
    f.refresh_from_db()
    assert f.status == "collected"
    assert f.collected_at is not None
    # Stock: 1 TEE-0 left the building, the other TEE-0 and the TEE-1 are available again at once.
    assert level(net, "TEE-0") == (2, 0, 2)
    assert level(net, "TEE-1") == (3, 0, 3)
    moves = list(
        StockMovement.objects.filter(pk__gt=0)
        .order_by("pk")[moves_before:]
        .values_list("kind", "sku__code", "on_hand_delta", "reserved_delta")
    )
    assert sorted(moves) == sorted(
        [
            (MovementKind.RELEASE, "TEE-0", 0, -1),
            (MovementKind.RELEASE, "TEE-1", 0, -1),
            (MovementKind.COMMIT, "TEE-0", -1, -1),
        ]
    )
    assert ledger_mismatches() == []
    # The not-taken units are cancelled on the fulfillment and the order lines; totals follow.
    assert dict(FulfillmentLine.objects.filter(fulfillment=f).values_list("sku__code", "quantity")) == {
        "TEE-0": 1,
        "TEE-1": 0,
    }
    order = Order.objects.get(pk=f.order_id)
    assert dict(order.lines.values_list("sku__code", "cancelled_quantity")) == {"TEE-0": 1, "TEE-1": 1}
    assert dict(order.lines.values_list("sku__code", "refunded_quantity")) == {"TEE-0": 1, "TEE-1": 1}
    assert order.total == order.subtotal == Decimal("1980.00")
    assert order.status == OrderStatus.COMPLETED
    # One refund of the units not taken, cause partial_handover.
    (refund,) = Refund.objects.filter(order=order)
    assert refund.cause == RefundCause.PARTIAL_HANDOVER
    assert refund.amount == Decimal("3960.00")
    assert sorted(
        RefundLine.objects.filter(refund=refund).values_list("order_line__sku__code", "quantity", "amount")
    ) == [("TEE-0", 1, Decimal("1980.00")), ("TEE-1", 1, Decimal("1980.00"))]
    # The timeline: collected (what was taken, what was not), the order completed, then the refund.
    new = list(OrderEvent.objects.filter(order=order).order_by("pk")[before:])
    assert [e.type for e in new] == [
        EventType.FULFILLMENT_STATUS_CHANGED,
        EventType.STATUS_CHANGED,
        EventType.REFUND_REQUESTED,
    ]
    collected = new[0]
    assert (collected.to_status, collected.actor) == ("collected", associate)
    assert collected.data["taken"] == [{"sku": "TEE-0", "quantity": 1}]
    assert collected.data["not_taken"] == [{"sku": "TEE-0", "quantity": 1}, {"sku": "TEE-1", "quantity": 1}]
    assert "not taken" in collected.reason
    assert new[2].data["cause"] == "partial_handover"
    assert new[2].data["refund"] == refund.pk


def test_a_sku_left_out_of_lines_was_not_taken(net, associate):
    f = ready(associate)
    services.fulfillment_collect(
        fulfillment_id=f.pk, pickup_code=f.pickup_code, lines=taken(("TEE-1", 1)), user=associate
    )
    assert level(net, "TEE-0") == (3, 0, 3)
    assert level(net, "TEE-1") == (2, 0, 2)
    (refund,) = Refund.objects.filter(order_id=f.order_id)
    assert [(rl.order_line.sku.code, rl.quantity) for rl in refund.lines.all()] == [("TEE-0", 2)]
    assert ledger_mismatches() == []


def test_taking_everything_through_lines_is_a_plain_collect(net, associate):
    f = ready(associate)
    services.fulfillment_collect(
        fulfillment_id=f.pk,
        pickup_code=f.pickup_code,
        lines=taken(("TEE-0", 2), ("TEE-1", 1)),
        user=associate,
    )
    assert Fulfillment.objects.get(pk=f.pk).status == "collected"
    assert level(net, "TEE-0") == (1, 0, 1)
    assert level(net, "TEE-1") == (2, 0, 2)
    assert not Refund.objects.exists()
    assert not OrderLine.objects.filter(cancelled_quantity__gt=0).exists()
    event = OrderEvent.objects.get(fulfillment=f, to_status="collected")
    assert (event.reason, "not_taken" in event.data) == ("collected", False)
    assert ledger_mismatches() == []


def test_the_released_units_alert_back_in_stock_subscribers(net, associate):
    sku = SkuFactory(code="LAST-TWO")
    stock(net.shibuya, sku, 2)
    f = ready(associate, ("LAST-TWO", 2))
    back_in_stock_subscribe(sku=sku, location=net.shibuya, email="waiting@example.com")
    assert not RestockAlert.objects.exists()
    services.fulfillment_collect(
        fulfillment_id=f.pk, pickup_code=f.pickup_code, lines=taken(("LAST-TWO", 1)), user=associate
    )
    assert RestockAlert.objects.get(sku=sku, location=net.shibuya).available == 1


BAD = [
    pytest.param([("NOPE", 1)], InvalidInput, "lines[0].sku", id="sku-not-on-the-fulfillment"),
    pytest.param([("TEE-2", 1)], InvalidInput, "lines[0].sku", id="sku-of-another-fulfillment"),
    pytest.param([("TEE-0", 3)], InvalidInput, "lines[0].quantity", id="above-ordered"),
    pytest.param([("TEE-0", -1)], InvalidInput, "lines[0].quantity", id="negative"),
    pytest.param([("TEE-0", 1), ("TEE-0", 1)], DuplicateLine, "lines[1].sku", id="duplicate-sku"),
    pytest.param([("TEE-0", 0), ("TEE-1", 0)], NothingTaken, "lines", id="all-zero"),
    pytest.param([], NothingTaken, "lines", id="empty"),
]


@pytest.mark.parametrize(("pairs", "error", "field"), BAD)
def test_bad_lines_are_400_not_a_wrong_try_and_change_nothing(net, associate, pairs, error, field):
    f = ready(associate)
    before = snapshot(f)
    with pytest.raises(error) as e:
        services.fulfillment_collect(
            fulfillment_id=f.pk, pickup_code=f.pickup_code, lines=taken(*pairs), user=associate
        )
    assert e.value.http_status == 400
    assert e.value.details["field"] == field
    assert snapshot(f) == before
    # Also with a wrong code: the lines are refused first, and that try is not counted.
    with pytest.raises(error):
        services.fulfillment_collect(fulfillment_id=f.pk, pickup_code="22222222", lines=taken(*pairs))
    assert snapshot(f) == before


def test_a_wrong_code_with_lines_counts_as_a_wrong_try_and_changes_nothing_else(net, associate):
    f = ready(associate)
    before = snapshot(f)
    code = "22222222" if f.pickup_code != "22222222" else "33333333"
    with pytest.raises(WrongPickupCode):
        services.fulfillment_collect(
            fulfillment_id=f.pk, pickup_code=code, lines=taken(("TEE-0", 1)), user=associate
        )
    after = snapshot(f)
    assert after["fulfillment"] == ("ready_for_pickup", 1, None)
    assert after["events"] == before["events"] + 1
    assert OrderEvent.objects.filter(fulfillment=f).latest("pk").type == EventType.PICKUP_CODE_REFUSED
    assert {k: v for k, v in after.items() if k not in ("fulfillment", "events")} == {
        k: v for k, v in before.items() if k not in ("fulfillment", "events")
    }


def test_collecting_twice_is_409_with_or_without_lines(net, associate):
    f = ready(associate)
    services.fulfillment_collect(
        fulfillment_id=f.pk, pickup_code=f.pickup_code, lines=taken(("TEE-0", 1)), user=associate
    )
    before = snapshot(f)
    for lines in (None, taken(("TEE-0", 1)), taken(("NOPE", 1))):
        with pytest.raises(InvalidTransition):
            services.fulfillment_collect(
                fulfillment_id=f.pk, pickup_code=f.pickup_code, lines=lines, user=associate
            )
    assert snapshot(f) == before


# --- The API -------------------------------------------------------------------------------------


def _err(resp, status, code):
    assert resp.status_code == status, resp.content
    assert set(resp.json()["error"]) == {"code", "message", "details"}
    assert resp.json()["error"]["code"] == code
    return resp.json()["error"]


def test_a_partial_hand_over_through_the_api(net, associate, api_client_for):
    f = ready(associate)
    assoc = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    body = {
        "pickup_code": f.pickup_code,
        "lines": [{"sku": "TEE-0", "quantity": 1}, {"sku": "TEE-1", "quantity": 0}],
    }
    r = assoc.post(f"{F}{f.pk}/collect/", body, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "collected"
    (refund,) = Refund.objects.filter(order_id=f.order_id)
    assert (refund.cause, refund.amount, refund.requested_by) == (
        "partial_handover",
        Decimal("3960.00"),
        assoc.user,
    )
    assert level(net, "TEE-0") == (2, 0, 2)
    assert level(net, "TEE-1") == (3, 0, 3)
    assert ledger_mismatches() == []
    _err(assoc.post(f"{F}{f.pk}/collect/", body, format="json"), 409, "invalid_transition")


@pytest.mark.parametrize(
    ("lines", "code", "field"),
    [
        pytest.param([{"sku": "NOPE", "quantity": 1}], "invalid", "lines[0].sku", id="unknown-sku"),
        pytest.param([{"sku": "TEE-0", "quantity": 3}], "invalid", "lines[0].quantity", id="above-ordered"),
        pytest.param([{"sku": "TEE-0", "quantity": -1}], None, None, id="negative"),
        pytest.param([{"sku": "TEE-0", "quantity": "x"}], None, None, id="not-a-number"),
        pytest.param([{"sku": "TEE-0"}], None, None, id="no-quantity"),
        pytest.param(
            [{"sku": "TEE-0", "quantity": 1}, {"sku": "TEE-0", "quantity": 1}],
            "duplicate_line",
            "lines[1].sku",
            id="duplicate",
        ),
        pytest.param([{"sku": "TEE-0", "quantity": 0}], "nothing_taken", "lines", id="all-zero"),
        pytest.param([], "nothing_taken", "lines", id="empty"),
        pytest.param("TEE-0", None, None, id="not-a-list"),
    ],
)
def test_bad_lines_through_the_api_are_400_and_change_nothing(
    net, associate, api_client_for, lines, code, field
):
    f = ready(associate)
    assoc = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    before = snapshot(f)
    r = assoc.post(f"{F}{f.pk}/collect/", {"pickup_code": f.pickup_code, "lines": lines}, format="json")
    assert r.status_code == 400, r.content
    assert set(r.json()["error"]) == {"code", "message", "details"}
    if code is not None:
        error = _err(r, 400, code)
        assert error["details"]["field"] == field
    assert snapshot(f) == before


def test_a_wrong_code_with_lines_through_the_api(net, associate, api_client_for):
    f = ready(associate)
    assoc = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    code = "22222222" if f.pickup_code != "22222222" else "33333333"
    body = {"pickup_code": code, "lines": [{"sku": "TEE-0", "quantity": 1}]}
    assert (
        _err(assoc.post(f"{F}{f.pk}/collect/", body, format="json"), 422, "wrong_pickup_code")["details"][
            "attempt"
        ]
        == 1
    )
    assert Fulfillment.objects.get(pk=f.pk).pickup_code_attempts == 1
    assert not Refund.objects.exists()
    assert level(net, "TEE-0") == (3, 2, 1)


def test_partial_collect_is_for_the_stores_staff(net, associate, storefront, api_client_for):
    f = ready(associate)
    before = snapshot(f)
    body = {"pickup_code": f.pickup_code, "lines": [{"sku": "TEE-0", "quantity": 1}]}
    elsewhere = api_client_for(Role.ASSOCIATE, locations=[net.osaka])
    assert elsewhere.post(f"{F}{f.pk}/collect/", body, format="json").status_code == 404
    assert storefront.post(f"{F}{f.pk}/collect/", body, format="json").status_code == 403
    assert snapshot(f) == before


# --- The admin -----------------------------------------------------------------------------------


def test_a_partial_hand_over_through_the_admin(net, associate):
    f = ready(associate)
    client = login(associate)
    r = act(client, "collect", [f.pk], pickup_code=f.pickup_code, taken="TEE-0 1, TEE-1 0")
    assert "Collected in part (the rest released and refunded): 1" in r.content.decode()
    assert Fulfillment.objects.get(pk=f.pk).status == "collected"
    (refund,) = Refund.objects.filter(order_id=f.order_id)
    assert (refund.cause, refund.amount) == ("partial_handover", Decimal("3960.00"))
    assert OrderEvent.objects.get(fulfillment=f, to_status="collected").channel == "admin"
    assert level(net, "TEE-0") == (2, 0, 2)
    assert ledger_mismatches() == []
    page = client.get(f"/admin/orders/order/{f.order_id}/change/").content.decode()
    assert "Partial hand-over" in page  # the refund, on the order's page


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("TEE-0", "write each item as SKU and units"),
        ("TEE-0 one", "write each item as SKU and units"),
        ("NOPE 1", "not in this fulfillment"),
        ("TEE-0 0", "Nothing was handed over"),
        ("TEE-0 9", "more TEE-0 than ordered"),
    ],
)
def test_bad_taken_in_the_admin_changes_nothing(net, associate, typed, message):
    f = ready(associate)
    before = snapshot(f)
    r = act(login(associate), "collect", [f.pk], pickup_code=f.pickup_code, taken=typed)
    assert message in r.content.decode()
    assert snapshot(f) == before


def test_an_empty_taken_box_in_the_admin_is_a_full_collect(net, associate):
    f = ready(associate)
    r = act(login(associate), "collect", [f.pk], pickup_code=f.pickup_code, taken="  ")
    assert "Collected: 1" in r.content.decode()
    assert not Refund.objects.exists()


def test_the_schema_documents_lines_as_optional():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    collect_in = schema["components"]["schemas"]["CollectInRequest"]
    assert "lines" in collect_in["properties"]
    assert collect_in["required"] == ["pickup_code"]
    assert "partial hand-over" in collect_in["properties"]["lines"]["description"]
