"""Lockers under concurrency, against PostgreSQL: two associates loading different orders into one
compartment at the same moment, and a controller's two requests for one code (a retry racing the
first): exactly one of each wins, the other is a clean 409, and the DB constraint never fires."""

import pytest

from orders import services
from orders.exceptions import AlreadyCollected, CompartmentEmpty, CompartmentOccupied
from orders.models import Fulfillment
from stores.models import Compartment, PickupPoint, Role
from tests.factories import make_staff
from tests.orders.conftest import pickup, place
from tests.orders.test_concurrency import run_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _ready(email: str) -> Fulfillment:
    f = place(("TEE-0", 1), fulfillment=pickup(), email=email).fulfillments.get()
    services.fulfillment_start(fulfillment_id=f.pk, user=None)
    return services.fulfillment_ready(fulfillment_id=f.pk, user=None)


@pytest.fixture
def locker(net):
    bank = PickupPoint.objects.create(code="SBY-L1", store=net.shibuya, name="Shibuya locker")
    Compartment.objects.create(pickup_point=bank, label="A1")
    return bank


@pytest.mark.parametrize("racers", [2, 3])
def test_loads_racing_for_one_compartment_one_wins(net, locker, racers):
    associate = make_staff(role=Role.ASSOCIATE, locations=[net.shibuya])
    fs = [_ready(f"racer{i}@example.com") for i in range(racers)]

    def load(i):
        try:
            services.locker_load(fulfillment_id=fs[i].pk, locker="SBY-L1", compartment="A1", user=associate)
            return "ok"
        except CompartmentOccupied:
            return "occupied"

    results = run_threads(racers, load)
    assert sorted(results) == ["occupied"] * (racers - 1) + ["ok"]
    inside = list(Fulfillment.objects.filter(compartment__isnull=False))
    assert len(inside) == 1
    winner = inside[0]
    assert fs[results.index("ok")].pk == winner.pk


def test_two_opens_with_one_code_collect_once(net, locker):
    associate = make_staff(role=Role.ASSOCIATE, locations=[net.shibuya])
    device = make_staff(role=Role.LOCKER, locations=[net.shibuya])
    f = _ready("open@example.com")
    f = services.locker_load(fulfillment_id=f.pk, locker="SBY-L1", compartment="A1", user=associate)

    def open_(i):
        try:
            services.locker_open(locker="SBY-L1", pickup_code=f.pickup_code, user=device, channel="locker")
            return "ok"
        except (AlreadyCollected, CompartmentEmpty):
            return "done"

    results = run_threads(4, open_)
    assert results.count("ok") == 1
    assert results.count("done") == 3
    f.refresh_from_db()
    assert f.status == "collected"
    assert f.order.events.filter(to_status="collected").count() == 1
