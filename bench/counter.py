"""The associates' Pickups page with a busy store: `python -m bench.counter [--pickups N] [--repeat R]
[--quick] [--no-doc]`.

Setup (not measured; bulk INSERTs, consistent rows but no stock levels, which the page does not
read): one store with N open pickups (default 10,000), mixed as a day leaves them: 40% to pick
(some older than the promise: overdue), 50% ready (some ending today), 10% of the ready ones with
the customer arrived (curbside or in person); each order has two lines of SKUs with pictures, a
customer with a phone number, and the customer has 3 other open orders at other stores.
Another store gets as many again, so that scoping to one's store is part of the work.

Measured, in this process through Django's test client as the store's associate (the whole
admin request: session, permissions, the queries and the template), R times each (default 30),
after one warm-up: the queue (today's counts and the first 50 rows), one tile, a search by
phone number, by part of a name and by order number, and an order card. Median and p95 in ms and
the number of SQL queries; the target is under 300 ms for the page, with a query count that does
not depend on N (tests/orders/test_pickups_page.py asserts the latter on small data).

Own PostgreSQL database `oms_bench_counter` (`oms_bench_counter_quick` with --quick) at BENCH_PG.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from functools import partial

from . import common

STORE, OTHER = "BENCH-COUNTER", "BENCH-OTHER"


def configure(database: str) -> None:
    common.ensure_database(database)
    os.environ.update(
        DATABASE_URL=f"{common.PG_BASE}/{database}",
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DEBUG="False",
        ALLOWED_HOSTS="testserver,127.0.0.1",
    )
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def setup(*, pickups: int, seed: int = 11) -> dict:
    """The rows (module docstring), made once per database: a second run reuses them."""
    import datetime as dt
    import random
    from decimal import Decimal

    from django.db import transaction
    from django.utils import timezone

    from inventory.models import Sku
    from orders.models import Customer, Fulfillment, FulfillmentLine, Order, OrderLine
    from stores.models import Location, LocationKind, Role
    from stores.services import api_user_upsert

    store = Location.objects.filter(code=STORE).first()
    if store is not None and Fulfillment.objects.filter(location=store).count() >= pickups:
        return {"store": store.pk, "reused": True}
    Location.objects.filter(code__in=[STORE, OTHER]).exists() and _wipe()
    rng = random.Random(seed)
    now = timezone.now()
    with transaction.atomic():
        stores = [
            Location.objects.create(
                code=code,
                name=name,
                kind=LocationKind.STORE,
                offers_pickup=True,
                latitude=35.66,
                longitude=139.70,
            )
            for code, name in ((STORE, "Bench Counter"), (OTHER, "Bench Other"))
        ]
        skus = Sku.objects.bulk_create(
            Sku(code=f"BENCH-CTR-{i:03d}", name=f"Bench item {i}", image_url="/static/demo/skus/tee.svg")
            for i in range(200)
        )
        api_user_upsert(username="bench-counter", role=Role.ASSOCIATE, location_codes=[STORE])
        for si, store in enumerate(stores):
            customers = Customer.objects.bulk_create(
                Customer(
                    email=f"c{store.code.lower()}{i}@bench.example",
                    phone=f"+8190{si + 1}{i:07d}",
                    name=f"Bench Customer {i}",
                )
                for i in range(pickups)
            )
            orders, fs = [], []
            for i, c in enumerate(customers):
                kind = rng.random()
                status = "pending" if kind < 0.3 else "picking" if kind < 0.4 else "ready_for_pickup"
                method = "curbside" if rng.random() < 0.3 else "pickup"
                orders.append(
                    Order(
                        channel="web",
                        customer=c,
                        contact_email=c.email,
                        contact_phone=c.phone,
                        contact_name=c.name,
                        status="placed" if status == "pending" else status,
                        currency="JPY",
                        subtotal=Decimal("3960.00"),
                        total=Decimal("3960.00"),
                        fulfillment_method=method,
                        pickup_location=store,
                    )
                )
                ready = status == "ready_for_pickup"
                ends = now + dt.timedelta(hours=rng.choice([2, 30, 80, 150]))
                fs.append(
                    Fulfillment(
                        location=store,
                        method=method,
                        status=status,
                        pickup_code=f"{i:08d}"[-8:] if ready else "",
                        ready_at=now if ready else None,
                        pickup_expires_at=ends if ready else None,
                        customer_arrived_at=now if ready and rng.random() < 0.1 else None,
                    )
                )
            Order.objects.bulk_create(orders, batch_size=2000)
            for o, f in zip(orders, fs, strict=True):
                f.order = o
            Fulfillment.objects.bulk_create(fs, batch_size=2000)
            lines, flines = [], []
            for o in orders:
                for sku in rng.sample(skus, 2):
                    lines.append(
                        OrderLine(
                            order=o,
                            sku=sku,
                            quantity=1,
                            unit_price=Decimal("1980"),
                            line_total=Decimal("1980"),
                        )
                    )
            OrderLine.objects.bulk_create(lines, batch_size=5000)
            for f, pair in zip(fs, zip(lines[::2], lines[1::2], strict=True), strict=True):
                flines += [
                    FulfillmentLine(fulfillment=f, order_line=ln, sku_id=ln.sku_id, quantity=1) for ln in pair
                ]
            FulfillmentLine.objects.bulk_create(flines, batch_size=5000)
            # Older than the promise: overdue to pick.
            late = [f.pk for f in fs if f.status == "pending"][: pickups // 20]
            Fulfillment.objects.filter(pk__in=late).update(created_at=now - dt.timedelta(hours=5))
        # Every customer of the counter store has 3 open orders elsewhere (the card lists them).
        first = Customer.objects.filter(email__endswith="@bench.example").order_by("pk")[:pickups]
        others = list(Order.objects.filter(pickup_location=stores[1]).order_by("pk")[: pickups * 3 // 4])
        for o, c in zip(others, list(first) * 3, strict=False):
            o.customer = c
        Order.objects.bulk_update(others, ["customer"], batch_size=2000)
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return {"store": stores[0].pk, "reused": False}


def _wipe() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE orders_fulfillmentline, orders_orderline, orders_orderevent, orders_fulfillment, "
            "orders_ordernote, orders_order, orders_customer CASCADE"
        )
    from inventory.models import Sku
    from stores.models import Location

    Sku.objects.filter(code__startswith="BENCH-CTR-").delete()
    Location.objects.filter(code__in=[STORE, OTHER]).delete()
    return True


def _count(seen: list, execute, sql, params, many, context):
    seen.append(sql)
    return execute(sql, params, many, context)


def measure(*, repeat: int) -> list[list]:
    from django.contrib.auth import get_user_model
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import setup_test_environment

    from orders.models import Fulfillment

    setup_test_environment()  # the test client's response.context (rows shown)

    user = get_user_model().objects.get(username="bench-counter")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    f = (
        Fulfillment.objects.filter(location__code=STORE, status="ready_for_pickup")
        .select_related("order")
        .order_by("pk")
        .first()
    )
    page = "/admin/orders/pickup/"
    cases = [
        ("the queue (counts + first 50)", page, {}),
        ("tile: ready", page, {"tile": "ready"}),
        ("search: phone 090-…", page, {"q": "0" + f.order.contact_phone[3:]}),
        ("search: part of a name", page, {"q": "Customer 12"}),
        ("search: order number", page, {"q": f.order.number}),
        ("the order card", f"{page}{f.pk}/change/", {}),
    ]
    rows = []
    for label, url, params in cases:
        r = client.get(url, params)
        assert r.status_code == 200, (label, r.status_code)
        queries: list[str] = []
        with connection.execute_wrapper(partial(_count, queries)):
            client.get(url, params)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            r = client.get(url, params)
            times.append((time.perf_counter() - t0) * 1000)
            reset_queries()
        times.sort()
        found = len(r.context["cl"].result_list) if r.context and "cl" in r.context else 1
        rows.append([label, found, len(queries), statistics.median(times), common.percentile(times, 95)])
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.counter", description=__doc__.split("\n\n")[0])
    ap.add_argument("--pickups", type=int, help="open pickups at the store (default 10,000; quick 500)")
    ap.add_argument("--repeat", type=int, help="requests per case (default 30; quick 5)")
    ap.add_argument("--quick", action="store_true", help="smoke mode: small data, docs left alone")
    doc = ap.add_mutually_exclusive_group()
    doc.add_argument("--doc", dest="doc", action="store_true", default=None)
    doc.add_argument("--no-doc", dest="doc", action="store_false")
    args = ap.parse_args(argv)
    pickups = args.pickups or (500 if args.quick else 10_000)
    repeat = args.repeat or (5 if args.quick else 30)
    write_doc = (not args.quick) if args.doc is None else args.doc
    configure("oms_bench_counter_quick" if args.quick else "oms_bench_counter")
    info = common.machine()
    t0 = time.monotonic()
    made = setup(pickups=pickups)
    print(
        f"setup: {pickups:,} open pickups per store ({'reused' if made['reused'] else 'made'}) "
        f"in {time.monotonic() - t0:.1f} s",
        flush=True,
    )
    rows = measure(repeat=repeat)
    info["loadavg_after"] = common.loadavg()
    tbl = common.table(["request", "rows shown", "SQL queries", "median ms", "p95 ms"], rows)
    print(tbl)
    ok = all(r[4] < 300 for r in rows)
    print("targets met (every p95 under 300 ms)" if ok else "targets NOT met (a p95 of 300 ms or more)")
    if write_doc:
        body = (
            f"`python -m bench.counter --pickups {pickups} --repeat {repeat}`: the store's associate opens "
            f"the Pickups page with {pickups:,} open pickups at their store (and as many at another store), "
            "through Django's test client in one process: the whole admin request (session, permissions, "
            "queries, template), not the network.\n\n"
            f"{common.machine_md(info)}\n\n{tbl}\n\n"
            "The query count is the same with 5 or 10,000 orders (tests/orders/test_pickups_page.py "
            "asserts it): the counts are one aggregate, the list one page with its lines prefetched.\n"
        )
        common.update_doc("counter", body, title="The Pickups page with 10,000 open pickups")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
