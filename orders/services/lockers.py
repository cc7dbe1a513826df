"""Lockers: an associate loads a ready pickup into a compartment of the store's locker bank, the
customer is sent the locker, the compartment and a new code, and the locker's controller opens the
door for the right code, which collects the order (docs/orders.md, "Lockers").

What is in a compartment is the fulfillment pointing at it (`Fulfillment.compartment`); the DB
holds one live order per compartment (`fulfillment_one_per_compartment`). The code is the
fulfillment's pickup code, replaced at loading; wrong tries are counted on the fulfillment, so
"the compartment is locked" is "its order's code is locked" (`codes.code_try`, the counter's
limit), and an associate unlocks it the way the counter does: a new code (`pickup_code_reissue`,
sent to the customer with the locker and compartment) or by taking the order out.

Lock order, as everywhere: the fulfillment, then the compartment, then stock levels, then the
order row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.auth_failures import FailureWindow
from config.errors import InvalidInput
from stores.models import Compartment, PickupPoint
from stores.selectors import require_location_access

from .. import transitions
from ..exceptions import (
    AlreadyCollected,
    AlreadyInLocker,
    CompartmentEmpty,
    CompartmentLocked,
    CompartmentOccupied,
    InvalidTransition,
    KeypadLocked,
    LockerAtAnotherStore,
    LockerOutOfService,
    LockerPickupOnly,
    NotInLocker,
    PickupCodeLocked,
    PickupWindowEnded,
    UnknownCompartment,
    UnknownLocker,
    WrongLocker,
    WrongPickupCode,
)
from ..models import EventType, Fulfillment, FulfillmentMethod, FulfillmentStatus
from .codes import code_new, code_normalise
from .common import acting_user, fulfillment_event, locked_fulfillment
from .fulfillment import _collect, pickup_code_check

log = logging.getLogger(__name__)
Status = FulfillmentStatus


@dataclass(frozen=True)
class LockerOpened:
    """The right code at a locker: open `compartment`; `fulfillment` is collected."""

    locker: PickupPoint
    compartment: Compartment
    fulfillment: Fulfillment


def keypad_failures() -> FailureWindow:
    """Codes matching nothing at a locker's keypad, per locker (config.auth_failures' counters)."""
    oms = settings.OMS
    return FailureWindow(
        "locker-keypad",
        oms.get("LOCKER_KEYPAD_FAILURE_LIMIT", 10),
        oms.get("LOCKER_KEYPAD_FAILURE_WINDOW_SECONDS", 900),
    )


def _locker(code) -> PickupPoint:
    code = code if isinstance(code, str) else ""
    locker = (
        PickupPoint.objects.select_related("store").filter(code=code).first()
        if code and "\x00" not in code
        else None
    )
    if locker is None:
        raise UnknownLocker(f"Unknown locker {code!r}.", details={"locker": code})
    return locker


def _label(label) -> str:
    return str(label or "").strip().upper()


def _compartment(locker: PickupPoint, label, *, lock: bool = False) -> Compartment:
    qs = Compartment.objects.filter(pickup_point=locker, label=_label(label))
    if lock:
        qs = qs.select_for_update()
    comp = qs.first() if "\x00" not in _label(label) else None
    if comp is None:
        raise UnknownCompartment(
            f"Locker {locker.code} has no compartment {label!r}.",
            details={"locker": locker.code, "compartment": str(label)},
        )
    comp.pickup_point = locker
    return comp


def _where(comp: Compartment) -> dict:
    return {"locker": comp.pickup_point.code, "compartment": comp.label}


def compartment_occupant_id(comp: Compartment) -> int | None:
    """The id of the fulfillment in `comp` (loaded, not collected: cancelled ones stay until unloaded)."""
    return (
        Fulfillment.objects.filter(compartment=comp)
        .exclude(status=Status.COLLECTED)
        .values_list("pk", flat=True)
        .first()
    )


# --- Loading and unloading (associates, managers) ------------------------------------------------


@transaction.atomic
def locker_load(
    *, fulfillment_id, locker: str, compartment: str, user=None, channel: str = ""
) -> Fulfillment:
    """Put a pickup that is ready at the counter into a free compartment of its store's locker.

    Checks, each a 4xx with nothing written: the staff's store (403), a pickup (422
    `locker_pickup_only`), ready for pickup (409), not already in a compartment (409
    `already_in_locker`), its window not ended (409 `pickup_window_ended`), a locker of the fulfillment's own store (404 `unknown_locker`, 422
    `locker_at_another_store`), the compartment (404 `unknown_compartment`), in service (409
    `out_of_service`) and free (409 `compartment_occupied`). Then a new pickup code (count at 0;
    the counter's code stops working: nobody watches a locker, so only a code sent for it opens it)
    and a LOCKER_LOADED event, whose notification tells the customer the locker, the compartment
    and the code. Locks the fulfillment, then the compartment: two loads racing for one
    compartment queue on it, and the second finds it occupied (the unique constraint backs it).
    """
    f = locked_fulfillment(fulfillment_id, user)
    if f.method != FulfillmentMethod.PICKUP:
        raise LockerPickupOnly(
            f"Only pickup orders go into a locker (this one is {f.method}).",
            details={"fulfillment": f.pk, "method": f.method},
        )
    if f.status != Status.READY_FOR_PICKUP:
        raise InvalidTransition(
            f"Only an order ready for pickup goes into a locker (this one is {f.status}).",
            details={"fulfillment": f.pk, "from": f.status, "to": EventType.LOCKER_LOADED.value},
        )
    if f.pickup_expires_at is not None and f.pickup_expires_at <= timezone.now():
        # The sweep skips orders in lockers: loaded now, it would wait behind a door for good.
        raise PickupWindowEnded(
            "The pickup window of this order has ended; it is cancelled, not loaded into a locker.",
            details={"fulfillment": f.pk, "expires_at": f.pickup_expires_at.isoformat()},
        )
    if f.compartment_id is not None:
        raise AlreadyInLocker(
            "This order is already in a locker: take it out first.",
            details={"fulfillment": f.pk, "compartment": str(f.compartment)},
        )
    bank = _locker(locker)
    if bank.store_id != f.location_id:
        raise LockerAtAnotherStore(
            f"Locker {bank.code} belongs to {bank.store.code}; this order is collected at {f.location.code}.",
            details={"locker": bank.code, "store": bank.store.code, "location": f.location.code},
        )
    comp = _compartment(bank, compartment, lock=True)
    if not (bank.is_active and comp.is_active):
        raise LockerOutOfService(
            f"Compartment {comp} is out of service.", details={**_where(comp), "fulfillment": f.pk}
        )
    occupant = compartment_occupant_id(comp)
    if occupant is not None:
        raise CompartmentOccupied(f"Compartment {comp} is not empty.", details=_where(comp))
    refused_before = f.pickup_code_attempts
    f.compartment, f.pickup_code, f.pickup_code_attempts = comp, code_new(), 0
    f.save(update_fields=["compartment", "pickup_code", "pickup_code_attempts", "updated_at"])
    transitions.record_events(
        [
            fulfillment_event(
                f,
                EventType.LOCKER_LOADED,
                user=user,
                channel=channel,
                reason=f"loaded into locker {bank.code}, compartment {comp.label}",
                data={"location": f.location.code, **_where(comp), "refused_before": refused_before},
            )
        ]
    )
    return f


@transaction.atomic
def locker_unload(*, fulfillment_id, user=None, reason: str = "", channel: str = "") -> Fulfillment:
    """Take an order out of its compartment: back at the counter (ready for pickup, its code still
    works there), or, for an order cancelled while it was inside, just out. The compartment is
    free. An order whose window has ended is then cancelled by the next expiry sweep, as any
    (the sweep leaves orders in lockers alone: their goods are behind a door). 409
    `not_in_locker` when it is in none."""
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if len(reason) > 255:
        raise InvalidInput("reason is at most 255 characters.", details={"field": "reason"})
    f = locked_fulfillment(fulfillment_id, user)
    if f.compartment_id is None or f.status == Status.COLLECTED:
        raise NotInLocker("This order is not in a locker.", details={"fulfillment": f.pk})
    comp = Compartment.objects.select_related("pickup_point").get(pk=f.compartment_id)
    f.compartment = None
    f.save(update_fields=["compartment", "updated_at"])
    transitions.record_events(
        [
            fulfillment_event(
                f,
                EventType.LOCKER_UNLOADED,
                user=user,
                channel=channel,
                reason=reason or f"taken out of locker {comp.pickup_point.code}, compartment {comp.label}",
                data={"location": f.location.code, **_where(comp)},
            )
        ]
    )
    return f


# --- Opening (the locker's controller) -------------------------------------------------------


def locker_open(
    *, locker: str, pickup_code: str, compartment: str | None = None, user=None, channel: str = ""
) -> LockerOpened:
    """The customer typed `pickup_code` at `locker` (and the controller may name the compartment):
    the right code collects the order in it (the counter's collect: stock committed, event,
    notification) and the answer names the door to open.

    Which order: the one in the named compartment, else the one in this locker with that code.
    Refused without counting (nothing written): an unknown locker or compartment (404), a device
    of another store (403), an empty compartment (409 `compartment_empty`), a code opened already
    (409 `already_collected`: a controller retrying after a lost answer learns its door), a code
    for an order in another locker (422 `wrong_locker`), a cancelled order (409). Counted:

    - with a compartment, a wrong code is counted on its order (422 `wrong_pickup_code`, a
      `pickup_code_refused` event); after OMS["PICKUP_CODE_MAX_ATTEMPTS"] every code, the right
      one too, is 429 `compartment_locked` until an associate issues a new code;
    - without, a code matching no order here is counted for the locker's keypad in the shared
      cache (422 `wrong_pickup_code`); after OMS["LOCKER_KEYPAD_FAILURE_LIMIT"] in a window every
      code without a compartment is 429 `keypad_locked` until the window ends (naming the
      compartment still works, limited per compartment).

    Like `fulfillment_collect`, not one atomic function: the refusal's count commits, then the
    error is raised.
    """
    bank = _locker(locker)
    if acting_user(user) is not None:
        require_location_access(user, bank.store)
    typed = code_normalise(pickup_code)
    if not typed:
        raise InvalidInput("pickup_code is required.", details={"field": "pickup_code"})
    if not bank.is_active:
        raise LockerOutOfService(f"Locker {bank.code} is out of service.", details={"locker": bank.code})
    if compartment not in (None, ""):
        comp = _compartment(bank, compartment)
        occupant = compartment_occupant_id(comp)
        if occupant is None:
            _refuse_collected(bank, typed)
            raise CompartmentEmpty(f"Compartment {comp} is empty.", details=_where(comp))
    else:
        wait = keypad_failures().locked(bank.code)
        if wait is not None:
            raise KeypadLocked(
                f"Too many wrong codes at locker {bank.code}: type the compartment number with the code, "
                f"or try again in {-(-wait // 60)} minute(s).",
                details={"locker": bank.code, "retry_after_seconds": wait},
            )
        occupant = (
            Fulfillment.objects.filter(
                compartment__pickup_point=bank, status=Status.READY_FOR_PICKUP, pickup_code=typed
            )
            .values_list("pk", flat=True)
            .first()
        )
        if occupant is None:
            _refuse_elsewhere(bank, typed)
            _refuse_collected(bank, typed)
            keypad_failures().fail(bank.code)
            log.info("locker %s: a code matching no order (keypad count)", bank.code)
            raise WrongPickupCode(
                "The code does not match any order in this locker.",
                details={"field": "pickup_code", "locker": bank.code},
            )
    _refuse_elsewhere(bank, typed)
    return _open(bank, occupant, typed, user=user, channel=channel)


def _refuse_elsewhere(bank: PickupPoint, typed: str) -> None:
    """422 `wrong_locker` when `typed` opens an order waiting in another locker (not counted)."""
    elsewhere = (
        Fulfillment.objects.filter(
            compartment__isnull=False, status=Status.READY_FOR_PICKUP, pickup_code=typed
        )
        .exclude(compartment__pickup_point=bank)
        .exists()
    )
    if elsewhere:
        raise WrongLocker(
            "This code is for an order in another locker: the message with the code names its locker.",
            details={"field": "pickup_code", "locker": bank.code},
        )


def _refuse_collected(bank: PickupPoint, typed: str) -> None:
    """409 `already_collected` when `typed` opened an order of this locker already (not counted)."""
    done = (
        Fulfillment.objects.filter(compartment__pickup_point=bank, status=Status.COLLECTED, pickup_code=typed)
        .select_related("compartment")
        .order_by("-collected_at")
        .first()
    )
    if done is not None:
        raise AlreadyCollected(
            f"This code opened compartment {done.compartment.label} already; the order is collected.",
            details={"locker": bank.code, "compartment": done.compartment.label, "fulfillment": done.pk},
        )


def _open(bank: PickupPoint, fulfillment_id: int, typed: str, *, user, channel: str) -> LockerOpened:
    with transaction.atomic():
        f = transitions.lock_fulfillment(fulfillment_id)
        comp = (
            Compartment.objects.filter(pk=f.compartment_id, pickup_point=bank).first()
            if f.compartment_id
            else None
        )
        if comp is None or f.status == Status.COLLECTED:
            # Taken out, or collected, between the look-up and the lock.
            raise CompartmentEmpty("That compartment was emptied meanwhile.", details={"locker": bank.code})
        comp.pickup_point = bank
        transitions.check(f, Status.COLLECTED)  # 409 for an order cancelled while it was inside
        where = _where(comp)
        refused = pickup_code_check(f, typed=typed, user=user, channel=channel, data=where)
        if refused is None:
            f = _collect(
                f,
                {},
                user=user,
                channel=channel,
                reason=f"collected from locker {bank.code}, compartment {comp.label}",
                data=where,
            )
    if isinstance(refused, PickupCodeLocked):
        raise CompartmentLocked(
            f"Compartment {comp.label} is locked after too many wrong codes: an associate issues a new code.",
            details={**where, **refused.details},
        )
    if refused is not None:
        refused.details.update(where)
        raise refused
    return LockerOpened(locker=bank, compartment=comp, fulfillment=f)
