"""The associates' Returns desk (returns/admin_desk.py), clicked through as at the desk."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from inventory.models import StockLevel
from inventory.selectors import available_at
from orders.models import NoteChannel
from returns.models import Refund, Return, ReturnNote, ReturnStatus
from returns.services import ReturnLineIn, return_note_add, return_request
from stores.models import Location, Role
from tests.factories import make_staff
from tests.returns.conftest import delivered

pytestmark = pytest.mark.django_db

DESK = "/admin/returns/deskreturn/"
PHONE = "090-1234-5678"


def login(user) -> Client:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    c = Client()
    c.force_login(user)
    return c


def card(ret, code="") -> str:
    return f"{DESK}{ret.pk}/change/" + (f"?code={code}" if code else "")


@pytest.fixture
def sold(net):
    """Bought online (2 x TEE-0, 1 x TEE-1), shipped from the warehouse: no store sees the order."""
    from tests.orders.conftest import TOKYO  # noqa: F401

    storefront = make_staff(role=Role.STOREFRONT)
    return delivered(("TEE-0", 2), ("TEE-1", 1), email="aiko@example.com", user=storefront), storefront


@pytest.fixture
def desk(net):
    return login(make_staff(role=Role.ASSOCIATE, locations=[net.shibuya]))


def asked(order, storefront, *, note="", **line):
    ret = return_request(
        order_number=order.number,
        lines=[
            ReturnLineIn(sku="TEE-0", quantity=1, reason="wrong_size"),
            ReturnLineIn(sku="TEE-1", quantity=1, reason="damaged"),
        ],
        method="in_store",
        email="aiko@example.com",
        location="TKY-SHIBUYA",
        note=note,
        user=storefront,
        channel="web",
    )
    return ret


def test_find_by_phone_email_number_receipt_code_and_return_code(net, sold, desk):
    order, storefront = sold
    from orders.models import Order

    Order.objects.filter(pk=order.pk).update(contact_phone="+819012345678")
    order.refresh_from_db()
    for typed in (PHONE, "aiko@example.com", order.number.lower(), order.receipt_code.lower()):
        r = desk.get(DESK, {"q": typed})
        assert r.status_code == 200
        assert [hit.order.number for hit, _, _ in r.context["found"]] == [order.number], typed
        assert f"start/{order.number}/" in r.content.decode()
        # An order of no store of theirs: only the contact the associate typed is shown.
        assert order.contact_name not in r.content.decode()
    ret = asked(order, storefront)
    # The customer shows the return's QR or its code: straight to its card.
    for typed in (f"OMSRET:{ret.number}:{ret.code}", ret.code.lower()):
        r = desk.get(DESK, {"q": typed})
        assert r.status_code == 302
        assert r.headers["Location"].startswith(card(ret))
    assert desk.get(DESK, {"q": "nobody@example.com"}).context["found"] == []


def test_the_card_shows_what_the_help_desk_wrote_and_receives_with_conditions(net, sold, desk):
    order, storefront = sold
    ret = asked(order, storefront, note="Too small")
    return_note_add(
        number=ret.number,
        text="Customer called: box was crushed",
        channel=NoteChannel.PHONE,
        user=storefront,
        author_name="Help desk",
    )
    page = desk.get(card(ret)).content.decode()
    assert "Customer called: box was crushed" in page
    assert "Help desk" in page
    assert "Too small" in page
    before = available_at(pairs=[(net.shibuya.pk, net.skus[0].pk), (net.shibuya.pk, net.skus[1].pk)])
    r = desk.post(
        card(ret),
        {
            "step": "receive",
            "store": "TKY-SHIBUYA",
            "qty_TEE-0": "1",
            "condition_TEE-0": "resellable",
            "qty_TEE-1": "1",
            "condition_TEE-1": "damaged",
        },
        follow=True,
    )
    assert "Received" in r.content.decode()
    ret.refresh_from_db()
    assert ret.status == ReturnStatus.RECEIVED
    after = available_at(pairs=[(net.shibuya.pk, net.skus[0].pk), (net.shibuya.pk, net.skus[1].pk)])
    assert after[(net.shibuya.pk, net.skus[0].pk)] == before[(net.shibuya.pk, net.skus[0].pk)] + 1
    assert after[(net.shibuya.pk, net.skus[1].pk)] == before[(net.shibuya.pk, net.skus[1].pk)]
    assert Refund.objects.get(return_ref=ret).amount > 0
    # Receiving twice: refused, nothing moves.
    levels = list(StockLevel.objects.order_by("pk").values())
    r = desk.post(
        card(ret),
        {"step": "receive", "store": "TKY-SHIBUYA", "qty_TEE-0": "1", "condition_TEE-0": "resellable"},
        follow=True,
    )
    assert r.status_code == 200
    assert list(StockLevel.objects.order_by("pk").values()) == levels
    assert Refund.objects.filter(return_ref=ret).count() == 1


def test_start_a_return_at_the_desk_from_an_order_found(net, sold, desk):
    order, _ = sold
    r = desk.get(f"{DESK}start/{order.number}/")
    assert r.status_code == 200
    r = desk.post(
        f"{DESK}start/{order.number}/",
        {"qty_TEE-0": "1", "reason_TEE-0": "changed_mind", "qty_TEE-1": "0", "note": "at the desk"},
    )
    ret = Return.objects.get(order=order)
    assert r.status_code == 302
    assert r.headers["Location"].startswith(card(ret))
    assert (ret.expected_location.code, ret.method, ret.lines.get().quantity) == (
        "TKY-SHIBUYA",
        "in_store",
        1,
    )


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({"qty_TEE-0": "0"}, "Nothing to return"),
        ({"qty_TEE-0": "5", "reason_TEE-0": "wrong_size"}, "TEE-0"),
        ({"qty_TEE-0": "two"}, "whole number"),
    ],
)
def test_refused_starts_change_nothing(net, sold, desk, form, says):
    order, _ = sold
    r = desk.post(f"{DESK}start/{order.number}/", form, follow=True)
    assert says.lower() in r.content.decode().lower()
    assert not Return.objects.exists()


def test_another_stores_desk_and_warehouse_staff(net, sold):
    order, storefront = sold
    ret = asked(order, storefront)
    Location.objects.filter(pk=net.osaka.pk).update(accepts_returns=False)
    osaka = login(make_staff(role=Role.ASSOCIATE, locations=[net.osaka]))
    # Not theirs, no code: not listed, the card redirects, a receive changes nothing.
    assert ret.pk not in [r.pk for r in osaka.get(DESK).context["cl"].result_list]
    assert osaka.get(card(ret)).status_code == 302
    before = Return.objects.filter(pk=ret.pk).values().get()
    osaka.post(
        card(ret),
        {"step": "receive", "store": "OSA-UMEDA", "qty_TEE-0": "1", "condition_TEE-0": "resellable"},
    )
    assert Return.objects.filter(pk=ret.pk).values().get() == before
    # A store that does not take returns finds no purchase made elsewhere.
    assert osaka.get(DESK, {"q": "aiko@example.com"}).context["found"] == []
    wh = login(make_staff(role=Role.WAREHOUSE, locations=[net.wh]))
    assert wh.get(DESK).status_code == 403


def test_a_return_asked_for_another_store_is_opened_with_its_code_and_received_here(net, sold):
    order, storefront = sold
    ret = asked(order, storefront)  # expected at Shibuya
    Location.objects.filter(pk=net.osaka.pk).update(accepts_returns=True)
    osaka = login(make_staff(role=Role.ASSOCIATE, locations=[net.osaka]))
    assert osaka.get(card(ret)).status_code == 302  # no code
    assert osaka.get(card(ret, code="WRONG123")).status_code == 302
    assert osaka.get(card(ret, code=ret.code)).status_code == 200
    osaka.post(
        card(ret),
        {
            "step": "receive",
            "code": ret.code,
            "store": "OSA-UMEDA",
            "qty_TEE-0": "1",
            "condition_TEE-0": "resellable",
            "qty_TEE-1": "0",
        },
    )
    ret.refresh_from_db()
    assert (ret.status, ret.received_at_location.code) == (ReturnStatus.RECEIVED, "OSA-UMEDA")


def test_notes_and_cancel_from_the_card(net, sold, desk):
    order, storefront = sold
    ret = asked(order, storefront)
    desk.post(card(ret), {"step": "note", "text": "Customer will come back tomorrow"})
    assert ReturnNote.objects.filter(ret=ret, channel="store").count() == 1
    desk.post(card(ret), {"step": "cancel", "reason": "changed their mind"})
    ret.refresh_from_db()
    assert ret.status == ReturnStatus.CANCELLED


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(url)
    assert r.status_code == 200
    return len(ctx.captured_queries)


def test_the_desk_pages_queries_do_not_grow_with_the_returns_shown(net, sold, desk):
    order, storefront = sold
    ret = asked(order, storefront)
    few_list, few_card = _queries(desk, DESK), _queries(desk, card(ret))
    for i in range(6):
        o = delivered(("TEE-0", 1), ("TEE-1", 1), email=f"c{i}@example.com", user=storefront)
        return_request(
            order_number=o.number,
            lines=[ReturnLineIn(sku="TEE-0", quantity=1, reason="wrong_size")],
            method="in_store",
            email=f"c{i}@example.com",
            location="TKY-SHIBUYA",
            user=storefront,
        )
    assert _queries(desk, DESK) == few_list
    assert _queries(desk, card(ret)) == few_card


def test_a_search_by_phone_lists_the_purchases_returns_in_the_queue_too(net, sold, desk):
    order, storefront = sold
    from orders.models import Order

    Order.objects.filter(pk=order.pk).update(contact_phone="+819012345678")
    ret = asked(order, storefront)
    r = desk.get(DESK, {"q": PHONE})
    assert [x.pk for x in r.context["cl"].result_list] == [ret.pk]
    page = r.content.decode()
    assert PHONE in page  # the number as people write it, not +81...
    assert "+819012345678" not in page


def test_the_card_lists_the_customers_other_orders_across_channels(net, sold, desk):
    order, storefront = sold
    ret = asked(order, storefront)
    other = delivered(("TEE-2", 1), email="aiko@example.com", user=storefront)
    from orders.models import Order

    Order.objects.filter(pk=other.pk).update(customer=order.customer, channel="app")
    page = desk.get(card(ret)).content.decode()
    assert other.number in page
