"""Smoke test of bench/desk.py in a tiny mode: the PostgreSQL-side generation makes consistent rows
(every order with its customer, lines and a fulfillment; contacts that the application's own
normalisation would have written), and every lookup the bench makes finds the order it must, in
the same number of queries. No timing asserted."""

import pytest
from django.db.models import Count

from bench import desk as bench_desk
from config.contacts import normalise_email, normalise_phone
from orders.models import Customer, Fulfillment, Order, OrderLine


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_generated_rows_are_consistent_and_every_lookup_finds_its_order():
    made = bench_desk.setup(orders=3000)
    assert made["orders"] == 3000
    assert made["customers"] == 900
    assert not Order.objects.annotate(n=Count("fulfillments")).exclude(n=1).exists()
    assert not Order.objects.annotate(n=Count("lines")).filter(n=0).exists()
    assert OrderLine.objects.count() >= 3000
    assert Fulfillment.objects.count() == 3000
    per_customer = Customer.objects.annotate(n=Count("orders")).filter(n__gt=0).values_list("n", flat=True)
    assert max(per_customer) <= 10
    for c in Customer.objects.order_by("pk")[:200]:
        assert c.email is None or normalise_email(c.email) == c.email
        assert c.phone is None or normalise_phone(c.phone) == c.phone
    # Some orders are found only through the customer (given another contact, or none).
    assert Order.objects.filter(contact_email__startswith="old").exists()

    cases = bench_desk.samples(lookups=25)
    assert all(len(v) == 25 for v in cases.values())
    rows, all_found = bench_desk.measure(user_id=made["user"], cases=cases)
    assert all_found
    assert [r[3] for r in rows] == ["6", "6", "6"]  # one count per kind: constant
    assert "BitmapOr" in bench_desk.explain(phone=cases["phone, national form (090-1234-5678)"][0][0])

    again = bench_desk.setup(orders=3000)
    assert again["reused"]
