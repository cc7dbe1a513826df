"""The access policy of docs/security.md, as a test: generated from its two tables.

For every row, every role and, where the cell is about a location or an owner (own, served,
owner), an object of the user's own and one of another's, the request is sent and the cell
asserted (tests/access/: the parser, the world, one probe per row):

- allowed: the access check let it through: the expected 2xx and its effect (the order is
  cancelled, the stock went up, the own object is in the list);
- refused: 401/403/404 (admin: 403, 404 or a redirect to the index, the list or the login), a list
  leaves the other object out, and a refused write changed nothing (rows, counters, ledger).

An `all` cell is checked on the other object (allowed even there), a `-` cell on the own one
(refused even there). Without credentials every row is 401 (API) or the login page (admin).

Alongside: the coverage guard (every /api/v1/ route and method and every registered ModelAdmin has
a row) and OWASP API Security 2023 checks (mass assignment, excessive data exposure).
The number of checks is reported at the end of the run (tests/conftest.py).

    .venv/bin/pytest -q tests/test_access_matrix.py
"""

from __future__ import annotations

import json

import pytest
from django.contrib import admin
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from tests.access.admin_probes import change_probe, change_url, changelist_url, view_probe
from tests.access.api_probes import API_PROBES, snapshot
from tests.access.policy import (
    ROLES,
    SIDED,
    admin_rows,
    api_documented_outside_table,
    api_rows,
    normalise_path,
)
from tests.access.world import build_world

pytestmark = pytest.mark.django_db

API_PREFIX = "/api/v1"
REFUSED = (401, 403, 404)


# --- the world: built once per module, every test in a savepoint rolled back ----------------------


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once for the module in a transaction that is rolled back at its end; each test's own
    transaction (pytest-django's `db`) is then a savepoint in it, rolled back after the test."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # throttle counters (back-in-stock subscribe) and any cached reads


# --- the cases --------------------------------------------------------------------------------


def _sides(cell: str) -> tuple[str, ...]:
    if cell in SIDED:
        return ("own", "other")
    return ("other",) if cell == "all" else ("own",)  # all: the far object; -: even the own one


def _cases(rows):
    for row in rows:
        for role in ROLES:
            cell = row.cells[role]
            for side in _sides(cell):
                label = f"{cell}/{side}" if cell in SIDED else cell
                yield pytest.param(row, role, side, cell, id=f"{row.request} | {role} | {label}")


def _allowed(cell: str, side: str) -> bool:
    return cell == "all" or (cell in SIDED and side == "own")


API_CASES = list(_cases(api_rows()))
ADMIN_CASES = list(_cases(admin_rows()))


def _send(client, call):
    kwargs = dict(call.headers)
    if call.body is not None:
        kwargs.update(data=json.dumps(call.body), content_type="application/json")
    return getattr(client, call.method.lower())(call.url, **kwargs)


def _show(r) -> str:
    body = r.content.decode(errors="replace")
    return f"{r.status_code} {body[:400]}"


# --- API ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("row", "role", "side", "cell"), API_CASES)
def test_api(world, row, role, side, cell):
    call = API_PROBES[row.request](world, role, side)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {world.tokens[role]}")
    allowed = _allowed(cell, side)
    before = snapshot() if call.write and not allowed else None

    r = _send(client, call)

    if call.listed is not None and cell in SIDED and side == "other":
        assert r.status_code == 200, f"the list itself was refused: {_show(r)}"
        assert not call.listed(r.json()), "another location's (or account's) object is in the list"
    elif allowed:
        assert r.status_code in call.ok + call.state_ok, f"expected {call.ok}, got {_show(r)}"
        if r.status_code in call.ok:
            if call.listed is not None:
                assert call.listed(r.json()), "the object is not in the list"
            if call.effect is not None:
                call.effect(r)
    else:
        assert r.status_code in REFUSED, f"expected 401/403/404, got {_show(r)}"
        if before is not None:
            assert snapshot() == before, "a refused write changed something"


@pytest.mark.parametrize("row", [pytest.param(r, id=r.request) for r in api_rows()])
def test_api_anonymous(world, row):
    """'-' without credentials: 401, and nothing changed."""
    call = API_PROBES[row.request](world, "storefront", "own")
    before = snapshot() if call.write else None
    r = _send(APIClient(), call)
    assert r.status_code == 401, _show(r)
    if before is not None:
        assert snapshot() == before


# --- Admin --------------------------------------------------------------------------------------


def _admin_refused(r, obj) -> bool:
    """403, 404, or a redirect to the login page, the admin index or the model's change list."""
    if r.status_code in (403, 404):
        return True
    if r.status_code == 302:
        to = r.headers["Location"].split("?")[0]
        return to in (reverse("admin:index"), reverse("admin:login"), changelist_url(obj))
    return False


def _result_pks(r) -> set:
    return {str(o.pk) for o in r.context["cl"].result_list}


@pytest.mark.parametrize(("row", "role", "side", "cell"), ADMIN_CASES)
def test_admin(world, row, role, side, cell):
    action, label = row.request.split(" ")
    label = label.replace("/", ".")
    client = Client()
    client.force_login(world.users[role])
    allowed = _allowed(cell, side)

    if action == "view":
        obj = view_probe(world, label, role, side).obj
        listing = client.get(changelist_url(obj))
        page = client.get(change_url(obj))
        if allowed:
            assert listing.status_code == 200, f"change list: {listing.status_code}"
            assert str(obj.pk) in _result_pks(listing), f"{obj!r} is not in the change list"
            assert page.status_code == 200, f"object page: {page.status_code}"
        elif cell in SIDED:  # another location's object: left out of the list, its page refused
            assert listing.status_code == 200, f"change list: {listing.status_code}"
            assert str(obj.pk) not in _result_pks(listing), f"{obj!r} is in the change list"
            assert _admin_refused(page, obj), f"object page: {page.status_code}"
        else:
            assert _admin_refused(listing, obj), f"change list: {listing.status_code}"
            assert _admin_refused(page, obj), f"object page: {page.status_code}"
        return

    probe = change_probe(world, label, role, side)
    before = probe.row()
    r = client.post(probe.url, probe.data)
    if allowed:
        errors = r.context["adminform"].form.errors if r.status_code == 200 and r.context else ""
        assert r.status_code == 302, f"expected a redirect after saving, got {r.status_code} {errors}"
        assert probe.changed(), "saved, but the row did not change"
    else:
        assert _admin_refused(r, probe.obj), f"expected 403/404/redirect, got {r.status_code}"
        assert probe.row() == before, "a refused change changed the row"


@pytest.mark.parametrize("row", [pytest.param(r, id=r.request) for r in admin_rows()])
def test_admin_anonymous(world, row):
    """Without a session: the login page, and nothing changed."""
    action, label = row.request.split(" ")
    label = label.replace("/", ".")
    client = Client()
    if action == "view":
        obj = view_probe(world, label, "storefront", "own").obj
        for url in (changelist_url(obj), change_url(obj)):
            r = client.get(url)
            assert r.status_code == 302, url
            assert r.headers["Location"].startswith(reverse("admin:login")), url
        return
    probe = change_probe(world, label, "storefront", "own")
    before = probe.row()
    r = client.post(probe.url, probe.data)
    assert r.status_code == 302
    assert r.headers["Location"].startswith(reverse("admin:login"))
    assert probe.row() == before


# --- Coverage guard: nothing escapes the table ------------------------------------------------------


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.callback


def _api_routes() -> list[tuple[str, str]]:
    """(method, path) of every route under /api/v1/, with every HTTP method its view handles."""
    found = set()
    for route, callback in _walk(get_resolver().url_patterns):
        if not route.startswith(API_PREFIX.lstrip("/") + "/"):
            continue
        view = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        path = "/" + route[len(API_PREFIX.lstrip("/")) + 1 :]
        for method in ("get", "post", "put", "patch", "delete"):
            if view is not None and hasattr(view, method):
                found.add((method.upper(), normalise_path(path)))
    return sorted(found)


def _documented() -> set[tuple[str, str]]:
    return {row.shape for row in api_rows()} | set(api_documented_outside_table())


@pytest.mark.parametrize(("method", "path"), [pytest.param(m, p, id=f"{m} {p}") for m, p in _api_routes()])
def test_every_api_route_has_a_row(method, path):
    assert (method, path) in _documented(), (
        f"{method} /api/v1{path} is not in docs/security.md's API table: add a row (who may call it)"
    )


@pytest.mark.parametrize("row", [pytest.param(r, id=r.request) for r in api_rows()])
def test_every_api_row_names_a_route(row):
    assert row.shape in set(_api_routes()), f"{row.request}: no such route and method under /api/v1/"


def _registered_admins() -> list[str]:
    return sorted(m._meta.label_lower for m in admin.site._registry)


@pytest.mark.parametrize("label", _registered_admins())
def test_every_model_admin_has_a_row(label):
    pages = {row.request for row in admin_rows()}
    app_model = label.replace(".", "/")
    assert f"view {app_model}" in pages, (
        f"{label} is registered on admin.site but docs/security.md's Admin table has no "
        f"'view {app_model}' row"
    )


@pytest.mark.parametrize("row", [pytest.param(r, id=r.request) for r in admin_rows()])
def test_every_admin_row_names_a_registered_model(row):
    label = row.request.split(" ")[1].replace("/", ".")
    assert label in _registered_admins(), f"{row.request}: no ModelAdmin for {label}"


def test_every_row_has_a_probe():
    assert {r.request for r in api_rows()} <= set(API_PROBES), "a new API row needs a probe"


# --- OWASP API Security Top 10 (2023), API3: Broken Object Property Level Authorization ------------
# Mass assignment: server-owned fields in a body take no effect (ignored: the 2xx shows the
# server's values; or the body is refused with 400 and nothing is written).

HIJACK_TIME = "2000-01-01T00:00:00Z"


def _client(w, role) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {w.tokens[role]}")
    return client


def _post(client, url, body, method="post", **headers):
    return getattr(client, method)(url, data=json.dumps(body), content_type="application/json", **headers)


def _ignored_or_refused(r, before_count: int, count_now: int) -> bool:
    """True when the body was refused (400, nothing written); False when accepted (the caller then
    checks the server-owned fields)."""
    if r.status_code == 400:
        assert count_now == before_count, "a refused body wrote something"
        return True
    assert r.status_code in (200, 201), _show(r)
    return False


@pytest.mark.parametrize("role", ["storefront", "associate"])
def test_mass_assignment_order_create(world, role):
    from orders.models import Customer, Order

    w, other = world, world.users["storefront2"]
    victim = w.customers["other"]
    victim_before = Customer.objects.filter(pk=victim.pk).values().get()
    body = {
        "channel": "web" if role == "storefront" else "store",
        "customer": {"email": f"mass-{role}@example.com", "name": "Mass", "id": victim.pk},
        "fulfillment": {
            "method": "ship",
            "address": {"city": "Tokyo", "latitude": 35.53, "longitude": 139.7},
            "location": w.loc["S2"].code,
            "pickup_code": "ABCDEF",
            "status": "shipped",
        },
        "lines": [{"sku": w.sku.code, "quantity": 1, "unit_price": "1980.00", "line_total": "0.01"}],
        "currency": "JPY",
        # server-owned:
        "id": 999999,
        "number": "HACKED0001",
        "status": "completed",
        "placed_by": other.pk,
        "placed_by_id": other.pk,
        "customer_id": victim.pk,
        "subtotal": "0.01",
        "total": "0.01",
        "created_at": HIJACK_TIME,
        "fulfillments": [{"location": w.loc["W2"].code, "status": "shipped", "pickup_code": "ABCDEF"}],
    }
    if role == "associate":
        body["placed_at"] = w.loc["S1"].code
    count = Order.objects.count()
    r = _post(_client(w, role), "/api/v1/orders/", body, HTTP_IDEMPOTENCY_KEY=f"mass-{role}")
    if _ignored_or_refused(r, count, Order.objects.count()):
        return
    order = Order.objects.get(number=r.json()["number"])
    assert order.number != "HACKED0001"
    assert order.pk != 999999
    assert order.status == "placed"
    assert order.placed_by_id == w.users[role].pk
    assert order.customer_id != victim.pk
    assert order.total == order.subtotal == 1980
    assert order.created_at.year > 2000
    for f in order.fulfillments.all():
        assert f.status == "pending"
        assert f.pickup_code != "ABCDEF"
        assert f.location_id == w.loc["W1"].pk  # routed by the server (nearest to the address)
    assert Customer.objects.filter(pk=victim.pk).values().get() == victim_before


def test_mass_assignment_hold_create(world):
    import datetime as dt
    import uuid

    from django.conf import settings
    from django.utils import timezone

    from inventory.models import Hold

    w, other = world, world.users["storefront2"]
    chosen = str(uuid.uuid4())
    body = {
        "lines": [{"sku": w.sku.code, "quantity": 1, "location": w.loc["S2"].code}],
        "fulfillment": {"method": "ship", "address": {"latitude": 35.53, "longitude": 139.7}},
        "id": chosen,
        "created_by": other.pk,
        "created_by_id": other.pk,
        "expires_at": "2099-01-01T00:00:00Z",
        "ttl_seconds": 10**7,
    }
    count = Hold.objects.count()
    r = _post(_client(w, "storefront"), "/api/v1/holds/", body)
    if _ignored_or_refused(r, count, Hold.objects.count()):
        return
    hold = Hold.objects.get(pk=r.json()["id"])
    assert str(hold.pk) != chosen
    assert hold.created_by_id == w.users["storefront"].pk
    assert hold.expires_at <= timezone.now() + settings.OMS["HOLD_MAX_TTL"] + dt.timedelta(seconds=5)
    assert {hl.location_id for hl in hold.lines.all()} == {w.loc["W1"].pk}  # routed by the server


def test_mass_assignment_webhook_create(world):
    from notifications.models import WebhookEndpoint
    from tests.access.world import WEBHOOK_URL

    w, other = world, world.users["storefront2"]
    body = {
        "url": WEBHOOK_URL,
        "events": ["order.placed"],
        "id": 999999,
        "owner": other.pk,
        "owner_id": other.pk,
        "secret": "whsec_known-to-the-attacker",
        "status": "paused",
        "consecutive_failures": 99,
        "is_deleted": True,
        "created_at": HIJACK_TIME,
    }
    count = WebhookEndpoint.objects.count()
    r = _post(_client(w, "storefront"), "/api/v1/webhooks/", body)
    if _ignored_or_refused(r, count, WebhookEndpoint.objects.count()):
        return
    hook = WebhookEndpoint.objects.get(pk=r.json()["id"])
    assert hook.pk != 999999
    assert hook.owner_id == w.users["storefront"].pk
    assert hook.secret != body["secret"]
    assert (hook.status, hook.consecutive_failures, hook.is_deleted) == ("active", 0, False)
    assert hook.created_at.year > 2000


STOCK_HIJACK = {
    "on_hand": 999,
    "reserved": 77,
    "held": 55,
    "user": None,  # filled with another account's id
    "user_id": None,
    "kind": "adjustment",
    "created_by": None,
    "created_at": HIJACK_TIME,
}


@pytest.mark.parametrize("url", ["receipts", "adjustments", "safety", "transfers"])
def test_mass_assignment_stock(world, url):
    from inventory.models import StockLevel, StockMovement, Transfer

    w, other = world, world.users["storefront2"]
    own, far = w.loc["S1"], w.loc["S2"]
    hijack = {k: (other.pk if v is None else v) for k, v in STOCK_HIJACK.items()}
    line = {"sku": w.sku.code, "quantity": 1, "location": far.code, "on_hand": 999}
    body = {
        "receipts": {"location": own.code, "lines": [line], "reference": "mass"},
        "adjustments": {"location": own.code, "sku": w.sku.code, "delta": 1, "reason": "mass"},
        "safety": {"location": own.code, "sku": w.sku.code, "safety_stock": 2},
        "transfers": {
            "from_location": own.code,
            "to_location": far.code,
            "lines": [line],
            "status": "received",
            "received_at": HIJACK_TIME,
        },
    }[url]
    body = {**hijack, **body}
    levels = {loc: StockLevel.objects.filter(location=loc, sku=w.sku).values().get() for loc in (own, far)}
    movements = StockMovement.objects.count()
    r = _post(_client(w, "associate"), f"/api/v1/stock/{url}/", body)
    if _ignored_or_refused(r, movements, StockMovement.objects.count()):
        return
    now = {loc: StockLevel.objects.filter(location=loc, sku=w.sku).values().get() for loc in (own, far)}
    expected_on_hand = {"receipts": 1, "adjustments": 1, "safety": 0, "transfers": -1}[url]
    assert now[own]["on_hand"] == levels[own]["on_hand"] + expected_on_hand
    assert now[own]["reserved"] == levels[own]["reserved"]
    assert now[own]["held"] == levels[own]["held"]
    assert now[far] == levels[far], "the other location's stock changed"
    new = StockMovement.objects.filter(pk__gt=0).order_by("-pk")[: StockMovement.objects.count() - movements]
    assert all(m.user_id == w.users["associate"].pk for m in new)
    assert all(m.created_at.year > 2000 for m in new)
    if url == "transfers":
        t = Transfer.objects.get(pk=r.json()["id"])
        assert t.status == "in_transit"
        assert t.created_by_id == w.users["associate"].pk
        assert t.received_at is None


@pytest.mark.parametrize(
    ("step", "method", "state", "extra"),
    [
        ("claim", "curbside", "pending", {}),
        ("pick", "curbside", "picking", {"lines": []}),
        ("pack", "ship", "picked", {}),
        ("ship", "ship", "packed", {"carrier": "Yamato", "tracking_number": "TRK-9"}),
        ("ready", "curbside", "picked", {}),
        ("collect", "curbside", "ready_for_pickup", None),  # the right code
        ("cancel", "curbside", "pending", {"reason": "mass"}),
    ],
)
def test_mass_assignment_fulfillment_steps(world, step, method, state, extra):
    from orders.models import Fulfillment

    w, other = world, world.users["storefront2"]
    f = w.fresh_fulfillment(side="own", at="S1", method=method, state=state)
    before = Fulfillment.objects.filter(pk=f.pk).values().get()
    hijack = {
        "status": "shipped",
        "claimed_by": other.pk,
        "claimed_by_id": other.pk,
        "location": w.loc["S2"].code,
        "location_id": w.loc["S2"].pk,
        "order": w.orders["S2"].number,
        "id": w.orders["S2"].fulfillments.get().pk,
        "claimed_at": HIJACK_TIME,
        "shipped_at": HIJACK_TIME,
    }
    if step != "collect":
        hijack["pickup_code"] = "ABCDEF"
    body = {**hijack, **(extra if extra is not None else {"pickup_code": f.pickup_code})}
    url = "/api/v1/fulfillments/claim/" if step == "claim" else f"/api/v1/fulfillments/{f.pk}/{step}/"
    if step == "claim":
        body["location"] = w.loc["S1"].code
    associate = w.users["associate"]
    other_f = w.orders["S2"].fulfillments.get()
    other_before = Fulfillment.objects.filter(pk=other_f.pk).values().get()
    r = _post(_client(w, "associate"), url, body)
    assert r.status_code == 200, _show(r)
    target = (
        Fulfillment.objects.get(pk=r.json()["id"]) if step == "claim" else Fulfillment.objects.get(pk=f.pk)
    )
    expected = {
        "claim": "picking",
        "pick": "picking",
        "pack": "packed",
        "ship": "shipped",
        "ready": "ready_for_pickup",
        "collect": "collected",
        "cancel": "cancelled",
    }[step]
    assert target.status == expected
    assert target.location_id == w.loc["S1"].pk
    assert target.claimed_by_id in (None, associate.pk, before["claimed_by_id"])
    assert target.pickup_code != "ABCDEF"
    if step != "ship":
        assert target.shipped_at is None
    assert Fulfillment.objects.filter(pk=other_f.pk).values().get() == other_before


def test_mass_assignment_order_commands_and_preferences(world):
    from orders.models import Customer, Order

    w = world
    order = w.orders["S1"]
    client = _client(w, "storefront")
    r = _post(
        client,
        f"/api/v1/orders/{order.number}/arrived/",
        {"note": "red car", "customer_arrived_at": HIJACK_TIME, "status": "completed"},
    )
    assert r.status_code == 200, _show(r)
    f = order.fulfillments.get()
    assert f.customer_arrived_at.year > 2000
    assert Order.objects.get(pk=order.pk).status == "placed"
    c = w.customers["own"]
    before = Customer.objects.filter(pk=c.pk).values("email", "phone", "name", "id").get()
    body = {
        "language": "ja",
        "email": "hijack@example.com",
        "phone": "+819099999999",
        "name": "Hijacked",
        "id": w.customers["other"].pk,
    }
    r = _post(client, f"/api/v1/customers/{c.pk}/preferences/", body, method="patch")
    assert r.status_code in (200, 400), _show(r)
    assert Customer.objects.filter(pk=c.pk).values("email", "phone", "name", "id").get() == before
    assert Customer.objects.get(pk=w.customers["other"].pk).language != "ja" or r.status_code == 400


# --- OWASP API3: excessive data exposure ---------------------------------------------------------


def _has_key(data, key: str) -> bool:
    if isinstance(data, dict):
        return key in data or any(_has_key(v, key) for v in data.values())
    if isinstance(data, list):
        return any(_has_key(v, key) for v in data)
    return False


STAFF = ["associate", "warehouse", "manager", "network manager"]


@pytest.mark.parametrize("role", [*STAFF, "storefront"])
def test_pickup_codes_never_reach_staff(world, role):
    """Staff order and fulfillment responses never carry a pickup code (the storefront's do: the
    control that shows the check can see one)."""
    w = world
    at = "W1" if role == "warehouse" else "S1"
    f = w.fresh_fulfillment(
        side="own",
        at=at,
        method="ship" if at == "W1" else "curbside",
        state="packed" if at == "W1" else "ready_for_pickup",
    )
    code = f.pickup_code
    order = f.order
    client = _client(w, role)
    urls = [
        "/api/v1/orders/?page_size=200",
        f"/api/v1/orders/{order.number}/",
        f"/api/v1/orders/{order.number}/events/",
    ]
    if role != "storefront":
        urls += ["/api/v1/fulfillments/?page_size=200", f"/api/v1/fulfillments/{f.pk}/"]
    bodies = []
    for url in urls:
        r = client.get(url)
        assert r.status_code == 200, f"{url}: {_show(r)}"
        bodies.append((url, r))
    if at == "S1":
        r = _post(client, f"/api/v1/orders/{order.number}/arrived/", {"note": "here"})
        bodies.append(("arrived", r))
    if role == "storefront":
        detail = bodies[1][1]
        assert code, "a ready pickup has a code"
        assert code in detail.content.decode(), "the storefront should see the pickup code"
        return
    for url, r in bodies:
        assert not _has_key(r.json(), "pickup_code"), f"{url} carries a pickup_code field"
        if code:
            assert code not in r.content.decode(), f"{url} shows the pickup code"


@pytest.mark.parametrize("role", ["associate", "manager", "network manager"])
def test_admin_shows_no_pickup_code_and_cannot_search_by_it(world, role):
    w = world
    f = w.fresh_fulfillment(side="own", at="S1", method="curbside", state="ready_for_pickup")
    client = Client()
    client.force_login(w.users[role])
    for page in (change_url(f), change_url(f.order)):
        r = client.get(page)
        assert r.status_code == 200, page
        assert f.pickup_code not in r.content.decode(), f"{page} shows the pickup code"
    found = []
    for listing in (changelist_url(f), changelist_url(f.order)):
        r = client.get(listing, {"q": f.pickup_code})
        assert r.status_code == 200
        if _result_pks(r):
            found.append(listing)
    assert not found, f"searching by the pickup code finds it in {found}: the admin searches by codes"


def test_till_order_shows_only_the_contact_the_associate_typed(world):
    """A till order matched to an existing customer by phone shows that phone only: never the
    customer's stored email or name (docs/security.md, "Personal data"), and the customer is unchanged."""
    from orders.models import Customer

    w = world
    c = w.customers["own"]
    stored = Customer.objects.filter(pk=c.pk).values().get()
    body = {
        "channel": "store",
        "placed_at": w.loc["S1"].code,
        "customer": {"phone": stored["phone"]},
        "fulfillment": {
            "method": "ship",
            "address": {"city": "Tokyo", "latitude": 35.6595, "longitude": 139.7005},
        },
        "lines": [{"sku": w.sku.code, "quantity": 1, "unit_price": "1980.00"}],
        "currency": "JPY",
    }
    client = _client(w, "associate")
    r = _post(client, "/api/v1/orders/", body, HTTP_IDEMPOTENCY_KEY="till-contact")
    assert r.status_code == 201, _show(r)
    number = r.json()["number"]
    listed = [
        o for o in client.get("/api/v1/orders/?page_size=200").json()["results"] if o["number"] == number
    ]
    assert len(listed) == 1
    for shown in (r.json(), client.get(f"/api/v1/orders/{number}/").json(), listed[0]):
        text = json.dumps(shown)
        assert stored["phone"] in text
        assert stored["email"] not in text, "the customer's stored email is shown to the associate"
        assert stored["name"] not in text, "the customer's stored name is shown to the associate"
    assert Customer.objects.filter(pk=c.pk).values().get() == stored


# --- Rules of the doc's prose (Roles, Personal data) the table relies on ----------------------------


def test_storefront_serves_every_order_of_a_customer_it_serves(world):
    """'It sees those customers and all their orders (every channel); other orders and customers
    are 404': a till order for a customer the storefront serves is visible to it, not to another
    storefront account."""
    w = world
    body = {
        "channel": "store",
        "placed_at": w.loc["S1"].code,
        "customer": {"phone": w.customers["own"].phone},
        "fulfillment": {"method": "ship", "address": {"latitude": 35.6595, "longitude": 139.7005}},
        "lines": [{"sku": w.sku.code, "quantity": 1, "unit_price": "1980.00"}],
        "currency": "JPY",
    }
    r = _post(_client(w, "associate"), "/api/v1/orders/", body, HTTP_IDEMPOTENCY_KEY="served-till")
    assert r.status_code == 201, _show(r)
    number = r.json()["number"]
    mine, theirs = _client(w, "storefront"), _client(w, "storefront2")
    assert mine.get(f"/api/v1/orders/{number}/").status_code == 200
    assert number in {o["number"] for o in mine.get("/api/v1/orders/?page_size=200").json()["results"]}
    assert mine.get(f"/api/v1/customers/{w.customers['own'].pk}/").status_code == 200
    assert theirs.get(f"/api/v1/orders/{number}/").status_code == 404
    assert number not in {o["number"] for o in theirs.get("/api/v1/orders/?page_size=200").json()["results"]}
    assert theirs.get(f"/api/v1/customers/{w.customers['own'].pk}/").status_code == 404


def test_a_manager_with_no_location_acts_nowhere(world):
    """'A manager with no assigned location and no network assignment acts nowhere.'"""
    from knox.models import AuthToken

    from stores.models import Role
    from tests.factories import make_staff

    w = world
    _, token = AuthToken.objects.create(user=make_staff(role=Role.MANAGER))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    before = snapshot()
    order = w.orders["S1"]
    assert client.get(f"/api/v1/orders/{order.number}/").status_code in (403, 404)
    assert client.get("/api/v1/orders/?page_size=200").json()["results"] == []
    assert client.get("/api/v1/fulfillments/?page_size=200").json()["results"] == []
    assert client.get(f"/api/v1/customers/{w.customers['own'].pk}/").status_code in (403, 404)
    receipt = {"location": w.loc["S1"].code, "lines": [{"sku": w.sku.code, "quantity": 1}]}
    assert _post(client, "/api/v1/stock/receipts/", receipt).status_code in (403, 404)
    assert _post(client, f"/api/v1/orders/{order.number}/cancel/", {}).status_code in (403, 404)
    assert snapshot() == before


@pytest.mark.parametrize("role", ["associate", "manager"])
def test_a_till_order_is_own_at_its_till_store(world, role):
    """'an order: any of its fulfillments, its pickup store or its till store': a till order placed
    at S1 and shipped from W2 is the S1 staff's (read and, for a manager, cancel), not W1's."""
    w = world
    body = {
        "channel": "store",
        "placed_at": w.loc["S1"].code,
        "customer": {"phone": "+819044440004"},
        "fulfillment": {"method": "ship", "address": {"latitude": 34.6901, "longitude": 135.1955}},
        "lines": [{"sku": w.sku.code, "quantity": 1, "unit_price": "1980.00"}],
        "currency": "JPY",
    }
    client = _client(w, role)
    r = _post(client, "/api/v1/orders/", body, HTTP_IDEMPOTENCY_KEY=f"till-{role}")
    assert r.status_code == 201, _show(r)
    number = r.json()["number"]
    assert [f["location"] for f in r.json()["fulfillments"]] == [w.loc["W2"].code]
    assert client.get(f"/api/v1/orders/{number}/").status_code == 200
    assert number in {o["number"] for o in client.get("/api/v1/orders/?page_size=200").json()["results"]}
    assert _client(w, "warehouse").get(f"/api/v1/orders/{number}/").status_code in (403, 404)
    if role == "manager":
        assert _post(client, f"/api/v1/orders/{number}/cancel/", {}).status_code == 200
