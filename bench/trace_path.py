"""Which of the project's functions and modules one pickup `POST /api/v1/orders/` passes through.

    python -m bench.trace_path [--list]

A test database (SQLite in memory, or DATABASE_URL's server under a test_ name), one store with stock, a storefront token; one warm-up
order, then one traced order through Django's test client (authentication, Idempotency-Key,
view, services, listeners, up to COMMIT; not the on-commit delivery after it). Counts every project function (config, stores,
inventory, orders, notifications; not Django, DRF or the standard library) called at least once,
grouped by module. Issue 8's figure: "functions and modules a pickup POST passes through".
"""

from __future__ import annotations

import os
import sys
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("config", "stores", "inventory", "orders", "notifications")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection, transaction
    from django.test.utils import setup_test_environment
    from knox.models import AuthToken
    from rest_framework.test import APIClient

    from stores.models import Role
    from tests.factories import LocationFactory, SkuFactory, make_staff, stock

    setup_test_environment()
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    store = LocationFactory(code="TRACE-STORE", offers_pickup=True)
    for code in ("TRACE-WARM", "TRACE-SKU"):
        stock(store, SkuFactory(code=code), 100)
    user = make_staff(role=Role.STOREFRONT)
    _, token = AuthToken.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    def post(sku: str):
        body = {
            "channel": "web",
            "customer": {"email": f"{uuid.uuid4().hex[:8]}@example.com", "name": "Trace"},
            "fulfillment": {"method": "pickup", "location": "TRACE-STORE"},
            "lines": [{"sku": sku, "quantity": 1, "unit_price": "1980"}],
            "currency": "JPY",
        }
        return client.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex)

    assert post("TRACE-WARM").status_code == 201
    roots = tuple(str(ROOT / app) + os.sep for app in APPS)
    seen: dict[str, set[str]] = defaultdict(set)  # the whole request, up to COMMIT
    placing: dict[str, set[str]] = defaultdict(set)  # inside order_place
    listening: dict[str, set[str]] = defaultdict(set)  # inside orders.hooks.emit (other apps' listeners)
    active: list = []  # the order_place and emit frames being executed

    def stop() -> None:
        sys.setprofile(None)

    def profiler(frame, event, arg):
        if event == "call":
            filename = frame.f_code.co_filename
            if filename.startswith(roots):
                module = os.path.relpath(filename, ROOT)
                name = frame.f_code.co_qualname
                seen[module].add(name)
                if any(kind == "place" for kind, _ in active):
                    placing[module].add(name)
                    if any(kind == "emit" for kind, _ in active):
                        listening[module].add(name)
                if name == "order_place" and not active:
                    active.append(("place", frame))
                elif name == "emit" and module.endswith("hooks.py") and active:
                    active.append(("emit", frame))
                if frame.f_code.co_name == "order_place" and not stopping:
                    # The first on-commit callback of the order's transaction: what runs after
                    # COMMIT (delivering notifications) is not part of the path.
                    stopping.append(True)
                    transaction.on_commit(stop)
        elif event == "return" and active and active[-1][1] is frame:
            active.pop()

    stopping: list[bool] = []

    sys.setprofile(profiler)
    try:
        response = post("TRACE-SKU")
    finally:
        sys.setprofile(None)
    assert response.status_code == 201, response.content
    ignore = ("<genexpr>", "<listcomp>", "<dictcomp>", "<setcomp>", "<lambda>")

    def clean(found):
        out = {m: sorted(f for f in fs if not f.endswith(ignore)) for m, fs in found.items()}
        return {m: fs for m, fs in out.items() if fs}

    whole, place, listeners = clean(seen), clean(placing), clean(listening)
    own = {m: [f for f in fs if f not in listeners.get(m, [])] for m, fs in place.items()}
    own = {m: fs for m, fs in own.items() if fs}
    print("| module | whole request | order_place | order_place without listeners |\n|---|---:|---:|---:|")
    for module in sorted(whole):
        names = "  " + ", ".join(own.get(module, [])) if "--list" in argv else ""
        print(
            f"| {module} | {len(whole[module])} | {len(place.get(module, []))} | {len(own.get(module, []))}{names} |"
        )
    for label, found in (
        ("whole request", whole),
        ("order_place", place),
        ("order_place without listeners", own),
    ):
        print(f"{label}: {sum(len(fs) for fs in found.values())} functions in {len(found)} modules")
    print("(comprehensions and lambdas not counted; the whole request stops at COMMIT)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
