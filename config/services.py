"""The transaction boundary of every write service.

`@service` makes a function one database transaction. A service called from inside another
service joins that service's transaction directly (no savepoint: nested services compose at
no extra round trips, and any error rolls the whole outer service back). Called from
anywhere else (a view, a task, a test) it is its own `transaction.atomic()` block.

A service that catches a nested service's error in order to carry on must wrap that call in
its own `transaction.atomic()`, so that what the failed call wrote is rolled back.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import transaction

P = ParamSpec("P")
R = TypeVar("R")

_in_service: contextvars.ContextVar[bool] = contextvars.ContextVar("in_service", default=False)
_last: contextvars.ContextVar[list[Callable[[], None]] | None] = contextvars.ContextVar("last", default=None)


def service(func: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if _in_service.get() and transaction.get_connection().in_atomic_block:
            return func(*args, **kwargs)
        token, last_token = _in_service.set(True), _last.set([])
        try:
            with transaction.atomic():
                result = func(*args, **kwargs)
                _run_pending(_last.get() or [])
                return result
        finally:
            _last.reset(last_token)
            _in_service.reset(token)

    return wrapper


class _Marker:
    """A no-op on_commit callback: Django drops it when the savepoint it was registered in is
    rolled back, which tells whether the work registered with it still belongs to the transaction."""

    def __call__(self) -> None:
        pass


def _run_pending(pending: list) -> None:
    i = 0
    while i < len(pending):  # work may register more work: it runs too, in order
        marker, work = pending[i]
        i += 1
        on_commit = transaction.get_connection().run_on_commit
        if any(func is marker for _, func, *_ in on_commit):  # not undone by a rolled-back savepoint
            work()  # an error here rolls everything back, like any other


def run_last(work: Callable[[], None]) -> None:
    """Run `work` as the last thing the current transaction does before COMMIT (after the
    outermost service's function has returned), or at once outside a service.

    For a lock that many requests queue on (the stock row of a SKU everybody buys): taken last, it
    is held only until the commit, not while the rest of the request is written and rendered. The
    work may raise; the whole transaction is then rolled back and the error propagates.
    """
    pending = _last.get()
    if pending is None or not _in_service.get() or not transaction.get_connection().in_atomic_block:
        work()  # not inside a service's transaction (e.g. an on-commit callback): at once
    else:
        marker = _Marker()
        transaction.on_commit(marker)
        pending.append((marker, work))
