"""One probe per row of the API table: the request a role sends for an object of a side, and how
to tell that it went through.

    call = API_PROBES["GET /orders/{number}/"](world, role, side)

`side` is "own" or "other" for own/served/owner cells; an `all` cell is probed with the other
object (allowed everywhere, so the far one is the stronger check) and a `-` cell with the own one
(refused even there). Each probe builds what its request changes (a fulfillment in the state the
step needs) in the test's savepoint, so an allowed request gets its 2xx; `state_ok` names the
status the doc's "Cells" lets count as allowed where the role's own location cannot hold such an
object at all (a warehouse has no curbside orders, no pickups).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils import timezone

from inventory.models import Hold, StockLevel, Transfer, TransferStatus
from notifications.models import BackInStockSubscription, WebhookEndpoint
from orders.models import Customer, Fulfillment, Order, OrderNote
from returns.models import Refund, Return, ReturnNote

from .world import WEBHOOK_URL, World, address_at

API = "/api/v1"
_keys = itertools.count(1)


@dataclass
class Call:
    method: str
    url: str
    body: dict | None = None
    ok: tuple[int, ...] = (200,)
    # Allowed by the doc's "Cells" though not 2xx: the object's state (409) or the request's kind
    # (422) where the role's location can have no object the request fits.
    state_ok: tuple[int, ...] = ()
    # Lists: is the probed object among the results? (allowed: yes; another location's: no)
    listed: Callable[[dict | list], bool] | None = None
    # Allowed: what must have changed (or been shown). Given the response.
    effect: Callable[[object], None] | None = None
    headers: dict = field(default_factory=dict)

    @property
    def write(self) -> bool:
        return self.method != "GET"


def results(data) -> list:
    return data["results"] if isinstance(data, dict) and "results" in data else data


def _in(key: str, value) -> Callable:
    return lambda data: any(str(item.get(key)) == str(value) for item in results(data))


def _loc_key(w: World, loc) -> str:
    return next(k for k, v in w.loc.items() if v.pk == loc.pk)


def _level(loc, sku) -> StockLevel:
    return StockLevel.objects.get(location=loc, sku=sku)


def _prefer(role: str) -> str:
    return "W" if role == "warehouse" else "S"


def _transfer(w: World, role: str, side: str) -> Transfer:
    if side == "other":
        return w.transfers["other"]
    return w.transfers["to_W1" if role == "warehouse" else "to_S1"]


def _fulfillment(w: World, role: str, side: str) -> Fulfillment:
    return w.order_for(role, side).fulfillments.get()


def _step_fulfillment(w: World, role: str, side: str, *, method: str, state: str) -> tuple[Fulfillment, bool]:
    """A fresh fulfillment for a step at the role's (other) location: (fulfillment, fits).

    method "any": curbside at a store, ship at a warehouse. A pickup-only step (ready, collect) at a
    warehouse gets a ship fulfillment, for there are no pickups there: fits is False."""
    loc = w.loc_for(role, side, _prefer(role))
    at = _loc_key(w, loc)
    fits = True
    if at.startswith("W") and method != "ship":
        fits = method == "any"
        method, state = "ship", {"ready_for_pickup": "packed"}.get(state, state)
    elif method == "any":
        method = "curbside"
    return w.fresh_fulfillment(side=side, at=at, method=method, state=state), fits


# --- reads open to every role ------------------------------------------------------------------


def locations_list(w, role, side):
    loc = w.loc_for(role, side)
    return Call("GET", f"{API}/locations/?page_size=200", listed=_in("code", loc.code))


def location_detail(w, role, side):
    return Call("GET", f"{API}/locations/{w.loc_for(role, side).code}/")


def location_stock(w, role, side):
    return Call("GET", f"{API}/locations/{w.loc_for(role, side).code}/stock/", listed=_in("sku", w.sku.code))


def skus_list(w, role, side):
    return Call("GET", f"{API}/skus/?page_size=200", listed=_in("code", w.sku.code))


def sku_detail(w, role, side):
    return Call("GET", f"{API}/skus/{w.sku.code}/")


def availability(w, role, side):
    return Call("GET", f"{API}/availability/{w.sku.code}/")


def availability_check(w, role, side):
    body = {
        "lines": [{"sku": w.sku.code, "quantity": 1}],
        "fulfillment": {"method": "ship", "address": address_at("W2")},
    }
    return Call("POST", f"{API}/availability/check/", body)


# --- stock ----------------------------------------------------------------------------------------


def stock_receipts(w, role, side):
    loc = w.loc_for(role, side, _prefer(role))
    before = _level(loc, w.sku).on_hand

    def effect(r):
        assert _level(loc, w.sku).on_hand == before + 1

    body = {"location": loc.code, "lines": [{"sku": w.sku.code, "quantity": 1}], "reference": "matrix"}
    return Call("POST", f"{API}/stock/receipts/", body, ok=(201,), effect=effect)


def stock_adjustments(w, role, side):
    loc = w.loc_for(role, side, _prefer(role))
    before = _level(loc, w.sku).on_hand

    def effect(r):
        assert _level(loc, w.sku).on_hand == before + 1

    body = {"location": loc.code, "sku": w.sku.code, "delta": 1, "reason": "found one"}
    return Call("POST", f"{API}/stock/adjustments/", body, ok=(201,), effect=effect)


def stock_safety(w, role, side):
    loc = w.loc_for(role, side, _prefer(role))

    def effect(r):
        assert _level(loc, w.sku).safety_stock == 3

    body = {"location": loc.code, "sku": w.sku.code, "safety_stock": 3}
    return Call("POST", f"{API}/stock/safety/", body, effect=effect)


def stock_safety_put(w, role, side):
    """PUT /stock/safety/: the same call as POST (for when the table lists it)."""
    call = stock_safety(w, role, side)
    call.method = "PUT"
    return call


def transfers_list(w, role, side):
    t = _transfer(w, role, side)
    return Call("GET", f"{API}/stock/transfers/?page_size=200", listed=_in("id", t.pk))


def transfers_create(w, role, side):
    source = w.loc_for(role, side, _prefer(role))
    # To a location that is not the user's either: the new transfer is own or other by its source only.
    dest = w.loc["S2"] if source.code.endswith("W2") else w.loc["W2"]
    if side == "own" and role == "associate":
        dest = w.loc["S2"]
    count = Transfer.objects.count()

    def effect(r):
        assert Transfer.objects.count() == count + 1
        t = Transfer.objects.get(pk=r.json()["id"])
        assert (t.from_location_id, t.to_location_id, t.status) == (
            source.pk,
            dest.pk,
            TransferStatus.IN_TRANSIT,
        )

    body = {
        "from_location": source.code,
        "to_location": dest.code,
        "lines": [{"sku": w.sku.code, "quantity": 1}],
        "reference": "matrix",
    }
    return Call("POST", f"{API}/stock/transfers/", body, ok=(201,), effect=effect)


def transfer_detail(w, role, side):
    return Call("GET", f"{API}/stock/transfers/{_transfer(w, role, side).pk}/")


def transfer_receive(w, role, side):
    t = _transfer(w, role, side)

    def effect(r):
        assert Transfer.objects.get(pk=t.pk).status == TransferStatus.RECEIVED

    return Call("POST", f"{API}/stock/transfers/{t.pk}/receive/", {}, effect=effect)


def movements_list(w, role, side):
    m = w.movements[_loc_key(w, w.loc_for(role, side, _prefer(role)))]
    return Call("GET", f"{API}/stock/movements/?page_size=200", listed=_in("id", m.pk))


# --- orders ---------------------------------------------------------------------------------------


def orders_create(w, role, side):
    key = f"matrix-{next(_keys)}"
    count = Order.objects.count()
    if role in ("storefront", "warehouse"):
        body = {
            "channel": "web",
            "customer": {"email": f"matrix-{key}@example.com", "name": "Matrix"},
            "fulfillment": {"method": "ship", "address": address_at("W2")},
            "lines": [{"sku": w.sku.code, "quantity": 1, "unit_price": "1980.00"}],
            "currency": "JPY",
        }
        till = None
    else:  # a till order at a store
        till = w.loc_for(role, side)
        body = {
            "channel": "store",
            "placed_at": till.code,
            "customer": {"phone": "+819033330003"},
            "fulfillment": {"method": "ship", "address": address_at(_loc_key(w, till))},
            "lines": [{"sku": w.sku.code, "quantity": 1, "unit_price": "1980.00"}],
            "currency": "JPY",
        }

    def effect(r):
        assert Order.objects.count() == count + 1
        order = Order.objects.get(number=r.json()["number"])
        assert order.placed_by_id == w.users[role].pk
        if till is not None:
            assert order.placed_at_location_id == till.pk

    return Call(
        "POST", f"{API}/orders/", body, ok=(201,), effect=effect, headers={"HTTP_IDEMPOTENCY_KEY": key}
    )


def orders_list(w, role, side):
    order = w.order_for(role, side)
    return Call("GET", f"{API}/orders/?page_size=200", listed=_in("number", order.number))


def order_detail(w, role, side):
    order = w.order_for(role, side)

    def effect(r):
        assert r.json()["number"] == order.number

    return Call("GET", f"{API}/orders/{order.number}/", effect=effect)


def order_events(w, role, side):
    return Call("GET", f"{API}/orders/{w.order_for(role, side).number}/events/")


def order_cancel(w, role, side):
    order = w.order_for(role, side)

    def effect(r):
        assert Order.objects.get(pk=order.pk).status == "cancelled"

    return Call("POST", f"{API}/orders/{order.number}/cancel/", {"reason": "matrix"}, effect=effect)


def order_arrived(w, role, side):
    order = w.order_for(role, side)  # the curbside orders at S1/S2; ship orders at W1/W2

    def effect(r):
        assert order.fulfillments.get().customer_arrived_at is not None

    state_ok = (422,) if order.fulfillment_method != "curbside" else ()
    return Call(
        "POST",
        f"{API}/orders/{order.number}/arrived/",
        {"note": "blue car"},
        effect=effect,
        state_ok=state_ok,
    )


def order_notes(w, role, side):
    key = _loc_key(w, w.loc_for(role, side))
    note = w.notes[key]

    def effect(r):
        assert note.pk in [n["id"] for n in results(r.json())], "the order's note is not listed"

    return Call("GET", f"{API}/orders/{w.orders[key].number}/notes/?page_size=200", effect=effect)


def order_note_add(w, role, side):
    order = w.order_for(role, side)
    count = OrderNote.objects.filter(order=order).count()

    def effect(r):
        assert OrderNote.objects.filter(order=order).count() == count + 1
        note = OrderNote.objects.get(pk=r.json()["id"])
        assert (note.author_id, note.text) == (w.users[role].pk, "matrix note")

    body = {"text": "matrix note", "channel": "phone", "author_name": "Help desk"}
    return Call("POST", f"{API}/orders/{order.number}/notes/", body, ok=(201,), effect=effect)


# --- fulfillments ----------------------------------------------------------------------------------


def fulfillments_list(w, role, side):
    f = _fulfillment(w, role, side)
    return Call("GET", f"{API}/fulfillments/?page_size=200", listed=_in("id", f.pk))


def fulfillment_detail(w, role, side):
    return Call("GET", f"{API}/fulfillments/{_fulfillment(w, role, side).pk}/")


def fulfillment_claim(w, role, side):
    loc = w.loc_for(role, side, _prefer(role))
    user = w.users[role]

    def effect(r):  # the world has a pending fulfillment at every location: 200, not 204
        f = Fulfillment.objects.get(pk=r.json()["id"])
        assert (f.location_id, f.claimed_by_id, f.status) == (loc.pk, user.pk, "picking")

    return Call("POST", f"{API}/fulfillments/claim/", {"location": loc.code}, effect=effect)


def _step(url_step: str, *, method: str, state: str, to: str, body=None):
    def probe(w, role, side):
        f, fits = _step_fulfillment(w, role, side, method=method, state=state)
        data = body(f) if callable(body) else (body or {})

        def effect(r):
            now = Fulfillment.objects.get(pk=f.pk)
            assert to(now) if callable(to) else now.status == to, f"the step did not happen: {now.status}"

        return Call(
            "POST",
            f"{API}/fulfillments/{f.pk}/{url_step}/",
            data,
            effect=effect,
            state_ok=() if fits else (409,),
        )

    return probe


def new_pickup_code(w, role, side):
    """A ready pickup gets a new code (the old one stops working, wrong tries start again)."""
    f, fits = _step_fulfillment(w, role, side, method="curbside", state="ready_for_pickup")
    before = f.pickup_code

    def effect(r):
        assert Fulfillment.objects.get(pk=f.pk).pickup_code not in (before, ""), "no new code"

    return Call(
        "POST",
        f"{API}/fulfillments/{f.pk}/new-pickup-code/",
        {"reason": "matrix"},
        effect=effect,
        state_ok=() if fits else (409,),
    )


# --- lockers ---------------------------------------------------------------------------------------


def _store_side(w: World, role: str, side: str) -> str:
    """The store ("S1"/"S2") of the role's side: lockers are at stores only (a warehouse's side is
    the store of the same side; those roles are refused by role anyway)."""
    return "S1" if _loc_key(w, w.loc_for(role, side)) in ("S1", "W1") else "S2"


def locker_load(w, role, side):
    at = _store_side(w, role, side)
    f = w.fresh_fulfillment(side=side, at=at, method="pickup", state="ready_for_pickup")
    locker = w.lockers[at]
    label = locker.compartments.order_by("label").values_list("label", flat=True).last()

    def effect(r):
        now = Fulfillment.objects.get(pk=f.pk)
        assert now.compartment is not None
        assert (now.compartment.pickup_point_id, now.compartment.label) == (locker.pk, label)
        assert r.json()["locker"] == locker.code

    body = {"locker": locker.code, "compartment": label}
    return Call("POST", f"{API}/fulfillments/{f.pk}/locker/", body, effect=effect)


def locker_unload(w, role, side):
    at = _store_side(w, role, side)
    f = w.fresh_fulfillment(side=side, at=at, method="pickup", state="in_locker")

    def effect(r):
        now = Fulfillment.objects.get(pk=f.pk)
        assert (now.compartment_id, now.status) == (None, "ready_for_pickup")

    return Call("POST", f"{API}/fulfillments/{f.pk}/unload/", {"reason": "matrix"}, effect=effect)


def lockers_list(w, role, side):
    locker = w.lockers[_store_side(w, role, side)]
    return Call("GET", f"{API}/lockers/?page_size=200", listed=_in("code", locker.code))


def locker_open(w, role, side):
    at = _store_side(w, role, side)
    f = w.fresh_fulfillment(side=side, at=at, method="pickup", state="in_locker")
    locker = w.lockers[at]

    def effect(r):
        now = Fulfillment.objects.get(pk=f.pk)
        assert now.status == "collected"
        assert r.json()["compartment"] == now.compartment.label

    return Call("POST", f"{API}/lockers/{locker.code}/open/", {"pickup_code": f.pickup_code}, effect=effect)


# --- refunds --------------------------------------------------------------------------------------


def _refund(w: World, role: str, side: str) -> Refund:
    """The refund of an order at the role's location (own) or elsewhere (other), like w.order_for."""
    return w.refunds[_loc_key(w, w.loc_for(role, side))]


def refunds_list(w, role, side):
    return Call("GET", f"{API}/refunds/?page_size=200", listed=_in("id", _refund(w, role, side).pk))


def refund_detail(w, role, side):
    refund = _refund(w, role, side)

    def effect(r):
        assert r.json()["id"] == refund.pk

    return Call("GET", f"{API}/refunds/{refund.pk}/", effect=effect)


def refund_complete(w, role, side):
    refund = _refund(w, role, side)

    def effect(r):
        now = Refund.objects.get(pk=refund.pk)
        assert (now.status, now.reference) == ("completed", "PAY-MATRIX")

    return Call("POST", f"{API}/refunds/{refund.pk}/complete/", {"reference": "PAY-MATRIX"}, effect=effect)


def refund_fail(w, role, side):
    refund = _refund(w, role, side)

    def effect(r):
        now = Refund.objects.get(pk=refund.pk)
        assert (now.status, now.failure_reason) == ("failed", "card expired")

    return Call("POST", f"{API}/refunds/{refund.pk}/fail/", {"reason": "card expired"}, effect=effect)


# --- returns --------------------------------------------------------------------------------------


def _return(w: World, role: str, side: str) -> Return:
    """The return expected at the role's location (own) or elsewhere (other); a warehouse's: a mail return."""
    return w.returns[_loc_key(w, w.loc_for(role, side, _prefer(role)))]


def returns_create(w, role, side):
    """The storefront asks for an order of its customer (own) or another account's (other), with the
    order's email as proof; a desk asks at its store (own) or another (other)."""
    loc = w.loc_for(role, side)
    at = _loc_key(w, loc)
    if at.startswith("W"):
        at = "S1" if side == "own" else "S2"
    order = w.delivered(side=side, at=at)
    body = {
        "order": order.number,
        "lines": [{"sku": w.sku.code, "quantity": 1, "reason": "wrong_size"}],
        "method": "in_store",
    }
    if role == "storefront":
        body["email"] = order.contact_email
    else:
        body["location"] = w.loc[at].code
    count = Return.objects.count()

    def effect(r):
        assert Return.objects.count() == count + 1
        ret = Return.objects.get(number=r.json()["number"])
        assert (ret.order_id, ret.status) == (order.pk, "requested")

    return Call("POST", f"{API}/returns/", body, ok=(201,), effect=effect)


def returns_list(w, role, side):
    return Call("GET", f"{API}/returns/?page_size=200", listed=_in("number", _return(w, role, side).number))


def return_detail(w, role, side):
    ret = _return(w, role, side)

    def effect(r):
        assert r.json()["number"] == ret.number

    return Call("GET", f"{API}/returns/{ret.number}/", effect=effect)


def return_cancel(w, role, side):
    ret = w.returns[_loc_key(w, w.loc_for(role, side))]

    def effect(r):
        assert Return.objects.get(pk=ret.pk).status == "cancelled"

    return Call("POST", f"{API}/returns/{ret.number}/cancel/", {"reason": "matrix"}, effect=effect)


def return_receive(w, role, side):
    ret = _return(w, role, side)
    loc = w.loc_for(role, side, _prefer(role))

    def effect(r):
        now = Return.objects.get(pk=ret.pk)
        assert (now.status, now.received_at_location_id) == ("received", loc.pk)

    body = {"location": loc.code, "lines": [{"sku": w.sku.code, "quantity": 1, "condition": "resellable"}]}
    return Call("POST", f"{API}/returns/{ret.number}/receive/", body, effect=effect)


def return_note_add(w, role, side):
    ret = _return(w, role, side)
    count = ReturnNote.objects.filter(ret=ret).count()

    def effect(r):
        assert ReturnNote.objects.filter(ret=ret).count() == count + 1
        assert ReturnNote.objects.get(pk=r.json()["id"]).author_id == w.users[role].pk

    body = {"text": "matrix note", "channel": "chat", "author_name": "Help desk"}
    return Call("POST", f"{API}/returns/{ret.number}/notes/", body, ok=(201,), effect=effect)


# --- holds, customers, subscriptions, webhooks -----------------------------------------------------


def holds_create(w, role, side):
    count = Hold.objects.count()

    def effect(r):
        assert Hold.objects.count() == count + 1
        assert Hold.objects.get(pk=r.json()["id"]).created_by_id == w.users[role].pk

    body = {
        "lines": [{"sku": w.sku.code, "quantity": 1}],
        "fulfillment": {"method": "ship", "address": address_at("W2")},
    }
    return Call("POST", f"{API}/holds/", body, ok=(201,), effect=effect)


def _hold(w, role, side) -> Hold:
    return w.holds[w.user_key(role, side)]


def hold_detail(w, role, side):
    hold = _hold(w, role, side)

    def effect(r):
        assert r.json()["id"] == str(hold.pk)

    return Call("GET", f"{API}/holds/{hold.pk}/", effect=effect)


def hold_extend(w, role, side):
    hold = _hold(w, role, side)
    before = Hold.objects.get(pk=hold.pk).expires_at

    def effect(r):
        after = Hold.objects.get(pk=hold.pk).expires_at
        assert after > before
        assert after > timezone.now()

    return Call("POST", f"{API}/holds/{hold.pk}/extend/", {"ttl_seconds": 1800}, effect=effect)


def hold_delete(w, role, side):
    hold = _hold(w, role, side)

    def effect(r):
        assert not Hold.objects.filter(pk=hold.pk).exists()

    return Call("DELETE", f"{API}/holds/{hold.pk}/", ok=(204,), effect=effect)


def customer_detail(w, role, side):
    c = w.customers[side]

    def effect(r):
        assert r.json()["id"] == c.pk

    return Call("GET", f"{API}/customers/{c.pk}/", effect=effect)


def customer_preferences(w, role, side):
    c = w.customers[side]

    def effect(r):
        assert Customer.objects.get(pk=c.pk).language == "ko"

    return Call("PATCH", f"{API}/customers/{c.pk}/preferences/", {"language": "ko"}, effect=effect)


def back_in_stock(w, role, side):
    email = f"bis-{role.replace(' ', '-')}@example.com"

    def effect(r):
        assert BackInStockSubscription.objects.filter(email=email).exists()

    return Call(
        "POST", f"{API}/back-in-stock/", {"sku": w.sku.code, "email": email}, ok=(201,), effect=effect
    )


def _webhook(w, role, side) -> WebhookEndpoint:
    return w.webhooks[w.user_key(role, side)]


def webhooks_list(w, role, side):
    return Call("GET", f"{API}/webhooks/?page_size=200", listed=_in("id", _webhook(w, role, side).pk))


def webhooks_create(w, role, side):
    count = WebhookEndpoint.objects.count()

    def effect(r):
        assert WebhookEndpoint.objects.count() == count + 1
        assert WebhookEndpoint.objects.get(pk=r.json()["id"]).owner_id == w.users[role].pk

    body = {"url": WEBHOOK_URL, "events": ["order.placed"]}
    return Call("POST", f"{API}/webhooks/", body, ok=(201,), effect=effect)


def webhook_detail(w, role, side):
    return Call("GET", f"{API}/webhooks/{_webhook(w, role, side).pk}/")


def webhook_delete(w, role, side):
    hook = _webhook(w, role, side)

    def effect(r):
        assert WebhookEndpoint.objects.get(pk=hook.pk).is_deleted

    return Call("DELETE", f"{API}/webhooks/{hook.pk}/", ok=(204,), effect=effect)


API_PROBES: dict[str, Callable[[World, str, str], Call]] = {
    "GET /locations/": locations_list,
    "GET /locations/{code}/": location_detail,
    "GET /locations/{code}/stock/": location_stock,
    "GET /skus/": skus_list,
    "GET /skus/{code}/": sku_detail,
    "GET /availability/{sku}/": availability,
    "POST /availability/check/": availability_check,
    "POST /stock/receipts/": stock_receipts,
    "POST /stock/adjustments/": stock_adjustments,
    "POST /stock/safety/": stock_safety,
    "PUT /stock/safety/": stock_safety_put,
    "GET /stock/transfers/": transfers_list,
    "POST /stock/transfers/": transfers_create,
    "GET /stock/transfers/{id}/": transfer_detail,
    "POST /stock/transfers/{id}/receive/": transfer_receive,
    "GET /stock/movements/": movements_list,
    "POST /orders/": orders_create,
    "GET /orders/": orders_list,
    "GET /orders/{number}/": order_detail,
    "GET /orders/{number}/events/": order_events,
    "GET /orders/{number}/notes/": order_notes,
    "POST /orders/{number}/notes/": order_note_add,
    "POST /orders/{number}/cancel/": order_cancel,
    "POST /orders/{number}/arrived/": order_arrived,
    "GET /fulfillments/": fulfillments_list,
    "GET /fulfillments/{id}/": fulfillment_detail,
    "POST /fulfillments/claim/": fulfillment_claim,
    "POST /fulfillments/{id}/pick/": _step(
        "pick",
        method="any",
        state="picking",
        to=lambda f: f.status == "picking" and all(ln.picked_quantity is not None for ln in f.lines.all()),
    ),
    "POST /fulfillments/{id}/pack/": _step("pack", method="ship", state="picked", to="packed"),
    "POST /fulfillments/{id}/ship/": _step(
        "ship",
        method="ship",
        state="packed",
        to="shipped",
        body={"carrier": "Yamato", "tracking_number": "TRK-1"},
    ),
    "POST /fulfillments/{id}/ready/": _step(
        "ready", method="curbside", state="picked", to="ready_for_pickup"
    ),
    "POST /fulfillments/{id}/collect/": _step(
        "collect",
        method="curbside",
        state="ready_for_pickup",
        to="collected",
        body=lambda f: {"pickup_code": f.pickup_code or "000000"},
    ),
    "POST /fulfillments/{id}/new-pickup-code/": new_pickup_code,
    "POST /fulfillments/{id}/extend/": _step(
        "extend",
        method="curbside",
        state="ready_for_pickup",
        to=lambda f: f.pickup_extended_at is not None,
        body={"days": 1, "reason": "matrix"},
    ),
    "POST /fulfillments/{id}/cancel/": _step(
        "cancel", method="any", state="pending", to="cancelled", body={"reason": "matrix"}
    ),
    "POST /fulfillments/{id}/locker/": locker_load,
    "POST /fulfillments/{id}/unload/": locker_unload,
    "GET /lockers/": lockers_list,
    "POST /lockers/{code}/open/": locker_open,
    "POST /holds/": holds_create,
    "GET /holds/{id}/": hold_detail,
    "POST /holds/{id}/extend/": hold_extend,
    "DELETE /holds/{id}/": hold_delete,
    "GET /customers/{id}/": customer_detail,
    "PATCH /customers/{id}/preferences/": customer_preferences,
    "POST /back-in-stock/": back_in_stock,
    "GET /webhooks/": webhooks_list,
    "POST /webhooks/": webhooks_create,
    "GET /webhooks/{id}/": webhook_detail,
    "DELETE /webhooks/{id}/": webhook_delete,
    "GET /refunds/": refunds_list,
    "GET /refunds/{id}/": refund_detail,
    "POST /refunds/{id}/complete/": refund_complete,
    "POST /refunds/{id}/fail/": refund_fail,
    "POST /returns/": returns_create,
    "GET /returns/": returns_list,
    "GET /returns/{number}/": return_detail,
    "POST /returns/{number}/cancel/": return_cancel,
    "POST /returns/{number}/receive/": return_receive,
    "POST /returns/{number}/notes/": return_note_add,
}


def snapshot() -> dict:
    """Everything a refused write must leave as it was: the rows a request could change, and the
    counts of the tables it could append to (the ledger, the timeline, the outbox)."""
    from inventory.models import HoldLine, StockMovement
    from notifications.models import Notification
    from orders.models import FulfillmentLine, OrderEvent, OrderLine
    from returns.models import RefundLine, ReturnLine
    from stores.models import Location

    rows = {
        m.__name__: list(m.objects.order_by("pk").values())
        for m in (
            StockLevel,
            Fulfillment,
            FulfillmentLine,
            Order,
            OrderLine,
            Hold,
            HoldLine,
            Transfer,
            WebhookEndpoint,
            Customer,
            BackInStockSubscription,
            Location,
            Refund,
            Return,
            ReturnLine,
        )
    }
    for m in (StockMovement, OrderEvent, Notification, OrderNote, RefundLine, ReturnNote):
        rows[m.__name__] = m.objects.count()
    return rows
