"""Benchmarks 1 and 2: reservations through the service layer vs the same transaction in raw SQL.

N worker *processes* (forked after Django is set up, each opening its own PostgreSQL connection)
reserve one unit at a time for a fixed duration:

* `service`: `inventory.services.stock_reserve(lines=[Line(store, sku, 1)], reference=...)`;
* `raw`: the same transaction by hand, on the same connection, through the same psycopg cursor class
  Django uses (client-side binding): BEGIN; guarded UPDATE of the stock row; INSERT of the ledger row;
  COMMIT. That is the database's own limit for this transaction on this machine.

Both phases run in the same run, one after the other, with a VACUUM of the stock tables in between.
Afterwards the ledger is audited: every stock level must equal the sums of its ledger rows.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field

from .common import percentile, table

STORE_CODE = "BENCH-STORE"
SKU_PREFIX = "BENCH-"
# Interleaved phases (ABBA): a linear drift in the shared machine's load hits both paths equally.
MODES = ("service", "raw", "raw", "service")

UPDATE_SQL = (
    "UPDATE inventory_stocklevel SET reserved = reserved + %s "
    "WHERE location_id = %s AND sku_id = %s AND on_hand - reserved - held - safety_stock >= %s"
)
INSERT_SQL = (
    "INSERT INTO inventory_stockmovement (sku_id, location_id, kind, quantity, on_hand_delta, "
    "reserved_delta, held_delta, safety_stock_delta, reference_type, reference, reason, created_at, user_id) "
    "VALUES (%s, %s, 'reservation', %s, 0, %s, 0, 0, 'order', %s, '', now(), NULL) RETURNING id"
)


class Refused(Exception):
    """The guarded UPDATE matched no row (raw mode's InsufficientStock)."""


@dataclass
class PhaseResult:
    mode: str
    ok: int = 0
    refused: int = 0
    errors: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, successful calls
    start: float = 0.0
    end: float = 0.0
    cpu: float = 0.0  # CPU seconds spent by the worker processes (client side)
    seconds: float = 0.0  # summed wall time of this mode's phases

    @property
    def wall(self) -> float:
        return max(self.seconds or (self.end - self.start), 1e-9)

    @property
    def rate(self) -> float:
        return self.ok / self.wall


def prepare(*, n_skus: int, units: int, reset: bool) -> tuple[int, list[int]]:
    """The store and its SKUs with `units` on hand each, received through the services (ledger true)."""
    from django.db import connection

    from inventory.models import Sku, StockLevel
    from inventory.services import Line, stock_receive
    from stores.models import Location, LocationKind

    if reset:
        with connection.cursor() as cur:
            cur.execute(
                "TRUNCATE inventory_stockmovement, inventory_holdline, inventory_hold, inventory_stocklevel "
                "RESTART IDENTITY CASCADE"
            )
    store, _ = Location.objects.get_or_create(
        code=STORE_CODE,
        defaults={
            "name": "Bench store",
            "kind": LocationKind.STORE,
            "latitude": 35.6595,
            "longitude": 139.7005,
            "offers_pickup": True,
        },
    )
    codes = [f"{SKU_PREFIX}{i:05d}" for i in range(1, n_skus + 1)]
    Sku.objects.bulk_create(
        [Sku(code=c, name=f"Bench product {c}", category="bench") for c in codes], ignore_conflicts=True
    )
    sku_ids = list(Sku.objects.filter(code__in=codes).order_by("code").values_list("pk", flat=True))
    have = dict(
        StockLevel.objects.filter(location=store, sku_id__in=sku_ids).values_list("sku_id", "on_hand")
    )
    per_line = 100_000  # settings.OMS["MAX_LINE_QUANTITY"]: receive big amounts in several lines
    todo = [(s, units - have.get(s, 0)) for s in sku_ids if have.get(s, 0) < units]
    for start in range(0, len(todo), 500):
        lines = []
        for sku_id, qty in todo[start : start + 500]:
            while qty > 0:
                lines.append(Line(store.pk, sku_id, min(qty, per_line)))
                qty -= per_line
        stock_receive(lines=lines, reference="bench setup")
    return store.pk, sku_ids


def _worker(idx, store_id, sku_ids, duration, modes, barrier, out_q) -> None:
    """One worker process: its own connection, then each phase when the parent releases the barrier."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):  # never reuse a socket inherited from the parent
        conn.connection = None
    from django.db import connection

    from inventory.exceptions import InsufficientStock
    from inventory.services import Line, stock_reserve

    rng = random.Random(idx)
    results = []
    try:
        connection.ensure_connection()
        raw = connection.connection
        cur = raw.cursor()  # Django's own cursor class (ClientCursor): same wire protocol as the ORM
        raw_counter = 0
        for mode in modes:
            barrier.wait()  # ready (the parent vacuums now)
            barrier.wait()  # go
            r = PhaseResult(mode)
            lat = array("d")
            n = 0
            cpu0 = time.process_time()
            r.start = time.monotonic()
            deadline = r.start + duration
            while True:
                t0 = time.monotonic()
                if t0 >= deadline:
                    break
                sku_id = sku_ids[0] if len(sku_ids) == 1 else sku_ids[rng.randrange(len(sku_ids))]
                n += 1
                ref = f"B{idx}-{n}"
                try:
                    if mode == "service":
                        stock_reserve(lines=[Line(store_id, sku_id, 1)], reference=ref)
                    else:
                        raw_counter += 1
                        cur.execute("BEGIN")
                        cur.execute(UPDATE_SQL, (1, store_id, sku_id, 1))
                        if cur.rowcount != 1:
                            cur.execute("ROLLBACK")
                            raise Refused
                        cur.execute(INSERT_SQL, (sku_id, store_id, 1, 1, ref))
                        cur.fetchone()
                        cur.execute("COMMIT")
                    lat.append(time.monotonic() - t0)
                    r.ok += 1
                except (InsufficientStock, Refused):
                    r.refused += 1
                except Exception as exc:
                    r.errors[f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}"] += 1
                    if mode == "raw":
                        try:
                            cur.execute("ROLLBACK")
                        except Exception:
                            connection.close()
                            connection.ensure_connection()
                            raw = connection.connection
                            cur = raw.cursor()
            r.end = time.monotonic()
            r.cpu = time.process_time() - cpu0
            r.latencies = lat.tolist()
            results.append(r)
    except Exception as exc:
        barrier.abort()
        out_q.put((idx, None, f"{type(exc).__name__}: {exc}"))
        return
    finally:
        connection.close()
    out_q.put((idx, results, None))


def run(
    *, n_skus: int, workers: int, duration: float, reset: bool = True, modes=MODES
) -> tuple[dict[str, PhaseResult], dict]:
    """Run the phases; return the merged result per mode and the post-run checks."""
    from django.db import connection, connections

    from inventory.models import StockLevel, StockMovement

    units = 500_000 if n_skus == 1 else 2_000
    store_id, sku_ids = prepare(n_skus=n_skus, units=units, reset=reset)
    before = StockMovement.objects.filter(kind="reservation").count()
    connections.close_all()  # nothing open across fork()

    phase_seconds = duration * len(set(modes)) / len(modes)  # each mode gets `duration` in total
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(workers + 1)
    out_q = ctx.Queue()
    procs = [
        ctx.Process(
            target=_worker, args=(i, store_id, sku_ids, phase_seconds, modes, barrier, out_q), daemon=True
        )
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    try:
        for _ in modes:
            barrier.wait(timeout=120)
            with connection.cursor() as cur:
                cur.execute("VACUUM (ANALYZE) inventory_stocklevel")
                cur.execute("VACUUM (ANALYZE) inventory_stockmovement")
            connections.close_all()
            barrier.wait(timeout=120)
        got = [out_q.get(timeout=duration * len(modes) + 120) for _ in procs]
    except BaseException:
        for p in procs:
            if p.is_alive():
                p.terminate()
        failures = []
        while not out_q.empty():
            _, _, err = out_q.get_nowait()
            if err:
                failures.append(err)
        raise SystemExit(f"bench workers failed: {failures[:3]}") from None
    for p in procs:
        p.join(timeout=30)
    failures = [err for _, _, err in got if err]
    if failures:
        raise SystemExit(f"{len(failures)} workers failed, e.g. {failures[0]}")

    merged: dict[str, PhaseResult] = {}
    for mode_i, mode in enumerate(modes):
        m = merged.setdefault(mode, PhaseResult(mode))
        start, end = float("inf"), 0.0
        for _, results, _ in got:
            r = results[mode_i]
            m.ok += r.ok
            m.refused += r.refused
            m.errors.update(r.errors)
            m.latencies.extend(r.latencies)
            start, end = min(start, r.start), max(end, r.end)
            m.cpu += r.cpu
        m.seconds += end - start
    for m in merged.values():
        m.latencies.sort()

    from inventory.selectors import ledger_mismatches

    levels = StockLevel.objects.filter(location_id=store_id, sku_id__in=sku_ids)
    checks = {
        "reservations_written": StockMovement.objects.filter(kind="reservation").count() - before,
        "reservations_counted": sum(m.ok for m in merged.values()),
        "oversold_levels": sum(
            1 for lv in levels.only("on_hand", "reserved", "held", "safety_stock") if lv.raw_available < 0
        ),
        "ledger_mismatches": len(ledger_mismatches()),
    }
    return merged, checks


def render(merged: dict[str, PhaseResult], *, workers: int, duration: float) -> str:
    rows = []
    for m in merged.values():
        rows.append(
            [
                m.mode,
                workers,
                round(m.wall, 1),
                m.ok,
                round(m.rate),
                percentile(m.latencies, 50) * 1000,
                percentile(m.latencies, 99) * 1000,
                m.refused,
                sum(m.errors.values()),
                (m.cpu / m.ok * 1000) if m.ok else 0.0,
            ]
        )
    return table(
        [
            "path",
            "worker processes",
            "seconds",
            "reservations",
            "reservations/s",
            "p50 ms",
            "p99 ms",
            "refused",
            "errors",
            "client CPU ms/reservation",
        ],
        rows,
    )


def verdict(merged: dict[str, PhaseResult], checks: dict) -> tuple[str, bool]:
    lines = []
    ok = True
    if "service" in merged and "raw" in merged and merged["raw"].rate:
        ratio = merged["service"].rate / merged["raw"].rate
        hit = ratio >= 0.5
        ok &= hit
        lines.append(f"- service / raw = **{ratio:.2f}** (target >= 0.5: {'met' if hit else 'MISSED'})")
    consistent = (
        checks["ledger_mismatches"] == 0
        and checks["oversold_levels"] == 0
        and checks["reservations_written"] == checks["reservations_counted"]
    )
    ok &= consistent
    lines.append(
        f"- after the run: {checks['reservations_written']:,} reservation ledger rows written for "
        f"{checks['reservations_counted']:,} successful calls, {checks['oversold_levels']} oversold levels, "
        f"ledger_mismatches() = {checks['ledger_mismatches']} ({'consistent' if consistent else 'INCONSISTENT'})"
    )
    for m in merged.values():
        for err, n in m.errors.most_common(3):
            lines.append(f"- {m.mode} error x{n}: `{err}`")
    return "\n".join(lines), ok


DOC_NOTES = """
How to read it: *reservations/s* counts successful reservations over the phase's wall time; latency
is per call as the worker sees it (p50/p99 over every successful call). *Client CPU ms/reservation*
is the CPU the worker processes spent per reservation (Python, ORM, driver): the app-side cost, on the
same 2 cores as PostgreSQL. The raw phase uses the same connection and psycopg cursor class as Django
(client-side parameter binding, no prepared statements), so the difference is the ORM and the service
code, not the driver. The processes are forked after Django is set up; each opens its own connection.
"""
