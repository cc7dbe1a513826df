"""The notifications app's raw SQL: the only place in the app that writes SQL by hand.

Each statement says what the ORM would do instead and which measurement made it raw.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection

from config.db import insert_returning

from .models import Notification

# Inserting an outbox row whose dedupe key already has one returns the existing row's id (a no-op
# update: DO NOTHING would return no row for it) instead of making a second row.
_OUTBOX_ON_CONFLICT = "ON CONFLICT (dedupe_key) DO UPDATE SET dedupe_key = EXCLUDED.dedupe_key"


def outbox_insert(rows: list[Notification]) -> None:
    """INSERT the outbox rows whose dedupe_key is new, in one statement; every row gets its id
    (the existing row's id where its key was already there).

    ORM equivalent: `Notification.objects.bulk_create(rows, update_conflicts=True,
    unique_fields=["dedupe_key"], update_fields=["dedupe_key"])`, also one statement. Raw because
    it runs inside every order placement (the notifications listener): docs/benchmarks.md, flash
    sale, "What it took", rows "webhook endpoints cached per process; raw outbox INSERT" and "order
    rows and outbox rows from one jsonb parameter" (one statement text for any number of rows, so
    PostgreSQL prepares it once). Measured again on its own for issue 8 (PostgreSQL 15 here, one
    row per call inside a transaction, 3 x 2,000 calls each): this statement 0.22 ms median wall /
    0.14 ms Python CPU per call, the ORM's bulk_create 0.34 ms / 0.28 ms: 0.12 ms of each
    placement's ~3.6 ms of Python CPU (the flash sale's table), about 4 %.
    """
    insert_returning(rows, on_conflict=_OUTBOX_ON_CONFLICT)


@contextlib.contextmanager
def relaxed_durability() -> Iterator[None]:
    """PostgreSQL, outside a transaction: commit the claim/outcome writes of a delivery batch
    without waiting for the WAL flush (`SET synchronous_commit TO OFF`, back to DEFAULT after).

    A worker crash loses nothing (a commit is visible at once); only a database crash within
    ~wal_writer_delay can forget a claim or a "sent" mark, and then that row is sent again with the
    same idempotency key. Elsewhere, or inside a transaction (whose commit the caller owns), it
    does nothing.

    ORM equivalent: none (a session setting); without it every claim and outcome UPDATE waits for
    a disk flush. Measured for issue 8 (PostgreSQL 15 here, fsync on, `notifications_deliver` of
    1,000 rows with the locmem email backend, 3 runs each): 875-974 deliveries/s with it, 724-757/s
    without (about 1.25 x). docs/benchmarks.md, "Back-in-stock alerts", describes where it is used.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO DEFAULT")
