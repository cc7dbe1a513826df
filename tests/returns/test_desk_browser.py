"""The Returns desk in a real browser (headless Debian Chromium driven by Playwright, as the Pickups
page's test: tests/orders/test_pickups_browser.py, which says how the browser is found).

An associate finds an online order by the phone number the customer gives, sees the note the help
desk wrote, receives one line as resellable and one as damaged, and the store's availability of the
first SKU goes up by one. Screenshots of the desk under docs/screenshots/.
"""

from __future__ import annotations

import pytest

from inventory.selectors import available_at
from orders.models import NoteChannel
from returns.models import Refund, Return, ReturnStatus
from returns.services import ReturnLineIn, return_note_add, return_request
from stores.models import Role
from tests.factories import make_staff
from tests.orders.test_pickups_browser import CHROMIUM, SCREENSHOTS, _browser_or_skip
from tests.returns.conftest import delivered

PASSWORD = "desk-pass-123"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def desk_day(net):
    associate = make_staff(role=Role.ASSOCIATE, locations=[net.shibuya], username="desk-shibuya")
    associate.is_staff = True
    associate.set_password(PASSWORD)
    associate.save()
    storefront = make_staff(role=Role.STOREFRONT)
    for i, s in enumerate(net.skus):
        s.image_url = f"/static/demo/skus/{['tee', 'bag', 'cap'][i % 3]}.svg"
        s.save()
    order = delivered(
        ("TEE-0", 1), ("TEE-1", 1), email="aiko@example.com", phone="090-1234-5678", user=storefront
    )
    ret = return_request(
        order_number=order.number,
        lines=[
            ReturnLineIn(sku="TEE-0", quantity=1, reason="wrong_size", reason_text="too small"),
            ReturnLineIn(sku="TEE-1", quantity=1, reason="damaged"),
        ],
        method="in_store",
        email="aiko@example.com",
        location="TKY-SHIBUYA",
        user=storefront,
        channel="web",
    )
    return_note_add(
        number=ret.number,
        text="Customer called: the second shirt arrived with a tear in the sleeve",
        channel=NoteChannel.PHONE,
        user=storefront,
        author_name="Help desk (Mika)",
    )
    other = delivered(("TEE-2", 1), email="ren@example.com", phone="090-2345-6789", user=storefront)
    return_request(
        order_number=other.number,
        lines=[ReturnLineIn(sku="TEE-2", quantity=1, reason="changed_mind")],
        method="in_store",
        email="ren@example.com",
        location="TKY-SHIBUYA",
        user=storefront,
        channel="app",
    )
    return associate, ret


def test_associate_finds_by_phone_reads_the_help_desk_note_and_receives(
    live_server, net, desk_day, monkeypatch
):
    sync_playwright = _browser_or_skip()
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # see the Pickups page's test
    associate, ret = desk_day
    pairs = [(net.shibuya.pk, net.skus[0].pk), (net.shibuya.pk, net.skus[1].pk)]
    before = available_at(pairs=pairs)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{live_server.url}/admin/login/?next=/admin/returns/deskreturn/")
        page.fill("#id_username", "desk-shibuya")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/returns/deskreturn/")
        assert page.locator("h1").inner_text().startswith("Returns desk")

        page.fill("#searchbar", "090-1234-5678")
        page.press("#searchbar", "Enter")
        page.wait_for_selector("#desk-found")
        found = page.locator("#desk-found tbody tr")
        assert found.count() == 1
        page.screenshot(path=str(SCREENSHOTS / "returns-desk.png"), full_page=True)
        found.first.locator(f'a[data-return="{ret.number}"]').click()
        page.wait_for_selector("#receive")
        assert "a tear in the sleeve" in page.content()
        assert "Help desk (Mika)" in page.content()

        page.select_option('select[name="condition_TEE-0"]', "resellable")
        page.select_option('select[name="condition_TEE-1"]', "damaged")
        page.click('#receive button[type="submit"]')
        page.wait_for_selector(".messagelist .success")
        assert page.locator("[data-status]").get_attribute("data-status") == "received"
        page.screenshot(path=str(SCREENSHOTS / "returns-desk-card.png"), full_page=True)
        browser.close()

    ret.refresh_from_db()
    assert ret.status == ReturnStatus.RECEIVED
    after = available_at(pairs=pairs)
    assert after[pairs[0]] == before[pairs[0]] + 1  # resellable: back on Shibuya's shelf
    assert after[pairs[1]] == before[pairs[1]]  # damaged: written off
    assert Refund.objects.filter(return_ref=ret).count() == 1
    assert Return.objects.get(pk=ret.pk).received_by == associate
