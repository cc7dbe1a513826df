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


def service(func: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if _in_service.get() and transaction.get_connection().in_atomic_block:
            return func(*args, **kwargs)
        token = _in_service.set(True)
        try:
            with transaction.atomic():
                return func(*args, **kwargs)
        finally:
            _in_service.reset(token)

    return wrapper
