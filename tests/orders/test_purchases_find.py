"""The returns desk finds a purchase (issue 11): orders.selectors.purchases_find, and its access rule
(docs/security.md, "Returns desk")."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from config.contacts import QueryKind, contact_query
from orders.models import Order
from orders.selectors import PURCHASES_MAX, Matched, counter_search, purchases_find
from orders.services import CustomerIn, order_place
from stores.models import Role
from tests.factories import LocationFactory, make_staff
from tests.orders.conftest import lines, pickup, ship

pytestmark = pytest.mark.django_db

EMAIL, PHONE = "aiko@example.com", "+819012345678"
# "090-1234-5678" as a Japanese input method types it (full-width digits and hyphens).
WIDE = "".join(chr(ord(c) + 0xFEE0) for c in "090-1234-5678")


def order(*, channel="web", user=None, placed_at=None, fulfillment=None, **customer):
    with transaction.atomic():
        return order_place(
            channel=channel,
            customer=CustomerIn(**customer),
            fulfillment=fulfillment or ship(),
            lines=lines(("TEE-0", 1)),
            currency="JPY",
            user=user,
            placed_at=placed_at,
        ).order


@pytest.fixture
def sf(db):
    return make_staff(role=Role.STOREFRONT)


@pytest.fixture
def aiko(net, sf):
    """Aiko's purchases, none of them at Shibuya: a web order with her email and phone (the
    customer's stored contact), a till order in Osaka given only her phone, an app order given only
    her email, shipped from the warehouse. Oldest first."""
    osaka_till = make_staff(role=Role.ASSOCIATE, locations=[net.osaka])

    class Aiko:
        web = order(email=EMAIL, phone=PHONE, name="Aiko Tanaka", user=sf, fulfillment=pickup("OSA-UMEDA"))
        till = order(channel="store", phone="090-1234-5678", user=osaka_till, placed_at="OSA-UMEDA")
        app = order(channel="app", email=EMAIL, user=sf)

    return Aiko


@pytest.fixture
def desk(net):
    """An associate at Shibuya, a store that accepts returns (the factory's default)."""
    assert net.shibuya.accepts_returns
    return make_staff(role=Role.ASSOCIATE, locations=[net.shibuya])


def numbers(hits):
    return [h.order.number for h in hits]


# --- What the text is ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("", QueryKind.EMPTY, None),
        ("   ", QueryKind.EMPTY, None),
        (" Aiko@Example.COM ", QueryKind.EMAIL, EMAIL),
        ("aiko@", QueryKind.EMAIL, None),
        ("090-1234-5678", QueryKind.PHONE, PHONE),
        ("+81 90 1234 5678", QueryKind.PHONE, PHONE),
        (WIDE, QueryKind.PHONE, PHONE),
        ("090-1234", QueryKind.OTHER, "090-1234"),
        ("abcd  efgh", QueryKind.OTHER, "abcd efgh"),
    ],
)
def test_contact_query_reads_the_text_as_one_kind_of_thing(text, kind, value, settings):
    settings.OMS = {**settings.OMS, "PHONE_REGION": "JP"}
    typed = contact_query(text)
    assert (typed.kind, typed.value) == (kind, value)


# --- Finding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["090-1234-5678", "+81 90 1234 5678", WIDE, "09012345678"])
def test_a_phone_in_any_form_finds_every_order_of_the_customer_across_channels(aiko, desk, typed):
    hits = purchases_find(text=typed, user=desk)
    assert numbers(hits) == [aiko.app.number, aiko.till.number, aiko.web.number]  # newest first
    assert [h.matched for h in hits] == [Matched.CUSTOMER, Matched.PHONE, Matched.PHONE]
    assert {h.order.channel for h in hits} == {"web", "store", "app"}


@pytest.mark.parametrize("typed", [EMAIL, " AIKO@example.com ", "Aiko@EXAMPLE.com"])
def test_an_email_finds_every_order_of_the_customer_including_the_till_order_given_a_phone(aiko, desk, typed):
    hits = purchases_find(text=typed, user=desk)
    assert numbers(hits) == [aiko.app.number, aiko.till.number, aiko.web.number]
    assert [h.matched for h in hits] == [Matched.EMAIL, Matched.CUSTOMER, Matched.EMAIL]


def test_the_order_number_in_any_case_spacing_or_width(aiko, desk):
    n = aiko.till.number
    wide = "".join(chr(ord(c) + 0xFEE0) for c in n.lower())  # full-width lower case (an IME)
    for typed in (n, n.lower(), f" {n[:5]} {n[5:]} ", f"{n[:5]}-{n[5:]}", wide):
        hits = purchases_find(text=typed, user=desk)
        assert numbers(hits) == [n], typed
        assert hits[0].matched == Matched.IDENTIFIER


def test_an_all_digit_order_number_that_reads_as_a_phone_is_still_found(aiko, desk):
    Order.objects.filter(pk=aiko.web.pk).update(number="9012345679")
    assert contact_query("9012345679").kind == QueryKind.PHONE
    assert numbers(purchases_find(text="9012345679", user=desk)) == ["9012345679"]


def test_another_customer_is_not_found_and_nothing_is_found_for_unknown_contacts(aiko, desk, sf):
    ben = order(email="ben@example.com", phone="080-1111-2222", user=sf)
    assert numbers(purchases_find(text="ben@example.com", user=desk)) == [ben.number]
    assert numbers(purchases_find(text="080-1111-2222", user=desk)) == [ben.number]
    assert purchases_find(text="nobody@example.com", user=desk) == []
    assert purchases_find(text="070-9999-0000", user=desk) == []
    assert purchases_find(text="ZZZZZZZZZZ", user=desk) == []


def test_the_hits_carry_what_the_desk_shows(aiko, desk):
    hits = purchases_find(text=aiko.web.number, user=desk)
    with CaptureQueriesContext(connection) as ctx:
        h = hits[0]
        assert h.order.pickup_location.code == "OSA-UMEDA"
        assert [(ln.sku.code, ln.quantity) for ln in h.order.lines.all()] == [("TEE-0", 1)]
        assert [f.location.code for f in h.order.fulfillments.all()] == ["OSA-UMEDA"]
    assert len(ctx.captured_queries) == 0


def test_an_order_found_elsewhere_shows_only_the_contact_typed(aiko, desk):
    by_phone = {h.order.number: h for h in purchases_find(text="090-1234-5678", user=desk)}
    web, app = by_phone[aiko.web.number], by_phone[aiko.app.number]
    assert not web.own
    assert not app.own
    assert (web.contact_phone, web.contact_email, web.contact_name) == (PHONE, None, "")
    assert (app.contact_phone, app.contact_email) == (None, None)  # placed with the email only
    by_number = purchases_find(text=aiko.web.number, user=desk)[0]
    assert (by_number.contact_email, by_number.contact_phone, by_number.contact_name) == (None, None, "")


def test_an_order_at_the_desks_own_store_shows_its_contact(net, aiko, desk, sf):
    here = order(email=EMAIL, phone=PHONE, name="Aiko Tanaka", user=sf, fulfillment=pickup("TKY-SHIBUYA"))
    hit = purchases_find(text=EMAIL, user=desk)[0]
    assert hit.order == here
    assert hit.own
    assert (hit.contact_email, hit.contact_phone, hit.contact_name) == (EMAIL, PHONE, "Aiko Tanaka")


def test_newest_first_and_at_most_the_limit_capped(net, aiko, desk, sf):
    for _ in range(3):
        order(email=EMAIL, user=sf)
    all_hits = purchases_find(text=EMAIL, user=desk)
    ids = [h.order.pk for h in all_hits]
    assert len(ids) == 6
    assert ids == sorted(ids, reverse=True)
    assert [h.order.pk for h in purchases_find(text=EMAIL, user=desk, limit=2)] == ids[:2]
    assert len(purchases_find(text=EMAIL, user=desk, limit=10_000)) == 6  # capped, not an error
    assert PURCHASES_MAX == 50


def test_a_constant_number_of_queries_whatever_the_number_of_hits(net, desk, sf):
    def queries(text):
        purchases_find(text=text, user=desk)  # the user's locations, read once per user
        with CaptureQueriesContext(connection) as ctx:
            hits = purchases_find(text=text, user=desk)
            for h in hits:  # what the desk shows
                _ = h.order.pickup_location, h.contact_email
                _ = [(ln.sku.code, ln.quantity) for ln in h.order.lines.all()]
                _ = [f.location.code for f in h.order.fulfillments.all()]
        return len(hits), len(ctx.captured_queries)

    order(email="one@example.com", user=sf)
    for i in range(12):
        order(
            email="many@example.com",
            user=sf,
            fulfillment=pickup("OSA-UMEDA") if i % 3 == 0 else ship(),
        )
    one, many = queries("one@example.com"), queries("many@example.com")
    assert (one[0], many[0]) == (1, 12)
    assert one[1] == many[1] <= 5


def test_empty_text_finds_nothing_without_a_query(aiko, desk):
    purchases_find(text="x", user=desk)
    with CaptureQueriesContext(connection) as ctx:
        assert purchases_find(text="  ", user=desk) == []
    assert len(ctx.captured_queries) == 0


# --- Who finds what (docs/security.md, "Returns desk") --------------------------------------------


def test_partial_identifiers_find_nothing_from_other_stores(aiko, desk):
    n = aiko.web.number
    for typed in ("090-1234", "12345678", "aiko@", "@example.com", "aiko", n[:6], n[2:], "Aiko", "Tanaka"):
        assert purchases_find(text=typed, user=desk) == [], typed


def test_part_of_a_name_finds_orders_at_the_users_own_stores_only(net, aiko, desk, sf):
    here = order(email="chie@example.com", name="Chie Tanaka", user=sf, fulfillment=pickup("TKY-SHIBUYA"))
    hits = purchases_find(text="tanaka", user=desk)
    assert numbers(hits) == [here.number]  # not Aiko Tanaka's orders in Osaka
    assert hits[0].matched == Matched.NAME
    assert hits[0].own
    assert purchases_find(text="ta", user=desk) == []  # too short to search by


def test_an_associate_of_a_store_without_returns_finds_only_orders_at_their_store(net, aiko, sf):
    kiosk = LocationFactory(code="TKY-KIOSK", accepts_returns=False)
    assoc = make_staff(role=Role.ASSOCIATE, locations=[kiosk])
    for typed in (EMAIL, "090-1234-5678", aiko.web.number):
        assert purchases_find(text=typed, user=assoc) == [], typed
    # At their own store, only the contact given on the order (docs/security.md, "Personal data").
    here = order(channel="store", phone="090-1234-5678", user=assoc, placed_at="TKY-KIOSK")
    assert numbers(purchases_find(text="090-1234-5678", user=assoc)) == [here.number]
    assert purchases_find(text=EMAIL, user=assoc) == []  # the customer's stored email: not matched


def test_a_store_that_takes_returns_but_is_closed_gives_no_desk(net, aiko, desk):
    net.shibuya.is_active = False
    net.shibuya.save(update_fields=["is_active"])
    assert purchases_find(text=EMAIL, user=desk) == []


def test_a_manager_at_a_returns_store_finds_anywhere(net, aiko):
    manager = make_staff(role=Role.MANAGER, locations=[net.shibuya])
    assert len(purchases_find(text=EMAIL, user=manager)) == 3


def test_warehouse_staff_find_only_their_locations_orders_by_the_contact_on_them(net, aiko, picker):
    # The app and till orders ship from the warehouse; the web order (an Osaka pickup) does not.
    assert {f.location for o in (aiko.app, aiko.till) for f in o.fulfillments.all()} == {net.wh}
    assert numbers(purchases_find(text=EMAIL, user=picker)) == [aiko.app.number]  # not the till's
    assert numbers(purchases_find(text="090-1234-5678", user=picker)) == [aiko.till.number]
    assert purchases_find(text=aiko.web.number, user=picker) == []
    net.wh.accepts_returns = True  # mail returns: still only their own locations
    net.wh.save(update_fields=["accepts_returns"])
    assert purchases_find(text=aiko.web.number, user=picker) == []


def test_the_storefront_keeps_its_rule_the_customers_it_serves(net, aiko, sf):
    # Aiko is served (the storefront placed her web order): all her orders, every channel.
    assert len(purchases_find(text="090-1234-5678", user=sf)) == 3
    osaka = make_staff(role=Role.ASSOCIATE, locations=[net.osaka])
    ben = order(channel="store", phone="080-1111-2222", user=osaka, placed_at="OSA-UMEDA")
    assert purchases_find(text="080-1111-2222", user=sf) == []
    assert purchases_find(text=ben.number, user=sf) == []
    assert purchases_find(text="tanaka", user=sf) == []  # no browsing by name


def test_lockers_and_users_without_a_role_find_nothing(net, aiko):
    locker = make_staff(role=Role.LOCKER, locations=[net.osaka])
    nobody = make_staff(role=Role.ASSOCIATE)
    nobody.staff_profile.delete()
    nobody.refresh_from_db()
    assert purchases_find(text=aiko.web.number, user=locker) == []
    assert purchases_find(text=aiko.web.number, user=nobody) == []


def test_network_managers_and_superusers_find_everything_exactly(aiko):
    net_manager = make_staff(role=Role.MANAGER, network_wide=True)
    assert len(purchases_find(text=EMAIL, user=net_manager)) == 3
    admin = make_staff(role=Role.MANAGER, is_superuser=True)
    assert len(purchases_find(text="090-1234-5678", user=admin)) == 3
    assert purchases_find(text="Tanaka", user=admin) == []  # every order is not a name search


# --- The Pickups page reads the text the same way --------------------------------------------------


def test_the_counter_search_uses_the_same_reading(net, aiko):
    from orders.models import Fulfillment

    qs = Fulfillment.objects.all()
    assert set(counter_search(qs, WIDE).values_list("order_id", flat=True)) == {
        aiko.web.pk,
        aiko.till.pk,
    }
    assert set(counter_search(qs, " AIKO@example.com").values_list("order_id", flat=True)) == {
        aiko.web.pk,
        aiko.app.pk,
    }
    assert not counter_search(qs, "aiko@").exists()
    assert counter_search(qs, "  ").count() == qs.count()


def test_the_receipt_code_from_the_confirmation_finds_its_order_at_any_desk(aiko, desk):
    code = aiko.app.receipt_code
    for typed in (code, code.lower(), f"{code[:4]}-{code[4:]}"):
        hits = purchases_find(text=typed, user=desk)
        assert numbers(hits) == [aiko.app.number], typed
        assert hits[0].matched == Matched.IDENTIFIER
    assert purchases_find(text=code[:7], user=desk) == []  # no partial code
