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


# --- Lockers (orders.services.lockers) ---------------------------------------------------------


class UnknownLocker(NotFound):
    code = "unknown_locker"


class UnknownCompartment(NotFound):
    code = "unknown_compartment"


class LockerPickupOnly(PolicyViolation):
    """Only pickup orders go into a locker (curbside is brought to the car; ship leaves)."""

    code = "locker_pickup_only"


class LockerAtAnotherStore(PolicyViolation):
    """A fulfillment goes into a locker of its own store only."""

    code = "locker_at_another_store"


class LockerOutOfService(Conflict):
    code = "out_of_service"


class CompartmentOccupied(Conflict):
    code = "compartment_occupied"


class CompartmentEmpty(Conflict):
    code = "compartment_empty"


class AlreadyInLocker(Conflict):
    code = "already_in_locker"


class PickupWindowEnded(Conflict):
    """The order's pickup window has ended: the expiry sweep cancels it, no locker takes it."""

    code = "pickup_window_ended"


class NotInLocker(Conflict):
    code = "not_in_locker"


class InLocker(Conflict):
    """Collecting at the counter an order that waits in a locker: take it out first."""

    code = "in_locker"


class AlreadyCollected(Conflict):
    code = "already_collected"


class WrongLocker(PolicyViolation):
    """The code is right, but for an order waiting in another locker."""

    code = "wrong_locker"


class CompartmentLocked(TooManyAttempts):
    """OMS["PICKUP_CODE_MAX_ATTEMPTS"] wrong codes for a compartment: it stays shut, the right code
    too, until an associate issues a new code (or takes the order out)."""

    code = "compartment_locked"


class KeypadLocked(TooManyAttempts):
    """Too many codes matching nothing at one locker's keypad in the current window."""

    code = "keypad_locked"
