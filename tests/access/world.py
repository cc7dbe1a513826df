"""The world the access matrix runs in: two stores and two warehouses, a user per role, and for
every kind of object one at the user's locations ("own": S1, W1, or made by the user) and one
elsewhere ("other": S2, W2, or made by another storefront account).

Built once per module through the services (tests/test_access_matrix.py's `world` fixture, in a
transaction rolled back at the end); every test runs in a savepoint that is rolled back, and builds
what it changes (an order, a fulfillment in the state a step needs) itself: `place`, `fresh_fulfillment`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from knox.models import AuthToken

from inventory.models import StockLevel, StockMovement
from inventory.services import Line, stock_receive, transfer_create
from notifications.models import BackInStockSubscription, Notification, RestockAlert, WebhookEndpoint
from notifications.services import back_in_stock_subscribe, webhook_register
from orders.models import Customer, Fulfillment, Order
from orders.services import (
    CustomerIn,
    FulfillmentIn,
    LineIn,
    checkout_hold_create,
    fulfillment_pick,
    fulfillment_start,
    order_cancel,
    order_note_add,
    order_place,
)
from returns.models import Refund, Return
from returns.services import ReturnLineIn, return_request
from stores.models import Compartment, Location, PickupPoint, Role
from stores.services import api_user_upsert, role_groups_sync
from tests.factories import LocationFactory, SkuFactory, WarehouseFactory, make_staff

ROLE_NAMES = ("storefront", "associate", "warehouse", "manager", "network manager", "admin", "locker")

# Far enough apart that an address at a location's coordinates is routed to that location.
COORDS = {
    "S1": (35.6595, 139.7005),  # Shibuya
    "W1": (35.5300, 139.7000),  # Kawasaki
    "S2": (34.7025, 135.4959),  # Umeda
    "W2": (34.6901, 135.1955),  # Kobe
}
WEBHOOK_URL = "https://93.184.215.14/hooks/oms"  # a public literal address: no DNS lookup
CONTACTS = {
    "own": {"email": "own-buyer@example.com", "phone": "+819011110001", "name": "Own Buyer"},
    "other": {"email": "other-buyer@example.com", "phone": "+819022220002", "name": "Other Buyer"},
}


def address_at(code: str) -> dict:
    lat, lng = COORDS[code]
    return {"line1": f"1-1 near {code}", "city": "Tokyo", "country": "JP", "latitude": lat, "longitude": lng}


@dataclass
class World:
    loc: dict = field(default_factory=dict)  # "S1", "S2", "W1", "W2" -> Location
    sku: object = None
    sku2: object = None
    users: dict = field(default_factory=dict)  # role name (and "storefront2") -> User
    tokens: dict = field(default_factory=dict)  # same keys -> knox token
    orders: dict = field(default_factory=dict)  # "S1", "W1" (by the storefront), "S2", "W2" (storefront2)
    customers: dict = field(default_factory=dict)  # "own", "other"
    holds: dict = field(default_factory=dict)  # user key -> Hold made by that account
    webhooks: dict = field(default_factory=dict)  # user key -> WebhookEndpoint owned by that account
    transfers: dict = field(default_factory=dict)  # "to_S1", "to_W1" (own ends), "other" (S2 -> W2)
    movements: dict = field(default_factory=dict)  # location key -> a StockMovement there
    notes: dict = field(default_factory=dict)  # location key -> an OrderNote on w.orders[key]
    refunds: dict = field(default_factory=dict)  # location key -> a requested Refund of an order there
    returns: dict = field(default_factory=dict)  # location key -> a requested Return expected there
    lockers: dict = field(default_factory=dict)  # "S1", "S2" -> a PickupPoint (locker bank) at that store
    admin_objects: dict = field(default_factory=dict)  # "app.model" -> {"own": obj, "other": obj}

    # --- who is who -------------------------------------------------------------------------

    def user_key(self, role: str, side: str) -> str:
        """The account whose object is "own" (the role's) or "other" (another storefront's)."""
        return role if side == "own" else "storefront2"

    def own_loc(self, role: str, prefer: str = "S") -> Location:
        """The user's location: the associate's store S1, the warehouse's W1, and for the roles with
        both (manager) or with none (storefront, network manager, admin) S1, or W1 with prefer="W"."""
        if role in ("associate", "locker"):
            return self.loc["S1"]
        if role == "warehouse":
            return self.loc["W1"]
        return self.loc[f"{prefer}1"]

    def other_loc(self, role: str, prefer: str = "S") -> Location:
        if role in ("associate", "locker"):
            return self.loc["S2"]
        if role == "warehouse":
            return self.loc["W2"]
        return self.loc[f"{prefer}2"]

    def loc_for(self, role: str, side: str, prefer: str = "S") -> Location:
        return self.own_loc(role, prefer) if side == "own" else self.other_loc(role, prefer)

    def order_for(self, role: str, side: str) -> Order:
        """An order at the role's location placed by the storefront (own), or one at S2/W2 placed by
        another storefront account for another customer (other)."""
        key = self.loc_for(role, side).code[-2:]
        return self.orders[key]

    # --- objects a test changes: made fresh, in the test's savepoint --------------------------

    def place(self, *, side: str, method: str, at: str, user_key: str | None = None, qty: int = 1) -> Order:
        """An order through the service: ship from the location `at` (an address at its
        coordinates) or pickup/curbside at the store `at`; placed by the storefront (own side) or
        by the other storefront account for the other customer."""
        fulfillment = (
            FulfillmentIn(method="ship", address=address_at(at))
            if method == "ship"
            else FulfillmentIn(method=method, location=self.loc[at].code)
        )
        contact = CONTACTS[side]
        placed = order_place(
            channel="web",
            customer=CustomerIn(email=contact["email"], phone=contact["phone"], name=contact["name"]),
            fulfillment=fulfillment,
            lines=[LineIn(sku=self.sku.code, quantity=qty, unit_price=Decimal("1980.00"))],
            currency="JPY",
            user=self.users[user_key or ("storefront" if side == "own" else "storefront2")],
        )
        order = placed.order
        got = {f.location_id for f in order.fulfillments.all()}
        assert got == {self.loc[at].pk}, f"routing put the {method} order at {got}, not {at}"
        return order

    def fresh_fulfillment(self, *, side: str, at: str, method: str, state: str) -> Fulfillment:
        """A new order's fulfillment at `at`, moved to `state` by the system (no user)."""
        order = self.place(side=side, method=method, at=at)
        f = order.fulfillments.get()
        steps = {
            "pending": [],
            "picking": [fulfillment_start],
            "picked": [fulfillment_start, "pick"],
            "packed": [fulfillment_start, "pick", "pack"],
            "ready_for_pickup": [fulfillment_start, "pick", "ready"],
            "in_locker": [fulfillment_start, "pick", "ready", "load"],
        }[state]
        from orders.services import fulfillment_pack, fulfillment_ready

        for step in steps:
            if step == "pick":
                fulfillment_pick(fulfillment_id=f.pk, picks=[], user=None)
            elif step == "pack":
                fulfillment_pack(fulfillment_id=f.pk, user=None)
            elif step == "ready":
                fulfillment_ready(fulfillment_id=f.pk, user=None)
            elif step == "load":
                from orders.selectors import free_compartments
                from orders.services import locker_load

                locker = next(lk for lk in self.lockers.values() if lk.store_id == f.location_id)
                comp = free_compartments(locker=locker).first()
                locker_load(fulfillment_id=f.pk, locker=locker.code, compartment=comp.label, user=None)
            else:
                step(fulfillment_id=f.pk, user=None)
        f.refresh_from_db()
        return f

    def delivered(self, *, side: str, at: str) -> Order:
        """A new order handed over to the customer: curbside collected at the store `at`, or
        shipped from the warehouse `at` (by the system)."""
        from orders.services import fulfillment_collect, fulfillment_ship

        if at.startswith("S"):
            f = self.fresh_fulfillment(side=side, at=at, method="curbside", state="ready_for_pickup")
            fulfillment_collect(fulfillment_id=f.pk, pickup_code=f.pickup_code)
        else:
            f = self.fresh_fulfillment(side=side, at=at, method="ship", state="packed")
            fulfillment_ship(fulfillment_id=f.pk, carrier="Yamato", tracking_number=f"TRK-{f.pk}")
        return Order.objects.get(pk=f.order_id)

    def request_return(self, *, side: str, at: str) -> Return:
        """A delivered order's return, asked for by the system: in store at the store `at`, or by
        mail to the warehouse `at`."""
        order = self.delivered(side=side, at=at)
        return return_request(
            order_number=order.number,
            lines=[ReturnLineIn(sku=self.sku.code, quantity=1, reason="wrong_size")],
            method="in_store" if at.startswith("S") else "mail",
            location=self.loc[at].code,
        )


def _user(role_name: str, w: World, username: str):
    User = get_user_model()
    if role_name == "admin":
        return User.objects.create_superuser(username, f"{username}@example.com", "pw-123456!")
    if role_name in ("storefront", "storefront2"):
        return make_staff(role=Role.STOREFRONT, username=username)
    if role_name == "network manager":
        user, _ = api_user_upsert(username=username, role=Role.MANAGER, network_wide=True)
        return user
    codes = {
        "associate": [w.loc["S1"].code],
        "warehouse": [w.loc["W1"].code],
        "manager": [w.loc["S1"].code, w.loc["W1"].code],
        "locker": [w.loc["S1"].code],  # the controller of S1's locker bank
    }[role_name]
    user, _ = api_user_upsert(username=username, role=role_name, location_codes=codes)
    return user


def build_world() -> World:
    w = World()
    w.loc["S1"] = LocationFactory(
        code="ACC-S1", name="Own store", latitude=COORDS["S1"][0], longitude=COORDS["S1"][1]
    )
    w.loc["S2"] = LocationFactory(
        code="ACC-S2", name="Other store", latitude=COORDS["S2"][0], longitude=COORDS["S2"][1]
    )
    w.loc["W1"] = WarehouseFactory(
        code="ACC-W1", name="Own warehouse", latitude=COORDS["W1"][0], longitude=COORDS["W1"][1]
    )
    w.loc["W2"] = WarehouseFactory(
        code="ACC-W2", name="Other warehouse", latitude=COORDS["W2"][0], longitude=COORDS["W2"][1]
    )
    for key in ("S1", "S2"):
        w.lockers[key] = PickupPoint.objects.create(
            code=f"ACC-L{key}", store=w.loc[key], name=f"Locker at {key}", kind="locker"
        )
        Compartment.objects.bulk_create(
            Compartment(pickup_point=w.lockers[key], label=f"A{i}") for i in range(1, 7)
        )
    w.sku = SkuFactory(code="ACC-TEE")
    w.sku2 = SkuFactory(code="ACC-CAP")
    for key, loc in w.loc.items():
        stock_receive(
            lines=[Line(loc.pk, w.sku.pk, 100), Line(loc.pk, w.sku2.pk, 100)], reference=f"opening {key}"
        )
        w.movements[key] = StockMovement.objects.filter(location=loc).order_by("pk").first()

    for i, name in enumerate((*ROLE_NAMES, "storefront2")):
        w.users[name] = _user(name, w, f"acc-{name.replace(' ', '-')}-{i}")
        _, w.tokens[name] = AuthToken.objects.create(user=w.users[name])

    w.orders["S1"] = w.place(side="own", method="curbside", at="S1")
    w.orders["W1"] = w.place(side="own", method="ship", at="W1")
    w.orders["S2"] = w.place(side="other", method="curbside", at="S2")
    w.orders["W2"] = w.place(side="other", method="ship", at="W2")
    for key, order in w.orders.items():
        w.notes[key] = order_note_add(number=order.number, text=f"note on {key}", channel="phone")
    # A refund at each location: an order of its own, cancelled by the system (order_cancel refunds
    # every unit), placed like w.orders (own: the storefront's customer; other: storefront2's).
    for key, side, method in (
        ("S1", "own", "curbside"),
        ("W1", "own", "ship"),
        ("S2", "other", "curbside"),
        ("W2", "other", "ship"),
    ):
        cancelled = order_cancel(
            number=w.place(side=side, method=method, at=key).number, reason="matrix refund"
        )
        w.refunds[key] = Refund.objects.get(order=cancelled)
    # Warehouses take mail returns (docs/returns.md); a return expected at each location.
    for key in ("W1", "W2"):
        Location.objects.filter(pk=w.loc[key].pk).update(accepts_returns=True)
        w.loc[key].accepts_returns = True
    for key, side in (("S1", "own"), ("W1", "own"), ("S2", "other"), ("W2", "other")):
        w.returns[key] = w.request_return(side=side, at=key)
    w.customers["own"] = w.orders["S1"].customer
    w.customers["other"] = w.orders["S2"].customer
    assert w.customers["own"].pk != w.customers["other"].pk

    for name, user in w.users.items():
        w.holds[name] = checkout_hold_create(
            lines=[LineIn(sku=w.sku2.code, quantity=1)],
            fulfillment=FulfillmentIn(method="ship", address=address_at("W1")),
            user=user,
        )
        w.webhooks[name] = webhook_register(owner=user, url=WEBHOOK_URL, events=["order.placed"])

    w.transfers["to_S1"] = transfer_create(
        from_location=w.loc["S2"], to_location=w.loc["S1"], lines=[(w.sku2, 2)], reference="to S1"
    )
    w.transfers["to_W1"] = transfer_create(
        from_location=w.loc["W2"], to_location=w.loc["W1"], lines=[(w.sku2, 2)], reference="to W1"
    )
    w.transfers["other"] = transfer_create(
        from_location=w.loc["S2"], to_location=w.loc["W2"], lines=[(w.sku2, 2)], reference="S2 to W2"
    )

    sub, _ = back_in_stock_subscribe(sku=w.sku, email="watcher@example.com")
    alert = RestockAlert.objects.create(sku=w.sku, available=5, kind="receipt", wave_quota=1)
    note = Notification.objects.order_by("pk").first() or Notification.objects.create(
        event=Notification._meta.get_field("event").choices[0][0],
        channel=Notification._meta.get_field("channel").choices[0][0],
        recipient="watcher@example.com",
        dedupe_key="access-matrix-1",
        next_attempt_at=timezone.now(),
    )
    # One row of each admin-only model without a home of its own above (for their pages' checks).
    every = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="access matrix", task="access.matrix", interval=every)
    CrontabSchedule.objects.create(minute="0", hour="3")
    SolarSchedule.objects.create(event="sunrise", latitude=35.66, longitude=139.70)
    ClockedSchedule.objects.create(clocked_time=timezone.now())
    role_groups_sync()
    levels = {k: StockLevel.objects.get(location=loc, sku=w.sku) for k, loc in w.loc.items()}
    w.admin_objects = {
        "stocklevel": levels,
        "notification": note,
        "restockalert": alert,
        "backinstocksubscription": sub,
        "webhookendpoint": w.webhooks["storefront2"],
        "user": w.users["storefront2"],
        "authtoken": AuthToken.objects.filter(user=w.users["storefront2"]).first(),
    }
    # Sanity: the world is what the matrix assumes.
    assert Customer.objects.filter(pk=w.customers["own"].pk).exists()
    assert BackInStockSubscription.objects.filter(pk=sub.pk).exists()
    assert WebhookEndpoint.objects.filter(owner=w.users["storefront"]).count() == 1
    assert Location.objects.count() >= 4
    return w
