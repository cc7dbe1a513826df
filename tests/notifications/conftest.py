import json
import os
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache

from notifications.channels import LocmemSmsProvider
from notifications.services import outbox
from orders.models import Customer, Fulfillment, Order, OrderLine


def pytest_collection_modifyitems(config, items):
    """`redis` tests need a real broker (CELERY_BROKER_URL) and PostgreSQL; otherwise they are skipped."""
    if os.environ.get("CELERY_BROKER_URL"):
        return
    skip = pytest.mark.skip(reason="needs a real Redis broker (set CELERY_BROKER_URL)")
    for item in items:
        if "redis" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _notifications_env(request, settings):
    """Tasks in-process (even when CI sets a broker), the locmem SMS provider, loopback webhooks allowed."""
    from config.celery import app

    settings.NOTIFICATIONS = {
        **settings.NOTIFICATIONS,
        "SMS_PROVIDER": "locmem",
        "WEBHOOK_ALLOW_LOOPBACK": True,
        "RETRY_BASE_SECONDS": 30,
        "MAX_ATTEMPTS": 3,
    }
    LocmemSmsProvider.outbox.clear()
    outbox._broker_down_until = 0.0
    cache.clear()  # throttle counters
    eager = app.conf.task_always_eager
    if "redis" not in request.keywords:
        settings.CELERY_TASK_ALWAYS_EAGER = True
        app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


@pytest.fixture
def customer(db):
    return Customer.objects.create(
        email="hana@example.com", phone="+819012345678", name="Hana", language="ja"
    )


def ship_body(sku, email="buyer@example.com") -> dict:
    """The body of POST /api/v1/orders/: one unit of `sku` shipped to Tokyo."""
    return {
        "channel": "web",
        "customer": {"email": email, "name": "Hana"},
        "fulfillment": {
            "method": "ship",
            "address": {
                "line1": "1-1",
                "city": "Tokyo",
                "country": "JP",
                "latitude": 35.6,
                "longitude": 139.7,
            },
        },
        "lines": [{"sku": sku.code, "quantity": 1, "unit_price": "1980.00"}],
        "currency": "JPY",
    }


def make_order(customer, *, location, method="ship", sku=None, quantity=1) -> Order:
    order = Order.objects.create(
        channel="web",
        customer=customer,
        currency="JPY",
        subtotal=Decimal("1980.00"),
        total=Decimal("1980.00"),
        fulfillment_method=method,
        pickup_location=location if method != "ship" else None,
    )
    if sku is not None:
        OrderLine.objects.create(
            order=order,
            sku=sku,
            quantity=quantity,
            unit_price=Decimal("1980.00"),
            line_total=Decimal("1980.00"),
        )
    Fulfillment.objects.create(order=order, location=location, method=method)
    return order


class FakeHttp:
    """A local HTTP server on 127.0.0.1 that records requests and answers with queued statuses."""

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.default_status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = outer.statuses.pop(0) if outer.statuses else outer.default_status
                payload = json.dumps({"id": f"SM{len(outer.requests)}"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_http():
    server = FakeHttp()
    yield server
    server.close()
