"""config.db: rows read back from JSON equal the ORM's, and one-statement inserts that return their ids."""

import datetime as dt
import json

import pytest
from django.db import connection
from django.utils import timezone

from config.db import (
    insert_returning,
    json_array_sql,
    json_object_sql,
    json_rows,
    model_from_dict,
    models_from_json,
    set_pks,
    text_cast,
)
from inventory.models import Sku
from notifications.models import DeliveryChannel, Notification, NotificationEvent, NotificationStatus
from orders.models import Customer
from stores.models import Location

from .factories import LocationFactory, SkuFactory

pytestmark = pytest.mark.django_db

ON_CONFLICT = "ON CONFLICT (dedupe_key) DO UPDATE SET dedupe_key = EXCLUDED.dedupe_key"


def _table(model):
    return connection.ops.quote_name(model._meta.db_table)


def _select_one(model, pk):
    sql = f"SELECT {text_cast(json_object_sql(model, 't'))} FROM {_table(model)} t WHERE t.id = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk])
        (text,) = cursor.fetchone()
    return text


def _select_all(model, pks):
    marks = ", ".join(["%s"] * len(pks))
    sql = f"SELECT {text_cast(json_array_sql(model, 't'))} FROM {_table(model)} t WHERE t.id IN ({marks})"
    with connection.cursor() as cursor:
        cursor.execute(sql, list(pks))
        (text,) = cursor.fetchone()
    return text


def _values(obj):
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def _assert_same(decoded, orm):
    assert type(decoded) is type(orm)
    assert decoded.pk == orm.pk
    assert _values(decoded) == _values(orm)
    for f in type(orm)._meta.concrete_fields:
        got, want = getattr(decoded, f.attname), getattr(orm, f.attname)
        assert type(got) is type(want), (f.name, got, want)
        if isinstance(want, dt.datetime):
            assert got.utcoffset() == want.utcoffset() == dt.timedelta(0), f.name
    assert decoded._state.adding is False
    assert decoded._state.db == connection.alias


def _read_back(model, pk):
    (decoded,) = models_from_json(model, _select_one(model, pk))
    return decoded


def _location(**kwargs):
    defaults = {
        "code": "TKY-GINZA",
        "name": 'Ginza "flagship" 銀座',
        "city": "Tokyo",
        "latitude": 35.6717,
        "longitude": 139.765,
        "opening_hours": {"mon": ["10:00", "20:00"], "sun": None, "note": "closed 1/1", "floor": 3},
        "ships_orders": False,
        "offers_pickup": True,
        "accepts_returns": False,
        "is_active": True,
        "fulfillment_priority": 7,
        "daily_capacity": 0,
    }
    return LocationFactory(**{**defaults, **kwargs})


def test_a_location_reads_back_equal_to_the_orm():
    loc = _location()
    _assert_same(_read_back(Location, loc.pk), Location.objects.get(pk=loc.pk))


def test_a_location_with_negative_coordinates_and_empty_hours():
    loc = _location(latitude=-33.8688, longitude=-151.2093, opening_hours={}, is_active=False)
    decoded = _read_back(Location, loc.pk)
    _assert_same(decoded, Location.objects.get(pk=loc.pk))
    assert decoded.latitude == -33.8688
    assert decoded.is_active is False


def test_floats_with_seventeen_significant_digits_read_back_exactly():
    """SQLite's json_object() would print a REAL with 15 significant digits; config.db asks for 17."""
    loc = _location(latitude=35.123456789012344, longitude=0.1 + 0.2)
    decoded = _read_back(Location, loc.pk)
    assert (decoded.latitude, decoded.longitude) == (35.123456789012344, 0.30000000000000004)


def test_a_sku_reads_back_equal_to_the_orm():
    sku = SkuFactory(
        code="TEE-WHT-L",
        attributes={"size": "L", "color": "white", "tags": ["cotton", "basic"], "pack": 2, "organic": True},
        returnable=False,
        low_stock_threshold=4,
    )
    _assert_same(_read_back(Sku, sku.pk), Sku.objects.get(pk=sku.pk))


def test_a_sku_with_nulls_reads_back_equal_to_the_orm():
    sku = SkuFactory(code="GIFT-CARD", barcode=None, attributes={}, low_stock_threshold=None, category="")
    decoded = _read_back(Sku, sku.pk)
    _assert_same(decoded, Sku.objects.get(pk=sku.pk))
    assert decoded.barcode is None
    assert decoded.low_stock_threshold is None


def test_floats_inside_a_json_field_read_back_as_floats():
    sku = SkuFactory(code="TEE-WEIGHT", attributes={"weight_kg": 0.1, "dims": [0.3, 12.5]})
    decoded = _read_back(Sku, sku.pk)
    assert decoded.attributes == Sku.objects.get(pk=sku.pk).attributes
    assert type(decoded.attributes["weight_kg"]) is float
    decoded.save()  # a JSONField holding a Decimal cannot be saved


def test_a_customer_with_a_preferred_location_reads_back_equal_to_the_orm(store):
    c = Customer.objects.create(
        email="hana@example.com",
        phone="+819012345678",
        name="Hana",
        preferred_location=store,
        language="ja",
        notify_channels=["email", "sms"],
    )
    # A created_at with a different offset and no microseconds: stored and returned as UTC.
    jst = dt.timezone(dt.timedelta(hours=9))
    Customer.objects.filter(pk=c.pk).update(created_at=dt.datetime(2024, 5, 1, 9, 30, tzinfo=jst))
    orm = Customer.objects.get(pk=c.pk)
    decoded = _read_back(Customer, c.pk)
    _assert_same(decoded, orm)
    assert decoded.created_at == dt.datetime(2024, 5, 1, 0, 30, tzinfo=dt.UTC)
    assert decoded.preferred_location_id == store.pk


def test_a_customer_without_email_or_location_reads_back_equal_to_the_orm():
    c = Customer.objects.create(phone="+819011112222")
    orm = Customer.objects.get(pk=c.pk)
    decoded = _read_back(Customer, c.pk)
    _assert_same(decoded, orm)
    assert decoded.email is None
    assert decoded.preferred_location_id is None
    assert decoded.notify_channels == []
    assert decoded.created_at.microsecond == orm.created_at.microsecond


def test_json_array_returns_every_row():
    locs = [_location(code=f"LOC-A{n}", latitude=35 + n / 10) for n in range(3)]
    decoded = models_from_json(Location, _select_all(Location, [loc.pk for loc in locs]))
    assert sorted(d.pk for d in decoded) == sorted(loc.pk for loc in locs)
    by_pk = {d.pk: d for d in decoded}
    for loc in Location.objects.filter(pk__in=[loc.pk for loc in locs]):
        _assert_same(by_pk[loc.pk], loc)


def test_json_array_of_customers_returns_every_row(store):
    a = Customer.objects.create(email="a@example.com", preferred_location=store)
    b = Customer.objects.create(phone="+819033334444", notify_channels=["sms"])
    decoded = {c.pk: c for c in models_from_json(Customer, _select_all(Customer, [a.pk, b.pk]))}
    for orm in Customer.objects.filter(pk__in=[a.pk, b.pk]):
        _assert_same(decoded[orm.pk], orm)


def test_json_array_of_no_rows_decodes_to_an_empty_list():
    # json_agg of no rows is NULL on PostgreSQL; json_group_array gives "[]" on SQLite.
    assert models_from_json(Sku, _select_all(Sku, [-1])) == []


@pytest.mark.parametrize("text", [None, "null", "[]"])
def test_nothing_decodes_to_an_empty_list(text):
    assert models_from_json(Location, text) == []


def test_a_single_object_decodes_to_a_list_of_one():
    sku = SkuFactory(code="ONE")
    text = _select_one(Sku, sku.pk)
    assert json.loads(text)["code"] == "ONE"
    (decoded,) = models_from_json(Sku, text)
    assert decoded.pk == sku.pk


def test_model_from_dict_converts_each_field():
    decoded = model_from_dict(
        Customer,
        {
            "id": 5,
            "email": None,
            "phone": "+81900",
            "name": "",
            "preferred_location_id": None,
            "language": "en",
            "notify_channels": ["sms"],
            "created_at": "2024-05-01 00:30:00",
        },
    )
    assert decoded.pk == 5
    assert decoded.created_at == dt.datetime(2024, 5, 1, 0, 30, tzinfo=dt.UTC)
    assert decoded.notify_channels == ["sms"]
    assert decoded._state.adding is False


# --- insert_returning, json_rows, set_pks ----------------------------------------------------


def test_insert_returning_inserts_in_order_and_sets_the_pks():
    objs = [
        LocationFactory.build(
            code=f"INS-{n}", name=f"Insert {n}", latitude=35 + n / 100, opening_hours={"n": n}
        )
        for n in range(5)
    ]
    insert_returning(objs)
    assert all(o.pk is not None for o in objs)
    assert [o.pk for o in objs] == sorted(o.pk for o in objs)
    for o in objs:
        stored = Location.objects.get(pk=o.pk)
        assert stored.code == o.code
        assert stored.latitude == o.latitude
        assert stored.opening_hours == o.opening_hours
    # The objects are the stored rows: saving one updates it, it does not insert another.
    objs[0].name = "Renamed"
    objs[0].save()
    assert Location.objects.filter(code__startswith="INS-").count() == 5
    assert Location.objects.get(pk=objs[0].pk).name == "Renamed"


def test_insert_returning_fills_auto_now_add_fields():
    before = timezone.now()
    objs = [Customer(email=f"c{n}@example.com", notify_channels=["email"]) for n in range(3)]
    insert_returning(objs)
    for o in objs:
        stored = Customer.objects.get(pk=o.pk)
        assert stored.email == o.email
        assert stored.created_at >= before
        assert stored.created_at == o.created_at


def test_insert_returning_of_nothing_does_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        insert_returning([])


def _notification(key, **kwargs):
    return Notification(
        event=NotificationEvent.ORDER_CONFIRMED,
        channel=DeliveryChannel.EMAIL,
        recipient="hana@example.com",
        dedupe_key=key,
        context={"order_number": key},
        next_attempt_at=timezone.now(),
        **kwargs,
    )


def test_on_conflict_returns_the_existing_rows_id():
    (existing,) = [_notification("order-event:1:email")]
    insert_returning([existing], on_conflict=ON_CONFLICT)
    batch = [
        _notification("order-event:2:email"),
        _notification("order-event:1:email", language="ja"),
        _notification("order-event:3:email"),
    ]
    insert_returning(batch, on_conflict=ON_CONFLICT)
    assert batch[1].pk == existing.pk
    assert Notification.objects.count() == 3
    for n in batch:
        assert Notification.objects.get(pk=n.pk).dedupe_key == n.dedupe_key
    assert Notification.objects.get(pk=existing.pk).language == "en"  # the row is left as it was


def test_on_conflict_for_a_row_written_by_the_orm():
    first = Notification.objects.create(
        event=NotificationEvent.REFUND_ISSUED,
        channel=DeliveryChannel.SMS,
        recipient="+819012345678",
        dedupe_key="refund:7:sms",
        next_attempt_at=timezone.now(),
        status=NotificationStatus.SENT,
    )
    again = _notification("refund:7:sms")
    insert_returning([again], on_conflict=ON_CONFLICT)
    assert again.pk == first.pk
    first.refresh_from_db()
    assert first.status == NotificationStatus.SENT
    assert first.channel == DeliveryChannel.SMS


def test_json_rows_holds_each_objects_insert_values_and_position():
    objs = [Customer(email="a@example.com", name="A"), Customer(phone="+8190", name="B")]
    rows = json_rows(objs, tag=lambda c: c.name.lower())
    assert [r["n"] for r in rows] == [0, 1]
    assert [r["tag"] for r in rows] == ["a", "b"]
    assert rows[0]["email"] == "a@example.com"
    assert rows[1]["phone"] == "+8190"
    assert "id" not in rows[0]
    assert rows[0]["created_at"] is not None  # auto_now_add filled as save() would
    assert json.loads(json.dumps(rows, default=str))[1]["name"] == "B"
    assert json_rows([]) == []


def test_set_pks_gives_each_object_its_pk():
    objs = [Customer(email="x@example.com"), Customer(email="y@example.com")]
    set_pks(objs, [41, 42])
    assert [o.pk for o in objs] == [41, 42]
    with pytest.raises(ValueError, match="zip"):
        set_pks(objs, [1])
