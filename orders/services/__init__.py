"""Every write about customers, orders and fulfillments, one module per job:

    inputs.py        what callers send, checked without the database
    customers.py     one customer across channels
    placement.py     order_place (the steps of placing an order) and checkout holds
    sourcing.py      where the units come from: a hold, the pickup store, or routing
    fulfillment.py   claim, pack, ship, ready, collect, arrival, cancel a fulfillment; a new pickup code
    codes.py         pickup codes: generated, read forgivingly, a limited number of wrong tries
    picking.py       what was found on the shelf, and short picks
    cancellation.py  cancelling an order; line quantities and totals
    notes.py         notes about an order (help desk, call centre, store)
    window.py        the pickup window in the store's calendar
    pickups.py       pickup window extension, reminders and the expiry sweep (beat tasks)
    lockers.py       loading a pickup into a locker compartment, taking it out, opening it with the code

Each public service is one `transaction.atomic` (nested in another service: a savepoint), except
`order_place`, which joins its caller's transaction without one (the flash sale's path:
docs/architecture.md, "Transactions").
"""

from .cancellation import order_cancel
from .customers import customer_find_or_create, customer_update_preferences
from .fulfillment import (
    TakenIn,
    fulfillment_cancel,
    fulfillment_claim,
    fulfillment_collect,
    fulfillment_pack,
    fulfillment_ready,
    fulfillment_ship,
    fulfillment_start,
    order_customer_arrived,
    pickup_code_check,
    pickup_code_reissue,
)
from .inputs import CustomerIn, FulfillmentIn, LineIn
from .lockers import LockerOpened, locker_load, locker_open, locker_unload
from .notes import order_note_add
from .picking import PickIn, fulfillment_pick
from .pickups import fulfillment_extend_pickup, pickup_reminders_send, pickups_expire
from .placement import (
    PlacedFulfillment,
    PlacedOrder,
    StoreReservation,
    checkout_hold_create,
    order_place,
    order_reserve_at_store,
)

__all__ = [
    "CustomerIn",
    "FulfillmentIn",
    "LineIn",
    "LockerOpened",
    "PickIn",
    "PlacedFulfillment",
    "PlacedOrder",
    "StoreReservation",
    "TakenIn",
    "checkout_hold_create",
    "customer_find_or_create",
    "customer_update_preferences",
    "fulfillment_cancel",
    "fulfillment_claim",
    "fulfillment_collect",
    "fulfillment_extend_pickup",
    "fulfillment_pack",
    "fulfillment_pick",
    "fulfillment_ready",
    "fulfillment_ship",
    "fulfillment_start",
    "locker_load",
    "locker_open",
    "locker_unload",
    "order_cancel",
    "order_customer_arrived",
    "order_note_add",
    "order_place",
    "order_reserve_at_store",
    "pickup_code_check",
    "pickup_code_reissue",
    "pickup_reminders_send",
    "pickups_expire",
]
