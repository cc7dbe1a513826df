import factory
from django.contrib.auth import get_user_model

from inventory.models import Sku, StockLevel
from stores.models import Location, LocationKind, Role, StaffAssignment, StaffProfile


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Location

    code = factory.Sequence(lambda n: f"LOC-{n:03d}")
    name = factory.Sequence(lambda n: f"Location {n}")
    kind = LocationKind.STORE
    address = "1-2-3 Jingumae, Shibuya"
    latitude = 35.6595
    longitude = 139.7005
    ships_orders = True
    offers_pickup = True
    accepts_returns = True


class WarehouseFactory(LocationFactory):
    code = factory.Sequence(lambda n: f"WH-{n:03d}")
    kind = LocationKind.WAREHOUSE
    offers_pickup = False
    accepts_returns = False
    latitude = 35.5494
    longitude = 139.7798


class SkuFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sku

    code = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    barcode = factory.Sequence(lambda n: f"49{n:011d}")
    category = "apparel"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pw-123456!")


def make_staff(role: str = Role.ASSOCIATE, locations=(), *, network_wide: bool = False, **kwargs):
    """A user with a role, assigned to `locations` (`network_wide`: a manager of every location)."""
    user = UserFactory(**kwargs)
    user.save()
    StaffProfile.objects.create(user=user, role=role, network_wide=network_wide)
    for loc in locations:
        StaffAssignment.objects.create(user=user, location=loc)
    return user


def stock(location, sku, on_hand: int, *, safety_stock: int = 0) -> StockLevel:
    """Put stock in place through the services (so the ledger agrees)."""
    from inventory.services import Line, stock_receive, stock_set_safety_stock

    if on_hand:
        stock_receive(lines=[Line(location.pk, sku.pk, on_hand)], reference="test")
    if safety_stock:
        stock_set_safety_stock(location=location, sku=sku, safety_stock=safety_stock)
    return StockLevel.objects.get(location=location, sku=sku)
