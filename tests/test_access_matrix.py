"""The access policy of docs/security.md, as a test: generated from its two tables.

For every row, every role and, where the cell is about a location or an owner (own, served,
owner), an object of the user's own and one of another's, the request is sent and the cell
asserted (tests/access/: the parser, the world, one probe per row):

- allowed: the access check let it through: the expected 2xx and its effect (the order is
  cancelled, the stock went up, the own object is in the list);
- refused: 401/403/404 (admin: 403, 404 or a redirect to the index, the list or the login), a list
  leaves the other object out, and a refused write changed nothing (rows, counters, ledger).

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
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield build_world()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # throttle counters (back-in-stock subscribe) and any cached reads
    return


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


def _admin_refused(r) -> bool:
    if r.status_code in (403, 404):
        return True
    if r.status_code == 302:
        to = r.headers["Location"].split("?")[0]
        return to in (reverse("admin:index"), reverse("admin:login")) or to.endswith("/")
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
            assert _admin_refused(page), f"object page: {page.status_code}"
        else:
            assert _admin_refused(listing), f"change list: {listing.status_code}"
            assert _admin_refused(page), f"object page: {page.status_code}"
        return

    probe = change_probe(world, label, role, side)
    before = probe.row()
    r = client.post(probe.url, probe.data)
    if allowed:
        errors = r.context["adminform"].form.errors if r.status_code == 200 and r.context else ""
        assert r.status_code == 302, f"expected a redirect after saving, got {r.status_code} {errors}"
        assert probe.changed(), "saved, but the row did not change"
    else:
        assert _admin_refused(r), f"expected 403/404/redirect, got {r.status_code}"
        assert probe.row() == before, "a refused change changed the row"


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
