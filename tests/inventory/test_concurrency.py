"""Never oversell: real threads on PostgreSQL, each with its own connection.

Every worker thread waits on a barrier so that they all hit the stock rows at once, records
what happened to each call, and closes its connection at the end. Any exception other than
InsufficientStock (a deadlock 40P01, a serialization failure, a StockConflict, a CHECK
violation) fails the test.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter, defaultdict
from collections.abc import Callable

import pytest
from django.db import connection
from django.db.models import Sum

from inventory.exceptions import InsufficientStock
from inventory.models import HoldLine, MovementKind, StockLevel, StockMovement
from inventory.selectors import ledger_mismatches
from inventory.services import (
    Line,
    hold_convert,
    hold_create,
    hold_release,
    stock_commit,
    stock_release,
    stock_reserve,
)
from tests.factories import LocationFactory, SkuFactory, stock

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 32
JOIN_TIMEOUT = 60  # seconds; a hung thread (lock wait forever) fails the test instead of hanging it


def run_threads(n: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run work(i) in n threads released together; return the unexpected exceptions."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def target(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            work(i)
        except BaseException as exc:  # collected and asserted on in the test's own thread
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT)
    assert not [t for t in threads if t.is_alive()], "worker threads still running (lock wait?)"
    return errors


class Sampler:
    """Reads the stock rows again and again while the workers run, recording invariant breaks."""

    def __init__(self, level_ids: list[int]):
        self.level_ids = level_ids
        self.bad: list[tuple] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for row in StockLevel.objects.filter(pk__in=self.level_ids).values_list(
                    "pk", "on_hand", "reserved", "held", "safety_stock"
                ):
                    _, on_hand, reserved, held, safety = row
                    if min(on_hand, reserved, held) < 0 or on_hand - reserved - held - safety < 0:
                        self.bad.append(row)
                self.samples += 1
        finally:
            connection.close()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(JOIN_TIMEOUT)


def unexpected(errors: list[BaseException]) -> list[str]:
    return [f"{type(e).__name__}: {e}" for e in errors if not isinstance(e, InsufficientStock)]


def test_last_units_one_each_exactly_n_succeed():
    store, sku = LocationFactory(), SkuFactory()
    n_units = 10
    lvl = stock(store, sku, n_units)
    wins: list[int] = []
    sold_out: list[int] = []  # the availability each refusal reported

    def work(i: int) -> None:
        try:
            stock_reserve(lines=[Line(store.pk, sku.pk, 1)], reference=f"O-{i}")
        except InsufficientStock as exc:
            sold_out.append(exc.details["lines"][0]["available"])
        else:
            wins.append(i)

    with Sampler([lvl.pk]) as sampler:
        errors = run_threads(THREADS * 2, work)

    assert unexpected(errors) == []
    assert len(wins) == n_units
    assert len(sold_out) == THREADS * 2 - n_units
    assert set(sold_out) == {0}  # every refusal saw the SKU sold out
    lvl.refresh_from_db()
    assert (lvl.on_hand, lvl.reserved, lvl.held) == (n_units, n_units, 0)
    reservations = StockMovement.objects.filter(kind=MovementKind.RESERVATION, sku=sku)
    assert sorted(reservations.values_list("reference", flat=True)) == sorted(f"O-{i}" for i in wins)
    assert sampler.samples > 0
    assert sampler.bad == []
    assert ledger_mismatches() == []


def test_last_units_random_quantities_never_oversell():
    store, sku = LocationFactory(), SkuFactory()
    n_units = 10
    lvl = stock(store, sku, n_units)
    rng = random.Random(20261122)
    wanted = [rng.randint(1, 3) for _ in range(THREADS)]
    won: dict[int, int] = {}
    lost: dict[int, int] = {}

    def work(i: int) -> None:
        try:
            stock_reserve(lines=[Line(store.pk, sku.pk, wanted[i])], reference=f"O-{i}")
        except InsufficientStock:
            lost[i] = wanted[i]
        else:
            won[i] = wanted[i]

    with Sampler([lvl.pk]) as sampler:
        errors = run_threads(THREADS, work)

    assert unexpected(errors) == []
    assert len(won) + len(lost) == THREADS
    lvl.refresh_from_db()
    assert lvl.reserved == sum(won.values()) <= n_units
    left = lvl.on_hand - lvl.reserved
    # Availability only went down, so every refused request wanted more than what is left now:
    # a refusal while enough was available would be an undersell, a success beyond it an oversell.
    assert lost
    assert min(lost.values()) > left
    ledger_reserved = StockMovement.objects.filter(sku=sku, kind=MovementKind.RESERVATION).aggregate(
        s=Sum("reserved_delta")
    )["s"]
    assert ledger_reserved == lvl.reserved
    assert sampler.bad == []
    assert ledger_mismatches() == []


def test_many_skus_random_line_order_no_deadlock_and_totals_hold():
    locations = [LocationFactory() for _ in range(3)]
    skus = [SkuFactory() for _ in range(20)]
    rng = random.Random(7)
    keys = []
    initial: dict[tuple[int, int], int] = {}
    for sku in skus:
        for loc in rng.sample(locations, rng.randint(1, 3)):
            qty = rng.randint(3, 12)
            stock(loc, sku, qty)
            initial[(loc.pk, sku.pk)] = qty
            keys.append((loc.pk, sku.pk))
    level_ids = list(StockLevel.objects.values_list("pk", flat=True))
    rounds = 12
    results: list[list[tuple[str, list[Line]]]] = [[] for _ in range(THREADS)]
    refused = Counter()

    def work(i: int) -> None:
        r = random.Random(i)
        for k in range(rounds):
            picked = r.sample(keys, r.randint(1, 5))
            lines = [Line(loc, sku, r.randint(1, 3)) for loc, sku in picked]
            r.shuffle(lines)
            ref = f"T{i}-{k}"
            try:
                stock_reserve(lines=lines, reference=ref)
            except InsufficientStock:
                refused[i] += 1
                continue
            fate = r.choice(["keep", "release", "commit"])
            results[i].append(("reserve", lines))
            if fate != "keep":
                # A subset, shuffled again: the release/commit locks rows in another order.
                back = r.sample(lines, r.randint(1, len(lines)))
                if fate == "release":
                    stock_release(lines=back, reference=ref)
                else:
                    stock_commit(lines=back, reference=ref)
                results[i].append((fate, back))

    with Sampler(level_ids) as sampler:
        errors = run_threads(THREADS, work)

    assert unexpected(errors) == []  # no 40P01 deadlock, no 40001, no StockConflict
    assert not errors
    reserved: dict[tuple[int, int], int] = defaultdict(int)
    committed: dict[tuple[int, int], int] = defaultdict(int)
    for per_thread in results:
        for what, lines in per_thread:
            for ln in lines:
                key = (ln.location_id, ln.sku_id)
                if what == "reserve":
                    reserved[key] += ln.quantity
                elif what == "release":
                    reserved[key] -= ln.quantity
                else:
                    reserved[key] -= ln.quantity
                    committed[key] += ln.quantity
    successes = sum(1 for per in results for what, _ in per if what == "reserve")
    # The race was real: both outcomes happened.
    assert successes > 0
    assert sum(refused.values()) > 0
    for lvl in StockLevel.objects.all():
        key = (lvl.location_id, lvl.sku_id)
        assert lvl.reserved == reserved[key], key
        assert lvl.on_hand == initial[key] - committed[key], key
        assert 0 <= lvl.reserved <= lvl.on_hand
    assert sampler.bad == []
    assert ledger_mismatches() == []


def test_checkout_holds_racing_reservations_never_oversell():
    store, sku = LocationFactory(), SkuFactory()
    n_units = 20
    lvl = stock(store, sku, n_units)
    direct: dict[int, int] = {}
    converted: dict[int, int] = {}
    kept: dict[int, int] = {}  # holds left open (some already expired: reservations may reclaim them)
    refused = Counter()

    def work(i: int) -> None:
        r = random.Random(1000 + i)
        qty = r.randint(1, 3)
        role = i % 4
        if role == 0:  # straight to an order
            try:
                stock_reserve(lines=[Line(store.pk, sku.pk, qty)], reference=f"O-{i}")
                direct[i] = qty
            except InsufficientStock:
                refused["reserve"] += 1
            return
        try:
            ttl = dt.timedelta(milliseconds=50) if role == 3 else None
            hold = hold_create(lines=[Line(store.pk, sku.pk, qty)], ttl=ttl)
        except InsufficientStock:
            refused["hold"] += 1
            return
        if role == 1:  # checkout completes: the hold becomes the order's reservation, never refused
            lines = hold_convert(hold_id=hold.pk, reference=f"O-{i}")
            converted[i] = sum(ln.quantity for ln in lines)
        elif role == 2 and r.random() < 0.5:  # cart abandoned
            hold_release(hold_id=hold.pk)
        else:
            kept[i] = qty

    with Sampler([lvl.pk]) as sampler:
        errors = run_threads(THREADS, work)

    assert unexpected(errors) == []
    assert sum(refused.values()) > 0
    lvl.refresh_from_db()
    assert lvl.reserved == sum(direct.values()) + sum(converted.values())
    open_held = HoldLine.objects.filter(sku=sku).aggregate(s=Sum("quantity"))["s"] or 0
    assert lvl.held == open_held <= sum(kept.values())
    assert lvl.reserved + lvl.held <= lvl.on_hand == n_units
    assert sampler.bad == []
    assert ledger_mismatches() == []


def test_the_last_unit_is_announced_out_of_stock_exactly_once():
    """64 threads race for 10 units, one each: the reservation that took the last unit (and only it)
    announces stock.out_of_stock, from what its guarded UPDATE returned."""
    from inventory import hooks

    store, sku = LocationFactory(), SkuFactory()
    stock(store, sku, 10)
    heard: list[tuple[int, int]] = []
    wins: list[int] = []

    def listener(events) -> None:
        heard.extend((e.sku_id, e.location_id) for e in events)

    def work(i: int) -> None:
        try:
            stock_reserve(lines=[Line(store.pk, sku.pk, 1)], reference=f"O-{i}")
        except InsufficientStock:
            return
        wins.append(i)

    hooks.on_out_of_stock(listener)
    try:
        errors = run_threads(THREADS * 2, work)
    finally:
        hooks._out_of_stock_listeners.remove(listener)
    assert unexpected(errors) == []
    assert len(wins) == 10
    assert heard == [(sku.pk, store.pk)]
    assert ledger_mismatches() == []


def _wait_for_lock_waiter(errors, timeout: float = 10.0) -> None:
    """Block until another connection is waiting on a row lock (pg_stat_activity); fail at once if
    the other thread already failed."""
    import time

    deadline = time.monotonic() + timeout
    with connection.cursor() as cur:
        while time.monotonic() < deadline:
            cur.execute("SELECT pg_stat_clear_snapshot()")  # else a transaction sees its first snapshot
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cur.fetchone()[0]:
                return
            time.sleep(0.01)
            assert errors == []
    raise AssertionError("no connection started waiting on the lock")


@pytest.mark.parametrize("finish", ["release", "convert"])
def test_a_hold_given_back_while_a_writer_reclaims_it_is_counted_once(finish):
    """The hold's own call reads its lines, then waits on the level a writer has locked; the writer
    reclaims those (expired) lines and commits. The hold's call must not give the units back a
    second time (on the old code: `held` went down twice, or the guard raised StockConflict)."""
    from django.db import transaction

    from inventory.services.changes import lock_levels, reclaim_expired_holds

    store, sku = LocationFactory(), SkuFactory()
    lvl = stock(store, sku, 10)
    expired = hold_create(lines=[Line(store.pk, sku.pk, 3)], ttl=dt.timedelta(milliseconds=1))
    other = hold_create(lines=[Line(store.pk, sku.pk, 2)])  # keeps `held` high enough for a double count
    threading.Event().wait(0.01)
    errors: list[BaseException] = []

    def give_back() -> None:
        try:
            if finish == "release":
                hold_release(hold_id=expired.pk)
            else:
                hold_convert(hold_id=expired.pk, reference="O-1")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    key = (store.pk, sku.pk)
    with transaction.atomic():
        rows = lock_levels([key])
        t = threading.Thread(target=give_back)
        t.start()
        _wait_for_lock_waiter(errors)
        assert [c.held for c in reclaim_expired_holds(rows, [key], user=None)] == [-3]
    t.join(JOIN_TIMEOUT)

    lvl.refresh_from_db()
    open_held = HoldLine.objects.filter(sku=sku).aggregate(s=Sum("quantity"))["s"] or 0
    assert lvl.held == open_held == 2
    assert lvl.reserved == 0
    if finish == "convert":  # its stock was reclaimed first: the hold is expired, nothing converted
        assert [getattr(e, "code", e) for e in errors] == ["hold_expired"]
    else:
        assert errors == []
    assert other.lines.count() == 1
    assert ledger_mismatches() == []


def test_a_hold_with_a_tiny_ttl_on_a_short_level_does_not_reclaim_itself():
    """A hold whose level is short reclaims expired holds first; its own lines, had they been
    written before the counters, would already be expired with a tiny ttl and be "given back"
    before they were counted (StockConflict on the old code)."""
    store, sku = LocationFactory(), SkuFactory()
    lvl = stock(store, sku, 2)
    hold_create(lines=[Line(store.pk, sku.pk, 2)], ttl=dt.timedelta(milliseconds=1))
    threading.Event().wait(0.01)
    fresh = hold_create(lines=[Line(store.pk, sku.pk, 1)], ttl=dt.timedelta(microseconds=1))
    lvl.refresh_from_db()
    assert lvl.held == 1 == sum(ln.quantity for ln in fresh.lines.all())
    assert ledger_mismatches() == []
