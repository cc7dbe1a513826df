"""Lockers (issue 10): an associate loads a ready pickup into a compartment, the customer is sent the
locker, the compartment and a new code, the locker's controller opens it with the code and the order
is collected. Wrong codes are counted (per compartment, or on the locker's keypad) and lock; every
bad input is a clear 4xx that changes nothing. Through the services and the API."""

import datetime as dt

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from inventory.models import StockLevel, StockMovement
from notifications.models import Notification, NotificationEvent
from orders import selectors, services
from orders.exceptions import (
    AlreadyInLocker,
    CompartmentOccupied,
    InLocker,
    InvalidTransition,
    LockerAtAnotherStore,
    LockerOutOfService,
    LockerPickupOnly,
    NotInLocker,
    UnknownCompartment,
    UnknownLocker,
)
from orders.models import EventType, Fulfillment, OrderEvent
from stores.models import Compartment, PickupPoint, Role
from tests.access.api_probes import snapshot
from tests.factories import make_staff
from tests.orders.conftest import pickup, place

pytestmark = pytest.mark.django_db

F = "/api/v1/fulfillments/"
L = "/api/v1/lockers/"


@pytest.fixture
def lockers(net):
    """SBY-L1 at Shibuya (A1-A3), OSA-L1 at Osaka (B1, B2)."""
    sby = PickupPoint.objects.create(
        code="SBY-L1", store=net.shibuya, name="Shibuya locker", directions="East door"
    )
    osa = PickupPoint.objects.create(code="OSA-L1", store=net.osaka, name="Umeda locker")
    for label in ("A1", "A2", "A3"):
        Compartment.objects.create(pickup_point=sby, label=label)
    for label in ("B1", "B2"):
        Compartment.objects.create(pickup_point=osa, label=label)
    return {"sby": sby, "osa": osa}


@pytest.fixture
def assoc(net):
    return make_staff(role=Role.ASSOCIATE, locations=[net.shibuya])


@pytest.fixture
def osaka_assoc(net):
    return make_staff(role=Role.ASSOCIATE, locations=[net.osaka])


@pytest.fixture
def device(net):
    return make_staff(role=Role.LOCKER, locations=[net.shibuya])


@pytest.fixture
def clients(api_client_for, net):
    return {
        "assoc": api_client_for(Role.ASSOCIATE, [net.shibuya]),
        "osaka": api_client_for(Role.ASSOCIATE, [net.osaka]),
        "device": api_client_for(Role.LOCKER, [net.shibuya]),
        "osaka_device": api_client_for(Role.LOCKER, [net.osaka]),
    }


def ready(user, *, store="TKY-SHIBUYA", method="pickup", sku="TEE-0", email="a@example.com") -> Fulfillment:
    f = place((sku, 1), fulfillment=pickup(store, method=method), email=email).fulfillments.get()
    services.fulfillment_start(fulfillment_id=f.pk, user=None)
    return services.fulfillment_ready(fulfillment_id=f.pk, user=None)


def loaded(user, compartment="A1", locker="SBY-L1", **kw) -> Fulfillment:
    f = ready(user, **kw)
    return services.locker_load(fulfillment_id=f.pk, locker=locker, compartment=compartment, user=user)


def state() -> dict:
    """Every row a refused request must leave alone (tests.access' snapshot) and the compartments."""
    return {**snapshot(), "Compartment": list(Compartment.objects.order_by("pk").values())}


def err(r) -> str:
    return r.json()["error"]["code"]


def post(client, url, body):
    return client.post(url, body, format="json")


def wrong(code: str) -> str:
    return "22222222" if code != "22222222" else "33333333"


# --- The happy path, through the API ----------------------------------------------------------------


def test_load_notify_open_collect_through_the_api(net, lockers, clients):
    f = ready(None)
    counter_code = f.pickup_code
    level = StockLevel.objects.get(location=net.shibuya, sku=net.skus[0])

    r = post(clients["assoc"], f"{F}{f.pk}/locker/", {"locker": "SBY-L1", "compartment": "a2"})
    assert r.status_code == 200, r.content
    assert (r.json()["locker"], r.json()["compartment"], r.json()["status"]) == (
        "SBY-L1",
        "A2",
        "ready_for_pickup",
    )
    assert "pickup_code" not in r.json()
    f.refresh_from_db()
    assert f.pickup_code != counter_code
    assert f.pickup_code_attempts == 0
    event = OrderEvent.objects.get(fulfillment=f, type=EventType.LOCKER_LOADED)
    assert event.data["locker"] == "SBY-L1"
    assert event.data["compartment"] == "A2"
    told = Notification.objects.get(event=NotificationEvent.LOCKER_READY, order=f.order)
    assert told.context["locker_name"] == "Shibuya locker"
    assert told.context["compartment"] == "A2"
    assert told.context["locker_directions"] == "East door"
    assert told.context["pickup_code"].replace("-", "") == f.pickup_code
    # The storefront shows the customer where and the code.
    order = clients["assoc"].get(f"/api/v1/orders/{f.order.number}/").json()
    assert order["fulfillments"][0]["locker"] == "SBY-L1"
    assert order["fulfillments"][0]["compartment"] == "A2"

    listing = clients["assoc"].get(L).json()["results"]
    states = {c["label"]: c["state"] for c in listing[0]["compartments"]}
    assert states == {"A1": "free", "A2": "occupied", "A3": "free"}
    assert listing[0]["free"] == 2

    # The counter's old code opens nothing (counted on the keypad, not on the order).
    r = post(clients["device"], f"{L}SBY-L1/open/", {"pickup_code": counter_code})
    assert (r.status_code, err(r)) == (422, "wrong_pickup_code")

    typed = f"{f.pickup_code[:4].lower()}-{f.pickup_code[4:]}"
    r = post(clients["device"], f"{L}SBY-L1/open/", {"pickup_code": typed})
    assert r.status_code == 200, r.content
    assert r.json() == {"locker": "SBY-L1", "compartment": "A2", "fulfillment": f.pk, "status": "collected"}
    f.refresh_from_db()
    assert f.status == "collected"
    assert f.order.status == "completed"
    assert f.compartment.label == "A2"  # where it was collected from
    collected = OrderEvent.objects.get(fulfillment=f, to_status="collected")
    assert collected.data["locker"] == "SBY-L1"
    assert collected.data["compartment"] == "A2"
    assert collected.actor == clients["device"].user
    assert collected.channel == "locker"
    after = StockLevel.objects.get(pk=level.pk)
    assert (after.on_hand, after.reserved) == (level.on_hand - 1, level.reserved - 1)
    assert StockMovement.objects.filter(reference=f.order.number, reason__contains="SBY-L1").exists()
    assert {c["label"]: c["state"] for c in clients["assoc"].get(L).json()["results"][0]["compartments"]}[
        "A2"
    ] == "free"
    call_command("inventory_audit")  # the ledger agrees with the levels


def test_create_api_user_makes_a_locker_controller(net, capsys):
    call_command("create_api_user", username="locker-sby", role="locker", locations=["TKY-SHIBUYA"])
    out = capsys.readouterr().out
    assert "role locker" in out
    assert "admin login no" in out
    with pytest.raises(Exception, match="works at stores only"):
        call_command("create_api_user", username="locker-wh", role="locker", locations=["WH-KAWASAKI"])
    with pytest.raises(Exception, match="needs at least one"):
        call_command("create_api_user", username="locker-none", role="locker")


# --- Wrong codes ------------------------------------------------------------------------------------


def test_wrong_codes_per_compartment_lock_it_until_a_new_code(net, lockers, assoc, clients):
    f = loaded(assoc, "A3")
    url = f"{L}SBY-L1/open/"
    for attempt in range(1, 6):
        before = StockLevel.objects.get(location=net.shibuya, sku=net.skus[0])
        r = post(clients["device"], url, {"pickup_code": wrong(f.pickup_code), "compartment": "A3"})
        assert (r.status_code, err(r)) == (422, "wrong_pickup_code")
        assert r.json()["error"]["details"]["attempt"] == attempt
        assert r.json()["error"]["details"]["compartment"] == "A3"
        assert StockLevel.objects.get(pk=before.pk) == before
    refused = OrderEvent.objects.filter(fulfillment=f, type=EventType.PICKUP_CODE_REFUSED)
    assert refused.count() == 5
    assert refused.last().data["compartment"] == "A3"
    assert {c["label"]: c["state"] for c in clients["assoc"].get(L).json()["results"][0]["compartments"]}[
        "A3"
    ] == "locked"

    # Locked: the right code too, with or without the compartment.
    for body in ({"pickup_code": f.pickup_code, "compartment": "A3"}, {"pickup_code": f.pickup_code}):
        r = post(clients["device"], url, body)
        assert (r.status_code, err(r)) == (429, "compartment_locked")
    assert Fulfillment.objects.get(pk=f.pk).status == "ready_for_pickup"

    # An associate issues a new code: sent with the locker and compartment; it opens.
    r = post(clients["assoc"], f"{F}{f.pk}/new-pickup-code/", {"reason": "customer called"})
    assert r.status_code == 200
    f.refresh_from_db()
    told = (
        Notification.objects.filter(event=NotificationEvent.LOCKER_READY, order=f.order).order_by("pk").last()
    )
    assert told.context["new_code"] is True
    assert told.context["compartment"] == "A3"
    r = post(clients["device"], url, {"pickup_code": f.pickup_code, "compartment": "A3"})
    assert r.status_code == 200, r.content


def test_keypad_codes_matching_nothing_are_counted_per_locker(net, lockers, assoc, clients, settings):
    settings.OMS = {**settings.OMS, "LOCKER_KEYPAD_FAILURE_LIMIT": 3}
    f = loaded(assoc, "A1")
    before = state()
    url = f"{L}SBY-L1/open/"
    for _ in range(3):
        r = post(clients["device"], url, {"pickup_code": wrong(f.pickup_code)})
        assert (r.status_code, err(r)) == (422, "wrong_pickup_code")
    assert state() == before  # counted in the cache only: no order was tried
    r = post(clients["device"], url, {"pickup_code": f.pickup_code})
    assert (r.status_code, err(r)) == (429, "keypad_locked")
    assert r.json()["error"]["details"]["retry_after_seconds"] > 0
    assert state() == before
    # Another locker's keypad is not affected (nothing there: a plain wrong code).
    r = post(clients["osaka_device"], f"{L}OSA-L1/open/", {"pickup_code": wrong(f.pickup_code)})
    assert (r.status_code, err(r)) == (422, "wrong_pickup_code")
    # Naming the compartment still opens it (limited per compartment instead).
    r = post(clients["device"], url, {"pickup_code": f.pickup_code, "compartment": "A1"})
    assert r.status_code == 200, r.content
    cache.clear()


@pytest.mark.parametrize("with_compartment", [False, True])
def test_a_code_for_another_locker_is_refused_and_changes_nothing(
    net, lockers, assoc, osaka_assoc, clients, with_compartment
):
    here = loaded(assoc, "A1")
    there = loaded(osaka_assoc, "B1", locker="OSA-L1", store="OSA-UMEDA", email="b@example.com")
    before = state()
    body = {"pickup_code": there.pickup_code}
    if with_compartment:
        body["compartment"] = "A1"
    r = post(clients["device"], f"{L}SBY-L1/open/", body)
    assert (r.status_code, err(r)) == (422, "wrong_locker")
    assert state() == before
    assert Fulfillment.objects.get(pk=here.pk).pickup_code_attempts == 0


def test_opening_twice_tells_the_controller_it_is_done(net, lockers, assoc, clients):
    f = loaded(assoc, "A2")
    url = f"{L}SBY-L1/open/"
    assert post(clients["device"], url, {"pickup_code": f.pickup_code}).status_code == 200
    before = state()
    for body in ({"pickup_code": f.pickup_code}, {"pickup_code": f.pickup_code, "compartment": "A2"}):
        r = post(clients["device"], url, body)
        assert (r.status_code, err(r)) == (409, "already_collected")
        assert r.json()["error"]["details"]["compartment"] == "A2"
        assert state() == before


def test_open_refusals_that_change_nothing(net, lockers, assoc, clients):
    f = loaded(assoc, "A1")
    before = state()
    cases = [
        (clients["osaka_device"], "SBY-L1", {"pickup_code": f.pickup_code}, 403, "location_forbidden"),
        (clients["device"], "OSA-L1", {"pickup_code": f.pickup_code}, 403, "location_forbidden"),
        (clients["device"], "NOPE", {"pickup_code": f.pickup_code}, 404, "unknown_locker"),
        (
            clients["device"],
            "SBY-L1",
            {"pickup_code": f.pickup_code, "compartment": "Z9"},
            404,
            "unknown_compartment",
        ),
        (
            clients["device"],
            "SBY-L1",
            {"pickup_code": f.pickup_code, "compartment": "A2"},
            409,
            "compartment_empty",
        ),
        (clients["device"], "SBY-L1", {"pickup_code": " - "}, 400, "invalid"),
        (clients["device"], "SBY-L1", {}, 400, "invalid"),
        (
            clients["assoc"],
            "SBY-L1",
            {"pickup_code": f.pickup_code},
            403,
            "forbidden",
        ),  # staff type at the counter
    ]
    for client, code, body, status, code_ in cases:
        r = post(client, f"{L}{code}/open/", body)
        assert (r.status_code, err(r)) == (status, code_), (code, body, r.content)
    assert state() == before


# --- Loading: bad input -----------------------------------------------------------------------------


def test_load_refusals_change_nothing(net, lockers, assoc, osaka_assoc, clients):
    occupant = loaded(assoc, "A1")
    f = ready(None, email="c@example.com")
    picking = place(("TEE-1", 1), fulfillment=pickup(), email="d@example.com").fulfillments.get()
    services.fulfillment_start(fulfillment_id=picking.pk, user=None)
    ship = place(("TEE-1", 1), email="e@example.com").fulfillments.get()
    curbside = ready(None, method="curbside", email="f@example.com")
    osaka = ready(None, store="OSA-UMEDA", email="g@example.com")
    Compartment.objects.filter(pickup_point=lockers["sby"], label="A3").update(is_active=False)
    before = state()
    cases = [
        ("assoc", f, {"locker": "SBY-L1", "compartment": "A1"}, 409, "compartment_occupied"),
        ("assoc", f, {"locker": "SBY-L1", "compartment": "A3"}, 409, "out_of_service"),
        ("assoc", f, {"locker": "OSA-L1", "compartment": "B1"}, 422, "locker_at_another_store"),
        ("assoc", f, {"locker": "NOPE", "compartment": "A2"}, 404, "unknown_locker"),
        ("assoc", f, {"locker": "SBY-L1", "compartment": "Z9"}, 404, "unknown_compartment"),
        ("assoc", f, {"locker": "SBY-L1"}, 400, "invalid"),
        ("assoc", picking, {"locker": "SBY-L1", "compartment": "A2"}, 409, "invalid_transition"),
        ("assoc", curbside, {"locker": "SBY-L1", "compartment": "A2"}, 422, "locker_pickup_only"),
        ("assoc", occupant, {"locker": "SBY-L1", "compartment": "A2"}, 409, "already_in_locker"),
        (
            "osaka",
            f,
            {"locker": "SBY-L1", "compartment": "A2"},
            404,
            "unknown_fulfillment",
        ),  # another store's
        ("device", f, {"locker": "SBY-L1", "compartment": "A2"}, 403, "forbidden"),  # devices only open
    ]
    for who, target, body, status, code in cases:
        r = post(clients[who], f"{F}{target.pk}/locker/", body)
        assert (r.status_code, err(r)) == (status, code), (who, body, r.content)
    # A ship fulfillment (at the warehouse: the associate cannot see it; the service says why).
    with pytest.raises(LockerPickupOnly):
        services.locker_load(fulfillment_id=ship.pk, locker="SBY-L1", compartment="A2", user=None)
    with pytest.raises(LockerAtAnotherStore):
        services.locker_load(fulfillment_id=osaka.pk, locker="SBY-L1", compartment="A2", user=None)
    from config.errors import Forbidden

    with pytest.raises(Forbidden):
        services.locker_load(fulfillment_id=f.pk, locker="SBY-L1", compartment="A2", user=osaka_assoc)
    assert state() == before


def test_a_locked_compartment_is_occupied(net, lockers, assoc):
    f = loaded(assoc, "A1")
    Fulfillment.objects.filter(pk=f.pk).update(pickup_code_attempts=5)
    other = ready(None, email="z@example.com")
    with pytest.raises(CompartmentOccupied):
        services.locker_load(fulfillment_id=other.pk, locker="SBY-L1", compartment="A1", user=assoc)
    assert [c.label for c in selectors.free_compartments(locker=lockers["sby"])] == ["A2", "A3"]
    lockers["sby"].is_active = False
    lockers["sby"].save()
    assert list(selectors.free_compartments(locker=lockers["sby"])) == []
    with pytest.raises(LockerOutOfService):
        services.locker_load(fulfillment_id=other.pk, locker="SBY-L1", compartment="A2", user=assoc)
    with pytest.raises(UnknownLocker):
        services.locker_load(fulfillment_id=other.pk, locker="SBY-L1\x00", compartment="A2", user=assoc)
    lockers["sby"].is_active = True
    lockers["sby"].save()
    with pytest.raises(UnknownCompartment):
        services.locker_load(fulfillment_id=other.pk, locker="SBY-L1", compartment="A\x002", user=assoc)


# --- Unloading, the counter, expiry, cancellation ----------------------------------------------------


def test_unload_puts_it_back_at_the_counter_where_the_locker_code_works(net, lockers, assoc, clients):
    f = loaded(assoc, "A2")
    r = post(clients["assoc"], f"{F}{f.pk}/collect/", {"pickup_code": f.pickup_code})
    assert (r.status_code, err(r)) == (409, "in_locker")  # the goods are behind the door
    with pytest.raises(InLocker):
        services.fulfillment_collect(fulfillment_id=f.pk, pickup_code=f.pickup_code, user=assoc)
    assert Fulfillment.objects.get(pk=f.pk).pickup_code_attempts == 0  # not counted

    r = post(clients["assoc"], f"{F}{f.pk}/unload/", {"reason": "customer came to the counter"})
    assert r.status_code == 200, r.content
    assert (r.json()["locker"], r.json()["status"]) == (None, "ready_for_pickup")
    ev = OrderEvent.objects.get(fulfillment=f, type=EventType.LOCKER_UNLOADED)
    assert (ev.reason, ev.data["compartment"]) == ("customer came to the counter", "A2")
    assert "A2" in [c.label for c in selectors.free_compartments(locker=lockers["sby"])]
    r = post(clients["device"], f"{L}SBY-L1/open/", {"pickup_code": f.pickup_code, "compartment": "A2"})
    assert (r.status_code, err(r)) == (409, "compartment_empty")
    r = post(clients["assoc"], f"{F}{f.pk}/collect/", {"pickup_code": f.pickup_code})
    assert r.status_code == 200
    assert r.json()["status"] == "collected"

    at_counter = ready(None, email="n@example.com")
    before = state()
    r = post(clients["assoc"], f"{F}{f.pk}/unload/", {})
    assert (r.status_code, err(r)) == (409, "not_in_locker")
    with pytest.raises(NotInLocker):
        services.locker_unload(fulfillment_id=at_counter.pk, user=assoc)
    r = post(clients["osaka"], f"{F}{f.pk}/unload/", {})
    assert r.status_code == 404
    assert Fulfillment.objects.get(pk=f.pk).status == "collected"
    assert state() == before


def test_the_expiry_sweep_leaves_loaded_orders_until_unloaded(net, lockers, assoc):
    f = loaded(assoc, "A1")
    later = timezone.now() + dt.timedelta(days=30)
    assert services.pickups_expire(now=later) == 0
    assert Fulfillment.objects.get(pk=f.pk).status == "ready_for_pickup"
    Fulfillment.objects.filter(pk=f.pk).update(pickup_expires_at=timezone.now() - dt.timedelta(minutes=1))
    views = selectors.locker_list(user=assoc)
    assert {c.compartment.label: c.state for c in views[0].compartments}["A1"] == "unload"
    services.locker_unload(fulfillment_id=f.pk, user=assoc, reason="expired")
    assert services.pickups_expire(now=later) == 1
    f.refresh_from_db()
    assert f.status == "cancelled"
    assert f.order.status == "cancelled"
    assert Notification.objects.filter(order=f.order, event=NotificationEvent.PICKUP_EXPIRED).exists()


def test_an_order_cancelled_in_a_locker_occupies_it_until_unloaded(net, lockers, assoc, clients):
    f = loaded(assoc, "A1")
    services.order_cancel(number=f.order.number, reason="customer cancelled")
    views = selectors.locker_list(user=assoc)
    assert {c.compartment.label: c.state for c in views[0].compartments}["A1"] == "unload"
    other = ready(None, email="o@example.com")
    with pytest.raises(CompartmentOccupied):
        services.locker_load(fulfillment_id=other.pk, locker="SBY-L1", compartment="A1", user=assoc)
    before = state()
    r = post(clients["device"], f"{L}SBY-L1/open/", {"pickup_code": f.pickup_code, "compartment": "A1"})
    assert (r.status_code, err(r)) == (409, "invalid_transition")
    assert state() == before
    services.locker_unload(fulfillment_id=f.pk, user=assoc)
    services.locker_load(fulfillment_id=other.pk, locker="SBY-L1", compartment="A1", user=assoc)
    with pytest.raises(InvalidTransition):
        services.locker_load(fulfillment_id=f.pk, locker="SBY-L1", compartment="A2", user=assoc)
    with pytest.raises(AlreadyInLocker):
        services.locker_load(fulfillment_id=other.pk, locker="SBY-L1", compartment="A2", user=assoc)


def test_locker_list_is_scoped_and_takes_three_queries(
    net, lockers, assoc, clients, django_assert_num_queries
):
    for i, label in enumerate(("A1", "A2")):
        loaded(assoc, label, email=f"q{i}@example.com")
    with django_assert_num_queries(3):
        views = selectors.locker_list(user=assoc)
    assert [v.locker.code for v in views] == ["SBY-L1"]
    assert views[0].count("occupied") == 2
    assert views[0].count("free") == 1
    assert [v["code"] for v in clients["osaka"].get(L).json()["results"]] == ["OSA-L1"]
    assert clients["assoc"].get(f"{L}?store=OSA-UMEDA").json()["results"] == []
    assert clients["assoc"].get(f"{L}?store=NOPE").status_code == 404
    assert clients["device"].get(L).status_code == 403


@pytest.mark.parametrize("language", ["en", "ja", "ko"])
def test_the_locker_message_names_the_locker_compartment_and_code(net, lockers, assoc, language):
    from notifications.services.delivery import notification_render

    f = loaded(assoc, "A3")
    for channel in ("email", "sms"):
        n = Notification.objects.get(event=NotificationEvent.LOCKER_READY, order=f.order, channel="email")
        n.language, n.channel = language, channel
        rendered = notification_render(n)
        text = f"{rendered.subject}\n{rendered.body}"
        assert "Shibuya locker" in text
        assert "A3" in text
        assert f"{f.pickup_code[:4]}-{f.pickup_code[4:]}" in text
    services.pickup_reminders_send(now=f.pickup_remind_at or timezone.now() + dt.timedelta(days=6))
    reminder = Notification.objects.filter(order=f.order, event=NotificationEvent.PICKUP_REMINDER).first()
    reminder.language = language
    assert "A3" in notification_render(reminder).body


def test_the_fulfillment_admin_shows_the_compartment_read_only(net, lockers, assoc, client):
    from django.urls import reverse

    f = loaded(assoc, "A2")
    manager = make_staff(role=Role.MANAGER, locations=[net.shibuya], is_staff=True)
    from stores.services import user_role_groups_sync

    user_role_groups_sync(manager, Role.MANAGER)
    client.force_login(manager)
    url = reverse("admin:orders_fulfillment_change", args=[f.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert "SBY-L1/A2" in page.content.decode()
    assert 'name="compartment"' not in page.content.decode()
