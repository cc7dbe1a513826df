"""Where a reservation's time goes: the service layer taken apart, one process, no contention.

Each step is timed as client CPU per call (time.process_time, best of 5 rounds), so the figures are
the app-side cost of each piece, the thing that binds when many workers share 2 cores with
PostgreSQL. Wall time per call is shown for the whole transactions.
"""

from __future__ import annotations

import time

from .common import table

ROUNDS, N = 5, 200


def _best(fn, n: int = N) -> tuple[float, float]:
    fn()  # warm caches and the connection
    best_cpu = best_wall = float("inf")
    for _ in range(ROUNDS):
        c, w = time.process_time(), time.perf_counter()
        for _ in range(n):
            fn()
        best_cpu = min(best_cpu, (time.process_time() - c) / n * 1000)
        best_wall = min(best_wall, (time.perf_counter() - w) / n * 1000)
    return best_cpu, best_wall


def run() -> tuple[str, dict[str, float]]:
    from django.db import connection, transaction
    from django.db.models import F
    from django.db.models.sql.subqueries import UpdateQuery

    from inventory.models import MovementKind, StockLevel, StockMovement
    from inventory.services import Line, stock_reserve
    from inventory.services.changes import Change, LedgerEntry

    from .reserve import INSERT_SQL, UPDATE_SQL, prepare

    store_id, (sku_id,) = prepare(n_skus=1, units=500_000, reset=True)
    connection.ensure_connection()
    cur = connection.connection.cursor()
    c = Change(store_id, sku_id, reserved=1)
    updates = {"reserved": F("reserved") + 1}
    ledger = LedgerEntry(kind=MovementKind.RESERVATION, reference_type="order", reference="p")

    def service():
        stock_reserve(lines=[Line(store_id, sku_id, 1)], reference="p")

    def raw():
        cur.execute("BEGIN")
        cur.execute(UPDATE_SQL, (1, store_id, sku_id, 1))
        cur.execute(INSERT_SQL, (sku_id, store_id, 1, 1, "p"))
        cur.fetchone()
        cur.execute("COMMIT")

    cte_sql = (
        "WITH u AS (" + UPDATE_SQL + " RETURNING location_id, sku_id) "
        "INSERT INTO inventory_stockmovement (sku_id, location_id, kind, quantity, on_hand_delta, "
        "reserved_delta, held_delta, safety_stock_delta, reference_type, reference, reason, created_at) "
        "SELECT sku_id, location_id, 'reservation', %s, 0, %s, 0, 0, 'order', %s, '', now() FROM u RETURNING id"
    )

    def cte():
        cur.execute(cte_sql, (1, store_id, sku_id, 1, 1, 1, "p"))
        cur.fetchone()

    def build_update():
        qs = StockLevel.objects.filter(location_id=store_id, sku_id=sku_id).filter(c.guard(consumes=True))
        q = qs.query.chain(UpdateQuery)
        q.add_update_values(updates)
        return q.get_compiler("default").as_sql()

    sql, params = build_update()

    def orm_update():
        with transaction.atomic():
            StockLevel.objects.filter(location_id=store_id, sku_id=sku_id).filter(
                c.guard(consumes=True)
            ).update(**updates)

    def sql_update():
        with transaction.atomic(), connection.cursor() as dcur:
            dcur.execute(sql, params)

    def orm_insert():
        with transaction.atomic():
            StockMovement.objects.bulk_create([ledger.movement(c)])

    def sql_insert():
        with transaction.atomic(), connection.cursor() as dcur:
            dcur.execute(INSERT_SQL, (sku_id, store_id, 1, 1, "p"))
            dcur.fetchone()

    def atomic_only():
        with transaction.atomic(), connection.cursor() as dcur:
            dcur.execute("SELECT 1")

    def by_hand_only():
        cur.execute("BEGIN")
        cur.execute("SELECT 1")
        cur.execute("COMMIT")

    steps = [
        ("A", "stock_reserve(): the whole service (BEGIN, UPDATE, INSERT, COMMIT)", service),
        ("B", "raw SQL: the same 4 statements on the same cursor", raw),
        ("C", "raw SQL as one statement (UPDATE ... RETURNING feeding the INSERT in a CTE)", cte),
        ("1", "transaction.atomic() around SELECT 1", atomic_only),
        ("1r", "  the same by hand (BEGIN; SELECT 1; COMMIT)", by_hand_only),
        ("2", "build + compile the guarded UPDATE with the ORM (not executed)", build_update),
        ("3", "atomic + ORM .filter(...).update(...)", orm_update),
        ("3r", "  atomic + the same UPDATE as precompiled SQL", sql_update),
        ("4", "atomic + StockMovement.objects.bulk_create([one row])", orm_insert),
        ("4r", "  atomic + the same INSERT as SQL", sql_insert),
        ("5", "LedgerEntry.movement(): building the StockMovement instance", lambda: ledger.movement(c)),
    ]
    rows, out = [], {}
    for key, label, fn in steps:
        cpu, wall = _best(fn)
        out[key] = cpu
        rows.append([key, label, cpu, wall])
    tbl = table(["step", "what", "client CPU ms/call", "wall ms/call"], rows)
    return tbl, out


def summary(out: dict[str, float]) -> str:
    extra = out["A"] - out["B"]
    update_extra = out["3"] - out["3r"]
    insert_extra = out["4"] - out["4r"]
    atomic_extra = out["1"] - out["1r"]
    rest = extra - update_extra - insert_extra - atomic_extra
    return (
        f"- The service spends **{extra:.2f} ms** more client CPU per reservation than the raw transaction "
        f"({out['A']:.2f} vs {out['B']:.2f} ms, {out['A'] / out['B']:.1f}x). Of that extra:\n"
        f"  - the ORM guarded UPDATE (`_apply` fast path: `.filter(...).filter(_guard(...)).update(**F() "
        f"updates)`): {update_extra:.2f} ms, of which {out['2']:.2f} ms is building and compiling the "
        f"query before it is sent;\n"
        f"  - the ledger row through `StockMovement.objects.bulk_create([...])`: {insert_extra:.2f} ms "
        f"(spent while the stock row is locked, so it also lengthens the lock hold on a hot SKU);\n"
        f"  - `transaction.atomic()` (the `@service` wrapper): {atomic_extra:.2f} ms;\n"
        f"  - everything else (`_check_lines`, `_merge`, `_movement`, the service wrapper): {rest:.2f} ms."
    )
