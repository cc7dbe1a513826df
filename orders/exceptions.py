"""Order errors. Each is a config.errors DomainError rendered by the one exception handler."""

from config.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    NotFound,
    PolicyViolation,
    TooManyAttempts,
)
from inventory.exceptions import InsufficientStock, UnknownSku

__all__ = [
    "DuplicateLine",
    "Forbidden",
    "HoldMismatch",
    "InsufficientStock",
    "InvalidInput",
    "InvalidTransition",
    "NotAPickup",
    "NothingLeftToCancel",
    "PickupCodeLocked",
    "PickupNotOffered",
    "UnknownCustomer",
    "UnknownFulfillment",
    "UnknownLocation",
    "UnknownOrder",
    "UnknownSku",
    "WrongPickupCode",
]


class DuplicateLine(InvalidInput):
    code = "duplicate_line"


class NothingTaken(InvalidInput):
    """A partial hand-over where the customer took nothing: that is a cancellation."""

    code = "nothing_taken"


class CurrencyMismatch(InvalidInput):
    code = "currency_mismatch"


class UnknownLocation(NotFound):
    code = "unknown_location"


class UnknownOrder(NotFound):
    code = "unknown_order"


class UnknownFulfillment(NotFound):
    code = "unknown_fulfillment"


class UnknownCustomer(NotFound):
    code = "unknown_customer"


class PickupNotOffered(PolicyViolation):
    code = "pickup_not_offered"


class HoldMismatch(PolicyViolation):
    code = "hold_mismatch"


class WrongPickupCode(PolicyViolation):
    code = "wrong_pickup_code"


class PickupCodeLocked(TooManyAttempts):
    """OMS["PICKUP_CODE_MAX_ATTEMPTS"] wrong codes: every code is refused until a new one is issued."""

    code = "too_many_attempts"


class NotAPickup(PolicyViolation):
    """Arrival reported for an order that is shipped, not collected (curbside or in store)."""

    code = "not_a_pickup"


class NothingLeftToCancel(Conflict):
    code = "invalid_transition"
