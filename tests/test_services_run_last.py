"""config.services.run_last: work that runs after the outermost service returns, before COMMIT."""

import functools

import pytest
from django.db import connection, transaction

from config.services import run_last, service
from inventory.models import Sku
from stores.models import Location

from .factories import LocationFactory, SkuFactory


class Boom(Exception):
    pass


def _make_sku(code):
    SkuFactory(code=code)


def _sku_exists(code):
    return Sku.objects.filter(code=code).exists()


@pytest.mark.django_db
def test_outside_a_service_the_work_runs_at_once():
    log = []
    run_last(functools.partial(log.append, "work"))
    assert log == ["work"]


@pytest.mark.django_db
def test_inside_a_plain_atomic_block_the_work_runs_at_once():
    log = []
    with transaction.atomic():
        run_last(functools.partial(log.append, "work"))
        log.append("after")
    assert log == ["work", "after"]


@pytest.mark.django_db
def test_the_work_runs_after_the_service_function_returns():
    log = []

    @service
    def place():
        _make_sku("RL-1")
        run_last(lambda: log.append(("last", _sku_exists("RL-1"))))
        log.append("body end")
        return "result"

    assert place() == "result"
    assert log == ["body end", ("last", True)]


@pytest.mark.django_db
def test_works_run_in_the_order_they_were_registered():
    log = []

    @service
    def place():
        for n in range(3):
            run_last(functools.partial(log.append, n))

    place()
    assert log == [0, 1, 2]


@pytest.mark.django_db
def test_a_nested_services_work_runs_at_the_end_of_the_outermost_service():
    log = []

    @service
    def inner():
        _make_sku("RL-INNER")
        run_last(functools.partial(log.append, "inner last"))
        log.append("inner end")

    @service
    def outer():
        run_last(functools.partial(log.append, "outer last"))
        inner()
        log.append("outer after inner")
        _make_sku("RL-OUTER")

    outer()
    assert log == ["inner end", "outer after inner", "outer last", "inner last"]
    assert _sku_exists("RL-INNER")
    assert _sku_exists("RL-OUTER")


@pytest.mark.django_db
def test_the_work_sees_what_the_service_wrote_and_may_write_itself():
    @service
    def place():
        loc = LocationFactory(code="RL-LOC")
        run_last(functools.partial(_make_sku, "RL-BY-WORK"))
        return loc

    loc = place()
    assert Location.objects.filter(pk=loc.pk).exists()
    assert _sku_exists("RL-BY-WORK")


@pytest.mark.django_db
def test_an_error_in_the_work_rolls_everything_back_and_propagates():
    @service
    def inner():
        _make_sku("RL-INNER")

    @service
    def place():
        LocationFactory(code="RL-LOC")
        inner()
        run_last(functools.partial(_make_sku, "RL-BY-WORK"))
        run_last(_raise)

    def _raise():
        raise Boom("the stock is gone")

    with pytest.raises(Boom, match="the stock is gone"):
        place()
    assert not Location.objects.filter(code="RL-LOC").exists()
    assert not _sku_exists("RL-INNER")
    assert not _sku_exists("RL-BY-WORK")


@pytest.mark.django_db
def test_an_error_in_a_work_skips_the_works_after_it():
    log = []

    def _raise():
        raise Boom

    @service
    def place():
        run_last(_raise)
        run_last(functools.partial(log.append, "never"))

    with pytest.raises(Boom):
        place()
    assert log == []


@pytest.mark.django_db
def test_an_error_in_the_service_body_runs_no_work():
    log = []

    @service
    def place():
        run_last(functools.partial(log.append, "never"))
        raise Boom

    with pytest.raises(Boom):
        place()
    assert log == []


@pytest.mark.django_db
def test_work_is_not_carried_over_to_the_next_service_call():
    log = []

    @service
    def first():
        run_last(functools.partial(log.append, "first"))

    @service
    def second():
        log.append("second body")

    first()
    second()
    assert log == ["first", "second body"]


@pytest.mark.django_db
def test_work_registered_by_work_also_runs():
    log = []

    @service
    def place():
        run_last(lambda: run_last(functools.partial(log.append, "second")))
        log.append("body")

    place()
    assert log == ["body", "second"]


@pytest.mark.django_db
def test_work_of_a_nested_service_rolled_back_by_its_savepoint_does_not_run():
    """config/services.py documents catching a nested service's error inside transaction.atomic()."""
    log = []

    @service
    def inner():
        _make_sku("RL-INNER")
        run_last(functools.partial(log.append, "inner last"))
        raise Boom

    @service
    def outer():
        try:
            with transaction.atomic():
                inner()
        except Boom:
            log.append("caught")

    outer()
    assert not _sku_exists("RL-INNER")
    assert log == ["caught"]


@pytest.mark.django_db(transaction=True)
def test_the_work_runs_inside_the_transaction_before_on_commit_callbacks():
    log = []

    def work():
        log.append(("last", connection.in_atomic_block, _sku_exists("RL-1")))

    @service
    def place():
        _make_sku("RL-1")
        transaction.on_commit(functools.partial(log.append, "committed"))
        run_last(work)
        log.append("body end")

    assert not connection.in_atomic_block
    place()
    assert log == ["body end", ("last", True, True), "committed"]
    assert _sku_exists("RL-1")


@pytest.mark.django_db(transaction=True)
def test_a_failing_work_leaves_nothing_committed():
    committed = []

    def _raise():
        raise Boom

    @service
    def place():
        LocationFactory(code="RL-LOC")
        transaction.on_commit(functools.partial(committed.append, True))
        run_last(_raise)

    with pytest.raises(Boom):
        place()
    assert committed == []
    assert not Location.objects.filter(code="RL-LOC").exists()


@pytest.mark.django_db(transaction=True)
def test_work_registered_from_an_on_commit_callback_runs_at_once():
    """After COMMIT there is no transaction left to defer to: the work runs where it is asked."""
    from django.db import transaction

    log = []

    @service
    def place():
        transaction.on_commit(lambda: run_last(functools.partial(log.append, "after commit")))
        log.append("body")

    place()
    assert log == ["body", "after commit"]


def test_shared_input_fields_hold_no_request_data():
    from orders.api.serializers import OrderCreateIn

    s = OrderCreateIn(data={"channel": "web", "customer": {"email": "secret@example.com"}})
    s.is_valid()
    for field in s.fields.values():
        assert field.parent is not s
        assert getattr(field.parent, "initial_data", None) is None
