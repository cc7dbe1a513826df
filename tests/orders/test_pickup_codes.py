"""Pickup codes (issue 9, item 8): long, unambiguous, read forgivingly; wrong codes counted per
fulfillment in the database, locked after OMS["PICKUP_CODE_MAX_ATTEMPTS"] until a new code is issued;
every refusal in the timeline; never shown to staff. Through the services, the API and the admin."""

import pytest
from django.db import connection

from config.errors import Forbidden, InvalidTransition
from inventory.models import StockLevel
from notifications.models import Notification, NotificationEvent
from orders import services
from orders.exceptions import PickupCodeLocked, WrongPickupCode
from orders.models import EventType, Fulfillment, Order, OrderEvent
from orders.services.codes import ALPHABET, LENGTH, code_display, code_matches, code_new, code_normalise
from stores.models import Role
from tests.factories import LocationFactory, SkuFactory, make_staff, stock
from tests.orders.conftest import pickup, place
from tests.orders.test_admin import QUEUE, act, login
from tests.orders.test_concurrency import run_threads

pytestmark = pytest.mark.django_db

F = "/api/v1/fulfillments/"


def wrong(code: str) -> str:
    return "22222222" if code != "22222222" else "33333333"


def ready_pickup(associate, email="a@example.com", store="TKY-SHIBUYA", sku="TEE-0") -> Fulfillment:
    f = place((sku, 1), fulfillment=pickup(store), email=email).fulfillments.get()
    services.fulfillment_start(fulfillment_id=f.pk, user=associate)
    return services.fulfillment_ready(fulfillment_id=f.pk, user=associate)


def refusals(f) -> list[OrderEvent]:
    return list(OrderEvent.objects.filter(fulfillment=f, type=EventType.PICKUP_CODE_REFUSED).order_by("pk"))


@pytest.fixture
def max_attempts(settings):
    assert settings.OMS["PICKUP_CODE_MAX_ATTEMPTS"] == 5  # the default the tests below count to
    return 5


# --- The code ------------------------------------------------------------------------------------


def test_codes_are_eight_characters_of_an_unambiguous_alphabet():
    codes = {code_new() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(len(c) == LENGTH == 8 for c in codes)
    used = set("".join(codes))
    assert used <= set(ALPHABET)
    assert not used & set("01OILU")
    assert len(ALPHABET) == 30


@pytest.mark.parametrize(
    "typed",
    [
        "K7QM3XPD",
        "k7qm3xpd",
        "K7QM-3XPD",
        " k7qm 3xpd ",
        "K7QM\u20143XPD",
        "\uff2b\uff17\uff31\uff2d\uff0d\uff13\uff38\uff30\uff24",
    ],
)
def test_typed_codes_are_read_forgivingly(typed):
    assert code_normalise(typed) == "K7QM3XPD"
    assert code_matches(typed, "K7QM3XPD")


@pytest.mark.parametrize("typed", ["", "K7QM3XP", "K7QM3XPDD", "K7QM3XPE", "K7QM3XP0"])
def test_near_misses_do_not_match(typed):
    assert not code_matches(typed, "K7QM3XPD")
    assert not code_matches("K7QM3XPD", "")  # a fulfillment without a code matches nothing


def test_codes_are_shown_to_customers_in_two_groups():
    assert code_display("K7QM3XPD") == "K7QM-3XPD"
    assert code_display("483920") == "483920"  # codes issued before stay as they were


def test_ready_gives_a_new_code_and_collect_accepts_it_as_typed(net, associate):
    f = ready_pickup(associate)
    assert len(f.pickup_code) == 8
    assert f.pickup_code_attempts == 0
    typed = code_display(f.pickup_code).lower()
    services.fulfillment_collect(fulfillment_id=f.pk, pickup_code=typed, user=associate)
    assert Fulfillment.objects.get(pk=f.pk).status == "collected"


def test_a_six_digit_code_issued_before_keeps_working(net, associate):
    f = ready_pickup(associate)
    Fulfillment.objects.filter(pk=f.pk).update(pickup_code="483920")
    with pytest.raises(WrongPickupCode):
        services.fulfillment_collect(fulfillment_id=f.pk, pickup_code="483921", user=associate)
    services.fulfillment_collect(fulfillment_id=f.pk, pickup_code=" 483-920 ", user=associate)
    assert Fulfillment.objects.get(pk=f.pk).status == "collected"


# --- Wrong codes are limited ------------------------------------------------------------------------


def test_wrong_codes_lock_the_code_even_for_the_right_one(net, associate, max_attempts):
    f = ready_pickup(associate)
    left = []
    for _ in range(max_attempts):
        with pytest.raises(WrongPickupCode) as e:
            services.fulfillment_collect(
                fulfillment_id=f.pk, pickup_code=wrong(f.pickup_code), user=associate
            )
        left.append(e.value.details["attempts_left"])
    assert left == [4, 3, 2, 1, 0]
    assert "last try" in e.value.message
    with pytest.raises(PickupCodeLocked) as locked:
        services.fulfillment_collect(fulfillment_id=f.pk, pickup_code=f.pickup_code, user=associate)
    assert locked.value.http_status == 429
    assert locked.value.code == "too_many_attempts"
    assert locked.value.details == {"field": "pickup_code", "attempt": 6, "max_attempts": 5}
    fresh = Fulfillment.objects.get(pk=f.pk)
    assert (fresh.status, fresh.pickup_code_attempts) == ("ready_for_pickup", 6)
    lvl = StockLevel.objects.get(location=net.shibuya, sku=net.skus[0])
    assert (lvl.on_hand, lvl.reserved) == (3, 1)  # nothing handed over


def test_the_limit_is_a_setting(net, associate, settings):
    settings.OMS = {**settings.OMS, "PICKUP_CODE_MAX_ATTEMPTS": 2}
    f = ready_pickup(associate)
    for _ in range(2):
        with pytest.raises(WrongPickupCode):
            services.fulfillment_collect(
                fulfillment_id=f.pk, pickup_code=wrong(f.pickup_code), user=associate
            )
    with pytest.raises(PickupCodeLocked):
        services.fulfillment_collect(fulfillment_id=f.pk, pickup_code=f.pickup_code, user=associate)


def test_every_refusal_is_an_event_in_the_timeline(net, associate, max_attempts):
    f = ready_pickup(associate)
    for _ in range(max_attempts + 1):
        with pytest.raises((WrongPickupCode, PickupCodeLocked)):
            services.fulfillment_collect(
                fulfillment_id=f.pk, pickup_code=wrong(f.pickup_code), user=associate, channel="api"
            )
    events = refusals(f)
    assert [e.data["attempt"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e.data["locked"] for e in events] == [False, False, False, False, True, True]
    assert {(e.actor_id, e.channel, e.order_id) for e in events} == {(associate.pk, "api", f.order_id)}
    assert events[0].reason == "pickup code refused (attempt 1 of 5)"
    assert events[-1].reason == "pickup code refused: locked after 5 wrong codes (attempt 6)"
    assert all(f.pickup_code not in str(e.data) and e.created_at for e in events)


def test_a_transition_refused_is_not_a_wrong_code(net, associate):
    f = ready_pickup(associate)
    services.fulfillment_collect(fulfillment_id=f.pk, pickup_code=f.pickup_code, user=associate)
    with pytest.raises(InvalidTransition):  # already collected: 409 whatever the code
        services.fulfillment_collect(fulfillment_id=f.pk, pickup_code=wrong(f.pickup_code), user=associate)
    assert Fulfillment.objects.get(pk=f.pk).pickup_code_attempts == 0
    assert refusals(f) == []


def test_staff_of_another_store_cannot_try_codes(net, associate):
    f = ready_pickup(associate)
    outsider = make_staff(role=Role.ASSOCIATE, locations=[net.osaka])
    with pytest.raises(Forbidden):
        services.fulfillment_collect(fulfillment_id=f.pk, pickup_code=wrong(f.pickup_code), user=outsider)
    assert Fulfillment.objects.get(pk=f.pk).pickup_code_attempts == 0


def test_a_new_code_unlocks_and_the_old_one_stops_working(net, associate, max_attempts):
    f = ready_pickup(associate)
    old = f.pickup_code
    for _ in range(max_attempts):
        with pytest.raises(WrongPickupCode):
            services.fulfillment_collect(fulfillment_id=f.pk, pickup_code=wrong(old), user=associate)
    f = services.pickup_code_reissue(fulfillment_id=f.pk, user=associate, channel="admin", reason="locked")
    assert f.pickup_code != old
    assert len(f.pickup_code) == 8
    assert f.pickup_code_attempts == 0
    issued = OrderEvent.objects.get(fulfillment=f, type=EventType.PICKUP_CODE_ISSUED)
    assert (issued.actor, issued.channel, issued.reason) == (associate, "admin", "locked")
    assert issued.data == {"location": "TKY-SHIBUYA", "refused_before": 5}
    with pytest.raises(WrongPickupCode) as e:
        services.fulfillment_collect(fulfillment_id=f.pk, pickup_code=old, user=associate)
    assert e.value.details["attempts_left"] == 4  # the count started again
    services.fulfillment_collect(fulfillment_id=f.pk, pickup_code=f.pickup_code, user=associate)
    assert Fulfillment.objects.get(pk=f.pk).status == "collected"


def test_the_new_code_is_sent_to_the_customer(net, associate):
    f = ready_pickup(associate)
    f = services.pickup_code_reissue(fulfillment_id=f.pk, user=associate)
    sent = Notification.objects.filter(event=NotificationEvent.READY_FOR_PICKUP).order_by("pk")
    assert [n.context["new_code"] for n in sent] == [False, True]
    assert sent.last().context["pickup_code"] == code_display(f.pickup_code)
    assert sent.last().recipient == "a@example.com"


def test_a_new_code_only_for_a_fulfillment_waiting_at_the_counter(net, associate):
    f = place(("TEE-0", 1), fulfillment=pickup()).fulfillments.get()
    with pytest.raises(InvalidTransition):
        services.pickup_code_reissue(fulfillment_id=f.pk, user=associate)
    outsider = make_staff(role=Role.ASSOCIATE, locations=[net.osaka])
    ready = ready_pickup(associate, email="b@example.com", sku="TEE-1")
    with pytest.raises(Forbidden):
        services.pickup_code_reissue(fulfillment_id=ready.pk, user=outsider)


# --- The count commits although the request fails -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_refusal_stays_counted_after_the_request_failed(net, associate):
    """No test transaction around it: the refusal's own transaction committed before the error."""
    f = ready_pickup(associate)
    with pytest.raises(WrongPickupCode):
        services.fulfillment_collect(fulfillment_id=f.pk, pickup_code=wrong(f.pickup_code), user=associate)
    assert not connection.in_atomic_block
    assert Fulfillment.objects.get(pk=f.pk).pickup_code_attempts == 1
    assert len(refusals(f)) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_codes_each_count():
    store = LocationFactory(code="ST-CODES", offers_pickup=True)
    stock(store, SkuFactory(code="CODES"), 5)
    associate = make_staff(role=Role.ASSOCIATE, locations=[store])
    f = ready_pickup(associate, store="ST-CODES", sku="CODES")

    def try_wrong(i):
        try:
            services.fulfillment_collect(
                fulfillment_id=f.pk, pickup_code=wrong(f.pickup_code), user=associate
            )
        except WrongPickupCode as e:
            return ("422", e.details["attempt"])
        except PickupCodeLocked as e:
            return ("429", e.details["attempt"])
        return ("200", None)

    results = run_threads(8, try_wrong)
    assert sorted(n for _, n in results) == list(range(1, 9))
    assert sorted(code for code, _ in results) == ["422"] * 5 + ["429"] * 3
    assert Fulfillment.objects.get(pk=f.pk).pickup_code_attempts == 8
    assert sorted(e.data["attempt"] for e in refusals(f)) == list(range(1, 9))


# --- Through the API ---------------------------------------------------------------------------------


def served_by(storefront, f: Fulfillment) -> None:
    """The storefront reads only orders of customers it serves (docs/security.md): it placed this one."""
    Order.objects.filter(pk=f.order_id).update(placed_by=storefront.user)


def _err(resp, status, code):
    assert resp.status_code == status, resp.content
    assert set(resp.json()["error"]) == {"code", "message", "details"}
    assert resp.json()["error"]["code"] == code
    return resp.json()["error"]


def test_the_lock_through_the_api(net, associate, storefront, api_client_for, max_attempts):
    f = ready_pickup(associate)
    number = f.order.number
    served_by(storefront, f)
    assoc = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    code = storefront.get(f"/api/v1/orders/{number}/").json()["fulfillments"][0]["pickup_code"]
    for left in (4, 3, 2, 1, 0):
        r = assoc.post(f"{F}{f.pk}/collect/", {"pickup_code": wrong(code)}, format="json")
        assert _err(r, 422, "wrong_pickup_code")["details"]["attempts_left"] == left
    r = assoc.post(f"{F}{f.pk}/collect/", {"pickup_code": code}, format="json")
    error = _err(r, 429, "too_many_attempts")
    assert error["details"] == {"field": "pickup_code", "attempt": 6, "max_attempts": 5}
    assert "Retry-After" not in r  # waiting does not help: a new code does
    detail = assoc.get(f"{F}{f.pk}/").json()
    assert (detail["status"], detail["pickup_code_attempts"]) == ("ready_for_pickup", 6)
    assert "pickup_code" not in detail
    timeline = storefront.get(f"/api/v1/orders/{number}/events/").json()["results"]
    refused = [e for e in timeline if e["type"] == "pickup_code_refused"]
    assert [(e["data"]["attempt"], e["actor"], e["channel"]) for e in refused] == [
        (n, assoc.user.username, "api") for n in range(1, 7)
    ]

    r = assoc.post(f"{F}{f.pk}/new-pickup-code/", {"reason": "customer locked out"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["pickup_code_attempts"] == 0
    assert "pickup_code" not in r.json()
    new = storefront.get(f"/api/v1/orders/{number}/").json()["fulfillments"][0]["pickup_code"]
    assert new != code
    _err(assoc.post(f"{F}{f.pk}/collect/", {"pickup_code": code}, format="json"), 422, "wrong_pickup_code")
    r = assoc.post(f"{F}{f.pk}/collect/", {"pickup_code": code_display(new).lower()}, format="json")
    assert r.json()["status"] == "collected"


def test_the_code_is_shown_to_the_storefront_only(
    net, associate, storefront, api_client_for, django_user_model
):
    f = ready_pickup(associate)
    number = f.order.number
    served_by(storefront, f)
    assert (
        storefront.get(f"/api/v1/orders/{number}/").json()["fulfillments"][0]["pickup_code"] == f.pickup_code
    )
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    from tests.conftest import _client_for

    for client in (
        _client_for(admin),
        api_client_for(Role.ASSOCIATE, locations=[net.shibuya]),
        api_client_for(Role.MANAGER, locations=[net.shibuya]),
    ):
        order = client.get(f"/api/v1/orders/{number}/").json()
        assert "pickup_code" not in order["fulfillments"][0]
        listed = client.get("/api/v1/orders/").json()["results"]
        assert all("pickup_code" not in fl for o in listed for fl in o["fulfillments"])
        assert f.pickup_code not in client.get(f"{F}{f.pk}/").content.decode()
        assert f.pickup_code not in client.get(f"{F}?location=TKY-SHIBUYA").content.decode()


def test_new_pickup_code_over_the_api_is_for_staff_at_the_store(net, associate, storefront, api_client_for):
    f = ready_pickup(associate)
    assert storefront.post(f"{F}{f.pk}/new-pickup-code/", {}, format="json").status_code == 403
    elsewhere = api_client_for(Role.ASSOCIATE, locations=[net.osaka])
    assert elsewhere.post(f"{F}{f.pk}/new-pickup-code/", {}, format="json").status_code == 404
    assert Fulfillment.objects.get(pk=f.pk).pickup_code == f.pickup_code
    pending = place(("TEE-1", 1), fulfillment=pickup(), email="b@example.com").fulfillments.get()
    assoc = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    _err(assoc.post(f"{F}{pending.pk}/new-pickup-code/", {}, format="json"), 409, "invalid_transition")


# --- Through the admin -----------------------------------------------------------------------------


def test_the_lock_through_the_admin(net, associate, max_attempts):
    f = ready_pickup(associate)
    client = login(associate)
    for _ in range(max_attempts):
        r = act(client, "collect", [f.pk], pickup_code=wrong(f.pickup_code))
        assert "pickup code does not match" in r.content.decode()
    r = act(client, "collect", [f.pk], pickup_code=f.pickup_code)
    assert "Too many wrong pickup codes" in r.content.decode()
    assert Fulfillment.objects.get(pk=f.pk).status == "ready_for_pickup"
    assert [e.channel for e in refusals(f)] == ["admin"] * 6
    page = client.get(f"{QUEUE}{f.pk}/change/").content.decode()
    assert "Pickup code attempts" in page
    assert f.pickup_code not in page

    r = act(client, "new_pickup_code", [f.pk])
    assert "New pickup code sent to the customer: 1" in r.content.decode()
    f.refresh_from_db()
    assert f.pickup_code_attempts == 0
    assert f.pickup_code not in r.content.decode()
    act(client, "collect", [f.pk], pickup_code=code_display(f.pickup_code))
    assert Fulfillment.objects.get(pk=f.pk).status == "collected"


def test_the_admin_collects_one_fulfillment_at_a_time(net, associate):
    a = ready_pickup(associate)
    b = ready_pickup(associate, email="b@example.com", sku="TEE-1")
    r = act(login(associate), "collect", [a.pk, b.pk], pickup_code=a.pickup_code)
    assert "Collect one fulfillment at a time" in r.content.decode()
    assert set(
        Fulfillment.objects.filter(pk__in=[a.pk, b.pk]).values_list("status", "pickup_code_attempts")
    ) == {("ready_for_pickup", 0)}


@pytest.mark.parametrize("language", ["en", "ja", "ko"])
@pytest.mark.parametrize("channel", ["email", "sms"])
def test_the_ready_message_says_when_the_code_is_new(language, channel):
    from notifications.services.delivery import notification_render

    context = {"order_number": "ORD-1", "store_name": "Shibuya", "pickup_code": "K7QM-3XPD"}
    first = notification_render(
        Notification(
            event="ready_for_pickup",
            channel=channel,
            language=language,
            context={**context, "new_code": False},
        )
    )
    again = notification_render(
        Notification(
            event="ready_for_pickup",
            channel=channel,
            language=language,
            context={**context, "new_code": True},
        )
    )
    assert "K7QM-3XPD" in first.body
    assert "K7QM-3XPD" in again.body
    assert again.body != first.body
    marker = {
        ("sms", "en"): "New pickup code",
        ("email", "en"): "earlier codes no longer work",
        ("sms", "ja"): "新しい受取コード",
        ("email", "ja"): "以前のコードは使えません",
        ("sms", "ko"): "새 코드",
        ("email", "ko"): "이전 코드는",
    }[(channel, language)]
    assert marker in again.body
    assert marker not in first.body
