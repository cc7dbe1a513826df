"""The Pickups page in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright.

An associate logs in, finds a ready order by the phone number the customer gives, is refused a
wrong pickup code, hands the order over with the right one, and the order is collected. A
screenshot of the Pickups page and of the order card is saved under docs/screenshots/.

Playwright uses the system browser (`executable_path`), never a browser of its own (no
`playwright install`). Without /usr/bin/chromium the test is skipped, unless OMS_REQUIRE_BROWSER is
set (.ci/run sets it, after installing the package), where it fails instead.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from orders.models import EventType, Fulfillment, FulfillmentStatus, OrderEvent
from orders.services import (
    CustomerIn,
    fulfillment_ready,
    fulfillment_start,
    order_customer_arrived,
    order_place,
)
from stores.models import Role
from tests.factories import make_staff
from tests.orders.conftest import lines, pickup

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
PASSWORD = "counter-pass-123"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - dev dependency
        sync_playwright = None
    missing = sync_playwright is None or not os.path.exists(CHROMIUM)
    if missing:
        if os.environ.get("OMS_REQUIRE_BROWSER"):
            pytest.fail(f"the browser test needs playwright (PyPI) and {CHROMIUM} (Debian's chromium)")
        pytest.skip(f"needs playwright and {CHROMIUM} (apt-get install chromium)")
    return sync_playwright


def _order(phone, name, *pairs, note="", method="pickup"):
    return order_place(
        channel="web",
        customer=CustomerIn(email=f"{name.split()[0].lower()}@example.com", phone=phone, name=name),
        fulfillment=pickup(method=method),
        lines=lines(*pairs),
        currency="JPY",
        note=note,
    ).order.fulfillments.get()


@pytest.fixture
def counter_day(net):
    """Shibuya's counter: the customer's ready order, and other work around it."""
    associate = make_staff(role=Role.ASSOCIATE, locations=[net.shibuya], username="assoc-shibuya")
    associate.is_staff = True
    associate.set_password(PASSWORD)
    associate.save()
    for i, s in enumerate(net.skus):
        s.image_url = f"/static/demo/skus/{['tee', 'bag', 'cap'][i % 3]}.svg"
        s.save()

    def ready(f):
        fulfillment_start(fulfillment_id=f.pk, user=associate)
        return fulfillment_ready(fulfillment_id=f.pk, user=associate)

    mine = ready(_order("090-1234-5678", "Aiko Tanaka", ("TEE-0", 1), ("TEE-1", 1), note="Gift-wrap please"))
    _order("090-2345-6789", "Ren Sato", ("TEE-2", 1))
    curbside = _order("080-3456-7890", "Mika Ito", ("TEE-0", 1), method="curbside")
    order_customer_arrived(number=curbside.order.number, note="blue van, bay 3", user=associate)
    late = ready(_order("070-4567-8901", "Yuki Mori", ("TEE-1", 1)))
    Fulfillment.objects.filter(pk=late.pk).update(pickup_expires_at=timezone.now() + dt.timedelta(minutes=30))
    return associate, mine


def test_associate_finds_by_phone_and_hands_over_after_a_wrong_code(live_server, counter_day, monkeypatch):
    sync_playwright = _browser_or_skip()
    # Playwright's sync API runs an event loop in this thread; the ORM calls below are synchronous
    # and run only while no browser call is in flight.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    associate, f = counter_day
    code = f.pickup_code
    wrong = "22222222" if code != "22222222" else "33333333"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{live_server.url}/admin/login/?next=/admin/orders/pickup/")
        page.fill("#id_username", "assoc-shibuya")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/orders/pickup/")
        assert page.locator("h1").inner_text().startswith("Pickups at")
        assert page.locator('[data-tile="arrived_curbside"] .n').inner_text() == "1"
        page.screenshot(path=str(SCREENSHOTS / "pickups-page.png"), full_page=True)

        # The customer says their number the way people do.
        page.fill("#searchbar", "090-1234-5678")
        page.press("#searchbar", "Enter")
        page.wait_for_load_state()
        rows = page.locator("#result_list tbody tr")
        assert rows.count() == 1
        rows.first.locator("a").first.click()
        page.wait_for_selector("#pickup_code")
        assert "Gift-wrap please" in page.content()
        assert code not in page.content()

        page.fill("#pickup_code", wrong)
        page.click("#collect button[type=submit]")
        page.wait_for_selector(".messagelist .error")
        assert "does not match" in page.locator(".messagelist").inner_text()
        assert page.locator("[data-status]").get_attribute("data-status") == "ready_for_pickup"

        page.fill("#pickup_code", f"{code[:4].lower()}-{code[4:]}")
        page.click("#collect button[type=submit]")
        page.wait_for_selector(".messagelist .success")
        assert page.locator("[data-status]").get_attribute("data-status") == "collected"
        page.screenshot(path=str(SCREENSHOTS / "pickup-card.png"), full_page=True)
        browser.close()

    f.refresh_from_db()
    assert f.status == FulfillmentStatus.COLLECTED
    refused = OrderEvent.objects.filter(fulfillment=f, type=EventType.PICKUP_CODE_REFUSED)
    assert refused.count() == 1
    assert refused.get().actor == associate
    assert OrderEvent.objects.filter(
        fulfillment=f, type=EventType.FULFILLMENT_STATUS_CHANGED, to_status="collected", channel="admin"
    ).exists()
    assert (SCREENSHOTS / "pickups-page.png").stat().st_size > 10_000
