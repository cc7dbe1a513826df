"""config.api.serializers.InputSerializer: one set of field objects per class, shared by every instance."""

import copy
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from orders.api.serializers import CustomerIn, OrderCreateIn

VALID = {
    "channel": "web",
    "customer": {"email": "hana@example.com", "name": "Hana"},
    "fulfillment": {"method": "ship", "address": {"line1": "1-2-3 Jingumae", "city": "Tokyo"}},
    "lines": [
        {"sku": "TEE-BLK-M", "quantity": 2, "unit_price": "1980.00"},
        {"sku": "CAP-RED", "quantity": 1, "unit_price": "990"},
    ],
    "currency": "JPY",
}


def _payload(**changes):
    data = copy.deepcopy(VALID)
    data.update(changes)
    return data


def _line(**changes):
    return {"sku": "TEE-BLK-M", "quantity": 1, "unit_price": "1980.00", **changes}


NO_CHANNEL = {k: v for k, v in VALID.items() if k != "channel"}
ZERO_QUANTITY = _payload(lines=[_line(), _line(quantity=0)])
BAD_PRICE = _payload(lines=[_line(unit_price="abc")])
LONG_EMAIL = _payload(customer={"email": "a" * 250 + "@example.com"})


def _check_valid(s):
    assert s.is_valid(), s.errors
    assert s.errors == {}
    data = s.validated_data
    assert data["channel"] == "web"
    assert data["customer"]["email"] == "hana@example.com"
    assert data["customer"]["name"] == "Hana"
    assert data["fulfillment"]["method"] == "ship"
    assert data["fulfillment"]["address"] == {"line1": "1-2-3 Jingumae", "city": "Tokyo"}
    assert [(ln["sku"], ln["quantity"], ln["unit_price"]) for ln in data["lines"]] == [
        ("TEE-BLK-M", 2, Decimal("1980.00")),
        ("CAP-RED", 1, Decimal("990")),
    ]
    assert data["currency"] == "JPY"


def _codes(errors):
    """The error codes of a nested errors structure, keyed by path ("lines.1.quantity")."""
    out = {}

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, [*path, str(key)])
        elif isinstance(node, list) and node and not isinstance(node[0], dict | list):
            out[".".join(path)] = [getattr(e, "code", None) for e in node]
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, [*path, str(i)])

    walk(errors, [])
    return out


INVALID = [
    (NO_CHANNEL, {"channel": ["required"]}),
    (ZERO_QUANTITY, {"lines.1.quantity": ["min_value"]}),
    (BAD_PRICE, {"lines.0.unit_price": ["invalid"]}),
    (LONG_EMAIL, {"customer.email": ["max_length"]}),
    (_payload(channel="fax"), {"channel": ["invalid_choice"]}),
    (_payload(lines=[]), {"lines": ["empty"]}),
]


def test_a_valid_payload_validates():
    _check_valid(OrderCreateIn(data=VALID))


@pytest.mark.parametrize(("payload", "expected"), INVALID)
def test_an_invalid_payload_gives_the_field_errors(payload, expected):
    s = OrderCreateIn(data=payload)
    assert not s.is_valid()
    assert _codes(s.errors) == expected


def test_valid_invalid_valid_in_turn_leak_nothing():
    _check_valid(OrderCreateIn(data=VALID))
    for payload, expected in INVALID:
        s = OrderCreateIn(data=payload)
        assert not s.is_valid()
        assert _codes(s.errors) == expected
        _check_valid(OrderCreateIn(data=VALID))


def test_several_errors_in_one_payload_are_all_reported():
    payload = {
        **NO_CHANNEL,
        "lines": [_line(quantity=0, unit_price="abc")],
        "customer": LONG_EMAIL["customer"],
    }
    s = OrderCreateIn(data=payload)
    assert not s.is_valid()
    assert _codes(s.errors) == {
        "channel": ["required"],
        "lines.0.quantity": ["min_value"],
        "lines.0.unit_price": ["invalid"],
        "customer.email": ["max_length"],
    }


def test_two_instances_alive_at_once_keep_their_own_results():
    bad = OrderCreateIn(data=ZERO_QUANTITY)
    good = OrderCreateIn(data=VALID)
    assert not bad.is_valid()
    _check_valid(good)
    other_bad = OrderCreateIn(data=LONG_EMAIL)
    assert not other_bad.is_valid()
    assert _codes(bad.errors) == {"lines.1.quantity": ["min_value"]}
    assert _codes(other_bad.errors) == {"customer.email": ["max_length"]}
    _check_valid(good)  # validated_data untouched by the later instances
    assert bad.validated_data == {}
    assert other_bad.validated_data == {}
    assert good.errors == {}


def test_the_field_objects_are_shared_per_class():
    assert OrderCreateIn(data=VALID).fields is OrderCreateIn(data=NO_CHANNEL).fields
    assert CustomerIn().fields is CustomerIn().fields
    assert CustomerIn().fields is not OrderCreateIn().fields


def test_the_nested_serializer_used_alone_validates_independently():
    assert not OrderCreateIn(data=LONG_EMAIL).is_valid()
    alone = CustomerIn(data={"email": "kenji@example.com"})
    assert alone.is_valid(), alone.errors
    assert alone.validated_data == {"email": "kenji@example.com", "name": ""}
    too_long = CustomerIn(data={"email": "a" * 255})
    assert not too_long.is_valid()
    assert _codes(too_long.errors) == {"email": ["max_length"]}


@pytest.mark.parametrize("fresh_class", [False, True], ids=["fields-built", "fields-built-under-contention"])
def test_concurrent_validation_from_eight_threads_gives_each_its_own_result(fresh_class):
    serializer = type("FreshOrderCreateIn", (OrderCreateIn,), {}) if fresh_class else OrderCreateIn
    cases = [(VALID, None), *INVALID]
    rounds = 150
    barrier = threading.Barrier(8)
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible

    def worker(offset):
        barrier.wait()
        wrong = []
        for i in range(rounds):
            payload, expected = cases[(i + offset) % len(cases)]
            s = serializer(data=payload)
            ok = s.is_valid()
            if expected is None:
                try:
                    _check_valid(s)
                except AssertionError as exc:
                    wrong.append((i, "valid", repr(exc)))
            elif ok or _codes(s.errors) != expected:
                wrong.append((i, expected, s.errors))
        return wrong

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(worker, range(8)))
    finally:
        sys.setswitchinterval(old_interval)
    assert results == [[]] * 8
