"""Issue 10, part 1: what the customer said. The customer's note at placement, and notes the help
desk, the call centre and the store add later: stored, shown on the order (and to the store's
staff), in the timeline; who may add them; bad input is 400 and writes nothing."""

import uuid

import pytest

from config.errors import InvalidInput
from orders import services
from orders.exceptions import UnknownOrder
from orders.models import EventType, OrderEvent, OrderNote
from stores.models import Role
from tests.factories import LocationFactory, make_staff
from tests.orders.conftest import pickup, place

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"


def order_body(**extra):
    return {
        "channel": "web",
        "customer": {"email": "aiko@example.com", "name": "Aiko"},
        "fulfillment": {"method": "pickup", "location": "TKY-SHIBUYA"},
        "lines": [{"sku": "TEE-0", "quantity": 1, "unit_price": "1980"}],
        "currency": "JPY",
        **extra,
    }


def post_order(client, body):
    return client.post(ORDERS, body, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))


# --- The customer's note at placement --------------------------------------------------------------


def test_the_customers_note_is_stored_and_shown_on_the_order_and_to_the_store(net, storefront, associate):
    r = post_order(storefront, order_body(note="  Please keep it cold, I come after 7 pm.  "))
    assert r.status_code == 201, r.json()
    assert r.json()["note"] == "Please keep it cold, I come after 7 pm."
    assert r.json()["notes"] == []
    number = r.json()["number"]
    detail = storefront.get(f"{ORDERS}{number}/").json()
    assert detail["note"] == "Please keep it cold, I come after 7 pm."
    # The 201 body and the order read agree on every key (the 201 is built without a re-read).
    assert set(detail) == set(r.json())
    staff = api_client(associate)
    queue = staff.get("/api/v1/fulfillments/", {"location": "TKY-SHIBUYA"}).json()["results"]
    assert [f["order_note"] for f in queue if f["order"] == number] == [
        "Please keep it cold, I come after 7 pm."
    ]


def test_an_order_without_a_note_has_an_empty_one(net, storefront):
    r = post_order(storefront, order_body())
    assert r.status_code == 201
    assert r.json()["note"] == ""
    r = post_order(storefront, order_body(note=None))
    assert r.status_code == 201
    assert r.json()["note"] == ""


def test_a_note_over_500_characters_is_400_and_places_nothing(net, storefront):
    r = post_order(storefront, order_body(note="x" * 501))
    assert r.status_code == 400
    assert "note" in r.json()["error"]["details"]["fields"]
    assert storefront.get(ORDERS).json()["count"] == 0
    assert post_order(storefront, order_body(note="x" * 500)).status_code == 201


def test_the_service_bounds_the_note_too(net):
    with pytest.raises(InvalidInput) as e:
        place(("TEE-0", 1), fulfillment=pickup(), note="y" * 501)
    assert e.value.details["field"] == "note"
    assert place(("TEE-0", 1), fulfillment=pickup(), note=" kept ").customer_note == "kept"


# --- Notes added later ------------------------------------------------------------------------------


def api_client(user):
    from knox.models import AuthToken
    from rest_framework.test import APIClient

    client = APIClient()
    _, token = AuthToken.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def order_number(net, storefront):
    r = post_order(storefront, order_body())
    assert r.status_code == 201
    return r.json()["number"]


def test_the_help_desk_adds_notes_through_the_storefront_listed_with_who_when_and_channel(
    storefront, order_number
):
    r = storefront.post(
        f"{ORDERS}{order_number}/notes/",
        {
            "text": "Customer called: her sister will collect.",
            "channel": "call_centre",
            "author_name": "Mika",
        },
        format="json",
    )
    assert r.status_code == 201, r.json()
    note = r.json()
    assert note["channel"] == "call_centre"
    assert note["author"] == storefront.user.username
    assert note["author_name"] == "Mika"
    assert note["created_at"]
    order = storefront.get(f"{ORDERS}{order_number}/").json()
    assert [(n["text"], n["channel"]) for n in order["notes"]] == [
        ("Customer called: her sister will collect.", "call_centre")
    ]
    listed = storefront.get(f"{ORDERS}{order_number}/notes/").json()
    assert [n["id"] for n in listed["results"]] == [note["id"]]
    events = storefront.get(f"{ORDERS}{order_number}/events/").json()["results"]
    added = [e for e in events if e["type"] == "note_added"]
    assert len(added) == 1
    assert added[0]["channel"] == "call_centre"
    assert added[0]["actor"] == storefront.user.username
    assert added[0]["reason"] == "Customer called: her sister will collect."
    assert added[0]["data"] == {"note": note["id"], "author_name": "Mika"}


def test_an_associate_of_the_pickup_store_adds_a_note_others_do_not_see_the_order(
    net, order_number, associate, api_client_for
):
    r = api_client(associate).post(
        f"{ORDERS}{order_number}/notes/",
        {"text": "Bag left behind the counter.", "channel": "store"},
        format="json",
    )
    assert r.status_code == 201
    assert OrderNote.objects.get().author == associate
    elsewhere = api_client_for(Role.ASSOCIATE, [LocationFactory(code="OSA-OTHER")])
    r = elsewhere.post(f"{ORDERS}{order_number}/notes/", {"text": "x", "channel": "store"}, format="json")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "unknown_order"
    other_storefront = api_client_for(Role.STOREFRONT)
    r = other_storefront.post(
        f"{ORDERS}{order_number}/notes/", {"text": "x", "channel": "chat"}, format="json"
    )
    assert r.status_code == 404
    assert other_storefront.get(f"{ORDERS}{order_number}/notes/").status_code == 404
    assert OrderNote.objects.count() == 1


def test_notes_need_an_account(order_number, anon_client):
    r = anon_client.post(f"{ORDERS}{order_number}/notes/", {"text": "x", "channel": "web"}, format="json")
    assert r.status_code == 401
    assert OrderNote.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "", "channel": "web"}, "text"),
        ({"text": "   ", "channel": "web"}, "text"),
        ({"channel": "web"}, "text"),
        ({"text": "x" * 2001, "channel": "web"}, "text"),
        ({"text": "fine", "channel": "fax"}, "channel"),
        ({"text": "fine"}, "channel"),
        ({"text": "fine", "channel": "web", "author_name": "n" * 101}, "author_name"),
    ],
)
def test_bad_notes_are_400_and_write_nothing(storefront, order_number, body, field):
    r = storefront.post(f"{ORDERS}{order_number}/notes/", body, format="json")
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "invalid"
    assert field in str(err["details"])
    assert OrderNote.objects.count() == 0
    assert not OrderEvent.objects.filter(type=EventType.NOTE_ADDED).exists()


def test_the_service_checks_its_input_and_the_order(net, associate):
    order = place(("TEE-0", 1), fulfillment=pickup())
    with pytest.raises(InvalidInput):
        services.order_note_add(number=order.number, text="ok", channel="telex", user=associate)
    with pytest.raises(InvalidInput):
        services.order_note_add(number=order.number, text=" ", channel="store", user=associate)
    with pytest.raises(UnknownOrder):
        services.order_note_add(number="NOPE", text="ok", channel="store", user=associate)
    warehouse_elsewhere = make_staff(role=Role.WAREHOUSE, locations=[net.osaka])
    with pytest.raises(UnknownOrder):
        services.order_note_add(number=order.number, text="ok", channel="store", user=warehouse_elsewhere)
    note = services.order_note_add(number=order.number, text=" 2000 ok ", channel="phone", user=associate)
    assert note.text == "2000 ok"
    assert services.order_note_add(number=order.number, text="z" * 2000, channel="email").author is None
